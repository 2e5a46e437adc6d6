#include "test_support/fake_provider.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>

namespace test_support {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

class FakeProviderSession {
 public:
  static asio::awaitable<void> run(FakeProvider& provider, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(16ULL * 1024 * 1024);
      auto [read_ec, read_n] = co_await http::async_read(stream, buffer, parser, kUseTuple);
      if (read_ec) {
        co_return;
      }
      auto message = parser.release();
      FakeProvider::Request request;
      request.method = std::string(message.method_string());
      request.target = std::string(message.target());
      for (const auto& field : message) {
        request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
      request.body = message.body();
      boost::system::error_code json_ec;
      auto parsed = boost::json::parse(request.body, json_ec);
      if (!json_ec) {
        request.json = std::move(parsed);
      }
      request.received_at = std::chrono::steady_clock::now();
      const bool keep_alive = message.keep_alive();
      const unsigned version = message.version();

      FakeProvider::Action action = provider.record(std::move(request));
      if (const auto* hold = std::get_if<FakeProvider::Hold>(&action)) {
        // Polled: a test releases a gate rarely, and 2 ms is far below any timeout it meets.
        while (!provider.released(hold->gate)) {
          asio::steady_timer pause(stream.get_executor(), std::chrono::milliseconds(2));
          co_await pause.async_wait(kUseTuple);
        }
        action = FakeProvider::Reply(hold->reply);
      }

      if (std::holds_alternative<FakeProvider::Hang>(action)) {
        // Never answer: drain whatever arrives until the client gives up and closes.
        std::array<char, 1024> sink{};
        for (;;) {
          auto [ec, n] = co_await stream.socket().async_read_some(asio::buffer(sink), kUseTuple);
          if (ec) {
            co_return;
          }
        }
      }
      if (std::holds_alternative<FakeProvider::Close>(action)) {
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.socket().close(ignored);
        co_return;
      }
      const auto& reply = std::get<FakeProvider::Reply>(action);
      if (reply.delay.count() > 0) {
        asio::steady_timer timer(stream.get_executor(), reply.delay);
        co_await timer.async_wait(kUseTuple);
      }
      http::response<http::string_body> response{static_cast<http::status>(reply.status), version};
      response.set(http::field::server, "fake-provider");
      response.set(http::field::content_type, reply.content_type);
      response.keep_alive(keep_alive);
      response.body() = reply.body;
      response.prepare_payload();
      auto [write_ec, write_n] = co_await http::async_write(stream, response, kUseTuple);
      if (write_ec || !keep_alive) {
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        co_return;
      }
    }
  }

  static asio::awaitable<void> listen(FakeProvider& provider) {
    for (;;) {
      auto [ec, socket] = co_await provider.acceptor_.async_accept(kUseTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !provider.acceptor_.is_open()) {
          co_return;
        }
        continue;
      }
      asio::co_spawn(provider.ioc_, run(provider, std::move(socket)), asio::detached);
    }
  }
};

FakeProvider::FakeProvider() : acceptor_(ioc_) {
  const tcp::endpoint endpoint(asio::ip::address_v4::loopback(), 0);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(ioc_, FakeProviderSession::listen(*this), asio::detached);
  thread_ = std::thread([this] { ioc_.run(); });
}

FakeProvider::~FakeProvider() {
  stop();
}

void FakeProvider::stop() {
  {
    const std::lock_guard lock(mutex_);
    if (stopped_) {
      return;
    }
    stopped_ = true;
  }
  asio::post(ioc_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  ioc_.stop();
  if (thread_.joinable()) {
    thread_.join();
  }
  changed_.notify_all();
}

std::string FakeProvider::url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

void FakeProvider::enqueue(Action action) {
  const std::lock_guard lock(mutex_);
  queue_.push_back(std::move(action));
}

void FakeProvider::set_default(Action action) {
  const std::lock_guard lock(mutex_);
  default_action_ = std::move(action);
}

void FakeProvider::set_policy(std::function<std::optional<Action>(const Request&)> policy) {
  const std::lock_guard lock(mutex_);
  policy_ = std::move(policy);
}

FakeProvider::Action FakeProvider::record(Request request) {
  std::unique_lock lock(mutex_);
  std::optional<Action> chosen;
  if (policy_) {
    chosen = policy_(request);
  }
  if (!chosen) {
    if (!queue_.empty()) {
      chosen = std::move(queue_.front());
      queue_.pop_front();
    } else {
      chosen = default_action_;
    }
  }
  requests_.push_back(std::move(request));
  lock.unlock();
  changed_.notify_all();
  return *chosen;
}

std::vector<FakeProvider::Request> FakeProvider::requests() const {
  const std::lock_guard lock(mutex_);
  return requests_;
}

std::size_t FakeProvider::request_count() const {
  const std::lock_guard lock(mutex_);
  return requests_.size();
}

bool FakeProvider::wait_for_requests(std::size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return requests_.size() >= count || stopped_; }) &&
         requests_.size() >= count;
}

void FakeProvider::release(const std::string& gate) {
  const std::lock_guard lock(mutex_);
  released_gates_.insert(gate);
}

bool FakeProvider::released(const std::string& gate) const {
  const std::lock_guard lock(mutex_);
  return released_gates_.contains(gate);
}

}  // namespace test_support
