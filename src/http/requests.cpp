#include "http/requests.hpp"

#include <boost/json/object.hpp>

#include <utility>
#include <vector>

#include "core/delinquency.hpp"

namespace ps::http {

namespace json = boost::json;

std::variant<std::optional<std::string>, Problem> parse_idempotency_key(const Request& req) {
  const auto it = req.find("Idempotency-Key");
  if (it == req.end()) return std::optional<std::string>();
  const std::string_view value = it->value();
  bool printable = true;
  for (const char c : value) printable = printable && c >= 0x20 && c <= 0x7e;
  if (value.empty() || value.size() > kMaxIdempotencyKeyChars || !printable) {
    return validation_problem({{"Idempotency-Key", "must be 1 to 255 printable ASCII characters"}});
  }
  return std::optional<std::string>(value);
}

std::variant<PaymentRequest, Problem> parse_payment_body(std::string_view body) {
  auto parsed = parse_object(body);
  if (auto* p = std::get_if<Problem>(&parsed)) return std::move(*p);
  return parse_payment_request(std::get<json::object>(parsed));
}

namespace {

// The paging parameters GET /payments and GET /accounts share: `limit` (1..1000) and `cursor`
// (an id this API returned). Each is left as it is when absent.
template <class Params>
void parse_page(const Params& params, int& limit, std::optional<std::int64_t>& cursor,
                std::vector<FieldError>& errors) {
  if (const auto it = params.find("limit"); it != params.end()) {
    const auto parsed = parse_bounded(it->second, kMaxPageSize);
    if (parsed && *parsed >= 1) {
      limit = static_cast<int>(*parsed);
    } else {
      errors.push_back({"limit", "must be an integer from 1 to 1000"});
    }
  }
  if (const auto it = params.find("cursor"); it != params.end()) {
    if (const auto id = parse_id(it->second)) {
      cursor = *id;
    } else {
      errors.push_back({"cursor", "is not a cursor this API returned"});
    }
  }
}

}  // namespace

std::variant<app::PaymentQuery, Problem> parse_payment_query(boost::urls::params_view query) {
  const auto params = query_params(query);
  app::PaymentQuery filter;
  filter.limit = static_cast<int>(kDefaultPageSize);
  std::vector<FieldError> errors;
  if (const auto it = params.find("account_id"); it != params.end()) {
    if (const auto id = parse_id(it->second)) {
      filter.account_id = *id;
    } else {
      errors.push_back({"account_id", "must be a positive integer"});
    }
  }
  if (const auto it = params.find("status"); it != params.end()) {
    if (core::is_valid_status_token(it->second)) {
      filter.status = it->second;
    } else {
      errors.push_back({"status", "must be a lower-case token of 1 to 32 letters or '_'"});
    }
  }
  parse_page(params, filter.limit, filter.before_id, errors);
  if (!errors.empty()) return validation_problem(std::move(errors));
  return filter;
}

std::variant<app::AccountQuery, Problem> parse_account_query(boost::urls::params_view query) {
  app::AccountQuery page{.after = 0, .limit = static_cast<int>(kDefaultPageSize)};
  std::optional<std::int64_t> cursor;
  std::vector<FieldError> errors;
  parse_page(query_params(query), page.limit, cursor, errors);
  if (!errors.empty()) return validation_problem(std::move(errors));
  page.after = cursor.value_or(0);
  return page;
}

std::variant<core::MovementId, Problem> parse_payment_id(std::string_view segment) {
  if (const auto id = parse_id(segment)) return *id;
  return validation_problem({{"money_movement_id", "must be a positive integer below 2^53"}});
}

std::variant<core::AccountId, Problem> parse_account_id(std::string_view segment) {
  if (const auto id = parse_id(segment)) return *id;
  return validation_problem({{"account_id", "must be a positive integer"}});
}

std::variant<std::int64_t, Problem> parse_delinquency_window(boost::urls::params_view query,
                                                             std::string_view body) {
  constexpr std::string_view kField = "time_to_delinquency_seconds";
  const std::string rule = "must be an integer from 0 to 315360000 (seconds)";
  // The query parameter wins over the body (docs/decisions.md).
  const auto params = query_params(query);
  if (const auto it = params.find(kField); it != params.end()) {
    const auto v = parse_bounded(it->second, core::kMaxDelinquencyWindowSeconds);
    if (!v) return validation_problem({{std::string(kField), rule}});
    return *v;
  }
  if (body.empty()) return kDefaultDelinquencyWindowSeconds;
  auto parsed = parse_object(body);
  if (auto* p = std::get_if<Problem>(&parsed)) return std::move(*p);
  if (const auto* v = std::get<json::object>(parsed).if_contains(kField)) {
    if (!v->is_int64() || v->get_int64() < 0 ||
        v->get_int64() > core::kMaxDelinquencyWindowSeconds) {
      return validation_problem({{std::string(kField), rule}});
    }
    return v->get_int64();
  }
  return kDefaultDelinquencyWindowSeconds;
}

std::variant<CallbackRequest, Problem> parse_callback_body(std::string_view body) {
  auto parsed = parse_object(body);
  if (auto* p = std::get_if<Problem>(&parsed)) return std::move(*p);
  return parse_callback(std::get<json::object>(parsed));
}

}  // namespace ps::http
