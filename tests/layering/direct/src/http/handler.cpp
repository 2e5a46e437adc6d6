#include <string>

#include "http/codec.hpp"
#include "store/store.hpp"
