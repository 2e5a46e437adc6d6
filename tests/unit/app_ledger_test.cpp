// app::Ledger: the use cases over each real store (SQLite, and PostgreSQL when
// PS_TEST_POSTGRES_URL names a server: a fresh database per test), each inside begin()/commit()
// like the writer runs them. This is the Store contract test: every store method runs through
// the ledger. After every scenario the ledger invariants of docs/decisions.md are checked
// straight from the database with a separate connection, and the history is replayed
// (app::verify_history) against the stored rows.

#include "app/ledger.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "app/verify.hpp"
#include "store/store.hpp"
#include "test_support/db_reader.hpp"
#include "test_support/scratch_store.hpp"

namespace ps::app {
namespace {

constexpr TimeMs kT0 = 1'790'000'000'000;  // 2026
constexpr TimeMs kWindowMs = 12'000;       // time_to_settle 10 s + grace 2 s
constexpr TimeMs kRetryDelayMs = 500;

Replay render(const Payment& p) {
  return Replay{p.status == "submitting" ? 202 : 201,
                "{\"money_movement_id\":" + std::to_string(p.money_movement_id) + ",\"status\":\"" +
                    p.status + "\"}"};
}

template <class T>
T ok(Outcome<T> o) {
  if (const auto* f = std::get_if<Failure>(&o)) {
    throw std::runtime_error("unexpected failure " + std::to_string(static_cast<int>(*f)));
  }
  return std::get<T>(std::move(o));
}

template <class T>
std::optional<Failure> failure(const Outcome<T>& o) {
  if (const auto* f = std::get_if<Failure>(&o)) return *f;
  return std::nullopt;
}

class AppLedger : public ::testing::TestWithParam<test_support::StoreKind> {
 protected:
  // Runs `f` in one transaction, as the writer would.
  template <class F>
  auto tx(F&& f) {
    store_->begin();
    try {
      auto r = f();
      store_->commit();
      return r;
    } catch (...) {
      store_->rollback();
      throw;
    }
  }

  void SetUp() override {
    PS_NEED_STORE(GetParam());
    db_.emplace(GetParam(), "ledger.db");
    url_ = db_->url();
    store_ = store::open_store(url_, {});
    Touched t;
    tx([&] {
      ledger_.bootstrap(*store_, kT0, t);
      return 0;
    });
    bootstrap_touched_ = t;
  }

  void TearDown() override {
    if (!store_ || !check_invariants_) return;
    const auto violations = test_support::check_ledger_invariants(url_);
    for (const auto& v : violations) ADD_FAILURE() << "ledger invariant violated: " << v;
    // And the production-side check: the history replays to exactly the stored rows.
    const auto reader = store::open_store(url_, store::StoreOptions{.read_only = true});
    const auto report = verify_history(*reader);
    if (report.difference) ADD_FAILURE() << "verify: " << core::describe(*report.difference);
  }

  Outcome<PaymentCreated> create(Cents amount, TimeMs now,
                                 std::optional<std::string> key = std::nullopt,
                                 std::string hash = "hash-a", AccountId account = 1) {
    Touched t;
    auto r = tx([&] {
      return ledger_.create_payment(*store_,
                                    NewPayment{.account_id = account,
                                               .amount_cents = amount,
                                               .merchant_name = "Blue Bottle",
                                               .idempotency_key = std::move(key),
                                               .request_hash = std::move(hash)},
                                    now, t, render);
    });
    last_touched_ = t;
    return r;
  }

  Payment create_ok(Cents amount, TimeMs now) { return ok(create(amount, now)).payment; }

  Outcome<Payment> verdict(MovementId id, ProviderVerdict v, TimeMs now,
                           const std::string& detail = "") {
    Touched t;
    auto r = tx([&] {
      return ledger_.record_provider_verdict(*store_, id, v, detail, render, now, t, kRetryDelayMs);
    });
    last_touched_ = t;
    return r;
  }

  Outcome<Payment> callback(MovementId id, Cents amount, std::optional<std::string> status,
                            TimeMs now) {
    Touched t;
    auto r = tx([&] {
      return ledger_.apply_callback(*store_, id, core::CallbackInput{amount, std::move(status)},
                                    now, now, t);
    });
    last_touched_ = t;
    return r;
  }

  Account account(AccountId id = 1) {
    auto a = store_->find_account(id);
    if (!a) throw std::runtime_error("no account " + std::to_string(id));
    return *a;
  }
  Payment payment(MovementId id) {
    auto p = store_->find_payment(id);
    if (!p) throw std::runtime_error("no payment " + std::to_string(id));
    return *p;
  }
  std::int64_t count(const std::string& sql) {
    return test_support::open_reader(url_)->scalar_int(sql);
  }
  std::int64_t events(const std::string& kind) {
    return count("SELECT COUNT(*) FROM events WHERE kind = '" + kind + "'");
  }
  std::int64_t all_rows() {
    return count(
        "SELECT (SELECT COUNT(*) FROM accounts) + (SELECT COUNT(*) FROM payments) + "
        "(SELECT COUNT(*) FROM events) + (SELECT COUNT(*) FROM idempotency_keys)");
  }

