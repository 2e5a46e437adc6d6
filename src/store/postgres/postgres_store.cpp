#include "store/postgres/postgres_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <chrono>
#include <limits>
#include <thread>

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

constexpr const char* kPaymentColumns =
    "money_movement_id, account_id, amount_cents, original_amount_cents, merchant_name, status, "
    "created_at, updated_at, last_sent_at, settle_deadline, callbacks_applied, resend_at, "
    "send_attempts";
constexpr const char* kAccountColumns =
    "account_id, created_at, status, balance, settled_balance, negative_since";
constexpr const char* kIdempotencyColumns =
    "key, request_hash, money_movement_id, response_status, response_body, created_at";

std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) out.append(p);
  return out;
}

// Every statement of the store, prepared on each connection at its first use.
struct Statements {
  Statement find_account{"find_account",
                         cat({"SELECT ", kAccountColumns, " FROM accounts WHERE account_id = $1"})};
  Statement list_accounts{"list_accounts",
                          cat({"SELECT ", kAccountColumns, " FROM accounts ORDER BY account_id"})};
  Statement max_account_id{"max_account_id", "SELECT COALESCE(MAX(account_id), 0) FROM accounts"};
  Statement next_account_id{"next_account_id", "SELECT nextval('account_ids')"};
  Statement insert_account{"insert_account",
                           "INSERT INTO accounts (account_id, created_at, status, balance, "
                           "settled_balance, negative_since) VALUES ($1, $2, $3, $4, $5, $6)"};
  Statement update_account{"update_account",
                           "UPDATE accounts SET created_at = $2, status = $3, balance = $4, "
                           "settled_balance = $5, negative_since = $6 WHERE account_id = $1"};
  Statement find_payment{"find_payment", cat({"SELECT ", kPaymentColumns,
                                              " FROM payments WHERE money_movement_id = $1"})};
  // [filters]: bit 0 account_id, bit 1 status. One statement per combination, each walking an
  // index backwards from the cursor.
  std::array<Statement, 4> list_payments{list_payments_statement(0), list_payments_statement(1),
                                         list_payments_statement(2), list_payments_statement(3)};
  // SKIP LOCKED: a payment another instance is claiming right now is its; each due payment goes
  // to one instance. Both walk payments_resend_due, the partial index of waiting payments.
  Statement due_resends{"due_resends",
                        cat({"SELECT ", kPaymentColumns,
                             " FROM payments WHERE resend_at <= $1 ORDER BY resend_at LIMIT $2 "
                             "FOR UPDATE SKIP LOCKED"})};
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
  Statement insert_payment{"insert_payment",
                           cat({"INSERT INTO payments (", kPaymentColumns,
                                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
                                "$13)"})};
  // The immutable columns are matched, not set, so an attempt to change one fails (as in SQLite).
  Statement update_payment{
      "update_payment",
      "UPDATE payments SET amount_cents = $3, status = $6, updated_at = $8, last_sent_at = $9, "
      "settle_deadline = $10, callbacks_applied = $11, resend_at = $12, send_attempts = $13 "
      "WHERE money_movement_id = $1 AND account_id = $2 AND original_amount_cents = $4 "
      "AND merchant_name = $5 AND created_at = $7"};
  Statement insert_event{"insert_event",
                         "INSERT INTO events (at, kind, account_id, money_movement_id, "
                         "amount_cents, status, settle_deadline, balance_after, "
                         "settled_balance_after, detail) "
                         "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"};
  // The last entry of the primary key's index.
  Statement latest_event_time{"latest_event_time",
                              "SELECT at FROM events ORDER BY event_id DESC LIMIT 1"};
  Statement callback_history{
      "callback_history",
      "SELECT at, amount_cents, status, kind FROM events WHERE money_movement_id = $1 "
      "AND kind IN ('callback_applied', 'callback_late') ORDER BY event_id"};
  Statement find_idempotency{"find_idempotency", cat({"SELECT ", kIdempotencyColumns,
                                                      " FROM idempotency_keys WHERE key = $1"})};
  Statement find_idempotency_for_payment{
      "find_idempotency_for_payment",
      cat({"SELECT ", kIdempotencyColumns, " FROM idempotency_keys WHERE money_movement_id = $1"})};
  Statement insert_idempotency{"insert_idempotency",
                               "INSERT INTO idempotency_keys (key, request_hash, "
                               "money_movement_id, created_at) VALUES ($1, $2, $3, $4)"};
  Statement complete_idempotency{
      "complete_idempotency",
      "UPDATE idempotency_keys SET response_status = $1, response_body = $2 WHERE key = $3"};
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

