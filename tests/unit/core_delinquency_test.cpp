// core/delinquency: the O(1) rule over `negative_since` against the reference rule over the full
// settled-balance history ("negative at every instant of [now - window, now]").

#include "core/delinquency.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/ledger.hpp"

namespace ps::core {
namespace {

constexpr TimeMs kT0 = 1'790'000'000'000;

Account account_with(TimeMs created_at, Cents settled, std::optional<TimeMs> negative_since) {
  return Account{.account_id = 1,
                 .created_at = created_at,
                 .status = AccountStatus::current,
                 .balance = settled,
                 .settled_balance = settled,
                 .negative_since = negative_since};
}

bool reference(TimeMs created_at, const std::vector<SettledPoint>& history,
               std::int64_t window_seconds, TimeMs now) {
  return negative_throughout(created_at, history, now - window_seconds * 1000, now);
}

TEST(CoreDelinquency, NegativeForTheWholeWindowIsDelinquent) {
  const Account a = account_with(kT0, -500, kT0 + 1000);
  const std::vector<SettledPoint> h = {{kT0 + 1000, -500}};
  const TimeMs now = kT0 + 20'000;
  EXPECT_EQ(delinquency_status(a, 10, now), AccountStatus::delinquent);
  EXPECT_TRUE(reference(kT0, h, 10, now));
}

TEST(CoreDelinquency, ANonNegativeMomentInsideTheWindowKeepsItCurrent) {
  // -500 from +1 s, back to 0 at +12 s, negative again from +15 s; window [+10 s, +20 s].
  const std::vector<SettledPoint> h = {{kT0 + 1000, -500}, {kT0 + 12'000, 0}, {kT0 + 15'000, -5}};
  const Account a = account_with(kT0, -5, kT0 + 15'000);
  const TimeMs now = kT0 + 20'000;
  EXPECT_EQ(delinquency_status(a, 10, now), AccountStatus::current);
  EXPECT_FALSE(reference(kT0, h, 10, now));
  // A window that starts after the non-negative moment is delinquent again.
  EXPECT_EQ(delinquency_status(a, 5, now), AccountStatus::delinquent);
  EXPECT_TRUE(reference(kT0, h, 5, now));
  EXPECT_EQ(delinquency_status(a, 6, now), AccountStatus::current);
  EXPECT_FALSE(reference(kT0, h, 6, now));
}

TEST(CoreDelinquency, AccountYoungerThanTheWindowIsCurrent) {
  // Negative from the very instant it was created, but before that it counts as 0.
  const TimeMs created = kT0 + 15'000;
  const Account a = account_with(created, -100, created);
  const std::vector<SettledPoint> h = {{created, -100}};
  const TimeMs now = kT0 + 20'000;
  EXPECT_EQ(delinquency_status(a, 10, now), AccountStatus::current);
  EXPECT_FALSE(reference(created, h, 10, now));
  // Exactly as old as the window: [created, now] is all negative.
  EXPECT_EQ(delinquency_status(a, 5, now), AccountStatus::delinquent);
  EXPECT_TRUE(reference(created, h, 5, now));
}

TEST(CoreDelinquency, WindowZeroIsDelinquentIffNegativeNow) {
  const TimeMs now = kT0 + 20'000;
  EXPECT_EQ(delinquency_status(account_with(kT0, -1, now), 0, now), AccountStatus::delinquent);
  EXPECT_TRUE(reference(kT0, {{now, -1}}, 0, now));
  EXPECT_EQ(delinquency_status(account_with(kT0, -1, kT0 + 1), 0, now), AccountStatus::delinquent);
  EXPECT_EQ(delinquency_status(account_with(kT0, 0, std::nullopt), 0, now), AccountStatus::current);
  EXPECT_FALSE(reference(kT0, {{kT0 + 1, -1}, {now, 0}}, 0, now));
  EXPECT_EQ(delinquency_status(account_with(kT0, 7, std::nullopt), 0, now), AccountStatus::current);
  EXPECT_FALSE(reference(kT0, {{kT0 + 1, 7}}, 0, now));
}

TEST(CoreDelinquency, WindowBoundaryIsClosed) {
  const TimeMs now = kT0 + 60'000;
  const std::int64_t window = 10;
  const TimeMs boundary = now - window * 1000;
  // Negative since exactly now - window: negative at every instant of the closed interval.
  EXPECT_EQ(delinquency_status(account_with(kT0, -1, boundary), window, now),
            AccountStatus::delinquent);
  EXPECT_TRUE(reference(kT0, {{boundary, -1}}, window, now));
  // One millisecond later: at now - window it was still 0.
  EXPECT_EQ(delinquency_status(account_with(kT0, -1, boundary + 1), window, now),
            AccountStatus::current);
  EXPECT_FALSE(reference(kT0, {{boundary + 1, -1}}, window, now));
  // One millisecond earlier: delinquent.
  EXPECT_EQ(delinquency_status(account_with(kT0, -1, boundary - 1), window, now),
            AccountStatus::delinquent);
  EXPECT_TRUE(reference(kT0, {{boundary - 1, -1}}, window, now));
}

TEST(CoreDelinquency, NeverNegativeIsCurrentForAnyWindow) {
  const Account a = account_with(kT0, 0, std::nullopt);
  for (const std::int64_t w :
       {std::int64_t{0}, std::int64_t{1}, std::int64_t{10}, kMaxDelinquencyWindowSeconds}) {
    EXPECT_EQ(delinquency_status(a, w, kT0 + 1'000'000), AccountStatus::current) << w;
  }
}

TEST(CoreDelinquency, LongestWindowReachingBeforeCreationIsCurrent) {
  const Account a = account_with(kT0, -1, kT0);
  EXPECT_EQ(delinquency_status(a, kMaxDelinquencyWindowSeconds, kT0 + 1000),
            AccountStatus::current);
  EXPECT_FALSE(reference(kT0, {{kT0, -1}}, kMaxDelinquencyWindowSeconds, kT0 + 1000));
}

// Random histories driven through the real ledger functions (several payments, random amounts,
// statuses and times, several changes in the same millisecond): after every change the O(1) rule
// must agree with the reference rule over the recorded settled-balance history, for random windows.
TEST(CoreDelinquency, PropertyFastRuleAgreesWithHistoryRule) {
  std::mt19937_64 rng(20'261'126);
  const auto uniform = [&rng](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  const std::vector<std::string> statuses = {"posted", "posted", "pending", "failed", "rejected"};

  int comparisons = 0;
  int delinquent_seen = 0;
  for (int history_no = 0; history_no < 5000; ++history_no) {
    SCOPED_TRACE("history " + std::to_string(history_no));
    const TimeMs created = kT0 + uniform(0, 1'000'000);
    Account account = account_with(created, 0, std::nullopt);
    std::vector<SettledPoint> history;
    std::vector<Payment> payments;
    TimeMs now = created;
    const int changes = static_cast<int>(uniform(1, 25));
    for (int c = 0; c < changes; ++c) {
      // Times on a 250 ms grid so that window edges often coincide with changes; 0 = same ms.
      now += 250 * uniform(0, 12);
      std::optional<Account> next;
      if (payments.empty() || uniform(0, 3) == 0) {
        Payment p{.money_movement_id = static_cast<MovementId>(payments.size() + 1),
                  .account_id = 1,
                  .amount_cents = uniform(1, 9) * (uniform(0, 1) ? 1 : -1),
                  .original_amount_cents = 0,
                  .merchant_name = "m",
                  .status = "submitting",
                  .created_at = now,
                  .updated_at = now,
                  .last_sent_at = now,
                  .settle_deadline = now + 12'000,
                  .callbacks_applied = 0,
                  .resend_at = std::nullopt,
                  .send_attempts = 1};
        p.original_amount_cents = p.amount_cents;
        next = apply_new_payment(account, p, now);
        payments.push_back(p);
      } else {
        Payment& p = payments[static_cast<std::size_t>(
            uniform(0, static_cast<std::int64_t>(payments.size()) - 1))];
        const Payment changed = with_callback(
            p, CallbackInput{uniform(-9, 9), statuses[static_cast<std::size_t>(uniform(0, 4))]},
            now);
        next = apply_payment_change(account, p, changed, now);
        p = changed;
      }
      ASSERT_TRUE(next.has_value());
      account = *next;
      history.push_back({now, account.settled_balance});
      ASSERT_EQ(account.negative_since.has_value(), account.settled_balance < 0);

      // Evaluate at the instant of the change and a little after it (before the next one).
      for (const TimeMs at : {now, now + 250 * uniform(0, 8)}) {
        for (int w = 0; w < 4; ++w) {
          const std::int64_t window = w == 0 ? uniform(0, 1) : uniform(0, 15);
          const bool fast = delinquency_status(account, window, at) == AccountStatus::delinquent;
          const bool slow = negative_throughout(created, history, at - window * 1000, at);
          ASSERT_EQ(fast, slow) << "window " << window << " s, at +" << at - created
                                << " ms, negative_since "
                                << (account.negative_since ? *account.negative_since - created : -1)
                                << ", settled " << account.settled_balance;
          ++comparisons;
          delinquent_seen += fast ? 1 : 0;
        }
      }
    }
  }
  // The generator must exercise both outcomes, or the test proves little.
  EXPECT_GT(comparisons, 100'000);
  EXPECT_GT(delinquent_seen, comparisons / 50);
  EXPECT_LT(delinquent_seen, comparisons - comparisons / 50);
}

}  // namespace
}  // namespace ps::core
