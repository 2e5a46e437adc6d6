#include "app/readers.hpp"

namespace ps::app {

Readers::Readers(const std::string& database_url, std::size_t threads)
    : url_(database_url), pool_(threads) {}

Readers::~Readers() {
  stop();
}

void Readers::stop() {
  pool_.join();
}

Readers::Lease::Lease(Readers& r) : readers(r) {
  {
    const std::lock_guard lock(r.mutex_);
    if (!r.free_.empty()) {
      store = std::move(r.free_.back());
      r.free_.pop_back();
    }
  }
  if (!store) {
    store = store::open_store(r.url_, store::StoreOptions{.durable = true, .read_only = true});
  }
}

Readers::Lease::~Lease() {
  if (!store) return;
  const std::lock_guard lock(readers.mutex_);
  readers.free_.push_back(std::move(store));
}

}  // namespace ps::app
