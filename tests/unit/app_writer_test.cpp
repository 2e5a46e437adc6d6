// app::Writer: group commit, batch isolation, bounded queue, publishing to the AccountsView only
// after commit, and the coroutine front door `run`, over each real store (SQLite, and PostgreSQL
// when PS_TEST_POSTGRES_URL names a server: a fresh database per test). Synchronisation is by
// promises and by stop() draining the queue, never by sleeping.

#include "app/writer.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <array>
#include <atomic>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/accounts_view.hpp"
#include "app/ledger.hpp"
#include "core/clock.hpp"
#include "store/store.hpp"
#include "test_support/db_reader.hpp"
#include "test_support/scratch_store.hpp"
#include "test_support/sqlite_reader.hpp"

namespace ps::app {
namespace {

// create_payment renders an answer only for a repeated Idempotency-Key; these jobs use none.
Replay no_replay(const Payment&) {
  return Replay{};
}

constexpr TimeMs kT0 = 1'790'000'000'000;

// The result of each job, as its completion reported it.
class Results {
 public:
  Writer::Completion slot(std::size_t i) {
    {
      const std::lock_guard lock(mutex_);
      if (errors_.size() <= i) errors_.resize(i + 1, "pending");
    }
    return [this, i](std::exception_ptr e) {
      std::string what = "ok";
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          what = std::string("error: ") + ex.what();
        }
      }
      const std::lock_guard lock(mutex_);
      errors_[i] = what;
    };
  }
  std::string at(std::size_t i) {
    const std::lock_guard lock(mutex_);
    return errors_.at(i);
  }
  std::size_t count(const std::string& what) {
    const std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& e : errors_) n += e == what ? 1 : 0;
    return n;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> errors_;
};

// A writer over this test's store, which SetUp makes: AppWriter's on each store, AppWriterSqlite's
// on SQLite only.
class WriterFixture : public ::testing::Test {
 protected:
  std::unique_ptr<Writer> make_writer(WriterOptions options) {
    auto w = std::make_unique<Writer>(store::open_store(db_->url(), {}), clock_, view_, options);
    w->run_now([this](store::Store& s, TimeMs now, Touched& t) { ledger_.bootstrap(s, now, t); });
    // The start-up work counts in the stats too; tests look at what came after it.
    base_batches_ = batches(*w);
    base_jobs_ = jobs(*w);
    base_failed_ = failed_batches(*w);
    return w;
  }

  // A job that creates a payment of `amount` on account 1.
  Writer::Work create_payment(Cents amount) {
    return [this, amount](store::Store& s, TimeMs now, Touched& t) {
      const auto r = ledger_.create_payment(s,
                                            NewPayment{.account_id = 1,
                                                       .amount_cents = amount,
                                                       .merchant_name = "m",
                                                       .idempotency_key = std::nullopt,
                                                       .request_hash = "h"},
                                            now, t, no_replay);
      if (!std::holds_alternative<PaymentCreated>(r)) throw std::runtime_error("create failed");
    };
  }

  std::uint64_t batches(const Writer& w) const { return w.stats().batches.load() - base_batches_; }
  std::uint64_t jobs(const Writer& w) const { return w.stats().jobs.load() - base_jobs_; }
  std::uint64_t failed_batches(const Writer& w) const {
    return w.stats().failed_batches.load() - base_failed_;
  }

  std::int64_t scalar(const std::string& sql) {
    return test_support::open_reader(db_->url())->scalar_int(sql);
  }

  void expect_invariants() {
    for (const auto& v : test_support::check_ledger_invariants(db_->url())) {
      ADD_FAILURE() << "ledger invariant violated: " << v;
    }
  }

  static constexpr const char* kFile = "writer.db";  // the SQLite file's name
  std::optional<test_support::ScratchStore> db_;     // set by SetUp
  core::ManualClock clock_{kT0};
  AccountsView view_;
  Ledger ledger_{LedgerSettings{}};
  std::uint64_t base_batches_ = 0;
  std::uint64_t base_jobs_ = 0;
  std::uint64_t base_failed_ = 0;
};

