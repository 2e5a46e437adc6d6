// core/ids: money_movement_id = (ms since 2024-01-01) << 12 | sequence; see docs/decisions.md.

#include "core/ids.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <unordered_set>

namespace ps::core {
namespace {

using Gen = MovementIdGenerator;
constexpr TimeMs kEpoch = Gen::kEpochMs;
constexpr TimeMs kT0 = 1'790'000'000'000;  // 2026
constexpr int kBits = Gen::kSequenceBits;

TEST(CoreIds, LayoutIsMillisecondsThenSequence) {
  Gen g(0);
  const MovementId first = g.next(kT0);
  EXPECT_EQ(first, (kT0 - kEpoch) << kBits);
  EXPECT_EQ(g.next(kT0), first + 1);
  EXPECT_EQ(g.next(kT0), first + 2);
  EXPECT_EQ(g.next(kT0 + 1), (kT0 + 1 - kEpoch) << kBits);
}

TEST(CoreIds, StrictlyIncreasingAcrossTimeSteps) {
  Gen g(0);
  MovementId last = 0;
  TimeMs now = kT0;
  const TimeMs steps[] = {0, 1, 0, 0, 5, 1000, 0, 3, 0};
  for (int round = 0; round < 200; ++round) {
    for (const TimeMs step : steps) {
      now += step;
      const MovementId id = g.next(now);
      ASSERT_GT(id, last);
      last = id;
    }
  }
}

TEST(CoreIds, HundredThousandInOneMillisecondAreUniqueAndBorrowTheNextMilliseconds) {
  Gen g(0);
  std::unordered_set<MovementId> seen;
  seen.reserve(100'000);
  MovementId last = 0;
  for (int i = 0; i < 100'000; ++i) {
    const MovementId id = g.next(kT0);
    ASSERT_GT(id, last) << i;
    ASSERT_TRUE(seen.insert(id).second) << i;
    ASSERT_GT(id, 0);
    ASSERT_LE(id, kMaxMovementId);
    last = id;
  }
  const std::int64_t ms = (kT0 - kEpoch);
  // 4096 ids per millisecond: the 4097th borrows the next millisecond.
  EXPECT_EQ(last >> kBits, ms + 100'000 / 4096);
  EXPECT_EQ(last & 4095, 100'000 % 4096 - 1);
  // When the clock reaches the borrowed milliseconds, ids keep growing.
  EXPECT_GT(g.next(kT0 + 3), last);
  EXPECT_GT(g.next(kT0 + 1000), last);
}

TEST(CoreIds, IdsStayBelowTwoToThe53UntilTheSpaceIsExhausted) {
  // The largest millisecond that fits: 2^41 - 1 after the epoch (year 2093).
  const TimeMs last_ms = kEpoch + (std::int64_t{1} << 41) - 1;
  Gen g(0);
  const MovementId id = g.next(last_ms);
  EXPECT_LT(id, std::int64_t{1} << 53);
  EXPECT_LE(id, kMaxMovementId);
  // Today's ids are far below the limit.
  Gen today(0);
  EXPECT_LT(today.next(kT0), std::int64_t{1} << 53);
  // Past the end it refuses rather than issue an id a JSON client cannot represent.
  Gen beyond(0);
  EXPECT_THROW(beyond.next(last_ms + 1), std::overflow_error);
}

TEST(CoreIds, ContinuesAfterTheFloorOfARestart) {
  const MovementId floor = ((kT0 - kEpoch) << kBits) | 7;
  Gen g(floor);
  // The clock is behind the stored ids (stepped back, or a restart within the same ms).
  EXPECT_EQ(g.next(kT0 - 5000), floor + 1);
  EXPECT_EQ(g.next(kT0), floor + 2);
  // A later clock starts a fresh millisecond.
  EXPECT_EQ(g.next(kT0 + 1), (kT0 + 1 - kEpoch) << kBits);
}

TEST(CoreIds, FloorAtTheEndOfAMillisecondBorrowsTheNext) {
  const MovementId floor = ((kT0 - kEpoch) << kBits) | 4095;
  Gen g(floor);
  EXPECT_EQ(g.next(kT0), (kT0 - kEpoch + 1) << kBits);
}

TEST(CoreIds, IdsFromALaterTimeAreLargerEvenAfterAWipedDatabase) {
  Gen before_wipe(0);
  MovementId old_id = 0;
  for (int i = 0; i < 5000; ++i) old_id = before_wipe.next(kT0);  // busy ms, borrowed ahead
  Gen after_wipe(0);                                              // database gone: floor 0
  ASSERT_EQ(old_id >> kBits, kT0 - kEpoch + 1);  // 5000 ids: one borrowed millisecond
  EXPECT_GT(after_wipe.next(kT0 + 10), old_id);
  Gen a(0);
  Gen b(0);
  EXPECT_LT(a.next(kT0), b.next(kT0 + 1));
}

TEST(CoreIds, ClockBeforeTheEpochStillGivesPositiveIncreasingIds) {
  Gen g(0);
  const MovementId a = g.next(kEpoch - 1'000'000);
  const MovementId b = g.next(kEpoch - 1'000'000);
  EXPECT_GT(a, 0);
  EXPECT_GT(b, a);
}

}  // namespace
}  // namespace ps::core
