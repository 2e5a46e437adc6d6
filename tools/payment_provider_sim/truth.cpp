#include "truth.hpp"

#include <algorithm>
#include <cassert>
#include <map>
#include <stdexcept>
#include <utility>
#include <vector>

#include <boost/json/array.hpp>

namespace provider_sim {
namespace {

// Bound of the unrecorded-attempts table; see TruthBook::unrecorded_attempts_.
constexpr std::size_t kMaxUnrecordedAttempts = 100'000;

}  // namespace

TruthBook::TruthBook(std::size_t max_movements) : max_movements_(max_movements) {
  assert(max_movements > 0);
}

std::uint32_t TruthBook::count_request(std::uint64_t money_movement_id, Clock::time_point now) {
  ++counters_.requests;
  if (auto it = movements_.find(money_movement_id); it != movements_.end()) {
    it->second.last_request_at = now;
    return it->second.requests_seen++;
  }
  if (unrecorded_attempts_.size() >= kMaxUnrecordedAttempts &&
      !unrecorded_attempts_.contains(money_movement_id)) {
    unrecorded_attempts_.clear();
  }
  return unrecorded_attempts_[money_movement_id]++;
}

TruthBook::RecordOutcome TruthBook::record(const MoneyMovement& movement, Clock::time_point now,
                                           bool runs_script) {
  if (movements_.contains(movement.money_movement_id)) {
    ++counters_.resent;
    return RecordOutcome::kAlreadyRecorded;
  }
  if (movements_.size() >= max_movements_) return RecordOutcome::kFull;

  MovementTruth truth;
  truth.account_id = movement.account_id;
  truth.original_amount_cents = movement.amount_cents;
  truth.time_to_settle_seconds = movement.time_to_settle_seconds;
  truth.amount_cents = movement.amount_cents;
  truth.accepted_at = now;
  truth.last_request_at = now;
  truth.script_finished = !runs_script;
  // Carry over the attempts that failed before this one was accepted.
  if (auto it = unrecorded_attempts_.find(movement.money_movement_id);
      it != unrecorded_attempts_.end()) {
    truth.requests_seen = it->second;
    unrecorded_attempts_.erase(it);
  }
  movements_.emplace(movement.money_movement_id, std::move(truth));
  if (runs_script) ++in_flight_;
  return RecordOutcome::kRecorded;
}

const MovementTruth* TruthBook::find(std::uint64_t money_movement_id) const {
  auto it = movements_.find(money_movement_id);
  return it == movements_.end() ? nullptr : &it->second;
}

MovementTruth& TruthBook::at(std::uint64_t money_movement_id) {
  auto it = movements_.find(money_movement_id);
  // Callbacks run only for recorded movements, and records are never removed.
  if (it == movements_.end()) throw std::logic_error("callback for an unrecorded movement");
  return it->second;
}

void TruthBook::on_callback_sent(std::uint64_t money_movement_id) {
  ++at(money_movement_id).callbacks_sent;
}

void TruthBook::on_callback_acknowledged(std::uint64_t money_movement_id, std::int64_t amount_cents,
                                         const std::optional<std::string>& status) {
  MovementTruth& truth = at(money_movement_id);
  assert(truth.callbacks_acknowledged < truth.callbacks_sent);
  ++truth.callbacks_acknowledged;
  truth.amount_cents = amount_cents;
  if (status) {
    truth.status = *status;
  } else {
    ++counters_.acknowledged_without_status;
  }
  if (keep_callback_history_) {
    truth.callbacks.push_back({.amount_cents = amount_cents, .status = status, .answer = 201U});
    assert(truth.callbacks.size() <= truth.callbacks_sent);
  }
}

void TruthBook::on_callback_not_acknowledged(std::uint64_t money_movement_id,
                                             std::int64_t amount_cents,
                                             const std::optional<std::string>& status,
                                             std::optional<unsigned> answer) {
  MovementTruth& truth = at(money_movement_id);
  assert(answer != 201U);
  if (!answer) ++counters_.callback_gave_up;
  if (keep_callback_history_) {
    truth.callbacks.push_back({.amount_cents = amount_cents, .status = status, .answer = answer});
    assert(truth.callbacks.size() <= truth.callbacks_sent);
  }
}

void TruthBook::on_script_finished(std::uint64_t money_movement_id) {
  MovementTruth& truth = at(money_movement_id);
  assert(!truth.script_finished);
  assert(in_flight_ > 0);
  truth.script_finished = true;
  --in_flight_;
}

std::vector<AccountTruth> TruthBook::accounts() const {
  std::map<std::int64_t, AccountTruth> by_account;
  for (const auto& [id, truth] : movements_) {
    AccountTruth& account = by_account[truth.account_id];
    account.account_id = truth.account_id;
    // No overflow in practice: 10^12 per movement times at most a few million movements is
    // far below 9.2 * 10^18. SPEC 4: a `rejected` movement (a callback may say so) leaves the
    // balance; only `posted` ones are settled.
    if (truth.status != "rejected") account.balance += truth.amount_cents;
    if (truth.status == "posted") account.settled_balance += truth.amount_cents;
  }
  std::vector<AccountTruth> result;
  result.reserve(by_account.size());
  for (const auto& [account_id, account] : by_account) result.push_back(account);
  return result;
}

boost::json::object TruthBook::to_json() const {
  std::vector<const std::pair<const std::uint64_t, MovementTruth>*> by_id;
  by_id.reserve(movements_.size());
  for (const auto& entry : movements_) by_id.push_back(&entry);
  std::sort(by_id.begin(), by_id.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  boost::json::array movements;
  movements.reserve(by_id.size());
  for (const auto* entry : by_id) {
    const auto& [id, truth] = *entry;
    boost::json::object movement{
        {"money_movement_id", id},
        {"account_id", truth.account_id},
        {"amount_cents", truth.amount_cents},
        {"status", truth.status},
        {"callbacks_sent", truth.callbacks_sent},
        {"callbacks_acknowledged", truth.callbacks_acknowledged},
    };
    if (keep_callback_history_) {
      boost::json::array callbacks;
      callbacks.reserve(truth.callbacks.size());
      for (const SentCallback& callback : truth.callbacks) {
        boost::json::object sent{{"amount_cents", callback.amount_cents}};
        if (callback.status) sent.emplace("status", *callback.status);
        if (callback.answer) {
          sent.emplace("answer", *callback.answer);
        } else {
          sent.emplace("answer", nullptr);
        }
        callbacks.push_back(std::move(sent));
      }
      movement.emplace("callbacks", std::move(callbacks));
    }
    movements.push_back(std::move(movement));
  }
  boost::json::array accounts_json;
  for (const AccountTruth& account : accounts()) {
    accounts_json.push_back(boost::json::object{
        {"account_id", account.account_id},
        {"balance", account.balance},
        {"settled_balance", account.settled_balance},
    });
  }
  return boost::json::object{
      {"movements", std::move(movements)},
      {"accounts", std::move(accounts_json)},
      {"in_flight", in_flight_},
      {"counters", counters_json()},
  };
}

boost::json::object TruthBook::summary_json() const {
  return boost::json::object{
      {"movements", movements_.size()},
      {"in_flight", in_flight_},
      {"counters", counters_json()},
  };
}

boost::json::object TruthBook::counters_json() const {
  const SimCounters& c = counters_;
  return boost::json::object{
      {"requests", c.requests},
      {"invalid", c.invalid},
      {"failed", c.failed},
      {"rejected", c.rejected},
      {"dropped", c.dropped},
      {"resent", c.resent},
      {"resent_conflict", c.resent_conflict},
      {"unauthorized", c.unauthorized},
      {"early_callbacks", c.early_callbacks},
      {"early_wait_expired", c.early_wait_expired},
      {"callback_attempts", c.callback_attempts},
      {"acknowledged_without_status", c.acknowledged_without_status},
      {"callback_gave_up", c.callback_gave_up},
      {"late_sent", c.late_sent},
      {"late_answered_409", c.late_answered_409},
      {"late_answered_other", c.late_answered_other},
      {"late_unanswered", c.late_unanswered},
  };
}

}  // namespace provider_sim