  std::optional<test_support::ScratchStore> db_;  // this test's database, of either kind
  std::string url_;
  std::unique_ptr<store::Store> store_;
  Ledger ledger_{LedgerSettings{.time_to_settle_seconds = 10, .settle_grace_seconds = 2}};
  Touched bootstrap_touched_;
  Touched last_touched_;
  bool check_invariants_ = true;
};

TEST_P(AppLedger, BootstrapCreatesAccountOneOnce) {
  ASSERT_EQ(bootstrap_touched_.size(), 1u);
  EXPECT_EQ(bootstrap_touched_.front().account_id, 1);
  const Account a = account(1);
  EXPECT_EQ(a.created_at, kT0);
  EXPECT_EQ(a.status, core::AccountStatus::current);
  EXPECT_EQ(a.balance, 0);
  EXPECT_EQ(a.settled_balance, 0);

  Touched again;
  tx([&] {
    ledger_.bootstrap(*store_, kT0 + 1000, again);
    return 0;
  });
  EXPECT_TRUE(again.empty());
  EXPECT_EQ(count("SELECT COUNT(*) FROM accounts"), 1);
  EXPECT_EQ(events("account_opened"), 1);

  Touched t;
  const Account second = tx([&] { return ledger_.open_account(*store_, kT0 + 2000, t); });
  EXPECT_EQ(second.account_id, 2);
  EXPECT_EQ(account(2).created_at, kT0 + 2000);
  EXPECT_EQ(events("account_opened"), 2);
}

TEST_P(AppLedger, CreatePaymentForUnknownAccountWritesNothing) {
  const auto rows_before = all_rows();
  const auto r = create(100, kT0 + 10, std::string("key-1"), "h", 99);
  EXPECT_EQ(failure(r), Failure::account_not_found);
  EXPECT_TRUE(last_touched_.empty());
  EXPECT_EQ(all_rows(), rows_before);
  EXPECT_EQ(count("SELECT COUNT(*) FROM idempotency_keys"), 0);
  // The key was not consumed: the same key can now create a payment.
  EXPECT_FALSE(failure(create(100, kT0 + 20, std::string("key-1"), "h")).has_value());
}

TEST_P(AppLedger, CreatePaymentRecordsASubmittingPaymentAndItsEvent) {
  const auto now = kT0 + 500;
  const PaymentCreated& created = ok(create(-2500, now));
  const Payment& p = created.payment;
  EXPECT_FALSE(created.replay.has_value());
  EXPECT_GT(p.money_movement_id, 0);
  EXPECT_LE(p.money_movement_id, core::kMaxMovementId);
  EXPECT_EQ(p.status, "submitting");
  EXPECT_EQ(p.amount_cents, -2500);
  EXPECT_EQ(p.original_amount_cents, -2500);
  EXPECT_EQ(p.last_sent_at, now);
  EXPECT_EQ(p.settle_deadline, now + kWindowMs);
  EXPECT_EQ(payment(p.money_movement_id), p);

  const Account a = account();
  EXPECT_EQ(a.balance, -2500);
  EXPECT_EQ(a.settled_balance, 0);
  ASSERT_EQ(last_touched_.size(), 1u);
  EXPECT_EQ(last_touched_.front(), a);
  EXPECT_EQ(events("payment_created"), 1);

  const Payment q = create_ok(100, now);
  EXPECT_GT(q.money_movement_id, p.money_movement_id);
  EXPECT_EQ(account().balance, -2400);
}

TEST_P(AppLedger, IdempotencyKeyInUseReusedAndReplayed) {
  const Payment first = ok(create(100, kT0, std::string("k"), "hash-a")).payment;

  // The first request has not had its answer yet.
  EXPECT_EQ(failure(create(100, kT0 + 1, std::string("k"), "hash-a")),
            Failure::idempotency_key_in_use);
  // Another body under the same key.
  EXPECT_EQ(failure(create(999, kT0 + 2, std::string("k"), "hash-b")),
            Failure::idempotency_key_reused);
  EXPECT_EQ(count("SELECT COUNT(*) FROM payments"), 1);

  const Payment accepted = ok(verdict(first.money_movement_id, ProviderVerdict::accepted, kT0 + 3));
  EXPECT_EQ(accepted.status, "pending");
  const auto rows = test_support::open_reader(url_)->query(
      "SELECT response_status, response_body FROM idempotency_keys WHERE key = 'k'");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].integer(0), 201);
  EXPECT_EQ(rows[0].text(1), render(accepted).body);