  // Store::lock, one statement per step (see lock()).
  Statement lock_start_up{"lock_start_up", "SELECT pg_advisory_xact_lock(" +
                                               std::to_string(kAdvisoryLockClass) + ", " +
                                               std::to_string(kStartUpLockKey) + ")"};
  // The subquery's order is the order the outer query calls the lock function in.
  Statement lock_keys{"lock_keys",
                      "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT "
                      "hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k ORDER BY h) AS s"};
  Statement accounts_of_payments{
      "accounts_of_payments",
      "SELECT DISTINCT account_id FROM payments WHERE money_movement_id = ANY($1::bigint[])"};
  // FOR UPDATE locks the rows as they leave the sort: in account_id order.
  Statement lock_all_accounts{"lock_all_accounts",
                              "SELECT account_id FROM accounts ORDER BY account_id FOR UPDATE"};
  Statement lock_accounts{"lock_accounts",
                          "SELECT account_id FROM accounts WHERE account_id = ANY($1::bigint[]) "
                          "ORDER BY account_id FOR UPDATE"};
  Statement lock_payments{"lock_payments",
                          "SELECT money_movement_id FROM payments "
                          "WHERE money_movement_id = ANY($1::bigint[]) "
                          "ORDER BY money_movement_id FOR UPDATE"};

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

std::optional<IdempotencyRecord> read_idempotency(const Result& r) {
  if (r.rows() == 0) return std::nullopt;
  const auto status = r.optional_int64(0, 3);
  return IdempotencyRecord{
      .key = r.text(0, 0),
      .request_hash = r.text(0, 1),
      .money_movement_id = r.int64(0, 2),
      .response_status = status ? std::optional<int>(static_cast<int>(*status)) : std::nullopt,
      .response_body = r.optional_text(0, 4),
      .created_at = r.int64(0, 5),
  };
}

Params& add_account(Params& p, const core::Account& a) {
  return p.add(a.account_id)
      .add(a.created_at)
      .add(core::to_string(a.status))
      .add(a.balance)
      .add(a.settled_balance)
      .add(a.negative_since);
}

Params& add_payment(Params& p, const core::Payment& x) {
  return p.add(x.money_movement_id)
      .add(x.account_id)
      .add(x.amount_cents)
      .add(x.original_amount_cents)
      .add(x.merchant_name)
      .add(x.status)
      .add(x.created_at)
      .add(x.updated_at)
      .add(x.last_sent_at)
      .add(x.settle_deadline)
      .add(x.callbacks_applied)
      .add(x.resend_at)
      .add(x.send_attempts);
}

template <class T>
std::vector<T> sorted_unique(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

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
    // Outside a transaction a lost connection is replaced before the statement runs (run()).
    run_simple("BEGIN");
    in_tx_ = true;
    may_have_written_ = false;
  }

