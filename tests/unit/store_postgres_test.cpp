// What only a shared database has: several connections (standing in for service instances) on
// one PostgreSQL database at once. Migrations, ids, the start-up lock, row locks, SKIP LOCKED,
// conflicts, lost connections and a connection lost during COMMIT. Each test gets a fresh
// database from PS_TEST_POSTGRES_URL; without it the tests skip (fail with PS_REQUIRE_POSTGRES=1).
// Also what the PostgreSQL store does to save round trips (rows held in memory, write-behind).
// The Store contract itself runs on both stores in app_ledger_test.cpp.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "app/ledger.hpp"
#include "core/ids.hpp"
#include "store/store.hpp"
#include "test_support/db_reader.hpp"
#include "test_support/postgres.hpp"

namespace ps::app {
namespace {

using namespace std::chrono_literals;
using store::StoreError;
using store::StoreFault;

constexpr TimeMs kT0 = 1'790'000'000'000;  // 2026

TimeMs wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Replay render(const Payment& p) {
  return Replay{201, "{\"money_movement_id\":" + std::to_string(p.money_movement_id) + "}"};
}

// Runs `f` in one transaction of `s`, as the writer would.
template <class F>
auto tx(store::Store& s, F&& f) {
  s.begin();
  try {
    auto r = f();
    s.commit();
    return r;
  } catch (...) {
    s.rollback();
    throw;
  }
}

std::optional<StoreFault> fault_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const StoreError& e) {
    return e.fault;
  }
  return std::nullopt;
}

// A libpq connection, to the admin URL by default: watches and ends the sessions of the test
// database.
class Admin {
 public:
  explicit Admin(const std::string& url = test_support::postgres_admin_url().value())
      : conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(conn_));
  }
  ~Admin() { PQfinish(conn_); }
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;

  std::int64_t scalar(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
      const std::string message = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error(sql + ": " + message);
    }
    const std::int64_t v = std::stoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
  }

  void exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    const std::string message = PQresultErrorMessage(r);
    PQclear(r);
    if (!ok) throw std::runtime_error(sql + ": " + message);
  }

  // Sessions on `database` waiting for a lock (a row lock or an advisory lock).
  std::int64_t waiting_for_locks(const std::string& database) {
    return scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '" + database +
                  "' AND wait_event_type = 'Lock'");
  }
  std::int64_t terminate_sessions(const std::string& database) {
    return scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '" +
        database + "'");
  }

 private:
  PGconn* conn_;
};

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

class PostgresStore : public ::testing::Test {
 protected:
  void SetUp() override {
    PS_NEED_POSTGRES();
    db_.emplace();
  }

  std::unique_ptr<store::Store> open(const std::string& url = {}) {
    return store::open_store(url.empty() ? db_->url() : url, {});
  }

  // A bootstrapped store (account 1) with `extra_accounts` more accounts.
  std::unique_ptr<store::Store> bootstrapped(int extra_accounts = 0) {
    auto s = open();
    Touched t;
    tx(*s, [&] {
      ledger_.bootstrap(*s, kT0, t);
      for (int i = 0; i < extra_accounts; ++i) ledger_.open_account(*s, kT0, t);
      return 0;
    });
    return s;
  }

  Payment create_payment(store::Store& s, Cents amount, TimeMs now) {
    Touched t;
    const auto created = tx(s, [&] {
      return ledger_.create_payment(s,
                                    NewPayment{.account_id = 1,
                                               .amount_cents = amount,
                                               .merchant_name = "Blue Bottle",
                                               .idempotency_key = std::nullopt,
                                               .request_hash = "h"},
                                    now, t, render);
    });
    return std::get<PaymentCreated>(created).payment;
  }

  std::int64_t count(const std::string& sql) {
    return test_support::open_reader(db_->url())->scalar_int(sql);
  }

  std::optional<test_support::TestDatabase> db_;
  Ledger ledger_{LedgerSettings{}};
};

