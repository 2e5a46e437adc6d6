#pragma once
// The money-movement flow of SPEC 3 (POST /payments): record the payment durably, then call the
// provider, then record its verdict. When the outcome is unknown (timeout, connection failure,
// 5xx) the same money_movement_id is re-sent in the background with capped exponential backoff
// until the provider answers; every re-send first moves the settle deadline durably.
//
// One PaymentFlow lives on each I/O thread, with that thread's provider client.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <optional>

#include "app/ledger.hpp"
#include "app/writer.hpp"
#include "provider/provider.hpp"

namespace ps::app {

struct RetryPolicy {
  std::chrono::milliseconds initial{500};
  std::chrono::milliseconds max{30000};
};

struct PaymentResult {
  Outcome<PaymentCreated> created;   // a Failure, or the recorded payment
  provider::ProviderReply provider;  // meaningless when created is a Failure or a replay
};

// Renders the HTTP answer for the payment's idempotency record, once the provider's verdict is
// known: (status, body).
using CreateRenderer = std::function<Replay(const Payment&, const provider::ProviderReply&)>;

class PaymentFlow {
 public:
  // `render` is how the HTTP layer answers POST /payments; it is stored with idempotency keys.
  PaymentFlow(Writer& writer, Ledger& ledger, provider::Provider& provider, RetryPolicy retry,
              CreateRenderer render, boost::asio::any_io_executor executor);

  // `request` by reference: no temporary with strings inside a co_await, see Writer::run.
  boost::asio::awaitable<PaymentResult> create(const NewPayment& request);

  // Starts the background re-send loop of a payment whose outcome is unknown.
  void resend_in_background(MovementId id);

 private:
  boost::asio::awaitable<void> resend_loop(MovementId id);
  provider::MoneyMovementRequest request_for(const Payment& p) const;
  boost::asio::awaitable<void> record_verdict(MovementId id, const provider::ProviderReply& reply,
                                              Payment& payment);

  Writer& writer_;
  Ledger& ledger_;
  provider::Provider& provider_;
  RetryPolicy retry_;
  CreateRenderer render_;
  boost::asio::any_io_executor executor_;
};

}  // namespace ps::app