  const auto rows_before = all_rows();
  const PaymentCreated& replay = ok(create(100, kT0 + 4, std::string("k"), "hash-a"));
  ASSERT_TRUE(replay.replay.has_value());
  EXPECT_EQ(replay.replay->status, 201);
  EXPECT_EQ(replay.replay->body, render(accepted).body);
  EXPECT_EQ(replay.payment.money_movement_id, first.money_movement_id);
  EXPECT_EQ(replay.payment.status, "pending");
  EXPECT_EQ(all_rows(), rows_before);  // a replay writes nothing
  EXPECT_EQ(account().balance, 100);

  // Still refused with another body after completion.
  EXPECT_EQ(failure(create(100, kT0 + 5, std::string("k"), "hash-b")),
            Failure::idempotency_key_reused);
}

TEST_P(AppLedger, UnknownVerdictCompletesTheIdempotencyKeyWithTheSubmittingAnswer) {
  const Payment p = ok(create(100, kT0, std::string("k2"), "h")).payment;
  const Payment same = ok(verdict(p.money_movement_id, ProviderVerdict::unknown, kT0 + 1));
  Payment expected = p;
  expected.resend_at = kT0 + 1 + kRetryDelayMs;  // due again for a re-send, nothing else moved
  EXPECT_EQ(same, expected);
  EXPECT_EQ(payment(p.money_movement_id), expected);
  EXPECT_EQ(count("SELECT COUNT(*) FROM events WHERE kind LIKE 'provider%'"), 0);
  const PaymentCreated& replay = ok(create(100, kT0 + 2, std::string("k2"), "h"));
  ASSERT_TRUE(replay.replay.has_value());
  EXPECT_EQ(replay.replay->status, 202);
}

TEST_P(AppLedger, ClaimResendsLeasesOnlyDuePaymentsAndMovesTheirDeadlines) {
  const Payment a = create_ok(100, kT0);
  const Payment b = create_ok(200, kT0 + 1);
  const Payment c = create_ok(300, kT0 + 2);
  ok(verdict(a.money_movement_id, ProviderVerdict::unknown, kT0 + 10));   // due at kT0 + 510
  ok(verdict(b.money_movement_id, ProviderVerdict::accepted, kT0 + 10));  // answered
  // c's first send never recorded a verdict: due once its lease is up.
  const TimeMs lease = LedgerSettings{}.send_lease_ms;
  auto claim_at = [&](TimeMs now, std::size_t limit) {
    return tx([&] { return ledger_.claim_resends(*store_, now, limit); });
  };
  const auto none = claim_at(kT0 + 500, 10);
  EXPECT_TRUE(none.payments.empty());
  EXPECT_EQ(none.next_due, kT0 + 510);

  const auto first = claim_at(kT0 + 600, 10);
  ASSERT_EQ(first.payments.size(), 1U);
  EXPECT_EQ(first.payments[0].money_movement_id, a.money_movement_id);
  EXPECT_EQ(first.payments[0].settle_deadline, kT0 + 600 + kWindowMs);
  EXPECT_EQ(first.payments[0].resend_at, kT0 + 600 + lease) << "leased for one attempt";
  EXPECT_EQ(first.payments[0].send_attempts, 2);
  EXPECT_EQ(payment(a.money_movement_id), first.payments[0]);
  EXPECT_EQ(first.next_due, kT0 + 2 + lease) << "c, whose first send is still leased";

  const auto later = claim_at(kT0 + 2 + lease, 1);
  ASSERT_EQ(later.payments.size(), 1U);
  EXPECT_EQ(later.payments[0].money_movement_id, c.money_movement_id);
  EXPECT_EQ(events("payment_resent"), 2);
  EXPECT_FALSE(payment(b.money_movement_id).resend_at.has_value());
}

TEST_P(AppLedger, AfterAnOutageBackoffsBecomeDueButSendsUnderWayKeepTheirLease) {
  const TimeMs lease = LedgerSettings{}.send_lease_ms;
  const Payment waiting = create_ok(100, kT0);
  ok(verdict(waiting.money_movement_id, ProviderVerdict::unknown, kT0 + 10));  // due kT0 + 510
  const Payment first_send = create_ok(200, kT0 + 20);  // its first attempt is under way
  const Payment leased = create_ok(300, kT0 + 30);
  ok(verdict(leased.money_movement_id, ProviderVerdict::unknown, kT0 + 40));
  const auto claimed = tx([&] { return ledger_.claim_resends(*store_, kT0 + 600, 1); });
  ASSERT_EQ(claimed.payments.size(), 1U);
  ASSERT_EQ(claimed.payments[0].money_movement_id, waiting.money_movement_id);
  ok(verdict(waiting.money_movement_id, ProviderVerdict::unknown, kT0 + 700));  // no answer again
  EXPECT_EQ(payment(waiting.money_movement_id).resend_at, kT0 + 700 + kRetryDelayMs);

  EXPECT_EQ(tx([&] { return ledger_.make_backoffs_due(*store_, kT0 + 650); }), 1U);
  EXPECT_EQ(payment(waiting.money_movement_id).resend_at, kT0 + 650);
  EXPECT_EQ(payment(first_send.money_movement_id).resend_at, kT0 + 20 + lease);
  EXPECT_EQ(payment(leased.money_movement_id).resend_at, kT0 + 540) << "already due: untouched";
}

