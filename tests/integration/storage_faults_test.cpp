// The database file under a running service (issue 8): deleted or replaced (defect 10),
// corrupted (12), the disk full (13), and the WAL's size on disk (13). What must hold: nothing is
// acknowledged that a restart would not find, /readyz tells the truth while writes fail, and a
// fault that heals by itself heals the service without a restart.
#include <atomic>
#include <fstream>
#include <thread>

#include "service_fixture.hpp"

namespace integration {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Lines of a text-format log at warn level or above ("<time> error <message>").
std::size_t warning_lines(std::string_view log) {
  std::size_t count = 0;
  std::size_t start = 0;
  while (start < log.size()) {
    auto end = log.find('\n', start);
    if (end == std::string_view::npos) {
      end = log.size();
    }
    const auto line = log.substr(start, end - start);
    start = end + 1;
    for (const char* level : {" warning ", " error ", " critical "}) {
      if (line.find(level) != std::string_view::npos) {
        ++count;
        break;
      }
    }
  }
  return count;
}

// The copies the service writes next to the database when its file was deleted or replaced.
std::vector<fs::path> rescued_copies(const fs::path& db) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(db.parent_path())) {
    const auto name = entry.path().filename().string();
    if (name.rfind(db.filename().string() + ".rescued-", 0) == 0) {
      found.push_back(entry.path());
    }
  }
  return found;
}

class StorageFaultsTest : public ServiceTest {
 protected:
  void SetUp() override {
    SQLITE_FILE_TEST();
    ServiceTest::SetUp();
  }
};

// Defect 10 (a): `rm` of the database and its WAL under the running service. Before the fix,
// 50 of 50 payments answered 201 went into the unlinked file and were gone after a restart.
TEST_F(StorageFaultsTest, DeletedDatabaseFileStopsWritesAndKeepsEveryAcknowledgedPayment) {
  std::vector<std::int64_t> acknowledged;
  for (int i = 0; i < 10; ++i) {
    acknowledged.push_back(create_payment_id(100 + i));
  }
  fs::remove(db_path());
  fs::remove(db_path().string() + "-wal");

  ASSERT_TRUE(IsProblem(post_payment(555), 503))
      << "a payment was acknowledged into a deleted file";
  EXPECT_TRUE(IsProblem(client().get("/readyz"), 503));
  // The writer stopped for good: every later write is refused at once, not after a timeout.
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    const auto refused = post_payment(556 + i);
    EXPECT_TRUE(IsProblem(refused, 503));
  }
  EXPECT_TRUE(IsProblem(client().request("POST", "/accounts"), 503));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_TRUE(IsProblem(client().get("/readyz"), 503));
  EXPECT_TRUE(HasStatus(client().get("/healthz"), 200));  // alive: an operator must look
  stop_service();

  const auto log = service().log();
  EXPECT_NE(log.find(" critical "), std::string::npos) << "no critical log line";
  EXPECT_NE(log.find(db_path().string()), std::string::npos) << "the log does not name the file";
  const auto copies = rescued_copies(db_path());
  ASSERT_EQ(copies.size(), 1U) << "no rescued copy of the database next to it";
  EXPECT_NE(log.find(copies.front().string()), std::string::npos)
      << "the log does not say where the rescued copy is";

  // The operator's recovery, as the log explains it: put the rescued copy in place, restart.
  EXPECT_FALSE(fs::exists(db_path())) << "nothing may re-create the deleted path by itself";
  fs::rename(copies.front(), db_path());
  start_service();
  for (const auto id : acknowledged) {
    EXPECT_TRUE(HasStatus(client().get("/payments/" + std::to_string(id)), 200))
        << "acknowledged payment " << id << " lost";
  }
  EXPECT_EQ(db_count("payments"), 10) << "a payment answered 503 was kept";
  EXPECT_EQ(balances(1).first, 1045);
  EXPECT_TRUE(HasStatus(client().get("/readyz"), 200));
  create_payment_id(1);
}

