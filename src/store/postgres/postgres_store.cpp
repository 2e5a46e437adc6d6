#include "store/postgres/postgres_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <chrono>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "store/postgres/pg.hpp"

namespace ps::store::postgres {

namespace {

// Versioned migrations in PostgreSQL's dialect: the same tables, columns, indexes and meaning as
// the SQLite ones (sqlite_store.cpp), under the same version numbers. Append only, never edit one
// that has shipped. Each runs in its own transaction together with its row in schema_migrations.
// Every integer (ids, times, cents, counters) is bigint.
constexpr std::array kMigrations = {
    R"sql(
CREATE TABLE accounts (
  account_id      bigint PRIMARY KEY,
  created_at      bigint NOT NULL,
  status          text   NOT NULL CHECK (status IN ('current', 'delinquent')),
  balance         bigint NOT NULL,
  settled_balance bigint NOT NULL,
  negative_since  bigint NULL
);
CREATE TABLE payments (
  money_movement_id     bigint PRIMARY KEY,
  account_id            bigint NOT NULL REFERENCES accounts (account_id),
  amount_cents          bigint NOT NULL,
  original_amount_cents bigint NOT NULL,
  merchant_name         text   NOT NULL,
  status                text   NOT NULL,
  created_at            bigint NOT NULL,
  updated_at            bigint NOT NULL,
  last_sent_at          bigint NOT NULL,
  settle_deadline       bigint NOT NULL,
  callbacks_applied     bigint NOT NULL
);
CREATE INDEX payments_by_account ON payments (account_id, money_movement_id);
CREATE INDEX payments_by_status ON payments (status, money_movement_id);
CREATE TABLE events (
  event_id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at                    bigint NOT NULL,
  kind                  text   NOT NULL,
  account_id            bigint NOT NULL,
  money_movement_id     bigint NULL,
  amount_cents          bigint NULL,
  status                text   NULL,
  settle_deadline       bigint NULL,
  balance_after         bigint NOT NULL,
  settled_balance_after bigint NOT NULL,
  detail                text   NULL
);
CREATE INDEX events_by_payment ON events (money_movement_id, event_id)
  WHERE money_movement_id IS NOT NULL;
CREATE TABLE idempotency_keys (
  key               text   PRIMARY KEY,
  request_hash      text   NOT NULL,
  money_movement_id bigint NOT NULL,
  response_status   bigint NULL,
  response_body     text   NULL,
  created_at        bigint NOT NULL
);
CREATE INDEX idempotency_by_payment ON idempotency_keys (money_movement_id);
-- Account ids for POST /accounts: account 1 is the bootstrap account, inserted with its id.
CREATE SEQUENCE account_ids AS bigint MINVALUE 2 START WITH 2;
-- money_movement_ids are issued in blocks of INCREMENT BY ids: one nextval gives an instance the
-- block [value, value + increment). Why this shape:
--  * unique across instances: a sequence never returns a value twice, and blocks do not overlap;
--  * one round trip per block, not per id (256 payments per nextval);
--  * unique across a wiped database: the provider remembers ids. The sequence STARTs at the
--    time-based id of the moment it is created, ((now_ms - 2024-01-01) << 12, as
--    core::MovementIdGenerator would issue then), so a later database starts above every id an
--    earlier one could have issued, as long as that one did not take blocks faster than time
--    advanced its start: 4096 ids (16 blocks) per millisecond on average over its life, far
--    above any real rate;
--  * below 2^53: MAXVALUE is the start of the last whole block below 2^53, so nextval fails
--    (SQLSTATE 2200H) instead of issuing an id a JSON client cannot hold. From 2024 on, a
--    start << 12 stays below 2^53 until 2093.
-- The increment is read back with each block (seqincrement), so the C++ side never assumes it.
DO $$
BEGIN
  EXECUTE format(
    'CREATE SEQUENCE money_movement_ids AS bigint INCREMENT BY 256 MINVALUE 1 MAXVALUE %s '
    'START WITH %s NO CYCLE',
    9007199254740991 - 255,
    GREATEST(1, (floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint
                 - 1704067200000) << 12));
END
$$;
)sql",
    // 2: the backlog of (re-)sends lives in the payments (resend_at, send_attempts) instead of
    // in memory, and idempotency keys expire (created_at index for the sweep).
    R"sql(
ALTER TABLE payments ADD COLUMN resend_at bigint NULL;
ALTER TABLE payments ADD COLUMN send_attempts bigint NOT NULL DEFAULT 1;
UPDATE payments SET resend_at = last_sent_at
  WHERE status = 'submitting' AND callbacks_applied = 0;
CREATE INDEX payments_resend_due ON payments (resend_at) WHERE resend_at IS NOT NULL;
CREATE INDEX idempotency_by_created ON idempotency_keys (created_at);
)sql",
    // 3: the writer's readiness probe (app/writer.hpp): after a failed commit it rewrites this one
    // row, a small real write, to learn when the store can write again.
    R"sql(
CREATE TABLE writer_probe (
  id        bigint PRIMARY KEY CHECK (id = 1),
  probed_at bigint NOT NULL
);
)sql",
    // 4 (PostgreSQL only; SQLite stops at 3): every callback changes a payment's status, and a
    // change of an indexed column makes PostgreSQL write a new entry in each index of the table
    // (pkey, by_account, by_status) for the new row version, on another page when the row's page
    // is full. Without payments_by_status and with room left on each page (fillfactor 80; new
    // pages only, the rest as it is rewritten), such an update is HOT: the new version goes on the
    // same page and no index changes. Measured with callbacks on 5,000 payments: WAL 770 -> 595
    // bytes and buffer accesses 33 -> 27 per callback. GET /payments?status= without account_id
    // walks the primary key backwards from the cursor instead (docs/decisions.md).
    R"sql(
DROP INDEX payments_by_status;
ALTER TABLE payments SET (fillfactor = 80);
)sql",
    // 5 (SQLite's 4): the accounts whose status a recalculate may change, so that it visits those
    // only, not every account (store::Store::delinquency_candidates). Its columns change only when
    // a settled balance crosses zero or a status changes: a balance update stays HOT.
    R"sql(
CREATE INDEX accounts_delinquency_candidates ON accounts (account_id)
  WHERE negative_since IS NOT NULL OR status <> 'current';
)sql",
    // 6 (PostgreSQL only): room on each page of accounts for a balance update to stay HOT, as 4
    // did for payments. Accounts are inserted in id order and never deleted, so without it every
    // page is full: the first update of an account after its page filled up moves the row to
    // another page and adds an entry to the primary key (and bloats it), and with payments spread
    // over many accounts most updates are such first updates. Applies to pages written from now
    // on (new accounts, and the pages a VACUUM FULL or CLUSTER rewrites).
    R"sql(
ALTER TABLE accounts SET (fillfactor = 80);
)sql",
};

// Advisory locks of this service use the two-int4 key form under one class id; idempotency keys
// use the single bigint form (a hash of the key). PostgreSQL keeps the two key spaces apart, so
// the constants below never collide with a key's hash.
constexpr int kAdvisoryLockClass = 0x70730001;  // "ps" + 1
constexpr int kMigrationLockKey = 1;            // session lock while migrating
constexpr int kStartUpLockKey = 2;              // LockSet::start_up

// Connection defaults (the URI may set any of them): a server that vanishes is noticed within
// seconds instead of the kernel's two hours of keepalive silence, and a connection attempt to a
// dead host gives up after connect_timeout (per host of a multi-host URI).
//  * keepalives: idle 5 s, then a probe every 2 s, 3 unanswered probes -> ~11 s on an idle wait;
//  * tcp_user_timeout 10 s: data sent and not acknowledged for 10 s drops the connection;
//  * options: the server ends a session of ours that stays idle inside a transaction for 15 s
//    (its instance died between statements: its row locks must not outlive it), and a lock wait
//    longer than 10 s fails with 55P03, a conflict the writer retries, instead of waiting on a
//    stuck instance without bound.
std::vector<std::pair<std::string, std::string>> connection_defaults() {
  return {
      {"connect_timeout", "3"},
      {"keepalives", "1"},
      {"keepalives_idle", "5"},
      {"keepalives_interval", "2"},
      {"keepalives_count", "3"},
      {"tcp_user_timeout", "10000"},
      {"application_name", "payment_service"},
      {"options", "-c idle_in_transaction_session_timeout=15s -c lock_timeout=10s"},
  };
}

