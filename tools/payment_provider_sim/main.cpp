// payment_provider_sim: a stand-in for the external payment provider (SPEC section 6).
// This file is wiring only: command line, logging, io_context threads, shutdown order.
#include <csignal>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>

#include "callback_client.hpp"
#include "callback_runner.hpp"
#include "config.hpp"
#include "server.hpp"

namespace {

using provider_sim::SimConfig;

constexpr unsigned kMaxThreads = 64;
constexpr int kMaxSlowMs = 60'000;
constexpr int kMaxSettleGraceSeconds = 3600;

struct Options {
  SimConfig config;
  std::string callback_host;
  int slow_ms = 0;
  int settle_grace_seconds = 2;
  std::string log_level = "info";
};

void add_options(CLI::App& app, Options& options) {
  SimConfig& config = options.config;
  app.add_option("--bind", config.bind_address, "Address to listen on")->capture_default_str();
  app.add_option("--port", config.port, "Port to listen on (0 picks a free port)")
      ->capture_default_str();
  app.add_option("--callback-port", config.callback_port, "Port of the service's callback endpoint")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--callback-host", options.callback_host,
                 "Host to call back instead of the IP the request came from");
  app.add_option("--username", config.username, "Basic auth user the service must present")
      ->envname("PROVIDER_USERNAME")
      ->required();
  app.add_option("--password", config.password, "Basic auth password the service must present")
      ->envname("PROVIDER_PASSWORD")
      ->required();
  app.add_option("--seed", config.seed, "Seed of every random decision")->capture_default_str();
  app.add_option("--callbacks-min", config.script.callbacks_min,
                 "Fewest callbacks per movement (duplicates included)")
      ->check(CLI::Range(0U, provider_sim::kMaxCallbacksPerMovement))
      ->capture_default_str();
  app.add_option("--callbacks-max", config.script.callbacks_max,
                 "Most callbacks per movement (duplicates included)")
      ->check(CLI::Range(0U, provider_sim::kMaxCallbacksPerMovement))
      ->capture_default_str();
  app.add_flag("--no-callbacks", config.no_callbacks,
               "Accept movements but never call back (benchmarks)");
  app.add_flag("--record-callbacks", config.record_callbacks,
               "GET /truth also lists every callback sent, per movement, with the service's "
               "answer (crash tests; about 48 bytes per callback)");
  app.add_option("--fail-rate", config.faults.fail_rate,
                 "Fraction of money-movement requests answered 503 without recording")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--drop-rate", config.faults.drop_rate,
                 "Fraction of requests recorded but answered by closing the connection")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--reject-rate", config.faults.reject_rate,
                 "Fraction of movements answered 400 (business rejection), not recorded")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--late-rate", config.script.late_rate,
                 "Fraction of movements that get one extra callback after their deadline")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--omit-status-rate", config.script.omit_status_rate,
                 "Fraction of callbacks sent without a status field (the service keeps the "
                 "previous status)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--final-unsettled-rate", config.script.final_unsettled_rate,
                 "Fraction of movements whose last callback carries one of "
                 "--final-unsettled-tokens instead of posted")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--final-unsettled-tokens", config.script.final_unsettled_tokens,
                 "Comma-separated statuses [a-z_]{1,32} other than posted that such movements end "
                 "in, drawn uniformly; rejected also takes a movement out of the balance")
      ->delimiter(',')
      ->expected(1, static_cast<int>(provider_sim::kMaxFinalUnsettledTokens))
      ->check(CLI::Validator(
          [](const std::string& token) -> std::string {
            if (!provider_sim::is_status_token(token)) {
              return "status token '" + token + "' is not [a-z_]{1," +
                     std::to_string(provider_sim::kMaxStatusTokenChars) + "}";
            }
            if (token == "posted") return "posted is the settled status, not an unsettled one";
            return {};
          },
          "TOKEN"))
      ->capture_default_str();
  app.add_option("--early-callback-rate", config.script.early_callback_rate,
                 "Fraction of movements whose first callback is written before the 201 answer "
                 "(the answer waits for that write only, at most " +
                     std::to_string(provider_sim::kEarlyCallbackWaitMax.count()) + " ms)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--resend-conflict-rate", config.faults.resend_conflict_rate,
                 "Fraction of re-sends of an already recorded money_movement_id answered 409 "
                 "instead of 201")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--slow-ms", options.slow_ms, "Delay before answering each money-movement request")
      ->check(CLI::Range(0, kMaxSlowMs))
      ->capture_default_str();
  app.add_option("--settle-grace-seconds", options.settle_grace_seconds,
                 "The service's grace after the window; late callbacks go out 1 s after it")
      ->check(CLI::Range(0, kMaxSettleGraceSeconds))
      ->capture_default_str();
  app.add_option("--threads", config.threads, "io_context threads")
      ->check(CLI::Range(1U, kMaxThreads))
      ->capture_default_str();
  app.add_option("--log-level", options.log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
}

