// loadgen: closed-loop HTTP load generator for payment_service (payments and callbacks).
// This file is the command line and the files; the load itself is in runner.cpp.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "runner.hpp"

namespace {

std::vector<std::int64_t> read_ids(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("cannot read " + path);
  }
  std::vector<std::int64_t> ids;
  std::string line;
  while (std::getline(in, line)) {
    const auto begin = line.find_first_not_of(" \t\r");
    if (begin == std::string::npos || line[begin] == '#') {
      continue;
    }
    std::size_t used = 0;
    const long long id = std::stoll(line.substr(begin), &used);
    if (id <= 0) {
      std::string message = "not a positive money_movement_id in ";
      message += path;
      message += ": ";
      message += line;
      throw std::runtime_error(message);
    }
    ids.push_back(static_cast<std::int64_t>(id));
  }
  return ids;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    throw std::runtime_error("cannot write " + path);
  }
}

}  // namespace

int main(int argc, char** argv) {
  loadgen::Config config;
  std::string mode = "payments";
  std::uint64_t count = 0;
  double duration_s = 0;
  std::string ids_in;
  std::string ids_out;
  std::string results_out;
  std::string summary_out;
  long timeout_ms = 10'000;

  CLI::App app{
      "loadgen: closed-loop load generator for payment_service. Each of --concurrency keep-alive "
      "connections sends one request, waits for the answer, sends the next. Prints a JSON "
      "summary on stdout."};
  app.add_option("mode,--mode", mode,
                 "payments: POST /payments; callbacks: POST /money_movement_request_callback "
                 "for the ids of --ids-in")
      ->check(CLI::IsMember({"payments", "callbacks"}))
      ->capture_default_str();
  app.add_option("--host", config.host, "Service host")->capture_default_str();
  app.add_option("--port", config.port, "Service port")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--concurrency,-c", config.concurrency, "Concurrent connections")
      ->check(CLI::Range(1U, 100'000U))
      ->capture_default_str();
  app.add_option("--threads,-t", config.threads, "Threads, one io_context each")
      ->check(CLI::Range(1U, 256U))
      ->capture_default_str();
  auto* count_option = app.add_option("--count,-n", count, "Total requests")
                           ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  auto* duration_option = app.add_option("--duration-s,-d", duration_s, "Run for this long")
                              ->check(CLI::Range(0.001, 86'400.0));
  app.add_option("--seed", config.seed, "Seed of amounts (requests are a function of seed, index)")
      ->capture_default_str();
  app.add_option("--accounts", config.accounts,
                 "payments: account ids, used round-robin (comma-separated)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--ids-in", ids_in, "callbacks: file of money_movement_ids, one per line")
      ->check(CLI::ExistingFile);
  app.add_option("--ids-out", ids_out,
                 "payments: write the ids of created payments (answers 201 and 202), one per "
                 "line, in request order");
  app.add_option("--results-out", results_out,
                 "write one line per request: INDEX STATUS MONEY_MOVEMENT_ID (tab-separated; "
                 "status 0 = transport error, id 0 = none)");
  app.add_option("--summary-out", summary_out, "also write the JSON summary to this file");
  app.add_option("--timeout-ms", timeout_ms, "Per-request timeout, connect included")
      ->check(CLI::Range(1L, 3'600'000L))
      ->capture_default_str();
  app.add_option("--idempotency-prefix", config.idempotency_prefix,
                 "payments: send Idempotency-Key PREFIX-INDEX with each request");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version exit 0; every usage error exits 2 (CLI11's own codes vary).
    return app.exit(error) == 0 ? 0 : 2;
  }

  config.mode = mode == "payments" ? loadgen::Mode::kPayments : loadgen::Mode::kCallbacks;
  if (count_option->count() > 0) {
    config.count = count;
  }
  if (duration_option->count() > 0) {
    config.duration_s = duration_s;
  }
  if (!config.count && !config.duration_s) {
    config.count = 1000;
  }
  config.timeout = std::chrono::milliseconds(timeout_ms);
  config.threads = std::min(config.threads, config.concurrency);
  config.keep_results = !ids_out.empty() || !results_out.empty();

  try {
    if (config.mode == loadgen::Mode::kCallbacks) {
      if (ids_in.empty()) {
        std::cerr << "loadgen: callbacks mode needs --ids-in FILE\n";
        return 2;
      }
      config.ids = read_ids(ids_in);
      if (config.ids.empty()) {
        std::cerr << "loadgen: " << ids_in << " holds no ids\n";
        return 2;
      }
    }

    const loadgen::Summary summary = loadgen::run(config);

    for (const auto& error : summary.first_errors) {
      std::cerr << "loadgen: " << error << "\n";
    }
    if (!ids_out.empty()) {
      std::string text;
      for (const auto& result : summary.results) {
        if ((result.status == 201 || result.status == 202) && result.money_movement_id > 0) {
          text += std::to_string(result.money_movement_id);
          text += '\n';
        }
      }
      write_file(ids_out, text);
    }
    if (!results_out.empty()) {
      std::string text;
      for (const auto& result : summary.results) {
        text += std::to_string(result.index);
        text += '\t';
        text += std::to_string(result.status);
        text += '\t';
        text += std::to_string(result.money_movement_id);
        text += '\n';
      }
      write_file(results_out, text);
    }
    const std::string json = summary.to_json(config);
    std::cout << json << std::endl;
    if (!summary_out.empty()) {
      write_file(summary_out, json + "\n");
    }
  } catch (const std::exception& error) {
    std::cerr << "loadgen: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