class AppWriter : public WriterFixture,
                  public ::testing::WithParamInterface<test_support::StoreKind> {
 protected:
  void SetUp() override {
    PS_NEED_STORE(GetParam());
    db_.emplace(GetParam(), kFile);
  }
};

class AppWriterSqlite : public WriterFixture {
 protected:
  void SetUp() override { db_.emplace(test_support::StoreKind::sqlite, kFile); }
};

TEST_P(AppWriter, RunNowBootstrapsAndPublishes) {
  auto w = make_writer({});
  const auto snap = view_.snapshot();
  EXPECT_EQ(snap->version, 1u);
  ASSERT_TRUE(view_.find(1).has_value());
  EXPECT_EQ(view_.find(1)->created_at, kT0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM accounts"), 1);
  EXPECT_THROW(w->run_now([](store::Store&, TimeMs, Touched&) { throw std::logic_error("no"); }),
               std::logic_error);
}

TEST_P(AppWriter, JobsQueuedWhileStoppedCommitInOneBatch) {
  auto w = make_writer({});
  Results results;
  constexpr std::size_t kJobs = 200;
  for (std::size_t i = 0; i < kJobs; ++i) {
    ASSERT_TRUE(w->try_enqueue(create_payment(10), results.slot(i)));
  }
  EXPECT_EQ(w->stats().queue_depth.load(), kJobs);
  EXPECT_EQ(results.count("pending"), kJobs);  // nothing runs before start()
  w->start();
  w->stop();  // drains the queue
  EXPECT_EQ(results.count("ok"), kJobs);
  EXPECT_EQ(jobs(*w), kJobs);
  EXPECT_LT(batches(*w), kJobs);
  EXPECT_EQ(batches(*w), 1u);
  EXPECT_EQ(failed_batches(*w), 0u);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM payments"), static_cast<std::int64_t>(kJobs));
  EXPECT_EQ(scalar("SELECT balance FROM accounts WHERE account_id = 1"), 2000);
  EXPECT_EQ(view_.find(1)->balance, 2000);
  expect_invariants();
}

TEST_P(AppWriter, BatchMaxBoundsTheBatch) {
  auto w = make_writer(WriterOptions{.queue_capacity = 1000, .batch_max = 16});
  Results results;
  for (std::size_t i = 0; i < 200; ++i)
    ASSERT_TRUE(w->try_enqueue(create_payment(1), results.slot(i)));
  w->start();
  w->stop();
  EXPECT_EQ(results.count("ok"), 200u);
  EXPECT_EQ(batches(*w), 13u);  // ceil(200 / 16)
  EXPECT_EQ(jobs(*w), 200u);
}

TEST_P(AppWriter, JobsQueuedWhileTheWriterIsBusyShareOneCommit) {
  auto w = make_writer({});
  w->start();
  std::promise<void> started;
  std::promise<void> release;
  auto release_future = release.get_future().share();
  Results results;
  ASSERT_TRUE(w->try_enqueue(
      [&started, release_future](store::Store&, TimeMs, Touched&) {
        started.set_value();
        release_future.wait();  // holds the writer busy inside its first batch
      },
      results.slot(0)));
  started.get_future().wait();
  constexpr std::size_t kJobs = 100;
  for (std::size_t i = 1; i <= kJobs; ++i) {
    ASSERT_TRUE(w->try_enqueue(create_payment(5), results.slot(i)));
  }
  release.set_value();
  w->stop();
  EXPECT_EQ(results.count("ok"), kJobs + 1);
  EXPECT_EQ(batches(*w), 2u);  // the blocker alone, then all the others together
  EXPECT_EQ(jobs(*w), kJobs + 1);
  EXPECT_EQ(scalar("SELECT balance FROM accounts WHERE account_id = 1"), 500);
  expect_invariants();
}

TEST_P(AppWriter, AFailingJobFailsAloneAndTheOthersInItsBatchCommit) {
  auto w = make_writer({});
  const auto version_before = view_.snapshot()->version;
  Results results;
  ASSERT_TRUE(w->try_enqueue(create_payment(10), results.slot(0)));
  ASSERT_TRUE(w->try_enqueue(
      [this](store::Store& s, TimeMs now, Touched& t) {
        create_payment(20)(s, now, t);  // writes, then fails: must be rolled back
        throw std::runtime_error("boom");
      },
      results.slot(1)));
  ASSERT_TRUE(w->try_enqueue(create_payment(30), results.slot(2)));
  w->start();
  w->stop();

  EXPECT_EQ(results.at(0), "ok");
  EXPECT_EQ(results.at(1), "error: boom");
  EXPECT_EQ(results.at(2), "ok");
  EXPECT_EQ(failed_batches(*w), 1u);
  EXPECT_EQ(batches(*w), 2u);  // the two healthy jobs, one commit each
  EXPECT_EQ(jobs(*w), 2u);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM payments"), 2);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM payments WHERE amount_cents = 20"), 0);
  EXPECT_EQ(scalar("SELECT balance FROM accounts WHERE account_id = 1"), 40);
  EXPECT_EQ(view_.find(1)->balance, 40);
  // Published once per successful commit; the failed attempts published nothing.
  EXPECT_EQ(view_.snapshot()->version, version_before + 2);
  expect_invariants();
}

