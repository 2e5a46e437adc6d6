#pragma once
// Store-neutral read access for tests: the same SQL against the service's SQLite file or its
// PostgreSQL database, rows as SqlRow (integers of any width as integers, NULL as monostate, the
// rest as text).

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "test_support/sqlite_reader.hpp"

namespace test_support {

class DatabaseReader {
 public:
  // "sqlite:PATH" (or a bare path), or a PostgreSQL URI ("postgresql://..." / "postgres://...").
  explicit DatabaseReader(const std::string& url);
  ~DatabaseReader();
  DatabaseReader(const DatabaseReader&) = delete;
  DatabaseReader& operator=(const DatabaseReader&) = delete;

  [[nodiscard]] std::vector<SqlRow> query(std::string_view sql) const;
  // First column of the first row as an integer; throws when there is no row or it is NULL.
  [[nodiscard]] std::int64_t scalar_int(std::string_view sql) const;
  void exec(std::string_view sql) const;
  // Starts a read transaction in which every query sees one snapshot; ends with exec("COMMIT").
  void begin_snapshot() const;

 private:
  struct Postgres;
  std::unique_ptr<SqliteReader> sqlite_;
  std::unique_ptr<Postgres> postgres_;
};

// check_ledger_invariants (sqlite_reader.hpp) for either store.
std::vector<std::string> check_ledger_invariants(const DatabaseReader& db);
std::vector<std::string> check_ledger_invariants_at(const std::string& url);

}  // namespace test_support
