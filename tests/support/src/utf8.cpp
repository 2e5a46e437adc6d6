#include "test_support/utf8.hpp"

#include <boost/json.hpp>

namespace test_support {

bool is_valid_utf8(std::string_view s) {
  // Serialized as a JSON string, the bytes go out as they are; Boost.JSON's parser then refuses
  // any that are not well-formed UTF-8.
  boost::json::error_code ec;
  boost::json::parse(boost::json::serialize(boost::json::string(s)), ec);
  return !ec;
}

}  // namespace test_support
