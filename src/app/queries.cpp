#include "app/queries.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <utility>

#include "app/accounts_view.hpp"
#include "app/errors.hpp"
#include "app/readers.hpp"
#include "store/store.hpp"
#include "util/await_callback.hpp"

namespace ps::app {

namespace asio = boost::asio;

namespace {

CallbackView view_of(const store::CallbackRecord& c) {
  return CallbackView{.received_at = c.received_at,
                      .amount_cents = c.amount_cents,
                      .status = c.status,
                      .applied = c.applied};
}

using Found = std::optional<PaymentDetails>;

}  // namespace

asio::awaitable<PaymentPage> Queries::list_payments(const PaymentQuery& query) {
  const store::PaymentFilter filter{.account_id = query.account_id,
                                    .status = query.status,
                                    .before_id = query.before_id,
                                    .limit = query.limit};
  auto op = [filter](store::Store& s) { return s.list_payments(filter); };
  PaymentPage page;
  try {
    page.payments = co_await readers_.run<std::vector<core::Payment>>(std::move(op));
  } catch (const store::StoreError& e) {
    throw Unavailable(e.what());
  }
  co_await accounts_caught_up();
  if (static_cast<int>(page.payments.size()) == query.limit && !page.payments.empty()) {
    page.next_cursor = page.payments.back().money_movement_id;
  }
  co_return page;
}

asio::awaitable<std::optional<PaymentDetails>> Queries::find_payment(core::MovementId id) {
  auto op = [id](store::Store& s) -> Found {
    auto p = s.find_payment(id);
    if (!p) return std::nullopt;
    PaymentDetails details{.payment = std::move(*p), .callbacks = {}};
    for (const auto& c : s.callback_history(id)) details.callbacks.push_back(view_of(c));
    return details;
  };
  Found found;
  try {
    found = co_await readers_.run<Found>(std::move(op));
  } catch (const store::StoreError& e) {
    throw Unavailable(e.what());
  }
  co_await accounts_caught_up();
  co_return found;
}

// Called after a read of payments: the store may have shown a commit whose COMMIT had not
// returned yet, so not yet in the accounts view. Waits (without a thread) until the view has
// every commit started by now; when none is under way, returns without suspending.
asio::awaitable<void> Queries::accounts_caught_up() {
  if (accounts_ == nullptr || accounts_->settled()) co_return;
  auto wait = [this](auto done) { accounts_->when_settled([done] { done(nullptr, true); }); };
  co_await util::await_callback<bool>(std::move(wait));
}

Queries::~Queries() {
  // The Readers' pool was joined before (main): no read can complete into a destroyed Queries.
  assert(!accounts_reading_);
}

AccountPage account_page(std::vector<core::Account> read, const AccountQuery& query) {
  AccountPage page{.accounts = std::move(read), .next_cursor = std::nullopt};
  const auto limit = static_cast<std::size_t>(query.limit);
  if (page.accounts.size() > limit) {
    page.accounts.resize(limit);
    page.next_cursor = page.accounts.back().account_id;
  }
  return page;
}

asio::awaitable<Queries::SharedPage> Queries::list_accounts(const AccountQuery& query) {
  SharedPage page;
  try {
    auto wait = [this, &query](auto done) {
      bool start = false;
      {
        const std::lock_guard lock(accounts_mutex_);
        accounts_waiting_.push_back(AccountsWaiter{query, std::move(done)});
        start = !std::exchange(accounts_reading_, true);
      }
      if (start) start_accounts_read();
    };
    page = co_await util::await_callback<SharedPage>(std::move(wait));
  } catch (const store::StoreError& e) {
    throw Unavailable(e.what());
  }
  co_return page;
}

// Takes the waiting callers and reads for them, once per distinct page; when the reads are done,
// starts the next round for the callers that arrived meanwhile, if any.
void Queries::start_accounts_read() {
  auto round = std::make_shared<std::vector<AccountsWaiter>>();
  {
    const std::lock_guard lock(accounts_mutex_);
    round->swap(accounts_waiting_);
  }
  std::vector<AccountQuery> queries;
  for (const auto& waiter : *round) {
    if (std::find(queries.begin(), queries.end(), waiter.query) == queries.end()) {
      queries.push_back(waiter.query);
    }
  }
  auto op = [queries](store::Store& s) {
    std::vector<SharedPage> pages;
    pages.reserve(queries.size());
    for (const auto& q : queries) {
      pages.push_back(std::make_shared<const AccountPage>(
          account_page(s.list_accounts(q.after, std::int64_t{q.limit} + 1), q)));
    }
    return pages;
  };
  readers_.submit<std::vector<SharedPage>>(
      std::move(op), [this, round, queries](const std::exception_ptr& error,
                                            const std::vector<SharedPage>& pages) {
        for (const auto& waiter : *round) {
          SharedPage page;
          if (!error) {
            const auto at = std::find(queries.begin(), queries.end(), waiter.query);
            page = pages[static_cast<std::size_t>(at - queries.begin())];
          }
          waiter.done(error, page);
        }
        bool again = false;
        {
          const std::lock_guard lock(accounts_mutex_);
          again = !accounts_waiting_.empty();
          accounts_reading_ = again;
        }
        if (again) start_accounts_read();
      });
}

asio::awaitable<std::optional<core::Account>> Queries::find_account(core::AccountId id) {
  auto op = [id](store::Store& s) { return s.find_account(id); };
  std::optional<core::Account> account;
  try {
    account = co_await readers_.run<std::optional<core::Account>>(std::move(op));
  } catch (const store::StoreError& e) {
    throw Unavailable(e.what());
  }
  co_return account;
}

asio::awaitable<void> Queries::ping() {
  auto op = [](store::Store& s) {
    s.ping();
    return true;
  };
  try {
    co_await readers_.run<bool>(std::move(op));
  } catch (const store::StoreError& e) {
    throw Unavailable(e.what());
  }
}

}  // namespace ps::app