TEST_P(AppLedger, AKeyWhoseFirstRequestEndedWithoutAnAnswerAnswersThePaymentAsItIsNow) {
  const Payment p = ok(create(-700, kT0, std::string("lost"), "h")).payment;
  const TimeMs lease = LedgerSettings{}.send_lease_ms;
  // While the first request may still be in flight: in use.
  EXPECT_EQ(failure(create(-700, kT0 + lease - 1, std::string("lost"), "h")),
            Failure::idempotency_key_in_use);
  // Over (its process died): the payment as it is now, not stored while still submitting.
  const PaymentCreated submitting = ok(create(-700, kT0 + lease, std::string("lost"), "h"));
  ASSERT_TRUE(submitting.replay.has_value());
  EXPECT_EQ(submitting.replay->status, 202);
  EXPECT_EQ(count("SELECT COUNT(*) FROM idempotency_keys WHERE response_status IS NULL"), 1);
  // One whose payment a callback settled meanwhile: answered and stored from then on.
  const Payment q = ok(create(-800, kT0, std::string("settled"), "h")).payment;
  ok(callback(q.money_movement_id, -750, "posted", kT0 + 1000));
  const PaymentCreated posted = ok(create(-800, kT0 + lease, std::string("settled"), "h"));
  ASSERT_TRUE(posted.replay.has_value());
  EXPECT_EQ(posted.replay->status, 201);
  EXPECT_EQ(posted.payment.status, "posted");
  EXPECT_EQ(count("SELECT COUNT(*) FROM idempotency_keys WHERE response_status = 201"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM payments"), 2);
  EXPECT_EQ(p.money_movement_id, submitting.payment.money_movement_id);
}

TEST_P(AppLedger, IdempotencyKeysExpireAfterTheirTtl) {
  const TimeMs ttl = LedgerSettings{}.idempotency_key_ttl_ms;
  const Payment first = ok(create(100, kT0, std::string("old"), "h")).payment;
  ok(verdict(first.money_movement_id, ProviderVerdict::accepted, kT0 + 1));
  for (int i = 0; i < 5; ++i) ok(create(1, kT0 + 10 + i, "k" + std::to_string(i), "h"));
  // Just before the TTL the key replays; at the TTL it is free for a new payment.
  EXPECT_TRUE(ok(create(100, kT0 + ttl - 1, std::string("old"), "h")).replay.has_value());
  const PaymentCreated again = ok(create(100, kT0 + ttl, std::string("old"), "h"));
  EXPECT_FALSE(again.replay.has_value());
  EXPECT_NE(again.payment.money_movement_id, first.money_movement_id);
  // The sweep deletes the rest in bounded batches, oldest first, and nothing younger.
  auto sweep = [&](TimeMs now, std::size_t limit) {
    return tx([&] { return ledger_.expire_idempotency_keys(*store_, now, limit); });
  };
  EXPECT_EQ(sweep(kT0 + ttl + 12, 2), 2U);
  EXPECT_EQ(sweep(kT0 + ttl + 12, 2), 0U) << "k2..k4 are younger than the TTL";
  EXPECT_EQ(sweep(kT0 + ttl + 100, 2), 2U);
  EXPECT_EQ(sweep(kT0 + ttl + 100, 2), 1U);
  EXPECT_EQ(count("SELECT COUNT(*) FROM idempotency_keys"), 1) << "the new 'old' key stays";
}

TEST_P(AppLedger, AcceptedVerdictMovesSubmittingToPendingOnce) {
  const Payment p = create_ok(100, kT0);
  const Payment accepted = ok(verdict(p.money_movement_id, ProviderVerdict::accepted, kT0 + 5));
  EXPECT_EQ(accepted.status, "pending");
  EXPECT_EQ(accepted.updated_at, kT0 + 5);
  EXPECT_EQ(payment(p.money_movement_id), accepted);
  EXPECT_EQ(events("provider_accepted"), 1);
  EXPECT_EQ(account().balance, 100);
  EXPECT_EQ(account().settled_balance, 0);

  // Again (a re-send answered 2xx): nothing to change, nothing recorded.
  EXPECT_EQ(ok(verdict(p.money_movement_id, ProviderVerdict::accepted, kT0 + 6)), accepted);
  EXPECT_EQ(events("provider_accepted"), 1);
}

TEST_P(AppLedger, AcceptedVerdictKeepsTheStatusOfACallbackThatRacedAhead) {
  const Payment p = create_ok(100, kT0);
  ASSERT_EQ(ok(callback(p.money_movement_id, 100, "posted", kT0 + 1)).status, "posted");
  EXPECT_EQ(ok(verdict(p.money_movement_id, ProviderVerdict::accepted, kT0 + 2)).status, "posted");
  EXPECT_EQ(account().settled_balance, 100);
  EXPECT_EQ(events("provider_accepted"), 0);
}

TEST_P(AppLedger, RejectedVerdictWhileSubmittingRemovesThePayment) {
  const Payment keep = create_ok(40, kT0);
  const Payment p = create_ok(100, kT0);
  ASSERT_EQ(account().balance, 140);
  const Payment rejected =
      ok(verdict(p.money_movement_id, ProviderVerdict::rejected, kT0 + 5, "HTTP 400: bad"));
  EXPECT_EQ(rejected.status, "rejected");
  EXPECT_EQ(payment(p.money_movement_id).status, "rejected");
  EXPECT_EQ(account().balance, 40);
  ASSERT_EQ(last_touched_.size(), 1u);
  EXPECT_EQ(last_touched_.front().balance, 40);
  const auto rows = test_support::open_reader(url_)->query(
      "SELECT status, detail, balance_after FROM events WHERE kind = 'provider_rejected'");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].text(0), "rejected");
  EXPECT_EQ(rows[0].text(1), "HTTP 400: bad");
  EXPECT_EQ(rows[0].integer(2), 40);

  // A later 2xx (to an earlier copy) does not resurrect it.
  EXPECT_EQ(ok(verdict(p.money_movement_id, ProviderVerdict::accepted, kT0 + 6)).status,
            "rejected");
  EXPECT_EQ(account().balance, 40);
  EXPECT_EQ(payment(keep.money_movement_id).status, "submitting");
}

