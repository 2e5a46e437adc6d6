// Publishing a commit to the accounts snapshot at 1 to 1,000,000 accounts: the AccountsView of
// today (a persistent trie, app/account_map.hpp) side by side with the one it replaced (a copy
// of a std::map per commit), each commit changing 64 accounts spread over all of them.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "app/accounts_view.hpp"

namespace {

using ps::core::Account;
using ps::core::AccountId;

Account account(AccountId id, ps::core::Cents balance) {
  return Account{.account_id = id,
                 .created_at = 1,
                 .status = ps::core::AccountStatus::current,
                 .balance = balance,
                 .settled_balance = 0,
                 .negative_since = std::nullopt};
}

std::vector<Account> all_accounts(std::int64_t n) {
  std::vector<Account> out;
  out.reserve(static_cast<std::size_t>(n));
  for (AccountId id = 1; id <= n; ++id) out.push_back(account(id, 0));
  return out;
}

// 64 accounts of the n, spread over all of them, a different set each time.
std::vector<Account> commit(std::int64_t n, std::uint64_t& state) {
  std::vector<Account> changed;
  for (int i = 0; i < 64; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const auto id = static_cast<AccountId>(state >> 33) % n + 1;
    changed.push_back(account(id, static_cast<ps::core::Cents>(state & 0xffff)));
  }
  return changed;
}

// The snapshot before issue 11: the whole map copied at every publish.
struct CopiedMap {
  std::shared_ptr<const std::map<AccountId, Account>> current =
      std::make_shared<const std::map<AccountId, Account>>();
  void publish(const std::vector<Account>& changed) {
    auto next = std::make_shared<std::map<AccountId, Account>>(*current);
    for (const auto& a : changed) (*next)[a.account_id] = a;
    current = std::move(next);
  }
};

// View: CopiedMap or ps::app::AccountsView.
template <class View>
void BM_Publish(benchmark::State& state) {
  const auto n = state.range(0);
  View view;
  view.publish(all_accounts(n));
  std::uint64_t rng = 1;
  for (auto _ : state) {
    state.PauseTiming();
    const auto changed = commit(n, rng);
    state.ResumeTiming();
    view.publish(changed);
    benchmark::ClobberMemory();
  }
}

void sizes(benchmark::internal::Benchmark* b) {
  b->Arg(1)->Arg(10'000)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMicrosecond);
}

BENCHMARK_TEMPLATE(BM_Publish, CopiedMap)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_Publish, ps::app::AccountsView)->Apply(sizes);

}  // namespace

BENCHMARK_MAIN();
