#pragma once
#include <memory>
#include <string>

#include "store/sqlite/sqlite.hpp"
#include "store/store.hpp"

namespace ps::store::sqlite {

std::unique_ptr<Store> open_sqlite_store(const std::string& path, const StoreOptions& options);

}  // namespace ps::store::sqlite