TEST_P(AppLedger, RejectedVerdictIsIgnoredOnceTheProviderProvedItHasTheMovement) {
  // Pending: the provider accepted an earlier copy.
  const Payment a = create_ok(100, kT0);
  ok(verdict(a.money_movement_id, ProviderVerdict::accepted, kT0 + 1));
  EXPECT_EQ(ok(verdict(a.money_movement_id, ProviderVerdict::rejected, kT0 + 2)).status, "pending");
  // Submitting, but a status-less callback already arrived.
  const Payment b = create_ok(200, kT0);
  ASSERT_EQ(ok(callback(b.money_movement_id, 150, std::nullopt, kT0 + 1)).status, "pending");
  const Payment after = ok(verdict(b.money_movement_id, ProviderVerdict::rejected, kT0 + 2));
  EXPECT_EQ(after.status, "pending");
  EXPECT_EQ(account().balance, 250);
  EXPECT_EQ(events("provider_rejected"), 0);
}

TEST_P(AppLedger, VerdictForUnknownPaymentIsNotFound) {
  EXPECT_EQ(failure(verdict(123456, ProviderVerdict::accepted, kT0)), Failure::payment_not_found);
  EXPECT_EQ(failure(verdict(123456, ProviderVerdict::rejected, kT0)), Failure::payment_not_found);
}

TEST_P(AppLedger, PrepareResendMovesTheDeadlineWhileSubmitting) {
  const Payment p = create_ok(100, kT0);
  const auto resent =
      tx([&] { return ledger_.prepare_resend(*store_, p.money_movement_id, kT0 + 3000); });
  ASSERT_TRUE(resent.has_value());
  EXPECT_EQ(resent->last_sent_at, kT0 + 3000);
  EXPECT_EQ(resent->settle_deadline, kT0 + 3000 + kWindowMs);
  EXPECT_EQ(payment(p.money_movement_id), *resent);
  const auto rows = test_support::open_reader(url_)->query(
      "SELECT settle_deadline FROM events WHERE kind = 'payment_resent'");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].integer(0), kT0 + 3000 + kWindowMs);

  // The moved deadline governs callbacks: one after the original deadline now applies.
  EXPECT_FALSE(
      failure(callback(p.money_movement_id, 100, std::nullopt, kT0 + kWindowMs + 1)).has_value());

  ok(verdict(p.money_movement_id, ProviderVerdict::accepted, kT0 + 4000));
  EXPECT_FALSE(tx([&] {
                 return ledger_.prepare_resend(*store_, p.money_movement_id, kT0 + 5000);
               }).has_value());
  EXPECT_EQ(events("payment_resent"), 1);
  EXPECT_FALSE(tx([&] { return ledger_.prepare_resend(*store_, 987654, kT0); }).has_value());
}

TEST_P(AppLedger, PrepareResendStopsAfterRejection) {
  const Payment p = create_ok(100, kT0);
  ok(verdict(p.money_movement_id, ProviderVerdict::rejected, kT0 + 1));
  EXPECT_FALSE(tx([&] {
                 return ledger_.prepare_resend(*store_, p.money_movement_id, kT0 + 2);
               }).has_value());
}

