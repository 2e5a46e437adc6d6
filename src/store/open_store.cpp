#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"

namespace ps::store {

std::unique_ptr<Store> open_store(const std::string& url, const StoreOptions& options) {
  constexpr std::string_view kSqlite = "sqlite:";
  if (url.starts_with(kSqlite)) {
    const std::string path = url.substr(kSqlite.size());
    if (path.empty()) throw StoreError("DATABASE_URL sqlite: needs a file path");
    return sqlite::open_sqlite_store(path, options);
  }
  throw StoreError("unsupported DATABASE_URL (expected sqlite:PATH): " + url);
}

}  // namespace ps::store
