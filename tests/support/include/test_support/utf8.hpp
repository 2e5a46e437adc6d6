#pragma once
// UTF-8 well-formedness for tests that check what the service sends (provider excerpts, logs).

#include <string_view>

namespace test_support {

// RFC 3629 well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF, no
// truncated sequence. Decided by Boost.JSON's string validation, independently of the service's
// own code (as the fuzz targets' oracle, fuzz/fuzz_support.hpp).
bool is_valid_utf8(std::string_view s);

}  // namespace test_support
