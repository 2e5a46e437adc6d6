#pragma once
// Routing and the endpoint handlers of SPEC section 3: HTTP in, use case call, HTTP out.
// No ledger rule lives here; handlers validate, call app/, and map results to status codes.
// router.cpp routes and maps what a handler throws to its answer; handlers_payments.cpp,
// handlers_accounts.cpp, handlers_callbacks.cpp and handlers_health.cpp hold the handlers;
// responses.hpp builds answers, metrics.hpp renders GET /metrics.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/url/params_view.hpp>

#include <memory>
#include <string>
#include <string_view>

#include "app/accounts_view.hpp"
#include "app/commands.hpp"
#include "app/health.hpp"
#include "app/outcomes.hpp"
#include "app/queries.hpp"
#include "http/allow_list.hpp"
#include "http/metrics.hpp"
#include "http/problem.hpp"
#include "http/responses.hpp"
#include "util/rate_limited_log.hpp"

namespace ps::http {

// Shared by every I/O thread.
// Handlers see app/ only through its use cases and plain values (commands, queries, health):
// no store type reaches src/http (cmake/check_layers.cmake enforces it).
struct ApiContext {
  app::Commands& commands;
  app::Queries& queries;
  // The committed accounts in memory, the fast path of GET /accounts; nullptr when the store is
  // shared by several instances (PostgreSQL), whose accounts are read from it on every request.
  app::AccountsView* accounts;
  const app::Health& health;
  Metrics& metrics;
  AllowList callback_allow_list;
  // 500 and 503 answers are logged with their cause, at most once per cause per second.
  util::RateLimitedLog failure_log{};
};

// The answer to POST /payments for a recorded payment and the provider's answer: 201 accepted,
// 502 rejected, 202 unknown. Also what an idempotency key replays.
app::Replay render_payment_created(const core::Payment& p, const app::ProviderAnswer& answer);

class Api {
 public:
  // `flow`: this I/O thread's PaymentFlow, which POST /payments runs on (app::Commands).
  Api(ApiContext& context, app::PaymentFlow& flow) : ctx_(context), flow_(flow) {}

  // Coroutine parameters are references (see PaymentFlow::create); the caller keeps them alive.
  boost::asio::awaitable<Response> handle(const Request& req, const boost::asio::ip::address& peer);

  // The hottest read, GET /accounts over HTTP/1.1 keep-alive, as the complete answer on the
  // wire (status line, headers, body): rendered once per snapshot version per thread, so the
  // request costs no routing, no allocation and no serializer. The same bytes `handle` would
  // send. nullptr for every other request (and while draining): use `handle`.
  std::shared_ptr<const std::string> prerendered(const Request& req, bool draining);

 private:
  // GET /accounts (its first page, the default) of the current snapshot: the JSON body, the
  // cursor of the next page, and the whole HTTP/1.1 keep-alive answer for `prerendered`.
  struct AccountsRendering {
    const Api* owner = nullptr;
    std::uint64_t version = 0;
    std::string body;
    std::optional<core::AccountId> next_cursor;
    std::shared_ptr<const std::string> wire;
  };
  const AccountsRendering& accounts_rendering();
  // The page of accounts `query` asks for, as read now (GET /accounts, and recalculate's answer).
  boost::asio::awaitable<Response> accounts_page(const Request& req,
                                                 const app::AccountQuery& query);

  boost::asio::awaitable<Response> route(const Request& req, const boost::asio::ip::address& peer,
                                         Route& route);

  boost::asio::awaitable<Response> create_payment(const Request& req);
  boost::asio::awaitable<Response> list_payments(const Request& req,
                                                 boost::urls::params_view query);
  boost::asio::awaitable<Response> get_payment(const Request& req, std::string_view id);
  boost::asio::awaitable<Response> list_accounts(const Request& req,
                                                 boost::urls::params_view query);
  boost::asio::awaitable<Response> open_account(const Request& req);
  boost::asio::awaitable<Response> get_account(const Request& req, std::string_view id);
  boost::asio::awaitable<Response> recalculate(const Request& req, boost::urls::params_view query);
  boost::asio::awaitable<Response> callback(const Request& req,
                                            const boost::asio::ip::address& peer);
  boost::asio::awaitable<Response> ready(const Request& req);
  Response metrics(const Request& req);
  void log_failure(const Request& req, Route route, unsigned status, std::string_view kind,
                   std::string_view cause);

  ApiContext& ctx_;
  app::PaymentFlow& flow_;
};

}  // namespace ps::http