// Longest wait for one answer of the server (pg.hpp); a statement of ours takes milliseconds.
constexpr std::chrono::milliseconds kAnswerLimit{30'000};
// The longest a migration (or the wait for another instance's migration) may take.
constexpr std::chrono::milliseconds kMigrationLimit{600'000};
// After a connection lost during COMMIT: how long to try reconnecting and asking the outcome.
constexpr std::chrono::milliseconds kCommitResolveLimit{5'000};
constexpr std::chrono::milliseconds kCommitResolvePause{100};

TimeMs wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The columns of each table, in the order every statement, reader and writer below uses them.
struct Column {
  const char* name;
  const char* type;
};
constexpr std::array<Column, 6> kAccountCols = {{{"account_id", "bigint"},
                                                 {"created_at", "bigint"},
                                                 {"status", "text"},
                                                 {"balance", "bigint"},
                                                 {"settled_balance", "bigint"},
                                                 {"negative_since", "bigint"}}};
constexpr std::array<Column, 13> kPaymentCols = {{{"money_movement_id", "bigint"},
                                                  {"account_id", "bigint"},
                                                  {"amount_cents", "bigint"},
                                                  {"original_amount_cents", "bigint"},
                                                  {"merchant_name", "text"},
                                                  {"status", "text"},
                                                  {"created_at", "bigint"},
                                                  {"updated_at", "bigint"},
                                                  {"last_sent_at", "bigint"},
                                                  {"settle_deadline", "bigint"},
                                                  {"callbacks_applied", "bigint"},
                                                  {"resend_at", "bigint"},
                                                  {"send_attempts", "bigint"}}};
constexpr std::array<Column, 10> kEventCols = {{{"at", "bigint"},
                                                {"kind", "text"},
                                                {"account_id", "bigint"},
                                                {"money_movement_id", "bigint"},
                                                {"amount_cents", "bigint"},
                                                {"status", "text"},
                                                {"settle_deadline", "bigint"},
                                                {"balance_after", "bigint"},
                                                {"settled_balance_after", "bigint"},
                                                {"detail", "text"}}};
constexpr std::array<Column, 6> kIdempotencyCols = {{{"key", "text"},
                                                     {"request_hash", "text"},
                                                     {"money_movement_id", "bigint"},
                                                     {"response_status", "bigint"},
                                                     {"response_body", "text"},
                                                     {"created_at", "bigint"}}};
// update_held_payments' rows: a payment's key and the columns a payment's life changes.
constexpr std::array<Column, 9> kPaymentChangeCols = {{{"money_movement_id", "bigint"},
                                                       {"amount_cents", "bigint"},
                                                       {"status", "text"},
                                                       {"updated_at", "bigint"},
                                                       {"last_sent_at", "bigint"},
                                                       {"settle_deadline", "bigint"},
                                                       {"callbacks_applied", "bigint"},
                                                       {"resend_at", "bigint"},
                                                       {"send_attempts", "bigint"}}};
// complete_idempotency's rows.
constexpr std::array<Column, 3> kCompletionCols = {
    {{"key", "text"}, {"response_status", "bigint"}, {"response_body", "text"}}};

// "a, b, c"
std::string names(std::span<const Column> columns) {
  std::string out;
  for (const Column& c : columns) {
    if (!out.empty()) out += ", ";
    out += c.name;
  }
  return out;
}

// The rows of an ArrayColumns as a table `u` with the columns' names:
// "unnest($1::bigint[], $2::text[]) AS u(a, b)". With `ordinality`, also the row's position `n`.
std::string unnest(std::span<const Column> columns, bool ordinality = false) {
  std::string out = "unnest(";
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) out += ", ";
    out += "$" + std::to_string(i + 1) + "::" + columns[i].type + "[]";
  }
  out += ordinality ? ") WITH ORDINALITY AS u(" : ") AS u(";
  out += names(columns);
  out += ordinality ? ", n)" : ")";
  return out;
}

const std::string kAccountColumns = names(kAccountCols);
const std::string kPaymentColumns = names(kPaymentCols);
const std::string kIdempotencyColumns = names(kIdempotencyCols);
const std::string kEventColumns = names(kEventCols);

std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) out.append(p);
  return out;
}

