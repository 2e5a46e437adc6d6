// `payment_service verify`, the real binary, on the database the service wrote (SQLite, and
// PostgreSQL in the "pg." run): clean after a realistic sequence (amount and status callbacks, a
// late callback, a rejection, an account delinquent and current again), also while the service
// still runs; exit 1 naming the first difference after a row is changed behind its back; exit 3
// when the database cannot be opened, exit 2 for invalid settings.
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "service_fixture.hpp"
#include "test_support/db_reader.hpp"

namespace integration {
namespace {

using namespace std::chrono_literals;

struct Outcome {
  int exit_code = -1;  // -1: ended on a signal
  std::string output;  // stdout and stderr
};

// `payment_service ARGS`, with every variable the service reads unset but `env`.
Outcome run_service_binary(const std::vector<std::string>& args,
                           const std::vector<std::pair<std::string, std::string>>& env = {}) {
  auto run = test_support::run_to_completion(PAYMENT_SERVICE_BIN, args, env);
  return Outcome{run.exit.exited ? run.exit.code : -1, std::move(run.output)};
}

// Settle window of one second and no grace, so the test can send a late callback.
class VerifyTest : public ServiceTest {
 protected:
  ServiceConfig config() const override {
    return {{"--time-to-settle-seconds", "1", "--settle-grace-seconds", "0"}, {}, {}};
  }

  Outcome verify() { return run_service_binary({"verify", "--database-url", database_url()}); }

  std::string recalculate(std::int64_t window_seconds) {
    const auto response =
        client().request("PATCH", "/accounts/recalculate?time_to_delinquency_seconds=" +
                                      std::to_string(window_seconds));
    EXPECT_TRUE(HasStatus(response, 200));
    return str_field(get_account(1), "status");
  }

  // The sequence of SPEC 3 and 4 through the HTTP API; returns the payment a callback changed.
  std::int64_t live_a_little() {
    const auto changed = create_payment_id(-2500);
    apply_callback(changed, -2600, "pending");     // amount changed
    apply_callback(changed, -3000, "posted");      // settled, negative
    apply_callback(changed, -3000, std::nullopt);  // no status: keeps `posted`

    provider().enqueue(FakeProvider::reply(422, R"({"detail":"refused"})"));
    EXPECT_TRUE(HasStatus(post_payment(1000), 502));  // rejected

    const auto other = open_account();
    const auto elsewhere = create_payment_id(700, other);
    apply_callback(elsewhere, 650, "posted");

    EXPECT_EQ(recalculate(0), "delinquent");
    const auto repayment = create_payment_id(5000);
    apply_callback(repayment, 5000, "posted");
    EXPECT_EQ(recalculate(0), "current");

    // Past the one-second window: recorded, changes nothing.
    const auto deadline = parse_timestamp_ms(str_field(get_payment(changed), "settle_deadline"));
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::max<std::int64_t>(0, deadline - now_ms() + 200)));
    EXPECT_TRUE(IsProblem(post_callback(changed, 1, "returned"), 409, "callback-too-late"));
    return changed;
  }
};

TEST_F(VerifyTest, AfterTheServiceRanTheHistoryReproducesTheTables) {
  live_a_little();

  const Outcome running = verify();  // while the service runs: one snapshot
  EXPECT_EQ(running.exit_code, 0) << running.output;

  stop_service();
  const Outcome stopped = verify();
  EXPECT_EQ(stopped.exit_code, 0) << stopped.output;
  const auto events = db_count("events");
  EXPECT_NE(stopped.output.find("verify: OK: " + std::to_string(events) +
                                " events replayed reproduce the 2 accounts and 4 payments stored"),
            std::string::npos)
      << stopped.output;
  EXPECT_EQ(db_count("events WHERE kind = 'callback_late'"), 1);
  EXPECT_EQ(db_count("events WHERE kind = 'provider_rejected'"), 1);
  EXPECT_EQ(db_count("events WHERE kind = 'account_status'"), 2);
}

