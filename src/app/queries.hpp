#pragma once
// The reads that are not served from memory (GET /payments, GET /payments/{id}, the store half
// of readiness, and the accounts when the store is shared by several instances), as app types. They
// run on the Readers' pool (app/readers.hpp), never on an I/O thread. A store failure leaves here
// as Unavailable (app/errors.hpp); no store type does.

#include <boost/asio/awaitable.hpp>

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/types.hpp"

namespace ps::app {

class AccountsView;
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

// GET /accounts: the accounts with an id above `after` (the cursor), in id order, at most `limit`.
struct AccountQuery {
  core::AccountId after = 0;
  int limit = 100;
  bool operator==(const AccountQuery&) const = default;
};

struct AccountPage {
  std::vector<core::Account> accounts;
  // The cursor of the next page: set when more accounts follow this page.
  std::optional<core::AccountId> next_cursor;
};

// The page of `query` from the accounts that follow its cursor, in id order: `read` holds at
// least limit + 1 of them when more follow the page (read one more than the page to know).
AccountPage account_page(std::vector<core::Account> read, const AccountQuery& query);

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
  // `accounts`: the in-memory accounts view GET /accounts answers from, if any; a payment read
  // then waits for it to have every commit the read may have seen (see AccountsView).
  Queries(Readers& readers, AccountsView* accounts) : readers_(readers), accounts_(accounts) {}
  ~Queries();
  Queries(const Queries&) = delete;
  Queries& operator=(const Queries&) = delete;

  // Coroutine parameters are references; the caller keeps them alive (see Writer::run).
  boost::asio::awaitable<PaymentPage> list_payments(const PaymentQuery& query);
  // Empty when no payment has this id.
  boost::asio::awaitable<std::optional<PaymentDetails>> find_payment(core::MovementId id);
  // A page of accounts as read after the call: for a shared store (SPEC 8, read-your-writes
  // across instances), where the in-memory AccountsView sees only this instance's commits.
  // Callers share reads: one that arrives while a read is under way waits for the next read,
  // which starts after it arrived, and that read answers every caller waiting for it, one query
  // per distinct page asked (under load, one query per round trip of the database for the
  // common first page, instead of one per request).
  using SharedPage = std::shared_ptr<const AccountPage>;
  boost::asio::awaitable<SharedPage> list_accounts(const AccountQuery& query);
  // Empty when no account has this id.
  boost::asio::awaitable<std::optional<core::Account>> find_account(core::AccountId id);
  // Proves the store answers reads; throws Unavailable (or what opening a connection threw)
  // when it does not.
  boost::asio::awaitable<void> ping();

 private:
  // Called on the read's completion: with its page, or the error of the read.
  struct AccountsWaiter {
    AccountQuery query;
    std::function<void(std::exception_ptr, SharedPage)> done;
  };
  void start_accounts_read();
  boost::asio::awaitable<void> accounts_caught_up();

  Readers& readers_;
  AccountsView* accounts_;
  std::mutex accounts_mutex_;
  bool accounts_reading_ = false;                 // a read is under way
  std::vector<AccountsWaiter> accounts_waiting_;  // callers for the next read
};

}  // namespace ps::app
