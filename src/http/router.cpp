// The router: request target to handler, and every exception a handler lets out to its answer
// (503 overloaded or unavailable, 500 internal), counted in the metrics and logged by cause.
#include "http/api.hpp"

#include <spdlog/spdlog.h>
#include <boost/beast/http/field.hpp>
#include <boost/json/object.hpp>
#include <boost/url/parse.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "app/errors.hpp"
#include "http/openapi_document.hpp"

namespace ps::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using bhttp::status;

namespace {

// Splits "/a/b/" into {"a","b"}; the trailing slash is optional on every path (SPEC 3).
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    const std::size_t start = i;
    while (i < path.size() && path[i] != '/') ++i;
    if (i > start) out.push_back(path.substr(start, i - start));
  }
  return out;
}

}  // namespace

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
  const auto target = boost::urls::parse_origin_form(req.target());
  if (!target) {
    co_return problem(req, validation_problem({{"target", "is not a valid request target"}}));
  }
  const std::string path = target->path();
  const auto seg = segments(path);
  const auto query = target->params();
  const auto method = req.method();

  auto not_allowed = [&req](std::string_view allow) {
    auto res = problem(
        req, simple_problem(status::method_not_allowed, "method-not-allowed", "Method not allowed",
                            std::string(req.method_string()) +
                                " is not allowed here; allowed: " + std::string(allow)));
    res.set(bhttp::field::allow, allow);
    return res;
  };
  using bhttp::verb;

  if (seg.size() == 1 && seg[0] == "payments") {
    if (method == verb::post) {
      route = Route::payments_create;
      co_return co_await create_payment(req);
    }
    if (method == verb::get) {
      route = Route::payments_list;
      co_return co_await list_payments(req, query);
    }
    co_return not_allowed("GET, POST");
  }
  if (seg.size() == 2 && seg[0] == "payments") {
    route = Route::payment_get;
    if (method == verb::get) co_return co_await get_payment(req, seg[1]);
    co_return not_allowed("GET");
  }
  if (seg.size() == 1 && seg[0] == "accounts") {
    if (method == verb::get) {
      route = Route::accounts_list;
      co_return co_await list_accounts(req);
    }
    if (method == verb::post) {
      route = Route::accounts_create;
      co_return co_await open_account(req);
    }
    co_return not_allowed("GET, POST");
  }
  if (seg.size() == 2 && seg[0] == "accounts" && seg[1] == "recalculate") {
    route = Route::recalculate;
    if (method == verb::patch || method == verb::post) co_return co_await recalculate(req, query);
    co_return not_allowed("PATCH, POST");
  }
  if (seg.size() == 2 && seg[0] == "accounts") {
    route = Route::account_get;
    if (method == verb::get) co_return co_await get_account(req, seg[1]);
    co_return not_allowed("GET");
  }
  if (seg.size() == 1 && seg[0] == "money_movement_request_callback") {
    route = Route::callback;
    if (method == verb::post) co_return co_await callback(req, peer);
    co_return not_allowed("POST");
  }
  if (seg.size() == 1 && (seg[0] == "healthz" || seg[0] == "readyz")) {
    route = Route::health;
    if (method != verb::get) co_return not_allowed("GET");
    if (seg[0] == "readyz") co_return co_await ready(req);
    co_return json_response(req, status::ok, json::object{{"status", "ok"}});
  }
  if (seg.size() == 1 && seg[0] == "metrics") {
    route = Route::metrics;
    if (method != verb::get) co_return not_allowed("GET");
    co_return metrics(req);
  }
  if (seg.size() == 1 && (seg[0] == "schema" || seg[0] == "openapi.json")) {
    route = Route::schema;
    if (method != verb::get) co_return not_allowed("GET");
    const bool yaml = seg[0] == "schema";
    co_return make_response(status::ok, req.version(), req.keep_alive(),
                            std::string(yaml ? openapi_yaml() : openapi_json()),
                            yaml ? "application/yaml" : kJson);
  }
  co_return problem(req, not_found("no endpoint at " + path));
}

}  // namespace ps::http
