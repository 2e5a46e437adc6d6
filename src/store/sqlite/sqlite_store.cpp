#include "store/sqlite/sqlite_store.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <system_error>

#include "core/ids.hpp"

namespace ps::store::sqlite {

namespace {

// Versioned migrations: append only, never edit one that has shipped. Each runs in its own
// transaction together with its row in schema_migrations.
constexpr std::array kMigrations = {
    R"sql(
CREATE TABLE accounts (
  account_id      INTEGER PRIMARY KEY,
  created_at      INTEGER NOT NULL,
  status          TEXT    NOT NULL CHECK (status IN ('current', 'delinquent')),
  balance         INTEGER NOT NULL,
  settled_balance INTEGER NOT NULL,
  negative_since  INTEGER NULL
);
CREATE TABLE payments (
  money_movement_id     INTEGER PRIMARY KEY,
  account_id            INTEGER NOT NULL REFERENCES accounts (account_id),
  amount_cents          INTEGER NOT NULL,
  original_amount_cents INTEGER NOT NULL,
  merchant_name         TEXT    NOT NULL,
  status                TEXT    NOT NULL,
  created_at            INTEGER NOT NULL,
  updated_at            INTEGER NOT NULL,
  last_sent_at          INTEGER NOT NULL,
  settle_deadline       INTEGER NOT NULL,
  callbacks_applied     INTEGER NOT NULL
);
CREATE INDEX payments_by_account ON payments (account_id, money_movement_id);
CREATE INDEX payments_by_status ON payments (status, money_movement_id);
CREATE TABLE events (
  event_id              INTEGER PRIMARY KEY AUTOINCREMENT,
  at                    INTEGER NOT NULL,
  kind                  TEXT    NOT NULL,
  account_id            INTEGER NOT NULL,
  money_movement_id     INTEGER NULL,
  amount_cents          INTEGER NULL,
  status                TEXT    NULL,
  settle_deadline       INTEGER NULL,
  balance_after         INTEGER NOT NULL,
  settled_balance_after INTEGER NOT NULL,
  detail                TEXT    NULL
);
CREATE INDEX events_by_payment ON events (money_movement_id, event_id)
  WHERE money_movement_id IS NOT NULL;
CREATE TABLE idempotency_keys (
  key               TEXT PRIMARY KEY,
  request_hash      TEXT    NOT NULL,
  money_movement_id INTEGER NOT NULL,
  response_status   INTEGER NULL,
  response_body     TEXT    NULL,
  created_at        INTEGER NOT NULL
);
CREATE INDEX idempotency_by_payment ON idempotency_keys (money_movement_id);
)sql",
    // 2: the backlog of (re-)sends lives in the payments (resend_at, send_attempts) instead of
    // in memory, and idempotency keys expire (created_at index for the sweep).
    R"sql(
ALTER TABLE payments ADD COLUMN resend_at INTEGER NULL;
ALTER TABLE payments ADD COLUMN send_attempts INTEGER NOT NULL DEFAULT 1;
UPDATE payments SET resend_at = last_sent_at
  WHERE status = 'submitting' AND callbacks_applied = 0;
CREATE INDEX payments_resend_due ON payments (resend_at) WHERE resend_at IS NOT NULL;
CREATE INDEX idempotency_by_created ON idempotency_keys (created_at);
)sql",
    // 3: the writer's readiness probe (app/writer.hpp): after a failed commit it rewrites this one
    // row, a small real write, to learn when the store can write again.
    R"sql(
CREATE TABLE writer_probe (
  id        INTEGER PRIMARY KEY CHECK (id = 1),
  probed_at INTEGER NOT NULL
);
)sql",
    // 4 (PostgreSQL's 5): the accounts whose status a recalculate may change, so that it visits
    // those only, not every account (store::Store::delinquency_candidates).
    R"sql(
CREATE INDEX accounts_delinquency_candidates ON accounts (account_id)
  WHERE negative_since IS NOT NULL OR status <> 'current';
)sql",
};

// Lines of PRAGMA quick_check / integrity_check output kept for the error message.
constexpr int kIntegrityProblemsShown = 10;

