#include "app/resender.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cassert>

namespace ps::app {

namespace asio = boost::asio;
using core::ProviderVerdict;

namespace {
// Longest sleep between looks at the store when nothing is known to be due: a first send whose
// verdict was never recorded becomes due without anyone telling the Resender.
constexpr auto kIdleLook = std::chrono::seconds(1);
// While the rate limit holds re-sends back: the pause before the next claim.
constexpr auto kRateWait = std::chrono::milliseconds(10);
}  // namespace

Resender::Resender(Writer& writer, Ledger& ledger, const core::Clock& clock,
                   asio::any_io_executor executor, ResendPolicy policy)
    : writer_(writer),
      ledger_(ledger),
      clock_(clock),
      executor_(std::move(executor)),
      policy_(policy),
      timer_(executor_),
      probe_pause_(policy.probe_initial),
      tokens_(static_cast<double>(std::min(policy.in_flight_max, policy.max_per_second))) {
  assert(policy_.in_flight_max > 0 && policy_.max_per_second > 0 && policy_.outage_after > 0);
  assert(policy_.probe_initial.count() > 0 && policy_.probe_max >= policy_.probe_initial);
}

void Resender::start(PaymentFlow& flow) {
  flow_ = &flow;
  asio::co_spawn(executor_, loop(), asio::detached);
}

void Resender::on_answer(ProviderVerdict verdict) {
  if (verdict == ProviderVerdict::unknown) {
    // A payment was scheduled for a re-send: look again soon. One post for many such answers.
    if (!outage_flag_.load(std::memory_order_relaxed) &&
        !wake_posted_.exchange(true, std::memory_order_relaxed)) {
      asio::post(executor_, [this] {
        wake_posted_.store(false, std::memory_order_relaxed);
        wake_at(SteadyClock::now() + policy_.probe_initial);
      });
    }
    return;
  }
  if (outage_flag_.exchange(false, std::memory_order_relaxed)) {
    asio::post(executor_, [this] { end_outage(); });
  }
}

void Resender::wake_at(SteadyClock::time_point t) {
  if (t >= next_claim_at_) return;
  next_claim_at_ = t;
  timer_.cancel();
}

void Resender::end_outage() {
  if (!outage_) return;
  outage_ = false;
  outage_flag_.store(false, std::memory_order_relaxed);
  unanswered_in_a_row_ = 0;
  probe_pause_ = policy_.probe_initial;
  asio::co_spawn(executor_, drain_after_outage(), asio::detached);
}

asio::awaitable<void> Resender::drain_after_outage() {
  try {
    auto op = [this](store::Store& s, TimeMs now, Touched&) {
      return ledger_.make_backoffs_due(s, now);
    };
    store::LockSet no_locks;  // a bulk update: it locks the rows it changes as it goes
    const std::size_t due = co_await writer_.run<std::size_t>(std::move(op), std::move(no_locks),
                                                              Writer::Admission::always);
    spdlog::info("the provider answers again: re-sending the {} waiting payment(s)", due);
  } catch (const std::exception& e) {
    // They stay due after their own backoff.
    spdlog::error("making the waiting payments due after the outage failed: {}", e.what());
  }
  wake_at(SteadyClock::now());
}

std::size_t Resender::take_tokens(std::size_t wanted) {
  // Token bucket: max_per_second, in bursts of at most one in-flight window.
  const auto now = SteadyClock::now();
  const double capacity =
      static_cast<double>(std::min(policy_.in_flight_max, policy_.max_per_second));
  tokens_ = std::min(capacity, tokens_ + std::chrono::duration<double>(now - tokens_at_).count() *
                                             static_cast<double>(policy_.max_per_second));
  tokens_at_ = now;
  const auto granted = std::min(wanted, static_cast<std::size_t>(tokens_));
  tokens_ -= static_cast<double>(granted);
  return granted;
}

asio::awaitable<void> Resender::loop() {
  constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
  for (;;) {
    timer_.expires_at(next_claim_at_);
    co_await timer_.async_wait(kTuple);  // expired, or cancelled by wake_at
    if (SteadyClock::now() < next_claim_at_) continue;
    try {
      co_await claim_and_send();
    } catch (const std::exception& e) {
      // The store refused the claim (disk full, database gone): the backlog waits there.
      spdlog::error("claiming payments to re-send failed: {}", e.what());
      next_claim_at_ = SteadyClock::now() + policy_.probe_initial;
    }
  }
}

asio::awaitable<void> Resender::claim_and_send() {
  const auto now = SteadyClock::now();
  const std::size_t room = policy_.in_flight_max - in_flight_;
  // In an outage a single probe at a time; its answer decides.
  const std::size_t wanted = outage_ ? (in_flight_ == 0 ? 1 : 0) : room;
  const std::size_t limit = take_tokens(wanted);
  ResendClaim claim;
  if (limit > 0) {
    auto op = [this, limit](store::Store& s, TimeMs at, Touched&) {
      return ledger_.claim_resends(s, at, limit);
    };
    // No locks named: the claim locks what it takes, skipping what another instance holds.
    store::LockSet no_locks;
    claim = co_await writer_.run<ResendClaim>(std::move(op), std::move(no_locks),
                                              Writer::Admission::always);
  }
  for (Payment& p : claim.payments) {
    ++in_flight_;
    asio::co_spawn(executor_, resend(std::move(p)), asio::detached);
  }
  more_due_ = limit > 0 && claim.payments.size() == limit;

  auto next = now + kIdleLook;
  if (outage_) {
    next = now + probe_pause_;
  } else if (limit < wanted && (limit == 0 || more_due_)) {
    next = now + kRateWait;  // the rate held the claim back: go on when tokens accrue
  } else if (more_due_) {
    // The in-flight window is full: a finished send wakes the loop when half of it is free.
  } else if (claim.next_due) {
    const auto wait =
        std::chrono::milliseconds(std::max<TimeMs>(0, *claim.next_due - clock_.now_ms()));
    next = std::min(next, now + wait);
  }
  next_claim_at_ = std::max(next, SteadyClock::now());
}

asio::awaitable<void> Resender::resend(Payment payment) {
  ProviderVerdict verdict = ProviderVerdict::unknown;
  try {
    verdict = co_await flow_->resend(payment);
  } catch (const std::exception& e) {
    spdlog::error("re-send of {} failed: {}", payment.money_movement_id, e.what());
  }
  --in_flight_;
  if (verdict != ProviderVerdict::unknown) {
    unanswered_in_a_row_ = 0;
    end_outage();
  } else if (outage_) {
    probe_pause_ = std::min(probe_pause_ * 2, policy_.probe_max);
  } else if (++unanswered_in_a_row_ >= policy_.outage_after) {
    outage_ = true;
    outage_flag_.store(true, std::memory_order_relaxed);
    probe_pause_ = policy_.probe_initial;
    spdlog::warn(
        "{} re-sends in a row got no answer from the provider: pausing re-sends, probing with "
        "one payment at a time (every {} ms, doubling to {} ms) until it answers",
        unanswered_in_a_row_, probe_pause_.count(), policy_.probe_max.count());
  }
  if (!outage_ && more_due_ && in_flight_ <= policy_.in_flight_max / 2) {
    wake_at(SteadyClock::now());
  }
}

}  // namespace ps::app
