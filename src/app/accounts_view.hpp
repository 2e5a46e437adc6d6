#pragma once
// The committed state of every account, published by the writer after each commit and read by
// the HTTP threads without touching the store: reads never wait behind writes.
//
// A commit becomes visible to the store's readers inside its COMMIT (SQLite's WAL: as soon as
// the frames are synced, before a checkpoint the same COMMIT may run), and to this view only
// when the writer publishes after COMMIT returns. So a payment read from the store can show a
// commit this view does not have yet. The writer marks each COMMIT it starts and settles it
// after publishing (or failing); a reader of the store calls when_settled after its read, and
// answers once every commit that had started by then is in the view: a client that saw a
// callback applied in GET /payments then sees it in GET /accounts.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "app/account_map.hpp"
#include "core/types.hpp"

namespace ps::app {

struct AccountsSnapshot {
  std::uint64_t version = 0;  // grows with every publish; lets readers cache renderings
  AccountMap accounts;
};

class AccountsView {
 public:
  AccountsView() : current_(std::make_shared<const AccountsSnapshot>()) {}

  std::shared_ptr<const AccountsSnapshot> snapshot() const { return current_.load(); }

  // The version of the latest snapshot: one plain load, so a reader holding a rendering of this
  // version can skip loading the snapshot itself (the hot path of GET /accounts).
  std::uint64_t version() const { return version_.load(std::memory_order_acquire); }

  std::optional<core::Account> find(core::AccountId id) const {
    const auto s = snapshot();
    const auto* account = s->accounts.find(id);
    if (account == nullptr) return std::nullopt;
    return *account;
  }

  // Only the writer publishes, so a copy-then-swap needs no lock against other publishers. The
  // copy shares every account the commit did not change (AccountMap): its cost depends on what
  // the commit changed, not on how many accounts there are.
  void publish(const std::vector<core::Account>& changed) {
    if (changed.empty()) return;
    const auto current = current_.load();
    auto next = std::make_shared<AccountsSnapshot>(AccountsSnapshot{
        .version = current->version + 1, .accounts = current->accounts.with(changed)});
    const auto version = next->version;
    current_.store(std::move(next));
    version_.store(version, std::memory_order_release);  // after the snapshot it announces
  }

  // The writer, right before each COMMIT.
  void commit_started() { started_.fetch_add(1, std::memory_order_acq_rel); }

  // The writer, once the commits it started are published or failed (no harm when none is).
  void commits_settled() {
    const auto started = started_.load(std::memory_order_acquire);
    settled_.store(started, std::memory_order_release);
    std::vector<std::function<void()>> ready;
    {
      const std::lock_guard lock(waiters_mutex_);
      std::erase_if(waiters_, [&](Waiter& w) {
        if (w.started > started) return false;
        ready.push_back(std::move(w.done));
        return true;
      });
    }
    for (auto& done : ready) done();
  }

  // Whether every commit started before this call has been published or has failed: no COMMIT
  // is under way (the common case, which needs no waiting).
  bool settled() const {
    const auto started = started_.load(std::memory_order_acquire);
    return settled_.load(std::memory_order_acquire) >= started;
  }

  // Calls `done` (here, or later on the writer's thread) once every commit started before this
  // call has been published or has failed. At once when no COMMIT is under way.
  void when_settled(std::function<void()> done) {
    const auto started = started_.load(std::memory_order_acquire);
    if (settled_.load(std::memory_order_acquire) < started) {
      const std::lock_guard lock(waiters_mutex_);
      // Checked again under the lock: commits_settled stores before it takes the lock, so
      // either this sees its store or it sees this waiter.
      if (settled_.load(std::memory_order_acquire) < started) {
        waiters_.push_back(Waiter{started, std::move(done)});
        return;
      }
    }
    done();
  }

 private:
  struct Waiter {
    std::uint64_t started;
    std::function<void()> done;
  };

  std::atomic<std::uint64_t> started_{0};
  std::atomic<std::uint64_t> settled_{0};
  std::mutex waiters_mutex_;
  std::vector<Waiter> waiters_;
  std::atomic<std::shared_ptr<const AccountsSnapshot>> current_;
  std::atomic<std::uint64_t> version_{0};
};

}  // namespace ps::app