// Defect 10 (b): a backup moved over the path. Before the fix, 40 of 60 acknowledged payments
// were lost and /readyz said 200 throughout.
TEST_F(StorageFaultsTest, BackupMovedOverTheDatabaseStopsWritesAndKeepsTheNewerPayments) {
  std::vector<std::int64_t> acknowledged;
  for (int i = 0; i < 4; ++i) {
    acknowledged.push_back(create_payment_id(10 + i));
  }
  const auto backup = db_path().parent_path() / "backup.sqlite";
  test_support::SqliteReader(db_path()).exec("VACUUM INTO '" + backup.string() + "'");
  for (int i = 0; i < 6; ++i) {
    acknowledged.push_back(create_payment_id(20 + i));
  }
  fs::rename(backup, db_path());

  ASSERT_TRUE(IsProblem(post_payment(777), 503))
      << "a payment was acknowledged into a replaced file";
  EXPECT_TRUE(IsProblem(client().get("/readyz"), 503));
  EXPECT_TRUE(IsProblem(post_payment(778), 503));
  stop_service();

  const auto log = service().log();
  EXPECT_NE(log.find(" critical "), std::string::npos);
  const auto copies = rescued_copies(db_path());
  ASSERT_EQ(copies.size(), 1U);
  {
    // Every acknowledged payment, also those after the backup, is in the rescued copy.
    const test_support::SqliteReader rescued(copies.front());
    for (const auto id : acknowledged) {
      EXPECT_EQ(
          rescued.scalar_int("SELECT COUNT(*) FROM payments WHERE money_movement_id = ?1", {id}), 1)
          << "acknowledged payment " << id << " is not in the rescued copy";
    }
    EXPECT_EQ(rescued.scalar_int("SELECT COUNT(*) FROM payments"), 10);
    EXPECT_TRUE(test_support::check_ledger_invariants(copies.front()).empty());
  }
  // The file the operator put in place is left alone, and the old WAL, which SQLite would replay
  // onto it at the next start, was moved away: the service starts on the backup as it is.
  EXPECT_NE(log.find("Moved this process's write-ahead log"), std::string::npos);
  EXPECT_FALSE(fs::exists(db_path().string() + "-wal"));
  start_service();
  EXPECT_EQ(db_count("payments"), 4);
  EXPECT_TRUE(HasStatus(client().get("/readyz"), 200));
}

