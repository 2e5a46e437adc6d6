// One chunk of PATCH /accounts/recalculate on SQLite, the time a write batch that carries it
// takes longer (inside the transaction; the commit's fsync is the batch's anyway): the worst
// case, every account of the chunk changing status, at 10,000 to 1,000,000 accounts, all of them
// candidates (negative settled balance). Commands::recalculate writes such chunks one at a time,
// so this is the longest any other write waits behind a recalculate beyond its own batch. Side
// by side with the recalculate it replaced, which walked every account in one write.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "app/commands.hpp"
#include "app/ledger.hpp"
#include "core/delinquency.hpp"
#include "store/store.hpp"

namespace {

using ps::core::Account;
using ps::core::AccountId;

struct Database {
  explicit Database(std::int64_t accounts)
      : dir(std::filesystem::temp_directory_path() /
            ("recalculate_bench." + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir);
    store = ps::store::open_store("sqlite:" + (dir / "bench.db").string(),
                                  ps::store::StoreOptions{.durable = false});
    constexpr std::int64_t kPerTransaction = 50'000;
    for (AccountId first = 1; first <= accounts; first += kPerTransaction) {
      store->begin();
      for (AccountId id = first; id < first + kPerTransaction && id <= accounts; ++id) {
        store->insert_account(Account{.account_id = id,
                                      .created_at = 0,
                                      .status = ps::core::AccountStatus::current,
                                      .balance = -100,
                                      .settled_balance = -100,
                                      .negative_since = 0});
      }
      store->commit();
    }
  }
  ~Database() {
    store.reset();
    std::filesystem::remove_all(dir);
  }
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Times `work` inside a transaction, not its begin and commit (whose fsync a batch pays anyway).
  template <class F>
  void timed_in_transaction(benchmark::State& state, F work) {
    state.PauseTiming();
    store->begin();
    state.ResumeTiming();
    work();
    state.PauseTiming();
    store->commit();
    state.ResumeTiming();
  }

  std::filesystem::path dir;
  std::unique_ptr<ps::store::Store> store;
};

void sizes(benchmark::internal::Benchmark* b) {
  b->Arg(10'000)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);
}

void RecalculateChunk(benchmark::State& state) {
  const std::int64_t accounts = state.range(0);
  Database db(accounts);
  ps::app::Ledger ledger{ps::app::LedgerSettings{}};
  std::uint64_t round = 0;
  for (auto _ : state) {
    // A chunk somewhere else every two rounds, judged with a window of 0 (negative now:
    // delinquent), then of ten years (longer than the accounts exist: current), so that every
    // account of it changes status each time.
    const auto after = static_cast<AccountId>(((round / 2) * 7919 * ps::app::kRecalculateChunk) %
                                              static_cast<std::uint64_t>(accounts));
    const std::int64_t window = round % 2 == 0 ? 0 : ps::core::kMaxDelinquencyWindowSeconds;
    ++round;
    db.timed_in_transaction(state, [&] {
      const auto chunk = db.store->delinquency_candidates(
          after, static_cast<std::int64_t>(ps::app::kRecalculateChunk));
      ps::app::Touched touched;
      benchmark::DoNotOptimize(ledger.recalculate(*db.store, window, chunk, 1'000'000, touched));
    });
  }
}
BENCHMARK(RecalculateChunk)->Apply(sizes)->Iterations(20);

// The baseline: what the recalculate before chunks did in one write, at the least (every account
// read and judged, none changing: a window under which they all stay current).
void RecalculateEveryAccountInOneWrite(benchmark::State& state) {
  Database db(state.range(0));
  for (auto _ : state) {
    db.timed_in_transaction(state, [&] {
      std::size_t delinquent = 0;
      for (const Account& a : db.store->all_accounts()) {
        delinquent +=
            ps::core::delinquency_status(a, ps::core::kMaxDelinquencyWindowSeconds, 1'000'000) ==
            ps::core::AccountStatus::delinquent;
      }
      benchmark::DoNotOptimize(delinquent);
    });
  }
}
BENCHMARK(RecalculateEveryAccountInOneWrite)->Apply(sizes)->Iterations(5);

}  // namespace