TEST_F(PostgresStore, MigrationsOpenedByFourInstancesAtOnceApplyEachVersionOnce) {
  constexpr int kOpeners = 4;
  std::barrier start(kOpeners);
  std::vector<std::string> errors(kOpeners);
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      try {
        auto s = open();
        s->ping();
        // Every table the migrations create is there for each opener, whoever migrated.
        EXPECT_EQ(s->max_account_id(), 0);
        EXPECT_EQ(s->max_movement_id(), 0);
        EXPECT_EQ(s->latest_event_time(), std::nullopt);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(i)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(count("SELECT COUNT(*) FROM schema_migrations"), 6);
  EXPECT_EQ(count("SELECT COUNT(DISTINCT version) FROM schema_migrations"), 6);
  EXPECT_EQ(count("SELECT MAX(version) FROM schema_migrations"), 6);
  // A later opener applies nothing.
  open();
  EXPECT_EQ(count("SELECT COUNT(*) FROM schema_migrations"), 6);
}

TEST_F(PostgresStore, SchemaHasThePartialResendIndexAndTheProbeTable) {
  open();
  EXPECT_EQ(count("SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'payments_resend_due' "
                  "AND indexdef LIKE '%WHERE (resend_at IS NOT NULL)%'"),
            1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM information_schema.tables "
                  "WHERE table_name = 'writer_probe'"),
            1);
  // Every integer column is bigint.
  EXPECT_EQ(count("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = "
                  "current_schema() AND data_type IN ('integer', 'smallint', 'numeric')"),
            0);
}

// A callback changes a payment's status, amount, deadlines and counters: none of them may be in
// an index (migration 4), so PostgreSQL updates the row in place (HOT) instead of adding an entry
// to every index of the table. Fails with payments_by_status (versions 1-3).
TEST_F(PostgresStore, ACallbacksChangesToAPaymentUpdateItInPlace) {
  auto s = bootstrapped();
  const Payment p = create_payment(*s, 100, kT0);
  Admin session(db_->url());
  session.exec("BEGIN");
  const std::string change =
      "UPDATE payments SET status = 'completed', amount_cents = 90, updated_at = 2, "
      "settle_deadline = 3, callbacks_applied = 1, last_sent_at = 4, send_attempts = 2 "
      "WHERE money_movement_id = " +
      std::to_string(p.money_movement_id);
  session.exec(change);
  EXPECT_EQ(session.scalar("SELECT n_tup_upd FROM pg_stat_xact_user_tables "
                           "WHERE relname = 'payments'"),
            1);
  EXPECT_EQ(session.scalar("SELECT n_tup_hot_upd FROM pg_stat_xact_user_tables "
                           "WHERE relname = 'payments'"),
            1);
  session.exec("ROLLBACK");
  // Room for the new versions on each page.
  EXPECT_EQ(count("SELECT COUNT(*) FROM pg_class WHERE relname = 'payments' "
                  "AND 'fillfactor=80' = ANY(reloptions)"),
            1);
}

// A balance update of an account whose page was filled by the accounts opened after it stays on
// that page (HOT) too: accounts are inserted in id order, so without room left on each page
// (migration 6) the first update of every account but the newest moved its row to another page
// and added an entry to the primary key. Fails with versions 1-5.
TEST_F(PostgresStore, ABalanceUpdateOfAnAccountOnAFilledPageStaysOnItsPage) {
  auto s = bootstrapped();
  Admin session(db_->url());
  // Several pages of accounts (a row is about 80 bytes, a page 8 KB).
  session.exec(
      "INSERT INTO accounts (account_id, created_at, status, balance, settled_balance, "
      "negative_since) SELECT g, 1, 'current', 0, 0, NULL FROM generate_series(2, 1000) AS g");
  ASSERT_GT(session.scalar("SELECT pg_relation_size('accounts') / 8192"), 2);
  session.exec("BEGIN");
  session.exec("UPDATE accounts SET balance = -500, settled_balance = -500 WHERE account_id = 2");
  EXPECT_EQ(session.scalar("SELECT n_tup_upd FROM pg_stat_xact_user_tables "
                           "WHERE relname = 'accounts'"),
            1);
  EXPECT_EQ(session.scalar("SELECT n_tup_hot_upd FROM pg_stat_xact_user_tables "
                           "WHERE relname = 'accounts'"),
            1);
  session.exec("ROLLBACK");
}

// A prepared statement's generic plan is made once, by the 6th execution, and kept until the
// table's statistics change (autovacuum's ANALYZE, a minute or more later). On a new database the
// tables are empty then, and the planner would scan a one-page table rather than use its index,
// and keep scanning it as it grows: measured on a fresh database at 60,000 payments, 63 buffer
// accesses per updated payment instead of 10, POST /payments 1,800/s instead of 8,000/s.
// Fails without SET enable_seqscan = off.
TEST_F(PostgresStore, WritesFindTheirRowsThroughIndexesAlsoOnANewDatabase) {
  std::vector<Payment> payments;
  {
    auto s = bootstrapped();
    for (int i = 0; i < 12; ++i) payments.push_back(create_payment(*s, 100 + i, kT0));
  }
  Admin admin(db_->url());
  const auto scans = [&](const char* column) {
    return admin.scalar(std::string("SELECT ") + column +
                        " FROM pg_stat_user_tables WHERE relname = 'payments'");
  };
  const std::int64_t index_scans = scans("idx_scan");
  const std::int64_t table_scans = scans("seq_scan");
  {
    auto s = open();
    for (Payment p : payments) {
      tx(*s, [&] {
        store::LockSet locks;
        locks.payments.push_back(p.money_movement_id);
        s->lock(locks);
        p.status = "posted";
        s->update_payment(p);
        return 0;
      });
    }
  }  // the session ends: its statistics reach the server
  EXPECT_TRUE(eventually([&] { return scans("idx_scan") >= index_scans + 24; }));
  EXPECT_EQ(scans("seq_scan"), table_scans);
}

