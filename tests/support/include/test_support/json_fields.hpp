#pragma once
// Typed access to fields of the service's JSON answers for the integration and end-to-end
// tests. Each throws std::runtime_error naming the field and quoting the JSON on a mismatch.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace test_support {

// A JSON integer (int64, or a uint64 that fits); `what` names it in the error.
std::int64_t as_int(const boost::json::value& value, std::string_view what = "value");
std::int64_t int_field(const boost::json::object& object, std::string_view key);
std::string str_field(const boost::json::object& object, std::string_view key);

}  // namespace test_support
