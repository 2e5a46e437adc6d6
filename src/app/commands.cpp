#include "app/commands.hpp"

#include <utility>

#include "app/errors.hpp"
#include "app/ledger.hpp"
#include "app/payments.hpp"
#include "app/writer.hpp"
#include "core/clock.hpp"
#include "store/store.hpp"

namespace ps::app {

namespace asio = boost::asio;

// Each use case names its job first and then awaits it (GCC 12, see Writer::run), and turns a
// store failure into Unavailable with the store's message.

asio::awaitable<PaymentResult> Commands::create_payment(PaymentFlow& flow,
                                                        const NewPayment& request) {
  PaymentResult result;
  try {
    result = co_await flow.create(request);
  } catch (const store::StoreError& e) {
    throw Unavailable(e.what());
  }
  co_return result;
}

asio::awaitable<core::Account> Commands::open_account() {
  auto& ledger = ledger_;
  auto open = [&ledger](store::Store& s, core::TimeMs now, Touched& touched) {
    return ledger.open_account(s, now, touched);
  };
  core::Account account;
  try {
    account = co_await writer_.run<core::Account>(std::move(open));
  } catch (const store::StoreError& e) {
    throw Unavailable(e.what());
  }
  co_return account;
}

asio::awaitable<std::vector<core::Account>> Commands::recalculate(std::int64_t window_seconds) {
  auto& ledger = ledger_;
  auto recalc = [&ledger, window_seconds](store::Store& s, core::TimeMs now, Touched& touched) {
    return ledger.recalculate(s, window_seconds, now, touched);
  };
  std::vector<core::Account> accounts;
  auto locks = locks_for_recalculate();
  try {
    accounts =
        co_await writer_.run<std::vector<core::Account>>(std::move(recalc), std::move(locks));
  } catch (const store::StoreError& e) {
    throw Unavailable(e.what());
  }
  co_return accounts;
}

asio::awaitable<Outcome<core::Payment>> Commands::apply_callback(core::MovementId id,
                                                                 const core::CallbackInput& input) {
  auto& ledger = ledger_;
  const core::TimeMs arrived_at = clock_.now_ms();
  auto apply = [&ledger, id, input, arrived_at](store::Store& s, core::TimeMs now,
                                                Touched& touched) {
    return ledger.apply_callback(s, id, input, arrived_at, now, touched);
  };
  Outcome<core::Payment> outcome;
  auto locks = locks_for_payment(id);
  try {
    outcome = co_await writer_.run<Outcome<core::Payment>>(std::move(apply), std::move(locks));
  } catch (const store::StoreError& e) {
    throw Unavailable(e.what());
  }
  co_return outcome;
}

}  // namespace ps::app
