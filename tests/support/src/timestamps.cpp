#include "test_support/timestamps.hpp"

#include <chrono>
#include <ctime>
#include <regex>
#include <stdexcept>
#include <string>

namespace test_support {

bool is_rfc3339_ms(std::string_view text) {
  static const std::regex kPattern(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");
  return std::regex_match(text.begin(), text.end(), kPattern);
}

std::int64_t parse_timestamp_ms(std::string_view text) {
  if (!is_rfc3339_ms(text)) {
    throw std::runtime_error("not an RFC 3339 UTC timestamp with milliseconds: " +
                             std::string(text));
  }
  const std::string s(text);
  std::tm tm{};
  tm.tm_year = std::stoi(s.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(s.substr(5, 2)) - 1;
  tm.tm_mday = std::stoi(s.substr(8, 2));
  tm.tm_hour = std::stoi(s.substr(11, 2));
  tm.tm_min = std::stoi(s.substr(14, 2));
  tm.tm_sec = std::stoi(s.substr(17, 2));
  const std::int64_t millis = std::stoi(s.substr(20, 3));
  return static_cast<std::int64_t>(timegm(&tm)) * 1000 + millis;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace test_support
