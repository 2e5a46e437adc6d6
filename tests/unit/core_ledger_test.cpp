// core/ledger: the balance rules of SPEC section 4 as pure functions.

#include "core/ledger.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/money.hpp"
#include "core/types.hpp"

namespace ps::core {
namespace {

constexpr TimeMs kT0 = 1'790'000'000'000;  // some instant in 2026
constexpr TimeMs kSendLeaseMs = 15'000;

Account fresh_account(TimeMs created_at = kT0) {
  return Account{.account_id = 1,
                 .created_at = created_at,
                 .status = AccountStatus::current,
                 .balance = 0,
                 .settled_balance = 0,
                 .negative_since = std::nullopt};
}

Payment new_payment(Cents amount, MovementId id = 42, TimeMs now = kT0) {
  return Payment{.money_movement_id = id,
                 .account_id = 1,
                 .amount_cents = amount,
                 .original_amount_cents = amount,
                 .merchant_name = "Blue Bottle",
                 .status = std::string(status::kSubmitting),
                 .created_at = now,
                 .updated_at = now,
                 .last_sent_at = now,
                 .settle_deadline = settle_deadline(now, 10, 2),
                 .callbacks_applied = 0,
                 .resend_at = now + kSendLeaseMs,  // its first send is under way
                 .send_attempts = 1};
}

// A payment and its account, moved together the way app::Ledger moves them.
struct Book {
  Account account = fresh_account();
  Payment payment;

  explicit Book(Cents amount, TimeMs now = kT0) : payment(new_payment(amount, 42, now)) {
    const auto a = apply_new_payment(account, payment, now);
    EXPECT_TRUE(a.has_value());
    account = *a;
  }

  // Applies a callback; false when the arithmetic overflowed (nothing changes then).
  bool callback(Cents amount, std::optional<std::string> st, TimeMs now) {
    const Payment next = with_callback(payment, CallbackInput{amount, std::move(st)}, now);
    const auto a = apply_payment_change(account, payment, next, now);
    if (!a) return false;
    payment = next;
    account = *a;
    return true;
  }
};

TEST(CoreLedger, NewPaymentCountsInBalanceButNotInSettled) {
  Book b(100);
  EXPECT_EQ(b.payment.status, "submitting");
  EXPECT_EQ(b.account.balance, 100);
  EXPECT_EQ(b.account.settled_balance, 0);
  EXPECT_FALSE(b.account.negative_since.has_value());
}

TEST(CoreLedger, CallbackSequenceFollowsTheLatestAmountAndStatus) {
  struct Step {
    Cents amount;
    const char* status;
    Cents settled;
  };
  const std::vector<Step> steps = {
      {100, "pending", 0}, {50, "pending", 0}, {50, "posted", 50},   {0, "pending", 0},
      {50, "posted", 50},  {50, "posted", 50}, {100, "posted", 100},
  };
  Book b(100);
  TimeMs now = kT0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i) + ": " + steps[i].status + " " +
                 std::to_string(steps[i].amount));
    now += 500;
    ASSERT_TRUE(b.callback(steps[i].amount, std::string(steps[i].status), now));
    EXPECT_EQ(b.account.settled_balance, steps[i].settled);
    EXPECT_EQ(b.account.balance, steps[i].amount);
    EXPECT_EQ(b.payment.amount_cents, steps[i].amount);
    EXPECT_EQ(b.payment.status, steps[i].status);
    EXPECT_EQ(b.payment.callbacks_applied, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(b.payment.updated_at, now);
    EXPECT_EQ(b.payment.original_amount_cents, 100);
  }
}

TEST(CoreLedger, DuplicateCallbackLeavesBalancesUnchanged) {
  Book b(100);
  ASSERT_TRUE(b.callback(80, "posted", kT0 + 1000));
  const Account after_first = b.account;
  ASSERT_TRUE(b.callback(80, "posted", kT0 + 2000));
  EXPECT_EQ(b.account, after_first);
  EXPECT_EQ(b.account.balance, 80);
  EXPECT_EQ(b.account.settled_balance, 80);
  EXPECT_EQ(b.payment.callbacks_applied, 2);
}

