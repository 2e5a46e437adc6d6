// model_test: model-based random testing of payment_service (the idea of TigerBeetle's VOPR
// and Blnk's invariant fuzz tests). A seed draws a sequence of operations (payments, idempotent
// retries, callbacks on time, late, twice, for unknown ids, recalculations, restarts, kill -9,
// clock steps, provider faults and outages); each runs against the real service and is checked
// against an in-memory model of the ledger (ledger_model.hpp). On a difference the run stops,
// prints the seed, the step, what was expected and what the service showed, then runs shorter
// prefixes of the same sequence on a fresh service to find the shortest one that fails, and
// prints the command that reproduces it.
//
//   model_test --seed 42 [--ops 10000] [--store sqlite|postgres] [--full-check-every 500]
//              [--no-shrink] [--shrink-budget-seconds 900] [--verbose]
//              [--plant-difference-at STEP]
//
// PostgreSQL needs the test cluster of scripts/with-test-postgres (PS_TEST_POSTGRES_URL).
// Exit: 0 passed, 1 a difference (or the service failed), 2 bad arguments, 77 skipped (no
// PostgreSQL test cluster; a failure instead when PS_REQUIRE_POSTGRES=1).

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>

#include "runner.hpp"
#include "test_support/postgres.hpp"

namespace {

constexpr int kExitSkipped = 77;

void usage(std::ostream& out) {
  out << "usage: model_test --seed N [--ops N] [--store sqlite|postgres] [--full-check-every N]\n"
         "                  [--no-shrink] [--shrink-budget-seconds S] [--verbose]\n"
         "                  [--plant-difference-at STEP]\n";
}

bool parse_number(std::string_view text, std::uint64_t& out) {
  if (text.empty()) return false;
  std::uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  out = value;
  return true;
}

std::string command_for(const model::RunOptions& o, std::size_t ops) {
  std::ostringstream out;
  out << "build/bin/model_test --seed " << o.seed << " --ops " << ops << " --store "
      << (o.postgres ? "postgres" : "sqlite");
  if (o.plant_difference_at) out << " --plant-difference-at " << *o.plant_difference_at;
  if (o.postgres) out.str("scripts/with-test-postgres " + out.str());
  return out.str();
}

void print_summary(const model::RunOptions& o, const model::RunResult& r) {
  const auto& s = r.stats;
  std::size_t ops = 0;
  for (const auto n : s.ops_by_kind) ops += n;
  std::cout << std::fixed << std::setprecision(1) << "model_test: seed " << o.seed << ", " << ops
            << " operations on " << (o.postgres ? "PostgreSQL" : "SQLite") << " in " << s.seconds
            << " s (" << std::setprecision(0)
            << (s.seconds > 0 ? static_cast<double>(ops) / s.seconds : 0)
            << " ops/s): " << s.payments << " payments, " << s.accounts << " accounts, "
            << s.callbacks_applied << " callbacks applied, " << s.callbacks_late << " late, "
            << s.full_checks << " full checks, " << s.statuses_learned
            << " delinquency statuses learned (window edge), " << s.races_timed_out
            << " racing callbacks slower than the provider timeout\n";
  std::cout << "  operations (count, seconds):";
  for (std::size_t k = 0; k < model::kOpKinds; ++k) {
    if (s.ops_by_kind[k] == 0) continue;
    std::cout << ' ' << model::to_string(static_cast<model::OpKind>(k)) << ' ' << s.ops_by_kind[k]
              << ' ' << std::setprecision(1) << s.seconds_by_kind[k];
  }
  std::cout << std::endl;
}

void print_failure(const model::RunOptions& o, const model::RunResult& r) {
  std::cout << "model_test: FAILED: seed " << o.seed << " on "
            << (o.postgres ? "PostgreSQL" : "SQLite") << ", step " << r.step << " of " << o.ops
            << "\n  operation: " << r.operation << "\n  difference: " << r.message
            << "\n  the operations before it:\n";
  for (const auto& line : r.recent_operations) std::cout << "    " << line << "\n";
  if (!r.service_log_tail.empty()) {
    std::cout << "  ----- service log tail -----\n" << r.service_log_tail << "\n  -----\n";
  }
  std::cout << std::flush;
}

}  // namespace