TEST_F(PostgresStore, MovementIdsOfTwoInstancesNeverCollideAndStayBelow2To53) {
  const TimeMs before_creation = wall_clock_ms();
  auto first = open();
  auto second = open();
  constexpr int kIds = 3000;  // about 12 blocks each
  std::vector<MovementId> a;
  std::vector<MovementId> b;
  auto issue = [](store::Store& s, std::vector<MovementId>& out) {
    for (int i = 0; i < kIds; ++i) {
      out.push_back(tx(s, [&] { return s.next_movement_id(kT0); }));
    }
  };
  std::thread ta([&] { issue(*first, a); });
  std::thread tb([&] { issue(*second, b); });
  ta.join();
  tb.join();
  std::set<MovementId> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(2 * kIds)) << "an id was issued twice";
  EXPECT_GT(*all.begin(), 0);
  EXPECT_LE(*all.rbegin(), core::kMaxMovementId);
  // Above every time-based id of before the database existed (a wiped database's ids).
  const MovementId floor = (before_creation - core::MovementIdGenerator::kEpochMs)
                           << core::MovementIdGenerator::kSequenceBits;
  EXPECT_GE(*all.begin(), floor);
  // Rising within each instance.
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
}

TEST_F(PostgresStore, AWipedDatabaseIssuesIdsAboveTheEarlierOnes) {
  MovementId earlier_max = 0;
  {
    auto s = open();
    for (int i = 0; i < 300; ++i) earlier_max = tx(*s, [&] { return s->next_movement_id(kT0); });
  }
  db_.reset();  // dropped
  std::this_thread::sleep_for(2ms);
  db_.emplace();
  auto s = open();
  EXPECT_GT(tx(*s, [&] { return s->next_movement_id(kT0); }), earlier_max);
}

TEST_F(PostgresStore, AccountIdsFromTwoConnectionsAreDistinct) {
  auto first = bootstrapped();
  auto second = open();
  std::vector<AccountId> a;
  std::vector<AccountId> b;
  std::thread ta([&] {
    for (int i = 0; i < 200; ++i) a.push_back(first->next_account_id());
  });
  std::thread tb([&] {
    for (int i = 0; i < 200; ++i) b.push_back(second->next_account_id());
  });
  ta.join();
  tb.join();
  std::set<AccountId> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 400U);
  EXPECT_EQ(*all.begin(), 2) << "account 1 is the bootstrap account";
}

TEST_F(PostgresStore, BootstrapByTwoInstancesAtOnceCreatesOneAccountOne) {
  for (int round = 0; round < 5; ++round) {
    if (round > 0) {
      db_.reset();
      db_.emplace();
    }
    auto first = open();
    auto second = open();
    std::barrier start(2);
    std::vector<std::string> errors(2);
    auto boot = [&](store::Store& s, std::size_t i) {
      start.arrive_and_wait();
      try {
        Touched t;
        tx(s, [&] {
          ledger_.bootstrap(s, kT0, t);
          return 0;
        });
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    };
    std::thread ta([&] { boot(*first, 0); });
    std::thread tb([&] { boot(*second, 1); });
    ta.join();
    tb.join();
    EXPECT_EQ(errors[0], "");
    EXPECT_EQ(errors[1], "");
    EXPECT_EQ(count("SELECT COUNT(*) FROM accounts"), 1);
    EXPECT_EQ(count("SELECT COUNT(*) FROM events WHERE kind = 'account_opened'"), 1);
  }
}

// The second connection's lock waits until the first commits, then reads the first's change.
TEST_F(PostgresStore, ASecondLockOfTheSamePaymentWaitsForTheFirstCommit) {
  auto first = bootstrapped();
  auto second = open();
  const Payment p = create_payment(*first, 100, kT0);
  store::LockSet locks;
  locks.payments.push_back(p.money_movement_id);

  first->begin();
  first->lock(locks);
  std::atomic<bool> first_committing{false};
  std::optional<Payment> seen;
  bool waited_for_commit = false;
  std::thread waiter([&] {
    second->begin();
    second->lock(locks);
    waited_for_commit = first_committing.load();
    seen = second->find_payment(p.money_movement_id);
    second->commit();
  });
  Admin admin;
  EXPECT_TRUE(eventually([&] { return admin.waiting_for_locks(db_->name()) == 1; }))
      << "the second lock did not wait";
  Payment changed = p;
  changed.send_attempts = 7;
  first->update_payment(changed);
  first_committing = true;
  first->commit();
  waiter.join();
  EXPECT_TRUE(waited_for_commit);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->send_attempts, 7);
}

