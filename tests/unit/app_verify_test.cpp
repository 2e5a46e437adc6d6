// app::verify_history over each real store (SQLite, and PostgreSQL when PS_TEST_POSTGRES_URL names
// a server): a history the ledger wrote through a realistic day (callbacks changing amount and
// status, a late callback, a rejection, a re-send after an unknown outcome, an account going
// delinquent and current again) verifies clean; each single corruption of a row, made in SQL as
// an operator or a bug could, is the first difference found, named by table, id and column.

#include "app/verify.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>

#include "app/ledger.hpp"
#include "store/store.hpp"
#include "test_support/db_reader.hpp"
#include "test_support/scratch_store.hpp"

namespace ps::app {
namespace {

using test_support::StoreKind;

constexpr TimeMs kT0 = 1'790'000'000'000;  // 2026
constexpr TimeMs kWindowMs = 12'000;       // time_to_settle 10 s + grace 2 s

Replay render(const Payment& p) {
  return Replay{p.status == "submitting" ? 202 : 201, "{}"};
}

template <class T>
T ok(Outcome<T> o) {
  if (const auto* f = std::get_if<Failure>(&o)) {
    throw std::runtime_error("unexpected failure " + std::to_string(static_cast<int>(*f)));
  }
  return std::get<T>(std::move(o));
}

// The ids of what the day created, for the corruptions to aim at.
struct Day {
  MovementId posted = 0;     // account 1: -2500, then -2600 pending, then -3000 posted; late one
  MovementId rejected = 0;   // account 1: 1000, the provider refused it
  MovementId resent = 0;     // account 1: 500, unknown outcome, re-sent, accepted, posted
  MovementId waiting = 0;    // account 2: 700, unknown outcome, still awaiting a re-send
  MovementId kept = 0;       // account 2: 300, a callback without status keeps `pending`
  MovementId repayment = 0;  // account 1: +5000 posted: settled back above zero
};

// The ledger's use cases on one store, each in its own transaction as the writer runs them.
class Books {
 public:
  explicit Books(store::Store& s) : s_(s) {}

  template <class F>
  auto tx(F&& f) {
    s_.begin();
    try {
      auto r = f();
      s_.commit();
      return r;
    } catch (...) {
      s_.rollback();
      throw;
    }
  }

  Payment create(Cents amount, TimeMs now, AccountId account = 1,
                 std::optional<std::string> key = std::nullopt) {
    Touched t;
    return ok(tx([&] {
             return ledger_.create_payment(s_,
                                           NewPayment{.account_id = account,
                                                      .amount_cents = amount,
                                                      .merchant_name = "Blue Bottle",
                                                      .idempotency_key = std::move(key),
                                                      .request_hash = "h"},
                                           now, t, render);
           }))
        .payment;
  }
  Outcome<Payment> verdict(MovementId id, ProviderVerdict v, TimeMs now) {
    Touched t;
    return tx([&] {
      return ledger_.record_provider_verdict(s_, id, v, "HTTP 422: refused", render, now, t, 500);
    });
  }
  Outcome<Payment> callback(MovementId id, Cents amount, std::optional<std::string> status,
                            TimeMs now) {
    Touched t;
    return tx([&] {
      return ledger_.apply_callback(s_, id, core::CallbackInput{amount, std::move(status)}, now,
                                    now, t);
    });
  }
  std::vector<Account> recalculate(std::int64_t window_seconds, TimeMs now) {
    Touched t;
    return tx([&] {
      ledger_.recalculate(s_, window_seconds, s_.delinquency_candidates(0, 1000), now, t);
      return s_.all_accounts();
    });
  }

