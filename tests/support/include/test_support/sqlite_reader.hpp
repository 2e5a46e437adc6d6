#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

struct sqlite3;

namespace test_support {

using SqlValue = std::variant<std::monostate, std::int64_t, double, std::string>;

struct SqlRow {
  std::vector<std::string> columns;
  std::vector<SqlValue> values;

  [[nodiscard]] bool is_null(std::size_t i) const {
    return std::holds_alternative<std::monostate>(values.at(i));
  }
  // Throw std::runtime_error when the value has another type.
  [[nodiscard]] std::int64_t integer(std::size_t i) const;
  [[nodiscard]] std::string text(std::size_t i) const;
  [[nodiscard]] std::int64_t integer(std::string_view column) const;
  [[nodiscard]] std::string text(std::string_view column) const;
  [[nodiscard]] std::size_t index_of(std::string_view column) const;
};

// Read-only connection to the service's SQLite file (WAL-safe, busy timeout 5 s).
class SqliteReader {
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
                                          const std::vector<SqlValue>& params = {}) const;
  // First column of the first row as an integer; throws when there is no row or it is NULL.
  [[nodiscard]] std::int64_t scalar_int(std::string_view sql,
                                        const std::vector<SqlValue>& params = {}) const;
  void exec(std::string_view sql) const;  // e.g. BEGIN / COMMIT for a consistent snapshot

 private:
  sqlite3* db_ = nullptr;
};

// Checks the five ledger invariants of docs/decisions.md in one read transaction:
//  1. accounts.balance = SUM(payments.amount_cents WHERE status <> 'rejected') per account
//  2. accounts.settled_balance = SUM(payments.amount_cents WHERE status = 'posted') per account
//  3. each payment's amount_cents/status equal those of its newest non-callback_late event
//  4. each account's balances equal the *_after values of its newest event
//  5. accounts.negative_since (start of the current negative settled run) is set exactly while
//     settled_balance < 0
// Returns one human-readable line per violation (empty when clean). Errors reading the
// database (missing tables, unreadable file) are reported as violations too.
std::vector<std::string> check_ledger_invariants(const std::filesystem::path& db_path);

}  // namespace test_support
