// HTTP side of the simulator: the provider's API (POST /money_movement/) plus GET /truth,
// GET /healthz and the test controls PUT /outage and PUT /credentials. One coroutine per connection
// on its own strand, in the style of Boost.Beast's example/http/server/awaitable.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "callback_runner.hpp"
#include "config.hpp"

namespace provider_sim {

namespace http = boost::beast::http;

class Server {
 public:
  using Request = http::request<http::string_body>;
  using Response = http::response<http::string_body>;

  // `runner` is null with --no-callbacks.
  Server(asio::io_context& io_context, const SimConfig& config, GuardedTruth& truth,
         CallbackRunner* runner);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens; throws boost::system::system_error when the address is unusable.
  // Returns the bound endpoint (useful with --port 0).
  asio::ip::tcp::endpoint listen();
  // Starts accepting connections on the io_context.
  void start();
  // Destroys the acceptor. Called after the io_context stopped, before it is destroyed.
  void close();

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(asio::ip::tcp::socket socket);
  // Answer for one request; nullopt means "close the connection without answering".
  asio::awaitable<std::optional<Response>> handle(const Request& request,
                                                  const asio::ip::address& remote);
  asio::awaitable<std::optional<Response>> handle_money_movement(const Request& request,
                                                                 const asio::ip::address& remote);
  Response handle_truth(const Request& request);
  Response handle_truth_summary(const Request& request);
  Response handle_outage(const Request& request);
  Response handle_credentials(const Request& request);
  bool authorized(const Request& request) const;

  asio::io_context& io_context_;
  const SimConfig& config_;
  GuardedTruth& truth_;
  CallbackRunner* runner_;
  // base64("user:password"): from the flags, replaced by PUT /credentials (the provider rotating
  // the credentials it accepts while the service runs).
  mutable std::mutex credentials_mutex_;
  std::string expected_credentials_;
  std::optional<asio::ip::tcp::acceptor> acceptor_;
  std::atomic<std::size_t> connections_{0};
  std::atomic<bool> outage_{false};  // PUT /outage: every money movement answered 503
};

}  // namespace provider_sim
