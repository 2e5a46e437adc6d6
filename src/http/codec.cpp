#include "http/codec.hpp"

#include <boost/json/parse.hpp>

#include <charconv>
#include <ctime>

#include "core/money.hpp"

namespace ps::http {

namespace json = boost::json;

std::string format_time(core::TimeMs t) {
  const std::time_t seconds = static_cast<std::time_t>(t / 1000);
  const int millis = static_cast<int>(t % 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return out;
}

json::object payment_json(const core::Payment& p) {
  return json::object{
      {"money_movement_id", p.money_movement_id},
      {"account_id", p.account_id},
      {"amount_cents", p.amount_cents},
      {"original_amount_cents", p.original_amount_cents},
      {"merchant_name", p.merchant_name},
      {"status", p.status},
      {"created_at", format_time(p.created_at)},
      {"updated_at", format_time(p.updated_at)},
      {"settle_deadline", format_time(p.settle_deadline)},
      {"callbacks_applied", p.callbacks_applied},
  };
}

json::object account_json(const core::Account& a) {
  return json::object{
      {"account_id", a.account_id},
      {"created_at", format_time(a.created_at)},
      {"status", core::to_string(a.status)},
      {"balance", a.balance},
      {"settled_balance", a.settled_balance},
      {"balance_cents", a.balance},
      {"settled_balance_cents", a.settled_balance},
  };
}

json::object callback_json(const store::CallbackRecord& c) {
  json::object o{
      {"received_at", format_time(c.received_at)},
      {"amount_cents", c.amount_cents},
      {"status", nullptr},
      {"outcome", c.applied ? "applied" : "late"},
  };
  if (c.status) o["status"] = *c.status;
  return o;
}

std::variant<json::object, Problem> parse_object(std::string_view body) {
  std::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) {
    return validation_problem({{"body", "is not valid JSON: " + ec.message()}});
  }
  if (!v.is_object()) return validation_problem({{"body", "must be a JSON object"}});
  return std::move(v.as_object());
}

namespace {

// JSON integers only: 2500, not 2500.0 or "2500".
std::optional<std::int64_t> as_int64(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v.get_uint64());
  }
  return std::nullopt;
}

}  // namespace

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (const char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::optional<std::int64_t> parse_bounded(std::string_view digits, std::int64_t max) {
  if (digits.empty() || digits.size() > 19) return std::nullopt;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || value > max) {
    return std::nullopt;
  }
  return value;
}

std::optional<std::int64_t> parse_id(std::string_view digits) {
  const auto v = parse_bounded(digits, core::kMaxMovementId);
  if (!v || *v == 0) return std::nullopt;
  return v;
}

std::variant<PaymentRequest, Problem> parse_payment_request(const json::object& o) {
  std::vector<FieldError> errors;
  PaymentRequest r;

  if (const auto* v = o.if_contains("account_id")) {
    const auto id = as_int64(*v);
    if (!id || *id <= 0 || *id > core::kMaxMovementId) {
      errors.push_back({"account_id", "must be a positive integer"});
    } else {
      r.account_id = *id;
    }
  }

  if (const auto* v = o.if_contains("amount_cents"); v == nullptr) {
    errors.push_back({"amount_cents", "is required"});
  } else if (const auto amount = as_int64(*v); !amount) {
    errors.push_back({"amount_cents", "must be an integer number of cents"});
  } else if (!core::is_valid_payment_amount(*amount)) {
    errors.push_back({"amount_cents",
                      "must be non-zero with an absolute value of at most "
                      "1000000000000 cents"});
  } else {
    r.amount_cents = *amount;
  }

  if (const auto* v = o.if_contains("merchant_name"); v == nullptr) {
    errors.push_back({"merchant_name", "is required"});
  } else if (!v->is_string()) {
    errors.push_back({"merchant_name", "must be a string"});
  } else {
    const std::string_view name = v->get_string();
    const auto length = utf8_length(name);
    if (length == 0 || length > core::kMaxMerchantNameChars) {
      errors.push_back({"merchant_name", "must be 1 to 200 characters"});
    } else {
      r.merchant_name = std::string(name);
    }
  }

  if (!errors.empty()) return validation_problem(std::move(errors));
  return r;
}

std::variant<CallbackRequest, Problem> parse_callback(const json::object& o) {
  std::vector<FieldError> errors;
  CallbackRequest r;

  // The provider may send the id as a JSON integer or as a string of digits.
  if (const auto* v = o.if_contains("money_movement_id"); v == nullptr) {
    errors.push_back({"money_movement_id", "is required"});
  } else {
    std::optional<std::int64_t> id;
    if (v->is_string()) {
      id = parse_id(v->get_string());
    } else if (const auto n = as_int64(*v); n && *n > 0 && *n <= core::kMaxMovementId) {
      id = n;
    }
    if (!id) {
      errors.push_back({"money_movement_id",
                        "must be a positive integer below 2^53, as a "
                        "number or a string of digits"});
    } else {
      r.money_movement_id = *id;
    }
  }

  if (const auto* v = o.if_contains("amount_cents"); v == nullptr) {
    errors.push_back({"amount_cents", "is required"});
  } else if (const auto amount = as_int64(*v);
             !amount || !core::is_valid_callback_amount(*amount)) {
    errors.push_back({"amount_cents",
                      "must be an integer with an absolute value of at most "
                      "1000000000000 cents"});
  } else {
    r.input.amount_cents = *amount;
  }

  if (const auto* v = o.if_contains("status"); v != nullptr && !v->is_null()) {
    if (!v->is_string() || !core::is_valid_status_token(v->get_string())) {
      errors.push_back({"status", "must be a lower-case token of 1 to 32 letters or '_'"});
    } else {
      r.input.status = std::string(v->get_string());
    }
  }

  if (!errors.empty()) return validation_problem(std::move(errors));
  return r;
}

}  // namespace ps::http
