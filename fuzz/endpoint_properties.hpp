#pragma once
// What each endpoint reads from a request (http/requests.hpp, the functions its handler calls),
// with the properties of what it accepts: every accepted value within the bounds of SPEC 2-3,
// and an accepted request written back out parses to the same values (round trip). Shared by
// fuzz_endpoint_requests (structured requests) and fuzz_http_request (requests as read off the
// wire).

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include <string>
#include <string_view>
#include <variant>

#include "core/delinquency.hpp"
#include "core/types.hpp"
#include "fuzz_support.hpp"
#include "http/codec.hpp"
#include "http/requests.hpp"
#include "http/routes.hpp"
#include "json_properties.hpp"

namespace ps::fuzz {

namespace json = boost::json;

inline bool is_id(std::int64_t id) {
  return id >= 1 && id <= core::kMaxMovementId;
}

// SPEC 3: a status token is `[a-z_]{1,32}`.
inline bool is_status_token(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  for (const char c : s) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return true;
}

// Code points of valid UTF-8 text (bytes that do not continue a sequence).
inline std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

// A JSON integer as the API reads amounts and ids: int64, or uint64 within int64.
inline std::optional<std::int64_t> json_integer(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v->get_uint64());
  }
  return std::nullopt;
}

// --- POST /payments ------------------------------------------------------------------------------

inline void check_idempotency_key(const http::Request& req) {
  const auto parsed = http::parse_idempotency_key(req);
  const auto it = req.find("Idempotency-Key");
  if (const auto* p = std::get_if<http::Problem>(&parsed)) {
    PS_FUZZ_CHECK(it != req.end(), "a request without the header refused");
    PS_FUZZ_CHECK(p->errors.size() == 1 && p->errors[0].field == "Idempotency-Key",
                  "the refusal names another field");
    return;
  }
  const auto& key = std::get<std::optional<std::string>>(parsed);
  PS_FUZZ_CHECK(key.has_value() == (it != req.end()), "the key's presence differs from the header");
  if (!key) return;
  PS_FUZZ_CHECK(*key == it->value(), "the key differs from the header " + quoted(*key));
  PS_FUZZ_CHECK(!key->empty() && key->size() <= 255, "key of " + std::to_string(key->size()));
  for (const char c : *key) {
    PS_FUZZ_CHECK(c >= 0x20 && c <= 0x7e,
                  "key with a byte that is not printable ASCII: " + quoted(*key));
  }
}

inline void check_payment_body(std::string_view body) {
  check_parse_object(body, http::parse_object(body));
  const auto parsed = http::parse_payment_body(body);

  // What SPEC 3 accepts, restated from the parsed object: amount_cents a non-zero JSON integer of
  // at most 10^12 cents either way, merchant_name 1..200 characters, account_id (optional, 1 when
  // absent) a positive integer below 2^53.
  const auto object = http::parse_object(body);
  if (const auto* o = std::get_if<json::object>(&object)) {
    const auto amount = json_integer(o->if_contains("amount_cents"));
    const bool amount_ok = amount && *amount != 0 && *amount >= -core::kMaxAmountCents &&
                           *amount <= core::kMaxAmountCents;
    const auto* name = o->if_contains("merchant_name");
    const bool name_ok = name != nullptr && name->is_string() &&
                         code_points(name->get_string()) >= 1 &&
                         code_points(name->get_string()) <= 200;
    const auto* account = o->if_contains("account_id");
    const auto account_id = json_integer(account);
    const bool account_ok = account == nullptr || (account_id && is_id(*account_id));
    const bool expected = amount_ok && name_ok && account_ok;
    PS_FUZZ_CHECK(std::holds_alternative<http::PaymentRequest>(parsed) == expected,
                  std::string(expected ? "refused" : "accepted") + " payment " + quoted(body));
  } else {
    PS_FUZZ_CHECK(std::holds_alternative<http::Problem>(parsed),
                  "payment accepted from a body parse_object refuses: " + quoted(body));
  }

  const auto* r = std::get_if<http::PaymentRequest>(&parsed);
  if (r == nullptr) return;
  PS_FUZZ_CHECK(is_id(r->account_id), "account_id " + std::to_string(r->account_id));
  PS_FUZZ_CHECK(r->amount_cents != 0 && r->amount_cents >= -core::kMaxAmountCents &&
                    r->amount_cents <= core::kMaxAmountCents,
                "amount_cents " + std::to_string(r->amount_cents));
  PS_FUZZ_CHECK(is_valid_utf8(r->merchant_name),
                "merchant_name not UTF-8 " + quoted(r->merchant_name));
  const auto chars = code_points(r->merchant_name);
  PS_FUZZ_CHECK(chars >= 1 && chars <= 200, "merchant_name of " + std::to_string(chars));

  // Round trip: the accepted values, written as a body, read back the same.
  const std::string again = json::serialize(json::object{{"account_id", r->account_id},
                                                         {"amount_cents", r->amount_cents},
                                                         {"merchant_name", r->merchant_name}});
  const auto reparsed = http::parse_payment_body(again);
  const auto* back = std::get_if<http::PaymentRequest>(&reparsed);
  PS_FUZZ_CHECK(back != nullptr && back->account_id == r->account_id &&
                    back->amount_cents == r->amount_cents &&
                    back->merchant_name == r->merchant_name,
                "round trip of " + quoted(again));
}

