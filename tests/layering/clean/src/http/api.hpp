#pragma once
#include "app/queries.hpp"
