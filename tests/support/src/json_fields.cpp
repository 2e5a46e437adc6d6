#include "test_support/json_fields.hpp"

#include <boost/json/serialize.hpp>

#include <limits>
#include <stdexcept>

namespace test_support {

namespace json = boost::json;

std::int64_t as_int(const json::value& value, std::string_view what) {
  if (value.is_int64()) {
    return value.get_int64();
  }
  if (value.is_uint64() &&
      value.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return static_cast<std::int64_t>(value.get_uint64());
  }
  throw std::runtime_error(std::string(what) + " is not a JSON integer: " + json::serialize(value));
}

std::int64_t int_field(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (value == nullptr) {
    throw std::runtime_error("missing field '" + std::string(key) + "' in " +
                             json::serialize(object));
  }
  return as_int(*value, key);
}

std::string str_field(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (value == nullptr || !value->is_string()) {
    throw std::runtime_error("field '" + std::string(key) + "' is not a string in " +
                             json::serialize(object));
  }
  return std::string(value->get_string());
}

}  // namespace test_support
