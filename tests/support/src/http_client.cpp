#include "test_support/http_client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <sstream>
#include <stdexcept>

namespace test_support {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto ca = static_cast<unsigned char>(a[i]);
    const auto cb = static_cast<unsigned char>(b[i]);
    if (std::tolower(ca) != std::tolower(cb)) {
      return false;
    }
  }
  return true;
}

constexpr std::uint64_t kBodyLimit = 64ULL * 1024 * 1024;

HttpResponse to_response(http::response<http::string_body>& message) {
  HttpResponse response;
  response.status = message.result_int();
  for (const auto& field : message) {
    response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  response.body = std::move(message.body());
  boost::system::error_code ec;
  auto parsed = boost::json::parse(response.body, ec);
  if (!ec) {
    response.json = std::move(parsed);
  }
  return response;
}

}  // namespace

std::optional<std::string> find_header(const Headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) {
      return value;
    }
  }
  return std::nullopt;
}

const boost::json::object& HttpResponse::object() const {
  if (!json || !json->is_object()) {
    throw std::runtime_error("response body is not a JSON object: " + describe());
  }
  return json->get_object();
}

const boost::json::array& HttpResponse::array() const {
  if (!json || !json->is_array()) {
    throw std::runtime_error("response body is not a JSON array: " + describe());
  }
  return json->get_array();
}

std::string HttpResponse::describe() const {
  std::ostringstream out;
  out << "HTTP " << status << " content-type=" << header("Content-Type").value_or("<none>");
  for (const auto& [name, value] : headers) {
    if (iequals(name, "Allow") || iequals(name, "Retry-After")) {
      out << ' ' << name << '=' << value;
    }
  }
  constexpr std::size_t kMax = 2000;
  out << ": " << (body.size() > kMax ? body.substr(0, kMax) + "[...]" : body);
  return out.str();
}

std::string HttpResponse::next_page() const {
  const auto link = header("Link");
  if (!link) return "";
  const std::string_view suffix = ">; rel=\"next\"";
  if (link->size() <= suffix.size() + 1 || link->front() != '<' ||
      link->compare(link->size() - suffix.size(), suffix.size(), suffix) != 0) {
    throw std::runtime_error("not a Link to a next page: " + *link);
  }
  return link->substr(1, link->size() - suffix.size() - 1);
}

HttpClient::HttpClient(std::uint16_t port, std::chrono::milliseconds timeout)
    : port_(port), timeout_(timeout) {}

HttpClient::~HttpClient() {
  close();
}

void HttpClient::close() {
  if (stream_) {
    boost::system::error_code ignored;
    stream_->socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    stream_->socket().close(ignored);
    stream_.reset();
  }
  buffer_.clear();
}

void HttpClient::connect() {
  close();
  stream_.emplace(ioc_);
  stream_->expires_after(timeout_);
  const asio::ip::tcp::endpoint endpoint(asio::ip::address_v4::loopback(), port_);
  boost::system::error_code result = asio::error::would_block;
  stream_->async_connect(endpoint, [&](boost::system::error_code ec) { result = ec; });
  ioc_.restart();
  ioc_.run();
  if (result) {
    close();
    throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port_) +
                             " failed: " + result.message());
  }
}

// Writes `bytes` and reads one response concurrently. `sent_nothing_back` tells the caller the
// peer closed before sending a single byte (a stale keep-alive connection: safe to retry).
HttpResponse HttpClient::exchange(const std::string& bytes, bool& sent_nothing_back) {
  sent_nothing_back = false;
  stream_->expires_after(timeout_);
  http::response_parser<http::string_body> parser;
  parser.body_limit(kBodyLimit);
  parser.header_limit(1024 * 1024);

  boost::system::error_code write_ec = asio::error::would_block;
  boost::system::error_code read_ec = asio::error::would_block;
  asio::async_write(*stream_, asio::buffer(bytes),
                    [&](boost::system::error_code ec, std::size_t) { write_ec = ec; });
  http::async_read(*stream_, buffer_, parser,
                   [&](boost::system::error_code ec, std::size_t) { read_ec = ec; });
  ioc_.restart();
  ioc_.run();

  if (read_ec) {
    const bool stale =
        (read_ec == http::error::end_of_stream || read_ec == asio::error::connection_reset ||
         read_ec == asio::error::eof || read_ec == asio::error::broken_pipe) &&
        !parser.got_some();
    close();
    if (stale) {
      sent_nothing_back = true;
    }
    throw std::runtime_error("HTTP exchange with 127.0.0.1:" + std::to_string(port_) +
                             " failed: read: " + read_ec.message() +
                             (write_ec ? "; write: " + write_ec.message() : std::string{}));
  }
  auto message = parser.release();
  const bool keep_alive = message.keep_alive() && !write_ec;
  HttpResponse response = to_response(message);
  if (!keep_alive) {
    close();
  }
  return response;
}

HttpResponse HttpClient::request(std::string_view method, std::string_view target,
                                 std::optional<std::string> body, const Headers& headers) {
  http::request<http::string_body> req;
  const http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    req.method_string(method);
  } else {
    req.method(verb);
  }
  req.target(target);
  req.version(11);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port_));
  req.keep_alive(true);
  for (const auto& [name, value] : headers) {
    req.insert(name, value);
  }
  if (body) {
    if (!find_header(headers, "Content-Type")) {
      req.set(http::field::content_type, "application/json");
    }
    req.body() = std::move(*body);
    req.prepare_payload();
  } else if (verb == http::verb::post || verb == http::verb::patch || verb == http::verb::put) {
    req.content_length(0);
  }
  std::ostringstream serialized;
  serialized << req;
  const std::string bytes = serialized.str();

  const bool reused = stream_.has_value();
  if (!reused) {
    connect();
  }
  bool stale = false;
  try {
    return exchange(bytes, stale);
  } catch (const std::runtime_error&) {
    if (!(reused && stale)) {
      throw;
    }
  }
  // The server closed the idle keep-alive connection before reading this request: retry once
  // on a fresh connection (it never saw the first copy).
  connect();
  return exchange(bytes, stale);
}

HttpResponse HttpClient::post_json(std::string_view target, const boost::json::value& body,
                                   const Headers& headers) {
  return request("POST", target, boost::json::serialize(body), headers);
}

HttpResponse HttpClient::patch_json(std::string_view target, const boost::json::value& body,
                                    const Headers& headers) {
  return request("PATCH", target, boost::json::serialize(body), headers);
}

HttpResponse HttpClient::send_raw(std::string_view bytes) {
  connect();
  bool stale = false;
  HttpResponse response = exchange(std::string(bytes), stale);
  close();
  return response;
}

}  // namespace test_support
