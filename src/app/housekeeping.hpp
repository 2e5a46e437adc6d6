#pragma once
// Periodic store maintenance on one I/O thread. Today: Idempotency-Keys past their TTL are
// deleted (about 500 bytes each with their indexes: after 200,000 keyed payments they were more
// than the payments and events together), in batches of at most `batch` keys, each its own small
// write job, so no other write waits long behind the sweep.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>

#include "app/ledger.hpp"
#include "app/writer.hpp"

namespace ps::app {

struct HousekeepingPolicy {
  std::chrono::milliseconds interval{60'000};
  std::size_t batch = 1000;
};

class Housekeeping {
 public:
  Housekeeping(Writer& writer, Ledger& ledger, boost::asio::any_io_executor executor,
               HousekeepingPolicy policy);
  void start();

 private:
  boost::asio::awaitable<void> loop();
  boost::asio::awaitable<std::size_t> expire_idempotency_keys();

  Writer& writer_;
  Ledger& ledger_;
  boost::asio::any_io_executor executor_;
  HousekeepingPolicy policy_;
};

}  // namespace ps::app
