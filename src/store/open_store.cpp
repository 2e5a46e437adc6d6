#include "store/postgres/postgres_store.hpp"
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
  // Any libpq connection URI, handed to libpq as it is (several hosts, target_session_attrs...).
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    return postgres::open_postgres_store(url, options);
  }
  // Not quoted back: a URL of another scheme may still carry a password.
  throw StoreError(
      "unsupported DATABASE_URL (expected sqlite:PATH, postgresql://... or postgres://...)");
}

}  // namespace ps::store
