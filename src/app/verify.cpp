#include "app/verify.hpp"

#include <cassert>
#include <limits>

namespace ps::app {

namespace {

// Every row of both tables, also one whose id a damaged or edited table made zero or negative.
constexpr std::int64_t kBeforeEveryId = std::numeric_limits<std::int64_t>::min();

std::optional<core::Difference> replay_and_compare(store::Store& s, std::size_t batch,
                                                   core::Replay& replay, VerifyReport& report) {
  for (core::EventId after = kBeforeEveryId;;) {
    const auto events = s.events_after(after, batch);
    for (const core::Event& e : events) {
      if (auto d = replay.apply(e)) return d;
    }
    if (events.size() < batch) break;
    after = events.back().event_id;
  }

  const auto accounts = s.all_accounts();  // in id order
  report.accounts = accounts.size();
  if (auto d = replay.check_accounts(accounts)) return d;
  if (auto d = replay.check_accounts_end()) return d;

  for (core::MovementId after = kBeforeEveryId;;) {
    const auto payments = s.payments_after(after, batch);
    report.payments += payments.size();
    if (auto d = replay.check_payments(payments)) return d;
    if (payments.size() < batch) break;
    after = payments.back().money_movement_id;
  }
  return replay.check_payments_end();
}

}  // namespace

VerifyReport verify_history(store::Store& s, std::size_t batch) {
  assert(batch > 0);
  VerifyReport report;
  core::Replay replay;
  s.begin_snapshot();
  try {
    report.difference = replay_and_compare(s, batch, replay, report);
    s.commit();  // wrote nothing: ends the snapshot
  } catch (...) {
    s.rollback();
    throw;
  }
  report.events = replay.events_applied();
  report.merchant_names_unrecorded = replay.merchant_names_unrecorded();
  return report;
}

}  // namespace ps::app
