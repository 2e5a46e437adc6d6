#include "provider/http_provider.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <optional>
#include <stdexcept>

#include "provider/base64.hpp"

namespace ps::provider {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kExcerptBytes = 512;
constexpr std::uint64_t kResponseBodyLimit = std::uint64_t{64} * 1024;
}  // namespace

ProviderEndpoint parse_provider_url(const std::string& url) {
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed) throw std::invalid_argument("not a URL: " + parsed.error().message());
  ProviderEndpoint e;
  if (parsed->scheme() == "https") {
    e.tls = true;
  } else if (parsed->scheme() != "http") {
    throw std::invalid_argument("scheme must be http or https");
  }
  // host_address() is the host without the brackets of an IPv6 literal: what the resolver takes.
  e.host = std::string(parsed->host_address());
  if (e.host.empty()) throw std::invalid_argument("URL has no host");
  const std::string port(parsed->port());
  if (port.empty()) {
    e.port = e.tls ? "443" : "80";  // RFC 3986: an empty port means the scheme's default
  } else {
    const bool digits =
        port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoi(port) < 1 || std::stoi(port) > 65535) {
      throw std::invalid_argument("port must be 1..65535");
    }
    e.port = port;
  }
  e.host_header = std::string(parsed->encoded_host());  // keeps IPv6 brackets
  if (!port.empty()) e.host_header += ":" + port;
  if (parsed->has_query() || parsed->has_fragment()) {
    throw std::invalid_argument("base URL must not have a query or fragment");
  }
  std::string path(parsed->encoded_path());
  if (!path.empty() && path.front() != '/') throw std::invalid_argument("malformed path");
  while (!path.empty() && path.back() == '/') path.pop_back();
  e.target = path + "/money_movement/";
  return e;
}

// One keep-alive connection, plain or TLS.
class HttpProvider::Connection {
 public:
  explicit Connection(asio::any_io_executor ex) : plain_(std::in_place, ex) {}
  Connection(asio::any_io_executor ex, asio::ssl::context& ctx) : tls_(std::in_place, ex, ctx) {}

  beast::tcp_stream& tcp() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }

  template <class F>
  auto visit(F&& f) {
    return tls_ ? f(*tls_) : f(*plain_);
  }

  std::optional<asio::ssl::stream<beast::tcp_stream>>& tls() { return tls_; }
  beast::flat_buffer buffer;
  std::chrono::steady_clock::time_point idle_since;

 private:
  std::optional<beast::tcp_stream> plain_;
  std::optional<asio::ssl::stream<beast::tcp_stream>> tls_;
};

HttpProvider::HttpProvider(asio::any_io_executor executor, ProviderSettings settings,
                           asio::ssl::context& tls)
    : executor_(std::move(executor)),
      settings_(std::move(settings)),
      endpoint_(parse_provider_url(settings_.url)),
      authorization_("Basic " + base64_encode(settings_.username + ":" + settings_.password)),
      tls_(tls) {}

HttpProvider::~HttpProvider() = default;

asio::awaitable<std::unique_ptr<HttpProvider::Connection>> HttpProvider::connect(
    std::string& error) {
  tcp::resolver resolver(executor_);
  auto [rec, results] = co_await resolver.async_resolve(endpoint_.host, endpoint_.port, kTuple);
  if (rec) {
    error = "resolve " + endpoint_.host + ": " + rec.message();
    co_return nullptr;
  }
  auto c = endpoint_.tls ? std::make_unique<Connection>(executor_, tls_)
                         : std::make_unique<Connection>(executor_);
  c->tcp().expires_after(settings_.connect_timeout);
  auto [cec, ep] = co_await c->tcp().async_connect(results, kTuple);
  if (cec) {
    error = "connect: " + cec.message();
    co_return nullptr;
  }
  c->tcp().socket().set_option(tcp::no_delay(true));
  if (auto& tls = c->tls()) {
    if (!SSL_set_tlsext_host_name(tls->native_handle(), endpoint_.host.c_str())) {
      error = "TLS: cannot set server name";
      co_return nullptr;
    }
    tls->set_verify_mode(asio::ssl::verify_peer);
    tls->set_verify_callback(asio::ssl::host_name_verification(endpoint_.host));
    auto [hec] = co_await tls->async_handshake(asio::ssl::stream_base::client, kTuple);
    if (hec) {
      error = "TLS handshake: " + hec.message();
      co_return nullptr;
    }
  }
  co_return c;
}

asio::awaitable<HttpProvider::Exchange> HttpProvider::exchange(Connection& c,
                                                               const std::string& body) {
  http::request<http::string_body> req{http::verb::post, endpoint_.target, 11};
  req.set(http::field::host, endpoint_.host_header);
  req.set(http::field::authorization, authorization_);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "application/json");
  req.set(http::field::user_agent, "payment_service");
  req.keep_alive(true);
  req.body() = body;
  req.prepare_payload();

  c.tcp().expires_after(settings_.total_timeout);
  ProviderReply reply;
  auto [wec, written] =
      co_await c.visit([&](auto& s) { return http::async_write(s, req, kTuple); });
  if (wec) {
    reply.error = "send: " + wec.message();
    co_return Exchange{.reply = std::move(reply), .reusable = false};
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(kResponseBodyLimit);
  auto [rec, read] =
      co_await c.visit([&](auto& s) { return http::async_read(s, c.buffer, parser, kTuple); });
  if (rec) {
    reply.error = "receive: " + rec.message();
    co_return Exchange{.reply = std::move(reply), .reusable = false};
  }
  const auto& res = parser.get();
  reply.http_status = static_cast<int>(res.result_int());
  reply.body_excerpt = res.body().substr(0, kExcerptBytes);
  co_return Exchange{.reply = std::move(reply), .reusable = res.keep_alive()};
}

asio::awaitable<ProviderReply> HttpProvider::send(const MoneyMovementRequest& r,
                                                  ConnectionChoice connection) {
  const std::string body = boost::json::serialize(boost::json::object{
      {"money_movement_id", r.money_movement_id},
      {"account_id", r.account_id},
      {"amount_cents", r.amount_cents},
      {"merchant_name", r.merchant_name},
      {"time_to_settle_seconds", r.time_to_settle_seconds},
  });

  std::unique_ptr<Connection> c =
      connection == ConnectionChoice::pooled_or_new ? take_idle() : nullptr;
  const bool reused = c != nullptr;
  if (!reused) {
    std::string error;
    c = co_await connect(error);
    if (!c) {
      co_return ProviderReply{
          .http_status = 0, .body_excerpt = {}, .error = error, .stale_connection = false};
    }
  }
  auto [reply, reusable] = co_await exchange(*c, body);
  if (reply.http_status == 0 && reused) {
    // The other pooled connections have likely been idle as long: drop them too (an e2e test
    // caught two stale ones in a row).
    idle_.clear();
    reply.stale_connection = true;
    co_return reply;
  }
  if (reusable && idle_.size() < settings_.max_idle_connections) {
    c->tcp().expires_never();
    c->idle_since = std::chrono::steady_clock::now();
    idle_.push_back(std::move(c));
  }
  co_return reply;
}

// The most recently used idle connection, skipping ones idle so long that servers commonly
// have closed them.
std::unique_ptr<HttpProvider::Connection> HttpProvider::take_idle() {
  const auto now = std::chrono::steady_clock::now();
  while (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    if (now - c->idle_since < settings_.max_idle_age) return c;
  }
  return nullptr;
}

}  // namespace ps::provider
