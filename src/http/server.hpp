#pragma once
// The HTTP/1.1 server: one acceptor per I/O thread on the same port (SO_REUSEPORT lets the kernel
// spread connections), one coroutine per connection, keep-alive, body and header limits.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>

#include "http/api.hpp"

namespace ps::http {

struct ServerState {
  explicit ServerState(int max) : max_connections(max) {}
  const int max_connections;          // beyond this, new connections are closed at once
  std::atomic<bool> draining{false};  // answer with Connection: close, accept nothing new
  std::atomic<int> requests_in_flight{0};
  std::atomic<int> connections{0};
};

class Listener {
 public:
  // Binds now (so a bad port fails at start-up); `endpoint.port() == 0` picks a free port.
  Listener(boost::asio::io_context& ioc, const boost::asio::ip::tcp::endpoint& endpoint, Api& api,
           ServerState& state);

  unsigned short port() const;
  void start();
  void stop();  // closes the acceptor; open connections finish their current request

 private:
  boost::asio::awaitable<void> accept_loop();

  boost::asio::ip::tcp::acceptor acceptor_;
  Api& api_;
  ServerState& state_;
};

}  // namespace ps::http
