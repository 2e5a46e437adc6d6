#pragma once
// `payment_service verify` (SPEC 4: "replaying the history reproduces every payment and account
// exactly"): replays the stored event history with the ledger's own rules (core/replay.hpp) and
// compares the result with the stored accounts and payments, all in one snapshot of the
// database, so it may run while the service writes. It only reads.
//
// Memory: events and payments are read in batches of `batch` rows; what grows with the database
// is the replayed state, one payment and one account per row of those tables (the history itself
// is never held whole).

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/replay.hpp"
#include "store/store.hpp"

namespace ps::app {

struct VerifyReport {
  std::uint64_t events = 0;    // events replayed
  std::uint64_t accounts = 0;  // stored accounts read
  std::uint64_t payments = 0;  // stored payments read
  // Payments created before payment_created recorded the merchant name: that column is not
  // compared for them.
  std::uint64_t merchant_names_unrecorded = 0;
  std::optional<core::Difference> difference;  // the first one; empty when everything agrees
};

// Rows per read. 10,000 events are about 2 MB in memory; fewer round trips than that gain
// nothing measurable against replaying them.
inline constexpr std::size_t kVerifyBatch = 10'000;

// Replays every event of `s` in event_id order, then compares the stored accounts and payments in
// id order, and stops at the first difference. Throws store::StoreError when `s` cannot be read.
VerifyReport verify_history(store::Store& s, std::size_t batch = kVerifyBatch);

}  // namespace ps::app
