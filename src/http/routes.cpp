#include "http/routes.hpp"

#include <boost/url/parse.hpp>

#include <utility>
#include <vector>

namespace ps::http {

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

RouteMatch match_route(boost::beast::http::verb method, std::string_view target) {
  using boost::beast::http::verb;
  RouteMatch m;
  const auto parsed = boost::urls::parse_origin_form(target);
  if (!parsed) {
    m.outcome = RouteMatch::Outcome::invalid_target;
    return m;
  }
  m.path = parsed->path();
  m.query = parsed->params();
  const auto seg = segments(m.path);

  auto answer = [&m](Endpoint e) {
    m.outcome = RouteMatch::Outcome::endpoint;
    m.endpoint = e;
    return std::move(m);
  };
  auto not_allowed = [&m](std::string_view allow) {
    m.outcome = RouteMatch::Outcome::method_not_allowed;
    m.allow = allow;
    return std::move(m);
  };

  if (seg.size() == 1 && seg[0] == "payments") {
    if (method == verb::post) {
      m.route = Route::payments_create;
      return answer(Endpoint::payments_create);
    }
    if (method == verb::get) {
      m.route = Route::payments_list;
      return answer(Endpoint::payments_list);
    }
    return not_allowed("GET, POST");
  }
  if (seg.size() == 2 && seg[0] == "payments") {
    m.route = Route::payment_get;
    m.id = seg[1];
    if (method == verb::get) return answer(Endpoint::payment_get);
    return not_allowed("GET");
  }
  if (seg.size() == 1 && seg[0] == "accounts") {
    if (method == verb::get) {
      m.route = Route::accounts_list;
      return answer(Endpoint::accounts_list);
    }
    if (method == verb::post) {
      m.route = Route::accounts_create;
      return answer(Endpoint::accounts_create);
    }
    return not_allowed("GET, POST");
  }
  if (seg.size() == 2 && seg[0] == "accounts" && seg[1] == "recalculate") {
    m.route = Route::recalculate;
    if (method == verb::patch || method == verb::post) return answer(Endpoint::recalculate);
    return not_allowed("PATCH, POST");
  }
  if (seg.size() == 2 && seg[0] == "accounts") {
    m.route = Route::account_get;
    m.id = seg[1];
    if (method == verb::get) return answer(Endpoint::account_get);
    return not_allowed("GET");
  }
  if (seg.size() == 1 && seg[0] == "money_movement_request_callback") {
    m.route = Route::callback;
    if (method == verb::post) return answer(Endpoint::callback);
    return not_allowed("POST");
  }
  if (seg.size() == 1 && (seg[0] == "healthz" || seg[0] == "readyz")) {
    m.route = Route::health;
    if (method != verb::get) return not_allowed("GET");
    return answer(seg[0] == "readyz" ? Endpoint::readyz : Endpoint::healthz);
  }
  if (seg.size() == 1 && seg[0] == "metrics") {
    m.route = Route::metrics;
    if (method != verb::get) return not_allowed("GET");
    return answer(Endpoint::metrics);
  }
  if (seg.size() == 1 && (seg[0] == "schema" || seg[0] == "openapi.json")) {
    m.route = Route::schema;
    if (method != verb::get) return not_allowed("GET");
    return answer(seg[0] == "schema" ? Endpoint::schema_yaml : Endpoint::schema_json);
  }
  return m;  // not_found
}

}  // namespace ps::http
