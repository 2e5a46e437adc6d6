#include "store/postgres/pg.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>

namespace ps::store::postgres {

namespace {

// libpq's messages span lines (and indent with tabs): one line for the log.
std::string trimmed(const char* message) {
  std::string out;
  for (const char* c = message == nullptr ? "" : message; *c != '\0'; ++c) {
    const bool space = *c == '\n' || *c == '\t' || *c == ' ';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : *c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::int64_t parse_int64(const char* text, int length) {
  std::int64_t v = 0;
  const auto [end, error] = std::from_chars(text, text + length, v);
  if (error != std::errc() || end != text + length) {
    throw StoreError("expected an integer from the database, got '" +
                     std::string(text, static_cast<std::size_t>(length)) + "'");
  }
  return v;
}

void refuse_nul(std::string_view v) {
  if (v.find('\0') != std::string_view::npos) {
    throw StoreError("a text value holds a NUL byte, which PostgreSQL text cannot store");
  }
}

// One element of an array literal: double-quoted, with '"' and '\' escaped by a backslash, so no
// value can be read as NULL, a separator or a nested array.
std::string quoted_element(std::string_view v) {
  refuse_nul(v);
  std::string out = "\"";
  for (const char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

template <class T, class Element>
std::string array_literal(std::span<const T> v, Element element) {
  std::string out = "{";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ',';
    out += element(v[i]);
  }
  out += '}';
  return out;
}

// Server notices go to the log instead of libpq's default, stderr: NOTICE and below at debug
// level ("relation already exists, skipping"), WARNING at warn (e.g. "the transaction has already
// committed locally" when a session waiting for a synchronous standby is ended).
void log_notice(void* /*arg*/, const PGresult* notice) {
  const char* severity = PQresultErrorField(notice, PG_DIAG_SEVERITY_NONLOCALIZED);
  const std::string message = trimmed(PQresultErrorMessage(notice));
  if (severity != nullptr && std::string_view(severity) == "WARNING") {
    spdlog::warn("database: {}", message);
  } else {
    spdlog::debug("database: {}", message);
  }
}

}  // namespace

StoreFault fault_of(std::string_view sqlstate) {
  if (sqlstate == "40001" || sqlstate == "40P01") return StoreFault::conflict;
  // lock_timeout expired: another transaction held a row or lock this one needs for longer than
  // the limit. Nothing was committed, and running it again may succeed: the same as losing a race.
  if (sqlstate == "55P03") return StoreFault::conflict;
  if (sqlstate == "XX001" || sqlstate == "XX002") return StoreFault::corrupt;  // data, index
  if (sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" ||
      sqlstate == "57P03" || sqlstate.starts_with("53") || sqlstate.starts_with("58") ||
      sqlstate == "25006") {
    // Connection failures, the server shutting down or starting, out of resources (disk full,
    // memory, connections), I/O errors, and a standby refusing writes (after a failover this
    // connection may still point at the old primary): the store may heal by itself.
    return StoreFault::unavailable;
  }
  return StoreFault::none;  // constraints, SQL errors: the statement, not the store
}

bool ends_connection(std::string_view sqlstate) {
  return sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" ||
         sqlstate == "57P03" || sqlstate == "25006";
}

std::int64_t Result::int64(int row, int col) const {
  if (is_null(row, col)) throw StoreError("unexpected NULL from the database");
  return parse_int64(PQgetvalue(r_, row, col), PQgetlength(r_, row, col));
}

std::string Result::text(int row, int col) const {
  return std::string(PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col)));
}

std::optional<std::int64_t> Result::optional_int64(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return int64(row, col);
}

std::optional<std::string> Result::optional_text(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return text(row, col);
}

std::int64_t Result::affected_rows() const {
  const char* n = PQcmdTuples(r_);
  if (n == nullptr || *n == '\0') return 0;
  return parse_int64(n, static_cast<int>(std::strlen(n)));
}

Params& Params::add(std::int64_t v) {
  values_.emplace_back(std::to_string(v));
  return *this;
}

Params& Params::add(std::string_view v) {
  refuse_nul(v);
  values_.emplace_back(std::string(v));
  return *this;
}

Params& Params::add(const std::optional<std::int64_t>& v) {
  return v ? add(*v) : add_null();
}

Params& Params::add(const std::optional<std::string>& v) {
  return v ? add(std::string_view(*v)) : add_null();
}

Params& Params::add_null() {
  values_.emplace_back(std::nullopt);
  return *this;
}

Params& Params::add_array(std::span<const std::int64_t> v) {
  return add_literal(array_literal(v, [](std::int64_t x) { return std::to_string(x); }));
}

Params& Params::add_array(std::span<const std::string> v) {
  return add_literal(array_literal(v, [](const std::string& x) { return quoted_element(x); }));
}

Params& Params::add_literal(std::string literal) {
  values_.emplace_back(std::move(literal));
  return *this;
}

ArrayColumns& ArrayColumns::add(std::int64_t v) {
  return element(std::to_string(v));
}

ArrayColumns& ArrayColumns::add(std::string_view v) {
  return element(quoted_element(v));
}

ArrayColumns& ArrayColumns::add(const std::optional<std::int64_t>& v) {
  return v ? add(*v) : add_null();
}

ArrayColumns& ArrayColumns::add(const std::optional<std::string>& v) {
  return v ? add(std::string_view(*v)) : add_null();
}

ArrayColumns& ArrayColumns::add_null() {
  return element("NULL");  // unquoted: SQL NULL (a quoted "NULL" is the text)
}

ArrayColumns& ArrayColumns::element(std::string_view literal) {
  std::string& column = literals_[added_ % literals_.size()];
  if (added_ >= literals_.size()) column += ',';
  column.append(literal);
  ++added_;
  return *this;
}

Params ArrayColumns::params() const {
  if (added_ % literals_.size() != 0) throw StoreError("a batch row is missing columns");
  Params p;
  for (const std::string& column : literals_) p.add_literal("{" + column + "}");
  return p;
}

const char* const* Params::pointers() const {
  pointers_.clear();
  for (const auto& v : values_) pointers_.push_back(v ? v->c_str() : nullptr);
  return pointers_.data();
}

Connection::Connection(const ConnectionSettings& settings) : answer_limit_(settings.answer_limit) {
  // libpq reads the keywords in order and keeps the last value of each: our defaults first, then
  // the URI (expanded from dbname), so whatever the URI sets wins.
  std::vector<const char*> keywords;
  std::vector<const char*> values;
  for (const auto& [k, v] : settings.defaults) {
    keywords.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keywords.push_back("dbname");
  values.push_back(settings.uri.c_str());
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  conn_ = PQconnectdbParams(keywords.data(), values.data(), /*expand_dbname=*/1);
  if (conn_ == nullptr) throw StoreError("connect: out of memory", StoreFault::unavailable);
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string message = trimmed(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    // A malformed URI is a configuration error, not an outage; libpq says so before connecting.
    throw StoreError("connect: " + message, StoreFault::unavailable);
  }
  PQsetNoticeReceiver(conn_, log_notice, nullptr);
}

Connection::~Connection() {
  PQfinish(conn_);
}

void Connection::fail_connection(std::string_view what, std::string_view reason) {
  broken_ = true;
  throw StoreError(std::string(what) + ": " + std::string(reason), StoreFault::unavailable);
}

Result Connection::exec(const std::string& sql) {
  const std::string what = sql.substr(0, 60);
  if (!usable()) fail_connection(what, "the connection to the database was lost");
  if (PQsendQuery(conn_, sql.c_str()) == 0) fail_connection(what, trimmed(PQerrorMessage(conn_)));
  return finish(what);
}

Result Connection::exec(const Statement& statement, const Params& params) {
  const Query one{.statement = &statement, .params = params};
  return std::move(pipeline(std::span(&one, 1)).front());
}

std::vector<Result> Connection::pipeline(std::span<const Query> queries) {
  const std::string what = queries.size() == 1
                               ? queries.front().statement->name
                               : "pipeline of " + std::to_string(queries.size()) + " statements";
  if (!usable()) fail_connection(what, "the connection to the database was lost");
  // Blocking sends are safe here: the server answers each statement with a few rows at most
  // while the client is still sending, so neither side can fill the other's buffers for good.
  if (PQenterPipelineMode(conn_) == 0) fail_connection(what, trimmed(PQerrorMessage(conn_)));
  // Parameter types are inferred from the SQL text (casts where it is ambiguous). A statement
  // that appears twice is prepared once.
  std::vector<bool> prepares(queries.size(), false);
  std::unordered_set<std::string> preparing;
  for (std::size_t i = 0; i < queries.size(); ++i) {
    const Statement& st = *queries[i].statement;
    if (!prepared_.contains(st.name) && preparing.insert(st.name).second) {
      if (PQsendPrepare(conn_, st.name.c_str(), st.sql.c_str(), 0, nullptr) == 0) {
        fail_connection("prepare " + st.name, trimmed(PQerrorMessage(conn_)));
      }
      prepares[i] = true;
    }
    const Params& p = queries[i].params;
    if (PQsendQueryPrepared(conn_, st.name.c_str(), p.size(), p.pointers(), nullptr, nullptr, 0) ==
        0) {
      fail_connection(st.name, trimmed(PQerrorMessage(conn_)));
    }
  }
  if (PQpipelineSync(conn_) == 0) fail_connection(what, trimmed(PQerrorMessage(conn_)));

  const auto deadline = std::chrono::steady_clock::now() + answer_limit_;
  std::vector<Result> results(queries.size());
  std::optional<std::pair<std::string, Result>> failure;  // the first error, by statement
  // Each step's results end with a nullptr. After a failure the server skips the rest of the
  // pipeline (PGRES_PIPELINE_ABORTED) up to the sync.
  const auto take = [&](const std::string& step) -> Result {
    Result kept;
    for (Result r = next_result(deadline, step); r.get() != nullptr;
         r = next_result(deadline, step)) {
      const auto status = PQresultStatus(r.get());
      if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) {
        if (!failure) failure.emplace(step, std::move(r));
        if (PQstatus(conn_) != CONNECTION_OK) fail_statement(failure->first, failure->second);
      } else if (status != PGRES_PIPELINE_ABORTED) {
        kept = std::move(r);
      }
    }
    return kept;
  };
  for (std::size_t i = 0; i < queries.size(); ++i) {
    const std::string& name = queries[i].statement->name;
    if (prepares[i]) {
      take("prepare " + name);
      if (!failure) prepared_.insert(name);
    }
    results[i] = take(name);
  }
  const Result sync = next_result(deadline, what);
  if (sync.get() == nullptr || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC ||
      PQexitPipelineMode(conn_) == 0) {
    fail_connection(what,
                    "the pipeline did not end as expected: " + trimmed(PQerrorMessage(conn_)));
  }
  if (failure) fail_statement(failure->first, failure->second);
  if (PQstatus(conn_) != CONNECTION_OK) {
    fail_connection(what, "the connection to the database was lost");
  }
  return results;
}

Result Connection::next_result(std::chrono::steady_clock::time_point deadline,
                               std::string_view what) {
  while (PQisBusy(conn_) != 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      // The server (or the network) stopped answering. The connection is given up: whatever
      // is still under way on the server is no longer this connection's business.
      fail_connection(what, "no answer from the database within " +
                                std::to_string(answer_limit_.count()) + " ms");
    }
    pollfd p{.fd = PQsocket(conn_), .events = POLLIN, .revents = 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) {
      fail_connection(what, "poll: " + std::generic_category().message(errno));
    }
    if (ready > 0 && PQconsumeInput(conn_) == 0) break;  // lost: PQgetResult reports it
  }
  return Result(PQgetResult(conn_));
}

Result Connection::finish(std::string_view what) {
  const auto deadline = std::chrono::steady_clock::now() + answer_limit_;
  Result last;
  Result error;  // the first error says why; the rest follow from it
  for (Result r = next_result(deadline, what); r.get() != nullptr;
       r = next_result(deadline, what)) {
    const auto status = PQresultStatus(r.get());
    if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) {
      if (error.get() == nullptr) error = std::move(r);
    } else {
      last = std::move(r);
    }
  }
  if (error.get() != nullptr) fail_statement(what, error);
  if (PQstatus(conn_) != CONNECTION_OK) {
    fail_connection(what, "the connection to the database was lost");
  }
  return last;
}

void Connection::fail_statement(std::string_view what, const Result& error) {
  const char* state = PQresultErrorField(error.get(), PG_DIAG_SQLSTATE);
  const std::string sqlstate = state == nullptr ? "" : state;
  const bool lost = PQstatus(conn_) != CONNECTION_OK || ends_connection(sqlstate);
  if (lost) broken_ = true;
  const StoreFault fault = lost ? StoreFault::unavailable : fault_of(sqlstate);
  throw StoreError(std::string(what) + ": " + trimmed(PQresultErrorMessage(error.get())) +
                       (sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")"),
                   fault);
}

}  // namespace ps::store::postgres
