// Plays each accepted movement's callback script against the service and records in the
// truth book what the service acknowledged.
//
// One coroutine per movement: its callbacks are strictly sequential (the next one is sent only
// after the previous was answered or given up), while movements run concurrently. All script
// coroutines run on the callback client's strand; see callback_client.hpp for why.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "callback_client.hpp"
#include "config.hpp"
#include "movement.hpp"
#include "truth.hpp"

namespace provider_sim {

// The truth book shared by server sessions (any thread) and script coroutines (client strand).
struct GuardedTruth {
  std::mutex mutex;
  TruthBook book{kMaxMovements};
};

// --early-callback-rate: the server session holds its answer to a money-movement request until
// the movement's first callback has been written to the service (not answered: the answer is
// not slowed by the service's work), so the callback is on its way before the 201. The session
// waits on its own strand; the runner opens the gate from the callback client's strand by
// posting to the session's executor, so `opened_` is only touched there.
class EarlyCallbackGate : public std::enable_shared_from_this<EarlyCallbackGate> {
 public:
  explicit EarlyCallbackGate(const asio::any_io_executor& session_executor);

  // Callable from any thread, any number of times; the first call opens the gate.
  void open();
  // On the session's executor: returns once the gate is open or `bound` has passed; true when
  // it was opened.
  asio::awaitable<bool> wait(std::chrono::milliseconds bound);

 private:
  asio::any_io_executor executor_;
  asio::steady_timer timer_;
  bool opened_ = false;
};

// The longest a session holds an answer for its early callback: connecting to the service and
// writing one small request normally takes well under a millisecond; waiting for one of the
// kMaxConcurrentCallbacks permits can take longer under load, and the answer must not wait long.
inline constexpr std::chrono::milliseconds kEarlyCallbackWaitMax{100};

class CallbackRunner {
 public:
  CallbackRunner(const SimConfig& config, GuardedTruth& truth, CallbackClient& client);

  // Starts the script of a movement that was just recorded. Callable from any thread. With a
  // `gate` (decide_early_callback said so), the gate opens once the first callback is written,
  // or at once when the script has no callback.
  void start(const MoneyMovement& movement, Destination destination, Clock::time_point accepted_at,
             std::shared_ptr<EarlyCallbackGate> gate = nullptr);

 private:
  asio::awaitable<void> run(MoneyMovement movement, Destination destination,
                            Clock::time_point accepted_at, std::shared_ptr<EarlyCallbackGate> gate);
  asio::awaitable<void> run_late(const MoneyMovement& movement, const Destination& destination,
                                 const CallbackStep& step, asio::steady_timer& timer);
  // Sends one callback, retrying transport failures and 5xx with backoff until `window_end`.
  // Returns the final HTTP status (2xx/4xx), or nullopt when the window closed first.
  // `on_written` runs each time an attempt's request has been written, and after each attempt
  // whether or not it got that far.
  asio::awaitable<std::optional<unsigned>> deliver(const Destination& destination,
                                                   const std::string& body,
                                                   Clock::time_point window_end,
                                                   asio::steady_timer& timer,
                                                   const std::function<void()>& on_written);

  const SimConfig& config_;
  GuardedTruth& truth_;
  CallbackClient& client_;
};

}  // namespace provider_sim