// A payment's lock takes its account's too: a payment of account 1 and account 1 itself meet on
// the account row. Idempotency keys meet on their advisory lock.
TEST_F(PostgresStore, LocksOnAPaymentsAccountAndOnAnIdempotencyKeyWait) {
  auto first = bootstrapped();
  auto second = open();
  const Payment p = create_payment(*first, 100, kT0);
  store::LockSet by_payment;
  by_payment.payments.push_back(p.money_movement_id);
  store::LockSet by_account;
  by_account.accounts.push_back(1);
  store::LockSet by_key;
  by_key.idempotency_keys = {"k\"ey\\1", "other", "k\"ey\\1"};
  store::LockSet by_same_key;
  by_same_key.idempotency_keys = {"k\"ey\\1"};
  Admin admin;
  // The payment's account is locked both by a store that remembers it (`first` created the
  // payment) and by one that must look it up (`third` never saw the payment).
  auto third = open();
  struct Case {
    store::Store* holder;
    store::LockSet held;
    store::LockSet wanted;
  };
  for (const auto& [holder, held, wanted] :
       {Case{first.get(), by_payment, by_account}, Case{third.get(), by_payment, by_account},
        Case{first.get(), by_key, by_same_key}}) {
    holder->begin();
    holder->lock(held);
    std::atomic<bool> first_done{false};
    bool waited = false;
    std::thread waiter([&, wanted = wanted] {
      second->begin();
      second->lock(wanted);
      waited = first_done.load();
      second->commit();
    });
    EXPECT_TRUE(eventually([&] { return admin.waiting_for_locks(db_->name()) == 1; }));
    first_done = true;
    holder->rollback();
    waiter.join();
    EXPECT_TRUE(waited);
  }
  // Different keys do not wait for each other.
  first->begin();
  first->lock(by_key);
  store::LockSet another_key;
  another_key.idempotency_keys = {"unrelated"};
  second->begin();
  second->lock(another_key);
  second->commit();
  first->commit();
}

TEST_F(PostgresStore, DueResendsOnTwoConnectionsAtOnceAreDisjoint) {
  auto first = bootstrapped();
  auto second = open();
  std::set<MovementId> created;
  for (int i = 0; i < 20; ++i)
    created.insert(create_payment(*first, 100 + i, kT0).money_movement_id);
  const TimeMs later = kT0 + LedgerSettings{}.send_lease_ms + 1;  // every first send is due
  first->begin();
  const auto mine = first->due_resends(later, 12);
  second->begin();
  const auto theirs = second->due_resends(later, 20);  // does not wait for the first's rows
  second->commit();
  first->commit();
  EXPECT_EQ(mine.size(), 12U);
  EXPECT_EQ(theirs.size(), 8U);
  std::set<MovementId> all;
  for (const auto& p : mine) all.insert(p.money_movement_id);
  for (const auto& p : theirs) all.insert(p.money_movement_id);
  EXPECT_EQ(all, created);
}

TEST_F(PostgresStore, ADeadlockComesBackAsAConflict) {
  auto first = bootstrapped(2);  // accounts 1, 2, 3
  auto second = open();
  const Account two = *first->find_account(2);
  const Account three = *first->find_account(3);
  Admin admin;
  std::vector<std::optional<StoreFault>> faults(2);
  first->begin();
  first->update_account(two);
  second->begin();
  second->update_account(three);
  std::thread ta([&] {
    faults[0] = fault_of([&] { first->update_account(three); });  // waits for the second
  });
  EXPECT_TRUE(eventually([&] { return admin.waiting_for_locks(db_->name()) == 1; }));
  faults[1] = fault_of([&] { second->update_account(two); });  // closes the cycle
  // The one PostgreSQL picked as the victim rolls back, and the other can go on.
  if (faults[1]) second->rollback();
  ta.join();
  if (faults[0]) first->rollback();
  EXPECT_NE(faults[0].has_value(), faults[1].has_value()) << "exactly one victim";
  for (const auto& f : faults) {
    if (f) {
      EXPECT_EQ(*f, StoreFault::conflict);
    }
  }
  if (!faults[0]) first->commit();
  if (!faults[1]) second->commit();
}

