#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace test_support {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive lookup of the first header called `name`.
std::optional<std::string> find_header(const Headers& headers, std::string_view name);

struct HttpResponse {
  unsigned status = 0;
  Headers headers;
  std::string body;
  // Set when the body parses as JSON (whatever the Content-Type says).
  std::optional<boost::json::value> json;

  [[nodiscard]] std::optional<std::string> header(std::string_view name) const {
    return find_header(headers, name);
  }
  // The JSON body as an object / array; throws std::runtime_error (with describe()) otherwise.
  [[nodiscard]] const boost::json::object& object() const;
  [[nodiscard]] const boost::json::array& array() const;
  // "HTTP 400 content-type=...: <body>" for assertion messages.
  [[nodiscard]] std::string describe() const;
  // The target of a `Link: <target>; rel="next"` header (a paged list); empty when there is none.
  // Throws std::runtime_error when the Link header is not of that form.
  [[nodiscard]] std::string next_page() const;
};

// Synchronous HTTP/1.1 client for 127.0.0.1:port with keep-alive and a timeout per exchange.
// Not thread-safe: use one client per thread.
class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds{10000});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  HttpClient(HttpClient&&) = delete;
  HttpClient& operator=(HttpClient&&) = delete;

  // Any method string (GET, POST, PATCH, DELETE, PUT, BREW...). With a body and no
  // Content-Type header, Content-Type is application/json. Throws std::runtime_error on
  // connection failure or timeout.
  HttpResponse request(std::string_view method, std::string_view target,
                       std::optional<std::string> body = std::nullopt, const Headers& headers = {});

  HttpResponse get(std::string_view target, const Headers& headers = {}) {
    return request("GET", target, std::nullopt, headers);
  }
  HttpResponse post_json(std::string_view target, const boost::json::value& body,
                         const Headers& headers = {});
  HttpResponse patch_json(std::string_view target, const boost::json::value& body,
                          const Headers& headers = {});

  // Writes `bytes` verbatim on a fresh connection and reads one HTTP response (reading
  // runs concurrently with writing, so an early answer such as 413 is still seen).
  // The connection is closed afterwards.
  HttpResponse send_raw(std::string_view bytes);

  void close();
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  void connect();
  HttpResponse exchange(const std::string& bytes, bool& sent_nothing_back);

  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  boost::asio::io_context ioc_;
  std::optional<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace test_support
