#pragma once
// JSON <-> domain mapping: rendering payments and accounts, and validating every field that
// arrives from outside. Validation collects all field errors, so one 400 lists them all.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "app/queries.hpp"
#include "core/ledger.hpp"
#include "core/types.hpp"
#include "http/problem.hpp"

namespace ps::http {

// RFC 3339 UTC with milliseconds: 2026-11-26T02:50:00.123Z
std::string format_time(core::TimeMs t);

boost::json::object payment_json(const core::Payment& p);
boost::json::object account_json(const core::Account& a);
boost::json::object callback_json(const app::CallbackView& c);

// Parses a request body that must be a JSON object, nested at most kJsonMaxDepth levels (ours
// are flat; the bound keeps a hostile body from costing stack or time).
inline constexpr std::size_t kJsonMaxDepth = 8;
std::variant<boost::json::object, Problem> parse_object(std::string_view body);

// POST /payments body (account_id defaults to 1; see docs/decisions.md).
struct PaymentRequest {
  core::AccountId account_id = 1;
  core::Cents amount_cents = 0;
  std::string merchant_name;
};
std::variant<PaymentRequest, Problem> parse_payment_request(const boost::json::object& o);

struct CallbackRequest {
  core::MovementId money_movement_id = 0;
  core::CallbackInput input;
};
std::variant<CallbackRequest, Problem> parse_callback(const boost::json::object& o);

// A positive id below 2^53 written in decimal digits (path segments, query values, digit strings).
std::optional<std::int64_t> parse_id(std::string_view digits);

// A non-negative decimal integer no larger than `max`.
std::optional<std::int64_t> parse_bounded(std::string_view digits, std::int64_t max);

// Code points of a valid UTF-8 string.
std::size_t utf8_length(std::string_view s);

}  // namespace ps::http