  // In this order, each sorted and without duplicates, so two instances locking overlapping sets
  // always meet in the same order and one waits for the other instead of deadlocking:
  //   1. the start-up lock (an advisory transaction lock under a constant key);
  //   2. idempotency keys: an advisory transaction lock on a 64-bit hash of each key, in hash
  //      order (a key's row may not exist yet, so a row lock cannot serve; a hash collision only
  //      makes two requests wait for each other);
  //   3. accounts: every one, or the given ones plus the accounts of the given payments (read
  //      first without a lock: a payment's account never changes), FOR UPDATE in account_id
  //      order;
  //   4. the given payments, FOR UPDATE in money_movement_id order.
  // One statement per step. After the locks, every read of the transaction (READ COMMITTED: a
  // new snapshot per statement) sees the latest committed rows.
  void lock(const LockSet& locks) override {
    assert(in_tx_);
    const auto& s = statements();
    may_have_written_ = true;  // row locks are written into the rows
    if (locks.start_up) run(s.lock_start_up, Params{});
    if (!locks.idempotency_keys.empty()) {
      const auto keys = sorted_unique(locks.idempotency_keys);
      Params p;
      run(s.lock_keys, p.add_array(keys));
    }
    const auto payments = sorted_unique(locks.payments);
    if (locks.all_accounts) {
      run(s.lock_all_accounts, Params{});
    } else {
      std::vector<AccountId> accounts = locks.accounts;
      if (!payments.empty()) {
        Params p;
        const Result r = run(s.accounts_of_payments, p.add_array(payments));
        for (int i = 0; i < r.rows(); ++i) accounts.push_back(r.int64(i, 0));
      }
      accounts = sorted_unique(std::move(accounts));
      if (!accounts.empty()) {
        Params p;
        run(s.lock_accounts, p.add_array(accounts));
      }
    }
    if (!payments.empty()) {
      Params p;
      run(s.lock_payments, p.add_array(payments));
    }
  }

