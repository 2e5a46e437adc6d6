#include "app/payments.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "util/rate_limited_log.hpp"

namespace ps::app {

namespace asio = boost::asio;
using core::ProviderVerdict;
using core::SendKind;
using provider::ConnectionChoice;

namespace {

// +-20% jitter, so payments that failed together do not re-send in lockstep.
TimeMs jittered(TimeMs d) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_int_distribution<TimeMs> spread(d * 8 / 10, d * 12 / 10);
  return spread(rng);
}

// A wrong password fails every payment the same way: one line a second, with the count.
util::RateLimitedLog configuration_fault_log;

}  // namespace

ProviderAnswer answer_for_current_status(const Payment& p) {
  const ProviderVerdict verdict = p.status == core::status::kSubmitting ? ProviderVerdict::unknown
                                  : p.status == core::status::kRejected ? ProviderVerdict::rejected
                                                                        : ProviderVerdict::accepted;
  return ProviderAnswer{.judgement = {.verdict = verdict, .our_configuration_fault = false},
                        .reply = {}};
}

PaymentFlow::PaymentFlow(Writer& writer, Ledger& ledger, provider::Provider& provider,
                         RetryPolicy retry, CreateRenderer render, ProviderStats& stats,
                         std::function<void(ProviderVerdict)> on_answer)
    : writer_(writer),
      ledger_(ledger),
      provider_(provider),
      retry_(retry),
      render_(std::move(render)),
      stats_(stats),
      on_answer_(std::move(on_answer)) {}

provider::MoneyMovementRequest PaymentFlow::request_for(const Payment& p) const {
  return provider::MoneyMovementRequest{
      .money_movement_id = p.money_movement_id,
      .account_id = p.account_id,
      .amount_cents = p.amount_cents,
      .merchant_name = p.merchant_name,
      .time_to_settle_seconds = ledger_.settings().time_to_settle_seconds,
  };
}

asio::awaitable<ProviderAnswer> PaymentFlow::attempt(Payment& payment, SendKind kind) {
  ProviderAnswer answer;
  try {
    const auto movement = request_for(payment);
    answer.reply = co_await provider_.send(movement, ConnectionChoice::pooled_or_new);
    if (answer.reply.stale_connection) {
      // The request may have reached the provider before the connection died, so the copy is
      // a re-send: its settle deadline moves first (the provider may count from the copy).
      const MovementId id = payment.money_movement_id;
      auto lease = [this, id](store::Store& s, TimeMs now, Touched&) {
        return ledger_.prepare_resend(s, id, now);
      };
      auto locks = locks_for_payment(id);
      const auto leased = co_await writer_.run<std::optional<Payment>>(
          std::move(lease), std::move(locks), Writer::Admission::always);
      if (leased) {  // else a callback proved meanwhile that the provider has it
        payment = *leased;
        kind = SendKind::resend;
        const auto copy = request_for(payment);
        answer.reply = co_await provider_.send(copy, ConnectionChoice::new_only);
      }
    }
    answer.judgement = core::judge_provider_answer(answer.reply.http_status, kind);
  } catch (const std::exception& e) {
    // Not a transport error (those are replies): the outcome is unknown, and the payment stays
    // due in the store, so it is sent again when its lease is up.
    spdlog::error("sending payment {} to the provider failed: {}", payment.money_movement_id,
                  e.what());
    answer.reply.error = e.what();
    answer.judgement = core::ProviderJudgement{};
  }
  if (answer.judgement.our_configuration_fault) {
    stats_.configuration_errors.fetch_add(1, std::memory_order_relaxed);
    if (std::uint64_t suppressed = 0;
        configuration_fault_log.should_log(std::to_string(answer.reply.http_status), suppressed)) {
      spdlog::error(
          "the provider answered HTTP {}: it refuses our configuration (PROVIDER_URL or the "
          "credentials), not the payment; payments stay submitting and are re-sent until it is "
          "fixed ({} more such answers since the last line)",
          answer.reply.http_status, suppressed);
    }
  }
  on_answer_(answer.judgement.verdict);
  co_return answer;
}

asio::awaitable<void> PaymentFlow::record(const ProviderAnswer& answer, Payment& payment) {
  const ProviderVerdict verdict = answer.judgement.verdict;
  const std::string detail =
      verdict == ProviderVerdict::rejected
          ? "HTTP " + std::to_string(answer.reply.http_status) + ": " + answer.reply.body_excerpt
          : std::string();
  const TimeMs retry_delay_ms = jittered(
      core::resend_backoff_ms(payment.send_attempts, retry_.initial.count(), retry_.max.count()));
  const MovementId id = payment.money_movement_id;
  auto op = [this, id, verdict, detail, answer, retry_delay_ms](store::Store& s, TimeMs now,
                                                                Touched& touched) {
    return ledger_.record_provider_verdict(
        s, id, verdict, detail, [this, &answer](const Payment& p) { return render_(p, answer); },
        now, touched, retry_delay_ms);
  };
  auto locks = locks_for_payment(id);
  auto recorded = co_await writer_.run<Outcome<Payment>>(std::move(op), std::move(locks),
                                                         Writer::Admission::always);
  if (auto* p = std::get_if<Payment>(&recorded)) payment = *p;
}

asio::awaitable<PaymentResult> PaymentFlow::create(const NewPayment& request) {
  auto create_op = [this, new_payment = request](store::Store& s, TimeMs now, Touched& touched) {
    return ledger_.create_payment(s, new_payment, now, touched, [this](const Payment& p) {
      return render_(p, answer_for_current_status(p));
    });
  };
  auto locks = locks_for_new_payment(request);
  auto created =
      co_await writer_.run<Outcome<PaymentCreated>>(std::move(create_op), std::move(locks));
  auto* ok = std::get_if<PaymentCreated>(&created);
  if (ok == nullptr || ok->replay) co_return PaymentResult{std::move(created), {}};

  // The payment is durable from here on: a callback racing ahead of the provider's answer finds
  // it, and if this attempt never records its verdict the payment is due again in the store.
  ProviderAnswer answer = co_await attempt(ok->payment, SendKind::first);
  try {
    co_await record(answer, ok->payment);
  } catch (const std::exception& e) {
    // The verdict could not be stored; the payment is still `submitting` and due again when
    // the first send's lease is up. Answer as for an unknown outcome (202).
    spdlog::error("recording the provider's answer for {} failed: {}",
                  ok->payment.money_movement_id, e.what());
    answer = ProviderAnswer{
        .judgement = {},
        .reply = {
            .http_status = 0, .body_excerpt = {}, .error = e.what(), .stale_connection = false}};
  }
  co_return PaymentResult{std::move(created), std::move(answer)};
}

asio::awaitable<ProviderVerdict> PaymentFlow::resend(const Payment& leased) {
  stats_.resends.fetch_add(1, std::memory_order_relaxed);
  Payment payment = leased;
  const ProviderAnswer answer = co_await attempt(payment, SendKind::resend);
  try {
    co_await record(answer, payment);
  } catch (const std::exception& e) {
    spdlog::error("recording the answer to the re-send of {} failed: {}", payment.money_movement_id,
                  e.what());
  }
  spdlog::debug("re-send of {} answered HTTP {} {}: payment is {}", payment.money_movement_id,
                answer.reply.http_status, answer.reply.error, payment.status);
  co_return answer.judgement.verdict;
}

}  // namespace ps::app
