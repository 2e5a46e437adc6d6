#include "http/metrics.hpp"

#include <sstream>

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

std::string render_metrics(const Metrics& m, const app::Counters& app) {
  std::ostringstream out;
  out << "# HELP payment_service_http_requests_total HTTP requests by route and status class.\n"
      << "# TYPE payment_service_http_requests_total counter\n";
  for (std::size_t r = 0; r < Metrics::kRoutes; ++r) {
    for (std::size_t c = 0; c < Metrics::kClasses; ++c) {
      const auto n = m.requests[r][c].load(std::memory_order_relaxed);
      if (n == 0) continue;
      out << "payment_service_http_requests_total{route=\"" << route_name(static_cast<Route>(r))
          << "\",code=\"" << c + 1 << "xx\"} " << n << "\n";
    }
  }
  out << "# HELP payment_service_http_request_seconds_total Time spent answering, by route.\n"
      << "# TYPE payment_service_http_request_seconds_total counter\n";
  for (std::size_t r = 0; r < Metrics::kRoutes; ++r) {
    const auto us = m.latency_us_total[r].load(std::memory_order_relaxed);
    if (us == 0) continue;
    out << "payment_service_http_request_seconds_total{route=\""
        << route_name(static_cast<Route>(r)) << "\"} " << static_cast<double>(us) / 1e6 << "\n";
  }
  auto counter = [&out](const char* name, const char* help, std::uint64_t v) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " counter\n"
        << name << " " << v << "\n";
  };
  counter("payment_service_callbacks_applied_total", "Callbacks applied.",
          m.callbacks_applied.load());
  counter("payment_service_callbacks_late_total", "Callbacks after the settle deadline.",
          m.callbacks_late.load());
  counter("payment_service_provider_accepted_total", "Provider 2xx answers to new payments.",
          m.provider_accepted.load());
  counter("payment_service_provider_rejected_total", "Provider 4xx answers to new payments.",
          m.provider_rejected.load());
  counter("payment_service_provider_unknown_total",
          "New payments whose provider outcome was unknown.", m.provider_unknown.load());
  counter("payment_service_overloaded_total", "Requests refused with 503 (queue full).",
          m.overloaded.load());
  counter("payment_service_provider_configuration_errors_total",
          "Provider answers refusing our configuration (401, 403, 405, 407, 3xx); such payments "
          "stay submitting and are re-sent.",
          app.provider_configuration_errors);
  counter("payment_service_provider_resends_total", "Payments sent again after an unknown outcome.",
          app.provider_resends);
  counter("payment_service_commits_total", "Group commits.", app.commits);
  counter("payment_service_committed_jobs_total", "Write jobs committed.", app.committed_jobs);
  counter("payment_service_failed_batches_total", "Group commits rolled back.", app.failed_batches);
  out << "# HELP payment_service_commit_seconds_total Time spent in group commits.\n"
      << "# TYPE payment_service_commit_seconds_total counter\n"
      << "payment_service_commit_seconds_total " << static_cast<double>(app.commit_ns_total) / 1e9
      << "\n"
      << "# HELP payment_service_write_queue_depth Write jobs waiting.\n"
      << "# TYPE payment_service_write_queue_depth gauge\n"
      << "payment_service_write_queue_depth " << app.write_queue_depth << "\n"
      << "# HELP payment_service_provider_outage 1 while re-sends get no answer and only probe.\n"
      << "# TYPE payment_service_provider_outage gauge\n"
      << "payment_service_provider_outage " << (app.provider_outage ? 1 : 0) << "\n";
  return std::move(out).str();
}

}  // namespace ps::http
