#include "unit_support.hpp"

#include <sqlite3.h>
#include <stdlib.h>

#include <stdexcept>
#include <system_error>

namespace ps::unit {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "ps_unit_XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp");
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

SqlReader::SqlReader(const std::string& path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    const std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close_v2(db_);
    throw std::runtime_error("open " + path + ": " + message);
  }
  sqlite3_busy_timeout(db_, 5000);
}

SqlReader::~SqlReader() {
  sqlite3_close_v2(db_);
}

std::vector<std::vector<std::optional<std::string>>> SqlReader::rows(const std::string& sql) const {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    throw std::runtime_error("prepare '" + sql + "': " + sqlite3_errmsg(db_));
  }
  std::vector<std::vector<std::optional<std::string>>> out;
  int rc = 0;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    std::vector<std::optional<std::string>> row;
    for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
      if (sqlite3_column_type(stmt, c) == SQLITE_NULL) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt, c)));
      }
    }
    out.push_back(std::move(row));
  }
  const std::string message = sqlite3_errmsg(db_);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) throw std::runtime_error("step '" + sql + "': " + message);
  return out;
}

std::int64_t SqlReader::scalar(const std::string& sql) const {
  const auto r = rows(sql);
  if (r.size() != 1 || r.front().size() != 1 || !r.front().front()) {
    throw std::runtime_error("not a scalar: " + sql);
  }
  return std::stoll(*r.front().front());
}

namespace {

std::string join(const std::vector<std::optional<std::string>>& row) {
  std::string out;
  for (const auto& v : row) {
    if (!out.empty()) out += " | ";
    out += v.value_or("NULL");
  }
  return out;
}

}  // namespace

std::vector<std::string> ledger_invariant_violations(const std::string& db_path) {
  const SqlReader db(db_path);
  std::vector<std::string> violations;
  const auto check = [&](const char* name, const std::string& sql) {
    for (const auto& row : db.rows(sql)) violations.push_back(std::string(name) + ": " + join(row));
  };

  check("1 balance = sum of non-rejected amounts",
        "SELECT a.account_id, a.balance, "
        "(SELECT COALESCE(SUM(p.amount_cents), 0) FROM payments p "
        " WHERE p.account_id = a.account_id AND p.status <> 'rejected') AS expected "
        "FROM accounts a WHERE a.balance <> expected");
  check("2 settled_balance = sum of posted amounts",
        "SELECT a.account_id, a.settled_balance, "
        "(SELECT COALESCE(SUM(p.amount_cents), 0) FROM payments p "
        " WHERE p.account_id = a.account_id AND p.status = 'posted') AS expected "
        "FROM accounts a WHERE a.settled_balance <> expected");
  check("3 payment equals its newest non-late event",
        "SELECT p.money_movement_id, p.amount_cents, p.status, e.amount_cents, e.status, e.kind "
        "FROM payments p LEFT JOIN events e ON e.event_id = ("
        " SELECT MAX(event_id) FROM events x WHERE x.money_movement_id = p.money_movement_id "
        " AND x.kind <> 'callback_late') "
        "WHERE e.event_id IS NULL OR e.amount_cents IS NOT p.amount_cents "
        "OR e.status IS NOT p.status");
  check("4 account balances equal the newest event's *_after",
        "SELECT a.account_id, a.balance, a.settled_balance, e.balance_after, "
        "e.settled_balance_after FROM accounts a LEFT JOIN events e ON e.event_id = ("
        " SELECT MAX(event_id) FROM events x WHERE x.account_id = a.account_id) "
        "WHERE e.event_id IS NULL OR e.balance_after <> a.balance "
        "OR e.settled_balance_after <> a.settled_balance");
  check("negative_since is set exactly while settled_balance < 0",
        "SELECT account_id, settled_balance, negative_since FROM accounts "
        "WHERE (settled_balance < 0) <> (negative_since IS NOT NULL)");
  return violations;
}

}  // namespace ps::unit
