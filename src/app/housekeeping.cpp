#include "app/housekeeping.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cassert>

namespace ps::app {

namespace asio = boost::asio;

Housekeeping::Housekeeping(Writer& writer, Ledger& ledger, asio::any_io_executor executor,
                           HousekeepingPolicy policy)
    : writer_(writer), ledger_(ledger), executor_(std::move(executor)), policy_(policy) {
  assert(policy_.interval.count() > 0 && policy_.batch > 0);
}

void Housekeeping::start() {
  asio::co_spawn(executor_, loop(), asio::detached);
}

asio::awaitable<void> Housekeeping::loop() {
  asio::steady_timer timer(executor_);
  for (;;) {
    try {
      const std::size_t expired = co_await expire_idempotency_keys();
      if (expired > 0) spdlog::info("expired {} Idempotency-Key(s) past their TTL", expired);
    } catch (const std::exception& e) {
      spdlog::error("expiring Idempotency-Keys failed (retried in {} ms): {}",
                    policy_.interval.count(), e.what());
    }
    timer.expires_after(policy_.interval);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<std::size_t> Housekeeping::expire_idempotency_keys() {
  std::size_t total = 0;
  for (;;) {
    auto op = [this](store::Store& s, TimeMs now, Touched&) {
      return ledger_.expire_idempotency_keys(s, now, policy_.batch);
    };
    const std::size_t deleted = co_await writer_.run<std::size_t>(std::move(op));
    total += deleted;
    if (deleted < policy_.batch) co_return total;
  }
}

}  // namespace ps::app
