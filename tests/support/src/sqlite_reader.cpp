#include "test_support/sqlite_reader.hpp"

#include <sqlite3.h>

#include <stdexcept>

namespace test_support {
namespace {

std::filesystem::path strip_url(const std::filesystem::path& path) {
  const std::string text = path.string();
  constexpr std::string_view kScheme = "sqlite:";
  if (text.rfind(kScheme, 0) == 0) {
    return text.substr(kScheme.size());
  }
  return path;
}

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql) {
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
        SQLITE_OK) {
      throw std::runtime_error("sqlite prepare failed: " + std::string(sqlite3_errmsg(db)) +
                               " in: " + std::string(sql));
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement(Statement&&) = delete;
  Statement& operator=(Statement&&) = delete;
  [[nodiscard]] sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace

SqliteReader::SqliteReader(const std::filesystem::path& db_path) {
  const auto path = strip_url(db_path);
  if (!std::filesystem::exists(path)) {
    throw std::runtime_error("database file does not exist: " + path.string());
  }
  const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error("cannot open " + path.string() + " read-only: " + message);
  }
  sqlite3_busy_timeout(db_, 5000);
}

SqliteReader::~SqliteReader() {
  sqlite3_close(db_);
}

void SqliteReader::exec(std::string_view sql) const {
  char* error = nullptr;
  const std::string text(sql);
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string message = error != nullptr ? error : "unknown error";
    sqlite3_free(error);
    throw std::runtime_error("sqlite exec failed: " + message + " in: " + text);
  }
}

std::vector<SqlRow> SqliteReader::query(std::string_view sql,
                                        const std::vector<SqlValue>& params) const {
  const Statement stmt(db_, sql);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const int index = static_cast<int>(i) + 1;
    const auto& param = params[i];
    int rc = SQLITE_OK;
    if (std::holds_alternative<std::monostate>(param)) {
      rc = sqlite3_bind_null(stmt.get(), index);
    } else if (const auto* integer = std::get_if<std::int64_t>(&param)) {
      rc = sqlite3_bind_int64(stmt.get(), index, *integer);
    } else if (const auto* real = std::get_if<double>(&param)) {
      rc = sqlite3_bind_double(stmt.get(), index, *real);
    } else {
      const auto& text = std::get<std::string>(param);
      rc = sqlite3_bind_text(stmt.get(), index, text.data(), static_cast<int>(text.size()),
                             SQLITE_TRANSIENT);
    }
    if (rc != SQLITE_OK) {
      throw std::runtime_error("sqlite bind failed: " + std::string(sqlite3_errmsg(db_)));
    }
  }
  std::vector<std::string> columns;
  const int column_count = sqlite3_column_count(stmt.get());
  columns.reserve(static_cast<std::size_t>(column_count));
  for (int c = 0; c < column_count; ++c) {
    columns.emplace_back(sqlite3_column_name(stmt.get(), c));
  }
  std::vector<SqlRow> rows;
  for (;;) {
    const int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) {
      break;
    }
    if (rc != SQLITE_ROW) {
      throw std::runtime_error("sqlite step failed: " + std::string(sqlite3_errmsg(db_)) +
                               " in: " + std::string(sql));
    }
    SqlRow row;
    row.columns = columns;
    for (int c = 0; c < column_count; ++c) {
      switch (sqlite3_column_type(stmt.get(), c)) {
        case SQLITE_INTEGER:
          row.values.emplace_back(static_cast<std::int64_t>(sqlite3_column_int64(stmt.get(), c)));
          break;
        case SQLITE_FLOAT:
          row.values.emplace_back(sqlite3_column_double(stmt.get(), c));
          break;
        case SQLITE_NULL:
          row.values.emplace_back(std::monostate{});
          break;
        default: {
          const auto* data = sqlite3_column_blob(stmt.get(), c);
          const int size = sqlite3_column_bytes(stmt.get(), c);
          row.values.emplace_back(data == nullptr ? std::string{}
                                                  : std::string(static_cast<const char*>(data),
                                                                static_cast<std::size_t>(size)));
          break;
        }
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<std::string> check_ledger_invariants(const std::filesystem::path& db_path) {
  try {
    const SqliteReader db(db_path);
    return check_ledger_invariants(db);
  } catch (const std::exception& error) {
    return {std::string("cannot check invariants: ") + error.what()};
  }
}

}  // namespace test_support
