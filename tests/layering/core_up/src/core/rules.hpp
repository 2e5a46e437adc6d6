#pragma once
#include "app/ledger.hpp"
