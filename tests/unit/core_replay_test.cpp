// core/replay: folding the history back into payments and accounts, and finding the first place
// where stored rows or the history itself disagree with the fold. Histories are written by hand
// here (each event as app::Ledger records it); app_verify_test replays what the ledger wrote.

#include "core/replay.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/ledger.hpp"

namespace ps::core {
namespace {

namespace ek = event_kind;

constexpr TimeMs kT0 = 1'790'000'000'000;  // 2026
constexpr TimeMs kDeadline = kT0 + 12'000;
constexpr MovementId kId = 7'000'001;

// An event with only its kind, time and account set.
Event event(const char* kind, TimeMs at, AccountId account) {
  return Event{.event_id = 0,
               .at = at,
               .kind = kind,
               .account_id = account,
               .money_movement_id = std::nullopt,
               .amount_cents = std::nullopt,
               .status = std::nullopt,
               .settle_deadline = std::nullopt,
               .balance_after = 0,
               .settled_balance_after = 0,
               .detail = std::nullopt};
}

// Builds a history the way app::Ledger writes one, numbering the events.
class History {
 public:
  Event& add(Event e) {
    e.event_id = static_cast<EventId>(events_.size()) + 1;
    events_.push_back(std::move(e));
    return events_.back();
  }
  Event& opened(AccountId account, TimeMs at) {
    Event e = event(ek::kAccountOpened, at, account);
    e.status = "current";
    return add(std::move(e));
  }
  Event& payment(const char* kind, TimeMs at, MovementId id, std::optional<Cents> amount,
                 std::optional<std::string> status, std::optional<TimeMs> deadline,
                 Cents balance_after, Cents settled_after, AccountId account = 1) {
    Event e = event(kind, at, account);
    e.money_movement_id = id;
    e.amount_cents = amount;
    e.status = std::move(status);
    e.settle_deadline = deadline;
    e.balance_after = balance_after;
    e.settled_balance_after = settled_after;
    return add(std::move(e));
  }
  Event& created(TimeMs at, MovementId id, Cents amount, Cents balance_after,
                 Cents settled_after = 0) {
    Event& e = payment(ek::kPaymentCreated, at, id, amount, "submitting", at + 12'000,
                       balance_after, settled_after);
    e.detail = "Blue Bottle";
    return e;
  }

  // The first difference while replaying every event; the replay is left in `replay`.
  std::optional<Difference> replay_all(Replay& replay) const {
    for (const Event& e : events_) {
      if (auto d = replay.apply(e)) return d;
    }
    return std::nullopt;
  }

  std::vector<Event>& events() { return events_; }

