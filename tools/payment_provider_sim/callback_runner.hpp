// Plays each accepted movement's callback script against the service and records in the
// truth book what the service acknowledged.
//
// One coroutine per movement: its callbacks are strictly sequential (the next one is sent only
// after the previous was answered or given up), while movements run concurrently. All script
// coroutines run on the callback client's strand; see callback_client.hpp for why.
#pragma once

#include <mutex>
#include <optional>
#include <string>

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

class CallbackRunner {
 public:
  CallbackRunner(const SimConfig& config, GuardedTruth& truth, CallbackClient& client);

  // Starts the script of a movement that was just recorded. Callable from any thread.
  void start(const MoneyMovement& movement, Destination destination, Clock::time_point accepted_at);

 private:
  asio::awaitable<void> run(MoneyMovement movement, Destination destination,
                            Clock::time_point accepted_at);
  asio::awaitable<void> run_late(const MoneyMovement& movement, const Destination& destination,
                                 const CallbackStep& step, asio::steady_timer& timer);
  // Sends one callback, retrying transport failures and 5xx with backoff until `window_end`.
  // Returns the final HTTP status (2xx/4xx), or nullopt when the window closed first.
  asio::awaitable<std::optional<unsigned>> deliver(const Destination& destination,
                                                   const std::string& body,
                                                   Clock::time_point window_end,
                                                   asio::steady_timer& timer);

  const SimConfig& config_;
  GuardedTruth& truth_;
  CallbackClient& client_;
};

}  // namespace provider_sim