// Checks that span several options; CLI11 has already checked each option alone.
void validate(Options& options) {
  SimConfig& config = options.config;
  if (config.script.callbacks_min > config.script.callbacks_max) {
    throw CLI::ValidationError("--callbacks-min", "must not exceed --callbacks-max");
  }
  if (config.username.empty() || config.password.empty()) {
    throw CLI::ValidationError("--username/--password", "must not be empty");
  }
  if (config.username.find(':') != std::string::npos) {
    throw CLI::ValidationError("--username", "must not contain ':' (RFC 7617)");
  }
  if (config.username.size() > provider_sim::kMaxCredentialBytes ||
      config.password.size() > provider_sim::kMaxCredentialBytes) {
    throw CLI::ValidationError(
        "--username/--password",
        "must be at most " + std::to_string(provider_sim::kMaxCredentialBytes) + " bytes");
  }
  if (config.script.final_unsettled_tokens.size() > provider_sim::kMaxFinalUnsettledTokens) {
    throw CLI::ValidationError(
        "--final-unsettled-tokens",
        "at most " + std::to_string(provider_sim::kMaxFinalUnsettledTokens) + " tokens");
  }
  if (!options.callback_host.empty()) config.callback_host = options.callback_host;
  config.slow = std::chrono::milliseconds(options.slow_ms);
  config.settle_grace = std::chrono::seconds(options.settle_grace_seconds);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"payment_provider_sim: simulator of the external payment provider"};
  app.footer(
      "Endpoints: POST /money_movement/ (Basic auth), GET /truth, GET /truth/summary, GET "
      "/healthz.\n"
      "Test controls (no auth): PUT /outage {\"down\": true|false} answers every money movement "
      "503 while down;\nPUT /credentials {\"username\": U, \"password\": P} replaces the "
      "accepted credentials (others get 401).");
  add_options(app, options);
  try {
    app.parse(argc, argv);
    validate(options);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  const SimConfig& config = options.config;

  auto logger = spdlog::stderr_color_mt("payment_provider_sim");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(options.log_level));

  // Declared before the io_context so they outlive it: coroutines destroyed together with the
  // io_context still hold references to them.
  provider_sim::GuardedTruth truth;
  truth.book.keep_callback_history(config.record_callbacks);
  std::unique_ptr<provider_sim::CallbackClient> client;
  std::unique_ptr<provider_sim::CallbackRunner> runner;
  std::unique_ptr<provider_sim::Server> server;

  boost::asio::io_context io_context(static_cast<int>(config.threads));
  client = std::make_unique<provider_sim::CallbackClient>(boost::asio::make_strand(io_context));
  if (!config.no_callbacks) {
    runner = std::make_unique<provider_sim::CallbackRunner>(config, truth, *client);
  }
  server = std::make_unique<provider_sim::Server>(io_context, config, truth, runner.get());

  boost::asio::ip::tcp::endpoint endpoint;
  try {
    endpoint = server->listen();
  } catch (const boost::system::system_error& error) {
    spdlog::error("cannot listen on {}:{}: {}", config.bind_address, config.port,
                  error.code().message());
    return 1;
  }
  server->start();

  boost::asio::signal_set signals(io_context, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    spdlog::info("signal {} received, stopping", signal_number);
    io_context.stop();
  });

  spdlog::info(
      "payment_provider_sim listening on http://{}:{} (callbacks to {}:{}{}, seed {}, "
      "threads {})",
      endpoint.address().to_string(), endpoint.port(), config.callback_host.value_or("<caller IP>"),
      config.callback_port, config.no_callbacks ? " disabled" : "", config.seed, config.threads);

  std::vector<std::thread> threads;
  threads.reserve(config.threads - 1);
  for (unsigned i = 1; i < config.threads; ++i) threads.emplace_back([&] { io_context.run(); });
  io_context.run();
  for (auto& thread : threads) thread.join();

  // Shutdown order: sockets owned by server and client go before the io_context; coroutine
  // frames still queued in it are destroyed with it and find the client closed.
  server->close();
  client->shutdown();
  spdlog::info("stopped");
  return 0;
}
