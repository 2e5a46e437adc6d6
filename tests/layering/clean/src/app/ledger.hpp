#pragma once
#include "store/store.hpp"
