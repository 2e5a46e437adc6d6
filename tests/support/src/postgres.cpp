#include "test_support/postgres.hpp"

#include <libpq-fe.h>

#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <memory>
#include <stdexcept>

namespace test_support {
namespace {

using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

pg_conn* connect(const std::string& url) {
  pg_conn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("cannot connect to " + url + ": " + message);
  }
  return conn;
}

Result checked(pg_conn* conn, PGresult* raw, std::string_view sql) {
  Result result(raw, &PQclear);
  const auto status = PQresultStatus(raw);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error("postgres: " + std::string(PQerrorMessage(conn)) +
                             " in: " + std::string(sql));
  }
  return result;
}

// ?1, ?2 ... or ? (the SQLite spellings the tests use) to $1, $2 ..., outside quoted strings.
std::string dollar_placeholders(std::string_view sql) {
  std::string out;
  bool quoted = false;
  int unnumbered = 0;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'') quoted = !quoted;
    if (quoted || c != '?') {
      out.push_back(c);
      continue;
    }
    out.push_back('$');
    const bool numbered = i + 1 < sql.size() && sql[i + 1] >= '0' && sql[i + 1] <= '9';
    if (!numbered) out += std::to_string(++unnumbered);
  }
  return out;
}

bool is_integer_type(Oid type) {
  constexpr Oid kInt8 = 20;
  constexpr Oid kInt2 = 21;
  constexpr Oid kInt4 = 23;
  return type == kInt8 || type == kInt2 || type == kInt4;
}

// SUM(bigint) is numeric in PostgreSQL (bigint in SQLite): a whole numeric value that fits reads
// as an integer, so the same query reads the same on both stores (the invariant check sums).
std::optional<std::int64_t> whole_numeric(Oid type, const char* text) {
  constexpr Oid kNumeric = 1700;
  if (type != kNumeric) return std::nullopt;
  std::int64_t v = 0;
  const std::string_view s(text);
  const auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (error != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<std::string> postgres_admin_url() {
  const char* url = std::getenv("PS_TEST_POSTGRES_URL");
  if (url == nullptr || *url == '\0') return std::nullopt;
  return std::string(url);
}

bool postgres_required() {
  const char* required = std::getenv("PS_REQUIRE_POSTGRES");
  return required != nullptr && std::string_view(required) == "1";
}

std::string with_database(const std::string& url, std::string_view database) {
  const auto authority = url.find("://");
  if (authority == std::string::npos) throw std::runtime_error("not a URL: " + url);
  const auto query = url.find('?', authority + 3);
  const auto path = url.find('/', authority + 3);
  const auto host_end = path != std::string::npos && (query == std::string::npos || path < query)
                            ? path
                            : (query == std::string::npos ? url.size() : query);
  std::string out = url.substr(0, host_end) + "/" + std::string(database);
  if (query != std::string::npos) out += url.substr(query);
  return out;
}

void postgres_exec(const std::string& url, const std::string& sql) {
  PostgresReader(url).exec(sql);
}

TestDatabase::TestDatabase() {
  const auto admin = postgres_admin_url();
  if (!admin) throw std::runtime_error("PS_TEST_POSTGRES_URL is not set");
  admin_url_ = *admin;
  static std::atomic<int> counter{0};
  name_ = "ps_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  postgres_exec(admin_url_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  postgres_exec(admin_url_, "CREATE DATABASE " + name_);
  url_ = with_database(admin_url_, name_);
}

TestDatabase::~TestDatabase() {
  if (std::getenv("TEST_KEEP_TEMP") != nullptr) return;
  try {
    postgres_exec(admin_url_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): the cluster goes away anyway
  }
}

PostgresReader::PostgresReader(const std::string& url) : conn_(connect(url)) {}

PostgresReader::~PostgresReader() {
  PQfinish(conn_);
}

void PostgresReader::exec(std::string_view sql) const {
  const std::string text(sql);
  checked(conn_, PQexec(conn_, text.c_str()), sql);
}

std::vector<SqlRow> PostgresReader::query(std::string_view sql,
                                          const std::vector<SqlValue>& params) const {
  const std::string text = dollar_placeholders(sql);
  std::vector<std::string> values;
  std::vector<const char*> pointers;
  values.reserve(params.size());
  for (const auto& p : params) {
    if (std::holds_alternative<std::monostate>(p)) {
      values.emplace_back();
    } else if (const auto* i = std::get_if<std::int64_t>(&p)) {
      values.push_back(std::to_string(*i));
    } else if (const auto* d = std::get_if<double>(&p)) {
      values.push_back(std::to_string(*d));
    } else {
      values.push_back(std::get<std::string>(p));
    }
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    pointers.push_back(std::holds_alternative<std::monostate>(params[i]) ? nullptr
                                                                         : values[i].c_str());
  }
  const auto result = checked(conn_,
                              PQexecParams(conn_, text.c_str(), static_cast<int>(params.size()),
                                           nullptr, pointers.data(), nullptr, nullptr, 0),
                              sql);
  const int rows = PQntuples(result.get());
  const int columns = PQnfields(result.get());
  std::vector<std::string> names;
  for (int c = 0; c < columns; ++c) names.emplace_back(PQfname(result.get(), c));
  std::vector<SqlRow> out;
  for (int r = 0; r < rows; ++r) {
    SqlRow row;
    row.columns = names;
    for (int c = 0; c < columns; ++c) {
      if (PQgetisnull(result.get(), r, c) != 0) {
        row.values.emplace_back(std::monostate{});
      } else if (is_integer_type(PQftype(result.get(), c))) {
        row.values.emplace_back(std::int64_t{std::stoll(PQgetvalue(result.get(), r, c))});
      } else if (const auto whole =
                     whole_numeric(PQftype(result.get(), c), PQgetvalue(result.get(), r, c))) {
        row.values.emplace_back(*whole);
      } else {
        row.values.emplace_back(std::string(PQgetvalue(result.get(), r, c)));
      }
    }
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace test_support