// ledger.hpp: prepare_resend is "Empty when no re-send is needed any more (the provider answered,
// or a callback proved it has the movement)". A callback without a status leaves the payment
// `submitting`, yet it proves the provider has the movement.
TEST_P(AppLedger, PrepareResendStopsOnceACallbackProvedTheProviderHasTheMovement) {
  const Payment p = create_ok(100, kT0);
  ASSERT_EQ(ok(callback(p.money_movement_id, 100, std::nullopt, kT0 + 1000)).callbacks_applied, 1);
  const auto resent =
      tx([&] { return ledger_.prepare_resend(*store_, p.money_movement_id, kT0 + 5000); });
  EXPECT_FALSE(resent.has_value())
      << "re-sent after a callback; deadline moved to " << resent->settle_deadline;
  EXPECT_EQ(payment(p.money_movement_id).settle_deadline, kT0 + kWindowMs);
}

TEST_P(AppLedger, CallbackSequenceThroughTheStore) {
  const Payment p = create_ok(100, kT0);
  ok(verdict(p.money_movement_id, ProviderVerdict::accepted, kT0 + 1));
  struct Step {
    Cents amount;
    const char* status;
    Cents settled;
  };
  const Step steps[] = {{100, "pending", 0}, {50, "pending", 0}, {50, "posted", 50},
                        {0, "pending", 0},   {50, "posted", 50}, {50, "posted", 50},
                        {100, "posted", 100}};
  TimeMs now = kT0 + 1;
  std::int64_t n = 0;
  for (const Step& s : steps) {
    now += 1000;
    const Payment after = ok(callback(p.money_movement_id, s.amount, std::string(s.status), now));
    EXPECT_EQ(after.callbacks_applied, ++n);
    EXPECT_EQ(account().balance, s.amount);
    EXPECT_EQ(account().settled_balance, s.settled);
    ASSERT_EQ(last_touched_.size(), 1u);
    EXPECT_EQ(last_touched_.front(), account());
    EXPECT_TRUE(test_support::check_ledger_invariants(url_).empty()) << "after " << s.status;
  }
  const auto history = store_->callback_history(p.money_movement_id);
  ASSERT_EQ(history.size(), 7u);
  EXPECT_TRUE(history.back().applied);
  EXPECT_EQ(history.back().status, "posted");
  EXPECT_EQ(history[3].amount_cents, 0);
}

TEST_P(AppLedger, CallbackForUnknownPaymentIsNotFoundAndWritesNothing) {
  create_ok(100, kT0);
  const auto rows_before = all_rows();
  EXPECT_EQ(failure(callback(424242, 5, "posted", kT0 + 1)), Failure::payment_not_found);
  EXPECT_EQ(all_rows(), rows_before);
  EXPECT_TRUE(last_touched_.empty());
}

TEST_P(AppLedger, CallbackAtTheDeadlineAppliesLaterIsRecordedAndChangesNothing) {
  const Payment p = create_ok(100, kT0);
  const TimeMs deadline = p.settle_deadline;
  ASSERT_EQ(deadline, kT0 + kWindowMs);
  const Payment at_deadline = ok(callback(p.money_movement_id, 80, "posted", deadline));
  EXPECT_EQ(at_deadline.status, "posted");
  const Account before = account();
  EXPECT_EQ(before.settled_balance, 80);

  EXPECT_EQ(failure(callback(p.money_movement_id, -500, "failed", deadline + 1)),
            Failure::callback_too_late);
  EXPECT_TRUE(last_touched_.empty());
  EXPECT_EQ(payment(p.money_movement_id), at_deadline);
  EXPECT_EQ(account(), before);

  const auto late = test_support::open_reader(url_)->query(
      "SELECT at, amount_cents, status, balance_after, settled_balance_after FROM events "
      "WHERE kind = 'callback_late'");
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].integer(0), deadline + 1);
  EXPECT_EQ(late[0].integer(1), -500);  // as received
  EXPECT_EQ(late[0].text(2), "failed");
  EXPECT_EQ(late[0].integer(3), 80);  // the account's balances, unchanged
  EXPECT_EQ(late[0].integer(4), 80);

  const auto history = store_->callback_history(p.money_movement_id);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_TRUE(history[0].applied);
  EXPECT_FALSE(history[1].applied);
  EXPECT_EQ(history[1].amount_cents, -500);

  // A late callback without a status is recorded with none.
  EXPECT_EQ(failure(callback(p.money_movement_id, 1, std::nullopt, deadline + 2)),
            Failure::callback_too_late);
  EXPECT_FALSE(store_->callback_history(p.money_movement_id).back().status.has_value());
}

TEST_P(AppLedger, CallbackAppliesToARejectedPaymentWithinTheWindow) {
  const Payment p = create_ok(100, kT0);
  ok(verdict(p.money_movement_id, ProviderVerdict::rejected, kT0 + 1));
  ASSERT_EQ(account().balance, 0);
  EXPECT_EQ(ok(callback(p.money_movement_id, 100, "posted", kT0 + 2)).status, "posted");
  EXPECT_EQ(account().balance, 100);
  EXPECT_EQ(account().settled_balance, 100);
}

