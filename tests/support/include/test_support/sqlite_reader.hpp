#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "test_support/db_reader.hpp"

struct sqlite3;

namespace test_support {

// Read-only connection to the service's SQLite file (WAL-safe, busy timeout 5 s).
class SqliteReader final : public DbReader {
 public:
  // Accepts a path or a "sqlite:PATH" database URL.
  explicit SqliteReader(const std::filesystem::path& db_path);
  ~SqliteReader();
  SqliteReader(const SqliteReader&) = delete;
  SqliteReader& operator=(const SqliteReader&) = delete;
  SqliteReader(SqliteReader&&) = delete;
  SqliteReader& operator=(SqliteReader&&) = delete;

  // Runs one statement with positional parameters (?1, ?2 ... or ?). Throws on error.
  [[nodiscard]] std::vector<SqlRow> query(std::string_view sql,
                                          const std::vector<SqlValue>& params = {}) const override;
  void exec(std::string_view sql) const override;  // e.g. BEGIN / COMMIT
  void begin_snapshot() const override { exec("BEGIN"); }
  void end_snapshot() const override { exec("COMMIT"); }

 private:
  sqlite3* db_ = nullptr;
};

// check_ledger_invariants (db_reader.hpp) of a SQLite file.
std::vector<std::string> check_ledger_invariants(const std::filesystem::path& db_path);

}  // namespace test_support
