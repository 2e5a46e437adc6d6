// Wiring only: configuration, store, writer, readers, one io_context per I/O thread, shutdown.

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <thread>
#include <vector>

#include "app/accounts_view.hpp"
#include "app/ledger.hpp"
#include "app/payments.hpp"
#include "app/readers.hpp"
#include "app/writer.hpp"
#include "config/config.hpp"
#include "config/logging.hpp"
#include "core/clock.hpp"
#include "http/api.hpp"
#include "http/server.hpp"
#include "provider/http_provider.hpp"
#include "store/store.hpp"

namespace {

namespace asio = boost::asio;
using namespace ps;

constexpr std::size_t kReaderThreads = 2;
constexpr auto kDrainTimeout = std::chrono::seconds(10);
constexpr auto kDrainPoll = std::chrono::milliseconds(20);

// Everything one I/O thread owns. `ioc` is declared first so it is destroyed last.
struct Worker {
  asio::io_context ioc{1};
  std::unique_ptr<provider::HttpProvider> provider;
  std::unique_ptr<app::PaymentFlow> flow;
  std::unique_ptr<http::Api> api;
  std::unique_ptr<http::Listener> listener;
};

int run(const config::Config& cfg) {
  core::SystemClock clock;
  auto store = store::open_store(
      cfg.database_url,
      store::StoreOptions{.durable = cfg.database_durable,
                          .integrity_check = cfg.database_integrity_check,
                          .wal_checkpoint_pages = cfg.database_wal_checkpoint_pages});
  app::Ledger ledger(app::LedgerSettings{.time_to_settle_seconds = cfg.time_to_settle_seconds,
                                         .settle_grace_seconds = cfg.settle_grace_seconds},
                     store->max_movement_id());
  app::AccountsView accounts;
  app::Writer writer(std::move(store), clock, accounts,
                     app::WriterOptions{.queue_capacity = cfg.write_queue_capacity,
                                        .batch_max = cfg.write_batch_max});
  std::vector<core::Payment> unresolved;
  writer.run_now([&](store::Store& s, core::TimeMs now, app::Touched& touched) {
    ledger.bootstrap(s, now, touched);
    touched = s.list_accounts();  // publish every account to the read side
    unresolved = s.payments_with_status(core::status::kSubmitting);
  });
  writer.start();

  app::Readers readers(cfg.database_url, kReaderThreads);
  http::Metrics metrics;
  http::ApiContext context{writer,  ledger,  accounts,
                           readers, metrics, http::AllowList::parse(cfg.callback_allow_from)};

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

  http::ServerState state(cfg.max_connections);
  asio::ip::tcp::endpoint endpoint(asio::ip::make_address(cfg.bind), cfg.port);
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned i = 0; i < cfg.threads; ++i) {
    auto w = std::make_unique<Worker>();
    w->provider =
        std::make_unique<provider::HttpProvider>(w->ioc.get_executor(), provider_settings, tls);
    w->flow = std::make_unique<app::PaymentFlow>(
        writer, ledger, *w->provider,
        app::RetryPolicy{.initial = cfg.provider_retry_initial, .max = cfg.provider_retry_max},
        http::render_payment_created, w->ioc.get_executor());
    w->api = std::make_unique<http::Api>(context, *w->flow);
    w->listener = std::make_unique<http::Listener>(w->ioc, endpoint, *w->api, state);
    endpoint.port(w->listener->port());  // with PORT=0 every thread shares the first free port
    workers.push_back(std::move(w));
  }

  // Payments whose provider outcome was unknown at the last stop: keep re-sending them.
  for (std::size_t i = 0; i < unresolved.size(); ++i) {
    workers[i % workers.size()]->flow->resend_in_background(unresolved[i].money_movement_id);
  }
  if (!unresolved.empty()) {
    spdlog::info("resuming {} payment(s) with an unknown provider outcome", unresolved.size());
  }

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
               endpoint.port(), workers.size(), cfg.database_url);

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
  try {
    return run(cfg);
  } catch (const std::exception& e) {
    spdlog::critical("payment_service cannot run: {}", e.what());
    return 1;
  }
}
