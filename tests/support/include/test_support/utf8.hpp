#pragma once
// UTF-8 well-formedness for tests that check what the service sends (provider excerpts, logs)
// and for the fuzz targets' properties. Header-only, so that the fuzz build uses it too.

#include <boost/json.hpp>

#include <string_view>

namespace test_support {

// RFC 3629 well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF, no
// truncated sequence. Decided by Boost.JSON's string validation, independently of the service's
// own code: serialized as a JSON string the bytes go out as they are, and the parser refuses
// any that are not well-formed.
inline bool is_valid_utf8(std::string_view s) {
  boost::json::error_code ec;
  boost::json::parse(boost::json::serialize(boost::json::string(s)), ec);
  return !ec;
}

}  // namespace test_support