// --- POST /money_movement_request_callback
// ---------------------------------------------------------

inline void check_callback_body(std::string_view body) {
  check_parse_object(body, http::parse_object(body));
  const auto parsed = http::parse_callback_body(body);
  const auto* r = std::get_if<http::CallbackRequest>(&parsed);
  if (r == nullptr) return;
  PS_FUZZ_CHECK(is_id(r->money_movement_id), "id " + std::to_string(r->money_movement_id));
  PS_FUZZ_CHECK(r->input.amount_cents >= -core::kMaxAmountCents &&
                    r->input.amount_cents <= core::kMaxAmountCents,
                "amount_cents " + std::to_string(r->input.amount_cents));
  // SPEC 3: a missing (or null) status keeps the previous one; any other is a token.
  const auto object = std::get<json::object>(http::parse_object(body));
  const auto* status = object.if_contains("status");
  PS_FUZZ_CHECK(r->input.status.has_value() == (status != nullptr && !status->is_null()),
                "status presence differs from the body " + quoted(body));
  if (r->input.status) {
    PS_FUZZ_CHECK(is_status_token(*r->input.status), "status " + quoted(*r->input.status));
  }

  // Round trip, with the id once as a number and once as a string of digits.
  for (const bool id_as_string : {false, true}) {
    json::object o{{"amount_cents", r->input.amount_cents}};
    if (id_as_string) {
      o["money_movement_id"] = std::to_string(r->money_movement_id);
    } else {
      o["money_movement_id"] = r->money_movement_id;
    }
    if (r->input.status) o["status"] = *r->input.status;
    const std::string again = json::serialize(o);
    const auto reparsed = http::parse_callback_body(again);
    const auto* back = std::get_if<http::CallbackRequest>(&reparsed);
    PS_FUZZ_CHECK(back != nullptr && back->money_movement_id == r->money_movement_id &&
                      back->input.amount_cents == r->input.amount_cents &&
                      back->input.status == r->input.status,
                  "round trip of " + quoted(again));
  }
}

// --- GET /payments, GET /accounts, ids, recalculate ---------------------------------------------

inline void check_payment_query(boost::urls::params_view query) {
  const auto parsed = http::parse_payment_query(query);
  const auto* q = std::get_if<app::PaymentQuery>(&parsed);
  if (q == nullptr) return;
  PS_FUZZ_CHECK(q->limit >= 1 && q->limit <= 1000, "limit " + std::to_string(q->limit));
  PS_FUZZ_CHECK(!q->account_id || is_id(*q->account_id), "account_id");
  PS_FUZZ_CHECK(!q->before_id || is_id(*q->before_id), "cursor");
  PS_FUZZ_CHECK(!q->status || is_status_token(*q->status), "status " + quoted(*q->status));

  // Round trip through a query string.
  boost::urls::url u("/payments");
  if (q->account_id) u.params().append({"account_id", std::to_string(*q->account_id)});
  if (q->status) u.params().append({"status", *q->status});
  u.params().append({"limit", std::to_string(q->limit)});
  if (q->before_id) u.params().append({"cursor", std::to_string(*q->before_id)});
  const auto reparsed = http::parse_payment_query(u.params());
  const auto* back = std::get_if<app::PaymentQuery>(&reparsed);
  PS_FUZZ_CHECK(back != nullptr && back->account_id == q->account_id && back->status == q->status &&
                    back->limit == q->limit && back->before_id == q->before_id,
                "round trip of " + quoted(u.buffer()));
}