TEST_P(AppLedger, CallbackThatWouldOverflowChangesNothing) {
  check_invariants_ = false;  // the balance below is planted, not the sum of payments
  const Payment p = create_ok(1, kT0);
  Account planted = account();
  planted.balance = std::numeric_limits<Cents>::max() - 10;
  tx([&] {
    store_->update_account(planted);
    return 0;
  });
  const auto rows_before = all_rows();

  // +4 still fits.
  EXPECT_EQ(failure(callback(p.money_movement_id, 5, "pending", kT0 + 1)), std::nullopt);
  EXPECT_EQ(account().balance, std::numeric_limits<Cents>::max() - 6);
  const Account fitted = account();
  const Payment fitted_payment = payment(p.money_movement_id);
  // +95 does not.
  EXPECT_EQ(failure(callback(p.money_movement_id, 100, "pending", kT0 + 2)), Failure::overflow);
  EXPECT_TRUE(last_touched_.empty());
  EXPECT_EQ(account(), fitted);
  EXPECT_EQ(payment(p.money_movement_id), fitted_payment);
  EXPECT_EQ(all_rows(), rows_before + 1);  // only the first (applied) callback's event

  // create_payment refuses too, and writes nothing.
  EXPECT_EQ(failure(create(100, kT0 + 3, std::string("ovf"))), Failure::overflow);
  EXPECT_EQ(all_rows(), rows_before + 1);
  EXPECT_EQ(account(), fitted);
}

// The invariant check itself: negative_since must be set exactly while settled_balance < 0.
TEST_P(AppLedger, InvariantCheckFlagsNegativeSinceOutOfStepWithTheSettledBalance) {
  check_invariants_ = false;  // the violations below are planted
  const Payment p = create_ok(-100, kT0);
  ok(callback(p.money_movement_id, -100, "posted", kT0 + 1000));
  ASSERT_TRUE(test_support::check_ledger_invariants(url_).empty());
  const auto plant = [&](Account a) {
    tx([&] {
      store_->update_account(a);
      return 0;
    });
  };

  // Negative settled balance without negative_since.
  Account planted = account();
  planted.negative_since.reset();
  plant(planted);
  auto violations = test_support::check_ledger_invariants(url_);
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].rfind("negative_since: account 1 has settled_balance -100", 0), 0u)
      << violations[0];

  // negative_since on an account whose settled balance is back to 0.
  ok(callback(p.money_movement_id, 0, "posted", kT0 + 2000));
  ASSERT_TRUE(test_support::check_ledger_invariants(url_).empty());
  planted = account();
  planted.negative_since = kT0 + 1000;
  plant(planted);
  violations = test_support::check_ledger_invariants(url_);
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].rfind("negative_since: account 1 has settled_balance 0", 0), 0u)
      << violations[0];
}

