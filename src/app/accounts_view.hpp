#pragma once
// The committed state of every account, published by the writer after each commit and read by
// the HTTP threads without touching the store: reads never wait behind writes.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "core/types.hpp"

namespace ps::app {

struct AccountsSnapshot {
  std::uint64_t version = 0;  // grows with every publish; lets readers cache renderings
  std::map<core::AccountId, core::Account> accounts;
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
    const auto it = s->accounts.find(id);
    if (it == s->accounts.end()) return std::nullopt;
    return it->second;
  }

  // Only the writer publishes, so a copy-then-swap needs no lock against other publishers.
  // Copying the map is O(accounts) per commit: fine for the few accounts this product has; a
  // persistent map would be the next step if accounts grew into the hundreds of thousands.
  void publish(const std::vector<core::Account>& changed) {
    if (changed.empty()) return;
    auto next = std::make_shared<AccountsSnapshot>(*current_.load());
    next->version += 1;
    for (const auto& a : changed) next->accounts[a.account_id] = a;
    const auto version = next->version;
    current_.store(std::move(next));
    version_.store(version, std::memory_order_release);  // after the snapshot it announces
  }

 private:
  std::atomic<std::shared_ptr<const AccountsSnapshot>> current_;
  std::atomic<std::uint64_t> version_{0};
};

}  // namespace ps::app