// Overwrites the first leaf page (in b-tree order) of `table` with garbage: a page the service's
// start-up never reads (it reads the last page of each table), as damage on disk would be.
void corrupt_first_leaf(const fs::path& db, const std::string& table) {
  std::int64_t page = 0;
  std::int64_t page_size = 0;
  {
    const test_support::SqliteReader reader(db);
    page_size = reader.scalar_int("PRAGMA page_size");
    const auto leaves = reader.query(
        "SELECT pageno FROM dbstat WHERE name = ?1 AND pagetype = 'leaf' ORDER BY path", {table});
    ASSERT_GE(leaves.size(), 2U) << table << " needs more than one leaf page for this test";
    page = leaves.front().integer(0);
  }
  std::fstream file(db, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(file.is_open());
  file.seekp((page - 1) * page_size);
  const std::string garbage(static_cast<std::size_t>(page_size), '\xA5');
  file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  ASSERT_TRUE(file.good());
}

class CorruptDatabaseTest : public ServiceTest {
 protected:
  void SetUp() override {
    SQLITE_FILE_TEST();
    ServiceTest::SetUp();
  }
  // Payments and their events spread over several pages; returns their ids, oldest first.
  std::vector<std::int64_t> fill_and_corrupt() {
    std::vector<std::int64_t> ids;
    for (int i = 0; i < 150; ++i) {
      ids.push_back(create_payment_id(1000 + i));
    }
    const auto exit = stop_service();
    EXPECT_TRUE(exit.exited && exit.code == 0);
    // A clean stop checkpoints the WAL into the database and removes it: the pages are on disk.
    EXPECT_FALSE(fs::exists(db_path().string() + "-wal"));
    corrupt_first_leaf(db_path(), "payments");
    corrupt_first_leaf(db_path(), "events");
    return ids;
  }
  // The next start_service() runs with DATABASE_INTEGRITY_CHECK=mode (empty: not set).
  void integrity_check(const std::string& mode) {
    service_config().extra_env.clear();
    if (!mode.empty()) {
      service_config().extra_env.emplace_back("DATABASE_INTEGRITY_CHECK", mode);
    }
  }
};

// Defect 12: before the fix the service started on these pages and said ready.
TEST_F(CorruptDatabaseTest, CorruptPaymentAndEventPagesStopTheStart) {
  fill_and_corrupt();
  skip_invariant_check_ = true;  // the database is damaged on purpose
  for (const std::string mode : {"", "quick", "full"}) {
    const std::string label = mode.empty() ? "default" : mode;
    const auto log_before = service().log().size();
    integrity_check(mode);
    std::string why;
    try {
      start_service();
    } catch (const std::runtime_error& e) {
      why = e.what();
    }
    ASSERT_FALSE(why.empty()) << label << ": the service started on a corrupt database";
    const auto& exit = service().last_exit();
    EXPECT_TRUE(exit.exited && exit.code != 0) << label << ": code " << exit.code;
    const auto log = service().log().substr(log_before);
    EXPECT_NE(log.find("integrity check"), std::string::npos) << label << ": " << log;
    EXPECT_NE(log.find(mode == "full" ? "integrity_check" : "quick_check"), std::string::npos)
        << label << ": the log does not name the check: " << log;
  }
}

// Defect 12, readiness: with the check turned off the service starts on the damage; the first
// write that meets it stops the writer, and /readyz says so instead of 200.
TEST_F(CorruptDatabaseTest, WithTheCheckOffTheFirstWriteOnTheDamageMakesTheServiceUnready) {
  const auto ids = fill_and_corrupt();
  skip_invariant_check_ = true;
  integrity_check("off");
  start_service();
  ASSERT_TRUE(HasStatus(client().get("/readyz"), 200));
  // The oldest payment's row is on the damaged page.
  EXPECT_TRUE(IsProblem(post_callback(ids.front(), 1, "posted"), 503));
  EXPECT_TRUE(IsProblem(client().get("/readyz"), 503));
  // Nothing more is acknowledged on top of the damage, not even a write that would succeed.
  EXPECT_TRUE(IsProblem(post_payment(5), 503));
  EXPECT_TRUE(IsProblem(client().get("/readyz"), 503));
  EXPECT_NE(service().log().find(" critical "), std::string::npos);
}

// Defect 13: the disk fills up (tools/disk_full makes writes to the database files fail with
// ENOSPC while a flag file exists), then space comes back.
class DiskFullTest : public ServiceTest {
 protected:
  void SetUp() override {
    SQLITE_FILE_TEST();
    ServiceTest::SetUp();
  }
  fs::path flag() const { return db_path().parent_path() / "disk-full"; }
  ServiceConfig config() const override {
    auto env = preload_environment(DISK_FULL_SHIM);
    env.emplace_back("DISK_FULL_FLAG_FILE", flag().string());
    env.emplace_back("DISK_FULL_PATH_PREFIX", db_path().string());
    return {{}, env, {}};
  }
};

TEST_F(DiskFullTest, WritesAnswer503ReadinessFailsTheLogStaysQuietAndSpaceHealsIt) {
  std::vector<std::int64_t> acknowledged;
  for (int i = 0; i < 5; ++i) {
    acknowledged.push_back(create_payment_id(100 + i));
  }
  const auto log_before = service().log().size();
  std::ofstream(flag()).put('x');

  // Two writers hammer the full disk for two seconds.
  std::atomic<int> refused{0};
  std::atomic<int> wrong{0};
  std::atomic<int> without_retry_after{0};
  const auto full_since = std::chrono::steady_clock::now();
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([&, t] {
      HttpClient http(port());
      while (std::chrono::steady_clock::now() - full_since < 2s) {
        const auto r = http.post_json("/payments", payment_body(7 + t, "Full"));
        if (r.status == 503) {
          ++refused;
          without_retry_after += r.header("Retry-After") ? 0 : 1;
        } else {
          ++wrong;
        }
      }
    });
  }
  for (auto& w : writers) {
    w.join();
  }
  const auto full_for = std::chrono::steady_clock::now() - full_since;
  EXPECT_EQ(wrong.load(), 0) << "a write succeeded on a full disk";
  EXPECT_GT(refused.load(), 20);
  EXPECT_EQ(without_retry_after.load(), 0);
  const auto ready = client().get("/readyz");
  EXPECT_TRUE(IsProblem(ready, 503)) << "/readyz while every write fails";
  const auto log = service().log().substr(log_before);
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(full_for).count() + 1;
  // "A few lines per second": before the fix, one or more per refused request.
  EXPECT_LE(warning_lines(log), static_cast<std::size_t>(5 * seconds + 5))
      << refused.load() << " refused requests logged:\n"
      << log.substr(0, 3000);

  fs::remove(flag());
  // Space is back: readiness returns by itself, without a restart and before any new write.
  EXPECT_TRUE(eventually([&] { return client().get("/readyz").status == 200; }, 5s))
      << client().get("/readyz").describe();
  acknowledged.push_back(create_payment_id(200));
  stop_service();
  start_service();
  for (const auto id : acknowledged) {
    EXPECT_TRUE(HasStatus(client().get("/payments/" + std::to_string(id)), 200))
        << "acknowledged payment " << id << " lost";
  }
  EXPECT_EQ(db_count("payments"), static_cast<std::int64_t>(acknowledged.size()));
}