TEST_F(VerifyTest, ARowChangedBehindTheServicesBackIsTheFirstDifferenceAndExitsOne) {
  const auto changed = live_a_little();
  stop_service();
  ASSERT_EQ(verify().exit_code, 0);

  test_support::write_sql(database_url(),
                          "UPDATE payments SET status = 'pending' WHERE money_movement_id = " +
                              std::to_string(changed));
  test_support::write_sql(database_url(),
                          "UPDATE accounts SET balance = balance + 1 WHERE account_id = 2");
  const Outcome run = verify();
  EXPECT_EQ(run.exit_code, 1) << run.output;
  // Accounts are compared before payments.
  EXPECT_NE(run.output.find("verify: DIFFERENCE accounts 2 balance: the history says 650, "
                            "stored 651"),
            std::string::npos)
      << run.output;

  test_support::write_sql(database_url(),
                          "UPDATE accounts SET balance = balance - 1 WHERE account_id = 2");
  const Outcome payment = verify();
  EXPECT_EQ(payment.exit_code, 1) << payment.output;
  EXPECT_NE(payment.output.find("verify: DIFFERENCE payments " + std::to_string(changed) +
                                " status: the history says 'posted', stored 'pending'"),
            std::string::npos)
      << payment.output;
  skip_invariant_check_ = true;  // planted
}

TEST_F(VerifyTest, ADeletedEventIsFoundAndExitsOne) {
  live_a_little();
  stop_service();
  test_support::write_sql(database_url(), "DELETE FROM events WHERE kind = 'provider_rejected'");
  const Outcome run = verify();
  EXPECT_EQ(run.exit_code, 1) << run.output;
  // The rejected payment stays in account 1's balance in the replay: the next event of
  // account 1 records another balance.
  EXPECT_NE(run.output.find("balance_after: expected "), std::string::npos) << run.output;
  skip_invariant_check_ = true;  // planted
}

TEST(VerifyCommandTest, ADatabaseThatCannotBeOpenedExitsThreeAndSaysWhy) {
  const test_support::TempDir dir;
  const auto missing = dir / "missing.sqlite";
  const Outcome run =
      run_service_binary({"verify", "--database-url", "sqlite:" + missing.string()});
  EXPECT_EQ(run.exit_code, 3) << run.output;
  EXPECT_NE(run.output.find("cannot read the database sqlite:" + missing.string()),
            std::string::npos)
      << run.output;
  EXPECT_FALSE(std::filesystem::exists(missing)) << "verify created the file";

  // A server that is not there; the password is not shown.
  const Outcome postgres = run_service_binary(
      {"verify", "--database-url", "postgresql://u:s3cret@127.0.0.1:1/payments"});
  EXPECT_EQ(postgres.exit_code, 3) << postgres.output;
  EXPECT_NE(postgres.output.find("cannot read the database postgresql://u:***@127.0.0.1:1"),
            std::string::npos)
      << postgres.output;
  EXPECT_EQ(postgres.output.find("s3cret"), std::string::npos) << postgres.output;
}

TEST(VerifyCommandTest, InvalidSettingsExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {"verify", "--database-url", "mysql://host/db"},
      {"verify", "unexpected"},
      {"verify", "--no-such-flag"}};
  for (const auto& args : cases) {
    const Outcome run = run_service_binary(args);
    EXPECT_EQ(run.exit_code, 2) << args[1] << "\n" << run.output;
  }
}

TEST(VerifyCommandTest, NeedsOnlyTheDatabaseUrlAlsoFromTheEnvironment) {
  // No PROVIDER_URL, which the service requires: verify goes as far as opening the database.
  const test_support::TempDir dir;
  const std::string url = "sqlite:" + (dir / "absent.sqlite").string();
  const Outcome run = run_service_binary({"verify"}, {{"DATABASE_URL", url}});
  EXPECT_EQ(run.exit_code, 3) << run.output;
  EXPECT_NE(run.output.find("cannot read the database " + url), std::string::npos) << run.output;
}

}  // namespace
}  // namespace integration