TEST_P(AppWriter, ASingleFailingJobGetsItsError) {
  auto w = make_writer({});
  Results results;
  ASSERT_TRUE(w->try_enqueue(
      [](store::Store&, TimeMs, Touched&) { throw std::runtime_error("alone"); }, results.slot(0)));
  w->start();
  w->stop();
  EXPECT_EQ(results.at(0), "error: alone");
  EXPECT_EQ(batches(*w), 0u);
  EXPECT_EQ(failed_batches(*w), 1u);
}

// Issue 8, defect 5: once COMMIT returned, every job of the batch is done exactly once. A
// completion that throws (fault injection: the first one of the batch) must neither re-run the
// committed work (a second payment) nor call any completion a second time.
TEST_P(AppWriter, ACompletionThatThrowsAfterCommitReRunsNothing) {
  auto w = make_writer({});
  constexpr std::size_t kJobs = 3;
  std::array<std::atomic<int>, kJobs> ran{};
  std::array<std::atomic<int>, kJobs> completed{};
  std::array<std::atomic<bool>, kJobs> failed{};
  for (std::size_t i = 0; i < kJobs; ++i) {
    ASSERT_TRUE(w->try_enqueue(
        [this, &ran, i](store::Store& s, TimeMs now, Touched& t) {
          ++ran.at(i);
          create_payment(static_cast<Cents>(10 * (i + 1)))(s, now, t);
        },
        [&completed, &failed, i](std::exception_ptr e) {
          failed.at(i) = e != nullptr;
          if (++completed.at(i) == 1 && i == 0) throw std::runtime_error("completion failed");
        }));
  }
  w->start();
  w->stop();
  for (std::size_t i = 0; i < kJobs; ++i) {
    EXPECT_EQ(ran.at(i).load(), 1) << "job " << i << " ran more than once";
    EXPECT_EQ(completed.at(i).load(), 1) << "job " << i << " completed more than once";
    EXPECT_FALSE(failed.at(i).load()) << "job " << i << " was committed, yet got an error";
  }
  EXPECT_EQ(batches(*w), 1u);
  EXPECT_EQ(failed_batches(*w), 0u);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM payments"), 3);
  EXPECT_EQ(scalar("SELECT balance FROM accounts WHERE account_id = 1"), 60);
  EXPECT_EQ(view_.find(1)->balance, 60);
  expect_invariants();
}

// Issue 8, defect 12: readiness follows the store's ability to write, not the jobs' own errors.
TEST_P(AppWriter, AStoreFaultMakesTheWriterUnreadyUntilAWriteSucceeds) {
  auto w = make_writer({});
  ASSERT_TRUE(w->health().ready);
  // The job's own failure (a bug, a constraint) says nothing about the store.
  EXPECT_THROW(
      w->run_now([](store::Store&, TimeMs, Touched&) { throw std::runtime_error("job bug"); }),
      std::runtime_error);
  EXPECT_TRUE(w->health().ready);
  EXPECT_THROW(w->run_now([](store::Store&, TimeMs, Touched&) {
    throw store::StoreError("database or disk is full", store::StoreFault::unavailable);
  }),
               store::StoreError);
  EXPECT_FALSE(w->health().ready);
  EXPECT_NE(w->health().detail.find("database or disk is full"), std::string::npos);
  // A commit that only read proves nothing about writing.
  w->run_now([](store::Store& s, TimeMs, Touched&) { s.ping(); });
  EXPECT_FALSE(w->health().ready);
  w->run_now(create_payment(5));
  EXPECT_TRUE(w->health().ready) << w->health().detail;
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM payments"), 1);
}