TEST(CoreLedger, CallbackMayChangeTheSign) {
  Book b(100);
  ASSERT_TRUE(b.callback(100, "posted", kT0 + 1000));
  EXPECT_EQ(b.account.settled_balance, 100);
  ASSERT_TRUE(b.callback(-100, "posted", kT0 + 2000));
  EXPECT_EQ(b.account.balance, -100);
  EXPECT_EQ(b.account.settled_balance, -100);
  EXPECT_EQ(b.account.negative_since, kT0 + 2000);
}

TEST(CoreLedger, CallbackMayZeroTheAmount) {
  Book b(100);
  ASSERT_TRUE(b.callback(100, "posted", kT0 + 1000));
  ASSERT_TRUE(b.callback(0, "posted", kT0 + 2000));
  EXPECT_EQ(b.payment.amount_cents, 0);
  EXPECT_EQ(b.account.balance, 0);
  EXPECT_EQ(b.account.settled_balance, 0);
  EXPECT_FALSE(b.account.negative_since.has_value());
}

TEST(CoreLedger, MissingStatusKeepsThePreviousOne) {
  Book b(100);
  ASSERT_TRUE(b.callback(100, "posted", kT0 + 1000));
  ASSERT_TRUE(b.callback(70, std::nullopt, kT0 + 2000));
  EXPECT_EQ(b.payment.status, "posted");
  EXPECT_EQ(b.account.settled_balance, 70);
  EXPECT_EQ(b.account.balance, 70);

  // Still submitting: the callback proves the provider holds the movement, whose status there
  // is `pending` until it says more (what its 201 says). `submitting` (outcome unknown) would
  // stay for good: no re-send follows a callback.
  Book s(100);
  ASSERT_TRUE(s.callback(30, std::nullopt, kT0 + 1000));
  EXPECT_EQ(s.payment.status, "pending");
  EXPECT_EQ(s.account.balance, 30);
  EXPECT_EQ(s.account.settled_balance, 0);
}

TEST(CoreLedger, StatusLessCallbackMakesOnlySubmittingPending) {
  for (const char* before : {"pending", "posted", "failed", "returned", "rejected"}) {
    SCOPED_TRACE(before);
    Payment p = new_payment(100);
    p.status = before;
    p.resend_at.reset();
    EXPECT_EQ(with_callback(p, CallbackInput{90, std::nullopt}, kT0 + 5).status, before);
  }
  const Payment submitting = new_payment(100);
  ASSERT_EQ(submitting.status, "submitting");
  EXPECT_EQ(with_callback(submitting, CallbackInput{90, std::nullopt}, kT0 + 5).status, "pending");
  // A status given wins, as always.
  EXPECT_EQ(with_callback(submitting, CallbackInput{90, "posted"}, kT0 + 5).status, "posted");
}

TEST(CoreLedger, OtherStatusTokensAreNotSettled) {
  Book b(100);
  ASSERT_TRUE(b.callback(100, "posted", kT0 + 1000));
  ASSERT_TRUE(b.callback(100, "returned", kT0 + 2000));
  EXPECT_EQ(b.payment.status, "returned");
  EXPECT_EQ(b.account.balance, 100);
  EXPECT_EQ(b.account.settled_balance, 0);
}

TEST(CoreLedger, StatusTokenRules) {
  EXPECT_TRUE(is_valid_status_token("posted"));
  EXPECT_TRUE(is_valid_status_token("pending"));
  EXPECT_TRUE(is_valid_status_token("failed_x"));
  EXPECT_TRUE(is_valid_status_token("_"));
  EXPECT_TRUE(is_valid_status_token(std::string(32, 'a')));

  EXPECT_FALSE(is_valid_status_token(""));
  EXPECT_FALSE(is_valid_status_token("Posted"));
  EXPECT_FALSE(is_valid_status_token("a-b"));
  EXPECT_FALSE(is_valid_status_token("a b"));
  EXPECT_FALSE(is_valid_status_token(std::string(33, 'a')));
  EXPECT_FALSE(is_valid_status_token("failed1"));
  EXPECT_FALSE(is_valid_status_token("123"));
  EXPECT_FALSE(is_valid_status_token(std::string("pos\0ted", 7)));
  EXPECT_FALSE(is_valid_status_token("p\xC3\xA9nding"));
}

