// SPEC 2, time: a step of the machine's wall clock while the service runs neither shortens nor
// stretches a settle window or a delinquency window, time as the service uses it never goes
// backwards (also across a restart), and a step is logged.
//
// The wall clock is stepped with Debian's libfaketime, preloaded into the service only: the
// offset is read from a file the test rewrites (FAKETIME_NO_CACHE=1: on every call), and
// CLOCK_MONOTONIC is left alone (FAKETIME_DONT_FAKE_MONOTONIC=1), exactly as a real step (an
// operator's `date -s`, an NTP step) leaves it. Checked first with a small program: after the
// file changed from "+0" to "-3600", std::chrono::system_clock moved back 3600 s while
// std::chrono::steady_clock went on by 250 ms per 250 ms sleep.
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "service_fixture.hpp"

namespace integration {
namespace {

using namespace std::chrono_literals;

constexpr const char* kLibFaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
constexpr std::int64_t kHourMs = 3'600'000;

// Events in the order they were written never go back in time (the store's high-water mark
// relies on it: the newest row carries the largest `at`).
constexpr const char* kEventsGoingBack =
    "(SELECT at, LAG(at) OVER (ORDER BY event_id) AS previous FROM events) AS written "
    "WHERE at < previous";

class WallClockStepTest : public ServiceTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kLibFaketime))
        << kLibFaketime << " is missing: scripts/install-deps installs Debian's libfaketime";
    step_wall_clock("+0");
    ServiceTest::SetUp();
  }

  ServiceConfig config() const override {
    auto env = preload_environment(kLibFaketime);
    env.emplace_back("FAKETIME_TIMESTAMP_FILE", offset_file().string());
    env.emplace_back("FAKETIME_NO_CACHE", "1");
    env.emplace_back("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    return {{"--time-to-settle-seconds", std::to_string(settle_seconds()), "--settle-grace-seconds",
             "0"},
            env,
            {}};
  }
  virtual int settle_seconds() const { return 1; }

  // The service's wall clock becomes the real one plus `offset` ("-3600", "+3600": seconds).
  // Written to a new file and renamed over the old one, so the service never reads half a file.
  void step_wall_clock(const std::string& offset) {
    const auto next = offset_dir_ / "offset.next";
    {
      std::ofstream out(next, std::ios::trunc);
      out << offset << "\n";
      ASSERT_TRUE(out.good()) << "cannot write " << next;
    }
    std::filesystem::rename(next, offset_file());
  }
  std::filesystem::path offset_file() const { return offset_dir_ / "offset"; }

  static std::int64_t time_field(const json::object& payment, std::string_view key) {
    return parse_timestamp_ms(str_field(payment, key));
  }

  // Lines of the service log matching `pattern`.
  std::vector<std::string> log_lines(const std::string& pattern) {
    const std::regex re(pattern);
    std::vector<std::string> lines;
    std::istringstream log(service().log());
    for (std::string line; std::getline(log, line);) {
      if (std::regex_search(line, re)) lines.push_back(line);
    }
    return lines;
  }

 private:
  test_support::TempDir offset_dir_{"payment_service_faketime"};
};

// (a) A step back must not reopen a settle window that has closed, nor move timestamps back.
TEST_F(WallClockStepTest, StepBackKeepsLateCallbacksLateAndTimeMovingForward) {
  const auto first = create_payment(-5000);
  const auto first_id = int_field(first, "money_movement_id");
  const auto window = time_field(first, "settle_deadline") - time_field(first, "created_at");
  ASSERT_EQ(window, settle_seconds() * 1000) << to_json(first);
  const auto created = std::chrono::steady_clock::now();

  step_wall_clock("-3600");
  std::this_thread::sleep_until(created + std::chrono::milliseconds(window + 300));

  // The window elapsed (on any clock that does not step): still late, nothing changes.
  EXPECT_TRUE(IsProblem(post_callback(first_id, -4000, "posted"), 409, "callback-too-late"));
  EXPECT_EQ(balances(1), std::make_pair(std::int64_t{-5000}, std::int64_t{0}));

  // Payments and callbacks after the step carry times at or after the ones before it.
  const auto second = create_payment(700);
  const auto second_id = int_field(second, "money_movement_id");
  EXPECT_GT(second_id, first_id);
  EXPECT_GE(time_field(second, "created_at"), time_field(first, "created_at")) << to_json(second);
  const auto updated = apply_callback(second_id, 700, "posted");
  EXPECT_GE(time_field(updated, "updated_at"), time_field(second, "created_at"));
  EXPECT_EQ(db_count(kEventsGoingBack), 0);

  // (d) The step is logged once, with its size, however often the clock was read since.
  const auto steps = log_lines("wall clock stepped back by 3[56][0-9]{2}\\.[0-9]{3} s");
  EXPECT_EQ(steps.size(), 1U) << service().log_tail(4000);
}

class WallClockStepForwardTest : public WallClockStepTest {
 protected:
  int settle_seconds() const override { return 5; }
};

