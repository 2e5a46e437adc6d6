#include "app/queries.hpp"

#include <utility>

#include "app/errors.hpp"
#include "app/readers.hpp"
#include "store/store.hpp"

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
  co_return found;
}

asio::awaitable<std::vector<core::Account>> Queries::list_accounts() {
  auto op = [](store::Store& s) { return s.list_accounts(); };
  std::vector<core::Account> accounts;
  try {
    accounts = co_await readers_.run<std::vector<core::Account>>(std::move(op));
  } catch (const store::StoreError& e) {
    throw Unavailable(e.what());
  }
  co_return accounts;
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
