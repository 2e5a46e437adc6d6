#include "callback_client.hpp"

#include <algorithm>
#include <cassert>
#include <functional>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "config.hpp"

namespace provider_sim {
namespace {

namespace http = beast::http;
using tcp = asio::ip::tcp;

// Answers of the service are small; anything larger is treated as a broken answer.
constexpr std::size_t kMaxResponseBodyBytes = 1024 * 1024;

// Returns the permit when the request is over, whatever path it takes out of post().
class PermitGuard {
 public:
  explicit PermitGuard(std::function<void()> release) : release_(std::move(release)) {}
  PermitGuard(const PermitGuard&) = delete;
  PermitGuard& operator=(const PermitGuard&) = delete;
  ~PermitGuard() { release_(); }

 private:
  std::function<void()> release_;
};

}  // namespace

asio::awaitable<void> CallbackClient::Permits::acquire() {
  if (available_ > 0) {
    --available_;
    co_return;
  }
  // Shared ownership: shutdown() may drop the queue while this coroutine still waits.
  auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor,
                                                    asio::steady_timer::time_point::max());
  waiters_.push_back(timer);
  boost::system::error_code ignored;
  // Nothing runs on the strand between push_back and this wait, so release() can only cancel
  // a wait that is already pending: the permit is never lost.
  co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

void CallbackClient::Permits::release() {
  if (closed_) return;
  if (waiters_.empty()) {
    ++available_;
    assert(available_ <= kMaxConcurrentCallbacks);
    return;
  }
  auto next = std::move(waiters_.front());
  waiters_.pop_front();
  next->cancel();  // wakes the waiter, which now owns the permit
}

void CallbackClient::Permits::shutdown() {
  closed_ = true;
  waiters_.clear();
}

CallbackClient::CallbackClient(Strand strand)
    : strand_(std::move(strand)), permits_(kMaxConcurrentCallbacks) {}

void CallbackClient::shutdown() {
  closed_ = true;
  permits_.shutdown();
  idle_.clear();
  strand_.reset();
}

CallbackClient::ConnectionPtr CallbackClient::take_idle(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end() || it->second.empty()) return nullptr;
  ConnectionPtr connection = std::move(it->second.back());  // LIFO: the warmest connection
  it->second.pop_back();
  return connection;
}

void CallbackClient::give_back(const std::string& key, ConnectionPtr connection) {
  if (closed_) return;
  auto it = idle_.find(key);
  if (it == idle_.end()) {
    if (idle_.size() >= kMaxDestinations) return;  // closes the connection
    it = idle_.emplace(key, std::vector<ConnectionPtr>{}).first;
  }
  if (it->second.size() >= kMaxIdleConnectionsPerDestination) return;
  it->second.push_back(std::move(connection));
}

asio::awaitable<CallbackClient::ConnectionPtr> CallbackClient::connect(
    const Destination& destination, TimePoint deadline) {
  auto connection = std::make_unique<Connection>(*strand_);
  const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  connection->stream.expires_after(
      std::max(std::chrono::milliseconds{1}, std::min(kCallbackConnectTimeout, remaining)));
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(destination.host, ec);
  if (!ec) {
    co_await connection->stream.async_connect(tcp::endpoint(address, destination.port),
                                              asio::redirect_error(asio::use_awaitable, ec));
  } else {
    // --callback-host may be a name. The resolver has no timeout of its own; names used here
    // (localhost, container names) resolve locally.
    tcp::resolver resolver(*strand_);
    auto endpoints =
        co_await resolver.async_resolve(destination.host, std::to_string(destination.port),
                                        asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      co_await connection->stream.async_connect(endpoints,
                                                asio::redirect_error(asio::use_awaitable, ec));
    }
  }
  if (ec) co_return nullptr;
  connection->stream.socket().set_option(tcp::no_delay(true), ec);  // best effort
  co_return connection;
}

asio::awaitable<std::optional<unsigned>> CallbackClient::exchange(
    Connection& connection, const Destination& destination, const std::string& target,
    const std::string& body, TimePoint deadline, const std::function<void()>& on_written,
    bool& keep_alive) {
  http::request<http::string_body> request{http::verb::post, target, 11};
  request.set(http::field::host, destination.key());
  request.set(http::field::user_agent, "payment_provider_sim");
  request.set(http::field::content_type, "application/json");
  request.set(http::field::accept, "application/json");
  request.keep_alive(true);
  request.body() = body;
  request.prepare_payload();

  boost::system::error_code ec;
  connection.stream.expires_at(deadline);
  co_await http::async_write(connection.stream, request,
                             asio::redirect_error(asio::use_awaitable, ec));
  if (on_written) on_written();  // written or failed: either way nothing more to wait for
  if (ec) co_return std::nullopt;

  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  parser.body_limit(kMaxResponseBodyBytes);
  co_await http::async_read(connection.stream, connection.buffer, parser,
                            asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return std::nullopt;
  // An idle pooled connection must not carry a pending timer: it would close it later.
  connection.stream.expires_never();
  keep_alive = parser.get().keep_alive();
  co_return parser.get().result_int();
}

asio::awaitable<std::optional<unsigned>> CallbackClient::post(
    const Destination& destination, const std::string& target, std::string body,
    TimePoint start_before, const std::function<void()>& on_written) {
  co_await permits_.acquire();
  PermitGuard guard([this] { permits_.release(); });
  const auto started = std::chrono::steady_clock::now();
  if (closed_ || started >= start_before) co_return std::nullopt;
  const TimePoint deadline = started + kCallbackTotalTimeout;
  const std::string key = destination.key();

  // Second pass only when a pooled connection failed: the service may have closed it while it
  // sat idle, which says nothing about the service's health. Re-sending is safe because the
  // service treats the same callback twice as harmless.
  for (int pass = 0; pass < 2; ++pass) {
    ConnectionPtr connection = take_idle(key);
    const bool reused = connection != nullptr;
    if (!connection) {
      connection = co_await connect(destination, deadline);
      if (!connection) co_return std::nullopt;
    }
    bool keep_alive = false;
    auto status =
        co_await exchange(*connection, destination, target, body, deadline, on_written, keep_alive);
    if (status) {
      if (keep_alive) give_back(key, std::move(connection));
      co_return status;
    }
    if (!reused || std::chrono::steady_clock::now() >= deadline) co_return std::nullopt;
  }
  co_return std::nullopt;
}

}  // namespace provider_sim
