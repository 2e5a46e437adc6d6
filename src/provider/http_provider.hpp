#pragma once
// HTTP(S) client for the provider's `POST /money_movement/`: Basic auth, keep-alive connection
// reuse, connect and total timeouts, certificate verification for https. One instance per
// io_context thread, so its connection pool needs no lock.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "provider/endpoint.hpp"
#include "provider/provider.hpp"

namespace ps::provider {

struct ProviderSettings {
  std::string url;  // base URL, e.g. https://provider.example or http://127.0.0.1:9090/api
  std::string username;
  std::string password;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds total_timeout{5000};
  std::size_t max_idle_connections = 32;
  std::chrono::milliseconds max_idle_age{15000};  // below common server keep-alive timeouts
};

class HttpProvider final : public Provider {
 public:
  // `tls` is used for https URLs and must outlive the client.
  HttpProvider(boost::asio::any_io_executor executor, ProviderSettings settings,
               boost::asio::ssl::context& tls);
  ~HttpProvider() override;

  boost::asio::awaitable<ProviderReply> send(const MoneyMovementRequest& request,
                                             ConnectionChoice connection) override;

 private:
  class Connection;
  struct Exchange {
    ProviderReply reply;
    bool reusable = false;  // the server keeps the connection open
  };
  boost::asio::awaitable<Exchange> exchange(Connection& c, const std::string& body);
  boost::asio::awaitable<std::unique_ptr<Connection>> connect(std::string& error);
  std::unique_ptr<Connection> take_idle();

  boost::asio::any_io_executor executor_;
  ProviderSettings settings_;
  ProviderEndpoint endpoint_;
  std::string authorization_;
  boost::asio::ssl::context& tls_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace ps::provider
