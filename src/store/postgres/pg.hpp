#pragma once
// A small RAII layer over libpq: a connection, results, and statements prepared on first use
// with text parameters, sent one at a time or several in one round trip (pipeline mode). Every
// failure becomes a StoreError whose fault says what the SQLSTATE (or the lost connection) means
// for the writer (fault_of). No call waits longer than the connection's answer limit: a server
// that stops answering costs a bounded wait, never a hang.

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "store/store.hpp"

namespace ps::store::postgres {

class Result {
 public:
  Result() = default;
  explicit Result(PGresult* r) : r_(r) {}
  ~Result() { PQclear(r_); }
  Result(Result&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  Result& operator=(Result&& o) noexcept {
    if (this != &o) {
      PQclear(r_);
      r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
  }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;

  int rows() const { return r_ == nullptr ? 0 : PQntuples(r_); }
  bool is_null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  // Throw StoreError when the value is NULL (or not an integer).
  std::int64_t int64(int row, int col) const;
  std::string text(int row, int col) const;
  std::optional<std::int64_t> optional_int64(int row, int col) const;
  std::optional<std::string> optional_text(int row, int col) const;
  // Rows an INSERT/UPDATE/DELETE changed.
  std::int64_t affected_rows() const;
  PGresult* get() const { return r_; }

 private:
  PGresult* r_ = nullptr;
};

// Statement parameters in libpq's text format. Text holding a NUL byte is refused: libpq passes
// parameters as C strings, so it would be cut short silently (and PostgreSQL text cannot hold NUL).
class Params {
 public:
  Params& add(std::int64_t v);
  Params& add(std::string_view v);
  Params& add(const std::string& v) { return add(std::string_view(v)); }
  Params& add(const char* v) { return add(std::string_view(v)); }
  Params& add(const std::optional<std::int64_t>& v);
  Params& add(const std::optional<std::string>& v);
  Params& add_null();
  // Array literals for `= ANY($n::bigint[])` and `unnest($n::text[])`.
  Params& add_array(std::span<const std::int64_t> v);
  Params& add_array(std::span<const std::string> v);
  // An array literal built elsewhere (ArrayColumns).
  Params& add_literal(std::string literal);

  int size() const { return static_cast<int>(values_.size()); }
  // Pointers into this object, valid until it is next changed.
  const char* const* pointers() const;

 private:
  std::vector<std::optional<std::string>> values_;
  mutable std::vector<const char*> pointers_;
};

// Rows for a batch statement, one array parameter per column: a statement such as
// `INSERT ... SELECT * FROM unnest($1::bigint[], $2::text[], ...)` writes any number of rows in one
// execution. Values are added row by row, column after column (the same add() calls as Params), so
// one function can fill either; NULLs are kept. Text holding a NUL byte is refused as in Params.
class ArrayColumns {
 public:
  explicit ArrayColumns(std::size_t columns) : literals_(columns) {}
  ArrayColumns& add(std::int64_t v);
  ArrayColumns& add(std::string_view v);
  ArrayColumns& add(const std::string& v) { return add(std::string_view(v)); }
  ArrayColumns& add(const char* v) { return add(std::string_view(v)); }
  ArrayColumns& add(const std::optional<std::int64_t>& v);
  ArrayColumns& add(const std::optional<std::string>& v);
  ArrayColumns& add_null();

  std::size_t rows() const { return added_ / literals_.size(); }
  // The columns as array parameters, in order (every row complete).
  Params params() const;

 private:
  // The next column's next element, already in array literal syntax.
  ArrayColumns& element(std::string_view literal);

  std::vector<std::string> literals_;  // each column's elements so far, without the braces
  std::size_t added_ = 0;
};

// A statement prepared under `name` on each connection the first time it runs there (and again
// after a reconnect, which starts a new connection with nothing prepared).
struct Statement {
  std::string name;
  std::string sql;
};

// What a SQLSTATE says about the store (see StoreFault).
StoreFault fault_of(std::string_view sqlstate);
// Whether the connection is of no further use after an error with this SQLSTATE (the server
// ended the session, or it is a standby now): the next transaction must connect again.
bool ends_connection(std::string_view sqlstate);

// One statement of a pipeline, with its parameters.
struct Query {
  const Statement* statement;
  Params params;
};

struct ConnectionSettings {
  std::string uri;  // any libpq connection URI or keyword/value string
  // Keyword/value pairs applied unless the URI sets the same keyword.
  std::vector<std::pair<std::string, std::string>> defaults;
  // The longest wait for any one answer of the server; past it the connection is given up.
  std::chrono::milliseconds answer_limit{30'000};
};

class Connection {
 public:
  // Throws StoreError{unavailable} when no server accepts the connection.
  explicit Connection(const ConnectionSettings& settings);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Simple protocol, no parameters; several statements separated by ';' allowed (the result is
  // that of the last one).
  Result exec(const std::string& sql);
  Result exec(const Statement& statement, const Params& params);
  // Sends every query (each prepared first where this connection has not yet) in one round trip
  // and returns their results in order. The server runs them one after the other; the first that
  // fails is thrown (the server skips the rest). Inside a transaction the failure aborts it, as a
  // failing single statement would.
  std::vector<Result> pipeline(std::span<const Query> queries);

  // False once the connection failed (lost, ended by the server, or an answer took too long).
  bool usable() const { return !broken_ && PQstatus(conn_) == CONNECTION_OK; }
  void set_answer_limit(std::chrono::milliseconds limit) { answer_limit_ = limit; }
  PGconn* handle() const { return conn_; }

 private:
  // Waits (bounded) for the answer to the query just sent; throws on any error.
  Result finish(std::string_view what);
  // The next result of what was sent (nullptr: the current query has no more), waiting until
  // `deadline` at most.
  Result next_result(std::chrono::steady_clock::time_point deadline, std::string_view what);
  // Throws the StoreError for an error result of `what` (marking the connection broken when the
  // error ended it).
  [[noreturn]] void fail_statement(std::string_view what, const Result& error);
  [[noreturn]] void fail_connection(std::string_view what, std::string_view reason);

  PGconn* conn_ = nullptr;
  std::chrono::milliseconds answer_limit_;
  bool broken_ = false;
  std::unordered_set<std::string> prepared_;
};

}  // namespace ps::store::postgres
