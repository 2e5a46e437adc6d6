#pragma once
// An immutable map from account id to account, in id order, whose update copies only the paths
// to the accounts it changes: a 32-way radix trie on the id. Publishing a commit that changed k
// accounts costs O(k x depth), whatever the number of accounts (depth 4 for a million accounts,
// at most 11 for ids up to 2^53); the version it was made from stays valid and unchanged, so
// readers holding it are never disturbed. Ids are assigned in sequence by the store, so leaves
// are full and an account costs about its own size (56 bytes) plus a few bytes of trie.

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/types.hpp"

namespace ps::app {

class AccountMap {
 public:
  AccountMap() = default;

  std::size_t size() const { return size_; }

  // The account with this id, or nullptr; valid as long as this map (or a copy) lives.
  const core::Account* find(core::AccountId id) const {
    const auto key = static_cast<std::uint64_t>(id);
    if (root_ == nullptr || (key >> (shift_ + kBits)) != 0) return nullptr;
    const Node* node = root_.get();
    for (unsigned shift = shift_; shift > 0; shift -= kBits) {
      node = static_cast<const Inner*>(node)->children[slot(key, shift)].get();
      if (node == nullptr) return nullptr;
    }
    const auto* leaf = static_cast<const Leaf*>(node);
    const auto i = slot(key, 0);
    return (leaf->present >> i & 1U) != 0 ? &leaf->accounts[i] : nullptr;
  }

  // A new map with every account of `changed` set (added or replaced; for an id given twice,
  // the later one). This map is not changed.
  AccountMap with(std::vector<core::Account> changed) const {
    if (changed.empty()) return *this;
    std::stable_sort(changed.begin(), changed.end(),
                     [](const auto& a, const auto& b) { return a.account_id < b.account_id; });
    // Keep the last of equal ids.
    std::vector<core::Account> unique;
    unique.reserve(changed.size());
    for (auto& a : changed) {
      if (!unique.empty() && unique.back().account_id == a.account_id) {
        unique.back() = a;
      } else {
        unique.push_back(a);
      }
    }
    AccountMap next = *this;
    const auto largest = static_cast<std::uint64_t>(unique.back().account_id);
    while ((largest >> (next.shift_ + kBits)) != 0) {  // grow upwards until the id fits
      if (next.root_ != nullptr) {
        auto root = std::make_shared<Inner>();
        root->children[0] = std::move(next.root_);
        next.root_ = std::move(root);
      }
      next.shift_ += kBits;
    }
    next.root_ = assign(next.root_.get(), next.shift_, unique, next.size_);
    return next;
  }

  // Calls `f(account)` in id order for every account with id >= `from`, until `f` returns false.
  template <class F>
  void for_each_from(core::AccountId from, F&& f) const {
    if (root_ != nullptr) walk(root_.get(), shift_, 0, static_cast<std::uint64_t>(from), f);
  }

 private:
  static constexpr unsigned kBits = 5;
  static constexpr std::size_t kFanout = std::size_t{1} << kBits;

  struct Node {
    virtual ~Node() = default;
  };
  using NodePtr = std::shared_ptr<const Node>;
  struct Inner : Node {
    std::array<NodePtr, kFanout> children{};
  };
  struct Leaf : Node {
    std::uint32_t present = 0;  // bit i: accounts[i] holds an account
    std::array<core::Account, kFanout> accounts{};
  };
  static_assert(kFanout <= 32, "Leaf::present has 32 bits");

  static std::size_t slot(std::uint64_t key, unsigned shift) {
    return (key >> shift) & (kFanout - 1);
  }

  // A copy of `node` (nullptr: an empty one) at `shift` with `range` (sorted, unique ids, all
  // under this node) set; `size` grows by the accounts that were not there.
  static NodePtr assign(const Node* node, unsigned shift, std::span<const core::Account> range,
                        std::size_t& size) {
    if (shift == 0) {
      auto leaf = node != nullptr ? std::make_shared<Leaf>(*static_cast<const Leaf*>(node))
                                  : std::make_shared<Leaf>();
      for (const auto& a : range) {
        const auto i = slot(static_cast<std::uint64_t>(a.account_id), 0);
        if ((leaf->present >> i & 1U) == 0) ++size;
        leaf->present |= std::uint32_t{1} << i;
        leaf->accounts[i] = a;
      }
      return leaf;
    }
    auto inner = node != nullptr ? std::make_shared<Inner>(*static_cast<const Inner*>(node))
                                 : std::make_shared<Inner>();
    while (!range.empty()) {
      const auto i = slot(static_cast<std::uint64_t>(range.front().account_id), shift);
      const auto end = std::find_if(range.begin(), range.end(), [&](const core::Account& a) {
        return slot(static_cast<std::uint64_t>(a.account_id), shift) != i;
      });
      const auto n = static_cast<std::size_t>(end - range.begin());
      inner->children[i] = assign(inner->children[i].get(), shift - kBits, range.first(n), size);
      range = range.subspan(n);
    }
    return inner;
  }

  // In-order walk of the subtree at `shift` whose ids start at `base`; false once `f` said stop.
  template <class F>
  static bool walk(const Node* node, unsigned shift, std::uint64_t base, std::uint64_t from, F& f) {
    if (shift == 0) {
      const auto* leaf = static_cast<const Leaf*>(node);
      for (std::size_t i = 0; i < kFanout; ++i) {
        if ((leaf->present >> i & 1U) == 0 || base + i < from) continue;
        if (!f(leaf->accounts[i])) return false;
      }
      return true;
    }
    const auto& children = static_cast<const Inner*>(node)->children;
    for (std::size_t i = 0; i < kFanout; ++i) {
      const std::uint64_t child_base = base + (std::uint64_t{i} << shift);
      const std::uint64_t child_end = child_base + (std::uint64_t{1} << shift);
      if (children[i] == nullptr || child_end <= from) continue;
      if (!walk(children[i].get(), shift - kBits, child_base, from, f)) return false;
    }
    return true;
  }

  NodePtr root_;        // nullptr while empty
  unsigned shift_ = 0;  // the root's: it holds ids below 2^(shift_ + kBits)
  std::size_t size_ = 0;
};

}  // namespace ps::app