// Every statement of the store, prepared on each connection at its first use.
struct Statements {
  // Sent in the same round trip as the transaction's first statement (PostgresStore::send).
  Statement begin{"begin", "BEGIN"};
  // begin_snapshot(): every read of the transaction sees the snapshot of its first statement.
  Statement begin_snapshot{"begin_snapshot", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"};
  Statement find_account{"find_account",
                         cat({"SELECT ", kAccountColumns, " FROM accounts WHERE account_id = $1"})};
  Statement list_accounts{
      "list_accounts", cat({"SELECT ", kAccountColumns,
                            " FROM accounts WHERE account_id > $1 ORDER BY account_id LIMIT $2"})};
  Statement delinquency_candidates{
      "delinquency_candidates",
      "SELECT account_id FROM accounts WHERE (negative_since IS NOT NULL OR status <> 'current') "
      "AND account_id > $1 ORDER BY account_id LIMIT $2"};
  Statement max_account_id{"max_account_id", "SELECT COALESCE(MAX(account_id), 0) FROM accounts"};
  Statement next_account_id{"next_account_id", "SELECT nextval('account_ids')"};
  Statement find_payment{"find_payment", cat({"SELECT ", kPaymentColumns,
                                              " FROM payments WHERE money_movement_id = $1"})};
  // [filters]: bit 0 account_id, bit 1 status. One statement per combination, each walking an
  // index backwards from the cursor (payments_by_account, else the primary key: there is no index
  // on status, see migration 4).
  std::array<Statement, 4> list_payments{list_payments_statement(0), list_payments_statement(1),
                                         list_payments_statement(2), list_payments_statement(3)};
  Statement next_resend_at{"next_resend_at",
                           "SELECT MIN(resend_at) FROM payments WHERE resend_at IS NOT NULL"};
  Statement make_backoffs_due{"make_backoffs_due",
                              "UPDATE payments SET resend_at = $1 WHERE resend_at > $1 "
                              "AND resend_at <> last_sent_at + $2"};
  Statement max_movement_id{"max_movement_id",
                            "SELECT COALESCE(MAX(money_movement_id), 0) FROM payments"};
  Statement take_movement_block{
      "take_movement_block",
      "SELECT nextval('money_movement_ids'), seqincrement FROM pg_catalog.pg_sequence "
      "WHERE seqrelid = 'money_movement_ids'::regclass"};
  // The last entry of the primary key's index.
  Statement latest_event_time{"latest_event_time",
                              "SELECT at FROM events ORDER BY event_id DESC LIMIT 1"};
  Statement callback_history{
      "callback_history",
      "SELECT at, amount_cents, status, kind FROM events WHERE money_movement_id = $1 "
      "AND kind IN ('callback_applied', 'callback_late') ORDER BY event_id"};
  // Both walk the primary key from the cursor on.
  Statement events_after{"events_after",
                         cat({"SELECT event_id, ", kEventColumns,
                              " FROM events WHERE event_id > $1 ORDER BY event_id LIMIT $2"})};
  Statement payments_after{"payments_after", cat({"SELECT ", kPaymentColumns,
                                                  " FROM payments WHERE money_movement_id > $1 "
                                                  "ORDER BY money_movement_id LIMIT $2"})};
  Statement find_idempotency{"find_idempotency", cat({"SELECT ", kIdempotencyColumns,
                                                      " FROM idempotency_keys WHERE key = $1"})};
  Statement find_idempotency_for_payment{
      "find_idempotency_for_payment",
      cat({"SELECT ", kIdempotencyColumns, " FROM idempotency_keys WHERE money_movement_id = $1"})};
  Statement delete_idempotency{"delete_idempotency", "DELETE FROM idempotency_keys WHERE key = $1"};
  // SKIP LOCKED: two instances sweeping at once delete different keys instead of queueing on the
  // same rows.
  Statement expire_idempotency{
      "expire_idempotency",
      "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys "
      "WHERE created_at < $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)"};
  Statement ping{"ping", "SELECT COUNT(*) FROM schema_migrations"};
  Statement record_probe{"record_probe",
                         "INSERT INTO writer_probe (id, probed_at) VALUES (1, $1) "
                         "ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at"};

  // The writes, each for any number of rows (one array parameter per column, see ArrayColumns):
  // write-behind sends one statement per table and kind for a whole batch. The updates name the
  // keys again as `= ANY($1)`: the planner estimates unnest() poorly and would join by scanning
  // the whole table; with it, the rows are found through the primary key.
  Statement insert_accounts{"insert_accounts", cat({"INSERT INTO accounts (", kAccountColumns,
                                                    ") SELECT * FROM ", unnest(kAccountCols)})};
  Statement update_accounts{
      "update_accounts",
      cat({"UPDATE accounts a SET created_at = u.created_at, status = u.status, "
           "balance = u.balance, settled_balance = u.settled_balance, "
           "negative_since = u.negative_since FROM ",
           unnest(kAccountCols),
           " WHERE a.account_id = ANY($1::bigint[]) AND a.account_id = u.account_id"})};
  Statement insert_payments{"insert_payments", cat({"INSERT INTO payments (", kPaymentColumns,
                                                    ") SELECT * FROM ", unnest(kPaymentCols)})};
  // The immutable columns are matched, not set, so an attempt to change one fails (as in SQLite).
  Statement update_payments{
      "update_payments",
      cat({"UPDATE payments p SET amount_cents = u.amount_cents, status = u.status, "
           "updated_at = u.updated_at, last_sent_at = u.last_sent_at, "
           "settle_deadline = u.settle_deadline, callbacks_applied = u.callbacks_applied, "
           "resend_at = u.resend_at, send_attempts = u.send_attempts FROM ",
           unnest(kPaymentCols),
           " WHERE p.money_movement_id = ANY($1::bigint[]) "
           "AND p.money_movement_id = u.money_movement_id AND p.account_id = u.account_id "
           "AND p.original_amount_cents = u.original_amount_cents "
           "AND p.merchant_name = u.merchant_name AND p.created_at = u.created_at"})};
  // Payments the transaction holds: their identity was checked against the locked row in
  // memory (update_payment), so only the key and the changing columns are sent.
  Statement update_held_payments{
      "update_held_payments",
      cat({"UPDATE payments p SET amount_cents = u.amount_cents, status = u.status, "
           "updated_at = u.updated_at, last_sent_at = u.last_sent_at, "
           "settle_deadline = u.settle_deadline, callbacks_applied = u.callbacks_applied, "
           "resend_at = u.resend_at, send_attempts = u.send_attempts FROM ",
           unnest(kPaymentChangeCols),
           " WHERE p.money_movement_id = ANY($1::bigint[]) "
           "AND p.money_movement_id = u.money_movement_id"})};
  // In the order they were appended: the identity column takes its values as the rows leave the
  // sort, so event_id follows that order.
  Statement insert_events{"insert_events",
                          cat({"INSERT INTO events (", kEventColumns, ") SELECT ", kEventColumns,
                               " FROM ", unnest(kEventCols, /*ordinality=*/true), " ORDER BY n"})};
  Statement insert_idempotency{"insert_idempotency",
                               cat({"INSERT INTO idempotency_keys (", kIdempotencyColumns,
                                    ") SELECT * FROM ", unnest(kIdempotencyCols)})};
  Statement complete_idempotency{
      "complete_idempotency",
      cat({"UPDATE idempotency_keys k SET response_status = u.response_status, "
           "response_body = u.response_body FROM ",
           unnest(kCompletionCols), " WHERE k.key = u.key"})};

  // Store::lock, in one round trip (see lock()). The locking reads return the whole rows.
  Statement lock_start_up{"lock_start_up", "SELECT pg_advisory_xact_lock(" +
                                               std::to_string(kAdvisoryLockClass) + ", " +
                                               std::to_string(kStartUpLockKey) + ")"};
  // The subquery's order is the order the outer query calls the lock function in.
  Statement lock_keys{"lock_keys",
                      "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT "
                      "hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k ORDER BY h) AS s"};
  // The given accounts ($1) and those of the given payments ($2), read without a lock (a
  // payment's account never changes). ARRAY(...) is computed once, so the accounts are found
  // through their primary key.
  Statement lock_accounts{
      "lock_accounts",
      cat({"SELECT ", kAccountColumns,
           " FROM accounts WHERE account_id = ANY(ARRAY(SELECT unnest($1::bigint[]) UNION "
           "SELECT account_id FROM payments WHERE money_movement_id = ANY($2::bigint[]))) "
           "ORDER BY account_id FOR UPDATE"})};
  // The same when the accounts of the payments are known already (account_of_).
  Statement lock_accounts_by_id{
      "lock_accounts_by_id",
      cat({"SELECT ", kAccountColumns,
           " FROM accounts WHERE account_id = ANY($1::bigint[]) ORDER BY account_id FOR UPDATE"})};
  Statement lock_payments{"lock_payments", cat({"SELECT ", kPaymentColumns,
                                                " FROM payments "
                                                "WHERE money_movement_id = ANY($1::bigint[]) "
                                                "ORDER BY money_movement_id FOR UPDATE"})};
  // Read after the locks, for the transaction's cache: the records of the locked keys, and those
  // of the locked payments.
  Statement idempotency_of_keys{
      "idempotency_of_keys",
      cat({"SELECT ", kIdempotencyColumns, " FROM idempotency_keys WHERE key = ANY($1::text[])"})};
  Statement idempotency_of_payments{
      "idempotency_of_payments",
      cat({"SELECT ", kIdempotencyColumns,
           " FROM idempotency_keys WHERE money_movement_id = ANY($1::bigint[]) "
           "ORDER BY money_movement_id, key"})};

  // due_resends, in the global lock order (see there). The candidates walk payments_resend_due,
  // the partial index of waiting payments.
  Statement due_resend_candidates{"due_resend_candidates",
                                  "SELECT money_movement_id, account_id FROM payments "
                                  "WHERE resend_at <= $1 ORDER BY resend_at LIMIT $2"};
  Statement share_accounts{
      "share_accounts",
      cat({"SELECT ", kAccountColumns,
           " FROM accounts WHERE account_id = ANY($1::bigint[]) ORDER BY account_id FOR SHARE"})};
  Statement share_accounts_skip_locked{
      "share_accounts_skip_locked",
      cat({"SELECT ", kAccountColumns,
           " FROM accounts WHERE account_id = ANY($1::bigint[]) ORDER BY account_id "
           "FOR SHARE SKIP LOCKED"})};
  // SKIP LOCKED: a payment another instance is claiming right now is its; each due payment goes
  // to one instance. resend_at is checked again on the latest version of each row.
  Statement claim_resends{"claim_resends",
                          cat({"SELECT ", kPaymentColumns,
                               " FROM payments WHERE money_movement_id = ANY($1::bigint[]) "
                               "AND resend_at <= $2 ORDER BY resend_at LIMIT $3 "
                               "FOR UPDATE SKIP LOCKED"})};

  Statement current_xid{"current_xid", "SELECT pg_current_xact_id_if_assigned()::text"};
  Statement xact_status{"xact_status", "SELECT pg_xact_status($1::xid8)"};

  static Statement list_payments_statement(unsigned filters) {
    std::string sql =
        cat({"SELECT ", kPaymentColumns, " FROM payments WHERE money_movement_id < $1"});
    int next = 2;
    if ((filters & 1U) != 0) sql += " AND account_id = $" + std::to_string(next++);
    if ((filters & 2U) != 0) sql += " AND status = $" + std::to_string(next++);
    sql += " ORDER BY money_movement_id DESC LIMIT $" + std::to_string(next);
    return Statement{"list_payments_" + std::to_string(filters), sql};
  }
};

const Statements& statements() {
  static const Statements s;
  return s;
}

Query query(const Statement& statement, Params params = {}) {
  return Query{.statement = &statement, .params = std::move(params)};
}

core::Payment read_payment(const Result& r, int row) {
  return core::Payment{
      .money_movement_id = r.int64(row, 0),
      .account_id = r.int64(row, 1),
      .amount_cents = r.int64(row, 2),
      .original_amount_cents = r.int64(row, 3),
      .merchant_name = r.text(row, 4),
      .status = r.text(row, 5),
      .created_at = r.int64(row, 6),
      .updated_at = r.int64(row, 7),
      .last_sent_at = r.int64(row, 8),
      .settle_deadline = r.int64(row, 9),
      .callbacks_applied = r.int64(row, 10),
      .resend_at = r.optional_int64(row, 11),
      .send_attempts = r.int64(row, 12),
  };
}

std::vector<core::Payment> read_payments(const Result& r) {
  std::vector<core::Payment> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(read_payment(r, i));
  return out;
}

core::Account read_account(const Result& r, int row) {
  const auto status = core::account_status_from(r.text(row, 2));
  if (!status) throw StoreError("accounts.status holds an unknown value");
  return core::Account{
      .account_id = r.int64(row, 0),
      .created_at = r.int64(row, 1),
      .status = *status,
      .balance = r.int64(row, 3),
      .settled_balance = r.int64(row, 4),
      .negative_since = r.optional_int64(row, 5),
  };
}

IdempotencyRecord read_idempotency(const Result& r, int row) {
  const auto status = r.optional_int64(row, 3);
  return IdempotencyRecord{
      .key = r.text(row, 0),
      .request_hash = r.text(row, 1),
      .money_movement_id = r.int64(row, 2),
      .response_status = status ? std::optional<int>(static_cast<int>(*status)) : std::nullopt,
      .response_body = r.optional_text(row, 4),
      .created_at = r.int64(row, 5),
  };
}

// The add_* functions fill Params (one row's parameters) or ArrayColumns (a batch of rows) alike,
// in the column order above.
template <class Sink>
Sink& add_account(Sink& p, const core::Account& a) {
  return p.add(a.account_id)
      .add(a.created_at)
      .add(core::to_string(a.status))
      .add(a.balance)
      .add(a.settled_balance)
      .add(a.negative_since);
}

// The columns a payment's progress changes (every update writes them), in the order above.
template <class Sink>
Sink& add_payment_progress(Sink& p, const core::Payment& x) {
  return p.add(x.updated_at)
      .add(x.last_sent_at)
      .add(x.settle_deadline)
      .add(x.callbacks_applied)
      .add(x.resend_at)
      .add(x.send_attempts);
}

template <class Sink>
Sink& add_payment(Sink& p, const core::Payment& x) {
  p.add(x.money_movement_id)
      .add(x.account_id)
      .add(x.amount_cents)
      .add(x.original_amount_cents)
      .add(x.merchant_name)
      .add(x.status)
      .add(x.created_at);
  return add_payment_progress(p, x);
}

// Key and mutable columns (kPaymentChangeCols): an update of a payment whose row is locked.
template <class Sink>
Sink& add_payment_change(Sink& p, const core::Payment& x) {
  p.add(x.money_movement_id).add(x.amount_cents).add(x.status);
  return add_payment_progress(p, x);
}

template <class Sink>
Sink& add_event(Sink& p, const Event& e) {
  return p.add(e.at)
      .add(e.kind)
      .add(e.account_id)
      .add(e.money_movement_id)
      .add(e.amount_cents)
      .add(e.status)
      .add(e.settle_deadline)
      .add(e.balance_after)
      .add(e.settled_balance_after)
      .add(e.detail);
}

std::optional<std::int64_t> widened(std::optional<int> v) {
  return v ? std::optional<std::int64_t>(*v) : std::nullopt;
}

template <class Sink>
Sink& add_idempotency(Sink& p, const IdempotencyRecord& r) {
  return p.add(r.key)
      .add(r.request_hash)
      .add(r.money_movement_id)
      .add(widened(r.response_status))
      .add(r.response_body)
      .add(r.created_at);
}

template <class Sink>
Sink& add_completion(Sink& p, const std::string& key, std::optional<int> status,
                     const std::optional<std::string>& body) {
  return p.add(key).add(widened(status)).add(body);
}

// What update_payment may change: the rest identifies the payment (update_payments matches it).
bool same_identity(const core::Payment& a, const core::Payment& b) {
  return a.money_movement_id == b.money_movement_id && a.account_id == b.account_id &&
         a.original_amount_cents == b.original_amount_cents && a.merchant_name == b.merchant_name &&
         a.created_at == b.created_at;
}

template <class T>
std::vector<T> sorted_unique(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// Due payments a claim considers, per payment it may take: up to this many instances claiming at
// the same moment each find payments of their own among the candidates (the others' are skipped).
constexpr std::size_t kClaimCandidatesPerPayment = 4;

enum class Write { insert, update };

// A write batch's transaction in memory (see PostgresStore).
struct TxRows {
  // Rows the transaction holds: locked by it (lock(), due_resends) or inserted by it. No other
  // transaction can change them before this one ends, so reads of them are answered from here.
  // std::nullopt: the row was asked for and does not exist.
  std::unordered_map<AccountId, std::optional<core::Account>> accounts;
  std::unordered_map<MovementId, std::optional<core::Payment>> payments;
  // Idempotency records read right after the locks (those of the locked keys and of the locked
  // payments) or written by the transaction, by key; and a payment's key (std::nullopt: none).
  // The key's lock keeps other requests with that key out; an instance recording the provider's
  // verdict on the payment may complete the record meanwhile without it, the same race as
  // reading the record a few statements later.
  std::unordered_map<std::string, std::optional<IdempotencyRecord>> idempotency;
  std::unordered_map<MovementId, std::optional<std::string>> key_of_payment;

  // Write-behind: the rows to write before the next statement (or COMMIT), each once in its
  // final state (the row above), and the events in the order they were appended.
  std::map<AccountId, Write> account_writes;
  std::map<MovementId, Write> payment_writes;
  std::map<std::string, Write> idempotency_writes;
  std::vector<Event> events;

  bool writes_pending() const {
    return !account_writes.empty() || !payment_writes.empty() || !idempotency_writes.empty() ||
           !events.empty();
  }
  void clear() noexcept {
    accounts.clear();
    payments.clear();
    idempotency.clear();
    key_of_payment.clear();
    account_writes.clear();
    payment_writes.clear();
    idempotency_writes.clear();
    events.clear();
  }
};

// The entry for `id`, or nullptr when `rows` does not know it.
template <class Map, class Key>
const typename Map::mapped_type* known(const Map& rows, const Key& id) {
  const auto it = rows.find(id);
  return it == rows.end() ? nullptr : &it->second;
}

// The PostgreSQL store. A write batch's transaction makes few round trips (docs/decisions.md,
// "PostgreSQL store"):
//  * begin() sends nothing: BEGIN goes with the transaction's first statements, usually lock().
//  * lock() takes every lock in one round trip, and its locking reads return the whole rows,
//    kept in memory with the idempotency records of the locked keys and payments (TxRows); the
//    batch's jobs read those rows from memory.
//  * Write-behind: writes of rows the transaction holds (and every insert and event) only change
//    memory; they are sent before the next statement that goes to the server, in the same round
//    trip, as one batch statement per table and kind, so every read still sees the
//    transaction's own writes. A write that fails there fails that statement's call (and the
//    batch: the writer then runs its jobs one by one). Writes of rows the transaction does not
//    hold are sent at once, so they wait for (or fail on) whoever holds the row as before.
//  * commit() sends the last writes together with the read of the transaction id, then COMMIT
//    on its own.
class PostgresStore final : public Store {
 public:
  PostgresStore(const std::string& uri, const StoreOptions& options)
      : settings_{.uri = uri, .defaults = connection_defaults(), .answer_limit = kAnswerLimit},
        read_only_(options.read_only),
        durable_(options.durable) {
    if (!read_only_) {
      // SQLite-only settings: PostgreSQL checks its own pages (data checksums, amcheck is the
      // operator's tool) and manages its own WAL and checkpoints.
      if (options.integrity_check != IntegrityCheck::off) {
        spdlog::info(
            "DATABASE_INTEGRITY_CHECK does not apply to PostgreSQL (SQLite only); not checked");
      }
      if (options.wal_checkpoint_pages != kWalCheckpointPagesDefault) {
        spdlog::info(
            "DATABASE_WAL_CHECKPOINT_PAGES does not apply to PostgreSQL (SQLite only); ignored");
      }
    }
    connect();
    if (!read_only_) migrate();
  }

  bool shared() const override { return true; }

  void begin() override {
    assert(!in_tx_);
    in_tx_ = true;
    begun_ = false;
    may_have_written_ = false;
    tx_.clear();
  }

  // In this order, each sorted and without duplicates, so two instances locking overlapping sets
  // always meet in the same order and one waits for the other instead of deadlocking:
  //   1. the start-up lock (an advisory transaction lock under a constant key);
  //   2. idempotency keys: an advisory transaction lock on a 64-bit hash of each key, in hash
  //      order (a key's row may not exist yet, so a row lock cannot serve; a hash collision only
  //      makes two requests wait for each other);
  //   3. accounts: every one, or the given ones plus the accounts of the given payments, FOR
  //      UPDATE in account_id order;
  //   4. the given payments, FOR UPDATE in money_movement_id order.
  // All in one round trip, followed by the reads of the idempotency records of the locked keys
  // and payments. The rows read are kept for the transaction (TxRows). After the locks, every
  // read of the transaction (READ COMMITTED: a new snapshot per statement) sees the latest
  // committed rows.
  void lock(const LockSet& locks) override {
    assert(in_tx_);
    const auto& s = statements();
    const auto keys = sorted_unique(locks.idempotency_keys);
    const auto accounts = sorted_unique(locks.accounts);
    const auto payments = sorted_unique(locks.payments);
    std::vector<Query> q;
    // The index of each step's result.
    const auto step = [&q](Query x) {
      q.push_back(std::move(x));
      return q.size() - 1;
    };
    if (locks.start_up) step(query(s.lock_start_up));
    if (!keys.empty()) step(query(s.lock_keys, Params().add_array(keys)));
    std::optional<std::size_t> accounts_at;
    std::optional<std::size_t> payments_at;
    std::optional<std::size_t> key_records_at;
    std::optional<std::size_t> payment_records_at;
    if (!accounts.empty() || !payments.empty()) {
      // The accounts of payments this store has seen are known; only the others are looked up.
      std::vector<AccountId> by_id = accounts;
      std::vector<MovementId> looked_up;
      for (const MovementId id : payments) {
        if (const auto it = account_of_.find(id); it != account_of_.end()) {
          by_id.push_back(it->second);
        } else {
          looked_up.push_back(id);
        }
      }
      by_id = sorted_unique(std::move(by_id));
      accounts_at =
          looked_up.empty()
              ? step(query(s.lock_accounts_by_id, Params().add_array(by_id)))
              : step(query(s.lock_accounts, Params().add_array(by_id).add_array(looked_up)));
    }
    if (!payments.empty()) {
      payments_at = step(query(s.lock_payments, Params().add_array(payments)));
      payment_records_at = step(query(s.idempotency_of_payments, Params().add_array(payments)));
    }
    if (!keys.empty())
      key_records_at = step(query(s.idempotency_of_keys, Params().add_array(keys)));
    if (q.empty()) return;
    may_have_written_ = true;  // row locks are written into the rows
    const std::vector<Result> r = send(std::move(q));

    if (accounts_at) {
      for (const AccountId id : accounts) tx_.accounts[id] = std::nullopt;
      hold_accounts(r[*accounts_at]);
    }
    if (payments_at) {
      for (const MovementId id : payments) tx_.payments[id] = std::nullopt;
      hold_payments(r[*payments_at]);
    }
    if (key_records_at) {
      for (const auto& key : keys) tx_.idempotency[key] = std::nullopt;
      const Result& records = r[*key_records_at];
      for (int i = 0; i < records.rows(); ++i) {
        auto record = read_idempotency(records, i);
        tx_.idempotency[record.key] = std::move(record);
      }
    }
    if (payment_records_at) {
      for (const MovementId id : payments) tx_.key_of_payment[id] = std::nullopt;
      const Result& records = r[*payment_records_at];
      for (int i = 0; i < records.rows(); ++i) {
        auto record = read_idempotency(records, i);
        auto& key = tx_.key_of_payment[record.money_movement_id];
        if (!key) key = record.key;  // a payment has one key; if several, the first
        tx_.idempotency[record.key] = std::move(record);
      }
    }
  }

  // Whether the transaction wrote: it has a transaction id (PostgreSQL assigns one at the first
  // write, row locks included). That id is also what establishes the outcome when the connection
  // is lost during COMMIT: see resolve_lost_commit. It is read in the round trip that sends the
  // last buffered writes. COMMIT is sent once, never again.
  bool commit() override {
    assert(in_tx_);
    if (!begun_ && !may_have_written_) {
      end_transaction();  // nothing was sent: there is no transaction on the server
      return false;
    }
    std::optional<std::string> xid;
    if (may_have_written_) {
      std::vector<Query> q;
      q.push_back(query(statements().current_xid));
      xid = send(std::move(q)).front().optional_text(0, 0);
    }
    Result done;
    try {
      done = conn_->exec("COMMIT");
    } catch (const StoreError& e) {
      end_transaction();
      // The server answered with an error (a serialization failure or deferred check at commit):
      // the transaction was rolled back, and the error says why.
      if (conn_->usable()) throw;
      if (!xid) {
        // Nothing was written, so nothing can be lost or applied twice.
        throw StoreError(std::string("commit of a transaction that wrote nothing: ") + e.what(),
                         StoreFault::unavailable);
      }
      resolve_lost_commit(*xid, e.what());
      return true;
    }
    end_transaction();
    // COMMIT of a transaction that had failed answers "ROLLBACK" and no error.
    if (std::string_view(PQcmdStatus(done.get())) != "COMMIT") {
      throw StoreError("commit: the transaction had failed and was rolled back");
    }
    return xid.has_value();
  }

  void rollback() noexcept override {
    if (!in_tx_) return;  // after commit() threw, or after a failed begin()
    const bool begun = begun_;
    end_transaction();
    // Nothing was sent, or a lost connection took the transaction with it (the server rolled it
    // back).
    if (!begun || !conn_ || !conn_->usable()) return;
    try {
      conn_->exec("ROLLBACK");
    } catch (const StoreError& e) {
      // The connection failed meanwhile: the server rolls back. The next statement reconnects.
      spdlog::warn("rollback failed: {}", e.what());
    }
  }

  // Nothing to check: the server owns the database's files, and a connection always writes to
  // the database the server serves under the URL's name. The one way to write to the "wrong"
  // database is a demoted primary, which refuses writes (25006, a fault that reconnects).
  void verify_identity() override {}

  RescueReport rescue() override {
    throw StoreError("rescue does not apply to PostgreSQL (the server owns the database files)");
  }

  void record_probe(TimeMs at) override {
    Params p;
    write(statements().record_probe, p.add(at));
  }

  std::optional<core::Account> find_account(AccountId id) override {
    if (const auto* held = known(tx_.accounts, id)) return *held;
    Params p;
    const Result r = run(statements().find_account, p.add(id));
    if (r.rows() == 0) return std::nullopt;
    return read_account(r, 0);
  }

  std::vector<core::Account> list_accounts(AccountId after, std::int64_t limit) override {
    Params p;
    const Result r = run(statements().list_accounts, p.add(after).add(limit));
    std::vector<core::Account> out;
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back(read_account(r, i));
    return out;
  }

  std::vector<AccountId> delinquency_candidates(AccountId after, std::int64_t limit) override {
    Params p;
    const Result r = run(statements().delinquency_candidates, p.add(after).add(limit));
    std::vector<AccountId> out;
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.int64(i, 0));
    return out;
  }

  AccountId max_account_id() override { return scalar(statements().max_account_id); }

  // A sequence that starts at 2; a value is never returned twice, also not to another instance.
  AccountId next_account_id() override { return scalar(statements().next_account_id); }

  void insert_account(const core::Account& a) override {
    stage_insert(tx_.accounts, tx_.account_writes, a.account_id, a, "insert account");
  }

  void update_account(const core::Account& a) override {
    if (stage_update(tx_.accounts, tx_.account_writes, a.account_id, a, "update account")) return;
    ArrayColumns row(kAccountCols.size());
    write_now(statements().update_accounts, add_account(row, a), "update account");
  }

  std::optional<core::Payment> find_payment(MovementId id) override {
    if (const auto* held = known(tx_.payments, id)) return *held;
    Params p;
    const Result r = run(statements().find_payment, p.add(id));
    if (r.rows() == 0) return std::nullopt;
    return read_payment(r, 0);
  }

  std::vector<core::Payment> list_payments(const PaymentFilter& f) override {
    const auto& st = statements().list_payments[(f.account_id ? 1U : 0U) | (f.status ? 2U : 0U)];
    Params p;
    p.add(f.before_id.value_or(std::numeric_limits<MovementId>::max()));
    if (f.account_id) p.add(*f.account_id);
    if (f.status) p.add(*f.status);
    p.add(std::int64_t{f.limit});
    return read_payments(run(st, p));
  }

  // The claimed payments' accounts are locked too (FOR SHARE), before the payments, as every lock
  // is taken (accounts, then payments): lease_for_resend records the account's balances in the
  // payment_resent event without locking the account, and another instance changing the account
  // and committing in between would leave that event, the account's newest, with stale balances.
  //  1. Candidates, without locks: the earliest due payments, more than `limit` (see
  //     kClaimCandidatesPerPayment).
  //  2. Their accounts, FOR SHARE in account_id order: claims of several instances share them,
  //     writers wait. This transaction may hold account locks already (the batch's lock()): it
  //     waits only for accounts above the highest it holds, which keeps the order; the ones
  //     below it are taken only where free (SKIP LOCKED), and payments of accounts not obtained
  //     are left for a later claim.
  //  3. Among the candidates of obtained accounts, the earliest `limit` still due, FOR UPDATE
  //     SKIP LOCKED.
  std::vector<core::Payment> due_resends(TimeMs now, std::size_t limit) override {
    if (limit == 0) return {};
    const auto& s = statements();
    if (in_tx_) may_have_written_ = true;  // row locks
    Params p;
    const Result due =
        run(s.due_resend_candidates,
            p.add(now).add(static_cast<std::int64_t>(limit * kClaimCandidatesPerPayment)));
    std::unordered_set<AccountId> obtained;
    AccountId highest_held = 0;
    for (const auto& [id, account] : tx_.accounts) {
      if (!account) continue;
      obtained.insert(id);
      highest_held = std::max(highest_held, id);
    }
    std::vector<AccountId> accounts;
    accounts.reserve(static_cast<std::size_t>(due.rows()));
    for (int i = 0; i < due.rows(); ++i) accounts.push_back(due.int64(i, 1));
    std::vector<AccountId> wait_for;
    std::vector<AccountId> if_free;
    for (const AccountId id : sorted_unique(std::move(accounts))) {
      if (!obtained.contains(id)) (id > highest_held ? wait_for : if_free).push_back(id);
    }
    std::vector<Query> q;
    if (!if_free.empty()) {
      q.push_back(query(s.share_accounts_skip_locked, Params().add_array(if_free)));
    }
    if (!wait_for.empty()) q.push_back(query(s.share_accounts, Params().add_array(wait_for)));
    if (!q.empty()) {
      for (const Result& r : send(std::move(q))) {
        for (const auto& a : hold_accounts(r)) obtained.insert(a.account_id);
      }
    }
    std::vector<MovementId> claimable;
    for (int i = 0; i < due.rows(); ++i) {
      if (obtained.contains(due.int64(i, 1))) claimable.push_back(due.int64(i, 0));
    }
    if (claimable.empty()) return {};
    Params claim;
    claim.add_array(claimable).add(now).add(static_cast<std::int64_t>(limit));
    return hold_payments(run(s.claim_resends, claim));
  }

  std::optional<TimeMs> next_resend_at() override {
    return run(statements().next_resend_at, Params{}).optional_int64(0, 0);
  }

  std::size_t make_backoffs_due(TimeMs now, TimeMs send_lease_ms) override {
    Params p;
    const auto changed = write(statements().make_backoffs_due, p.add(now).add(send_lease_ms));
    tx_.payments.clear();  // it may have changed held payments: read them again
    return static_cast<std::size_t>(changed);
  }

  MovementId max_movement_id() override { return scalar(statements().max_movement_id); }

  // From the block this store took last; a new block (one nextval) when it is used up. Ids rise
  // within one store; across instances they are unique but interleave by block. A block's unused
  // rest is lost when the process ends (256 ids of 2^53).
  MovementId next_movement_id(TimeMs /*now*/) override {
    if (next_movement_id_ == movement_block_end_) {
      const Result r = run(statements().take_movement_block, Params{});
      if (r.rows() != 1) throw StoreError("sequence money_movement_ids is missing");
      const MovementId start = r.int64(0, 0);
      const std::int64_t size = r.int64(0, 1);
      if (start <= 0 || size <= 0 || start > core::kMaxMovementId - (size - 1)) {
        throw StoreError("money_movement_id space exhausted (block at " + std::to_string(start) +
                         " of " + std::to_string(size) + ")");
      }
      next_movement_id_ = start;
      movement_block_end_ = start + size;
    }
    const MovementId id = next_movement_id_++;
    assert(id > 0 && id <= core::kMaxMovementId);
    return id;
  }

  void insert_payment(const core::Payment& x) override {
    stage_insert(tx_.payments, tx_.payment_writes, x.money_movement_id, x, "insert payment");
    remember_account_of(x);
    tx_.key_of_payment.try_emplace(x.money_movement_id, std::nullopt);  // a new payment: no key
  }

  void update_payment(const core::Payment& x) override {
    if (const auto* held = known(tx_.payments, x.money_movement_id);
        held != nullptr && *held && !same_identity(**held, x)) {
      throw StoreError("update payment: no such row");  // what the statement would find
    }
    if (stage_update(tx_.payments, tx_.payment_writes, x.money_movement_id, x, "update payment")) {
      return;
    }
    ArrayColumns row(kPaymentCols.size());
    write_now(statements().update_payments, add_payment(row, x), "update payment");
  }

  void append_event(const Event& e) override {
    assert(in_tx_);
    may_have_written_ = true;
    tx_.events.push_back(e);
  }

  std::optional<TimeMs> latest_event_time() override {
    const Result r = run(statements().latest_event_time, Params{});
    if (r.rows() == 0) return std::nullopt;
    return r.int64(0, 0);
  }

  std::vector<CallbackRecord> callback_history(MovementId id) override {
    Params p;
    const Result r = run(statements().callback_history, p.add(id));
    std::vector<CallbackRecord> out;
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(CallbackRecord{
          .received_at = r.int64(i, 0),
          .amount_cents = r.int64(i, 1),
          .status = r.optional_text(i, 2),
          .applied = r.text(i, 3) == event_kind::kCallbackApplied,
      });
    }
    return out;
  }

