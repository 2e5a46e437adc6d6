#pragma once
// Routing as a pure function: a request's method and target to the endpoint that answers it, or
// to the refusal (400 invalid target, 405 with the methods allowed, 404). The router (router.cpp)
// calls the endpoint's handler; the fuzzers (fuzz/) call this with any bytes.

#include <boost/beast/http/verb.hpp>
#include <boost/url/params_view.hpp>

#include <string>
#include <string_view>

#include "http/metrics.hpp"

namespace ps::http {

enum class Endpoint {
  payments_create,  // POST /payments
  payments_list,    // GET /payments
  payment_get,      // GET /payments/{id}
  accounts_list,    // GET /accounts
  accounts_create,  // POST /accounts
  account_get,      // GET /accounts/{id}
  recalculate,      // PATCH or POST /accounts/recalculate
  callback,         // POST /money_movement_request_callback
  healthz,          // GET /healthz
  readyz,           // GET /readyz
  metrics,          // GET /metrics
  schema_yaml,      // GET /schema
  schema_json,      // GET /openapi.json
};

struct RouteMatch {
  enum class Outcome {
    endpoint,            // `endpoint` answers
    invalid_target,      // 400: the target is not an origin-form URI
    method_not_allowed,  // 405 with `allow`
    not_found,           // 404 naming `path`
  };
  Outcome outcome = Outcome::not_found;
  Route route = Route::other;  // what the answer is counted as in /metrics
  Endpoint endpoint = Endpoint::healthz;
  std::string_view allow;  // method_not_allowed: the Allow header's value
  std::string path;        // the decoded path
  std::string id;          // payment_get, account_get: the {id} segment, decoded, not validated
  boost::urls::params_view query;  // a view into the target given to match_route
};

// `target` must outlive the result's `query`. Every path also with a trailing slash (SPEC 3).
RouteMatch match_route(boost::beast::http::verb method, std::string_view target);

}  // namespace ps::http
