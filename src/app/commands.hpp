#pragma once
// The use cases that change the ledger, as the HTTP layer calls them: plain values in, app
// results out. Each runs as one job of the group-committing writer (app/writer.hpp) and resumes
// the caller once its batch has committed. Throws Overloaded when the write queue is full and
// Unavailable when the store failed (nothing was changed); no store type leaves here.

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <vector>

#include "app/outcomes.hpp"
#include "core/ledger.hpp"
#include "core/types.hpp"

namespace ps::core {
class Clock;
}

namespace ps::app {

class Ledger;
class PaymentFlow;
class Readers;
class Writer;

// PATCH /accounts/recalculate judges at most this many accounts per write.
inline constexpr std::size_t kRecalculateChunk = 1000;

class Commands {
 public:
  // `clock`: the service's time, as the writer uses it. `readers`: for the reads that choose
  // what a write will change (recalculate).
  Commands(Writer& writer, Readers& readers, Ledger& ledger, const core::Clock& clock)
      : writer_(writer), readers_(readers), ledger_(ledger), clock_(clock) {}

  // POST /payments on the calling I/O thread's flow (one PaymentFlow per I/O thread): records
  // the payment, sends it to the provider and records the verdict (app/payments.hpp).
  // Coroutine parameters are references; the caller keeps them alive (see Writer::run).
  boost::asio::awaitable<PaymentResult> create_payment(PaymentFlow& flow,
                                                       const NewPayment& request);

  // POST /accounts.
  boost::asio::awaitable<core::Account> open_account();

  // PATCH /accounts/recalculate: every account's delinquency over a window of `window_seconds`,
  // in chunks of at most kRecalculateChunk accounts.
  boost::asio::awaitable<void> recalculate(std::int64_t window_seconds);

  // POST /money_movement_request_callback. The callback arrived now (its request has been
  // read): lateness is judged by this time, not by when the writer gets to it.
  boost::asio::awaitable<Outcome<core::Payment>> apply_callback(core::MovementId id,
                                                                const core::CallbackInput& input);

 private:
  Writer& writer_;
  Readers& readers_;
  Ledger& ledger_;
  const core::Clock& clock_;
};

}  // namespace ps::app