  // Whether the transaction wrote: it has a transaction id (PostgreSQL assigns one at the first
  // write, row locks included). That id is also what establishes the outcome when the connection
  // is lost during COMMIT: see resolve_lost_commit. COMMIT is sent once, never again.
  bool commit() override {
    assert(in_tx_);
    std::optional<std::string> xid;
    if (may_have_written_) xid = run(statements().current_xid, Params{}).optional_text(0, 0);
    Result done;
    try {
      done = conn_->exec("COMMIT");
    } catch (const StoreError& e) {
      in_tx_ = false;
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
    in_tx_ = false;
    // COMMIT of a transaction that had failed answers "ROLLBACK" and no error.
    if (std::string_view(PQcmdStatus(done.get())) != "COMMIT") {
      throw StoreError("commit: the transaction had failed and was rolled back");
    }
    return xid.has_value();
  }

  void rollback() noexcept override {
    if (!in_tx_) return;  // after commit() threw, or after a failed begin()
    in_tx_ = false;
    // A lost connection took the transaction with it: the server rolled it back.
    if (!conn_ || !conn_->usable()) return;
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
    Params p;
    const Result r = run(statements().find_account, p.add(id));
    if (r.rows() == 0) return std::nullopt;
    return read_account(r, 0);
  }

  std::vector<core::Account> list_accounts() override {
    const Result r = run(statements().list_accounts, Params{});
    std::vector<core::Account> out;
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back(read_account(r, i));
    return out;
  }

  AccountId max_account_id() override { return scalar(statements().max_account_id); }

  // A sequence that starts at 2; a value is never returned twice, also not to another instance.
  AccountId next_account_id() override { return scalar(statements().next_account_id); }

  void insert_account(const core::Account& a) override {
    Params p;
    write(statements().insert_account, add_account(p, a));
  }

  void update_account(const core::Account& a) override {
    Params p;
    require_one_change(write(statements().update_account, add_account(p, a)), "update account");
  }

  std::optional<core::Payment> find_payment(MovementId id) override {
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

  std::vector<core::Payment> due_resends(TimeMs now, std::size_t limit) override {
    if (in_tx_) may_have_written_ = true;  // FOR UPDATE
    Params p;
    return read_payments(
        run(statements().due_resends, p.add(now).add(static_cast<std::int64_t>(limit))));
  }

  std::optional<TimeMs> next_resend_at() override {
    return run(statements().next_resend_at, Params{}).optional_int64(0, 0);
  }

  std::size_t make_backoffs_due(TimeMs now, TimeMs send_lease_ms) override {
    Params p;
    return static_cast<std::size_t>(
        write(statements().make_backoffs_due, p.add(now).add(send_lease_ms)));
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
    Params p;
    write(statements().insert_payment, add_payment(p, x));
  }

  void update_payment(const core::Payment& x) override {
    Params p;
    require_one_change(write(statements().update_payment, add_payment(p, x)), "update payment");
  }

  void append_event(const Event& e) override {
    Params p;
    p.add(e.at)
        .add(e.kind)
        .add(e.account_id)
        .add(e.money_movement_id)
        .add(e.amount_cents)
        .add(e.status)
        .add(e.settle_deadline)
        .add(e.balance_after)
        .add(e.settled_balance_after)
        .add(e.detail);
    write(statements().insert_event, p);
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

  std::optional<IdempotencyRecord> find_idempotency(const std::string& key) override {
    Params p;
    return read_idempotency(run(statements().find_idempotency, p.add(key)));
  }

  std::optional<IdempotencyRecord> find_idempotency_for_payment(MovementId id) override {
    Params p;
    return read_idempotency(run(statements().find_idempotency_for_payment, p.add(id)));
  }

  void insert_idempotency(const IdempotencyRecord& r) override {
    Params p;
    write(statements().insert_idempotency,
          p.add(r.key).add(r.request_hash).add(r.money_movement_id).add(r.created_at));
  }

  void complete_idempotency(const std::string& key, int status, const std::string& body) override {
    Params p;
    write(statements().complete_idempotency, p.add(std::int64_t{status}).add(body).add(key));
  }

  void delete_idempotency(const std::string& key) override {
    Params p;
    write(statements().delete_idempotency, p.add(key));
  }

  std::size_t delete_idempotency_created_before(TimeMs cutoff, std::size_t limit) override {
    Params p;
    return static_cast<std::size_t>(write(statements().expire_idempotency,
                                          p.add(cutoff).add(static_cast<std::int64_t>(limit))));
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
    // The server's incarnation (see resolve_lost_commit).
    setup += "SELECT pg_postmaster_start_time()::text";
    const Result r = fresh->exec(setup);
    incarnation_ = r.text(0, 0);
    conn_ = std::move(fresh);
  }

  // The connection for the next statement. Outside a transaction, a lost connection is replaced
  // (the next begin(), or a reader's next query); inside one, the transaction died with it.
  Connection& live() {
    if (conn_ && conn_->usable()) return *conn_;
    if (in_tx_) {
      throw StoreError("the connection to the database was lost during the transaction",
                       StoreFault::unavailable);
    }
    connect();
    return *conn_;
  }

  // Runs a statement. Outside a transaction (reads of a reader connection, BEGIN) a statement
  // that met a connection lost while idle (the server restarted, a failover, an idle timeout)
  // runs once more on a new connection: nothing had happened yet.
  Result run(const Statement& st, const Params& p) {
    Connection& c = live();
    try {
      return c.exec(st, p);
    } catch (const StoreError&) {
      if (in_tx_ || c.usable()) throw;
    }
    return live().exec(st, p);
  }

  Result run_simple(const std::string& sql) {
    Connection& c = live();
    try {
      return c.exec(sql);
    } catch (const StoreError&) {
      if (in_tx_ || c.usable()) throw;
    }
    return live().exec(sql);
  }

  // A statement that changes rows: only inside a transaction. Returns how many rows.
  std::int64_t write(const Statement& st, const Params& p) {
    assert(in_tx_);
    may_have_written_ = true;
    return run(st, p).affected_rows();
  }

  std::int64_t scalar(const Statement& st) {
    const Result r = run(st, Params{});
    if (r.rows() == 0) throw StoreError("scalar query returned no row");
    return r.int64(0, 0);
  }

  static void require_one_change(std::int64_t changed, const char* what) {
    if (changed != 1) throw StoreError(std::string(what) + ": no such row");
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
  bool may_have_written_ = false;  // a statement of this transaction may have written
  MovementId next_movement_id_ = 0;
  MovementId movement_block_end_ = 0;
};

}  // namespace

std::unique_ptr<Store> open_postgres_store(const std::string& uri, const StoreOptions& options) {
  return std::make_unique<PostgresStore>(uri, options);
}

}  // namespace ps::store::postgres
