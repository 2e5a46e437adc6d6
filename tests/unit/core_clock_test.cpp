// core::ServiceClock (SPEC 2): anchored at max(wall clock, stored high-water mark), advanced by
// elapsed monotonic time only, never backwards; wall-clock steps are detected and reported once,
// rate-limited. Both sources are manual: no sleeping.

#include "core/clock.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace ps::core {
namespace {

constexpr TimeMs kWall0 = 1'790'000'000'000;  // 2026
constexpr std::int64_t kMono0 = 5'000'000;    // monotonic origin is arbitrary (boot time)
constexpr std::int64_t kHourMs = 3'600'000;

class CoreServiceClock : public ::testing::Test {
 protected:
  ServiceClock make(TimeMs high_water_ms = 0) {
    return ServiceClock(sources_, high_water_ms,
                        [this](const ClockStep& step) { reports_.push_back(step); });
  }

  ManualTimeSources sources_{kWall0, kMono0};
  std::vector<ClockStep> reports_;
};

TEST_F(CoreServiceClock, StartsAtTheWallClockAndAdvancesWithElapsedTime) {
  const auto clock = make(kWall0 - 60'000);  // stored times are older: the usual restart
  EXPECT_EQ(clock.now_ms(), kWall0);
  sources_.advance_ms(1234);
  EXPECT_EQ(clock.now_ms(), kWall0 + 1234);
  EXPECT_TRUE(reports_.empty());
  EXPECT_EQ(clock.steps_detected(), 0U);
}

TEST_F(CoreServiceClock, EmptyStoreStartsAtTheWallClock) {
  const auto clock = make(0);
  EXPECT_EQ(clock.now_ms(), kWall0);
  EXPECT_TRUE(reports_.empty());
}

TEST_F(CoreServiceClock, AnchorsAtTheHighWaterMarkWhenTheWallClockIsBehindIt) {
  const TimeMs stored = kWall0 + kHourMs;  // restarted after the wall clock stepped back 1 h
  const auto clock = make(stored);
  EXPECT_EQ(clock.now_ms(), stored);
  sources_.advance_ms(500);
  EXPECT_EQ(clock.now_ms(), stored + 500);

  ASSERT_EQ(reports_.size(), 1U);
  EXPECT_EQ(reports_[0].kind, ClockStep::Kind::behind_at_start);
  EXPECT_EQ(reports_[0].size_ms, -kHourMs);
  EXPECT_EQ(reports_[0].wall_minus_service_ms, -kHourMs);
  // The lag it starts with is not a step: reading on does not report again.
  for (int i = 0; i < 100; ++i) {
    sources_.advance_ms(50);
    static_cast<void>(clock.now_ms());
  }
  EXPECT_EQ(reports_.size(), 1U);
  EXPECT_EQ(clock.steps_detected(), 0U);
}

TEST_F(CoreServiceClock, StepBackWhileRunningDoesNotMoveTimeBack) {
  const auto clock = make();
  sources_.advance_ms(2000);
  const TimeMs before = clock.now_ms();
  EXPECT_EQ(before, kWall0 + 2000);

  sources_.step_wall_ms(-kHourMs);
  EXPECT_EQ(clock.now_ms(), before);  // not an hour back
  sources_.advance_ms(300);
  EXPECT_EQ(clock.now_ms(), before + 300);  // and elapsed time still counts

  ASSERT_EQ(reports_.size(), 1U);
  EXPECT_EQ(reports_[0].kind, ClockStep::Kind::stepped);
  EXPECT_EQ(reports_[0].size_ms, -kHourMs);
  EXPECT_EQ(reports_[0].steps, 1U);
  EXPECT_EQ(reports_[0].wall_minus_service_ms, -kHourMs);
  EXPECT_EQ(reports_[0].service_ms, before);
  EXPECT_EQ(clock.steps_detected(), 1U);
}

TEST_F(CoreServiceClock, StepForwardWhileRunningDoesNotJumpTime) {
  const auto clock = make();
  sources_.advance_ms(1000);
  const TimeMs before = clock.now_ms();

  sources_.step_wall_ms(kHourMs);
  sources_.advance_ms(10);
  EXPECT_EQ(clock.now_ms(), before + 10);  // not an hour ahead

  ASSERT_EQ(reports_.size(), 1U);
  EXPECT_EQ(reports_[0].size_ms, kHourMs);
  EXPECT_EQ(reports_[0].wall_minus_service_ms, kHourMs);
}

TEST_F(CoreServiceClock, ASettleWindowLastsItsElapsedTimeAcrossSteps) {
  // A 12 s window (10 s + 2 s grace) opened just before the wall clock stepped.
  const auto clock = make();
  const TimeMs deadline = clock.now_ms() + 12'000;
  sources_.step_wall_ms(kHourMs);
  sources_.advance_ms(11'999);
  EXPECT_LE(clock.now_ms(), deadline);  // forward step: still open
  sources_.step_wall_ms(-2 * kHourMs);
  sources_.advance_ms(2);
  EXPECT_GT(clock.now_ms(), deadline);  // back step: closed on time
}

TEST_F(CoreServiceClock, AStepIsReportedOnceNotOnEveryRead) {
  const auto clock = make();
  sources_.step_wall_ms(-kHourMs);
  for (int i = 0; i < 1000; ++i) {
    sources_.advance_ms(100);
    static_cast<void>(clock.now_ms());
  }
  EXPECT_EQ(reports_.size(), 1U);
  EXPECT_EQ(clock.steps_detected(), 1U);
}

TEST_F(CoreServiceClock, DriftWithinTheThresholdIsNotAStep) {
  const auto clock = make();
  sources_.step_wall_ms(ServiceClock::kStepThresholdMs);  // exactly the threshold: not more
  static_cast<void>(clock.now_ms());
  sources_.step_wall_ms(-2 * ServiceClock::kStepThresholdMs);
  static_cast<void>(clock.now_ms());
  EXPECT_TRUE(reports_.empty());
  EXPECT_EQ(clock.steps_detected(), 0U);

  // Slew accumulating past the threshold against the last baseline is reported, once.
  sources_.step_wall_ms(-2);
  static_cast<void>(clock.now_ms());
  ASSERT_EQ(reports_.size(), 1U);
  EXPECT_EQ(reports_[0].size_ms, -ServiceClock::kStepThresholdMs - 2);
}

TEST_F(CoreServiceClock, StepsWithinTheReportIntervalAreSummedIntoTheNextReport) {
  const auto clock = make();
  sources_.step_wall_ms(-kHourMs);
  static_cast<void>(clock.now_ms());
  ASSERT_EQ(reports_.size(), 1U);

  // A flapping clock: three more steps within the interval, no report yet.
  sources_.advance_ms(100);
  sources_.step_wall_ms(kHourMs);
  static_cast<void>(clock.now_ms());
  sources_.step_wall_ms(-5000);
  static_cast<void>(clock.now_ms());
  sources_.step_wall_ms(7000);
  static_cast<void>(clock.now_ms());
  EXPECT_EQ(reports_.size(), 1U);
  EXPECT_EQ(clock.steps_detected(), 4U);

  // The first read after the interval reports them together; then nothing more.
  sources_.advance_ms(ServiceClock::kReportIntervalMs);
  static_cast<void>(clock.now_ms());
  ASSERT_EQ(reports_.size(), 2U);
  EXPECT_EQ(reports_[1].steps, 3U);
  EXPECT_EQ(reports_[1].size_ms, kHourMs + 2000);
  EXPECT_EQ(reports_[1].wall_minus_service_ms, 2000);
  sources_.advance_ms(ServiceClock::kReportIntervalMs);
  static_cast<void>(clock.now_ms());
  EXPECT_EQ(reports_.size(), 2U);
}

TEST_F(CoreServiceClock, NeverGoesBackEvenIfTheMonotonicSourceDid) {
  const auto clock = make();
  sources_.advance_ms(5000);
  const TimeMs before = clock.now_ms();
  sources_.set_monotonic_ms(kMono0);  // a broken source; must not leak into service time
  EXPECT_EQ(clock.now_ms(), before);
}

TEST(CoreServiceClockThreads, EachThreadSeesTimeNeverGoBack) {
  const SystemTimeSources sources;
  const ServiceClock clock(sources, 0, nullptr);
  constexpr int kThreads = 4;
  constexpr int kReads = 20'000;
  std::vector<int> regressions(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&clock, &regressions, t] {
      TimeMs last = 0;
      for (int i = 0; i < kReads; ++i) {
        const TimeMs now = clock.now_ms();
        if (now < last) ++regressions[static_cast<std::size_t>(t)];
        last = now;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(regressions[static_cast<std::size_t>(t)], 0);
}

}  // namespace
}  // namespace ps::core
