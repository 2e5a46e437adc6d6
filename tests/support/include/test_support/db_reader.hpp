#pragma once
// Read access to the service's database in tests, whichever store it uses: a SQLite file or a
// PostgreSQL database (the suite runs against both).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

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

std::string describe(const SqlValue& value);  // for messages: NULL, 42, 'text'

class DbReader {
 public:
  DbReader() = default;
  virtual ~DbReader() = default;
  DbReader(const DbReader&) = delete;
  DbReader& operator=(const DbReader&) = delete;
  DbReader(DbReader&&) = delete;
  DbReader& operator=(DbReader&&) = delete;

  // Runs one statement with positional parameters ?1, ?2 ... (also on PostgreSQL). Integers of
  // any width come back as int64, text as string, NULL as monostate. Throws on error.
  [[nodiscard]] virtual std::vector<SqlRow> query(
      std::string_view sql, const std::vector<SqlValue>& params = {}) const = 0;
  virtual void exec(std::string_view sql) const = 0;
  // Every query between these two sees one committed state, even while the service writes.
  virtual void begin_snapshot() const = 0;
  virtual void end_snapshot() const = 0;

  // First column of the first row as an integer; throws when there is no row or it is NULL.
  [[nodiscard]] std::int64_t scalar_int(std::string_view sql,
                                        const std::vector<SqlValue>& params = {}) const;
};

// "sqlite:PATH" (or a bare path) or "postgresql://..." / "postgres://...".
std::unique_ptr<DbReader> open_reader(const std::string& database_url);

// Runs `sql` with a connection that may write (the readers above may not on SQLite): a test that
// changes the database behind the service's back, as an operator or a bug could. Throws on error.
void write_sql(const std::string& database_url, std::string_view sql);

// Checks the five ledger invariants of docs/decisions.md in one read transaction:
//  1. accounts.balance = SUM(payments.amount_cents WHERE status <> 'rejected') per account
//  2. accounts.settled_balance = SUM(payments.amount_cents WHERE status = 'posted') per account
//  3. each payment's amount_cents/status equal those of its newest non-callback_late event
//  4. each account's balances equal the *_after values of its newest event
//  5. accounts.negative_since (start of the current negative settled run) is set exactly while
//     settled_balance < 0
// Returns one human-readable line per violation (empty when clean). Errors reading the
// database (missing tables, unreadable file) are reported as violations too.
std::vector<std::string> check_ledger_invariants(const DbReader& db);
std::vector<std::string> check_ledger_invariants(const std::string& database_url);
}  // namespace test_support
