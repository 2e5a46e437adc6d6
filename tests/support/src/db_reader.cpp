#include "test_support/db_reader.hpp"

#include <sqlite3.h>

#include <memory>
#include <sstream>
#include <stdexcept>

#include "test_support/postgres.hpp"
#include "test_support/sqlite_reader.hpp"

namespace test_support {

std::string describe(const SqlValue& value) {
  if (std::holds_alternative<std::monostate>(value)) {
    return "NULL";
  }
  if (const auto* i = std::get_if<std::int64_t>(&value)) {
    return std::to_string(*i);
  }
  if (const auto* d = std::get_if<double>(&value)) {
    return std::to_string(*d);
  }
  return "'" + std::get<std::string>(value) + "'";
}

std::size_t SqlRow::index_of(std::string_view column) const {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == column) {
      return i;
    }
  }
  throw std::runtime_error("no column " + std::string(column));
}

std::int64_t SqlRow::integer(std::size_t i) const {
  if (const auto* value = std::get_if<std::int64_t>(&values.at(i))) {
    return *value;
  }
  throw std::runtime_error("column " + columns.at(i) +
                           " is not an integer: " + describe(values.at(i)));
}

std::string SqlRow::text(std::size_t i) const {
  if (const auto* value = std::get_if<std::string>(&values.at(i))) {
    return *value;
  }
  throw std::runtime_error("column " + columns.at(i) + " is not text: " + describe(values.at(i)));
}

std::int64_t SqlRow::integer(std::string_view column) const {
  return integer(index_of(column));
}
std::string SqlRow::text(std::string_view column) const {
  return text(index_of(column));
}

std::int64_t DbReader::scalar_int(std::string_view sql, const std::vector<SqlValue>& params) const {
  const auto rows = query(sql, params);
  if (rows.empty() || rows.front().values.empty()) {
    throw std::runtime_error("no row for: " + std::string(sql));
  }
  return rows.front().integer(0);
}

std::unique_ptr<DbReader> open_reader(const std::string& database_url) {
  if (database_url.starts_with("postgresql://") || database_url.starts_with("postgres://")) {
    return std::make_unique<PostgresReader>(database_url);
  }
  return std::make_unique<SqliteReader>(database_url);
}

