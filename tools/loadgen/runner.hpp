// The load generator proper: `concurrency` keep-alive HTTP/1.1 connections, spread over
// `threads` threads with one io_context each, every connection running a closed loop (send one
// request, wait for its answer, send the next) until --count requests were sent or --duration-s
// elapsed.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "histogram.hpp"

namespace loadgen {

enum class Mode { kPayments, kCallbacks };

const char* mode_name(Mode mode);

struct Config {
  Mode mode = Mode::kPayments;
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  unsigned concurrency = 32;
  unsigned threads = 1;
  std::optional<std::uint64_t> count;  // total requests
  std::optional<double> duration_s;    // wall-clock limit
  std::uint64_t seed = 1;
  std::vector<std::int64_t> accounts{1};      // payments mode
  std::vector<std::int64_t> ids;              // callbacks mode
  std::chrono::milliseconds timeout{10'000};  // per request, connect included
  std::string idempotency_prefix;  // payments: send Idempotency-Key PREFIX-INDEX when non-empty
  bool keep_results = false;       // keep per-request results (for --ids-out / --results-out)
};

// Status 0 stands for a transport failure (connect, write, read or timeout).
inline constexpr unsigned kTransportError = 0;
inline constexpr std::size_t kStatusSlots = 600;

struct RequestResult {
  std::uint64_t index = 0;
  unsigned status = kTransportError;
  std::int64_t money_movement_id = 0;  // 0 when the answer carried none
};

struct Summary {
  Mode mode = Mode::kPayments;
  std::uint64_t requests = 0;  // answered or failed
  double seconds = 0;
  std::array<std::uint64_t, kStatusSlots> status_counts{};  // by HTTP status; [0] = transport
  LatencyHistogram latency_us;
  std::vector<RequestResult> results;     // ordered by index, when Config::keep_results
  std::vector<std::string> first_errors;  // a few transport error messages

  [[nodiscard]] double rps() const {
    return seconds > 0 ? static_cast<double>(requests) / seconds : 0;
  }
  // {"mode","requests","seconds","rps","status_counts":{"201":n,...,"error":n},
  //  "latency_ms":{"p50","p90","p99","max"},"concurrency","threads"}
  [[nodiscard]] std::string to_json(const Config& config) const;
};

// Runs the load; throws std::runtime_error when the host cannot be resolved.
Summary run(const Config& config);

}  // namespace loadgen