// A shared database (issue 9): a batch that lost a race with another instance (serialization
// failure, deadlock) committed nothing and runs again, whole, until it commits.
TEST_P(AppWriter, ABatchThatMeetsAConflictRunsAgainAndCommitsOnce) {
  auto w = make_writer({});
  int conflicts_left = 3;
  int ran = 0;
  Results results;
  ASSERT_TRUE(w->try_enqueue(
      [&](store::Store& s, TimeMs now, Touched& t) {
        ++ran;
        create_payment(7)(s, now, t);
        if (conflicts_left-- > 0) {
          throw store::StoreError("deadlock detected", store::StoreFault::conflict);
        }
      },
      results.slot(0)));
  ASSERT_TRUE(w->try_enqueue(create_payment(8), results.slot(1)));
  w->start();
  w->stop();
  EXPECT_EQ(results.at(0), "ok");
  EXPECT_EQ(results.at(1), "ok");
  EXPECT_EQ(ran, 4);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM payments"), 2);
  EXPECT_EQ(scalar("SELECT balance FROM accounts WHERE account_id = 1"), 15);
  EXPECT_TRUE(w->health().ready) << "a lost race says nothing about the store";
  expect_invariants();
}

TEST_P(AppWriter, ConflictsAreRetriedABoundedNumberOfTimes) {
  auto w = make_writer({});
  int ran = 0;
  EXPECT_THROW(w->run_now([&ran](store::Store&, TimeMs, Touched&) {
    ++ran;
    throw store::StoreError("could not serialize access", store::StoreFault::conflict);
  }),
               store::StoreError);
  EXPECT_EQ(ran, Writer::kConflictAttempts);
  EXPECT_TRUE(w->health().ready);
}

// A COMMIT whose outcome is unknown (the connection died during it) may have committed: its jobs
// are not run again, neither as a batch nor one by one, and none is acknowledged.
TEST_P(AppWriter, AnUnknownCommitOutcomeIsNeitherRetriedNorAcknowledged) {
  auto w = make_writer({});
  std::array<std::atomic<int>, 3> ran{};
  Results results;
  for (std::size_t i = 0; i < ran.size(); ++i) {
    ASSERT_TRUE(w->try_enqueue(
        [this, &ran, i](store::Store& s, TimeMs now, Touched& t) {
          ++ran.at(i);
          create_payment(1)(s, now, t);
          if (i == ran.size() - 1) {
            throw store::StoreError("connection lost during COMMIT",
                                    store::StoreFault::outcome_unknown);
          }
        },
        results.slot(i)));
  }
  w->start();
  w->stop();
  for (std::size_t i = 0; i < ran.size(); ++i) {
    EXPECT_EQ(ran.at(i).load(), 1) << "job " << i;
    EXPECT_EQ(results.at(i), "error: connection lost during COMMIT") << "job " << i;
  }
  EXPECT_FALSE(w->health().ready);
}

// The writer locks the union of its batch's LockSets (store::LockSet::merge).
TEST(StoreLockSet, MergeKeepsEveryRowAndEveryFlag) {
  store::LockSet batch;
  EXPECT_TRUE(batch.empty());
  store::LockSet first;
  first.accounts = {1};
  first.idempotency_keys = {"k"};
  store::LockSet second;
  second.payments = {42};
  store::LockSet third;
  third.start_up = true;
  third.accounts = {3};
  for (const auto* l : {&first, &second, &third}) batch.merge(*l);
  EXPECT_FALSE(batch.empty());
  EXPECT_TRUE(batch.start_up);
  EXPECT_EQ(batch.accounts, (std::vector<AccountId>{1, 3}));
  EXPECT_EQ(batch.payments, (std::vector<MovementId>{42}));
  EXPECT_EQ(batch.idempotency_keys, (std::vector<std::string>{"k"}));
}