// GET /accounts and recalculate's answer: a page, whose Link names it again exactly.
inline void check_account_query(boost::urls::params_view query) {
  const auto parsed = http::parse_account_query(query);
  const auto* q = std::get_if<app::AccountQuery>(&parsed);
  if (q == nullptr) return;
  PS_FUZZ_CHECK(q->limit >= 1 && q->limit <= 1000, "limit " + std::to_string(q->limit));
  PS_FUZZ_CHECK(q->after == 0 || is_id(q->after), "cursor " + std::to_string(q->after));

  boost::urls::url u("/accounts");
  u.params().append({"limit", std::to_string(q->limit)});
  if (q->after != 0) u.params().append({"cursor", std::to_string(q->after)});
  const auto reparsed = http::parse_account_query(u.params());
  const auto* back = std::get_if<app::AccountQuery>(&reparsed);
  PS_FUZZ_CHECK(back != nullptr && *back == *q, "round trip of " + quoted(u.buffer()));
}

template <class Id>
void check_path_id(std::string_view segment, const std::variant<Id, http::Problem>& parsed,
                   const std::variant<Id, http::Problem>& reparsed_from_text) {
  const auto* id = std::get_if<Id>(&parsed);
  if (id == nullptr) return;
  PS_FUZZ_CHECK(is_id(*id), "id " + std::to_string(*id) + " from " + quoted(segment));
  for (const char c : segment) PS_FUZZ_CHECK(c >= '0' && c <= '9', "id from " + quoted(segment));
  const auto* back = std::get_if<Id>(&reparsed_from_text);
  PS_FUZZ_CHECK(back != nullptr && *back == *id, "round trip of id " + std::to_string(*id));
}

inline void check_delinquency_window(boost::urls::params_view query, std::string_view body) {
  if (!body.empty()) check_parse_object(body, http::parse_object(body));
  const auto parsed = http::parse_delinquency_window(query, body);
  if (const auto* w = std::get_if<std::int64_t>(&parsed)) {
    PS_FUZZ_CHECK(*w >= 0 && *w <= core::kMaxDelinquencyWindowSeconds,
                  "window " + std::to_string(*w));
  }
}

// --- one request --------------------------------------------------------------------------------

// Routes `req` as the router does and reads it as its endpoint's handler does.
inline void check_request(const http::Request& req) {
  const http::RouteMatch m = http::match_route(req.method(), req.target());
  if (m.outcome == http::RouteMatch::Outcome::method_not_allowed) {
    PS_FUZZ_CHECK(!m.allow.empty(), "405 without Allow");
  }
  if (m.outcome != http::RouteMatch::Outcome::endpoint) return;
  switch (m.endpoint) {
    case http::Endpoint::payments_create:
      check_idempotency_key(req);
      check_payment_body(req.body());
      break;
    case http::Endpoint::payments_list:
      check_payment_query(m.query);
      break;
    case http::Endpoint::payment_get: {
      const auto id = http::parse_payment_id(m.id);
      const auto* ok = std::get_if<core::MovementId>(&id);
      check_path_id<core::MovementId>(m.id, id,
                                      http::parse_payment_id(ok ? std::to_string(*ok) : ""));
      break;
    }
    case http::Endpoint::account_get: {
      const auto id = http::parse_account_id(m.id);
      const auto* ok = std::get_if<core::AccountId>(&id);
      check_path_id<core::AccountId>(m.id, id,
                                     http::parse_account_id(ok ? std::to_string(*ok) : ""));
      break;
    }
    case http::Endpoint::recalculate:
      check_delinquency_window(m.query, req.body());
      check_account_query(m.query);
      break;
    case http::Endpoint::accounts_list:
      check_account_query(m.query);
      break;
    case http::Endpoint::callback:
      check_callback_body(req.body());
      break;
    case http::Endpoint::accounts_create:
    case http::Endpoint::healthz:
    case http::Endpoint::readyz:
    case http::Endpoint::metrics:
    case http::Endpoint::schema_yaml:
    case http::Endpoint::schema_json:
      break;  // nothing read from the request beyond its route
  }
}

}  // namespace ps::fuzz