TEST_F(PostgresStore, ATerminatedBackendIsUnavailableAndTheNextBeginConnectsAgain) {
  auto s = bootstrapped();
  Admin admin;
  s->begin();
  ASSERT_TRUE(s->find_account(1).has_value());
  EXPECT_EQ(admin.terminate_sessions(db_->name()), 1);
  EXPECT_EQ(fault_of([&] { s->find_account(1); }), StoreFault::unavailable);
  // Nothing more in this transaction: it died with its session.
  EXPECT_EQ(fault_of([&] { s->find_account(1); }), StoreFault::unavailable);
  s->rollback();
  EXPECT_EQ(tx(*s, [&] { return s->find_account(1)->account_id; }), 1);

  // Outside a transaction (a reader's connection) the next query connects again by itself.
  EXPECT_EQ(admin.terminate_sessions(db_->name()), 1);
  EXPECT_TRUE(s->find_account(1).has_value());
  // And a begin() after the session ended while idle.
  EXPECT_EQ(admin.terminate_sessions(db_->name()), 1);
  EXPECT_EQ(tx(*s, [&] { return s->max_account_id(); }), 1);
}

TEST_F(PostgresStore, ReadOnlyConnectionsRefuseWritesAndCommitReportsWhetherItWrote) {
  auto writer = bootstrapped();
  auto reader = store::open_store(db_->url(), store::StoreOptions{.read_only = true});
  EXPECT_TRUE(reader->shared());
  EXPECT_EQ(reader->find_account(1)->account_id, 1);
  reader->begin();
  EXPECT_THROW(reader->record_probe(kT0), StoreError);
  reader->rollback();
  EXPECT_EQ(count("SELECT COUNT(*) FROM writer_probe"), 0);
  EXPECT_EQ(reader->find_account(1)->account_id, 1) << "the reader goes on reading";

  writer->begin();
  writer->find_account(1);
  EXPECT_FALSE(writer->commit()) << "a transaction that only read";
  writer->begin();
  writer->record_probe(kT0);
  EXPECT_TRUE(writer->commit());
  writer->begin();
  writer->record_probe(kT0 + 1);  // the single row, rewritten
  EXPECT_TRUE(writer->commit());
  EXPECT_EQ(count("SELECT COUNT(*) FROM writer_probe"), 1);
  EXPECT_EQ(count("SELECT probed_at FROM writer_probe"), kT0 + 1);
  EXPECT_THROW(writer->rescue(), StoreError);
  writer->verify_identity();  // nothing to check, and nothing thrown
}

// A claimed payment's account stays locked until the claim commits: lease_for_resend writes the
// account's balances into the payment_resent event, so no other instance may change the account
// (and commit an event with a smaller event_id, leaving the account's newest event stale) in
// between.
TEST_F(PostgresStore, DueResendsHoldTheClaimedPaymentsAccountsUntilTheClaimCommits) {
  auto first = bootstrapped();
  auto second = open();
  create_payment(*first, 100, kT0);
  const TimeMs later = kT0 + LedgerSettings{}.send_lease_ms + 1;
  first->begin();
  ASSERT_EQ(first->due_resends(later, 10).size(), 1U);
  std::atomic<bool> first_done{false};
  bool waited = false;
  std::thread writer([&] {
    store::LockSet account;
    account.accounts.push_back(1);
    second->begin();
    second->lock(account);
    waited = first_done.load();
    second->commit();
  });
  Admin admin;
  EXPECT_TRUE(eventually([&] { return admin.waiting_for_locks(db_->name()) == 1; }))
      << "a writer of the claimed payment's account did not wait for the claim";
  first_done = true;
  first->commit();
  writer.join();
  EXPECT_TRUE(waited);
}

