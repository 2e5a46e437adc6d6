// The router: the endpoint match_route (routes.hpp) names to its handler, and every exception a
// handler lets out to its answer (503 overloaded or unavailable, 500 internal), counted in the
// metrics and logged by cause.
#include "http/api.hpp"

#include <spdlog/spdlog.h>
#include <boost/beast/http/field.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <string>

#include "app/errors.hpp"
#include "http/openapi_document.hpp"
#include "http/routes.hpp"

namespace ps::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using bhttp::status;

asio::awaitable<Response> Api::handle(const Request& req, const asio::ip::address& peer) {
  const auto started = std::chrono::steady_clock::now();
  Route route_id = Route::other;
  Response res;
  try {
    res = co_await route(req, peer, route_id);
  } catch (const app::Overloaded& e) {
    ctx_.metrics.overloaded.fetch_add(1, std::memory_order_relaxed);
    log_failure(req, route_id, 503, "overloaded", e.what());
    res = problem(
        req, simple_problem(status::service_unavailable, "overloaded", "The service is overloaded",
                            "the write queue is full; retry shortly"));
    res.set(bhttp::field::retry_after, "1");
  } catch (const app::Unavailable& e) {
    log_failure(req, route_id, 503, "store unavailable", e.what());
    res = problem(
        req, simple_problem(status::service_unavailable, "unavailable", "The store is unavailable",
                            "nothing was changed; retry later"));
    res.set(bhttp::field::retry_after, "1");
  } catch (const std::exception& e) {
    log_failure(req, route_id, 500, "internal error", e.what());
    res = problem(req, simple_problem(status::internal_server_error, "internal", "Internal error",
                                      "the request failed unexpectedly"));
  }
  ctx_.metrics.count(route_id, res.result_int(), started);
  co_return res;
}

// The client sees only "unavailable" or "internal"; the operator needs the cause. A failing disk
// or database fails every request alike, thousands a second, so each cause is logged at most
// once per second (RateLimitedLog), with the number of answers held back since its last line.
void Api::log_failure(const Request& req, Route route, unsigned status, std::string_view kind,
                      std::string_view cause) {
  const std::string key =
      std::to_string(status) + " " + std::string(kind) + ": " + std::string(cause);
  std::uint64_t suppressed = 0;
  if (!ctx_.failure_log.should_log(key, suppressed)) return;
  const auto method = req.method_string();
  const auto level =
      status == 503 && kind == "overloaded" ? spdlog::level::warn : spdlog::level::err;
  if (suppressed == 0) {
    spdlog::log(level, "{} {} answered {}", std::string_view(method.data(), method.size()),
                route_name(route), key);
  } else {
    spdlog::log(level, "{} {} answered {} ({} more like it since the last such line)",
                std::string_view(method.data(), method.size()), route_name(route), key, suppressed);
  }
}

asio::awaitable<Response> Api::route(const Request& req, const asio::ip::address& peer,
                                     Route& route) {
  const RouteMatch match = match_route(req.method(), req.target());
  route = match.route;
  switch (match.outcome) {
    case RouteMatch::Outcome::invalid_target:
      co_return problem(req, validation_problem({{"target", "is not a valid request target"}}));
    case RouteMatch::Outcome::method_not_allowed: {
      auto res = problem(
          req,
          simple_problem(status::method_not_allowed, "method-not-allowed", "Method not allowed",
                         std::string(req.method_string()) +
                             " is not allowed here; allowed: " + std::string(match.allow)));
      res.set(bhttp::field::allow, match.allow);
      co_return res;
    }
    case RouteMatch::Outcome::not_found:
      co_return problem(req, not_found("no endpoint at " + match.path));
    case RouteMatch::Outcome::endpoint:
      break;
  }
  switch (match.endpoint) {
    case Endpoint::payments_create:
      co_return co_await create_payment(req);
    case Endpoint::payments_list:
      co_return co_await list_payments(req, match.query);
    case Endpoint::payment_get:
      co_return co_await get_payment(req, match.id);
    case Endpoint::accounts_list:
      co_return co_await list_accounts(req, match.query);
    case Endpoint::accounts_create:
      co_return co_await open_account(req);
    case Endpoint::account_get:
      co_return co_await get_account(req, match.id);
    case Endpoint::recalculate:
      co_return co_await recalculate(req, match.query);
    case Endpoint::callback:
      co_return co_await callback(req, peer);
    case Endpoint::healthz:
      co_return json_response(req, status::ok, json::object{{"status", "ok"}});
    case Endpoint::readyz:
      co_return co_await ready(req);
    case Endpoint::metrics:
      co_return metrics(req);
    case Endpoint::schema_yaml:
    case Endpoint::schema_json: {
      const bool yaml = match.endpoint == Endpoint::schema_yaml;
      co_return make_response(status::ok, req.version(), req.keep_alive(),
                              std::string(yaml ? openapi_yaml() : openapi_json()),
                              yaml ? "application/yaml" : kJson);
    }
  }
  co_return problem(req, not_found("no endpoint at " + match.path));
}

}  // namespace ps::http
