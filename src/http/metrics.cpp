#include "http/metrics.hpp"

namespace ps::http {

void Metrics::count(Route r, unsigned status, std::chrono::steady_clock::time_point started) {
  const auto latency_us =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::steady_clock::now() - started)
                                     .count());
  const auto route = static_cast<std::size_t>(r);
  const std::size_t cls = status >= 100 && status < 600 ? status / 100 - 1 : kClasses - 1;
  requests[route][cls].fetch_add(1, std::memory_order_relaxed);
  latency_us_total[route].fetch_add(latency_us, std::memory_order_relaxed);
}

const char* route_name(Route r) {
  switch (r) {
    case Route::payments_create:
      return "payments_create";
    case Route::payments_list:
      return "payments_list";
    case Route::payment_get:
      return "payment_get";
    case Route::accounts_list:
      return "accounts_list";
    case Route::accounts_create:
      return "accounts_create";
    case Route::account_get:
      return "account_get";
    case Route::recalculate:
      return "recalculate";
    case Route::callback:
      return "callback";
    case Route::health:
      return "health";
    case Route::schema:
      return "schema";
    case Route::metrics:
      return "metrics";
    case Route::other:
      return "other";
    case Route::count_:
      break;
  }
  return "unknown";
}

}  // namespace ps::http
