// bench/seed/seed_accounts, the benchmark's bulk path to many accounts, writes exactly what
// POST /accounts writes: the same accounts and events rows (times aside), a history that
// `payment_service verify` replays to the stored tables, and a database the service goes on
// with. On SQLite, and on PostgreSQL in the "pg." run.
#include <memory>
#include <string>
#include <vector>

#include "service_fixture.hpp"
#include "test_support/db_reader.hpp"

namespace integration {
namespace {

// Everything of the accounts and events tables but the times, in id order, one line per row.
std::string rows_without_times(const std::string& database_url) {
  const auto db = test_support::open_reader(database_url);
  std::string out;
  auto dump = [&](std::string_view sql) {
    for (const auto& row : db->query(sql)) {
      for (std::size_t i = 0; i < row.values.size(); ++i) {
        out += row.columns[i] + "=" + test_support::describe(row.values[i]) + " ";
      }
      out += "\n";
    }
  };
  dump(
      "SELECT account_id, status, balance, settled_balance, negative_since FROM accounts "
      "ORDER BY account_id");
  dump(
      "SELECT event_id, kind, account_id, money_movement_id, amount_cents, status, "
      "settle_deadline, balance_after, settled_balance_after, detail FROM events "
      "ORDER BY event_id");
  // Each account was created when its event says it was opened.
  dump(
      "SELECT COUNT(*) AS created_at_differs FROM accounts a JOIN events e "
      "ON e.account_id = a.account_id AND e.kind = 'account_opened' WHERE e.at <> a.created_at");
  dump("SELECT COUNT(*) AS payments FROM payments");
  dump("SELECT COUNT(*) AS idempotency_keys FROM idempotency_keys");
  return out;
}

struct Seeded {
  int exit_code = -1;
  std::string output;
};

Seeded seed_accounts(const std::string& database_url, int to_open, int per_transaction) {
  auto run = test_support::run_to_completion(
      SEED_ACCOUNTS_BIN, {"--database-url", database_url, "--open", std::to_string(to_open),
                          "--per-transaction", std::to_string(per_transaction)});
  return Seeded{run.exit.exited ? run.exit.code : -1, std::move(run.output)};
}

class SeedAccountsTest : public ServiceTest {
 protected:
  // A second, empty database next to the service's.
  std::string fresh_database_url() {
    if (on_postgres()) {
      other_ = std::make_unique<test_support::TestDatabase>();
      return other_->url();
    }
    return "sqlite:" + (db_path().parent_path() / "seeded.sqlite").string();
  }

 private:
  std::unique_ptr<test_support::TestDatabase> other_;
};

TEST_F(SeedAccountsTest, WritesTheRowsPostAccountsWrites) {
  for (std::int64_t id = 2; id <= 5; ++id) EXPECT_EQ(open_account(), id);
  stop_service();
  const std::string through_api = rows_without_times(database_url());

  const std::string url = fresh_database_url();
  // Account 1 as the service creates it, then two transactions: accounts 2-4, then 5.
  const auto seeded = seed_accounts(url, 4, 3);
  ASSERT_EQ(seeded.exit_code, 0) << seeded.output;
  EXPECT_NE(seeded.output.find(R"({"opened":4,"first_id":2,"last_id":5,"transactions":2,)"),
            std::string::npos)
      << seeded.output;
  EXPECT_EQ(rows_without_times(url), through_api);
  const auto verified = test_support::verify_history_with(PAYMENT_SERVICE_BIN, url);
  EXPECT_FALSE(verified.has_value()) << *verified;
  EXPECT_TRUE(test_support::check_ledger_invariants(url).empty());
}

TEST_F(SeedAccountsTest, TheServiceGoesOnWithASeededDatabase) {
  EXPECT_EQ(open_account(), 2);
  stop_service();
  // 998 more, in transactions of 400, 400 and 198: accounts 3 to 1000.
  const auto seeded = seed_accounts(database_url(), 998, 400);
  ASSERT_EQ(seeded.exit_code, 0) << seeded.output;
  EXPECT_NE(seeded.output.find(R"({"opened":998,"first_id":3,"last_id":1000,"transactions":3,)"),
            std::string::npos)
      << seeded.output;
  EXPECT_EQ(db_count("accounts"), 1000);
  start_service();
  EXPECT_TRUE(IsAccountShape(get_account(1000)));
  // The next id follows the seeded ones (on PostgreSQL: the sequence went on with them).
  EXPECT_EQ(open_account(), 1001);
  const auto id = create_payment_id(-700, 1000);
  apply_callback(id, -700, "posted");
  EXPECT_EQ(balances(1000), std::make_pair(std::int64_t{-700}, std::int64_t{-700}));
  // TearDown checks the invariants and `payment_service verify` on this database.
}

}  // namespace
}  // namespace integration
