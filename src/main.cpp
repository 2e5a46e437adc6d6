// Wiring only: configuration, store, writer, readers, one io_context per I/O thread, shutdown;
// or the `verify` command.

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "app/accounts_view.hpp"
#include "app/commands.hpp"
#include "app/health.hpp"
#include "app/housekeeping.hpp"
#include "app/ledger.hpp"
#include "app/payments.hpp"
#include "app/queries.hpp"
#include "app/readers.hpp"
#include "app/resender.hpp"
#include "app/verify.hpp"
#include "app/writer.hpp"
#include "config/config.hpp"
#include "config/logging.hpp"
#include "core/clock.hpp"
#include "core/replay.hpp"
#include "http/api.hpp"
#include "http/server.hpp"
#include "provider/http_provider.hpp"
#include "store/store.hpp"

namespace {

namespace asio = boost::asio;
using namespace ps;

constexpr std::size_t kReaderThreads = 2;
// Margin of a send attempt's lease beyond the provider timeouts, for the writes around it.
constexpr std::chrono::milliseconds kSendMargin{3000};
// Re-sends under way at once, and how many unanswered in a row make a provider outage. 256 in
// flight drained a 23,000-payment backlog in 10.7 s, 32 (the provider client's idle pool) in
// 19 s: the drain waits on the whole lifecycle (verdicts and the callbacks they start), not on
// connections (tests/e2e, ProviderOutageUnderLoad...).
constexpr std::size_t kResendsInFlight = 256;
constexpr std::size_t kOutageAfterUnanswered = 16;
constexpr auto kDrainTimeout = std::chrono::seconds(10);
constexpr auto kDrainPoll = std::chrono::milliseconds(20);

// Descriptors beyond client connections: database and provider connections, listeners, files.
constexpr rlim_t kDescriptorReserve = 256;

// Every client connection is a descriptor. A soft limit below MAX_CONNECTIONS (1024 is a common
// default) would make accept fail long before the configured limit, and refuse everyone, not
// just the newest: raise it as far as the hard limit allows, and say so when that is not enough.
void fit_descriptor_limit(int max_connections) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t wanted = static_cast<rlim_t>(max_connections) + kDescriptorReserve;
  if (limit.rlim_cur >= wanted) return;
  const rlim_t before = limit.rlim_cur;
  limit.rlim_cur = std::min(wanted, limit.rlim_max);
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) limit.rlim_cur = before;
  if (limit.rlim_cur < wanted) {
    spdlog::warn(
        "open-file limit {} (hard limit {}) is below MAX_CONNECTIONS + {}: connections beyond "
        "about {} will fail; raise the limit (ulimit -n) or lower MAX_CONNECTIONS",
        limit.rlim_cur, limit.rlim_max, kDescriptorReserve,
        limit.rlim_cur > kDescriptorReserve ? limit.rlim_cur - kDescriptorReserve : 0);
  } else {
    spdlog::debug("open-file limit raised from {} to {}", before, limit.rlim_cur);
  }
}

// Everything one I/O thread owns. `ioc` is declared first so it is destroyed last.
struct Worker {
  asio::io_context ioc{1};
  std::unique_ptr<provider::HttpProvider> provider;
  std::unique_ptr<app::PaymentFlow> flow;
  std::unique_ptr<http::Api> api;
  std::unique_ptr<http::Listener> listener;
};

// Logs what the service clock saw of the wall clock. Service time itself never follows a step
// (core/clock.hpp): settle and delinquency windows are elapsed time.
void log_clock_step(const core::ClockStep& step) {
  const double size_s = static_cast<double>(step.size_ms) / 1000.0;
  const double offset_s = static_cast<double>(step.wall_minus_service_ms) / 1000.0;
  if (step.kind == core::ClockStep::Kind::behind_at_start) {
    spdlog::warn(
        "wall clock is {:.3f} s behind the newest stored time: service time continues from the "
        "stored time, so no timestamp, settle deadline or id goes back",
        -size_s);
    return;
  }
  const std::string summed =
      step.steps > 1 ? fmt::format(" ({} steps since the last report, summed)", step.steps) : "";
  spdlog::warn(
      "wall clock stepped {} by {:.3f} s{}; it is now {:.3f} s {} service time. Service time "
      "follows elapsed time, so settle and delinquency windows are unchanged; a restart "
      "re-anchors to the wall clock if it is ahead",
      size_s < 0 ? "back" : "forward", size_s < 0 ? -size_s : size_s, summed,
      offset_s < 0 ? -offset_s : offset_s, offset_s < 0 ? "behind" : "ahead of");
}