int main(int argc, char** argv) {
  model::RunOptions options;
  bool shrink = true;
  bool seed_given = false;
  std::uint64_t shrink_budget_seconds = 900;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&](std::uint64_t& out) {
      if (i + 1 >= argc || !parse_number(argv[i + 1], out)) {
        std::cerr << "model_test: " << arg << " needs a non-negative integer\n";
        usage(std::cerr);
        std::exit(2);
      }
      ++i;
    };
    std::uint64_t n = 0;
    if (arg == "--seed") {
      value(options.seed);
      seed_given = true;
    } else if (arg == "--ops") {
      value(n);
      options.ops = n;
    } else if (arg == "--full-check-every") {
      value(n);
      options.full_check_every = n == 0 ? 1 : n;
    } else if (arg == "--plant-difference-at") {
      value(n);
      options.plant_difference_at = n;
    } else if (arg == "--shrink-budget-seconds") {
      value(shrink_budget_seconds);
    } else if (arg == "--store" && i + 1 < argc) {
      const std::string_view store = argv[++i];
      if (store != "sqlite" && store != "postgres") {
        std::cerr << "model_test: --store is sqlite or postgres\n";
        return 2;
      }
      options.postgres = store == "postgres";
    } else if (arg == "--no-shrink") {
      shrink = false;
    } else if (arg == "--verbose") {
      options.verbose = true;
    } else if (arg == "--help" || arg == "-h") {
      usage(std::cout);
      return 0;
    } else {
      std::cerr << "model_test: unknown argument " << arg << "\n";
      usage(std::cerr);
      return 2;
    }
  }
  if (!seed_given) {
    std::cerr << "model_test: --seed is required (a run is a pure function of its seed)\n";
    usage(std::cerr);
    return 2;
  }
  options.service_binary = PAYMENT_SERVICE_BIN;
  if (options.postgres && !test_support::postgres_admin_url()) {
    if (test_support::postgres_required()) {
      std::cout << "model_test: PS_REQUIRE_POSTGRES=1 but PS_TEST_POSTGRES_URL is not set\n";
      return 1;
    }
    std::cout << "model_test: skipped: no PostgreSQL test cluster (run it under "
                 "scripts/with-test-postgres)\n";
    return kExitSkipped;
  }

  std::cout << "model_test: seed " << options.seed << ", " << options.ops << " operations on "
            << (options.postgres ? "PostgreSQL" : "SQLite")
            << "; reproduce with: " << command_for(options, options.ops) << std::endl;
  const auto result = model::run_model(options);
  print_summary(options, result);
  if (result.passed) {
    std::cout << "model_test: PASSED" << std::endl;
    return 0;
  }
  print_failure(options, result);
  if (!shrink || result.step <= 1) {
    std::cout << "model_test: reproduce with: "
              << command_for(options, result.step == 0 ? options.ops : result.step) << std::endl;
    return 1;
  }

  // The shortest failing prefix: the same sequence cut short, each on a fresh service and
  // database, bisected between a length known to pass and one known to fail (every prefix
  // ends with the full check, so a difference shows at the step that made it).
  const auto budget_end =
      std::chrono::steady_clock::now() + std::chrono::seconds(shrink_budget_seconds);
  std::size_t passing = 0;
  std::size_t failing = result.step;
  model::RunResult shortest = result;
  bool exhausted = false;
  while (failing - passing > 1) {
    if (std::chrono::steady_clock::now() > budget_end) {
      exhausted = true;
      break;
    }
    const std::size_t mid = passing + (failing - passing) / 2;
    model::RunOptions prefix = options;
    prefix.ops = mid;
    prefix.verbose = false;
    const auto attempt = model::run_model(prefix);
    if (!attempt.passed && attempt.step == 0) {
      std::cout << "model_test: shrinking stopped: a run failed before its first operation: "
                << attempt.message << std::endl;
      exhausted = true;
      break;
    }
    std::cout << "model_test: shrinking: the first " << mid << " operations "
              << (attempt.passed ? "pass" : "fail") << std::endl;
    if (attempt.passed) {
      passing = mid;
    } else {
      failing = mid;
      shortest = attempt;
    }
  }
  std::cout << "model_test: shortest failing prefix: " << failing << " operations"
            << (exhausted ? " (shrinking stopped early; a shorter one may exist)" : "")
            << "\n  step " << shortest.step << ": " << shortest.operation
            << "\n  difference: " << shortest.message
            << "\nmodel_test: reproduce with: " << command_for(options, failing) << std::endl;
  return 1;
}
