// The database goes away under the service and comes back (SPEC 8, issue 9): PostgreSQL stopped
// the way a crash stops it (pg_ctl stop -m immediate), then started again. Writes during the
// outage answer 503 promptly and change nothing, /readyz is 503 and /healthz 200, and within
// 5 s of the database's return everything works again without restarting the service. Runs on a
// private cluster of its own (scripts/pg-test-cluster), since it stops it.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "service_fixture.hpp"

namespace integration {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Runs scripts/pg-test-cluster ACTION DIR; returns its standard output. The cluster stops by
// itself once this process is gone, should it be killed before TearDown.
std::string cluster(const std::string& action, const std::filesystem::path& dir) {
  const std::string command = "PG_TEST_CLUSTER_OWNER=" + std::to_string(::getpid()) + " " +
                              PG_TEST_CLUSTER_SCRIPT + " " + action + " " + dir.string() + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen " + command);
  std::string out;
  std::array<char, 256> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) out += buffer.data();
  if (::pclose(pipe) != 0) throw std::runtime_error(command + " failed: " + out);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

class DatabaseOutageTest : public ServiceTest {
 protected:
  void SetUp() override {
    // Its own cluster either way: the pg. registration of the suite would only run it twice.
    if (on_postgres()) GTEST_SKIP() << "runs once, in the registration without the pg. prefix";
    PS_NEED_POSTGRES();  // the cluster's binaries and a runnable postgres user
    const std::string admin = cluster("start", cluster_dir_.path());
    test_support::postgres_exec(admin, "CREATE DATABASE outage");
    database_url_override_ = test_support::with_database(admin, "outage");
    ServiceTest::SetUp();
  }
  void TearDown() override {
    ServiceTest::TearDown();
    try {
      cluster("stop", cluster_dir_.path());
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
  }

  test_support::TempDir cluster_dir_{"ps_pg_outage"};
};

TEST_F(DatabaseOutageTest, WritesAnswer503PromptlyAndTheServiceRecoversWhenItReturns) {
  std::vector<std::int64_t> acknowledged = {create_payment_id(-100)};
  cluster("crash", cluster_dir_.path());

  // Every write during the outage: 503 problem+json, promptly, never a hang.
  double longest = 0;
  for (int i = 0; i < 5; ++i) {
    const auto started = Clock::now();
    const auto response = post_payment(-200 - i);
    const double took = seconds_since(started);
    longest = std::max(longest, took);
    EXPECT_TRUE(IsProblem(response, 503)) << response.describe();
    EXPECT_LT(took, 5.0) << "a write during the outage waited " << took << " s";
  }
  std::cerr << "[ measured ] the slowest 503 during the outage took " << longest << " s\n";
  EXPECT_TRUE(IsProblem(client().request("POST", "/accounts"), 503));
  EXPECT_TRUE(eventually([&] { return client().get("/readyz").status == 503; }, 5s))
      << "/readyz must say the database is gone";
  EXPECT_TRUE(HasStatus(client().get("/healthz"), 200)) << "the process itself is fine";

  cluster("resume", cluster_dir_.path());
  const auto back = Clock::now();
  // Within 5 s of the database's return, writes and readiness work again, same process.
  std::optional<std::int64_t> after;
  EXPECT_TRUE(eventually(
      [&] {
        const auto response = post_payment(-300);
        if (response.status != 201) return false;
        after = int_field(response.object(), "money_movement_id");
        return true;
      },
      5s))
      << "writes did not work again within 5 s of the database's return";
  std::cerr << "[ measured ] writes work again " << seconds_since(back)
            << " s after the database returned\n";
  ASSERT_TRUE(after.has_value());
  acknowledged.push_back(*after);
  EXPECT_TRUE(eventually([&] { return client().get("/readyz").status == 200; }, 5s));
  EXPECT_TRUE(service_running()) << "the service must recover without a restart";

  // Nothing acknowledged lost, nothing refused applied: exactly the two acknowledged payments.
  EXPECT_EQ(db_count("payments"), 2);
  for (const auto id : acknowledged) {
    EXPECT_TRUE(HasStatus(client().get("/payments/" + std::to_string(id)), 200)) << id;
  }
  EXPECT_EQ(balances(1).first, -400);
}

}  // namespace
}  // namespace integration
