#pragma once
// The money-movement flow of SPEC 3 (POST /payments): record the payment durably, then call the
// provider, then record its verdict. When the outcome is unknown (timeout, connection failure,
// 5xx, our own configuration refused) the payment stays `submitting` and waits in the store
// for the Resender (app/resender.hpp), which sends the same money_movement_id again.
//
// One PaymentFlow lives on each I/O thread, with that thread's provider client.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "app/ledger.hpp"
#include "app/outcomes.hpp"
#include "app/writer.hpp"
#include "core/provider_answer.hpp"
#include "provider/provider.hpp"

namespace ps::app {

struct RetryPolicy {
  std::chrono::milliseconds initial{500};
  std::chrono::milliseconds max{30000};
};

// The answer a payment stands for as it is now, for an idempotent retry whose first request
// ended without storing its answer: `submitting` as unknown, `rejected` as a rejection (its
// provider status unknown here), anything else as accepted.
ProviderAnswer answer_for_current_status(const Payment& p);

// Counters shared by every flow, for GET /metrics.
struct ProviderStats {
  std::atomic<std::uint64_t> configuration_errors{0};
  std::atomic<std::uint64_t> resends{0};
};

class PaymentFlow {
 public:
  // `on_answer(verdict)` is told the outcome of every attempt (the Resender learns from it when
  // the provider is back, or that a new payment waits for a re-send); it must be thread-safe.
  PaymentFlow(Writer& writer, Ledger& ledger, provider::Provider& provider, RetryPolicy retry,
              CreateRenderer render, ProviderStats& stats,
              std::function<void(core::ProviderVerdict)> on_answer);

  // `request` by reference: no temporary with strings inside a co_await, see Writer::run.
  boost::asio::awaitable<PaymentResult> create(const NewPayment& request);

  // Sends a payment leased for a re-send (Ledger::claim_resends) and records the verdict.
  boost::asio::awaitable<core::ProviderVerdict> resend(const Payment& payment);

 private:
  // One attempt, including the immediate copy on a fresh connection after a stale pooled one.
  // `payment` is updated when that copy moved its deadline. Never throws.
  boost::asio::awaitable<ProviderAnswer> attempt(Payment& payment, core::SendKind kind);
  // Records the verdict; an unknown one schedules the next attempt with backoff.
  boost::asio::awaitable<void> record(const ProviderAnswer& answer, Payment& payment);
  provider::MoneyMovementRequest request_for(const Payment& p) const;

  Writer& writer_;
  Ledger& ledger_;
  provider::Provider& provider_;
  RetryPolicy retry_;
  CreateRenderer render_;
  ProviderStats& stats_;
  std::function<void(core::ProviderVerdict)> on_answer_;
};

}  // namespace ps::app
