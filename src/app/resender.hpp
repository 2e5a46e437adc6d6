#pragma once
// Sends again the payments whose provider outcome is unknown. The backlog lives in the store
// (payments.resend_at), not in memory, so memory stays bounded whatever its size (measured
// before: one in-memory timer per payment, 133 MB after a 30 s outage under load). The
// Resender leases due payments in batches (Ledger::claim_resends moves each settle deadline
// before the copy goes out), keeps at most `in_flight_max` sends under way and starts at most
// `max_per_second`, and records each verdict; an unknown one makes that payment due again after
// its own doubling backoff.
//
// Outage: when re-sends keep getting no answer, sending every due payment only burns CPU and a
// commit per re-send (measured before: 5,000 commits/s during an outage, 50-125% of a core).
// Then one payment at a time probes the provider, with doubling pauses; the first definite
// answer, to a probe or to any new payment's first send, ends the outage and the whole backlog
// is due at once, whatever backoff each payment had reached (measured before: a 36 s drain,
// waiting out each payment's 30 s backoff).
//
// Runs on one I/O thread: the executor given to start(). on_answer() is thread-safe.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>

#include "app/ledger.hpp"
#include "app/payments.hpp"
#include "app/writer.hpp"
#include "core/clock.hpp"

namespace ps::app {

struct ResendPolicy {
  std::chrono::milliseconds probe_initial{500};  // pause between probes in an outage, doubling
  std::chrono::milliseconds probe_max{30000};
  std::size_t in_flight_max = 256;
  std::size_t max_per_second = 20000;
  // Consecutive re-sends without an answer that make an outage.
  std::size_t outage_after = 16;
};

class Resender {
 public:
  Resender(Writer& writer, Ledger& ledger, const core::Clock& clock,
           boost::asio::any_io_executor executor, ResendPolicy policy);
  Resender(const Resender&) = delete;
  Resender& operator=(const Resender&) = delete;

  // Starts the loop; `flow` sends and records, and must live on this Resender's executor.
  void start(PaymentFlow& flow);

  // Thread-safe; every attempt to send any payment reports here. A definite answer ends an
  // outage; an unknown one means a payment will be due soon.
  void on_answer(core::ProviderVerdict verdict);

  bool in_outage() const { return outage_flag_.load(std::memory_order_relaxed); }

 private:
  using SteadyClock = std::chrono::steady_clock;
  boost::asio::awaitable<void> loop();
  boost::asio::awaitable<void> claim_and_send();
  boost::asio::awaitable<void> resend(Payment payment);
  void wake_at(SteadyClock::time_point t);  // on the executor
  void end_outage();                        // on the executor
  boost::asio::awaitable<void> drain_after_outage();
  std::size_t take_tokens(std::size_t wanted);

  Writer& writer_;
  Ledger& ledger_;
  const core::Clock& clock_;
  boost::asio::any_io_executor executor_;
  ResendPolicy policy_;
  PaymentFlow* flow_ = nullptr;
  boost::asio::steady_timer timer_;

  // Only on the executor:
  SteadyClock::time_point next_claim_at_ = SteadyClock::now();
  std::size_t in_flight_ = 0;
  std::size_t unanswered_in_a_row_ = 0;
  bool outage_ = false;
  bool more_due_ = false;  // the last claim was full: more payments may be due now
  std::chrono::milliseconds probe_pause_;
  double tokens_ = 0;
  SteadyClock::time_point tokens_at_ = SteadyClock::now();

  // Any thread:
  std::atomic<bool> outage_flag_{false};
  std::atomic<bool> wake_posted_{false};
};

}  // namespace ps::app
