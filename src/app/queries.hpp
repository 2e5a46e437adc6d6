#pragma once
// The reads that are not served from memory (GET /payments, GET /payments/{id}, the store half
// of readiness, and the accounts when the store is shared by several instances), as app types. They
// run on the Readers' pool (app/readers.hpp), never on an I/O thread. A store failure leaves here
// as Unavailable (app/errors.hpp); no store type does.

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <vector>

#include "core/types.hpp"

namespace ps::app {

class Readers;

struct PaymentQuery {
  std::optional<core::AccountId> account_id;
  std::optional<std::string> status;
  std::optional<core::MovementId> before_id;  // cursor: only ids below this one
  int limit = 100;
};

struct PaymentPage {
  std::vector<core::Payment> payments;  // newest (largest id) first
  // The cursor of the next page: set when this page is full, so more may follow.
  std::optional<core::MovementId> next_cursor;
};

// One callback received for a payment, applied or late.
struct CallbackView {
  core::TimeMs received_at = 0;
  core::Cents amount_cents = 0;
  std::optional<std::string> status;  // as received; empty when the callback carried none
  bool applied = false;               // false: arrived after the settle deadline
};

struct PaymentDetails {
  core::Payment payment;
  std::vector<CallbackView> callbacks;  // in the order they were received
};

class Queries {
 public:
  explicit Queries(Readers& readers) : readers_(readers) {}

  // Coroutine parameters are references; the caller keeps them alive (see Writer::run).
  boost::asio::awaitable<PaymentPage> list_payments(const PaymentQuery& query);
  // Empty when no payment has this id.
  boost::asio::awaitable<std::optional<PaymentDetails>> find_payment(core::MovementId id);
  // Every account, by id: for a shared store (SPEC 8, read-your-writes across instances), where
  // the in-memory AccountsView sees only this instance's commits.
  boost::asio::awaitable<std::vector<core::Account>> list_accounts();
  // Empty when no account has this id.
  boost::asio::awaitable<std::optional<core::Account>> find_account(core::AccountId id);
  // Proves the store answers reads; throws Unavailable (or what opening a connection threw)
  // when it does not.
  boost::asio::awaitable<void> ping();

 private:
  Readers& readers_;
};

}  // namespace ps::app