// A claim inside a batch that already holds a higher account (accounts are locked in id order)
// does not wait for a lower one another transaction holds: it leaves that account's payments
// for a later claim, and takes them once the account is free.
TEST_F(PostgresStore, AClaimHoldingAHigherAccountTakesALowerOneOnlyIfFree) {
  auto first = bootstrapped(1);  // accounts 1 and 2
  auto other = open();
  const Payment p = create_payment(*first, 100, kT0);  // account 1
  const TimeMs later = kT0 + LedgerSettings{}.send_lease_ms + 1;
  store::LockSet account_one;
  account_one.accounts.push_back(1);
  other->begin();
  other->lock(account_one);

  store::LockSet account_two;
  account_two.accounts.push_back(2);
  first->begin();
  first->lock(account_two);
  EXPECT_TRUE(first->due_resends(later, 10).empty()) << "account 1 is held by another";
  other->rollback();
  const auto claimed = first->due_resends(later, 10);
  ASSERT_EQ(claimed.size(), 1U);
  EXPECT_EQ(claimed[0].money_movement_id, p.money_movement_id);
  first->commit();
}

// Write-behind: a write that fails when it is sent fails the call that sent it (here commit),
// and nothing of the transaction is committed.
TEST_F(PostgresStore, ABufferedWriteThatFailsFailsTheCommitAndNothingIsWritten) {
  auto s = bootstrapped();
  const Payment p = create_payment(*s, 100, kT0);
  Payment orphan = p;
  orphan.money_movement_id = p.money_movement_id + 1;
  orphan.account_id = 999;  // no such account: the foreign key refuses it
  s->begin();
  store::LockSet locks;
  locks.payments.push_back(p.money_movement_id);
  s->lock(locks);
  Payment changed = p;
  changed.send_attempts = 9;
  s->update_payment(changed);
  s->insert_payment(orphan);  // buffered: nothing fails yet
  const auto fault = fault_of([&] { s->commit(); });
  ASSERT_TRUE(fault.has_value()) << "the commit succeeded";
  EXPECT_EQ(*fault, StoreFault::none) << "a constraint: the statement, not the store";
  s->rollback();
  EXPECT_EQ(count("SELECT COUNT(*) FROM payments"), 1);
  EXPECT_EQ(count("SELECT send_attempts FROM payments"), 1);
  EXPECT_EQ(tx(*s, [&] { return s->find_payment(p.money_movement_id)->send_attempts; }), 1)
      << "the next transaction starts clean";
}

// Reads that are not answered from memory see the transaction's buffered writes; held rows
// answer from memory with the transaction's latest state, and checks a statement would make
// happen at once.
TEST_F(PostgresStore, ReadsSeeTheTransactionsOwnBufferedWrites) {
  auto s = bootstrapped();
  const Payment p = create_payment(*s, 100, kT0);
  s->begin();
  store::LockSet locks;
  locks.payments.push_back(p.money_movement_id);
  locks.payments.push_back(p.money_movement_id + 1000);  // no such payment
  s->lock(locks);
  EXPECT_FALSE(s->find_payment(p.money_movement_id + 1000).has_value());
  Payment missing = p;
  missing.money_movement_id += 1000;
  EXPECT_THROW(s->update_payment(missing), StoreError) << "a held payment that does not exist";
  Payment renamed = p;
  renamed.merchant_name = "Other";
  EXPECT_THROW(s->update_payment(renamed), StoreError) << "an immutable column";

  Payment changed = p;
  changed.status = "posted";
  changed.callbacks_applied = 1;
  s->update_payment(changed);
  Payment fresh = p;
  fresh.money_movement_id = p.money_movement_id + 1;
  s->insert_payment(fresh);
  fresh.send_attempts = 3;
  s->update_payment(fresh);  // one insert of the final state
  Account account = *s->find_account(1);
  account.balance += 5;
  s->update_account(account);
  for (const Cents amount : {10, 20, 30}) {
    s->append_event(store::Event{.at = kT0,
                                 .kind = store::event_kind::kCallbackApplied,
                                 .account_id = 1,
                                 .money_movement_id = p.money_movement_id,
                                 .amount_cents = amount,
                                 .status = "posted",
                                 .settle_deadline = std::nullopt,
                                 .balance_after = 0,
                                 .settled_balance_after = 0,
                                 .detail = std::nullopt});
  }
  EXPECT_EQ(s->find_payment(p.money_movement_id)->status, "posted");
  EXPECT_EQ(s->find_account(1)->balance, account.balance);
  store::PaymentFilter all;
  const auto listed = s->list_payments(all);  // from the server: the buffered writes went first
  ASSERT_EQ(listed.size(), 2U);
  EXPECT_EQ(listed[0].send_attempts, 3);
  EXPECT_EQ(listed[1].status, "posted");
  const auto history = s->callback_history(p.money_movement_id);
  ASSERT_EQ(history.size(), 3U);
  EXPECT_EQ(history[0].amount_cents, 10);
  EXPECT_EQ(history[2].amount_cents, 30) << "events keep the order they were appended in";
  EXPECT_TRUE(s->commit());
  EXPECT_EQ(count("SELECT balance FROM accounts WHERE account_id = 1"), account.balance);
  EXPECT_EQ(count("SELECT COUNT(*) FROM payments WHERE status = 'posted'"), 1);
}

