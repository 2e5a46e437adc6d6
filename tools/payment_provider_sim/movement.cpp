#include "movement.hpp"

#include <cstdlib>
#include <optional>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "script.hpp"

namespace provider_sim {
namespace {

// Reads a JSON integer as int64. Doubles (even 5.0) and strings are refused: money and ids
// must never pass through floating point.
std::optional<std::int64_t> as_int64(const boost::json::value& value) {
  if (value.is_int64()) return value.get_int64();
  // Boost.JSON stores only integers above INT64_MAX as uint64; those are out of every range.
  return std::nullopt;
}

std::optional<std::int64_t> require_int(const boost::json::object& body, const char* field,
                                        ValidationErrors& errors) {
  const auto* value = body.if_contains(field);
  if (value == nullptr || value->is_null()) {
    errors.push_back({field, "is required"});
    return std::nullopt;
  }
  if (!value->is_int64() && !value->is_uint64()) {
    errors.push_back({field, "must be an integer"});
    return std::nullopt;
  }
  auto number = as_int64(*value);
  if (!number) errors.push_back({field, "is out of range"});
  return number;
}

}  // namespace

std::size_t utf8_length(std::string_view text) {
  std::size_t count = 0;
  for (const char byte : text) {
    // Continuation bytes look like 10xxxxxx; every other byte starts a code point.
    if ((static_cast<unsigned char>(byte) & 0xC0U) != 0x80U) ++count;
  }
  return count;
}

std::variant<MoneyMovement, ValidationErrors> parse_money_movement(std::string_view body) {
  ValidationErrors errors;
  boost::system::error_code ec;
  // Default options: strict JSON, invalid UTF-8 rejected, nesting depth limited to 32.
  boost::json::value root = boost::json::parse(body, ec);
  if (ec) {
    errors.push_back({"body", "is not valid JSON: " + ec.message()});
    return errors;
  }
  const auto* object = root.if_object();
  if (object == nullptr) {
    errors.push_back({"body", "must be a JSON object"});
    return errors;
  }

  MoneyMovement movement;
  if (auto id = require_int(*object, "money_movement_id", errors)) {
    if (*id <= 0 || static_cast<std::uint64_t>(*id) > kMaxMoneyMovementId) {
      errors.push_back({"money_movement_id", "must be a positive integer below 2^53"});
    } else {
      movement.money_movement_id = static_cast<std::uint64_t>(*id);
    }
  }
  if (auto account = require_int(*object, "account_id", errors)) {
    if (*account <= 0) {
      errors.push_back({"account_id", "must be a positive integer"});
    } else {
      movement.account_id = *account;
    }
  }
  if (auto amount = require_int(*object, "amount_cents", errors)) {
    if (*amount == 0) {
      errors.push_back({"amount_cents", "must not be zero"});
    } else if (*amount < -kMaxAbsAmountCents || *amount > kMaxAbsAmountCents) {
      errors.push_back({"amount_cents", "must be at most 10^12 in absolute value"});
    } else {
      movement.amount_cents = *amount;
    }
  }
  if (auto ttl = require_int(*object, "time_to_settle_seconds", errors)) {
    if (*ttl < 1 || *ttl > kMaxTimeToSettleSeconds) {
      errors.push_back({"time_to_settle_seconds", "must be an integer in 1..3600"});
    } else {
      movement.time_to_settle_seconds = *ttl;
    }
  }
  const auto* name = object->if_contains("merchant_name");
  if (name == nullptr || name->is_null()) {
    errors.push_back({"merchant_name", "is required"});
  } else if (!name->is_string()) {
    errors.push_back({"merchant_name", "must be a string"});
  } else {
    const std::string_view text = name->get_string();
    const std::size_t length = utf8_length(text);
    if (length < 1 || length > kMerchantNameMaxChars) {
      errors.push_back({"merchant_name", "must be 1..200 characters"});
    } else {
      movement.merchant_name = std::string(text);
    }
  }

  if (!errors.empty()) return errors;
  return movement;
}

boost::json::object validation_problem(const ValidationErrors& errors) {
  boost::json::array items;
  for (const auto& error : errors) {
    items.push_back(boost::json::object{{"field", error.field}, {"message", error.message}});
  }
  return boost::json::object{{"type", "/problems/validation-error"},
                             {"title", "Invalid money movement"},
                             {"status", 400},
                             {"detail", "The request body failed validation."},
                             {"errors", std::move(items)}};
}

}  // namespace provider_sim
