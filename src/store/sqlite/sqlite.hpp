#pragma once
// A small RAII layer over the SQLite C API: a connection and prepared statements. Every SQLite
// failure becomes a StoreError with SQLite's own message and the fault its result code means.

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/store.hpp"

namespace ps::store::sqlite {

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, std::int64_t v);
  Statement& bind(int index, std::string_view v);
  Statement& bind(int index, const std::string& v) { return bind(index, std::string_view(v)); }
  Statement& bind(int index, const char* v) { return bind(index, std::string_view(v)); }
  Statement& bind(int index, const std::optional<std::int64_t>& v);
  Statement& bind(int index, const std::optional<std::string>& v);
  Statement& bind_null(int index);

  bool step();  // true while a row is available
  void run();   // step to completion (for statements without rows), then reset
  void reset() noexcept;

  std::int64_t int64(int col) const;
  std::optional<std::int64_t> optional_int64(int col) const;
  std::string text(int col) const;
  std::optional<std::string> optional_text(int col) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

class Connection {
 public:
  Connection(const std::string& path, bool read_only);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void exec(const char* sql);
  sqlite3* handle() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

[[noreturn]] void fail(sqlite3* db, std::string_view what);

// What an SQLite result code says about the store (see StoreFault).
StoreFault fault_of(int result_code);

}  // namespace ps::store::sqlite