TimeMs wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr const char* kPaymentColumns =
    "money_movement_id, account_id, amount_cents, original_amount_cents, merchant_name, status, "
    "created_at, updated_at, last_sent_at, settle_deadline, callbacks_applied, resend_at, "
    "send_attempts";

core::Payment read_payment(const Statement& s) {
  return core::Payment{
      .money_movement_id = s.int64(0),
      .account_id = s.int64(1),
      .amount_cents = s.int64(2),
      .original_amount_cents = s.int64(3),
      .merchant_name = s.text(4),
      .status = s.text(5),
      .created_at = s.int64(6),
      .updated_at = s.int64(7),
      .last_sent_at = s.int64(8),
      .settle_deadline = s.int64(9),
      .callbacks_applied = s.int64(10),
      .resend_at = s.optional_int64(11),
      .send_attempts = s.int64(12),
  };
}

core::Account read_account(const Statement& s) {
  const auto status = core::account_status_from(s.text(2));
  if (!status) throw StoreError("accounts.status holds an unknown value");
  return core::Account{
      .account_id = s.int64(0),
      .created_at = s.int64(1),
      .status = *status,
      .balance = s.int64(3),
      .settled_balance = s.int64(4),
      .negative_since = s.optional_int64(5),
  };
}

// Which file a path names: device and inode.
struct FileId {
  dev_t device = 0;
  ino_t inode = 0;
  bool operator==(const FileId&) const = default;
};

std::string describe(const FileId& id) {
  return "device " + std::to_string(major(id.device)) + ":" + std::to_string(minor(id.device)) +
         ", inode " + std::to_string(id.inode);
}

// The file `path` names now; nullopt with `error` set when it names none (or cannot be read).
std::optional<FileId> file_at(const std::string& path, int& error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    error = errno;
    return std::nullopt;
  }
  return FileId{.device = st.st_dev, .inode = st.st_ino};
}

std::string sql(std::string_view a, std::string_view b = "", std::string_view c = "") {
  std::string out;
  out.append(a).append(b).append(c);
  return out;
}

class SqliteStore final : public Store {
 public:
  SqliteStore(const std::string& path, const StoreOptions& options)
      : path_(path), conn_(path, options.read_only) {
    try {
      set_up(options);
    } catch (const StoreError& e) {
      throw StoreError("database " + path_ + ": " + e.what(), e.fault);
    }
  }

  bool shared() const override { return false; }

  void begin() override {
    begin_->run();
    changes_at_begin_ = sqlite3_total_changes64(conn_.handle());
  }
  bool commit() override {
    const bool wrote = sqlite3_total_changes64(conn_.handle()) != changes_at_begin_;
    commit_->run();
    return wrote;
  }
  void rollback() noexcept override {
    try {
      rollback_->run();
    } catch (const StoreError&) {
      // No transaction was open (SQLite already rolled back after an I/O error): nothing to undo.
    }
  }

  // Two stat() calls, made twice per commit (before COMMIT and after it). Measured on this VM
  // while its 2 cores were busy: 5-6 us per pair (a bare system call cost 1.75 us then), so
  // 10-12 us per commit, against an average commit of 2.9 ms in the same minute (0.4%), and a
  // commit carries a whole batch. Against the fastest fsync seen on this disk (75 us,
  // docs/decisions.md) the four calls would weigh more, a few per cent; still per commit, not
  // per request.
  void verify_identity() override {
    if (!database_id_) return;  // read-only, in memory or temporary: nothing to lose
    verify_same_file(file_path_, *database_id_, "database file");
    verify_same_file(wal_path_, *wal_id_, "write-ahead log");
  }

