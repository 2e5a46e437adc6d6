#pragma once
// Counters for GET /metrics (Prometheus text format). Relaxed atomics: counters, not fences.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "app/health.hpp"

namespace ps::http {

enum class Route : std::size_t {
  payments_create,
  payments_list,
  payment_get,
  accounts_list,
  accounts_create,
  account_get,
  recalculate,
  callback,
  health,
  schema,
  metrics,
  other,
  count_,
};

struct Metrics {
  static constexpr std::size_t kRoutes = static_cast<std::size_t>(Route::count_);
  static constexpr std::size_t kClasses = 5;  // 1xx..5xx
  std::array<std::array<std::atomic<std::uint64_t>, kClasses>, kRoutes> requests{};
  std::array<std::atomic<std::uint64_t>, kRoutes> latency_us_total{};
  std::atomic<std::uint64_t> callbacks_applied{0};
  std::atomic<std::uint64_t> callbacks_late{0};
  std::atomic<std::uint64_t> provider_accepted{0};
  std::atomic<std::uint64_t> provider_rejected{0};
  std::atomic<std::uint64_t> provider_unknown{0};
  std::atomic<std::uint64_t> overloaded{0};

  // One answered request of `r` that started at `started` (its latency is measured up to now).
  void count(Route r, unsigned status, std::chrono::steady_clock::time_point started);
};

const char* route_name(Route r);

// GET /metrics in the Prometheus text format (version 0.0.4): the HTTP counters of `m` and the
// counters of app/ (writer, provider flows, Resender).
std::string render_metrics(const Metrics& m, const app::Counters& app);

}  // namespace ps::http