void write_sql(const std::string& database_url, std::string_view sql) {
  if (database_url.starts_with("postgresql://") || database_url.starts_with("postgres://")) {
    PostgresReader(database_url).exec(sql);
    return;
  }
  const std::string path =
      database_url.starts_with("sqlite:") ? database_url.substr(7) : database_url;
  sqlite3* db = nullptr;
  const int opened = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  const std::unique_ptr<sqlite3, int (*)(sqlite3*)> owner(db, sqlite3_close_v2);
  sqlite3_busy_timeout(db, 5000);
  const std::string text(sql);
  char* error = nullptr;
  if (opened != SQLITE_OK ||
      sqlite3_exec(db, text.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string message = error != nullptr ? error : sqlite3_errmsg(db);
    sqlite3_free(error);
    throw std::runtime_error("write_sql: " + message + " in: " + text);
  }
}

std::vector<std::string> check_ledger_invariants(const DbReader& db) {
  std::vector<std::string> violations;
  try {
    // One read transaction: every check sees the same committed snapshot even while the
    // service keeps writing.
    db.begin_snapshot();
    struct Commit {
      const DbReader& db;
      ~Commit() {
        try {
          db.end_snapshot();
        } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch)
        }
      }
    } commit{db};

    // 1 and 2: stored balances against the sums over payments.
    for (const auto& row : db.query(R"SQL(
        SELECT a.account_id, a.balance, a.settled_balance,
          (SELECT COALESCE(SUM(p.amount_cents), 0) FROM payments p
             WHERE p.account_id = a.account_id AND p.status <> 'rejected') AS expected_balance,
          (SELECT COALESCE(SUM(p.amount_cents), 0) FROM payments p
             WHERE p.account_id = a.account_id AND p.status = 'posted') AS expected_settled
        FROM accounts a ORDER BY a.account_id)SQL")) {
      const auto account = row.integer("account_id");
      if (row.integer("balance") != row.integer("expected_balance")) {
        std::ostringstream out;
        out << "invariant 1: account " << account << " balance " << row.integer("balance")
            << " != sum of non-rejected payments " << row.integer("expected_balance");
        violations.push_back(out.str());
      }
      if (row.integer("settled_balance") != row.integer("expected_settled")) {
        std::ostringstream out;
        out << "invariant 2: account " << account << " settled_balance "
            << row.integer("settled_balance") << " != sum of posted payments "
            << row.integer("expected_settled");
        violations.push_back(out.str());
      }
    }
    for (const auto& row : db.query(R"SQL(
        SELECT money_movement_id, account_id FROM payments
        WHERE account_id NOT IN (SELECT account_id FROM accounts))SQL")) {
      std::ostringstream out;
      out << "invariants 1/2: payment " << row.integer(0) << " belongs to missing account "
          << row.integer(1);
      violations.push_back(out.str());
    }

    // 3: each payment equals its newest event that changed it.
    for (const auto& row : db.query(R"SQL(
        SELECT p.money_movement_id, p.amount_cents, p.status,
               e.event_id, e.kind, e.amount_cents AS event_amount, e.status AS event_status
        FROM payments p
        LEFT JOIN events e ON e.event_id = (
          SELECT MAX(x.event_id) FROM events x
          WHERE x.money_movement_id = p.money_movement_id AND x.kind <> 'callback_late')
        ORDER BY p.money_movement_id)SQL")) {
      const auto id = row.integer("money_movement_id");
      if (row.is_null(row.index_of("event_id"))) {
        violations.push_back("invariant 3: payment " + std::to_string(id) + " has no event");
        continue;
      }
      const auto& event_amount = row.values.at(row.index_of("event_amount"));
      const auto& event_status = row.values.at(row.index_of("event_status"));
      if (event_amount != row.values.at(row.index_of("amount_cents")) ||
          event_status != row.values.at(row.index_of("status"))) {
        std::ostringstream out;
        out << "invariant 3: payment " << id << " is (" << row.integer("amount_cents") << ", "
            << row.text("status") << ") but its newest event " << row.integer("event_id") << " ("
            << row.text("kind") << ") says (" << describe(event_amount) << ", "
            << describe(event_status) << ")";
        violations.push_back(out.str());
      }
    }

    // 4: each account equals the balances recorded by its newest event.
    for (const auto& row : db.query(R"SQL(
        SELECT a.account_id, a.balance, a.settled_balance,
               e.event_id, e.kind, e.balance_after, e.settled_balance_after
        FROM accounts a
        LEFT JOIN events e ON e.event_id = (
          SELECT MAX(x.event_id) FROM events x WHERE x.account_id = a.account_id)
        ORDER BY a.account_id)SQL")) {
      const auto account = row.integer("account_id");
      if (row.is_null(row.index_of("event_id"))) {
        violations.push_back("invariant 4: account " + std::to_string(account) + " has no event");
        continue;
      }
      if (row.integer("balance") != row.integer("balance_after") ||
          row.integer("settled_balance") != row.integer("settled_balance_after")) {
        std::ostringstream out;
        out << "invariant 4: account " << account << " has balance " << row.integer("balance")
            << "/settled " << row.integer("settled_balance") << " but its newest event "
            << row.integer("event_id") << " (" << row.text("kind") << ") says "
            << row.integer("balance_after") << "/" << row.integer("settled_balance_after");
        violations.push_back(out.str());
      }
    }

    // negative_since (docs/decisions.md, storage schema): the start of the current negative
    // settled run, so it is set exactly while settled_balance < 0.
    for (const auto& row : db.query(R"SQL(
        SELECT account_id, settled_balance, negative_since FROM accounts
        WHERE (settled_balance < 0) <> (negative_since IS NOT NULL)
        ORDER BY account_id)SQL")) {
      std::ostringstream out;
      out << "negative_since: account " << row.integer("account_id") << " has settled_balance "
          << row.integer("settled_balance") << " but negative_since "
          << describe(row.values.at(row.index_of("negative_since")))
          << " (must be set exactly while settled_balance < 0)";
      violations.push_back(out.str());
    }
  } catch (const std::exception& error) {
    violations.push_back(std::string("cannot check invariants: ") + error.what());
  }
  return violations;
}

std::vector<std::string> check_ledger_invariants(const std::string& database_url) {
  try {
    return check_ledger_invariants(*open_reader(database_url));
  } catch (const std::exception& error) {
    return {std::string("cannot check invariants: ") + error.what()};
  }
}

}  // namespace test_support
