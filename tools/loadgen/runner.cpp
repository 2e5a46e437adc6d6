#include "runner.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <limits>
#include <memory>
#include <stdexcept>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "workload.hpp"

namespace loadgen {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kErrorsKeptPerWorker = 5;
constexpr std::chrono::milliseconds kPauseAfterTransportError{10};

// State every connection reads; only `next` is written (atomically).
struct Shared {
  const Config& config;
  std::vector<tcp::endpoint> endpoints;
  std::string host_header;
  std::optional<Clock::time_point> deadline;
  std::atomic<std::uint64_t> next{0};
};

// One thread: its io_context and the statistics of the connections it runs (no locking: all of
// them run on this thread).
struct Worker {
  asio::io_context ioc{1};
  LatencyHistogram latency_us;
  std::array<std::uint64_t, kStatusSlots> status_counts{};
  std::uint64_t requests = 0;
  std::vector<RequestResult> results;
  std::vector<std::string> errors;

  void note_error(std::string message) {
    if (errors.size() < kErrorsKeptPerWorker) {
      errors.push_back(std::move(message));
    }
  }
};

// The payment's id from a 201/202 answer (the payment itself) or a 502 problem (its `payment`).
std::int64_t extract_money_movement_id(const std::string& body) {
  boost::system::error_code ec;
  const boost::json::value parsed = boost::json::parse(body, ec);
  if (ec || !parsed.is_object()) {
    return 0;
  }
  const auto& object = parsed.get_object();
  const boost::json::value* id = object.if_contains("money_movement_id");
  if (id == nullptr) {
    const boost::json::value* payment = object.if_contains("payment");
    if (payment != nullptr && payment->is_object()) {
      id = payment->get_object().if_contains("money_movement_id");
    }
  }
  if (id == nullptr) {
    return 0;
  }
  if (id->is_int64()) {
    return id->get_int64();
  }
  if (id->is_uint64() &&
      id->get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return static_cast<std::int64_t>(id->get_uint64());
  }
  return 0;
}

void fill_request(const Config& config, std::uint64_t index,
                  http::request<http::string_body>& request) {
  if (config.mode == Mode::kPayments) {
    request.body() = payment_body(config.seed, index, config.accounts);
    if (!config.idempotency_prefix.empty()) {
      std::string key = config.idempotency_prefix;
      key += '-';
      key += std::to_string(index);
      request.set("Idempotency-Key", key);
    }
  } else {
    request.body() = callback_body(config.seed, index, config.ids);
  }
  request.prepare_payload();
}

// One keep-alive connection in a closed loop. Parameters are references to objects that outlive
// the io_context run (see run()).
asio::awaitable<void> run_connection(Shared& shared, Worker& worker) {
  const Config& config = shared.config;
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  asio::steady_timer pause(stream.get_executor());
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  request.version(11);
  request.method(http::verb::post);
  request.target(config.mode == Mode::kPayments ? "/payments" : "/money_movement_request_callback");
  request.set(http::field::host, shared.host_header);
  request.set(http::field::user_agent, "loadgen");
  request.set(http::field::content_type, "application/json");
  request.keep_alive(true);
  bool connected = false;

  for (;;) {
    const std::uint64_t index = shared.next.fetch_add(1, std::memory_order_relaxed);
    if (config.count && index >= *config.count) {
      break;
    }
    if (shared.deadline && Clock::now() >= *shared.deadline) {
      break;
    }
    fill_request(config, index, request);

    const auto started = Clock::now();
    boost::system::error_code ec;
    const char* stage = "connect";
    if (!connected) {
      stream.expires_after(config.timeout);
      co_await stream.async_connect(shared.endpoints,
                                    asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) {
        stream.socket().set_option(tcp::no_delay(true), ec);
      }
      connected = !ec;
    }
    http::response<http::string_body> response;
    if (!ec) {
      stage = "write";
      stream.expires_after(config.timeout);
      co_await http::async_write(stream, request, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!ec) {
      stage = "read";
      co_await http::async_read(stream, buffer, response,
                                asio::redirect_error(asio::use_awaitable, ec));
    }
    const auto finished = Clock::now();
    ++worker.requests;

    RequestResult result;
    result.index = index;
    if (ec) {
      worker.note_error(std::string(stage) + ": " + ec.message());
      boost::system::error_code ignored;
      stream.socket().close(ignored);
      buffer.clear();
      connected = false;
      // A refused or dead server must not turn the closed loop into a busy loop.
      pause.expires_after(kPauseAfterTransportError);
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    } else {
      worker.latency_us.record(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(finished - started).count()));
      result.status = response.result_int();
      if (config.mode == Mode::kPayments) {
        if (config.keep_results) {
          result.money_movement_id = extract_money_movement_id(response.body());
        }
      } else {
        result.money_movement_id = callback_id_for(index, config.ids);
      }
      if (!response.keep_alive()) {
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.socket().close(ignored);
        buffer.clear();
        connected = false;
      }
    }
    ++worker.status_counts[std::min<std::size_t>(result.status, kStatusSlots - 1)];
    if (config.keep_results) {
      worker.results.push_back(result);
    }
  }
  if (connected) {
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
  }
}

std::string format_ms(std::uint64_t micros) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", static_cast<double>(micros) / 1000.0);
  return text;
}

}  // namespace

