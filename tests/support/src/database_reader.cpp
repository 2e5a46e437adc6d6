#include "test_support/database_reader.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <sstream>
#include <stdexcept>

namespace test_support {

namespace {

bool is_postgres(const std::string& url) {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

// Type oids of pg_type (stable across versions): int2, int4, int8, numeric.
constexpr Oid kInt2 = 21;
constexpr Oid kInt4 = 23;
constexpr Oid kInt8 = 20;
constexpr Oid kNumeric = 1700;

std::string describe(const SqlValue& value) {
  if (std::holds_alternative<std::monostate>(value)) return "NULL";
  if (const auto* i = std::get_if<std::int64_t>(&value)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&value)) return std::to_string(*d);
  return "'" + std::get<std::string>(value) + "'";
}

}  // namespace

struct DatabaseReader::Postgres {
  PGconn* conn = nullptr;
  ~Postgres() { PQfinish(conn); }

  PGresult* run(std::string_view sql) const {
    const std::string text(sql);
    PGresult* r = PQexec(conn, text.c_str());
    const auto status = PQresultStatus(r);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      const std::string message = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error("postgres query failed: " + message + " in: " + text);
    }
    return r;
  }
};

DatabaseReader::DatabaseReader(const std::string& url) {
  if (!is_postgres(url)) {
    sqlite_ = std::make_unique<SqliteReader>(url);
    return;
  }
  postgres_ = std::make_unique<Postgres>();
  postgres_->conn = PQconnectdb(url.c_str());
  if (PQstatus(postgres_->conn) != CONNECTION_OK) {
    throw std::runtime_error(std::string("cannot connect to PostgreSQL: ") +
                             PQerrorMessage(postgres_->conn));
  }
  PQclear(postgres_->run("SET default_transaction_read_only = on"));
}

DatabaseReader::~DatabaseReader() = default;

void DatabaseReader::exec(std::string_view sql) const {
  if (sqlite_) {
    sqlite_->exec(sql);
    return;
  }
  PQclear(postgres_->run(sql));
}

void DatabaseReader::begin_snapshot() const {
  exec(sqlite_ ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ");
}

std::vector<SqlRow> DatabaseReader::query(std::string_view sql) const {
  if (sqlite_) return sqlite_->query(sql);
  const std::unique_ptr<PGresult, void (*)(PGresult*)> r(postgres_->run(sql), PQclear);
  const int columns = PQnfields(r.get());
  std::vector<std::string> names;
  for (int c = 0; c < columns; ++c) names.emplace_back(PQfname(r.get(), c));
  std::vector<SqlRow> rows;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    SqlRow row;
    row.columns = names;
    for (int c = 0; c < columns; ++c) {
      if (PQgetisnull(r.get(), i, c) != 0) {
        row.values.emplace_back(std::monostate{});
        continue;
      }
      const std::string text(PQgetvalue(r.get(), i, c),
                             static_cast<std::size_t>(PQgetlength(r.get(), i, c)));
      const Oid type = PQftype(r.get(), c);
      if (type == kInt2 || type == kInt4 || type == kInt8 || type == kNumeric) {
        // SUM(bigint) is numeric in PostgreSQL: an integer as long as it has no fraction.
        std::int64_t v = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (error == std::errc() && end == text.data() + text.size()) {
          row.values.emplace_back(v);
          continue;
        }
      }
      row.values.emplace_back(text);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::int64_t DatabaseReader::scalar_int(std::string_view sql) const {
  const auto rows = query(sql);
  if (rows.empty() || rows.front().values.empty()) {
    throw std::runtime_error("no row for: " + std::string(sql));
  }
  return rows.front().integer(0);
}

std::vector<std::string> check_ledger_invariants(const DatabaseReader& db) {
  std::vector<std::string> violations;
  try {
    // One read transaction: every check sees the same committed snapshot even while the
    // service keeps writing.
    db.begin_snapshot();
    struct Commit {
      const DatabaseReader& db;
      ~Commit() {
        try {
          db.exec("COMMIT");
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

std::vector<std::string> check_ledger_invariants_at(const std::string& url) {
  try {
    const DatabaseReader db(url);
    return check_ledger_invariants(db);
  } catch (const std::exception& error) {
    return {std::string("cannot check invariants: ") + error.what()};
  }
}

}  // namespace test_support
