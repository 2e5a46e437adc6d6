// GET /readyz and GET /metrics (GET /healthz is answered by the router).
#include "http/api.hpp"

#include <boost/json/object.hpp>

#include <exception>
#include <string>

namespace ps::http {

namespace asio = boost::asio;
namespace json = boost::json;
using boost::beast::http::status;

// Ready = the writer can write (its last write, or its probe since, succeeded; and it has not
// stopped for good) AND the store answers reads. A service whose every write fails is not ready,
// even though it still answers reads (issue 8).
asio::awaitable<Response> Api::ready(const Request& req) {
  const auto writer = ctx_.health.writer_readiness();
  if (!writer.ready) {
    co_return problem(req, simple_problem(status::service_unavailable, "unavailable", "Not ready",
                                          "writer: " + writer.detail));
  }
  try {
    co_await ctx_.queries.ping();
  } catch (const std::exception& e) {
    co_return problem(req, simple_problem(status::service_unavailable, "unavailable", "Not ready",
                                          std::string("store: ") + e.what()));
  }
  co_return json_response(req, status::ok, json::object{{"status", "ready"}});
}

Response Api::metrics(const Request& req) {
  return make_response(status::ok, req.version(), req.keep_alive(),
                       render_metrics(ctx_.metrics, ctx_.health.counters()),
                       "text/plain; version=0.0.4");
}

}  // namespace ps::http