const char* mode_name(Mode mode) {
  return mode == Mode::kPayments ? "payments" : "callbacks";
}

std::string Summary::to_json(const Config& config) const {
  std::string out = R"({"mode":")";
  out += mode_name(mode);
  out += R"(","requests":)";
  out += std::to_string(requests);
  char number[64];
  std::snprintf(number, sizeof number, "%.3f", seconds);
  out += R"(,"seconds":)";
  out += number;
  std::snprintf(number, sizeof number, "%.1f", rps());
  out += R"(,"rps":)";
  out += number;
  out += R"(,"status_counts":{)";
  bool first = true;
  for (std::size_t status = 1; status < status_counts.size(); ++status) {
    if (status_counts[status] == 0) {
      continue;
    }
    out += first ? "\"" : ",\"";
    out += std::to_string(status);
    out += "\":";
    out += std::to_string(status_counts[status]);
    first = false;
  }
  if (status_counts[kTransportError] != 0) {
    out += first ? "" : ",";
    out += R"("error":)";
    out += std::to_string(status_counts[kTransportError]);
  }
  out += R"(},"latency_ms":{"p50":)";
  out += format_ms(latency_us.percentile(0.50));
  out += R"(,"p90":)";
  out += format_ms(latency_us.percentile(0.90));
  out += R"(,"p99":)";
  out += format_ms(latency_us.percentile(0.99));
  out += R"(,"max":)";
  out += format_ms(latency_us.max());
  out += R"(},"concurrency":)";
  out += std::to_string(config.concurrency);
  out += R"(,"threads":)";
  out += std::to_string(std::min(config.threads, config.concurrency));
  out += "}";
  return out;
}

Summary run(const Config& config) {
  if (config.concurrency == 0 || config.threads == 0) {
    throw std::invalid_argument("concurrency and threads must be positive");
  }
  if (config.mode == Mode::kPayments && config.accounts.empty()) {
    throw std::invalid_argument("payments mode needs at least one account");
  }
  if (config.mode == Mode::kCallbacks && config.ids.empty()) {
    throw std::invalid_argument("callbacks mode needs at least one money_movement_id");
  }
  if (!config.count && !config.duration_s) {
    throw std::invalid_argument("one of count or duration is required");
  }

  Shared shared{config, {}, config.host + ":" + std::to_string(config.port), std::nullopt, {}};
  {
    asio::io_context resolver_context;
    tcp::resolver resolver(resolver_context);
    for (const auto& entry : resolver.resolve(config.host, std::to_string(config.port))) {
      shared.endpoints.push_back(entry.endpoint());
    }
  }
  if (shared.endpoints.empty()) {
    throw std::runtime_error("cannot resolve " + config.host);
  }

  const unsigned threads = std::min(config.threads, config.concurrency);
  std::vector<std::unique_ptr<Worker>> workers;
  workers.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    workers.push_back(std::make_unique<Worker>());
  }
  for (unsigned c = 0; c < config.concurrency; ++c) {
    Worker& worker = *workers[c % threads];
    asio::co_spawn(worker.ioc, run_connection(shared, worker),
                   [&worker](const std::exception_ptr& error) {
                     if (!error) {
                       return;
                     }
                     try {
                       std::rethrow_exception(error);
                     } catch (const std::exception& e) {
                       worker.note_error(std::string("connection aborted: ") + e.what());
                     }
                   });
  }

  const auto started = Clock::now();
  if (config.duration_s) {
    shared.deadline = started + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(*config.duration_s));
  }
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (unsigned i = 1; i < threads; ++i) {
    pool.emplace_back([&worker = *workers[i]] { worker.ioc.run(); });
  }
  workers[0]->ioc.run();
  for (auto& thread : pool) {
    thread.join();
  }

  Summary summary;
  summary.mode = config.mode;
  summary.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  for (const auto& worker : workers) {
    summary.requests += worker->requests;
    summary.latency_us.merge(worker->latency_us);
    for (std::size_t i = 0; i < kStatusSlots; ++i) {
      summary.status_counts[i] += worker->status_counts[i];
    }
    summary.results.insert(summary.results.end(), worker->results.begin(), worker->results.end());
    summary.first_errors.insert(summary.first_errors.end(), worker->errors.begin(),
                                worker->errors.end());
  }
  std::sort(summary.results.begin(), summary.results.end(),
            [](const RequestResult& a, const RequestResult& b) { return a.index < b.index; });
  return summary;
}

}  // namespace loadgen
