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

namespace ps::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::uint32_t kHeaderLimitBytes = 16 * 1024;
constexpr auto kIdleTimeout = std::chrono::seconds(60);
constexpr auto kWriteTimeout = std::chrono::seconds(30);

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

Problem plain_problem(bhttp::status s, const char* slug, const char* title, std::string detail) {
  return Problem{.status = s,
                 .slug = slug,
                 .title = title,
                 .detail = std::move(detail),
                 .errors = {},
                 .extra = {}};
}

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
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(kHeaderLimitBytes);
    parser.body_limit(kBodyLimitBytes);
    stream.expires_after(kIdleTimeout);

    auto [hec, hn] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
    std::optional<Problem> refusal;
    if (!hec) {
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
    if (hec == bhttp::error::end_of_stream || hec == asio::error::eof ||
        hec == beast::error::timeout || hec == asio::error::connection_reset ||
        hec == asio::error::operation_aborted) {
      break;
    }
    if (hec == bhttp::error::body_limit) {
      refusal = plain_problem(
          bhttp::status::payload_too_large, "payload-too-large", "Request body too large",
          "bodies are limited to " + std::to_string(kBodyLimitBytes) + " bytes");
    } else if (hec) {
      refusal = plain_problem(bhttp::status::bad_request, "bad-request", "Malformed HTTP request",
                              hec.message());
    }
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