TEST(CoreLedger, BalanceAndSettledMembership) {
  EXPECT_TRUE(counts_in_balance("submitting"));
  EXPECT_TRUE(counts_in_balance("pending"));
  EXPECT_TRUE(counts_in_balance("posted"));
  EXPECT_TRUE(counts_in_balance("failed"));
  EXPECT_FALSE(counts_in_balance("rejected"));
  EXPECT_TRUE(counts_in_settled("posted"));
  EXPECT_FALSE(counts_in_settled("pending"));
  EXPECT_FALSE(counts_in_settled("rejected"));
  EXPECT_FALSE(counts_in_settled("submitting"));

  Payment p = new_payment(-250);
  p.status = "posted";
  EXPECT_EQ(contribution_of(p).balance, -250);
  EXPECT_EQ(contribution_of(p).settled, -250);
  p.status = "rejected";
  EXPECT_EQ(contribution_of(p).balance, 0);
  EXPECT_EQ(contribution_of(p).settled, 0);
}

TEST(CoreLedger, SettleDeadlineIsLastSendPlusWindowPlusGrace) {
  EXPECT_EQ(settle_deadline(kT0, 10, 2), kT0 + 12'000);
  EXPECT_EQ(settle_deadline(kT0, 1, 0), kT0 + 1'000);

  const Payment p = new_payment(100);
  const Payment resent = with_resend(p, kT0 + 5'000, 10, 2, kSendLeaseMs);
  EXPECT_EQ(resent.last_sent_at, kT0 + 5'000);
  EXPECT_EQ(resent.settle_deadline, kT0 + 17'000);
  EXPECT_EQ(resent.amount_cents, p.amount_cents);
  EXPECT_EQ(resent.status, p.status);
  // Leased for one attempt: due again if no verdict is recorded by then.
  EXPECT_EQ(resent.resend_at, kT0 + 5'000 + kSendLeaseMs);
  EXPECT_EQ(resent.send_attempts, 2);
}

TEST(CoreLedger, AnUnknownOutcomeSchedulesTheNextSendWithDoublingBackoff) {
  const Payment p = new_payment(100);
  EXPECT_EQ(with_resend_scheduled(p, kT0 + 700, 500).resend_at, kT0 + 1'200);
  EXPECT_EQ(resend_backoff_ms(1, 500, 30'000), 500);
  EXPECT_EQ(resend_backoff_ms(2, 500, 30'000), 1'000);
  EXPECT_EQ(resend_backoff_ms(4, 500, 30'000), 4'000);
  EXPECT_EQ(resend_backoff_ms(7, 500, 30'000), 30'000);
  EXPECT_EQ(resend_backoff_ms(1'000'000, 500, 30'000), 30'000);
}

TEST(CoreLedger, OnlyASubmittingPaymentWithoutCallbacksAwaitsTheProvider) {
  Payment p = new_payment(100);
  EXPECT_TRUE(awaits_provider(p));
  // Any callback proves the provider holds the movement, even one that kept the status.
  const Payment called_back = with_callback(p, CallbackInput{100, std::nullopt}, kT0 + 5);
  EXPECT_EQ(called_back.status, "pending");
  EXPECT_FALSE(awaits_provider(called_back));
  EXPECT_FALSE(called_back.resend_at.has_value()) << "would be re-sent after the provider has it";
  EXPECT_FALSE(with_rejection(p, kT0 + 5).resend_at.has_value());
  p.status = "pending";
  EXPECT_FALSE(awaits_provider(p));
}

TEST(CoreLedger, CallbackAtTheDeadlineAppliesOneMillisecondLaterIsLate) {
  const Payment p = new_payment(100);
  EXPECT_EQ(classify_callback(p, kT0), CallbackOutcome::applied);
  EXPECT_EQ(classify_callback(p, p.settle_deadline - 1), CallbackOutcome::applied);
  EXPECT_EQ(classify_callback(p, p.settle_deadline), CallbackOutcome::applied);
  EXPECT_EQ(classify_callback(p, p.settle_deadline + 1), CallbackOutcome::late);
  EXPECT_EQ(classify_callback(p, p.settle_deadline + 3'600'000), CallbackOutcome::late);
}

TEST(CoreLedger, RejectionRemovesThePaymentFromTheBalance) {
  Book b(100);
  const Payment rejected = with_rejection(b.payment, kT0 + 100);
  EXPECT_EQ(rejected.status, "rejected");
  EXPECT_EQ(rejected.updated_at, kT0 + 100);
  EXPECT_EQ(rejected.amount_cents, 100);
  const auto a = apply_payment_change(b.account, b.payment, rejected, kT0 + 100);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->balance, 0);
  EXPECT_EQ(a->settled_balance, 0);

  // A posted payment that is rejected leaves the settled balance as well.
  Book posted(-300);
  ASSERT_TRUE(posted.callback(-300, "posted", kT0 + 100));
  ASSERT_EQ(posted.account.settled_balance, -300);
  const auto a2 = apply_payment_change(posted.account, posted.payment,
                                       with_rejection(posted.payment, kT0 + 200), kT0 + 200);
  ASSERT_TRUE(a2.has_value());
  EXPECT_EQ(a2->balance, 0);
  EXPECT_EQ(a2->settled_balance, 0);
  EXPECT_FALSE(a2->negative_since.has_value());
}

TEST(CoreLedger, AcceptanceOnlyChangesSubmitting) {
  const Payment submitting = new_payment(100);
  const Payment accepted = with_acceptance(submitting, kT0 + 10);
  EXPECT_EQ(accepted.status, "pending");
  EXPECT_EQ(accepted.updated_at, kT0 + 10);
  EXPECT_EQ(accepted.amount_cents, 100);
  EXPECT_EQ(accepted.callbacks_applied, 0);
  EXPECT_FALSE(accepted.resend_at.has_value()) << "an accepted payment is not re-sent";

  for (const char* s : {"pending", "posted", "failed", "rejected"}) {
    SCOPED_TRACE(s);
    Payment p = new_payment(100);
    p.status = s;
    p.resend_at.reset();  // a payment leaves the re-send queue when it leaves `submitting`
    EXPECT_EQ(with_acceptance(p, kT0 + 10), p);  // untouched, updated_at included
  }

  // A callback that raced ahead of the answer and said `submitting` (a token like any other):
  // the answer keeps it, as it keeps any raced callback's status.
  Payment raced = new_payment(100);
  raced.callbacks_applied = 1;
  raced.resend_at.reset();
  EXPECT_EQ(with_acceptance(raced, kT0 + 10), raced);
}

TEST(CoreLedger, OverflowIsDetectedNotWrapped) {
  constexpr Cents kMax = std::numeric_limits<Cents>::max();
  constexpr Cents kMin = std::numeric_limits<Cents>::min();

  Account near_max = fresh_account();
  near_max.balance = kMax - 50;
  EXPECT_FALSE(apply_new_payment(near_max, new_payment(100), kT0).has_value());
  const auto fits = apply_new_payment(near_max, new_payment(50), kT0);
  ASSERT_TRUE(fits.has_value());
  EXPECT_EQ(fits->balance, kMax);

  // A callback raising the amount past INT64_MAX.
  Account a = fresh_account();
  a.balance = kMax - 10;
  const Payment before = new_payment(5);
  const Payment after = with_callback(before, CallbackInput{100, std::nullopt}, kT0 + 1);
  EXPECT_FALSE(apply_payment_change(a, before, after, kT0 + 1).has_value());

  // The settled balance past INT64_MIN.
  Account s = fresh_account();
  s.balance = kMin + 10;
  s.settled_balance = kMin + 10;
  s.negative_since = kT0;
  const Payment pending = new_payment(-5);
  const Payment posted_big =
      with_callback(pending, CallbackInput{-100, std::string("posted")}, kT0 + 1);
  EXPECT_FALSE(apply_payment_change(s, pending, posted_big, kT0 + 1).has_value());

  // The difference of two contributions itself overflowing.
  Payment lo = new_payment(1);
  lo.amount_cents = kMin;
  Payment hi = lo;
  hi.amount_cents = kMax;
  Account zero = fresh_account();
  EXPECT_FALSE(apply_payment_change(zero, lo, hi, kT0).has_value());
}

TEST(CoreLedger, NegativeSinceTracksTheCurrentNegativeRun) {
  Book b(-100);
  EXPECT_FALSE(b.account.negative_since.has_value());  // submitting: not settled

  ASSERT_TRUE(b.callback(-100, "posted", kT0 + 1000));
  EXPECT_EQ(b.account.negative_since, kT0 + 1000);  // crossed below zero

  ASSERT_TRUE(b.callback(-50, "posted", kT0 + 2000));
  EXPECT_EQ(b.account.negative_since, kT0 + 1000);  // still negative: the run goes on

  ASSERT_TRUE(b.callback(-200, "posted", kT0 + 3000));
  EXPECT_EQ(b.account.negative_since, kT0 + 1000);

  ASSERT_TRUE(b.callback(0, "posted", kT0 + 4000));
  EXPECT_FALSE(b.account.negative_since.has_value());  // zero is not negative

  ASSERT_TRUE(b.callback(-1, "posted", kT0 + 5000));
  EXPECT_EQ(b.account.negative_since, kT0 + 5000);  // a new run

  ASSERT_TRUE(b.callback(-1, "pending", kT0 + 6000));
  EXPECT_FALSE(b.account.negative_since.has_value());  // no longer settled

  ASSERT_TRUE(b.callback(-1, "posted", kT0 + 7000));
  EXPECT_EQ(b.account.negative_since, kT0 + 7000);

  ASSERT_TRUE(b.callback(5, "posted", kT0 + 8000));
  EXPECT_FALSE(b.account.negative_since.has_value());
}

TEST(CoreLedger, NegativeSinceIsKeptWhenAnotherPaymentMovesTheBalance) {
  Account a = fresh_account();
  Payment debit = new_payment(-100, 1);
  Payment credit = new_payment(30, 2);
  a = *apply_new_payment(a, debit, kT0);
  a = *apply_new_payment(a, credit, kT0);
  Payment debit_posted = with_callback(debit, CallbackInput{-100, "posted"}, kT0 + 1000);
  a = *apply_payment_change(a, debit, debit_posted, kT0 + 1000);
  EXPECT_EQ(a.negative_since, kT0 + 1000);
  EXPECT_EQ(a.balance, -70);

  Payment credit_posted = with_callback(credit, CallbackInput{30, "posted"}, kT0 + 2000);
  a = *apply_payment_change(a, credit, credit_posted, kT0 + 2000);
  EXPECT_EQ(a.settled_balance, -70);
  EXPECT_EQ(a.negative_since, kT0 + 1000);

  Payment credit_more = with_callback(credit_posted, CallbackInput{100, "posted"}, kT0 + 3000);
  a = *apply_payment_change(a, credit_posted, credit_more, kT0 + 3000);
  EXPECT_EQ(a.settled_balance, 0);
  EXPECT_FALSE(a.negative_since.has_value());
}

TEST(CoreMoney, AmountLimits) {
  EXPECT_TRUE(is_valid_payment_amount(1));
  EXPECT_TRUE(is_valid_payment_amount(-1));
  EXPECT_TRUE(is_valid_payment_amount(kMaxAmountCents));
  EXPECT_TRUE(is_valid_payment_amount(-kMaxAmountCents));
  EXPECT_FALSE(is_valid_payment_amount(0));
  EXPECT_FALSE(is_valid_payment_amount(kMaxAmountCents + 1));
  EXPECT_FALSE(is_valid_payment_amount(-kMaxAmountCents - 1));
  EXPECT_TRUE(is_valid_callback_amount(0));
  EXPECT_FALSE(is_valid_callback_amount(kMaxAmountCents + 1));

  EXPECT_EQ(checked_add(2, 3), 5);
  EXPECT_FALSE(checked_add(std::numeric_limits<Cents>::max(), 1).has_value());
  EXPECT_FALSE(checked_sub(std::numeric_limits<Cents>::min(), 1).has_value());
  EXPECT_EQ(checked_sub(-2, 3), -5);
}

TEST(CoreTypes, AccountStatusRoundTrips) {
  EXPECT_EQ(to_string(AccountStatus::current), "current");
  EXPECT_EQ(to_string(AccountStatus::delinquent), "delinquent");
  EXPECT_EQ(account_status_from("current"), AccountStatus::current);
  EXPECT_EQ(account_status_from("delinquent"), AccountStatus::delinquent);
  EXPECT_FALSE(account_status_from("Delinquent").has_value());
  EXPECT_FALSE(account_status_from("").has_value());
}

}  // namespace
}  // namespace ps::core
