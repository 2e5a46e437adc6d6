// GET /accounts (also prerendered), POST /accounts, GET /accounts/{id}, PATCH (or POST)
// /accounts/recalculate.
#include "http/api.hpp"

#include <boost/beast/http/write.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <sstream>
#include <string>

#include "http/codec.hpp"
#include "http/requests.hpp"

namespace ps::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using bhttp::status;

const Api::AccountsRendering& Api::accounts_rendering() {
  // Per I/O thread: no lock, no sharing. Replaced, never mutated, so a write still sending the
  // previous version keeps its bytes alive through its own shared_ptr.
  thread_local AccountsRendering cache;
  const auto version = ctx_.accounts->version();
  if (cache.owner != this || cache.version != version || !cache.wire) {
    const auto snapshot = ctx_.accounts->snapshot();
    json::array list;
    list.reserve(snapshot->accounts.size());
    snapshot->accounts.for_each_from(0, [&](const core::Account& a) {
      list.push_back(account_json(a));
      return true;
    });
    cache.body = json::serialize(list);
    std::ostringstream wire;
    wire << make_response(status::ok, 11, true, cache.body, kJson);  // Beast's own serializer
    cache.wire = std::make_shared<const std::string>(std::move(wire).str());
    cache.version = snapshot->version;
    cache.owner = this;
  }
  return cache;
}

std::shared_ptr<const std::string> Api::prerendered(const Request& req, bool draining) {
  if (ctx_.accounts == nullptr || draining || req.method() != bhttp::verb::get ||
      req.target() != "/accounts" || req.version() != 11 || !req.keep_alive()) {
    return nullptr;
  }
  const auto started = std::chrono::steady_clock::now();
  auto wire = accounts_rendering().wire;
  ctx_.metrics.count(Route::accounts_list, 200, started);
  return wire;
}

asio::awaitable<Response> Api::list_accounts(const Request& req) {
  if (ctx_.accounts != nullptr) {
    co_return make_response(status::ok, req.version(), req.keep_alive(), accounts_rendering().body,
                            kJson);
  }
  const auto accounts = co_await ctx_.queries.list_accounts();
  json::array list;
  list.reserve(accounts->size());
  for (const auto& a : *accounts) list.push_back(account_json(a));
  co_return make_response(status::ok, req.version(), req.keep_alive(), json::serialize(list),
                          kJson);
}

asio::awaitable<Response> Api::open_account(const Request& req) {
  const auto account = co_await ctx_.commands.open_account();
  co_return json_response(req, status::created, account_json(account));
}

asio::awaitable<Response> Api::get_account(const Request& req, std::string_view id_text) {
  const auto parsed = parse_account_id(id_text);
  if (const auto* p = std::get_if<Problem>(&parsed)) co_return problem(req, *p);
  const core::AccountId id = std::get<core::AccountId>(parsed);
  std::optional<core::Account> account;
  if (ctx_.accounts != nullptr) {
    account = ctx_.accounts->find(id);
  } else {
    account = co_await ctx_.queries.find_account(id);
  }
  if (!account) co_return problem(req, not_found("no account with this account_id"));
  co_return json_response(req, status::ok, account_json(*account));
}

asio::awaitable<Response> Api::recalculate(const Request& req, boost::urls::params_view query) {
  const auto window_or_problem = parse_delinquency_window(query, req.body());
  if (const auto* p = std::get_if<Problem>(&window_or_problem)) co_return problem(req, *p);
  const std::int64_t window = std::get<std::int64_t>(window_or_problem);
  const auto accounts = co_await ctx_.commands.recalculate(window);
  json::array list;
  for (const auto& a : accounts) list.push_back(account_json(a));
  co_return json_response(req, status::ok, list);
}

}  // namespace ps::http
