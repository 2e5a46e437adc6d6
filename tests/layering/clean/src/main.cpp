#include "app/ledger.hpp"
#include "http/api.hpp"
#include "store/store.hpp"
