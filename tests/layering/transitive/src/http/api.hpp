#pragma once

#include "app/facade.hpp"
