#pragma once
#include "app/internal.hpp"
