#include "app/commands.hpp"

#include <utility>

#include "app/errors.hpp"
#include "app/ledger.hpp"
#include "app/payments.hpp"
#include "app/readers.hpp"
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

// Only the accounts whose status may change (store::Store::delinquency_candidates: negative, or
// delinquent), chosen on a reader and judged again by the writer, in chunks that are writes of
// their own among the others: no write waits behind more than one chunk, whatever the number of
// accounts (docs/decisions.md). An account that turns negative after its chunk was chosen is
// judged as it was then (current): the answer is as of a moment during the request.
asio::awaitable<void> Commands::recalculate(std::int64_t window_seconds) {
  auto& ledger = ledger_;
  core::AccountId after = 0;
  try {
    // At least one write, even with no candidate: a recalculate answers as of a write, and
    // fails as writes do (a stopped writer, an unreachable database).
    for (;;) {
      auto choose = [after](store::Store& s) {
        return s.delinquency_candidates(after, static_cast<std::int64_t>(kRecalculateChunk));
      };
      const auto chunk = co_await readers_.run<std::vector<core::AccountId>>(std::move(choose));
      auto judge = [&ledger, &chunk, window_seconds](store::Store& s, core::TimeMs now,
                                                     Touched& touched) {
        return ledger.recalculate(s, window_seconds, chunk, now, touched);
      };
      co_await writer_.run<std::size_t>(std::move(judge), locks_for_recalculate(chunk));
      if (chunk.size() < kRecalculateChunk) break;
      after = chunk.back();
    }
  } catch (const store::StoreError& e) {
    throw Unavailable(e.what());
  }
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
