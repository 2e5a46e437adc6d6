#pragma once
#include <memory>
#include <string>

#include "store/store.hpp"

namespace ps::store::postgres {

// `uri`: any libpq connection URI (postgresql://..., several hosts, target_session_attrs...).
std::unique_ptr<Store> open_postgres_store(const std::string& uri, const StoreOptions& options);

}  // namespace ps::store::postgres
