#include "provider/http_provider.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cassert>
#include <memory>
#include <optional>

#include "provider/answer.hpp"
#include "provider/base64.hpp"

namespace ps::provider {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

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
  // One deadline for reaching the provider: name resolution, TCP connect and TLS handshake.
  const auto deadline = std::chrono::steady_clock::now() + settings_.connect_timeout;

  // Asio's resolver runs getaddrinfo(3) on a background thread, and cancel() cannot interrupt a
  // call already running: an awaited async_resolve completes only when the system resolver gives
  // up (glibc's defaults: 5 s per try, 2 tries per name server), and every later lookup
  // of this io_context queues behind it. So the lookup reports into a shared state, and this
  // coroutine waits on a timer that the lookup's completion cancels, whichever comes first. On
  // timeout the resolver is cancelled (a queued lookup is dropped) and a late answer is ignored;
  // the state lives until that answer arrives. (The resolver's thread is joined when the
  // io_context is destroyed, so a shutdown may still wait for one lookup that hangs.)
  struct Lookup {
    explicit Lookup(const asio::any_io_executor& ex) : resolver(ex), timer(ex) {}
    tcp::resolver resolver;
    asio::steady_timer timer;
    bool done = false;
    boost::system::error_code error;
    tcp::resolver::results_type results;
  };
  auto lookup = std::make_shared<Lookup>(executor_);
  lookup->timer.expires_at(deadline);
  lookup->resolver.async_resolve(
      endpoint_.host, endpoint_.port,
      [lookup](const boost::system::error_code& ec, tcp::resolver::results_type results) {
        lookup->done = true;  // runs on executor_, like this coroutine: no data race
        lookup->error = ec;
        lookup->results = std::move(results);
        lookup->timer.cancel();
      });
  // Expired, or cancelled by the lookup's completion: `lookup->done` says which.
  co_await lookup->timer.async_wait(kTuple);
  if (!lookup->done) {
    lookup->resolver.cancel();
    error = "resolve " + endpoint_.host + ": timed out after " +
            std::to_string(settings_.connect_timeout.count()) + " ms";
    co_return nullptr;
  }
  if (lookup->error) {
    error = "resolve " + endpoint_.host + ": " + lookup->error.message();
    co_return nullptr;
  }
  const tcp::resolver::results_type results = lookup->results;
  auto c = endpoint_.tls ? std::make_unique<Connection>(executor_, tls_)
                         : std::make_unique<Connection>(executor_);
  c->tcp().expires_at(deadline);
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
  AnswerParser parser;
  limit_answer_parser(parser);
  auto [rec, read] =
      co_await c.visit([&](auto& s) { return http::async_read(s, c.buffer, parser, kTuple); });
  if (rec) {
    reply.error = "receive: " + rec.message();
    co_return Exchange{.reply = std::move(reply), .reusable = false};
  }
  co_return Exchange{.reply = reply_from_answer(parser.get()),
                     .reusable = parser.get().keep_alive()};
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
