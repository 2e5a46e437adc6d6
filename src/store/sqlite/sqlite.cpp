#include "store/sqlite/sqlite.hpp"

namespace ps::store::sqlite {

void fail(sqlite3* db, std::string_view what) {
  if (db == nullptr)
    throw StoreError(std::string(what) + ": out of memory", StoreFault::unavailable);
  throw StoreError(std::string(what) + ": " + sqlite3_errmsg(db),
                   fault_of(sqlite3_extended_errcode(db)));
}

StoreFault fault_of(int result_code) {
  // SQLite notices a moved database file itself in some paths (rollback journal mode); in WAL
  // mode the service's own check (verify_identity) does.
  if (result_code == SQLITE_READONLY_DBMOVED) return StoreFault::lost;
  switch (result_code & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return StoreFault::corrupt;
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_NOMEM:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_PERM:
      return StoreFault::unavailable;
    default:  // constraints, type mismatches, SQL errors: the statement, not the store
      return StoreFault::none;
  }
}

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db) {
  if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &stmt_, nullptr) != SQLITE_OK) {
    fail(db, "prepare " + std::string(sql.substr(0, 60)));
  }
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int index, std::int64_t v) {
  if (sqlite3_bind_int64(stmt_, index, v) != SQLITE_OK) fail(db_, "bind");
  return *this;
}

Statement& Statement::bind(int index, std::string_view v) {
  if (sqlite3_bind_text(stmt_, index, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) !=
      SQLITE_OK) {
    fail(db_, "bind");
  }
  return *this;
}

Statement& Statement::bind(int index, const std::optional<std::int64_t>& v) {
  return v ? bind(index, *v) : bind_null(index);
}

Statement& Statement::bind(int index, const std::optional<std::string>& v) {
  return v ? bind(index, std::string_view(*v)) : bind_null(index);
}

Statement& Statement::bind_null(int index) {
  if (sqlite3_bind_null(stmt_, index) != SQLITE_OK) fail(db_, "bind");
  return *this;
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const std::string message = sqlite3_errmsg(db_);
  reset();
  throw StoreError("step: " + message, fault_of(rc));
}

void Statement::run() {
  while (step()) {
  }
  reset();
}

void Statement::reset() noexcept {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t Statement::int64(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

std::optional<std::int64_t> Statement::optional_int64(int col) const {
  if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(stmt_, col);
}

std::string Statement::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}

std::optional<std::string> Statement::optional_text(int col) const {
  if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
  return text(col);
}

Connection::Connection(const std::string& path, bool read_only) {
  const int flags =
      (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
      SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    const std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw StoreError("open " + path + ": " + message, StoreFault::unavailable);
  }
  sqlite3_extended_result_codes(db_, 1);
  // Readers and the writer never wait on each other in WAL mode, but a checkpoint or a
  // migration may hold a lock briefly.
  sqlite3_busy_timeout(db_, 5000);
}

Connection::~Connection() {
  sqlite3_close_v2(db_);
}

void Connection::exec(const char* sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    const std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    throw StoreError(std::string("exec: ") + message, fault_of(rc));
  }
}

}  // namespace ps::store::sqlite