// Defect 13: the WAL is checkpointed at DATABASE_WAL_CHECKPOINT_PAGES, so a small volume is not
// filled by the WAL alone (at the default, 16,384 pages, it grows to 64 MiB).
class SmallWalTest : public ServiceTest {
 protected:
  void SetUp() override {
    SQLITE_FILE_TEST();
    ServiceTest::SetUp();
  }
  static constexpr std::int64_t kPages = 64;
  ServiceConfig config() const override {
    return {{}, {{"DATABASE_WAL_CHECKPOINT_PAGES", std::to_string(kPages)}}, {}};
  }
};

TEST_F(SmallWalTest, TheWalStaysNearItsCheckpointThreshold) {
  const auto page_size = test_support::SqliteReader(db_path()).scalar_int("PRAGMA page_size");
  for (int i = 0; i < 300; ++i) {
    create_payment_id(1 + i);
  }
  const auto wal = fs::file_size(db_path().string() + "-wal");
  constexpr std::int64_t kFrameHeader = 24;
  constexpr std::int64_t kWalHeader = 32;
  // The threshold, plus the frames of the commit that crossed it.
  const auto bound = (2 * kPages) * (page_size + kFrameHeader) + kWalHeader;
  EXPECT_LE(static_cast<std::int64_t>(wal), bound) << "WAL of " << wal << " bytes";
}

TEST(StorageSettingsTest, InvalidStorageSettingsStopTheStart) {
  const test_support::TempDir dir;
  struct Case {
    std::string variable;
    std::string flag;
    std::string value;
  };
  for (const auto& [variable, flag, value] : std::vector<Case>{
           {"DATABASE_WAL_CHECKPOINT_PAGES", "--database-wal-checkpoint-pages", "0"},
           {"DATABASE_WAL_CHECKPOINT_PAGES", "--database-wal-checkpoint-pages", "-5"},
           {"DATABASE_WAL_CHECKPOINT_PAGES", "--database-wal-checkpoint-pages", "many"},
           {"DATABASE_WAL_CHECKPOINT_PAGES", "--database-wal-checkpoint-pages", "100000000"},
           {"DATABASE_INTEGRITY_CHECK", "--database-integrity-check", "sometimes"}}) {
    const auto port = test_support::free_port();
    test_support::ServiceOptions options;
    options.binary = PAYMENT_SERVICE_BIN;
    options.args = {"--port",         std::to_string(port),
                    "--bind",         "127.0.0.1",
                    "--database-url", "sqlite:" + (dir / "db.sqlite").string(),
                    "--provider-url", "http://127.0.0.1:9"};
    options.env = {{variable, value}};
    options.unset_env = test_support::service_environment_variables();
    options.log_path = dir / "service.log";
    options.port = port;
    options.start_timeout = 5s;
    test_support::ServiceProcess process(std::move(options));
    bool started = true;
    try {
      process.start();
    } catch (const std::runtime_error&) {
      started = false;
    }
    EXPECT_FALSE(started) << variable << "=" << value << " was accepted";
    EXPECT_TRUE(process.last_exit().exited && process.last_exit().code == 2)
        << variable << "=" << value;
    const auto log = process.log();
    EXPECT_TRUE(log.find(variable) != std::string::npos || log.find(flag) != std::string::npos)
        << "the message does not name " << variable << ":\n"
        << process.log_tail(500);
    process.stop();
  }
}

}  // namespace
}  // namespace integration
