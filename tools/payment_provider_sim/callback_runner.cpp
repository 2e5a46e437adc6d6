#include "callback_runner.hpp"

#include <algorithm>
#include <cassert>
#include <exception>

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace provider_sim {
namespace {

constexpr const char* kCallbackTarget = "/money_movement_request_callback";
// The late callback is retried for this long on transport failures; only the service's
// answer (409 expected) matters, not the window.
constexpr std::chrono::seconds kLateDeliveryWindow{5};
// The late callback goes out this long after the service's own deadline.
constexpr std::chrono::seconds kLateMargin{1};
// deliver()'s `on_written` for callbacks nobody waits for.
const std::function<void()> kNothing;

asio::awaitable<void> sleep_until(asio::steady_timer& timer, Clock::time_point when) {
  timer.expires_at(when);
  boost::system::error_code ignored;  // cancellation only happens at shutdown
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

// Opens the gate when the first callback is over, whichever way it ends (given up before it was
// written, or the coroutine destroyed at shutdown): the session never waits for nothing.
struct OpenGateOnExit {
  explicit OpenGateOnExit(std::shared_ptr<EarlyCallbackGate> g) : gate(std::move(g)) {}
  std::shared_ptr<EarlyCallbackGate> gate;
  OpenGateOnExit(const OpenGateOnExit&) = delete;
  OpenGateOnExit& operator=(const OpenGateOnExit&) = delete;
  ~OpenGateOnExit() {
    if (gate) gate->open();
  }
};

}  // namespace

EarlyCallbackGate::EarlyCallbackGate(const asio::any_io_executor& session_executor)
    : executor_(session_executor), timer_(session_executor) {}

void EarlyCallbackGate::open() {
  asio::post(executor_, [self = shared_from_this()] {
    self->opened_ = true;
    self->timer_.cancel();
  });
}

asio::awaitable<bool> EarlyCallbackGate::wait(std::chrono::milliseconds bound) {
  // No suspension between this check and the wait below, and open()'s handler runs on this
  // executor: it either ran before the check or cancels the pending wait.
  if (opened_) co_return true;
  timer_.expires_after(bound);
  boost::system::error_code ignored;  // cancelled by open(), or expired
  co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  co_return opened_;
}

CallbackRunner::CallbackRunner(const SimConfig& config, GuardedTruth& truth, CallbackClient& client)
    : config_(config), truth_(truth), client_(client) {}

void CallbackRunner::start(const MoneyMovement& movement, Destination destination,
                           Clock::time_point accepted_at, std::shared_ptr<EarlyCallbackGate> gate) {
  asio::co_spawn(client_.strand(),
                 run(movement, std::move(destination), accepted_at, std::move(gate)),
                 [id = movement.money_movement_id](std::exception_ptr error) {
                   if (!error) return;
                   try {
                     std::rethrow_exception(error);
                   } catch (const std::exception& e) {
                     spdlog::error("callback script of movement {} failed: {}", id, e.what());
                   }
                 });
}

asio::awaitable<std::optional<unsigned>> CallbackRunner::deliver(
    const Destination& destination, const std::string& body, Clock::time_point window_end,
    asio::steady_timer& timer, const std::function<void()>& on_written) {
  auto backoff = kRetryBackoffInitial;
  for (;;) {
    const auto now = Clock::now();
    if (now >= window_end) co_return std::nullopt;
    {
      std::lock_guard lock(truth_.mutex);
      ++truth_.book.counters().callback_attempts;
    }
    auto status = co_await client_.post(destination, kCallbackTarget, body, window_end, on_written);
    // An attempt that never wrote its request (no connection) holds nobody back either.
    if (on_written) on_written();
    // 2xx and 4xx are the service's final word; 5xx and no answer mean "try again".
    if (status && *status < 500) co_return status;
    co_await sleep_until(timer, std::min(Clock::now() + backoff, window_end));
    backoff = std::min(backoff * 2, kRetryBackoffMax);
  }
}

asio::awaitable<void> CallbackRunner::run(MoneyMovement movement, Destination destination,
                                          Clock::time_point accepted_at,
                                          std::shared_ptr<EarlyCallbackGate> gate) {
  const std::uint64_t id = movement.money_movement_id;
  const CallbackScript script = generate_script(config_.seed, id, movement.amount_cents,
                                                movement.time_to_settle_seconds, config_.script);
  // The server decided with decide_early_callback, as generate_script did; a script without
  // callbacks has nothing to send first.
  assert(!script.first_before_answer || gate);
  OpenGateOnExit first_written{script.first_before_answer ? std::move(gate) : nullptr};
  if (gate) gate->open();  // a gate, but no callback to send: the answer need not wait
  const std::function<void()> open_gate = [&first_written] {
    if (first_written.gate) first_written.gate->open();
  };

  const Clock::time_point window_end =
      accepted_at + std::chrono::seconds(movement.time_to_settle_seconds);
  asio::steady_timer timer(co_await asio::this_coro::executor);

  for (std::size_t index = 0; index < script.steps.size(); ++index) {
    const CallbackStep& step = script.steps[index];
    co_await sleep_until(timer, accepted_at + step.offset);
    // A slow predecessor may have eaten the window; the rest of the script is not sent.
    if (Clock::now() >= window_end) break;
    {
      std::lock_guard lock(truth_.mutex);
      truth_.book.on_callback_sent(id);
    }
    const std::string body = callback_body(id, step);
    // Named, not a temporary in the co_await expression (GCC 12 coroutines, see Writer::run).
    const std::function<void()>& on_written = index == 0 ? open_gate : kNothing;
    const auto status = co_await deliver(destination, body, window_end, timer, on_written);
    if (index == 0) {
      open_gate();  // in case no attempt was written (the window closed first)
      first_written.gate.reset();
    }
    {
      std::lock_guard lock(truth_.mutex);
      if (status == 201U) {
        truth_.book.on_callback_acknowledged(id, step.amount_cents, step.status);
      } else {
        truth_.book.on_callback_not_acknowledged(id, step.amount_cents, step.status, status);
      }
    }
    if (status && *status != 201U) {
      spdlog::warn("movement {}: callback {}/{} {} answered {} (not acknowledged)", id, index + 1,
                   script.steps.size(), body, *status);
    } else {
      spdlog::debug("movement {}: callback {}/{} {} -> {}", id, index + 1, script.steps.size(),
                    body, status ? std::to_string(*status) : std::string("no answer"));
    }
  }

  if (script.late_step) co_await run_late(movement, destination, *script.late_step, timer);

  std::lock_guard lock(truth_.mutex);
  truth_.book.on_script_finished(id);
}

asio::awaitable<void> CallbackRunner::run_late(const MoneyMovement& movement,
                                               const Destination& destination,
                                               const CallbackStep& step,
                                               asio::steady_timer& timer) {
  const std::uint64_t id = movement.money_movement_id;
  // The service's deadline counts from the last time it sent the request, so wait until that
  // moment plus the settle window, the grace and a margin; re-check because the service may
  // have re-sent the request while we slept.
  for (;;) {
    Clock::time_point late_at;
    {
      std::lock_guard lock(truth_.mutex);
      const MovementTruth* truth = truth_.book.find(id);
      late_at = truth->last_request_at + std::chrono::seconds(movement.time_to_settle_seconds) +
                config_.settle_grace + kLateMargin;
    }
    if (Clock::now() >= late_at) break;
    co_await sleep_until(timer, late_at);
  }

  const std::string body = callback_body(id, step);
  {
    std::lock_guard lock(truth_.mutex);
    ++truth_.book.counters().late_sent;
  }
  const auto window_end = Clock::now() + kLateDeliveryWindow;
  const auto status = co_await deliver(destination, body, window_end, timer, kNothing);
  std::lock_guard lock(truth_.mutex);
  SimCounters& counters = truth_.book.counters();
  if (!status) {
    ++counters.late_unanswered;
  } else if (*status == 409U) {
    ++counters.late_answered_409;
  } else {
    ++counters.late_answered_other;
    spdlog::warn("movement {}: late callback {} answered {} (expected 409)", id, body, *status);
  }
}

}  // namespace provider_sim
