#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "test_support/http_client.hpp"

namespace test_support {

// In-process stand-in for the payment provider's `POST /money_movement/`: an HTTP server on
// 127.0.0.1 (its own port and thread) that records every request and answers according to a
// programmable queue, falling back to a default action (201 {"status":"pending"}).
class FakeProvider {
 public:
  // Answer with this status and body, after `delay`.
  struct Reply {
    unsigned status = 201;
    std::string body = R"({"status":"pending"})";
    std::string content_type = "application/json";
    std::chrono::milliseconds delay{0};
  };
  // Never answer; keep the connection open until the client gives up (to trigger timeouts).
  struct Hang {};
  // Close the connection without answering.
  struct Close {};
  // Answer `reply` once release(gate) was called (a test holds the answer back while it does
  // something else, e.g. calls back before the provider's answer arrives).
  struct Hold {
    std::string gate;
    Reply reply;
  };
  using Action = std::variant<Reply, Hang, Close, Hold>;

  struct Request {
    std::string method;
    std::string target;
    Headers headers;
    std::string body;
    std::optional<boost::json::value> json;
    std::chrono::steady_clock::time_point received_at;
    std::optional<std::string> header(std::string_view name) const {
      return find_header(headers, name);
    }
  };

  static Reply reply(unsigned status, std::string body = R"({"status":"pending"})") {
    return Reply{status, std::move(body), "application/json", std::chrono::milliseconds{0}};
  }

  FakeProvider();  // binds 127.0.0.1:0 and starts serving
  ~FakeProvider();
  FakeProvider(const FakeProvider&) = delete;
  FakeProvider& operator=(const FakeProvider&) = delete;
  FakeProvider(FakeProvider&&) = delete;
  FakeProvider& operator=(FakeProvider&&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string url() const;  // http://127.0.0.1:<port>

  // Actions are consumed one per request, in order; when the queue is empty the default runs.
  void enqueue(Action action);
  void set_default(Action action);
  // Optional policy consulted before the queue; returning nullopt falls through to the queue.
  void set_policy(std::function<std::optional<Action>(const Request&)> policy);

  [[nodiscard]] std::vector<Request> requests() const;
  [[nodiscard]] std::size_t request_count() const;
  // Blocks until at least `count` requests were received; false on timeout.
  bool wait_for_requests(std::size_t count, std::chrono::milliseconds timeout) const;

  // Lets every request held at `gate` (Hold) have its answer; later ones are answered at once.
  void release(const std::string& gate);
  [[nodiscard]] bool released(const std::string& gate) const;

  void stop();

 private:
  friend class FakeProviderSession;
  Action record(Request request);

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<Request> requests_;
  std::deque<Action> queue_;
  Action default_action_ = Reply{};
  std::function<std::optional<Action>(const Request&)> policy_;
  std::set<std::string> released_gates_;
  bool stopped_ = false;
};

}  // namespace test_support