 private:
  std::vector<Event> events_;
};

// Account 1 opened; payment kId of -2500 created, accepted, posted at -3000 (negative from T0+2s),
// a late callback ignored, then marked delinquent.
History lifecycle() {
  History h;
  h.opened(1, kT0);
  h.created(kT0, kId, -2500, -2500);
  h.payment(ek::kProviderAccepted, kT0 + 100, kId, -2500, "pending", kDeadline, -2500, 0);
  h.payment(ek::kCallbackApplied, kT0 + 2'000, kId, -3000, "posted", kDeadline, -3000, -3000);
  h.payment(ek::kCallbackLate, kDeadline + 1, kId, 999, "failed", kDeadline, -3000, -3000);
  Event delinquent = event(ek::kAccountStatus, kT0 + 20'000, 1);
  delinquent.status = "delinquent";
  delinquent.balance_after = -3000;
  delinquent.settled_balance_after = -3000;
  h.add(std::move(delinquent));
  return h;
}

TEST(CoreReplay, ALifecycleRebuildsThePaymentAndTheAccountWithTheLedgersRules) {
  History h = lifecycle();
  Replay replay;
  ASSERT_EQ(h.replay_all(replay), std::nullopt);
  EXPECT_EQ(replay.events_applied(), 6U);

  const Account& account = replay.accounts().at(1);
  EXPECT_EQ(account, (Account{.account_id = 1,
                              .created_at = kT0,
                              .status = AccountStatus::delinquent,
                              .balance = -3000,
                              .settled_balance = -3000,
                              .negative_since = kT0 + 2'000}));
  const ReplayedPayment& replayed = replay.payments().at(kId);
  EXPECT_TRUE(replayed.merchant_name_recorded);
  const Payment& p = replayed.payment;
  EXPECT_EQ(p.account_id, 1);
  EXPECT_EQ(p.amount_cents, -3000);  // the late callback's 999 changed nothing
  EXPECT_EQ(p.original_amount_cents, -2500);
  EXPECT_EQ(p.merchant_name, "Blue Bottle");
  EXPECT_EQ(p.status, "posted");
  EXPECT_EQ(p.created_at, kT0);
  EXPECT_EQ(p.updated_at, kT0 + 2'000);
  EXPECT_EQ(p.last_sent_at, kT0);
  EXPECT_EQ(p.settle_deadline, kDeadline);
  EXPECT_EQ(p.callbacks_applied, 1);
  EXPECT_FALSE(p.resend_at.has_value());
  EXPECT_EQ(p.send_attempts, 1);
}

TEST(CoreReplay, ARejectionLeavesTheBalanceAndAReSendMovesTheDeadline) {
  History h;
  h.opened(1, kT0);
  h.created(kT0, kId, 500, 500);
  h.payment(ek::kPaymentResent, kT0 + 3'000, kId, 500, "submitting", kT0 + 15'000, 500, 0);
  h.created(kT0 + 4'000, kId + 1, 700, 1200);
  h.payment(ek::kProviderRejected, kT0 + 5'000, kId + 1, 700, "rejected", kT0 + 16'000, 500, 0);
  Replay replay;
  ASSERT_EQ(h.replay_all(replay), std::nullopt);

  const Payment& resent = replay.payments().at(kId).payment;
  EXPECT_EQ(resent.last_sent_at, kT0 + 3'000);
  EXPECT_EQ(resent.settle_deadline, kT0 + 15'000);
  EXPECT_EQ(resent.send_attempts, 2);
  EXPECT_TRUE(resent.resend_at.has_value());  // still awaits the provider
  EXPECT_EQ(resent.status, "submitting");
  const Payment& rejected = replay.payments().at(kId + 1).payment;
  EXPECT_EQ(rejected.status, "rejected");
  EXPECT_FALSE(rejected.resend_at.has_value());
  EXPECT_EQ(replay.accounts().at(1).balance, 500);
}

TEST(CoreReplay, SettledBalanceBackToZeroEndsTheNegativeRun) {
  History h;
  h.opened(1, kT0);
  h.created(kT0, kId, -100, -100);
  h.payment(ek::kCallbackApplied, kT0 + 1'000, kId, -100, "posted", kDeadline, -100, -100);
  h.payment(ek::kCallbackApplied, kT0 + 2'000, kId, -100, "returned", kDeadline, -100, 0);
  Replay replay;
  ASSERT_EQ(h.replay_all(replay), std::nullopt);
  EXPECT_EQ(replay.accounts().at(1).negative_since, std::nullopt);
  EXPECT_EQ(replay.accounts().at(1).settled_balance, 0);
  EXPECT_EQ(replay.payments().at(kId).payment.callbacks_applied, 2);
}

TEST(CoreReplay, AHistoryWithoutTheMerchantNameLeavesItUnchecked) {
  History h;
  h.opened(1, kT0);
  h.created(kT0, kId, 100, 100).detail.reset();  // written before payment_created recorded it
  Replay replay;
  ASSERT_EQ(h.replay_all(replay), std::nullopt);
  EXPECT_EQ(replay.merchant_names_unrecorded(), 1U);
  Payment stored = replay.payments().at(kId).payment;
  stored.merchant_name = "Anything";
  EXPECT_EQ(compare(replay.payments().at(kId), stored), std::nullopt);
}

// Each way an event can contradict the history before it: the event and column named.
struct BadEvent {
  const char* name;
  void (*corrupt)(History&);
  EventId event_id;
  const char* column;
};

class CoreReplayBadEvent : public ::testing::TestWithParam<BadEvent> {};

TEST_P(CoreReplayBadEvent, IsTheFirstDifference) {
  History h = lifecycle();
  GetParam().corrupt(h);
  Replay replay;
  const auto d = h.replay_all(replay);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->table, "events");
  EXPECT_EQ(d->id, GetParam().event_id) << describe(*d);
  EXPECT_EQ(d->column, GetParam().column) << describe(*d);
}

TEST(CoreReplay, AnEventsDifferenceSaysWhatTheEventsBeforeItAllow) {
  History h = lifecycle();
  h.events()[3].balance_after += 1;
  Replay replay;
  const auto d = h.replay_all(replay);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(describe(*d),
            "events 4 balance_after: expected -3000 (from the events before it), stored -2999");
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CoreReplayBadEvent,
    ::testing::Values(
        BadEvent{"BalanceAfter", [](History& h) { h.events()[3].balance_after += 1; }, 4,
                 "balance_after"},
        BadEvent{"SettledBalanceAfter", [](History& h) { h.events()[5].settled_balance_after = 0; },
                 6, "settled_balance_after"},
        BadEvent{"StatusAfterCallback", [](History& h) { h.events()[2].status = "posted"; }, 3,
                 "status"},
        BadEvent{"AmountOfCreatedPayment", [](History& h) { h.events()[1].amount_cents = 0; }, 2,
                 "amount_cents"},
        BadEvent{"UnknownKind", [](History& h) { h.events()[2].kind = "refunded"; }, 3, "kind"},
        BadEvent{"AccountNeverOpened", [](History& h) { h.events().erase(h.events().begin()); }, 2,
                 "account_id"},
        BadEvent{"PaymentNeverCreated",
                 [](History& h) { h.events().erase(h.events().begin() + 1); }, 3,
                 "money_movement_id"},
        BadEvent{"PaymentCreatedTwice", [](History& h) { h.add(h.events()[1]); }, 7,
                 "money_movement_id"},
        BadEvent{"AccountOpenedTwice", [](History& h) { h.add(h.events()[0]); }, 7, "account_id"},
        BadEvent{"LateCallbackBeforeTheDeadline", [](History& h) { h.events()[4].at = kDeadline; },
                 5, "at"},
        BadEvent{"RejectionAfterACallback",
                 [](History& h) {
                   h.payment(ek::kProviderRejected, kT0 + 3'000, kId, -3000, "rejected", kDeadline,
                             0, 0);
                 },
                 7, "kind"},
        BadEvent{"ReSendAfterAcceptance",
                 [](History& h) {
                   h.payment(ek::kPaymentResent, kT0 + 3'000, kId, -3000, "posted",
                             kDeadline + 5'000, -3000, -3000);
                 },
                 7, "kind"},
        BadEvent{"PaymentOfAnotherAccount",
                 [](History& h) {
                   h.events()[3].account_id = 2;  // the callback of account 1's payment
                   Event opened = event(ek::kAccountOpened, kT0, 2);
                   opened.event_id = 100;
                   h.events().insert(h.events().begin() + 1, opened);
                 },
                 4, "account_id"},
        BadEvent{"UnknownAccountStatus", [](History& h) { h.events()[5].status = "frozen"; }, 6,
                 "status"}),
    [](const ::testing::TestParamInfo<BadEvent>& info) { return std::string(info.param.name); });

// Stored rows against the replay.
class CoreReplayCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    History h = lifecycle();
    h.created(kT0 + 30'000, kId + 1, 40, -2960, -3000);
    h.created(kT0 + 30'001, kId + 2, 60, -2900, -3000);
    h.opened(2, kT0 + 30'002);
    history_ = h;
    ASSERT_EQ(history_.replay_all(replay_), std::nullopt);
    for (const auto& [id, a] : replay_.accounts()) accounts_.push_back(a);
    for (const auto& [id, p] : replay_.payments()) payments_.push_back(p.payment);
  }

  History history_;
  Replay replay_;
  std::vector<Account> accounts_;  // as the store would hold them: equal to the replay
  std::vector<Payment> payments_;
};

TEST_F(CoreReplayCheck, EqualRowsInBatchesHaveNoDifference) {
  EXPECT_EQ(replay_.check_accounts(accounts_), std::nullopt);
  EXPECT_EQ(replay_.check_accounts_end(), std::nullopt);
  for (const Payment& p : payments_) {
    EXPECT_EQ(replay_.check_payments(std::span<const Payment>(&p, 1)), std::nullopt);
  }
  EXPECT_EQ(replay_.check_payments_end(), std::nullopt);
}

TEST_F(CoreReplayCheck, AStoredRowDifferingInOneColumnIsNamedWithBothValues) {
  payments_[1].status = "posted";
  payments_[2].amount_cents = 1;  // later: not reported
  const auto d = replay_.check_payments(payments_);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(*d, (Difference{"payments", kId + 1, "status", "'submitting'", "'posted'"}));
  EXPECT_EQ(describe(*d),
            "payments 7000002 status: the history says 'submitting', stored 'posted'");
}

TEST_F(CoreReplayCheck, AStoredRowTheHistoryDoesNotCreateIsADifference) {
  Payment extra = payments_[1];
  extra.money_movement_id = kId + 100;
  payments_.push_back(extra);
  EXPECT_EQ(replay_.check_payments(payments_),
            (Difference{"payments", kId + 100, "row", "absent (no event creates it)", "present"}));
}

TEST_F(CoreReplayCheck, AReplayedRowMissingFromTheStoreIsADifference) {
  payments_.erase(payments_.begin() + 1);  // in the middle
  EXPECT_EQ(replay_.check_payments(payments_),
            (Difference{"payments", kId + 1, "row", "present", "absent"}));

  Replay again;
  ASSERT_EQ(history_.replay_all(again), std::nullopt);
  accounts_.pop_back();  // at the end: found once every stored row was seen
  EXPECT_EQ(again.check_accounts(accounts_), std::nullopt);
  EXPECT_EQ(again.check_accounts_end(), (Difference{"accounts", 2, "row", "present", "absent"}));
}

TEST_F(CoreReplayCheck, EveryAccountColumnIsCompared) {
  const Account& expected = replay_.accounts().at(1);
  const auto column = [&](void (*change)(Account&)) {
    Account stored = expected;
    change(stored);
    const auto d = compare(expected, stored);
    return d ? d->column : std::string("(none)");
  };
  EXPECT_EQ(column([](Account& a) { a.created_at += 1; }), "created_at");
  EXPECT_EQ(column([](Account& a) { a.status = AccountStatus::current; }), "status");
  EXPECT_EQ(column([](Account& a) { a.balance += 1; }), "balance");
  EXPECT_EQ(column([](Account& a) { a.settled_balance -= 1; }), "settled_balance");
  EXPECT_EQ(column([](Account& a) { a.negative_since = kT0; }), "negative_since");
}

TEST_F(CoreReplayCheck, EveryPaymentColumnIsComparedAndResendAtOnlyForBeingSet) {
  const ReplayedPayment& expected = replay_.payments().at(kId);
  const auto column = [&](void (*change)(Payment&)) {
    Payment stored = expected.payment;
    change(stored);
    const auto d = compare(expected, stored);
    return d ? d->column : std::string("(none)");
  };
  EXPECT_EQ(column([](Payment& p) { p.account_id = 2; }), "account_id");
  EXPECT_EQ(column([](Payment& p) { p.amount_cents += 1; }), "amount_cents");
  EXPECT_EQ(column([](Payment& p) { p.original_amount_cents += 1; }), "original_amount_cents");
  EXPECT_EQ(column([](Payment& p) { p.merchant_name = "Other"; }), "merchant_name");
  EXPECT_EQ(column([](Payment& p) { p.status = "pending"; }), "status");
  EXPECT_EQ(column([](Payment& p) { p.created_at += 1; }), "created_at");
  EXPECT_EQ(column([](Payment& p) { p.updated_at += 1; }), "updated_at");
  EXPECT_EQ(column([](Payment& p) { p.last_sent_at += 1; }), "last_sent_at");
  EXPECT_EQ(column([](Payment& p) { p.settle_deadline += 1; }), "settle_deadline");
  EXPECT_EQ(column([](Payment& p) { p.callbacks_applied += 1; }), "callbacks_applied");
  EXPECT_EQ(column([](Payment& p) { p.resend_at = kT0; }), "resend_at");
  EXPECT_EQ(column([](Payment& p) { p.send_attempts = 2; }), "send_attempts");

  // A payment awaiting the provider: any due time agrees, none does not.
  const ReplayedPayment& waiting = replay_.payments().at(kId + 1);
  Payment stored = waiting.payment;
  stored.resend_at = kT0 + 123'456;  // a backoff moved it
  EXPECT_EQ(compare(waiting, stored), std::nullopt);
  stored.resend_at.reset();
  EXPECT_EQ(compare(waiting, stored),
            (Difference{"payments", kId + 1, "resend_at", "a time (a re-send is due)", "NULL"}));
}

}  // namespace
}  // namespace ps::core