  Day live_a_day() {
    Touched t;
    tx([&] {
      ledger_.bootstrap(s_, kT0, t);
      return 0;
    });
    EXPECT_EQ(tx([&] { return ledger_.open_account(s_, kT0 + 1, t); }).account_id, 2);
    Day day;

    day.posted = create(-2500, kT0 + 10, 1, "key-1").money_movement_id;
    ok(verdict(day.posted, ProviderVerdict::accepted, kT0 + 20));
    ok(callback(day.posted, -2600, "pending", kT0 + 1'000));
    ok(callback(day.posted, -3000, "posted", kT0 + 2'000));  // settled negative from here
    ok(callback(day.posted, -3000, "posted", kT0 + 2'500));  // a duplicate: harmless
    EXPECT_EQ(std::get<Failure>(callback(day.posted, 1, "failed", kT0 + 10 + kWindowMs + 1)),
              Failure::callback_too_late);

    day.rejected = create(1000, kT0 + 3'000).money_movement_id;
    ok(verdict(day.rejected, ProviderVerdict::rejected, kT0 + 3'010));

    day.resent = create(500, kT0 + 4'000).money_movement_id;
    ok(verdict(day.resent, ProviderVerdict::unknown, kT0 + 4'010));  // due again at +4'510
    const auto claim = tx([&] { return ledger_.claim_resends(s_, kT0 + 4'600, 10); });
    EXPECT_EQ(claim.payments.size(), 1U);
    ok(verdict(day.resent, ProviderVerdict::accepted, kT0 + 4'700));
    ok(callback(day.resent, 500, "posted", kT0 + 5'000));

    day.waiting = create(700, kT0 + 6'000, 2).money_movement_id;
    ok(verdict(day.waiting, ProviderVerdict::unknown, kT0 + 6'010));
    // The provider answers again after an outage: the backoff is cut short (no event).
    EXPECT_EQ(tx([&] { return ledger_.make_backoffs_due(s_, kT0 + 6'020); }), 1U);

    day.kept = create(300, kT0 + 7'000, 2).money_movement_id;
    ok(verdict(day.kept, ProviderVerdict::accepted, kT0 + 7'010));
    ok(callback(day.kept, 250, std::nullopt, kT0 + 8'000));

    // Account 1's settled balance (-3000 + 500) has been negative since kT0 + 2'000.
    EXPECT_EQ(recalculate(10, kT0 + 13'000).front().status, core::AccountStatus::delinquent);
    day.repayment = create(5000, kT0 + 14'000).money_movement_id;
    ok(verdict(day.repayment, ProviderVerdict::accepted, kT0 + 14'010));
    ok(callback(day.repayment, 5000, "posted", kT0 + 15'000));
    EXPECT_EQ(recalculate(10, kT0 + 16'000).front().status, core::AccountStatus::current);
    EXPECT_EQ(recalculate(0, kT0 + 17'000).front().status, core::AccountStatus::current);
    return day;
  }

 private:
  store::Store& s_;
  Ledger ledger_{LedgerSettings{.time_to_settle_seconds = 10, .settle_grace_seconds = 2}};
};

using test_support::write_sql;

VerifyReport verify(const std::string& url, std::size_t batch = kVerifyBatch) {
  const auto s = store::open_store(url, store::StoreOptions{.read_only = true});
  return verify_history(*s, batch);
}

class AppVerify : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    PS_NEED_STORE(GetParam());
    db_.emplace(GetParam(), "verify.db");
    store_ = store::open_store(db_->url(), {});
    Books books(*store_);
    day_ = books.live_a_day();
  }

  std::optional<test_support::ScratchStore> db_;
  std::unique_ptr<store::Store> store_;
  Day day_;
};

TEST_P(AppVerify, TheHistoryOfARealisticDayReproducesEveryPaymentAndAccount) {
  // The test side's invariants hold too (a subset of what verify checks).
  EXPECT_TRUE(test_support::check_ledger_invariants(db_->url()).empty());

  const VerifyReport report = verify(db_->url());
  EXPECT_FALSE(report.difference.has_value()) << core::describe(*report.difference);
  const auto db = test_support::open_reader(db_->url());
  EXPECT_EQ(report.events,
            static_cast<std::uint64_t>(db->scalar_int("SELECT COUNT(*) FROM events")));
  EXPECT_EQ(report.accounts, 2U);
  EXPECT_EQ(report.payments, 6U);
  EXPECT_EQ(report.merchant_names_unrecorded, 0U);
  // Every kind of event the ledger writes took part.
  EXPECT_EQ(db->scalar_int("SELECT COUNT(DISTINCT kind) FROM events"), 8);
}

TEST_P(AppVerify, BatchesOfAnySizeGiveTheSameReport) {
  const VerifyReport whole = verify(db_->url());
  for (const std::size_t batch : {1U, 2U, 7U}) {
    const VerifyReport batched = verify(db_->url(), batch);
    EXPECT_FALSE(batched.difference.has_value()) << "batch " << batch;
    EXPECT_EQ(batched.events, whole.events) << "batch " << batch;
    EXPECT_EQ(batched.payments, whole.payments) << "batch " << batch;
  }
}

TEST_P(AppVerify, AHistoryWrittenBeforeItRecordedMerchantNamesLeavesThemUnchecked) {
  write_sql(db_->url(), "UPDATE events SET detail = NULL WHERE kind = 'payment_created'");
  write_sql(db_->url(), "UPDATE payments SET merchant_name = 'Renamed'");
  const VerifyReport report = verify(db_->url());
  EXPECT_FALSE(report.difference.has_value()) << core::describe(*report.difference);
  EXPECT_EQ(report.merchant_names_unrecorded, 6U);
}

TEST_P(AppVerify, TheSnapshotDoesNotSeeWhatCommitsWhileItIsOpen) {
  const auto reader = store::open_store(db_->url(), store::StoreOptions{.read_only = true});
  reader->begin_snapshot();
  const auto before = reader->events_after(0, 1000).size();
  Books(*store_).create(42, kT0 + 20'000);  // a new payment and its event commit meanwhile
  EXPECT_EQ(reader->events_after(0, 1000).size(), before);
  EXPECT_EQ(reader->payments_after(0, 1000).size(), 6U);
  reader->commit();
  EXPECT_EQ(reader->events_after(0, 1000).size(), before + 1);
  EXPECT_FALSE(verify(db_->url()).difference.has_value());
}

INSTANTIATE_TEST_SUITE_P(Stores, AppVerify, test_support::both_stores(),
                         test_support::store_kind_name);

// One corruption of the stored rows and the first difference verify must report.
struct Corruption {
  const char* name;
  // SQL with {posted}, {rejected}, {resent}, {waiting}, {kept}, {repayment} for the day's ids.
  const char* sql;
  const char* table;
  // The id named: an account id, a payment ("{posted}"...), or "{sql:SELECT ...}" for one looked
  // up before the corruption (an event's id).
  const char* id;
  const char* column;
};

std::string with_ids(std::string text, const Day& day) {
  const std::pair<const char*, MovementId> names[] = {
      {"{posted}", day.posted},   {"{rejected}", day.rejected}, {"{resent}", day.resent},
      {"{waiting}", day.waiting}, {"{kept}", day.kept},         {"{repayment}", day.repayment}};
  for (const auto& [name, id] : names) {
    for (auto at = text.find(name); at != std::string::npos; at = text.find(name)) {
      text.replace(at, std::string(name).size(), std::to_string(id));
    }
  }
  return text;
}

class AppVerifyCorruption : public ::testing::TestWithParam<std::tuple<StoreKind, Corruption>> {};

TEST_P(AppVerifyCorruption, IsTheFirstDifferenceNamedByTableIdAndColumn) {
  const auto [kind, corruption] = GetParam();
  PS_NEED_STORE(kind);
  test_support::ScratchStore scratch(kind, "verify.db");
  Day day;
  {
    const auto s = store::open_store(scratch.url(), {});
    day = Books(*s).live_a_day();
  }
  ASSERT_FALSE(verify(scratch.url()).difference.has_value());

  const auto db = test_support::open_reader(scratch.url());
  std::string id = with_ids(corruption.id, day);
  if (id.starts_with("{sql:")) id = std::to_string(db->scalar_int(id.substr(5, id.size() - 6)));
  write_sql(scratch.url(), with_ids(corruption.sql, day));

  const VerifyReport report = verify(scratch.url());
  ASSERT_TRUE(report.difference.has_value()) << corruption.sql;
  const core::Difference& d = *report.difference;
  EXPECT_EQ(d.table, corruption.table) << core::describe(d);
  EXPECT_EQ(std::to_string(d.id), id) << core::describe(d);
  EXPECT_EQ(d.column, corruption.column) << core::describe(d);
  EXPECT_NE(d.expected, d.stored) << core::describe(d);
}

// The first callback applied to {posted} (-2600, pending).
#define PS_FIRST_CALLBACK                                                  \
  "(SELECT MIN(event_id) FROM events WHERE kind = 'callback_applied' AND " \
  "money_movement_id = {posted})"

INSTANTIATE_TEST_SUITE_P(
    Cases, AppVerifyCorruption,
    ::testing::Combine(
        test_support::both_stores(),
        ::testing::Values(
            Corruption{"AccountBalance",
                       "UPDATE accounts SET balance = balance + 1 WHERE account_id = 1", "accounts",
                       "1", "balance"},
            Corruption{"AccountSettledBalance",
                       "UPDATE accounts SET settled_balance = settled_balance - 1 "
                       "WHERE account_id = 2",
                       "accounts", "2", "settled_balance"},
            Corruption{"AccountStatus",
                       "UPDATE accounts SET status = 'delinquent' WHERE account_id = 1", "accounts",
                       "1", "status"},
            Corruption{"AccountNegativeSince",
                       "UPDATE accounts SET negative_since = 1 WHERE account_id = 2", "accounts",
                       "2", "negative_since"},
            Corruption{"PaymentStatus",
                       "UPDATE payments SET status = 'posted' WHERE money_movement_id = "
                       "{rejected}",
                       "payments", "{rejected}", "status"},
            Corruption{"PaymentAmount",
                       "UPDATE payments SET amount_cents = -2999 WHERE money_movement_id = "
                       "{posted}",
                       "payments", "{posted}", "amount_cents"},
            Corruption{"PaymentMerchantName",
                       "UPDATE payments SET merchant_name = 'Red Bottle' WHERE "
                       "money_movement_id = {kept}",
                       "payments", "{kept}", "merchant_name"},
            Corruption{"PaymentCallbacksApplied",
                       "UPDATE payments SET callbacks_applied = 0 WHERE money_movement_id = "
                       "{resent}",
                       "payments", "{resent}", "callbacks_applied"},
            Corruption{"PaymentNoLongerDueForAReSend",
                       "UPDATE payments SET resend_at = NULL WHERE money_movement_id = "
                       "{waiting}",
                       "payments", "{waiting}", "resend_at"},
            Corruption{"PaymentRowDeleted", "DELETE FROM payments WHERE money_movement_id = {kept}",
                       "payments", "{kept}", "row"},
            Corruption{"PaymentRowWithoutHistory",
                       "INSERT INTO payments (money_movement_id, account_id, amount_cents, "
                       "original_amount_cents, merchant_name, status, created_at, updated_at, "
                       "last_sent_at, settle_deadline, callbacks_applied, resend_at, "
                       "send_attempts) SELECT money_movement_id + 1000, account_id, "
                       "amount_cents, original_amount_cents, merchant_name, status, created_at, "
                       "updated_at, last_sent_at, settle_deadline, callbacks_applied, resend_at, "
                       "send_attempts FROM payments WHERE money_movement_id = {repayment}",
                       "payments", "{sql:SELECT {repayment} + 1000}", "row"},
            // The rejection's event: {rejected} stays in account 1's balance, so the next event
            // of account 1 records another balance than the replay has.
            Corruption{"RejectionEventDeleted",
                       "DELETE FROM events WHERE kind = 'provider_rejected'", "events",
                       "{sql:SELECT MIN(event_id) FROM events WHERE account_id = 1 AND event_id > "
                       "(SELECT event_id FROM events WHERE kind = 'provider_rejected')}",
                       "balance_after"},
            // A callback's event: the balances come out the same (the next callback replaces
            // the amount), but the payment has one callback more than its history.
            Corruption{"CallbackEventDeleted",
                       "DELETE FROM events WHERE event_id = " PS_FIRST_CALLBACK, "payments",
                       "{posted}", "callbacks_applied"},
            Corruption{"CallbackEventEdited",
                       "UPDATE events SET amount_cents = -2601 WHERE event_id = " PS_FIRST_CALLBACK,
                       "events", "{sql:SELECT " PS_FIRST_CALLBACK "}", "balance_after"},
            // account 1 back to `current`: the replay leaves it delinquent.
            Corruption{"LastEventDeleted",
                       "DELETE FROM events WHERE event_id = (SELECT MAX(event_id) FROM events)",
                       "accounts", "1", "status"})),
    [](const ::testing::TestParamInfo<std::tuple<StoreKind, Corruption>>& info) {
      return std::string(std::get<1>(info.param).name) +
             (std::get<0>(info.param) == StoreKind::sqlite ? "_Sqlite" : "_Postgres");
    });

}  // namespace
}  // namespace ps::app
