#pragma once
// One model run: draws the seed's operations one by one, performs each against the service,
// and after each one compares what the service shows with the model (the payments and
// accounts the step touched; every payment and account every `full_check_every` steps, after
// each restart and at the end, with the ledger invariants and `payment_service verify`).

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <optional>
#include <string>

#include "operations.hpp"

namespace model {

struct RunOptions {
  std::uint64_t seed = 1;
  std::size_t ops = 10000;
  bool postgres = false;
  std::size_t full_check_every = 500;
  // After this step, change a payment behind the service's back (the test of the test: the
  // run must fail, and the shortest failing prefix must be this step).
  std::optional<std::size_t> plant_difference_at;
  bool verbose = false;
  std::filesystem::path service_binary;
};

struct RunStats {
  std::array<std::size_t, kOpKinds> ops_by_kind{};
  std::array<double, kOpKinds> seconds_by_kind{};
  std::size_t payments = 0;
  std::size_t accounts = 0;
  std::size_t callbacks_applied = 0;
  std::size_t callbacks_late = 0;
  std::size_t statuses_learned = 0;  // recalculate results the test could not time exactly
  std::size_t races_timed_out = 0;   // racing callbacks that took longer than the provider timeout
  std::size_t full_checks = 0;
  double seconds = 0;
};

struct RunResult {
  bool passed = true;
  std::size_t step = 0;  // 1-based step of the first difference (0: set-up or final checks)
  std::string operation;
  std::string message;
  std::deque<std::string> recent_operations;
  std::string service_log_tail;
  RunStats stats;
};

RunResult run_model(const RunOptions& options);

}  // namespace model
