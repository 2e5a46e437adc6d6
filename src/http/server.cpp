#include "http/server.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>

#include "http/request_reading.hpp"

namespace ps::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// The head, target and body limits are in request_reading.hpp.
// A kept-alive connection may wait this long for its next request; once a request's first bytes
// arrived, its head must be complete within kHeaderTimeout, so a client that trickles its header
// (slowloris) holds its connection for seconds, not minutes.
constexpr auto kIdleTimeout = std::chrono::seconds(60);
constexpr auto kHeaderTimeout = std::chrono::seconds(10);
constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr std::size_t kReadChunkBytes = 4096;

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// Counts the connection for MAX_CONNECTIONS for as long as its session lives.
struct ConnectionSlot {
  explicit ConnectionSlot(ServerState& s) : state(s) { state.connections.fetch_add(1); }
  ~ConnectionSlot() { state.connections.fetch_sub(1); }
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ServerState& state;
};

asio::awaitable<void> session(beast::tcp_stream stream, Api& api, ServerState& state) {
  const ConnectionSlot slot(state);
  beast::error_code ec;
  const auto peer = stream.socket().remote_endpoint(ec).address();
  if (ec) co_return;
  stream.socket().set_option(tcp::no_delay(true), ec);
  beast::flat_buffer buffer;

  for (;;) {
    RequestParser parser;
    limit_request_parser(parser);
    if (buffer.size() == 0) {
      // Idle until the next request begins (pipelined bytes may be buffered already).
      stream.expires_after(kIdleTimeout);
      auto [rec, rn] = co_await stream.async_read_some(buffer.prepare(kReadChunkBytes), kTuple);
      if (rec) break;
      buffer.commit(rn);
    }
    stream.expires_after(kHeaderTimeout);
    auto [hec, hn] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
    std::optional<Problem> refusal;
    if (!hec) refusal = refuse_head(parser);
    if (!hec && !refusal) {
      stream.expires_after(kIdleTimeout);  // the body, if any
      // Answer "100 Continue" (curl waits for it before sending bodies over 1 KiB).
      const auto& h = parser.get();
      if (beast::iequals(h[bhttp::field::expect], "100-continue")) {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, h.version()};
        auto [cec, cn] = co_await bhttp::async_write(stream, cont, kTuple);
        if (cec) break;
      }
      auto [bec, bn] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
      hec = bec;
    }
    if (is_disconnect(hec)) break;
    if (!refusal && hec) refusal = read_refusal(hec);
    if (refusal) {
      // The stream position is unknown after a refused request: answer, then close.
      auto res = problem_response(*refusal, 11, false);
      stream.expires_after(kWriteTimeout);
      co_await bhttp::async_write(stream, res, kTuple);
      break;
    }

    if (const auto wire =
            api.prerendered(parser.get(), state.draining.load(std::memory_order_relaxed))) {
      stream.expires_after(kWriteTimeout);
      auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(*wire), kTuple);
      if (wec) break;
      continue;
    }

    state.requests_in_flight.fetch_add(1, std::memory_order_relaxed);
    const Request req = parser.release();
    Response res = co_await api.handle(req, peer);
    state.requests_in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (state.draining.load(std::memory_order_relaxed)) res.keep_alive(false);

    stream.expires_after(kWriteTimeout);
    auto [wec, wn] = co_await bhttp::async_write(stream, res, kTuple);
    if (wec || !res.keep_alive()) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace

Listener::Listener(asio::io_context& ioc, const tcp::endpoint& endpoint, Api& api,
                   ServerState& state)
    : acceptor_(ioc), api_(api), state_(state) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.set_option(ReusePort(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

unsigned short Listener::port() const {
  return acceptor_.local_endpoint().port();
}

void Listener::start() {
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
}

void Listener::stop() {
  beast::error_code ec;
  acceptor_.close(ec);
}

asio::awaitable<void> Listener::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) {
      // Out of file descriptors and the like: log, back off briefly, keep serving.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor_.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(kTuple);
      continue;
    }
    if (state_.connections.load(std::memory_order_relaxed) >= state_.max_connections) {
      // Every connection costs memory and a descriptor: refuse rather than degrade everyone.
      beast::error_code ignored;
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(acceptor_.get_executor(),
                   session(beast::tcp_stream(std::move(socket)), api_, state_), asio::detached);
  }
}

}  // namespace ps::http