// `payment_service verify` (app/verify.hpp). Exit codes, as README "Commands" documents them:
// 0 the history and the tables agree, 1 they differ (the first difference is printed), 2 invalid
// settings (config::parse), 3 the database cannot be opened or read.
constexpr int kVerifyDiffers = 1;
constexpr int kVerifyCannotRead = 3;

int verify(const config::Config& cfg) {
  const auto started = std::chrono::steady_clock::now();
  const std::string database = config::database_url_for_log(cfg.database_url);
  app::VerifyReport report;
  try {
    // Read-only: no migration, and a SQLite file that does not exist is not created.
    const auto store = store::open_store(cfg.database_url, store::StoreOptions{.read_only = true});
    report = app::verify_history(*store);
  } catch (const std::exception& e) {
    std::cerr << "payment_service verify: cannot read the database " << database << ": " << e.what()
              << "\n";
    return kVerifyCannotRead;
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  if (report.difference) {
    std::cout << "verify: DIFFERENCE " << core::describe(*report.difference) << " (database "
              << database << ", " << ms << " ms)\n";
    return kVerifyDiffers;
  }
  std::cout << "verify: OK: " << report.events << " events replayed reproduce the "
            << report.accounts << " accounts and " << report.payments << " payments stored ("
            << "database " << database << ", " << ms << " ms)";
  if (report.merchant_names_unrecorded > 0) {
    std::cout << "; merchant_name not compared for " << report.merchant_names_unrecorded
              << " payment(s) created before the history recorded it";
  }
  std::cout << "\n";
  return 0;
}

int run(const config::Config& cfg) {
  auto store = store::open_store(
      cfg.database_url,
      store::StoreOptions{.durable = cfg.database_durable,
                          .integrity_check = cfg.database_integrity_check,
                          .wal_checkpoint_pages = cfg.database_wal_checkpoint_pages});
  // Anchored at the newest time written before this start, so time never goes back across a
  // restart either (SPEC 2).
  const core::SystemTimeSources time_sources;
  const core::ServiceClock clock(time_sources, store->latest_event_time().value_or(0),
                                 log_clock_step);
  // One attempt to send a payment: connect and answer, plus the writes around it. A copy sent after
  // a stale pooled connection leases the payment again first (Ledger::prepare_resend), so one lease
  // covers one connect and one answer: 10 s by default, the time within which another instance
  // takes over the sends of one that died (SPEC 8).
  const auto send_lease = cfg.provider_connect_timeout + cfg.provider_timeout + kSendMargin;
  app::Ledger ledger(app::LedgerSettings{
      .time_to_settle_seconds = cfg.time_to_settle_seconds,
      .settle_grace_seconds = cfg.settle_grace_seconds,
      .send_lease_ms = send_lease.count(),
      .idempotency_key_ttl_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::hours(cfg.idempotency_key_ttl_hours))
                                    .count(),
  });
  // With a store other instances write too, GET /accounts reads the store on every request
  // (read-your-writes across instances); the in-memory snapshot is only right for one writer.
  const bool accounts_in_memory = !store->shared();
  app::AccountsView accounts;
  app::Writer writer(std::move(store), clock, accounts,
                     app::WriterOptions{.queue_capacity = cfg.write_queue_capacity,
                                        .batch_max = cfg.write_batch_max});
  writer.run_now([&](store::Store& s, core::TimeMs now, app::Touched& touched) {
    ledger.bootstrap(s, now, touched);
    touched = s.all_accounts();  // publish every account to the read side
  });
  writer.start();

  app::Readers readers(cfg.database_url, kReaderThreads);
  http::Metrics metrics;
  app::ProviderStats provider_stats;

  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned i = 0; i < cfg.threads; ++i) workers.push_back(std::make_unique<Worker>());
  // Payments with an unknown provider outcome, also those left by the last run, wait in the
  // store; the Resender on the first I/O thread sends them again. Declared after `workers`, so
  // it is destroyed before the io_context its timer belongs to.
  auto resender = std::make_unique<app::Resender>(
      writer, ledger, clock, workers.front()->ioc.get_executor(),
      app::ResendPolicy{.probe_initial = cfg.provider_retry_initial,
                        .probe_max = cfg.provider_retry_max,
                        .in_flight_max = kResendsInFlight,
                        .max_per_second = cfg.provider_resend_max_per_second,
                        .outage_after = kOutageAfterUnanswered});
  app::Housekeeping housekeeping(writer, ledger, workers.front()->ioc.get_executor(),
                                 app::HousekeepingPolicy{});
  // What the HTTP layer sees of app/: its use cases, the accounts snapshot and its health.
  app::Commands commands(writer, readers, ledger, clock);
  app::Queries queries(readers, accounts_in_memory ? &accounts : nullptr);
  const app::Health health(writer, provider_stats, *resender);
  http::ApiContext context{commands, queries, accounts_in_memory ? &accounts : nullptr,
                           health,   metrics, http::AllowList::parse(cfg.callback_allow_from)};

  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.set_default_verify_paths();
  tls.set_verify_mode(asio::ssl::verify_peer);
  const provider::ProviderSettings provider_settings{
      .url = cfg.provider_url,
      .username = cfg.provider_username,
      .password = cfg.provider_password,
      .connect_timeout = cfg.provider_connect_timeout,
      .total_timeout = cfg.provider_timeout,
  };

  fit_descriptor_limit(cfg.max_connections);
  http::ServerState state(cfg.max_connections);
  asio::ip::tcp::endpoint endpoint(asio::ip::make_address(cfg.bind), cfg.port);
  for (auto& w : workers) {
    w->provider =
        std::make_unique<provider::HttpProvider>(w->ioc.get_executor(), provider_settings, tls);
    w->flow = std::make_unique<app::PaymentFlow>(
        writer, ledger, *w->provider,
        app::RetryPolicy{.initial = cfg.provider_retry_initial, .max = cfg.provider_retry_max},
        http::render_payment_created, provider_stats,
        [&r = *resender](core::ProviderVerdict v) { r.on_answer(v); });
    w->api = std::make_unique<http::Api>(context, *w->flow);
    w->listener = std::make_unique<http::Listener>(w->ioc, endpoint, *w->api, state);
    endpoint.port(w->listener->port());  // with PORT=0 every thread shares the first free port
  }
  resender->start(*workers.front()->flow);
  housekeeping.start();

  // Graceful shutdown: stop accepting, let in-flight requests finish, then stop.
  asio::io_context& main_ioc = workers.front()->ioc;
  asio::signal_set signals(main_ioc, SIGINT, SIGTERM);
  asio::steady_timer drain_timer(main_ioc);
  std::function<void(std::chrono::steady_clock::time_point)> wait_drained =
      [&](std::chrono::steady_clock::time_point deadline) {
        if (state.requests_in_flight.load() == 0 || std::chrono::steady_clock::now() > deadline) {
          for (auto& w : workers) w->ioc.stop();
          return;
        }
        drain_timer.expires_after(kDrainPoll);
        drain_timer.async_wait([&, deadline](auto) { wait_drained(deadline); });
      };
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: draining in-flight requests", signal);
    state.draining = true;
    for (auto& w : workers) asio::post(w->ioc, [&l = *w->listener] { l.stop(); });
    wait_drained(std::chrono::steady_clock::now() + kDrainTimeout);
  });

  for (auto& w : workers) w->listener->start();
  spdlog::info("payment_service listening on {}:{} with {} I/O thread(s), database {}", cfg.bind,
               endpoint.port(), workers.size(), config::database_url_for_log(cfg.database_url));

  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers.size(); ++i) {
    threads.emplace_back([&ioc = workers[i]->ioc] { ioc.run(); });
  }
  main_ioc.run();
  for (auto& t : threads) t.join();

  // Completions of the last jobs are posted to the (stopped, still alive) io_contexts.
  writer.stop();
  readers.stop();
  spdlog::info("payment_service stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = config::parse(argc, argv);
  if (const auto* exit = std::get_if<config::Exit>(&parsed)) return exit->code;
  const auto& cfg = std::get<config::Config>(parsed);
  config::setup_logging(cfg.log_level, cfg.log_format);
  if (cfg.command == config::Command::verify) return verify(cfg);
  for (const auto& warning : config::startup_warnings(cfg)) spdlog::warn("{}", warning);
  try {
    return run(cfg);
  } catch (const std::exception& e) {
    spdlog::critical("payment_service cannot run: {}", e.what());
    return 1;
  }
}
