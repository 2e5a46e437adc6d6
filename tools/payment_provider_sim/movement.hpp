// The money-movement request the service sends to the provider, and its validation.
// Pure: JSON text in, a value or a list of field errors out.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/json/object.hpp>

namespace provider_sim {

inline constexpr std::size_t kMerchantNameMaxChars = 200;

struct MoneyMovement {
  std::uint64_t money_movement_id = 0;
  std::int64_t account_id = 0;
  std::int64_t amount_cents = 0;
  std::string merchant_name;
  std::int64_t time_to_settle_seconds = 0;

  bool operator==(const MoneyMovement&) const = default;
};

struct FieldError {
  std::string field;
  std::string message;
};

using ValidationErrors = std::vector<FieldError>;

// Parses and validates a request body. Integer fields must be JSON integers (not floats, not
// strings); unknown fields are ignored, as the provider's API allows.
std::variant<MoneyMovement, ValidationErrors> parse_money_movement(std::string_view body);

// {"type","title","status","detail","errors":[{"field","message"}]}, the body of a 400.
boost::json::object validation_problem(const ValidationErrors& errors);

// Number of UTF-8 code points in already-valid UTF-8 text.
std::size_t utf8_length(std::string_view text);

}  // namespace provider_sim