  RescueReport rescue() override {
    if (!database_id_) throw StoreError("rescue: this database has no file");
    const auto stamp = std::to_string(wall_clock_ms());
    std::string done;
    try {
      done = move_stale_wal_aside(stamp);
    } catch (const StoreError& e) {
      done = "Could not move the write-ahead log away from the path (" + std::string(e.what()) +
             "): remove or move " + wal_path_ + " before the next start.";
    }
    const std::string target = file_path_ + ".rescued-" + stamp;
    if (std::filesystem::exists(target)) throw StoreError("rescue: " + target + " exists already");
    sqlite3* raw = nullptr;
    const int opened =
        sqlite3_open_v2(target.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    const std::unique_ptr<sqlite3, int (*)(sqlite3*)> copy(raw, sqlite3_close_v2);
    if (opened != SQLITE_OK) fail(copy.get(), "rescue: open " + target + ". " + done);
    // The online backup reads through this connection: the file it has open and its WAL, also
    // when neither has a name any more. It copies every page, then syncs the copy.
    sqlite3_backup* backup = sqlite3_backup_init(copy.get(), "main", conn_.handle(), "main");
    if (backup == nullptr) fail(copy.get(), "rescue: backup of " + file_path_ + ". " + done);
    const int stepped = sqlite3_backup_step(backup, -1);
    const int finished = sqlite3_backup_finish(backup);
    if (stepped != SQLITE_DONE || finished != SQLITE_OK) {
      fail(copy.get(), "rescue: copy to " + target + ". " + done);
    }
    sync_directory_of(target);
    return RescueReport{.copy_path = target, .details = done};
  }

  // One process writes, and its transaction is exclusive (BEGIN IMMEDIATE): nothing to lock.
  void lock(const LockSet& /*locks*/) override {}

  void record_probe(TimeMs at) override { record_probe_->bind(1, at).run(); }

  std::optional<core::Account> find_account(AccountId id) override {
    Reset r(*find_account_);
    find_account_->bind(1, id);
    if (!find_account_->step()) return std::nullopt;
    return read_account(*find_account_);
  }

  std::vector<core::Account> list_accounts(AccountId after, std::int64_t limit) override {
    Reset r(*list_accounts_);
    list_accounts_->bind(1, after).bind(2, limit);
    std::vector<core::Account> out;
    while (list_accounts_->step()) out.push_back(read_account(*list_accounts_));
    return out;
  }

  std::vector<AccountId> delinquency_candidates(AccountId after, std::int64_t limit) override {
    Reset r(*delinquency_candidates_);
    delinquency_candidates_->bind(1, after).bind(2, limit);
    std::vector<AccountId> out;
    while (delinquency_candidates_->step()) out.push_back(delinquency_candidates_->int64(0));
    return out;
  }

  AccountId max_account_id() override { return scalar(*max_account_id_); }

  AccountId next_account_id() override { return std::max<AccountId>(max_account_id(), 1) + 1; }

  void insert_account(const core::Account& a) override { bind_account(*insert_account_, a).run(); }

  void update_account(const core::Account& a) override {
    bind_account(*update_account_, a).run();
    require_one_change("update account");
  }

  std::optional<core::Payment> find_payment(MovementId id) override {
    Reset r(*find_payment_);
    find_payment_->bind(1, id);
    if (!find_payment_->step()) return std::nullopt;
    return read_payment(*find_payment_);
  }

  std::vector<core::Payment> list_payments(const PaymentFilter& f) override {
    // One statement per combination of filters, each written so that SQLite can walk an index
    // backwards from the cursor ("?n IS NULL OR ..." would make every listing a table scan).
    auto& st = *list_payments_[(f.account_id ? 1U : 0U) | (f.status ? 2U : 0U)];
    Reset r(st);
    st.bind(3, f.before_id.value_or(std::numeric_limits<MovementId>::max()))
        .bind(4, std::int64_t{f.limit});
    if (f.account_id) st.bind(1, *f.account_id);
    if (f.status) st.bind(2, *f.status);
    std::vector<core::Payment> out;
    while (st.step()) out.push_back(read_payment(st));
    return out;
  }

  std::vector<core::Payment> due_resends(TimeMs now, std::size_t limit) override {
    Reset r(*due_resends_);
    due_resends_->bind(1, now).bind(2, static_cast<std::int64_t>(limit));
    std::vector<core::Payment> out;
    while (due_resends_->step()) out.push_back(read_payment(*due_resends_));
    return out;
  }

  std::optional<TimeMs> next_resend_at() override {
    Reset r(*next_resend_at_);
    if (!next_resend_at_->step()) return std::nullopt;
    return next_resend_at_->optional_int64(0);
  }

  MovementId max_movement_id() override { return scalar(*max_movement_id_); }

  // Only the writer's connection issues ids, and one process writes: a generator that starts
  // above the largest stored id is enough.
  MovementId next_movement_id(TimeMs now) override {
    if (!ids_) ids_.emplace(max_movement_id());
    return ids_->next(now);
  }

  void insert_payment(const core::Payment& p) override { bind_payment(*insert_payment_, p).run(); }

  void update_payment(const core::Payment& p) override {
    bind_payment(*update_payment_, p).run();
    require_one_change("update payment");
  }

  void append_event(const Event& e) override {
    insert_event_->bind(1, e.at)
        .bind(2, e.kind)
        .bind(3, e.account_id)
        .bind(4, e.money_movement_id)
        .bind(5, e.amount_cents)
        .bind(6, e.status)
        .bind(7, e.settle_deadline)
        .bind(8, e.balance_after)
        .bind(9, e.settled_balance_after)
        .bind(10, e.detail)
        .run();
  }

  std::optional<TimeMs> latest_event_time() override {
    Reset r(*latest_event_time_);
    if (!latest_event_time_->step()) return std::nullopt;
    return latest_event_time_->int64(0);
  }

  std::vector<CallbackRecord> callback_history(MovementId id) override {
    Reset r(*callback_history_);
    callback_history_->bind(1, id);
    std::vector<CallbackRecord> out;
    while (callback_history_->step()) {
      out.push_back(CallbackRecord{
          .received_at = callback_history_->int64(0),
          .amount_cents = callback_history_->int64(1),
          .status = callback_history_->optional_text(2),
          .applied = callback_history_->text(3) == event_kind::kCallbackApplied,
      });
    }
    return out;
  }

  void begin_snapshot() override {
    begin_snapshot_->run();
    changes_at_begin_ = sqlite3_total_changes64(conn_.handle());
  }

  std::vector<Event> events_after(EventId after, std::size_t limit) override {
    Reset r(*events_after_);
    events_after_->bind(1, after).bind(2, static_cast<std::int64_t>(limit));
    std::vector<Event> out;
    while (events_after_->step()) {
      const Statement& e = *events_after_;
      out.push_back(Event{
          .event_id = e.int64(0),
          .at = e.int64(1),
          .kind = e.text(2),
          .account_id = e.int64(3),
          .money_movement_id = e.optional_int64(4),
          .amount_cents = e.optional_int64(5),
          .status = e.optional_text(6),
          .settle_deadline = e.optional_int64(7),
          .balance_after = e.int64(8),
          .settled_balance_after = e.int64(9),
          .detail = e.optional_text(10),
      });
    }
    return out;
  }

  std::vector<core::Payment> payments_after(MovementId after, std::size_t limit) override {
    Reset r(*payments_after_);
    payments_after_->bind(1, after).bind(2, static_cast<std::int64_t>(limit));
    std::vector<core::Payment> out;
    while (payments_after_->step()) out.push_back(read_payment(*payments_after_));
    return out;
  }

  std::optional<IdempotencyRecord> find_idempotency(const std::string& key) override {
    find_idempotency_->bind(1, key);
    return read_idempotency(*find_idempotency_);
  }

  std::optional<IdempotencyRecord> find_idempotency_for_payment(MovementId id) override {
    find_idempotency_for_payment_->bind(1, id);
    return read_idempotency(*find_idempotency_for_payment_);
  }

  void insert_idempotency(const IdempotencyRecord& r) override {
    insert_idempotency_->bind(1, r.key)
        .bind(2, r.request_hash)
        .bind(3, r.money_movement_id)
        .bind(4, r.created_at)
        .run();
  }

  void complete_idempotency(const std::string& key, int status, const std::string& body) override {
    complete_idempotency_->bind(1, std::int64_t{status}).bind(2, body).bind(3, key).run();
  }

  std::size_t make_backoffs_due(TimeMs now, TimeMs send_lease_ms) override {
    make_backoffs_due_->bind(1, now).bind(2, send_lease_ms).run();
    return static_cast<std::size_t>(sqlite3_changes(conn_.handle()));
  }

  void delete_idempotency(const std::string& key) override {
    delete_idempotency_->bind(1, key).run();
  }

  std::size_t delete_idempotency_created_before(TimeMs cutoff, std::size_t limit) override {
    expire_idempotency_->bind(1, cutoff).bind(2, static_cast<std::int64_t>(limit)).run();
    return static_cast<std::size_t>(sqlite3_changes(conn_.handle()));
  }

  void ping() override { scalar(*ping_); }

 private:
  // Resets a statement that was stepped for rows, also when reading throws.
  struct Reset {
    explicit Reset(Statement& s) : s_(s) {}
    ~Reset() { s_.reset(); }
    Reset(const Reset&) = delete;
    Reset& operator=(const Reset&) = delete;
    Statement& s_;
  };

  void set_up(const StoreOptions& options) {
    if (options.read_only) {
      prepare();
      return;
    }
    assert(options.wal_checkpoint_pages >= kWalCheckpointPagesMin &&
           options.wal_checkpoint_pages <= kWalCheckpointPagesMax);
    conn_.exec("PRAGMA journal_mode=WAL");
    conn_.exec(options.durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF");
    conn_.exec("PRAGMA foreign_keys=ON");
    // See kWalCheckpointPagesDefault (store.hpp) for the default and why.
    conn_.exec(
        ("PRAGMA wal_autocheckpoint=" + std::to_string(options.wal_checkpoint_pages)).c_str());
    // Before migrations write anything: nothing is written on top of damage.
    check_integrity(options.integrity_check);
    migrate();
    prepare();
    record_identity();
  }

  // A damaged database (pages of payments or events overwritten) opens and even serves most
  // requests; without this check the service said ready and then failed the writes that met the
  // damage, or acknowledged new payments on top of it.
  void check_integrity(IntegrityCheck mode) {
    if (mode == IntegrityCheck::off) return;
    const std::string pragma = mode == IntegrityCheck::full ? "integrity_check" : "quick_check";
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::string> problems;
    try {
      Statement check(conn_.handle(),
                      "PRAGMA " + pragma + "(" + std::to_string(kIntegrityProblemsShown) + ")");
      while (check.step()) {
        auto line = check.text(0);
        if (line != "ok") problems.push_back(std::move(line));
      }
    } catch (const StoreError& e) {
      problems.emplace_back(e.what());  // too damaged to be checked at all
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    if (!problems.empty()) {
      std::string list;
      for (const auto& p : problems) list += (list.empty() ? "" : "; ") + p;
      throw StoreError("integrity check (PRAGMA " + pragma + ") failed after " +
                           std::to_string(ms) + " ms: " + list +
                           ". The file is damaged: restore it from a backup. "
                           "(DATABASE_INTEGRITY_CHECK=off starts on it anyway; the writer then "
                           "stops at the first write that meets the damage.)",
                       StoreFault::corrupt);
    }
    spdlog::info("database integrity check (PRAGMA {}) passed in {} ms", pragma, ms);
  }

  // The files this connection has open, as their paths name them right after opening.
  void record_identity() {
    const char* file = sqlite3_db_filename(conn_.handle(), "main");
    if (file == nullptr || *file == '\0') return;  // in memory or temporary: no file to lose
    file_path_ = file;                             // absolute
    wal_path_ = sqlite3_filename_wal(file);
    int error = 0;
    database_id_ = file_at(file_path_, error);
    wal_id_ = file_at(wal_path_, error);  // migrate()'s first read opened (or created) it
    if (!database_id_ || !wal_id_) {
      throw StoreError("cannot stat the database or its -wal after opening them: " +
                           std::generic_category().message(error),
                       StoreFault::lost);
    }
    // Opening and the stat() above are two steps: SQLite compares the inode it has open with
    // the path's, so a file replaced in between is not taken for ours.
    int moved = 0;
    if (sqlite3_file_control(conn_.handle(), "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK ||
        moved != 0) {
      throw StoreError("the database file was replaced while it was being opened",
                       StoreFault::lost);
    }
  }

  // When the path no longer names this connection's database (a backup moved over it, or the
  // database renamed) but its -wal path still names this connection's WAL, the next start
  // would replay that WAL onto whatever file is at the path now: pages of another database.
  // SQLite itself leaves the WAL in place when it closes a moved database. So move it to a name
  // SQLite never opens; this connection keeps it open and still reads through it.
  std::string move_stale_wal_aside(const std::string& stamp) {
    int error = 0;
    const auto database_now = file_at(file_path_, error);
    const auto wal_now = file_at(wal_path_, error);
    if (!wal_now || *wal_now != *wal_id_ || (database_now && *database_now == *database_id_)) {
      return {};
    }
    const std::string aside = wal_path_ + ".stale-" + stamp;
    if (::rename(wal_path_.c_str(), aside.c_str()) != 0) {
      throw StoreError("rename to " + aside + ": " + std::generic_category().message(errno));
    }
    return "Moved this process's write-ahead log, still at " + wal_path_ + ", to " + aside +
           " so that the next start does not replay it onto the file now at the path.";
  }

  static void verify_same_file(const std::string& path, const FileId& open, const char* what) {
    int error = 0;
    const auto now = file_at(path, error);
    if (!now) {
      throw StoreError(
          std::string(what) + " " + path + " is gone (" + std::generic_category().message(error) +
              "): this process writes to a file (" + describe(open) + ") that no restart will open",
          StoreFault::lost);
    }
    if (*now != open) {
      throw StoreError(std::string(what) + " " + path + " now names another file (" +
                           describe(*now) + ") than the one this process writes to (" +
                           describe(open) + "): it was replaced, e.g. a backup moved over it",
                       StoreFault::lost);
    }
  }

  // A new file's directory entry is durable only once its directory is synced.
  static void sync_directory_of(const std::string& path) {
    const auto dir = std::filesystem::path(path).parent_path();
    const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
      const int error = errno;
      if (fd >= 0) ::close(fd);
      throw StoreError("rescue: sync of the directory of " + path + ": " +
                           std::generic_category().message(error),
                       StoreFault::unavailable);
    }
    ::close(fd);
  }

  void migrate() {
    conn_.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
    Statement current(conn_.handle(), "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    current.step();
    const auto applied = current.int64(0);
    current.reset();
    if (applied > static_cast<std::int64_t>(kMigrations.size())) {
      throw StoreError("database schema version " + std::to_string(applied) +
                       " is newer than this build knows");
    }
    for (auto version = applied + 1; version <= static_cast<std::int64_t>(kMigrations.size());
         ++version) {
      conn_.exec("BEGIN IMMEDIATE");
      try {
        conn_.exec(kMigrations.at(static_cast<std::size_t>(version - 1)));
        Statement record(conn_.handle(),
                         "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)");
        record.bind(1, version).bind(2, wall_clock_ms()).run();
        conn_.exec("COMMIT");
      } catch (...) {
        conn_.exec("ROLLBACK");
        throw;
      }
    }
  }

  void prepare() {
    auto* db = conn_.handle();
    auto make = [db](const std::string& text) { return std::make_unique<Statement>(db, text); };
    // BEGIN IMMEDIATE takes the write lock up front, so a batch never fails half-way on a lock.
    begin_ = make("BEGIN IMMEDIATE");
    commit_ = make("COMMIT");
    // A read transaction: no lock until its first read, which takes its snapshot (WAL).
    begin_snapshot_ = make("BEGIN DEFERRED");
    rollback_ = make("ROLLBACK");
    find_account_ = make(
        "SELECT account_id, created_at, status, balance, settled_balance, negative_since "
        "FROM accounts WHERE account_id = ?1");
    list_accounts_ = make(
        "SELECT account_id, created_at, status, balance, settled_balance, negative_since "
        "FROM accounts WHERE account_id > ?1 ORDER BY account_id LIMIT ?2");
    delinquency_candidates_ = make(
        "SELECT account_id FROM accounts WHERE (negative_since IS NOT NULL OR status <> 'current') "
        "AND account_id > ?1 ORDER BY account_id LIMIT ?2");
    max_account_id_ = make("SELECT COALESCE(MAX(account_id), 0) FROM accounts");
    insert_account_ = make(
        "INSERT INTO accounts (account_id, created_at, status, balance, settled_balance, "
        "negative_since) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    update_account_ = make(
        "UPDATE accounts SET created_at = ?2, status = ?3, balance = ?4, settled_balance = ?5, "
        "negative_since = ?6 WHERE account_id = ?1");
    find_payment_ =
        make(sql("SELECT ", kPaymentColumns, " FROM payments WHERE money_movement_id = ?1"));
    for (std::size_t filters = 0; filters < list_payments_.size(); ++filters) {
      list_payments_[filters] =
          make(sql(sql("SELECT ", kPaymentColumns, " FROM payments WHERE money_movement_id < ?3"),
                   (filters & 1U) != 0 ? " AND account_id = ?1" : "",
                   sql((filters & 2U) != 0 ? " AND status = ?2" : "",
                       " ORDER BY money_movement_id DESC LIMIT ?4")));
    }
    // Both walk payments_resend_due, a partial index that holds only the payments waiting for
    // the provider: a handful in normal operation, the backlog during an outage.
    due_resends_ = make(sql("SELECT ", kPaymentColumns,
                            " FROM payments WHERE resend_at <= ?1 ORDER BY resend_at LIMIT ?2"));
    next_resend_at_ = make("SELECT MIN(resend_at) FROM payments WHERE resend_at IS NOT NULL");
    make_backoffs_due_ = make(
        "UPDATE payments SET resend_at = ?1 WHERE resend_at > ?1 "
        "AND resend_at <> last_sent_at + ?2");
    max_movement_id_ = make("SELECT COALESCE(MAX(money_movement_id), 0) FROM payments");
    insert_payment_ =
        make(sql("INSERT INTO payments (", kPaymentColumns,
                 ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"));
    // Only the mutable columns are SET: SQLite rewrites the entries of every index whose
    // columns appear in SET, so naming account_id would churn payments_by_account on each
    // callback. The immutable ones are matched instead, so an attempt to change one fails.
    update_payment_ = make(
        "UPDATE payments SET amount_cents = ?3, status = ?6, updated_at = ?8, last_sent_at = ?9, "
        "settle_deadline = ?10, callbacks_applied = ?11, resend_at = ?12, send_attempts = ?13 "
        "WHERE money_movement_id = ?1 "
        "AND account_id = ?2 AND original_amount_cents = ?4 AND merchant_name = ?5 "
        "AND created_at = ?7");
    insert_event_ = make(
        "INSERT INTO events (at, kind, account_id, money_movement_id, amount_cents, status, "
        "settle_deadline, balance_after, settled_balance_after, detail) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    // event_id is the rowid: SQLite reads the last entry of the table's b-tree and stops.
    latest_event_time_ = make("SELECT at FROM events ORDER BY event_id DESC LIMIT 1");
    callback_history_ = make(
        "SELECT at, amount_cents, status, kind FROM events WHERE money_movement_id = ?1 "
        "AND kind IN ('callback_applied', 'callback_late') ORDER BY event_id");
    // Both walk the primary key (rowid) from the cursor on.
    events_after_ = make(
        "SELECT event_id, at, kind, account_id, money_movement_id, amount_cents, status, "
        "settle_deadline, balance_after, settled_balance_after, detail FROM events "
        "WHERE event_id > ?1 ORDER BY event_id LIMIT ?2");
    payments_after_ = make(sql("SELECT ", kPaymentColumns,
                               " FROM payments WHERE money_movement_id > ?1 "
                               "ORDER BY money_movement_id LIMIT ?2"));
    find_idempotency_ = make(
        "SELECT key, request_hash, money_movement_id, response_status, response_body, created_at "
        "FROM idempotency_keys WHERE key = ?1");
    find_idempotency_for_payment_ = make(
        "SELECT key, request_hash, money_movement_id, response_status, response_body, created_at "
        "FROM idempotency_keys WHERE money_movement_id = ?1");
    insert_idempotency_ = make(
        "INSERT INTO idempotency_keys (key, request_hash, money_movement_id, created_at) "
        "VALUES (?1, ?2, ?3, ?4)");
    complete_idempotency_ =
        make("UPDATE idempotency_keys SET response_status = ?1, response_body = ?2 WHERE key = ?3");
    delete_idempotency_ = make("DELETE FROM idempotency_keys WHERE key = ?1");
    expire_idempotency_ = make(
        "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys "
        "WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)");
    ping_ = make("SELECT COUNT(*) FROM schema_migrations");
    record_probe_ = make(
        "INSERT INTO writer_probe (id, probed_at) VALUES (1, ?1) "
        "ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at");
  }

  static Statement& bind_account(Statement& s, const core::Account& a) {
    return s.bind(1, a.account_id)
        .bind(2, a.created_at)
        .bind(3, core::to_string(a.status))
        .bind(4, a.balance)
        .bind(5, a.settled_balance)
        .bind(6, a.negative_since);
  }

  static Statement& bind_payment(Statement& s, const core::Payment& p) {
    return s.bind(1, p.money_movement_id)
        .bind(2, p.account_id)
        .bind(3, p.amount_cents)
        .bind(4, p.original_amount_cents)
        .bind(5, std::string_view(p.merchant_name))
        .bind(6, std::string_view(p.status))
        .bind(7, p.created_at)
        .bind(8, p.updated_at)
        .bind(9, p.last_sent_at)
        .bind(10, p.settle_deadline)
        .bind(11, p.callbacks_applied)
        .bind(12, p.resend_at)
        .bind(13, p.send_attempts);
  }

  static std::optional<IdempotencyRecord> read_idempotency(Statement& s) {
    Reset r(s);
    if (!s.step()) return std::nullopt;
    const auto status = s.optional_int64(3);
    return IdempotencyRecord{
        .key = s.text(0),
        .request_hash = s.text(1),
        .money_movement_id = s.int64(2),
        .response_status = status ? std::optional<int>(static_cast<int>(*status)) : std::nullopt,
        .response_body = s.optional_text(4),
        .created_at = s.int64(5),
    };
  }

  static std::int64_t scalar(Statement& s) {
    Reset r(s);
    if (!s.step()) throw StoreError("scalar query returned no row");
    return s.int64(0);
  }

  void require_one_change(const char* what) {
    if (sqlite3_changes(conn_.handle()) != 1) throw StoreError(std::string(what) + ": no such row");
  }

  std::string path_;  // as configured
  Connection conn_;
  sqlite3_int64 changes_at_begin_ = 0;
  // The database file and WAL this connection writes to, by absolute path and identity (empty
  // for read-only, in-memory and temporary databases).
  std::string file_path_;
  std::string wal_path_;
  std::optional<FileId> database_id_;
  std::optional<FileId> wal_id_;
  std::optional<core::MovementIdGenerator> ids_;  // from the first id issued on
  // [filters]: bit 0 account_id, bit 1 status.
  std::array<std::unique_ptr<Statement>, 4> list_payments_;
  std::unique_ptr<Statement> begin_, commit_, rollback_, find_account_, list_accounts_,
      delinquency_candidates_, max_account_id_, insert_account_, update_account_, find_payment_,
      due_resends_, next_resend_at_, max_movement_id_, insert_payment_, update_payment_,
      insert_event_, callback_history_, find_idempotency_, find_idempotency_for_payment_,
      insert_idempotency_, complete_idempotency_, delete_idempotency_, expire_idempotency_,
      make_backoffs_due_, ping_, record_probe_;
  std::unique_ptr<Statement> latest_event_time_;
  std::unique_ptr<Statement> begin_snapshot_, events_after_, payments_after_;
};

}  // namespace

std::unique_ptr<Store> open_sqlite_store(const std::string& path, const StoreOptions& options) {
  return std::make_unique<SqliteStore>(path, options);
}

}  // namespace ps::store::sqlite
