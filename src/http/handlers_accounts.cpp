// GET /accounts (its first page also prerendered), POST /accounts, GET /accounts/{id}, PATCH (or
// POST) /accounts/recalculate.
#include "http/api.hpp"

#include <boost/beast/http/write.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "http/codec.hpp"
#include "http/requests.hpp"

namespace ps::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using bhttp::status;

namespace {

constexpr app::AccountQuery kFirstPage{.after = 0, .limit = static_cast<int>(kDefaultPageSize)};

// The page of `query` from a snapshot: reads one account more than the page, to know whether
// more follow.
app::AccountPage page_of(const app::AccountMap& accounts, const app::AccountQuery& query) {
  const auto wanted = static_cast<std::size_t>(query.limit) + 1;
  std::vector<core::Account> read;
  read.reserve(wanted);
  accounts.for_each_from(query.after + 1, [&](const core::Account& a) {
    read.push_back(a);
    return read.size() < wanted;
  });
  return app::account_page(std::move(read), query);
}

std::string render(const std::vector<core::Account>& accounts) {
  json::array list;
  list.reserve(accounts.size());
  for (const auto& a : accounts) list.push_back(account_json(a));
  return json::serialize(list);
}

// The body stays a JSON array (the brief's clients read one); the next page is in a Link header
// (RFC 8288), absent on the last page.
Response page_response(unsigned version, bool keep_alive, std::string body,
                       const std::optional<core::AccountId>& next_cursor, int limit) {
  auto res = make_response(status::ok, version, keep_alive, std::move(body), kJson);
  if (next_cursor) {
    res.set(bhttp::field::link, "</accounts?limit=" + std::to_string(limit) +
                                    "&cursor=" + std::to_string(*next_cursor) + ">; rel=\"next\"");
  }
  return res;
}

}  // namespace

const Api::AccountsRendering& Api::accounts_rendering() {
  // Per I/O thread: no lock, no sharing. Replaced, never mutated, so a write still sending the
  // previous version keeps its bytes alive through its own shared_ptr. One page: its cost does
  // not grow with the number of accounts.
  thread_local AccountsRendering cache;
  const auto version = ctx_.accounts->version();
  if (cache.owner != this || cache.version != version || !cache.wire) {
    const auto snapshot = ctx_.accounts->snapshot();
    auto page = page_of(snapshot->accounts, kFirstPage);
    cache.body = render(page.accounts);
    cache.next_cursor = page.next_cursor;
    std::ostringstream wire;
    wire << page_response(11, true, cache.body, cache.next_cursor, kFirstPage.limit);  // Beast's
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

asio::awaitable<Response> Api::list_accounts(const Request& req, boost::urls::params_view query) {
  const auto parsed = parse_account_query(query);
  if (const auto* p = std::get_if<Problem>(&parsed)) co_return problem(req, *p);
  co_return co_await accounts_page(req, std::get<app::AccountQuery>(parsed));
}

asio::awaitable<Response> Api::accounts_page(const Request& req, const app::AccountQuery& query) {
  if (ctx_.accounts == nullptr) {
    const auto page = co_await ctx_.queries.list_accounts(query);
    co_return page_response(req.version(), req.keep_alive(), render(page->accounts),
                            page->next_cursor, query.limit);
  }
  if (query == kFirstPage) {
    const auto& cached = accounts_rendering();
    co_return page_response(req.version(), req.keep_alive(), cached.body, cached.next_cursor,
                            query.limit);
  }
  const auto page = page_of(ctx_.accounts->snapshot()->accounts, query);
  co_return page_response(req.version(), req.keep_alive(), render(page.accounts), page.next_cursor,
                          query.limit);
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
  const auto page = parse_account_query(query);
  if (const auto* p = std::get_if<Problem>(&page)) co_return problem(req, *p);
  co_await ctx_.commands.recalculate(window);
  co_return co_await accounts_page(req, std::get<app::AccountQuery>(page));
}

}  // namespace ps::http
