#include "server.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

namespace provider_sim {
namespace {

using tcp = asio::ip::tcp;
namespace beast = boost::beast;

std::string base64(std::string_view text) {
  std::string out(4 * ((text.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(text.data()),
                                     static_cast<int>(text.size()));
  out.resize(static_cast<std::size_t>(length));
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

Server::Response json_response(const Server::Request& request, http::status status,
                               const boost::json::object& body,
                               std::string_view content_type = "application/json") {
  Server::Response response{status, request.version()};
  response.set(http::field::server, "payment_provider_sim");
  response.set(http::field::content_type, content_type);
  response.keep_alive(request.keep_alive());
  response.body() = boost::json::serialize(body);
  response.prepare_payload();
  return response;
}

Server::Response problem(const Server::Request& request, http::status status, std::string_view slug,
                         std::string_view title, std::string_view detail) {
  return json_response(request, status,
                       boost::json::object{{"type", std::string("/problems/") + std::string(slug)},
                                           {"title", title},
                                           {"status", static_cast<int>(status)},
                                           {"detail", detail}},
                       "application/problem+json");
}

Server::Response method_not_allowed(const Server::Request& request, std::string_view allow) {
  auto response = problem(request, http::status::method_not_allowed, "method-not-allowed",
                          "Method not allowed", "See the Allow header.");
  response.set(http::field::allow, allow);
  return response;
}

// IPv4 peers of a dual-stack listener show up as ::ffff:a.b.c.d; call them back over IPv4.
std::string callback_host_for(const asio::ip::address& remote) {
  if (remote.is_v6() && remote.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, remote.to_v6()).to_string();
  }
  return remote.to_string();
}

void log_exception(std::string_view what, std::exception_ptr error) {
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    spdlog::error("{} failed: {}", what, e.what());
  }
}

}  // namespace

Server::Server(asio::io_context& io_context, const SimConfig& config, GuardedTruth& truth,
               CallbackRunner* runner)
    : io_context_(io_context),
      config_(config),
      truth_(truth),
      runner_(runner),
      expected_credentials_(base64(config.username + ":" + config.password)) {}

tcp::endpoint Server::listen() {
  const tcp::endpoint endpoint(asio::ip::make_address(config_.bind_address), config_.port);
  acceptor_.emplace(io_context_);
  acceptor_->open(endpoint.protocol());
  acceptor_->set_option(asio::socket_base::reuse_address(true));
  acceptor_->bind(endpoint);
  acceptor_->listen(asio::socket_base::max_listen_connections);
  return acceptor_->local_endpoint();
}

void Server::start() {
  asio::co_spawn(acceptor_->get_executor(), accept_loop(),
                 [](std::exception_ptr error) { log_exception("accept loop", error); });
}

void Server::close() {
  acceptor_.reset();
}

asio::awaitable<void> Server::accept_loop() {
  asio::steady_timer pause(co_await asio::this_coro::executor);
  for (;;) {
    // Each connection gets its own strand: its coroutine and the stream's timeout timer then
    // never run concurrently, whatever --threads is.
    tcp::socket socket(asio::make_strand(io_context_));
    boost::system::error_code ec;
    co_await acceptor_->async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Typically EMFILE: back off briefly instead of spinning on the error.
      spdlog::warn("accept failed: {}", ec.message());
      pause.expires_after(std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (connections_.load() >= kMaxServerConnections) {
      socket.close(ec);  // over the limit: refuse rather than grow without bound
      continue;
    }
    auto executor = socket.get_executor();
    asio::co_spawn(executor, session(std::move(socket)),
                   [](std::exception_ptr error) { log_exception("session", error); });
  }
}

asio::awaitable<void> Server::session(tcp::socket socket) {
  ++connections_;
  struct Release {
    std::atomic<std::size_t>& count;
    ~Release() { --count; }
  } release{connections_};

  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) co_return;  // the peer already left
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;

  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kMaxHeaderBytes);
    parser.body_limit(kMaxRequestBodyBytes);
    stream.expires_after(kServerIdleTimeout);
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::end_of_stream) break;
    if (ec == http::error::body_limit) {
      Request dummy;
      auto response = problem(dummy, http::status::payload_too_large, "payload-too-large",
                              "Payload too large", "Request bodies are limited to 64 KiB.");
      response.keep_alive(false);
      co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    if (ec) break;  // timeout, reset or malformed request: nothing sensible to answer

    const Request& request = parser.get();
    std::optional<Response> response = co_await handle(request, remote.address());
    if (!response) {
      // --drop-rate: the movement was recorded, but the caller never learns it.
      stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      stream.socket().close(ec);
      co_return;
    }
    stream.expires_after(kServerIdleTimeout);
    co_await http::async_write(stream, *response, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !response->keep_alive()) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<std::optional<Server::Response>> Server::handle(const Request& request,
                                                                const asio::ip::address& remote) {
  auto target = boost::urls::parse_origin_form(request.target());
  if (!target) {
    co_return problem(request, http::status::bad_request, "bad-request", "Bad request target",
                      "The request target is not a valid origin-form URL.");
  }
  std::string_view path = target->encoded_path();
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);  // /x/ and /x are the same

  if (path == "/money_movement") {
    if (request.method() != http::verb::post) co_return method_not_allowed(request, "POST");
    co_return co_await handle_money_movement(request, remote);
  }
  if (path == "/truth") {
    if (request.method() != http::verb::get) co_return method_not_allowed(request, "GET");
    co_return handle_truth(request);
  }
  if (path == "/truth/summary") {
    if (request.method() != http::verb::get) co_return method_not_allowed(request, "GET");
    co_return handle_truth_summary(request);
  }
  if (path == "/outage") {
    if (request.method() != http::verb::put) co_return method_not_allowed(request, "PUT");
    co_return handle_outage(request);
  }
  if (path == "/credentials") {
    if (request.method() != http::verb::put) co_return method_not_allowed(request, "PUT");
    co_return handle_credentials(request);
  }
  if (path == "/healthz") {
    if (request.method() != http::verb::get) co_return method_not_allowed(request, "GET");
    co_return json_response(request, http::status::ok, boost::json::object{{"status", "ok"}});
  }
  co_return problem(
      request, http::status::not_found, "not-found", "Not found",
      "The simulator serves POST /money_movement/, GET /truth, GET /truth/summary, PUT /outage, "
      "PUT /credentials and GET /healthz.");
}

bool Server::authorized(const Request& request) const {
  const auto header = request.find(http::field::authorization);
  if (header == request.end()) return false;
  const std::string_view value = trim(header->value());
  const auto space = value.find(' ');
  if (space == std::string_view::npos) return false;
  if (!beast::iequals(value.substr(0, space), "basic")) return false;
  const std::string_view credentials = trim(value.substr(space + 1));
  std::lock_guard lock(credentials_mutex_);
  // Constant-time comparison: the simulator stands in for a real provider, so behave like one.
  return credentials.size() == expected_credentials_.size() &&
         CRYPTO_memcmp(credentials.data(), expected_credentials_.data(), credentials.size()) == 0;
}

asio::awaitable<std::optional<Server::Response>> Server::handle_money_movement(
    const Request& request, const asio::ip::address& remote) {
  std::optional<Response> response;
  bool start_script = false;
  MoneyMovement movement;
  const auto now = Clock::now();

  if (outage_.load(std::memory_order_relaxed)) {
    // A provider that is down: nothing is recorded, every request is answered 503.
    {
      std::lock_guard lock(truth_.mutex);
      ++truth_.book.counters().failed;
    }
    response = problem(request, http::status::service_unavailable, "outage", "Provider down",
                       "Simulated outage (PUT /outage); try again later.");
  } else if (!authorized(request)) {
    {
      std::lock_guard lock(truth_.mutex);
      ++truth_.book.counters().unauthorized;
    }
    response = problem(request, http::status::unauthorized, "unauthorized", "Unauthorized",
                       "Valid HTTP Basic credentials are required.");
    response->set(http::field::www_authenticate, "Basic realm=\"payment_provider_sim\"");
  } else if (auto parsed = parse_money_movement(request.body());
             std::holds_alternative<ValidationErrors>(parsed)) {
    {
      std::lock_guard lock(truth_.mutex);
      ++truth_.book.counters().invalid;
    }
    response = json_response(request, http::status::bad_request,
                             validation_problem(std::get<ValidationErrors>(parsed)),
                             "application/problem+json");
  } else {
    movement = std::get<MoneyMovement>(std::move(parsed));
    const std::uint64_t id = movement.money_movement_id;
    bool drop = false;
    std::shared_ptr<EarlyCallbackGate> gate;
    {
      std::lock_guard lock(truth_.mutex);
      TruthBook& book = truth_.book;
      const std::uint32_t attempt = book.count_request(id, now);
      const RequestFault fault = decide_fault(config_.seed, id, attempt, config_.faults);
      const bool known = book.find(id) != nullptr;
      if (fault == RequestFault::kFail) {
        ++book.counters().failed;
        response = problem(request, http::status::service_unavailable, "unavailable",
                           "Service unavailable", "Simulated provider failure; try again.");
        response->set(http::field::retry_after, "1");
      } else if (fault == RequestFault::kReject && !known) {
        ++book.counters().rejected;
        response =
            problem(request, http::status::bad_request, "rejected", "Money movement rejected",
                    "The provider declined this money movement (simulated).");
      } else {
        const auto outcome = book.record(movement, now, runner_ != nullptr);
        if (outcome == TruthBook::RecordOutcome::kFull) {
          response = problem(request, http::status::service_unavailable, "full", "Simulator full",
                             "The simulator holds its maximum of movements.");
        } else {
          start_script = outcome == TruthBook::RecordOutcome::kRecorded && runner_ != nullptr;
          if (fault == RequestFault::kDrop) {
            ++book.counters().dropped;
            drop = true;
          } else if (outcome == TruthBook::RecordOutcome::kAlreadyRecorded &&
                     decide_resend_conflict(config_.seed, id, attempt, config_.faults)) {
            // A provider that remembers ids may refuse a copy of one it holds (SPEC 3); the
            // movement stays recorded, its script runs on.
            ++book.counters().resent_conflict;
            response =
                problem(request, http::status::conflict, "duplicate-money-movement",
                        "Duplicate money movement", "This money_movement_id is already recorded.");
          } else {
            response = json_response(
                request, http::status::created,
                boost::json::object{{"money_movement_id", id}, {"status", "pending"}});
          }
        }
      }
    }
    if (start_script) {
      const Destination destination{config_.callback_host.value_or(callback_host_for(remote)),
                                    config_.callback_port};
      if (decide_early_callback(config_.seed, id, config_.script.early_callback_rate)) {
        const auto executor = co_await asio::this_coro::executor;
        gate = std::make_shared<EarlyCallbackGate>(executor);
      }
      runner_->start(movement, destination, now, gate);
    }
    if (gate) {
      // --early-callback-rate: the first callback is written before this answer (or this
      // dropped connection), so it races the answer at the service.
      const bool written = co_await gate->wait(kEarlyCallbackWaitMax);
      std::lock_guard lock(truth_.mutex);
      ++truth_.book.counters().early_callbacks;
      if (!written) ++truth_.book.counters().early_wait_expired;
    }
    if (drop) {
      spdlog::debug("movement {}: recorded, dropping the connection", id);
      co_return std::nullopt;
    }
  }

  // --slow-ms delays every answer of this endpoint. The work is already done, so callbacks may
  // reach the service before it sees our 201, as with a real provider under load.
  if (config_.slow.count() > 0) {
    asio::steady_timer timer(co_await asio::this_coro::executor, config_.slow);
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  co_return response;
}

Server::Response Server::handle_outage(const Request& request) {
  boost::system::error_code ec;
  const auto body = boost::json::parse(request.body(), ec);
  const auto* down = !ec && body.is_object() ? body.as_object().if_contains("down") : nullptr;
  if (down == nullptr || !down->is_bool()) {
    return problem(request, http::status::bad_request, "bad-request", "Bad outage request",
                   "The body must be {\"down\": true} or {\"down\": false}.");
  }
  outage_.store(down->as_bool(), std::memory_order_relaxed);
  spdlog::info("outage {}", down->as_bool() ? "started: every money movement gets 503" : "ended");
  return json_response(request, http::status::ok, boost::json::object{{"down", down->as_bool()}});
}

Server::Response Server::handle_credentials(const Request& request) {
  boost::system::error_code ec;
  const auto body = boost::json::parse(request.body(), ec);
  const auto* object = !ec ? body.if_object() : nullptr;
  const auto* username = object != nullptr ? object->if_contains("username") : nullptr;
  const auto* password = object != nullptr ? object->if_contains("password") : nullptr;
  const auto valid = [](const boost::json::value* value) {
    return value != nullptr && value->is_string() && !value->get_string().empty() &&
           value->get_string().size() <= kMaxCredentialBytes;
  };
  if (!valid(username) || !valid(password) ||
      username->get_string().find(':') != boost::json::string::npos) {
    const std::string detail =
        "The body must be {\"username\": U, \"password\": P}: non-empty strings of at most " +
        std::to_string(kMaxCredentialBytes) + " bytes, U without ':' (RFC 7617).";
    return problem(request, http::status::bad_request, "bad-request", "Bad credentials request",
                   detail);
  }
  const std::string encoded =
      base64(std::string(username->get_string()) + ":" + std::string(password->get_string()));
  {
    std::lock_guard lock(credentials_mutex_);
    expected_credentials_ = encoded;
  }
  // The values are not logged: credentials never are, not even a simulator's.
  spdlog::info("credentials replaced: money movements with other credentials now get 401");
  return json_response(request, http::status::ok,
                       boost::json::object{{"username", username->get_string()}});
}

Server::Response Server::handle_truth_summary(const Request& request) {
  boost::json::object body;
  {
    std::lock_guard lock(truth_.mutex);
    body = truth_.book.summary_json();
  }
  return json_response(request, http::status::ok, body);
}

Server::Response Server::handle_truth(const Request& request) {
  boost::json::object body;
  {
    std::lock_guard lock(truth_.mutex);
    body = truth_.book.to_json();
  }
  return json_response(request, http::status::ok, body);
}

}  // namespace provider_sim