TEST_P(AppLedger, RecalculateMarksDelinquentAndCurrentWithEvents) {
  Touched t;
  tx([&] { return ledger_.open_account(*store_, kT0, t); });  // account 2, never negative
  const Payment p = create_ok(-100, kT0);
  ok(callback(p.money_movement_id, -100, "posted", kT0 + 1000));
  ASSERT_EQ(account().negative_since, kT0 + 1000);

  const auto recalc = [&](std::int64_t window_s, TimeMs now) {
    Touched touched;
    // As Commands::recalculate does it: the candidates, then the ledger judges them.
    auto accounts = tx([&] {
      ledger_.recalculate(*store_, window_s, store_->delinquency_candidates(0, 1000), now, touched);
      return store_->all_accounts();
    });
    last_touched_ = touched;
    return accounts;
  };

  // Negative for 4 s only: still current, nothing written.
  auto accounts = recalc(10, kT0 + 5000);
  ASSERT_EQ(accounts.size(), 2u);
  EXPECT_EQ(accounts[0].status, core::AccountStatus::current);
  EXPECT_TRUE(last_touched_.empty());
  EXPECT_EQ(events("account_status"), 0);

  // Negative for exactly the window: delinquent.
  accounts = recalc(10, kT0 + 11'000);
  EXPECT_EQ(accounts[0].status, core::AccountStatus::delinquent);
  EXPECT_EQ(accounts[1].status, core::AccountStatus::current);
  EXPECT_EQ(account(1).status, core::AccountStatus::delinquent);
  ASSERT_EQ(last_touched_.size(), 1u);
  EXPECT_EQ(last_touched_.front().account_id, 1);
  auto rows = test_support::open_reader(url_)->query(
      "SELECT account_id, status, balance_after, settled_balance_after FROM events "
      "WHERE kind = 'account_status' ORDER BY event_id");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].integer(0), 1);
  EXPECT_EQ(rows[0].text(1), "delinquent");
  EXPECT_EQ(rows[0].integer(3), -100);

  // Same answer again: no new event.
  recalc(10, kT0 + 11'500);
  EXPECT_EQ(events("account_status"), 1);

  // Settled back to 0: current again, with an event.
  ok(callback(p.money_movement_id, 0, "posted", kT0 + 11'800));
  EXPECT_FALSE(account().negative_since.has_value());
  accounts = recalc(10, kT0 + 11'900);
  EXPECT_EQ(accounts[0].status, core::AccountStatus::current);
  rows = test_support::open_reader(url_)->query(
      "SELECT status FROM events WHERE kind = 'account_status' ORDER BY event_id");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].text(0), "current");

  // Window 0: delinquent exactly while negative now.
  const Payment q = create_ok(-1, kT0 + 11'950);
  ok(callback(q.money_movement_id, -1, "posted", kT0 + 11'960));
  EXPECT_EQ(recalc(0, kT0 + 11'960)[0].status, core::AccountStatus::delinquent);
}

TEST_P(AppLedger, IdsContinueAfterReopeningTheStore) {
  const Payment p = create_ok(100, kT0 + 60'000);
  store_.reset();
  store_ = store::open_store(url_, {});
  EXPECT_EQ(store_->max_movement_id(), p.money_movement_id);
  EXPECT_EQ(account().balance, 100);  // committed data survived
  Ledger restarted(LedgerSettings{});
  Touched t;
  // The clock is behind the stored ids (stepped back across the restart).
  const auto r = tx([&] {
    return restarted.create_payment(*store_,
                                    NewPayment{.account_id = 1,
                                               .amount_cents = 5,
                                               .merchant_name = "x",
                                               .idempotency_key = std::nullopt,
                                               .request_hash = "h"},
                                    kT0, t, render);
  });
  EXPECT_GT(ok(r).payment.money_movement_id, p.money_movement_id);
}

// The service clock's high-water mark (core/clock.hpp): the newest time written, also after a
// restart.
TEST_P(AppLedger, LatestEventTimeIsTheNewestWriteAndSurvivesReopening) {
  EXPECT_EQ(store_->latest_event_time(), kT0);  // bootstrap opened account 1
  const Payment p = create_ok(100, kT0 + 5'000);
  ok(callback(p.money_movement_id, 100, "posted", kT0 + 7'000));
  EXPECT_EQ(store_->latest_event_time(), kT0 + 7'000);
  store_.reset();
  store_ = store::open_store(url_, {});
  EXPECT_EQ(store_->latest_event_time(), kT0 + 7'000);
}

INSTANTIATE_TEST_SUITE_P(Stores, AppLedger, test_support::both_stores(),
                         test_support::store_kind_name);

TEST(AppStore, LatestEventTimeOfAnEmptyStoreIsEmpty) {
  const auto s = store::open_store("sqlite::memory:", {});
  EXPECT_EQ(s->latest_event_time(), std::nullopt);
}

TEST(AppLedgerMemory, InMemorySqliteStoreRunsTheUseCases) {
  auto s = store::open_store("sqlite::memory:", {});
  Ledger ledger(LedgerSettings{});
  Touched t;
  s->begin();
  ledger.bootstrap(*s, kT0, t);
  const auto created = ledger.create_payment(*s,
                                             NewPayment{.account_id = 1,
                                                        .amount_cents = -7,
                                                        .merchant_name = "m",
                                                        .idempotency_key = std::nullopt,
                                                        .request_hash = "h"},
                                             kT0, t, render);
  ASSERT_TRUE(std::holds_alternative<PaymentCreated>(created));
  const auto id = std::get<PaymentCreated>(created).payment.money_movement_id;
  ASSERT_TRUE(std::holds_alternative<Payment>(
      ledger.apply_callback(*s, id, core::CallbackInput{-7, "posted"}, kT0 + 1, kT0 + 1, t)));
  s->commit();
  const auto a = s->find_account(1);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->balance, -7);
  EXPECT_EQ(a->settled_balance, -7);
  EXPECT_EQ(a->negative_since, kT0 + 1);
}

TEST(AppStore, OpenStoreRejectsUnsupportedUrls) {
  EXPECT_THROW(store::open_store("mysql://nowhere", {}), store::StoreError);
  EXPECT_THROW(store::open_store("sqlite:", {}), store::StoreError);
}

// postgresql:// and postgres:// select the PostgreSQL store: a server that is not there is an
// outage (unavailable), not a configuration the service does not know.
TEST(AppStore, OpenStoreSelectsPostgresForItsUrls) {
  for (const std::string url : {"postgresql://127.0.0.1:1/ps", "postgres://127.0.0.1:1/ps"}) {
    try {
      store::open_store(url, {});
      ADD_FAILURE() << url << " opened";
    } catch (const store::StoreError& e) {
      EXPECT_EQ(e.fault, store::StoreFault::unavailable) << url << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("connect"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace ps::app
