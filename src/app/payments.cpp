#include "app/payments.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <random>

namespace ps::app {

namespace asio = boost::asio;
using provider::ProviderReply;

namespace {

ProviderVerdict verdict_of(const ProviderReply& reply) {
  switch (reply.kind) {
    case ProviderReply::Kind::accepted:
      return ProviderVerdict::accepted;
    case ProviderReply::Kind::rejected:
      return ProviderVerdict::rejected;
    case ProviderReply::Kind::unknown:
      break;
  }
  return ProviderVerdict::unknown;
}

// +-20% jitter, so payments that failed together do not re-send in lockstep.
std::chrono::milliseconds jittered(std::chrono::milliseconds d) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_int_distribution<std::int64_t> spread(d.count() * 8 / 10, d.count() * 12 / 10);
  return std::chrono::milliseconds(spread(rng));
}

}  // namespace

PaymentFlow::PaymentFlow(Writer& writer, Ledger& ledger, provider::Provider& provider,
                         RetryPolicy retry, CreateRenderer render, asio::any_io_executor executor)
    : writer_(writer),
      ledger_(ledger),
      provider_(provider),
      retry_(retry),
      render_(std::move(render)),
      executor_(std::move(executor)) {}

provider::MoneyMovementRequest PaymentFlow::request_for(const Payment& p) const {
  return provider::MoneyMovementRequest{
      .money_movement_id = p.money_movement_id,
      .account_id = p.account_id,
      .amount_cents = p.amount_cents,
      .merchant_name = p.merchant_name,
      .time_to_settle_seconds = ledger_.settings().time_to_settle_seconds,
  };
}

asio::awaitable<void> PaymentFlow::record_verdict(MovementId id, const ProviderReply& reply,
                                                  Payment& payment) {
  const ProviderVerdict verdict = verdict_of(reply);
  const std::string detail =
      verdict == ProviderVerdict::rejected
          ? "HTTP " + std::to_string(reply.http_status) + ": " + reply.body_excerpt
          : std::string();
  auto record = [this, id, verdict, detail, reply](store::Store& s, TimeMs now, Touched& touched) {
    return ledger_.record_provider_verdict(
        s, id, verdict, detail, [this, &reply](const Payment& p) { return render_(p, reply); }, now,
        touched);
  };
  auto recorded =
      co_await writer_.run<Outcome<Payment>>(std::move(record), Writer::Admission::always);
  if (auto* p = std::get_if<Payment>(&recorded)) payment = *p;
}

asio::awaitable<PaymentResult> PaymentFlow::create(const NewPayment& request) {
  auto create_op = [this, new_payment = request](store::Store& s, TimeMs now, Touched& touched) {
    return ledger_.create_payment(s, new_payment, now, touched);
  };
  auto created = co_await writer_.run<Outcome<PaymentCreated>>(std::move(create_op));
  auto* ok = std::get_if<PaymentCreated>(&created);
  if (ok == nullptr || ok->replay) co_return PaymentResult{std::move(created), {}};

  // The payment is durable from here on: a callback racing ahead of the provider's answer finds
  // it, and a crash leaves it `submitting`, to be re-sent at the next start.
  const MovementId id = ok->payment.money_movement_id;
  const auto movement = request_for(ok->payment);
  ProviderReply reply = co_await provider_.send(movement);
  try {
    co_await record_verdict(id, reply, ok->payment);
  } catch (const std::exception& e) {
    // The verdict could not be stored; the payment is still `submitting`. Answer as for an
    // unknown outcome (202) and let the re-send loop settle it.
    spdlog::error("recording the provider's answer for {} failed: {}", id, e.what());
    reply = ProviderReply{.kind = ProviderReply::Kind::unknown,
                          .http_status = 0,
                          .body_excerpt = {},
                          .error = e.what()};
  }
  if (reply.kind == ProviderReply::Kind::unknown) {
    spdlog::warn("provider outcome unknown for {} (status {}, {}); re-sending in background", id,
                 reply.http_status, reply.error);
    resend_in_background(id);
  }
  co_return PaymentResult{std::move(created), std::move(reply)};
}

void PaymentFlow::resend_in_background(MovementId id) {
  asio::co_spawn(executor_, resend_loop(id), asio::detached);
}

asio::awaitable<void> PaymentFlow::resend_loop(MovementId id) {
  asio::steady_timer timer(executor_);
  auto delay = retry_.initial;
  for (;;) {
    timer.expires_after(jittered(delay));
    co_await timer.async_wait(asio::use_awaitable);
    delay = std::min(delay * 2, retry_.max);
    try {
      auto prepare = [this, id](store::Store& s, TimeMs now, Touched&) {
        return ledger_.prepare_resend(s, id, now);
      };
      const auto payment = co_await writer_.run<std::optional<Payment>>(std::move(prepare),
                                                                        Writer::Admission::always);
      if (!payment) break;  // answered meanwhile, or a callback proved the provider has it
      const auto movement = request_for(*payment);
      const ProviderReply reply = co_await provider_.send(movement);
      if (reply.kind == ProviderReply::Kind::unknown) {
        spdlog::info("re-send of {} still without an answer ({} {})", id, reply.http_status,
                     reply.error);
        continue;
      }
      Payment recorded = *payment;
      co_await record_verdict(id, reply, recorded);
      spdlog::info("re-send of {} answered {}: payment is {}", id, reply.http_status,
                   recorded.status);
      break;
    } catch (const std::exception& e) {
      spdlog::error("re-send of {} failed: {}", id, e.what());
    }
  }
}

}  // namespace ps::app
