// POST /money_movement_request_callback.
#include "http/api.hpp"

#include <string>

#include "http/codec.hpp"
#include "http/requests.hpp"

namespace ps::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using bhttp::status;

asio::awaitable<Response> Api::callback(const Request& req, const asio::ip::address& peer) {
  if (!ctx_.callback_allow_list.allows(peer)) {
    co_return problem(req,
                      simple_problem(status::forbidden, "forbidden", "Callback source not allowed",
                                     peer.to_string() + " is not in CALLBACK_ALLOW_FROM"));
  }
  auto parsed = parse_callback_body(req.body());
  if (auto* p = std::get_if<Problem>(&parsed)) co_return problem(req, *p);
  const auto cb = std::get<CallbackRequest>(std::move(parsed));

  // The request has been read: the use case takes this moment as the callback's arrival.
  const auto outcome = co_await ctx_.commands.apply_callback(cb.money_movement_id, cb.input);
  if (const auto* f = std::get_if<app::Failure>(&outcome)) {
    if (*f == app::Failure::callback_too_late) {
      ctx_.metrics.callbacks_late.fetch_add(1, std::memory_order_relaxed);
    }
    co_return problem(req, failure_problem(*f));
  }
  ctx_.metrics.callbacks_applied.fetch_add(1, std::memory_order_relaxed);
  co_return json_response(req, status::created, payment_json(std::get<core::Payment>(outcome)));
}

}  // namespace ps::http
