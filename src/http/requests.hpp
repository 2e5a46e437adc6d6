#pragma once
// What each endpoint reads from its request, validated: pure functions from the parts of a
// request (headers, query, path segment, body) to the values a handler passes to app/, or the
// 400 problem. The handlers call these and nothing else to read a request, so the fuzzers
// (fuzz/) that call them with any bytes cover exactly what the service accepts.
// (POST /accounts reads nothing from its request; GET /accounts, the health, metrics and schema
// endpoints read only their route.)

#include <boost/url/params_view.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "app/queries.hpp"
#include "core/types.hpp"
#include "http/codec.hpp"
#include "http/problem.hpp"
#include "http/responses.hpp"

namespace ps::http {

// POST /payments: the optional Idempotency-Key header, 1..255 printable ASCII characters.
inline constexpr std::size_t kMaxIdempotencyKeyChars = 255;
std::variant<std::optional<std::string>, Problem> parse_idempotency_key(const Request& req);

// POST /payments: the body (parse_object, then parse_payment_request).
std::variant<PaymentRequest, Problem> parse_payment_body(std::string_view body);

// GET /payments: the filters account_id and status, limit (1..1000, default 100) and cursor.
inline constexpr std::int64_t kMaxPageSize = 1000;
inline constexpr std::int64_t kDefaultPageSize = 100;
std::variant<app::PaymentQuery, Problem> parse_payment_query(boost::urls::params_view query);

// GET /accounts (and the answer of recalculate): limit (1..1000, default 100) and cursor (the
// last account_id of the previous page).
std::variant<app::AccountQuery, Problem> parse_account_query(boost::urls::params_view query);

// GET /payments/{money_movement_id} and GET /accounts/{account_id}: the path segment.
std::variant<core::MovementId, Problem> parse_payment_id(std::string_view segment);
std::variant<core::AccountId, Problem> parse_account_id(std::string_view segment);

// PATCH (POST) /accounts/recalculate: time_to_delinquency_seconds from the query, else from the
// body if there is one, else the default; 0..core::kMaxDelinquencyWindowSeconds.
inline constexpr std::int64_t kDefaultDelinquencyWindowSeconds = 10;
std::variant<std::int64_t, Problem> parse_delinquency_window(boost::urls::params_view query,
                                                             std::string_view body);

// POST /money_movement_request_callback: the body (parse_object, then parse_callback).
std::variant<CallbackRequest, Problem> parse_callback_body(std::string_view body);

}  // namespace ps::http
