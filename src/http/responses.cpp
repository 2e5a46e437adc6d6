#include "http/responses.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>

namespace ps::http {

namespace bhttp = boost::beast::http;
namespace json = boost::json;
using bhttp::status;

Response make_response(status s, unsigned version, bool keep_alive, std::string body,
                       std::string_view content_type) {
  Response res{s, version};
  res.set(bhttp::field::content_type, content_type);
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response json_response(const Request& req, status s, const json::value& v) {
  return make_response(s, req.version(), req.keep_alive(), json::serialize(v), kJson);
}

Response problem_response(const Problem& p, unsigned version, bool keep_alive) {
  auto res =
      make_response(p.status, version, keep_alive, json::serialize(p.to_json()), kProblemJson);
  return res;
}

Response problem(const Request& req, const Problem& p) {
  return problem_response(p, req.version(), req.keep_alive());
}

Problem simple_problem(status s, std::string slug, std::string title, std::string detail) {
  return Problem{.status = s,
                 .slug = std::move(slug),
                 .title = std::move(title),
                 .detail = std::move(detail),
                 .errors = {},
                 .extra = {}};
}

Problem failure_problem(app::Failure f) {
  switch (f) {
    case app::Failure::account_not_found:
      return not_found("no account with this account_id");
    case app::Failure::payment_not_found:
      return not_found("no payment with this money_movement_id");
    case app::Failure::overflow:
      return validation_problem({{"amount_cents", "would overflow the account's balance"}});
    case app::Failure::idempotency_key_reused:
      return simple_problem(status::unprocessable_entity, "idempotency-key-reused",
                            "Idempotency-Key reused with a different request",
                            "this Idempotency-Key was first used with another request body");
    case app::Failure::idempotency_key_in_use:
      return simple_problem(status::conflict, "idempotency-key-in-use",
                            "A request with this Idempotency-Key is in progress",
                            "retry after the first request has been answered");
    case app::Failure::callback_too_late:
      return simple_problem(status::conflict, "callback-too-late",
                            "The payment's settle window has closed",
                            "the callback arrived after settle_deadline; it was recorded and "
                            "changed nothing");
  }
  return simple_problem(status::internal_server_error, "internal", "Internal error", "");
}

std::map<std::string, std::string, std::less<>> query_params(boost::urls::params_view params) {
  std::map<std::string, std::string, std::less<>> out;
  for (const auto& p : params) out[p.key] = p.value;
  return out;
}

}  // namespace ps::http