// (b) A step forward must not close a settle window early nor make time jump.
TEST_F(WallClockStepForwardTest, StepForwardKeepsOnTimeCallbacksOnTime) {
  const auto payment = create_payment(-2500);
  const auto id = int_field(payment, "money_movement_id");

  step_wall_clock("+3600");

  // Well inside the 5 s window by elapsed time.
  const auto response = post_callback(id, -2500, "posted");
  ASSERT_TRUE(HasStatus(response, 201));
  EXPECT_EQ(balances(1), std::make_pair(std::int64_t{-2500}, std::int64_t{-2500}));
  // The service time followed elapsed time, not the hour the wall clock jumped.
  const auto updated_at = time_field(response.object(), "updated_at");
  EXPECT_GE(updated_at, time_field(payment, "created_at"));
  EXPECT_LT(updated_at, time_field(payment, "created_at") + kHourMs / 2) << response.describe();
  EXPECT_EQ(db_count(kEventsGoingBack), 0);

  // (d) logged once, with its size.
  const auto steps = log_lines("wall clock stepped forward by 3[56][0-9]{2}\\.[0-9]{3} s");
  EXPECT_EQ(steps.size(), 1U) << service().log_tail(4000);
}

// The delinquency window is elapsed time too: a step forward does not make an account
// delinquent early, a step back does not keep it current for an hour longer.
TEST_F(WallClockStepForwardTest, StepForwardDoesNotMakeAnAccountDelinquentEarly) {
  const auto id = create_payment_id(-500);
  apply_callback(id, -500, "posted");  // negative from now on

  step_wall_clock("+3600");
  auto response =
      client().request("PATCH", "/accounts/recalculate?time_to_delinquency_seconds=600");
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(str_field(get_account(1), "status"), "current") << response.describe();
}

TEST_F(WallClockStepTest, StepBackDoesNotDelayDelinquency) {
  const auto id = create_payment_id(-500);
  apply_callback(id, -500, "posted");
  const auto negative = std::chrono::steady_clock::now();

  step_wall_clock("-3600");
  std::this_thread::sleep_until(negative + 1300ms);
  const auto response =
      client().request("PATCH", "/accounts/recalculate?time_to_delinquency_seconds=1");
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(str_field(get_account(1), "status"), "delinquent") << response.describe();
}

// (c) A restart with the wall clock an hour behind continues from the newest stored time.
// Issue 8 #14: Idempotency-Keys expire after IDEMPOTENCY_KEY_TTL_HOURS (default 24). A restart
// a day later (the wall clock 25 h ahead; service time re-anchors to it at start) finds the key
// swept and free for a new payment.
TEST_F(WallClockStepTest, IdempotencyKeysExpireAfterTheirTtl) {
  const Headers key = {{"Idempotency-Key", "day-old"}};
  const auto first = post_payment(120, "Shop", 1, key);
  ASSERT_TRUE(HasStatus(first, 201));
  const auto replay = post_payment(120, "Shop", 1, key);
  ASSERT_TRUE(HasStatus(replay, 201));
  EXPECT_TRUE(replay.header("Idempotent-Replayed").has_value());
  step_wall_clock("+90000");
  restart_service();
  EXPECT_TRUE(eventually([&] { return db_count("idempotency_keys") == 0; }))
      << "the sweep at start did not delete the expired key";
  const auto again = post_payment(120, "Shop", 1, key);
  ASSERT_TRUE(HasStatus(again, 201));
  EXPECT_FALSE(again.header("Idempotent-Replayed").has_value()) << "an expired key replayed";
  EXPECT_NE(int_field(again.object(), "money_movement_id"),
            int_field(first.object(), "money_movement_id"));
}

TEST_F(WallClockStepTest, RestartWithClockSteppedBackContinuesFromStoredTime) {
  create_payment(-100);
  const auto second = create_payment(-200);
  const auto second_id = int_field(second, "money_movement_id");
  const auto second_created = std::chrono::steady_clock::now();
  const auto restart_started = std::chrono::steady_clock::now();
  stop_service();

  step_wall_clock("-3600");
  start_service();
  // With the wall clock behind, service time continues from the newest stored time: the time
  // the service was down does not count (docs/reliability.md), so the window closes that much
  // later in real time (about a second under the sanitizer build).
  const auto downtime = std::chrono::steady_clock::now() - restart_started;

  const auto third = create_payment(-300);
  EXPECT_GT(int_field(third, "money_movement_id"), second_id);
  EXPECT_GE(time_field(third, "created_at"), time_field(second, "created_at")) << to_json(third);
  EXPECT_LT(time_field(third, "created_at"), time_field(second, "created_at") + kHourMs / 2);
  EXPECT_EQ(db_count(kEventsGoingBack), 0);

  // The window of a payment made before the restart still closes on time.
  std::this_thread::sleep_until(second_created + downtime +
                                std::chrono::milliseconds(settle_seconds() * 1000) + 300ms);
  EXPECT_TRUE(IsProblem(post_callback(second_id, -200, "posted"), 409, "callback-too-late"));

  const auto logged = log_lines("wall clock is 3[56][0-9]{2}\\.[0-9]{3} s behind");
  EXPECT_EQ(logged.size(), 1U) << service().log_tail(4000);
}

}  // namespace
}  // namespace integration
