// util/RateLimitedLog: one line per key per interval, with the count of what it held back.
// Time is an injected value: no sleeping.

#include "util/rate_limited_log.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace ps::util {
namespace {

using namespace std::chrono_literals;

class RateLimitedLogTest : public ::testing::Test {
 protected:
  std::chrono::steady_clock::time_point now{std::chrono::hours(1)};
  RateLimitedLog limiter{1000ms, [this] { return now; }};

  // should_log, with the suppressed count it reported (-1: refused, count untouched).
  std::int64_t attempt(std::string_view key) {
    std::uint64_t suppressed = 12345;
    if (!limiter.should_log(key, suppressed)) {
      EXPECT_EQ(suppressed, 12345U) << "a refusal must not touch the count";
      return -1;
    }
    return static_cast<std::int64_t>(suppressed);
  }
};

TEST_F(RateLimitedLogTest, FirstLineOfAKeyPassesThenOnePerInterval) {
  EXPECT_EQ(attempt("disk full"), 0);
  EXPECT_EQ(attempt("disk full"), -1);
  now += 999ms;
  EXPECT_EQ(attempt("disk full"), -1);
  now += 1ms;  // exactly one interval after the last line
  EXPECT_EQ(attempt("disk full"), 2) << "the two held back are counted on the next line";
  EXPECT_EQ(attempt("disk full"), -1);
  now += 5s;
  EXPECT_EQ(attempt("disk full"), 1);
  now += 5s;
  EXPECT_EQ(attempt("disk full"), 0) << "the count restarts after each line";
}

TEST_F(RateLimitedLogTest, KeysAreLimitedIndependently) {
  EXPECT_EQ(attempt("503 store: database is locked"), 0);
  EXPECT_EQ(attempt("503 overloaded: write queue full"), 0);
  EXPECT_EQ(attempt("503 store: database is locked"), -1);
  EXPECT_EQ(attempt("503 overloaded: write queue full"), -1);
  EXPECT_EQ(attempt("503 overloaded: write queue full"), -1);
  EXPECT_EQ(attempt("500 internal: bad_alloc"), 0);
  now += 1s;
  EXPECT_EQ(attempt("503 overloaded: write queue full"), 2);
  EXPECT_EQ(attempt("503 store: database is locked"), 1);
  EXPECT_EQ(attempt("500 internal: bad_alloc"), 0);
}

TEST_F(RateLimitedLogTest, AFloodOfNewKeysIsBoundedToo) {
  // Fill the table: each new key logs once.
  for (std::size_t i = 0; i < RateLimitedLog::kMaxKeys; ++i) {
    ASSERT_EQ(attempt("cause " + std::to_string(i)), 0) << i;
  }
  // Within the interval, further new keys share one slot: one line, then held back.
  EXPECT_EQ(attempt("new cause A"), 0);
  EXPECT_EQ(attempt("new cause B"), -1);
  EXPECT_EQ(attempt("new cause C"), -1);
  EXPECT_EQ(attempt("cause 7"), -1) << "known keys keep their own limit";
  // An interval later the quiet keys are forgotten (nothing was held back for them), so new
  // keys get their own slot again.
  now += 1s;
  EXPECT_EQ(attempt("new cause D"), 0);
  EXPECT_EQ(attempt("cause 7"), 1) << "a key with a held-back count is not forgotten";
}

TEST_F(RateLimitedLogTest, ManyThreadsLetExactlyOneLineThrough) {
  std::atomic<int> passed{0};
  std::atomic<std::uint64_t> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        std::uint64_t suppressed = 0;
        if (limiter.should_log("shared", suppressed)) {
          passed.fetch_add(1);
        } else {
          refused.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(passed.load(), 1);
  now += 1s;
  std::uint64_t suppressed = 0;
  ASSERT_TRUE(limiter.should_log("shared", suppressed));
  EXPECT_EQ(suppressed, refused.load());
  EXPECT_EQ(suppressed, 3999U);
}

}  // namespace
}  // namespace ps::util
