// app::AccountMap, the persistent map behind the accounts snapshot: checked against std::map
// over random batches of changes, dense and sparse ids up to 2^53 - 1, and every version kept.
#include "app/account_map.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <vector>

namespace ps::app {
namespace {

using core::Account;
using core::AccountId;

Account account(AccountId id, core::Cents balance) {
  return Account{.account_id = id,
                 .created_at = 1,
                 .status = core::AccountStatus::current,
                 .balance = balance,
                 .settled_balance = 0,
                 .negative_since = std::nullopt};
}

std::vector<Account> in_order(const AccountMap& m, AccountId from = 0) {
  std::vector<Account> out;
  m.for_each_from(from, [&](const Account& a) {
    out.push_back(a);
    return true;
  });
  return out;
}

std::vector<Account> in_order(const std::map<AccountId, Account>& m, AccountId from = 0) {
  std::vector<Account> out;
  for (auto it = m.lower_bound(from); it != m.end(); ++it) out.push_back(it->second);
  return out;
}

TEST(AccountMap, EmptyHasNothing) {
  const AccountMap m;
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.find(1), nullptr);
  EXPECT_EQ(m.find(0), nullptr);
  EXPECT_TRUE(in_order(m).empty());
  const auto same = m.with({});
  EXPECT_EQ(same.size(), 0u);
}

TEST(AccountMap, TheLaterOfTwoChangesToOneAccountWins) {
  const auto m = AccountMap{}.with({account(7, 1), account(3, 5), account(7, 2)});
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.find(7)->balance, 2);
  EXPECT_EQ(m.find(3)->balance, 5);
}

TEST(AccountMap, GrowsForLargeIdsAndKeepsTheSmallOnes) {
  constexpr AccountId kLargest = (AccountId{1} << 53) - 1;
  auto m = AccountMap{}.with({account(1, 1)});
  m = m.with({account(kLargest, 2), account(1'000'000, 3)});
  EXPECT_EQ(m.size(), 3u);
  EXPECT_EQ(m.find(1)->balance, 1);
  EXPECT_EQ(m.find(1'000'000)->balance, 3);
  EXPECT_EQ(m.find(kLargest)->balance, 2);
  EXPECT_EQ(m.find(kLargest - 1), nullptr);
  EXPECT_EQ(m.find(2), nullptr);
  const auto all = in_order(m);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].account_id, 1);
  EXPECT_EQ(all[1].account_id, 1'000'000);
  EXPECT_EQ(all[2].account_id, kLargest);
  EXPECT_EQ(in_order(m, 2).front().account_id, 1'000'000);
}

TEST(AccountMap, AWalkStopsWhenAsked) {
  std::vector<Account> many;
  for (AccountId id = 1; id <= 100; ++id) many.push_back(account(id, id));
  const auto m = AccountMap{}.with(many);
  std::vector<AccountId> seen;
  m.for_each_from(40, [&](const Account& a) {
    seen.push_back(a.account_id);
    return seen.size() < 3;
  });
  EXPECT_EQ(seen, (std::vector<AccountId>{40, 41, 42}));
}

// Random batches against std::map; every earlier version must still read as it was.
void check_against_model(std::uint64_t seed, AccountId id_range) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<AccountId> any_id(1, id_range);
  std::uniform_int_distribution<int> batch_size(0, 40);
  std::map<AccountId, Account> model;
  AccountMap map;
  std::vector<std::pair<std::map<AccountId, Account>, AccountMap>> versions;
  for (int round = 0; round < 300; ++round) {
    std::vector<Account> batch;
    const int n = batch_size(rng);
    for (int i = 0; i < n; ++i) {
      // Half of the changes to accounts that exist, as commits do.
      AccountId id = any_id(rng);
      if (!model.empty() && rng() % 2 == 0) {
        auto it = model.lower_bound(id);
        if (it == model.end()) it = model.begin();
        id = it->first;
      }
      batch.push_back(account(id, static_cast<core::Cents>(rng() % 1000)));
    }
    for (const auto& a : batch) model[a.account_id] = a;
    map = map.with(batch);
    versions.emplace_back(model, map);
    ASSERT_EQ(map.size(), model.size()) << "seed " << seed << " round " << round;
    const AccountId from = any_id(rng);
    ASSERT_EQ(in_order(map, from), in_order(model, from)) << "seed " << seed << " round " << round;
  }
  for (const auto& [old_model, old_map] : versions) {
    ASSERT_EQ(in_order(old_map), in_order(old_model)) << "seed " << seed;
    for (const auto& [id, a] : old_model) ASSERT_EQ(*old_map.find(id), a);
    for (int probe = 0; probe < 50; ++probe) {
      const AccountId id = any_id(rng);
      const auto* found = old_map.find(id);
      ASSERT_EQ(found != nullptr, old_model.contains(id)) << "id " << id;
    }
  }
}

TEST(AccountMap, MatchesAnOrderedMapWithDenseIds) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) check_against_model(seed, 3'000);
}

TEST(AccountMap, MatchesAnOrderedMapWithSparseIds) {
  // Each sparse account has its own path of up to 11 nodes: fewer rounds keep this under 2 s.
  for (std::uint64_t seed = 1; seed <= 2; ++seed) {
    check_against_model(seed, (AccountId{1} << 53) - 1);
  }
}

}  // namespace
}  // namespace ps::app