// --- A connection lost during COMMIT -------------------------------------------------------
//
// A proxy between the store and the server cuts the connection at the one moment that matters,
// deterministically: either the client's COMMIT never reaches the server (the transaction is
// rolled back), or the server's answer to it never reaches the client (it committed).

enum class Cut { none, commit_request, commit_answer };

class CuttingProxy {
 public:
  // Forwards 127.0.0.1:port() to the server at `host` (a Unix socket directory or an IPv4
  // address) and `port`.
  CuttingProxy(std::string host, int port) : host_(std::move(host)), port_(port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listener_, 16) != 0) {
      throw std::runtime_error("proxy: cannot listen");
    }
    socklen_t len = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    listen_port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~CuttingProxy() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    acceptor_.join();
    ::close(listener_);
    const std::lock_guard lock(mutex_);
    for (auto& t : pumps_) t.join();
  }
  CuttingProxy(const CuttingProxy&) = delete;
  CuttingProxy& operator=(const CuttingProxy&) = delete;

  int port() const { return listen_port_; }
  // The next COMMIT (on any connection) is cut as `cut`; with `refuse_after`, every connection
  // after the cut is refused too.
  void arm(Cut cut, bool refuse_after) {
    refuse_after_ = refuse_after;
    cut_ = cut;
  }
  bool cut_done() const { return cut_done_; }

 private:
  int connect_to_server() const {
    if (!host_.empty() && host_.front() == '/') {
      const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      const std::string path = host_ + "/.s.PGSQL." + std::to_string(port_);
      std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
      }
      return fd;
    }
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port_));
    ::inet_pton(AF_INET, host_.c_str(), &a.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  void accept_loop() {
    while (!stop_) {
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      if (refusing_) {
        ::close(client);
        continue;
      }
      const int server = connect_to_server();
      if (server < 0) {
        ::close(client);
        continue;
      }
      const std::lock_guard lock(mutex_);
      pumps_.emplace_back([this, client, server] { pump(client, server); });
    }
  }

  // Splits a byte stream of the PostgreSQL protocol into messages: a type byte and a length
  // that counts itself (the client's first message, the startup packet, has no type byte; the
  // proxy's URL turns SSL and GSS encryption off, so nothing precedes it).
  struct Splitter {
    bool typed;
    std::string buffer;
    // Next complete message (type, payload), or nothing yet.
    std::optional<std::pair<char, std::string>> next(std::string& raw) {
      const std::size_t header = typed ? 5 : 4;
      if (buffer.size() < header) return std::nullopt;
      const auto* b = reinterpret_cast<const unsigned char*>(buffer.data() + (typed ? 1 : 0));
      const std::size_t length = (std::size_t{b[0]} << 24) | (std::size_t{b[1]} << 16) |
                                 (std::size_t{b[2]} << 8) | std::size_t{b[3]};
      const std::size_t total = length + (typed ? 1 : 0);
      if (buffer.size() < total) return std::nullopt;
      const char type = typed ? buffer[0] : '\0';
      std::string payload = buffer.substr(header, total - header);
      raw = buffer.substr(0, total);
      buffer.erase(0, total);
      typed = true;
      return std::pair{type, std::move(payload)};
    }
  };

  static bool is_commit(const std::string& payload) { return payload == std::string("COMMIT", 7); }

  void pump(int client, int server) {
    Splitter from_client{false, {}};
    Splitter from_server{true, {}};
    char chunk[16384];
    bool open = true;
    while (open && !stop_) {
      pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (::poll(fds, 2, 100) <= 0) continue;
      for (int side = 0; side < 2 && open; ++side) {
        if ((fds[side].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        const int from = fds[side].fd;
        const int to = side == 0 ? server : client;
        const ssize_t n = ::read(from, chunk, sizeof chunk);
        if (n <= 0) {
          open = false;
          break;
        }
        Splitter& splitter = side == 0 ? from_client : from_server;
        splitter.buffer.append(chunk, static_cast<std::size_t>(n));
        std::string raw;
        while (auto message = splitter.next(raw)) {
          const Cut cut = cut_.load();
          const bool cut_here = (cut == Cut::commit_request && side == 0 && message->first == 'Q' &&
                                 is_commit(message->second)) ||
                                (cut == Cut::commit_answer && side == 1 && message->first == 'C' &&
                                 is_commit(message->second));
          if (cut_here) {
            cut_ = Cut::none;
            refusing_ = refuse_after_.load();
            cut_done_ = true;
            open = false;
            break;
          }
          if (::write(to, raw.data(), raw.size()) != static_cast<ssize_t>(raw.size())) {
            open = false;
            break;
          }
        }
      }
    }
    ::close(client);
    ::close(server);
  }

  std::string host_;
  int port_;
  int listener_ = -1;
  int listen_port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<Cut> cut_{Cut::none};
  std::atomic<bool> refuse_after_{false};
  std::atomic<bool> refusing_{false};
  std::atomic<bool> cut_done_{false};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<std::thread> pumps_;
};

class PostgresLostCommit : public PostgresStore {
 protected:
  void SetUp() override {
    PostgresStore::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    PQconninfoOption* options = PQconninfoParse(db_->url().c_str(), nullptr);
    ASSERT_NE(options, nullptr);
    std::map<std::string, std::string> values;
    for (auto* o = options; o->keyword != nullptr; ++o) {
      if (o->val != nullptr) values[o->keyword] = o->val;
    }
    PQconninfoFree(options);
    std::string host = values.count("host") != 0 ? values["host"] : "/var/run/postgresql";
    if (host == "localhost") host = "127.0.0.1";
    const int port = values.count("port") != 0 ? std::stoi(values["port"]) : 5432;
    in_addr ignored{};
    if (host.front() != '/' && ::inet_pton(AF_INET, host.c_str(), &ignored) != 1) {
      GTEST_SKIP() << "the proxy reaches a server by IPv4 address or Unix socket only";
    }
    proxy_ = std::make_unique<CuttingProxy>(host, port);
    proxied_url_ = "postgresql://127.0.0.1:" + std::to_string(proxy_->port()) + "/" +
                   values["dbname"] + "?sslmode=disable&gssencmode=disable";
    if (values.count("user") != 0) proxied_url_ += "&user=" + values["user"];
    if (values.count("password") != 0) proxied_url_ += "&password=" + values["password"];
  }

  // A transaction that writes one probe row at `at`, committed through the proxy.
  store::Store& writing_transaction(TimeMs at) {
    if (!store_) store_ = open(proxied_url_);
    store_->begin();
    store_->record_probe(at);
    return *store_;
  }

  std::unique_ptr<CuttingProxy> proxy_;
  std::string proxied_url_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(PostgresLostCommit, AnswerLostAfterTheServerCommittedReturnsNormally) {
  store::Store& s = writing_transaction(kT0);
  proxy_->arm(Cut::commit_answer, false);
  EXPECT_TRUE(s.commit());
  EXPECT_TRUE(proxy_->cut_done());
  EXPECT_EQ(count("SELECT probed_at FROM writer_probe"), kT0);
  // The store goes on, on its new connection.
  EXPECT_TRUE(tx(s, [&] { return s.find_account(1); }) == std::nullopt);
}

TEST_F(PostgresLostCommit, CommitThatNeverReachedTheServerIsUnavailableAndRolledBack) {
  store::Store& s = writing_transaction(kT0);
  proxy_->arm(Cut::commit_request, false);
  try {
    s.commit();
    ADD_FAILURE() << "commit returned";
  } catch (const StoreError& e) {
    EXPECT_EQ(e.fault, StoreFault::unavailable) << e.what();
    EXPECT_NE(std::string(e.what()).find("rolled back"), std::string::npos) << e.what();
  }
  s.rollback();  // as the writer does: nothing left to undo
  EXPECT_TRUE(proxy_->cut_done());
  EXPECT_EQ(count("SELECT COUNT(*) FROM writer_probe"), 0);
  writing_transaction(kT0 + 1);
  EXPECT_TRUE(s.commit());
  EXPECT_EQ(count("SELECT probed_at FROM writer_probe"), kT0 + 1);
}

TEST_F(PostgresLostCommit, NoServerToAskAfterALostCommitIsOutcomeUnknown) {
  store::Store& s = writing_transaction(kT0);
  proxy_->arm(Cut::commit_answer, true);  // and no connection after it
  const auto started = std::chrono::steady_clock::now();
  try {
    s.commit();
    ADD_FAILURE() << "commit returned";
  } catch (const StoreError& e) {
    EXPECT_EQ(e.fault, StoreFault::outcome_unknown) << e.what();
  }
  // Bounded: a few seconds of reconnecting, not a hang.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 15s);
  s.rollback();
  EXPECT_EQ(count("SELECT probed_at FROM writer_probe"), kT0) << "it did commit, in fact";
}

}  // namespace
}  // namespace ps::app