// Defect 12: a write that meets damage stops writing for good; nothing more is acknowledged on
// top of it, and every later job fails at once without running.
TEST_P(AppWriter, CorruptionStopsWritingForGood) {
  auto w = make_writer({});
  EXPECT_THROW(w->run_now([](store::Store&, TimeMs, Touched&) {
    throw store::StoreError("database disk image is malformed", store::StoreFault::corrupt);
  }),
               store::StoreError);
  EXPECT_FALSE(w->health().ready);
  EXPECT_NE(w->health().detail.find("stopped for good"), std::string::npos);
  int ran = 0;
  Results results;
  EXPECT_TRUE(w->try_enqueue([&ran](store::Store&, TimeMs, Touched&) { ++ran; }, results.slot(0)));
  // Completed inside try_enqueue, before the writer even started.
  EXPECT_EQ(results.at(0), "error: writes are stopped for good: database disk image is malformed");
  w->start();
  EXPECT_TRUE(w->try_enqueue(create_payment(5), results.slot(1)));
  w->stop();
  EXPECT_EQ(ran, 0);
  EXPECT_NE(results.at(1).find("stopped for good"), std::string::npos);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM payments"), 0);
  EXPECT_FALSE(w->health().ready);
}

// Defect 10: the database file renamed away under the writer. The batch found it inside its
// transaction and was rolled back; writing stopped; the file the writer still has open was copied
// next to the path and its WAL moved away from it, so a restart opens neither half of it.
// SQLite only: it moves the database file (a PostgreSQL server owns its files).
TEST_F(AppWriterSqlite, ADatabaseFileMovedAwayStopsTheWriterAndIsRescued) {
  namespace fs = std::filesystem;
  const std::string path = (db_->dir() / kFile).string();
  auto w = make_writer({});
  w->run_now(create_payment(7));
  fs::rename(path, path + ".moved");
  int ran = 0;
  try {
    w->run_now([&](store::Store& s, TimeMs now, Touched& t) {
      ++ran;
      create_payment(9)(s, now, t);
    });
    ADD_FAILURE() << "a commit into a moved database file was acknowledged";
  } catch (const store::StoreError& e) {
    EXPECT_EQ(e.fault, store::StoreFault::lost);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_EQ(ran, 1) << "the failed batch must not be run again";
  EXPECT_FALSE(w->health().ready);
  Results results;
  EXPECT_TRUE(w->try_enqueue(create_payment(11), results.slot(0)));
  EXPECT_NE(results.at(0).find("stopped for good"), std::string::npos) << results.at(0);

  std::vector<fs::path> rescued;
  std::vector<fs::path> stale_wal;
  for (const auto& entry : fs::directory_iterator(db_->dir().path())) {
    const auto name = entry.path().filename().string();
    if (name.find("writer.db.rescued-") == 0 && name.find("-wal") == std::string::npos &&
        name.find("-shm") == std::string::npos && name.find("-journal") == std::string::npos) {
      rescued.push_back(entry.path());
    }
    if (name.find("writer.db-wal.stale-") == 0) stale_wal.push_back(entry.path());
  }
  ASSERT_EQ(rescued.size(), 1u);
  EXPECT_EQ(stale_wal.size(), 1u);
  EXPECT_FALSE(fs::exists(path + "-wal"));
  const test_support::SqliteReader copy(rescued.front());
  EXPECT_EQ(copy.scalar_int("SELECT COUNT(*) FROM payments"), 1);  // the acknowledged one only
  EXPECT_EQ(copy.scalar_int("SELECT balance FROM accounts WHERE account_id = 1"), 7);
  const auto check = copy.query("PRAGMA quick_check");
  ASSERT_EQ(check.size(), 1u);
  EXPECT_EQ(check.front().text(0), "ok");
}

TEST_P(AppWriter, QueueCapacityRefusesBoundedWorkButNotFollowUps) {
  auto w = make_writer(WriterOptions{.queue_capacity = 2, .batch_max = 1024});
  Results results;
  std::atomic<int> ran{0};
  const auto counting = [&ran](store::Store&, TimeMs, Touched&) { ++ran; };
  EXPECT_TRUE(w->try_enqueue(counting, results.slot(0)));
  EXPECT_TRUE(w->try_enqueue(counting, results.slot(1)));
  EXPECT_FALSE(w->try_enqueue(counting, results.slot(2)));  // full
  EXPECT_FALSE(w->try_enqueue(counting, results.slot(3), Writer::Admission::bounded));
  EXPECT_TRUE(w->try_enqueue(counting, results.slot(4), Writer::Admission::always));
  EXPECT_EQ(w->stats().queue_depth.load(), 3u);
  w->start();
  w->stop();
  EXPECT_EQ(ran.load(), 3);
  EXPECT_EQ(results.at(0), "ok");
  EXPECT_EQ(results.at(2), "pending");  // refused work is never run nor completed
  EXPECT_EQ(results.at(4), "ok");
  // After stop nothing is taken any more.
  EXPECT_FALSE(w->try_enqueue(counting, results.slot(5), Writer::Admission::always));
}

TEST_P(AppWriter, AccountsArePublishedOnlyAfterTheCommit) {
  auto w = make_writer({});
  const auto version_before = view_.snapshot()->version;
  std::uint64_t version_inside = 0;
  Cents balance_inside = -1;
  Results results;
  ASSERT_TRUE(w->try_enqueue(
      [&, job = create_payment(70)](store::Store& s, TimeMs now, Touched& t) {
        job(s, now, t);
        // The change is written but not committed: readers must not see it yet.
        version_inside = view_.snapshot()->version;
        balance_inside = view_.find(1)->balance;
      },
      results.slot(0)));
  // A job that touches no account does not publish.
  ASSERT_TRUE(w->try_enqueue([](store::Store& s, TimeMs, Touched&) { s.ping(); }, results.slot(1)));
  w->start();
  w->stop();
  ASSERT_EQ(results.count("ok"), 2u);
  EXPECT_EQ(version_inside, version_before);
  EXPECT_EQ(balance_inside, 0);
  EXPECT_EQ(view_.snapshot()->version, version_before + 1);
  EXPECT_EQ(view_.find(1)->balance, 70);
}

TEST_P(AppWriter, WriterUsesTheInjectedClock) {
  auto w = make_writer({});
  clock_.set(kT0 + 123'456);
  std::vector<TimeMs> seen;
  Results results;
  ASSERT_TRUE(w->try_enqueue([&seen](store::Store&, TimeMs now, Touched&) { seen.push_back(now); },
                             results.slot(0)));
  w->start();
  w->stop();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], kT0 + 123'456);
}

Account account_with_balance(AccountId id, Cents balance) {
  return Account{.account_id = id,
                 .created_at = kT0,
                 .status = core::AccountStatus::current,
                 .balance = balance,
                 .settled_balance = 0,
                 .negative_since = std::nullopt};
}

TEST(AccountsView, PublishReplacesOnlyTheChangedAccounts) {
  AccountsView view;
  EXPECT_EQ(view.snapshot()->version, 0u);
  view.publish({});
  EXPECT_EQ(view.snapshot()->version, 0u);
  view.publish({account_with_balance(1, 5), account_with_balance(2, 7)});
  const auto old = view.snapshot();
  view.publish({account_with_balance(2, 9)});
  EXPECT_EQ(view.snapshot()->version, 2u);
  EXPECT_EQ(view.find(1)->balance, 5);
  EXPECT_EQ(view.find(2)->balance, 9);
  EXPECT_FALSE(view.find(3).has_value());
  // An older snapshot is immutable.
  EXPECT_EQ(old->version, 1u);
  EXPECT_EQ(old->accounts.find(2)->balance, 7);
}

// A reader of the store that may have seen a commit waits until the view has it (the writer
// marks COMMIT's start and settles after publishing): SnapshotLagTest covers the service.
TEST(AccountsView, WhenSettledWaitsForEveryCommitStartedBeforeIt) {
  AccountsView view;
  int calls = 0;
  EXPECT_TRUE(view.settled());
  view.when_settled([&] { ++calls; });
  EXPECT_EQ(calls, 1) << "no COMMIT under way: called at once";

  view.commit_started();
  EXPECT_FALSE(view.settled());
  Cents seen = -1;
  view.when_settled([&] {
    ++calls;
    seen = view.find(1)->balance;
  });
  EXPECT_EQ(calls, 1) << "a COMMIT is under way";
  view.publish({account_with_balance(1, 40)});
  EXPECT_EQ(calls, 1) << "published, but not yet settled";
  view.commits_settled();
  EXPECT_TRUE(view.settled());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(seen, 40) << "called after the publish";

  view.commits_settled();  // nothing under way: harmless, calls nothing again
  EXPECT_EQ(calls, 2);
  view.when_settled([&] { ++calls; });
  EXPECT_EQ(calls, 3) << "every started COMMIT settled: called at once";

  // A failed COMMIT settles without a publish.
  view.commit_started();
  view.when_settled([&] { ++calls; });
  EXPECT_EQ(calls, 3);
  view.commits_settled();
  EXPECT_EQ(calls, 4);
}

// Writer::run from a coroutine, as the HTTP handlers use it. Ops are named before co_await
// (GCC 12 caveat in writer.hpp).
struct RunResults {
  Outcome<PaymentCreated> created;
  std::string thrown;
  bool overloaded = false;
};

boost::asio::awaitable<void> create_then_fail(Writer& w, Ledger& ledger, RunResults& out) {
  auto create_op = [&ledger](store::Store& s, TimeMs now, Touched& t) {
    return ledger.create_payment(s,
                                 NewPayment{.account_id = 1,
                                            .amount_cents = 250,
                                            .merchant_name = "coro",
                                            .idempotency_key = std::nullopt,
                                            .request_hash = "h"},
                                 now, t, no_replay);
  };
  out.created = co_await w.run<Outcome<PaymentCreated>>(std::move(create_op));
  auto failing_op = [](store::Store&, TimeMs, Touched&) -> int {
    throw std::runtime_error("op failed");
  };
  try {
    const int never = co_await w.run<int>(std::move(failing_op));
    out.thrown = "no exception, got " + std::to_string(never);
  } catch (const std::runtime_error& e) {
    out.thrown = e.what();
  }
}

TEST_P(AppWriter, RunFromACoroutineReturnsTheResultAndTheError) {
  auto w = make_writer({});
  w->start();
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  RunResults results;
  std::exception_ptr failure;
  auto flow = create_then_fail(*w, ledger_, results);
  boost::asio::co_spawn(io, std::move(flow), [&](std::exception_ptr e) {
    failure = e;
    guard.reset();
  });
  io.run();
  w->stop();
  ASSERT_FALSE(failure);
  ASSERT_TRUE(std::holds_alternative<PaymentCreated>(results.created));
  const Payment& p = std::get<PaymentCreated>(results.created).payment;
  EXPECT_EQ(p.amount_cents, 250);
  EXPECT_EQ(p.created_at, kT0);
  EXPECT_EQ(results.thrown, "op failed");
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM payments"), 1);
  EXPECT_EQ(view_.find(1)->balance, 250);
}

boost::asio::awaitable<void> run_when_full(Writer& w, RunResults& out) {
  auto op = [](store::Store&, TimeMs, Touched&) { return 1; };
  try {
    co_await w.run<int>(std::move(op));
  } catch (const Overloaded&) {
    out.overloaded = true;
  }
}

TEST_P(AppWriter, RunThrowsOverloadedWhenTheQueueIsFull) {
  auto w = make_writer(WriterOptions{.queue_capacity = 1, .batch_max = 1024});
  Results results;
  ASSERT_TRUE(w->try_enqueue([](store::Store&, TimeMs, Touched&) {}, results.slot(0)));
  boost::asio::io_context io;
  RunResults out;
  std::exception_ptr failure;
  auto flow = run_when_full(*w, out);
  boost::asio::co_spawn(io, std::move(flow), [&](std::exception_ptr e) { failure = e; });
  io.run();
  ASSERT_FALSE(failure);
  EXPECT_TRUE(out.overloaded);
}

INSTANTIATE_TEST_SUITE_P(Stores, AppWriter, test_support::both_stores(),
                         test_support::store_kind_name);

}  // namespace
}  // namespace ps::app
