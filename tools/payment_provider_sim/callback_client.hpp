// HTTP/1.1 client that delivers callbacks to the service.
//
// Tests send tens of thousands of callbacks, so connections are kept alive and reused (a pool of
// idle connections per destination), and at most kMaxConcurrentCallbacks requests are in flight
// at once; further requests wait in FIFO order for a permit.
//
// Threading: everything (pool, permits, sockets) lives on one strand and every coroutine that
// calls post() must run on that strand. One thread drives a few tens of thousands of keep-alive
// requests per second, more than the service under test answers, and the single strand removes
// every data race on the pool without locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace provider_sim {

namespace asio = boost::asio;
namespace beast = boost::beast;

struct Destination {
  std::string host;  // IP literal or host name
  std::uint16_t port = 0;

  // "host:port", also the Host header; IPv6 literals in brackets.
  std::string key() const {
    const bool ipv6 = host.find(':') != std::string::npos;
    return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};

class CallbackClient {
 public:
  using Strand = asio::strand<asio::io_context::executor_type>;
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit CallbackClient(Strand strand);
  CallbackClient(const CallbackClient&) = delete;
  CallbackClient& operator=(const CallbackClient&) = delete;

  // Precondition: shutdown() has not been called.
  const Strand& strand() const { return *strand_; }

  // POSTs `body` (JSON) to `target` at `destination`. Returns the HTTP status code, or nullopt
  // when no answer came (connection error, timeout) or when no permit was free before
  // `start_before` (the caller's window closed while queued). One attempt; a stale pooled
  // connection is replaced transparently once. Must be awaited on strand(). `on_written` (may be
  // empty) runs each time the request has been written, before its answer is read.
  asio::awaitable<std::optional<unsigned>> post(const Destination& destination,
                                                const std::string& target, std::string body,
                                                TimePoint start_before,
                                                const std::function<void()>& on_written);

  // Closes pooled connections and stops handing out permits. Called after the io_context
  // stopped and before it is destroyed, so no socket outlives its io_context and coroutines
  // destroyed with the io_context do not touch freed waiters.
  void shutdown();

 private:
  struct Connection {
    explicit Connection(const Strand& strand) : stream(strand) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
  };
  using ConnectionPtr = std::unique_ptr<Connection>;

  // FIFO semaphore for coroutines on the strand. A waiter parks on a timer that never expires;
  // release() hands its permit over by cancelling that timer.
  class Permits {
   public:
    explicit Permits(std::size_t count) : available_(count) {}
    asio::awaitable<void> acquire();
    void release();
    void shutdown();

   private:
    std::size_t available_;
    std::deque<std::shared_ptr<asio::steady_timer>> waiters_;
    bool closed_ = false;
  };

  // Attempt on one connection; nullopt plus `reusable_failure` when a pooled connection failed
  // before any answer (the server had closed it while idle) and a fresh one should be tried.
  asio::awaitable<std::optional<unsigned>> exchange(Connection& connection,
                                                    const Destination& destination,
                                                    const std::string& target,
                                                    const std::string& body, TimePoint deadline,
                                                    const std::function<void()>& on_written,
                                                    bool& keep_alive);
  asio::awaitable<ConnectionPtr> connect(const Destination& destination, TimePoint deadline);
  ConnectionPtr take_idle(const std::string& key);
  void give_back(const std::string& key, ConnectionPtr connection);

  // Optional only so that shutdown() can release the strand before the io_context goes away
  // (a strand's implementation refers back to a service of the io_context).
  std::optional<Strand> strand_;
  Permits permits_;
  std::unordered_map<std::string, std::vector<ConnectionPtr>> idle_;
  bool closed_ = false;
};

}  // namespace provider_sim