  void begin_snapshot() override {
    begin();
    snapshot_ = true;  // send() opens it with begin_snapshot instead of BEGIN
  }

  std::vector<Event> events_after(EventId after, std::size_t limit) override {
    Params p;
    const Result r =
        run(statements().events_after, p.add(after).add(static_cast<std::int64_t>(limit)));
    std::vector<Event> out;
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(Event{
          .event_id = r.int64(i, 0),
          .at = r.int64(i, 1),
          .kind = r.text(i, 2),
          .account_id = r.int64(i, 3),
          .money_movement_id = r.optional_int64(i, 4),
          .amount_cents = r.optional_int64(i, 5),
          .status = r.optional_text(i, 6),
          .settle_deadline = r.optional_int64(i, 7),
          .balance_after = r.int64(i, 8),
          .settled_balance_after = r.int64(i, 9),
          .detail = r.optional_text(i, 10),
      });
    }
    return out;
  }

  std::vector<core::Payment> payments_after(MovementId after, std::size_t limit) override {
    Params p;
    return read_payments(
        run(statements().payments_after, p.add(after).add(static_cast<std::int64_t>(limit))));
  }

  std::optional<IdempotencyRecord> find_idempotency(const std::string& key) override {
    if (const auto* held = known(tx_.idempotency, key)) return *held;
    Params p;
    const Result r = run(statements().find_idempotency, p.add(key));
    if (r.rows() == 0) return std::nullopt;
    return read_idempotency(r, 0);
  }

  std::optional<IdempotencyRecord> find_idempotency_for_payment(MovementId id) override {
    if (const auto* key = known(tx_.key_of_payment, id)) {
      if (!*key) return std::nullopt;
      if (const auto* held = known(tx_.idempotency, **key)) return *held;
    }
    Params p;
    const Result r = run(statements().find_idempotency_for_payment, p.add(id));
    if (r.rows() == 0) return std::nullopt;
    return read_idempotency(r, 0);
  }

  void insert_idempotency(const IdempotencyRecord& r) override {
    stage_insert(tx_.idempotency, tx_.idempotency_writes, r.key, r, "insert idempotency key");
    if (const auto it = tx_.key_of_payment.find(r.money_movement_id);
        it != tx_.key_of_payment.end() && !it->second) {
      it->second = r.key;
    }
  }

  void complete_idempotency(const std::string& key, int status, const std::string& body) override {
    assert(in_tx_);
    const auto it = tx_.idempotency.find(key);
    if (it == tx_.idempotency.end()) {
      ArrayColumns row(kCompletionCols.size());
      write(statements().complete_idempotency, add_completion(row, key, status, body).params());
      return;
    }
    if (!it->second) return;  // no such key: the statement would change nothing
    may_have_written_ = true;
    it->second->response_status = status;
    it->second->response_body = body;
    tx_.idempotency_writes.try_emplace(key, Write::update);  // an insert stays one
  }

  void delete_idempotency(const std::string& key) override {
    Params p;
    write(statements().delete_idempotency, p.add(key));
    if (const auto it = tx_.idempotency.find(key); it != tx_.idempotency.end()) {
      it->second = std::nullopt;
    }
    std::erase_if(tx_.key_of_payment, [&](const auto& entry) { return entry.second == key; });
  }

  std::size_t delete_idempotency_created_before(TimeMs cutoff, std::size_t limit) override {
    Params p;
    const auto deleted =
        write(statements().expire_idempotency, p.add(cutoff).add(static_cast<std::int64_t>(limit)));
    // It may have deleted records held in memory: read them again.
    tx_.idempotency.clear();
    tx_.key_of_payment.clear();
    return static_cast<std::size_t>(deleted);
  }

  void ping() override { scalar(statements().ping); }

 private:
  // A new connection with this store's session settings. Throws StoreError{unavailable}.
  void connect() {
    conn_.reset();
    auto fresh = std::make_unique<Connection>(settings_);
    std::string setup;
    // Durability: synchronous_commit=off acknowledges a commit before its WAL reaches the disk
    // (a crash may lose the last moments, never corrupt), the counterpart of SQLite's
    // synchronous=OFF.
    if (!durable_) setup += "SET synchronous_commit = off; ";
    if (read_only_) setup += "SET default_transaction_read_only = on; ";
    // Every statement of the store finds its rows through an index (by key, or walking one in
    // order). A prepared statement's generic plan is made by its 6th execution and kept until the
    // table's statistics change, which autovacuum's ANALYZE does only a minute or more later: on
    // a new database the tables are empty then, the planner prefers scanning a one-page table to
    // its index, and the plan keeps scanning the table as it grows (measured: 63 buffer accesses
    // per updated payment instead of 10, POST /payments 1,800/s instead of 8,000/s). With
    // sequential scans off, a plan uses the index whatever the table's size when it was made; a
    // statement that has no index to use still scans.
    setup += "SET enable_seqscan = off; ";
    // The server's incarnation (see resolve_lost_commit).
    setup += "SELECT pg_postmaster_start_time()::text";
    const Result r = fresh->exec(setup);
    incarnation_ = r.text(0, 0);
    conn_ = std::move(fresh);
  }

  // The connection for the next round trip. A lost one is replaced when `may_replace` (see
  // send()); otherwise the transaction died with it.
  Connection& live(bool may_replace) {
    if (conn_ && conn_->usable()) return *conn_;
    if (!may_replace) {
      throw StoreError("the connection to the database was lost during the transaction",
                       StoreFault::unavailable);
    }
    connect();
    return *conn_;
  }

  // Sends `queries` in one round trip, after what the transaction still owes the server: its
  // BEGIN (begin() sends nothing) and its buffered writes, so every statement sees the
  // transaction's own writes. Returns the results of `queries`. Outside a transaction (a reader's
  // query), and for a transaction's first round trip (nothing of it has happened on the server),
  // a connection found lost (the server restarted, a failover, an idle timeout) is replaced and
  // the round trip sent once more.
  std::vector<Result> send(std::vector<Query> queries) {
    const bool opens = in_tx_ && !begun_;
    std::vector<Query> all;
    if (opens) all.push_back(query(snapshot_ ? statements().begin_snapshot : statements().begin));
    const std::vector<WriteCheck> checks = take_writes(all);
    const std::size_t first = all.size();
    std::move(queries.begin(), queries.end(), std::back_inserter(all));
    const bool may_reconnect = !in_tx_ || opens;
    Connection* c = &live(may_reconnect);
    // From here on rollback() must end the server's transaction.
    begun_ = in_tx_;
    std::vector<Result> results;
    try {
      results = c->pipeline(all);
    } catch (const StoreError&) {
      if (!may_reconnect || c->usable()) throw;
      results = live(true).pipeline(all);
    }
    for (const auto& check : checks) {
      const auto changed = results[check.at].affected_rows();
      if (changed != static_cast<std::int64_t>(check.rows)) {
        throw StoreError(all[check.at].statement->name + ": " + std::to_string(changed) + " of " +
                         std::to_string(check.rows) + " rows written");
      }
    }
    results.erase(results.begin(), results.begin() + static_cast<std::ptrdiff_t>(first));
    return results;
  }

  Result run(const Statement& st, const Params& p) {
    std::vector<Query> q;
    q.push_back(query(st, p));
    return std::move(send(std::move(q)).front());
  }

  // A statement that changes rows: only inside a transaction. Returns how many rows.
  std::int64_t write(const Statement& st, const Params& p) {
    assert(in_tx_);
    may_have_written_ = true;
    return run(st, p).affected_rows();
  }

  // A write of one row the transaction does not hold: sent now, so it waits for (or fails on)
  // whoever holds the row, and a missing row is found at once.
  void write_now(const Statement& st, const ArrayColumns& row, const char* what) {
    require_one_change(write(st, row.params()), what);
  }

  std::int64_t scalar(const Statement& st) {
    const Result r = run(st, Params{});
    if (r.rows() == 0) throw StoreError("scalar query returned no row");
    return r.int64(0, 0);
  }

  static void require_one_change(std::int64_t changed, const char* what) {
    if (changed != 1) throw StoreError(std::string(what) + ": no such row");
  }

  // A new row: written with the next round trip. A row the transaction holds exists (or was
  // inserted by it): the insert would fail on the primary key, and fails now.
  template <class Id, class Row>
  void stage_insert(std::unordered_map<Id, std::optional<Row>>& rows, std::map<Id, Write>& writes,
                    const Id& id, const Row& row, const char* what) {
    assert(in_tx_);
    auto& held = rows[id];
    if (held) throw StoreError(std::string(what) + ": the row exists");
    held = row;
    writes[id] = Write::insert;
    may_have_written_ = true;
  }

  // The new state of a row the transaction holds: written with the next round trip (an inserted
  // row is inserted in its final state). False when the row is not held: the caller writes it now.
  template <class Id, class Row>
  bool stage_update(std::unordered_map<Id, std::optional<Row>>& rows, std::map<Id, Write>& writes,
                    const Id& id, const Row& row, const char* what) {
    assert(in_tx_);
    const auto it = rows.find(id);
    if (it == rows.end()) return false;
    if (!it->second) throw StoreError(std::string(what) + ": no such row");
    it->second = row;
    writes.try_emplace(id, Write::update);
    may_have_written_ = true;
    return true;
  }

  // A batch statement whose rows must all be written.
  struct WriteCheck {
    std::size_t at;  // its index in the round trip
    std::size_t rows;
  };

  // Appends the buffered writes to `out`, one statement per table and kind (inserts before the
  // updates; accounts before the payments that refer to them), and forgets them.
  std::vector<WriteCheck> take_writes(std::vector<Query>& out) {
    std::vector<WriteCheck> checks;
    if (!tx_.writes_pending()) return checks;
    const auto& s = statements();
    const auto add = [&](const Statement& st, const ArrayColumns& rows, bool all_rows) {
      if (rows.rows() == 0) return;
      if (all_rows) checks.push_back(WriteCheck{.at = out.size(), .rows = rows.rows()});
      out.push_back(query(st, rows.params()));
    };
    ArrayColumns new_accounts(kAccountCols.size());
    ArrayColumns changed_accounts(kAccountCols.size());
    for (const auto& [id, write] : tx_.account_writes) {
      add_account(write == Write::insert ? new_accounts : changed_accounts, *tx_.accounts.at(id));
    }
    ArrayColumns new_payments(kPaymentCols.size());
    ArrayColumns changed_payments(kPaymentChangeCols.size());
    for (const auto& [id, write] : tx_.payment_writes) {
      const core::Payment& x = *tx_.payments.at(id);
      if (write == Write::insert) {
        add_payment(new_payments, x);
      } else {
        add_payment_change(changed_payments, x);
      }
    }
    ArrayColumns events(kEventCols.size());
    for (const Event& e : tx_.events) add_event(events, e);
    ArrayColumns new_keys(kIdempotencyCols.size());
    ArrayColumns completed_keys(kCompletionCols.size());
    for (const auto& [key, write] : tx_.idempotency_writes) {
      const IdempotencyRecord& r = *tx_.idempotency.at(key);
      if (write == Write::insert) {
        add_idempotency(new_keys, r);
      } else {
        add_completion(completed_keys, key, r.response_status, r.response_body);
      }
    }
    add(s.insert_accounts, new_accounts, true);
    add(s.insert_payments, new_payments, true);
    add(s.update_accounts, changed_accounts, true);
    add(s.update_held_payments, changed_payments, true);
    add(s.insert_events, events, true);
    add(s.insert_idempotency, new_keys, true);
    // A record deleted meanwhile (an expired key swept by another instance) changes nothing, as
    // a single UPDATE would.
    add(s.complete_idempotency, completed_keys, false);
    tx_.account_writes.clear();
    tx_.payment_writes.clear();
    tx_.idempotency_writes.clear();
    tx_.events.clear();
    return checks;
  }

  // Rows a locking read returned: held by the transaction from now on. Returns them.
  std::vector<core::Account> hold_accounts(const Result& r) {
    std::vector<core::Account> rows;
    rows.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) rows.push_back(read_account(r, i));
    if (in_tx_) {
      for (const auto& a : rows) tx_.accounts[a.account_id] = a;
    }
    return rows;
  }

  std::vector<core::Payment> hold_payments(const Result& r) {
    std::vector<core::Payment> rows = read_payments(r);
    for (const auto& x : rows) {
      remember_account_of(x);
      if (in_tx_) tx_.payments[x.money_movement_id] = x;
    }
    return rows;
  }

  // A payment's account never changes, and a money_movement_id is never issued twice: what is
  // remembered stays true (a deleted payment's entry only makes lock() lock one account more).
  void remember_account_of(const core::Payment& x) {
    if (account_of_.size() >= kAccountOfCapacity) account_of_.clear();
    account_of_.emplace(x.money_movement_id, x.account_id);
  }

  void end_transaction() noexcept {
    in_tx_ = false;
    begun_ = false;
    snapshot_ = false;
    tx_.clear();
  }

  // The connection was lost while COMMIT of a transaction that wrote (transaction id `xid`) was
  // under way: it may or may not have committed. Reconnects (for up to kCommitResolveLimit) and
  // asks the server with pg_xact_status:
  //  * committed -> the work is durable: commit() returns normally;
  //  * aborted   -> nothing of it was committed: StoreError{unavailable} (the writer may run it
  //    again, since nothing was applied);
  //  * anything else (no server answered in time, the transaction is still in progress, the id is
  //    too old to know) -> StoreError{outcome_unknown}: neither acknowledged nor run again.
  // The answer is trusted only from the same server incarnation (postmaster start time) the
  // transaction ran on. A transaction id is never reused while a server runs, but after a crash
  // restart an id whose WAL never reached the disk is issued again, and a promoted standby counts
  // ids on its own: there the id may name another transaction, so the outcome is unknown.
  void resolve_lost_commit(const std::string& xid, const std::string& reason) {
    const std::string ran_on = incarnation_;
    const auto deadline = std::chrono::steady_clock::now() + kCommitResolveLimit;
    std::string last = "no answer";
    while (std::chrono::steady_clock::now() < deadline) {
      std::optional<std::string> status;
      try {
        connect();
        if (incarnation_ != ran_on) {
          last = "the server restarted or another server answers now (it started at " +
                 incarnation_ + ", the transaction ran on one started at " + ran_on + ")";
          break;
        }
        Params p;
        status = conn_->exec(statements().xact_status, p.add(xid)).optional_text(0, 0);
      } catch (const StoreError& e) {
        last = e.what();
        std::this_thread::sleep_for(kCommitResolvePause);
        continue;
      }
      if (status == "committed") {
        spdlog::warn("the connection was lost during COMMIT ({}); transaction {} did commit",
                     reason, xid);
        return;
      }
      if (status == "aborted") {
        std::string message = "the connection was lost during COMMIT (" + reason;
        message += "); transaction " + xid + " was rolled back";
        throw StoreError(message, StoreFault::unavailable);
      }
      if (!status) {
        last = "the server no longer knows transaction " + xid;
        break;
      }
      // "in progress": the old session has not finished yet (it may be waiting for a
      // synchronous standby, or not have noticed that its client is gone).
      last = "transaction " + xid + " is still in progress";
      std::this_thread::sleep_for(kCommitResolvePause);
    }
    throw StoreError("the connection was lost during COMMIT (" + reason +
                         ") and its outcome is unknown: " + last,
                     StoreFault::outcome_unknown);
  }

  void migrate() {
    Connection& c = *conn_;
    const std::string key =
        std::to_string(kAdvisoryLockClass) + ", " + std::to_string(kMigrationLockKey);
    // A session lock: whichever instance opens first migrates; the others wait here, then find
    // every version applied. A connection that dies releases it. A migration may rewrite a large
    // table: while migrating (and waiting for another instance's migration) the limits meant for
    // the writer's millisecond statements give way to kMigrationLimit.
    c.set_answer_limit(kMigrationLimit);
    c.exec("SET lock_timeout = " + std::to_string(kMigrationLimit.count()));
    c.exec("SELECT pg_advisory_lock(" + key + ")");
    try {
      c.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          "version bigint PRIMARY KEY, applied_at bigint NOT NULL)");
      const auto applied =
          c.exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").int64(0, 0);
      if (applied > static_cast<std::int64_t>(kMigrations.size())) {
        throw StoreError("database schema version " + std::to_string(applied) +
                         " is newer than this build knows");
      }
      for (auto version = applied + 1; version <= static_cast<std::int64_t>(kMigrations.size());
           ++version) {
        c.exec("BEGIN");
        try {
          c.exec(kMigrations.at(static_cast<std::size_t>(version - 1)));
          c.exec("INSERT INTO schema_migrations (version, applied_at) VALUES (" +
                 std::to_string(version) + ", " + std::to_string(wall_clock_ms()) + ")");
          c.exec("COMMIT");
        } catch (...) {
          try {
            if (c.usable()) c.exec("ROLLBACK");
          } catch (const StoreError& e) {
            spdlog::warn("rollback of migration {} failed: {}", version, e.what());
          }
          throw;
        }
        spdlog::info("database migration {} applied", version);
      }
    } catch (...) {
      conn_.reset();  // ends the session, and with it the lock
      throw;
    }
    c.exec("SELECT pg_advisory_unlock(" + key + ")");
    c.exec("RESET lock_timeout");  // back to the connection's default (options)
    c.set_answer_limit(kAnswerLimit);
  }

  ConnectionSettings settings_;
  bool read_only_;
  bool durable_;
  std::unique_ptr<Connection> conn_;
  std::string incarnation_;  // pg_postmaster_start_time() of the server conn_ is connected to
  bool in_tx_ = false;
  bool begun_ = false;             // BEGIN was sent (see send())
  bool snapshot_ = false;          // the transaction is a begin_snapshot() one
  bool may_have_written_ = false;  // a statement of this transaction may have written
  TxRows tx_;                      // empty outside a transaction
  MovementId next_movement_id_ = 0;
  MovementId movement_block_end_ = 0;
  // The account of payments read or inserted lately (see lock()). Bounded: forgotten whole when
  // full (about 1.5 MB at most), then learnt again from the next locking reads.
  static constexpr std::size_t kAccountOfCapacity = std::size_t{1} << 15;
  std::unordered_map<MovementId, AccountId> account_of_;
};

}  // namespace

std::unique_ptr<Store> open_postgres_store(const std::string& uri, const StoreOptions& options) {
  return std::make_unique<PostgresStore>(uri, options);
}

}  // namespace ps::store::postgres
