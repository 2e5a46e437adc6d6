#pragma once
// The Store port: everything the application needs from durable storage. One Store object is one
// connection and is used by one thread at a time. Writes happen only between begin() and commit()
// on the single writer's connection (see app/writer.hpp); readers use their own connections.
// Implementations: sqlite/ (embedded, one process) and postgres/ (shared by any number of service
// instances, SPEC 8). Every method throws StoreError on failure.

#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/history.hpp"
#include "core/types.hpp"

namespace ps::store {

using core::AccountId;
using core::Cents;
using core::MovementId;
using core::TimeMs;

// What a failure says about the store itself, as far as the writer must know (readiness, and
// whether it may go on writing at all).
enum class StoreFault {
  none,         // the operation itself failed (a constraint, a missing row): the store is fine
  unavailable,  // the store cannot write now (disk full, I/O error, locked): may heal by itself
  corrupt,      // the database is damaged: it will not heal, and writing on top may spread it
  lost,         // the file this connection writes to is no longer the database its URL names
  // The transaction lost a race with another writer of a shared database (serialization failure
  // 40001, deadlock 40P01): nothing of it was committed, and running it again may succeed.
  conflict,
  // The connection was lost during COMMIT and the outcome could not be established: the
  // transaction may or may not have committed. Its work must be neither acknowledged nor run
  // again (that could apply it twice).
  outcome_unknown,
};

struct StoreError : std::runtime_error {
  explicit StoreError(const std::string& what, StoreFault fault_ = StoreFault::none)
      : std::runtime_error(what), fault(fault_) {}
  StoreFault fault;
};

// The append-only history (core/history.hpp).
using core::Event;
using core::EventId;
namespace event_kind = core::event_kind;

struct CallbackRecord {
  TimeMs received_at = 0;
  Cents amount_cents = 0;
  std::optional<std::string> status;  // as received; empty when the callback carried none
  bool applied = false;               // false: arrived after the settle deadline
};

struct IdempotencyRecord {
  std::string key;
  std::string request_hash;
  MovementId money_movement_id = 0;
  std::optional<int> response_status;  // empty while the first request is still in flight
  std::optional<std::string> response_body;
  TimeMs created_at = 0;
};

struct PaymentFilter {
  std::optional<AccountId> account_id;
  std::optional<std::string> status;
  std::optional<MovementId> before_id;  // cursor: only ids below this one
  int limit = 100;
};

// The rows a write batch will change, locked before any job of the batch runs (Store::lock).
// Taken always in the same order, so service instances sharing one database cannot deadlock each
// other: the start-up lock, then idempotency keys, then accounts, then payments, each sorted.
struct LockSet {
  bool start_up = false;  // serializes the start-up work (bootstrap) of instances
  std::vector<std::string> idempotency_keys;
  std::vector<AccountId> accounts;
  // These payments, and their accounts (a payment's account never changes).
  std::vector<MovementId> payments;

  void merge(const LockSet& other) {
    start_up = start_up || other.start_up;
    idempotency_keys.insert(idempotency_keys.end(), other.idempotency_keys.begin(),
                            other.idempotency_keys.end());
    accounts.insert(accounts.end(), other.accounts.begin(), other.accounts.end());
    payments.insert(payments.end(), other.payments.begin(), other.payments.end());
  }
  bool empty() const {
    return !start_up && idempotency_keys.empty() && accounts.empty() && payments.empty();
  }
};

struct RescueReport {
  std::string copy_path;
  std::string details;  // other steps taken, as sentences; may be empty
};

class Store {
 public:
  virtual ~Store() = default;
  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Other processes may write to this database (PostgreSQL): reads must come from the store, not
  // from a copy in memory that only this process's commits update.
  virtual bool shared() const = 0;

  virtual void begin() = 0;
  // Inside begin/commit, before the batch's jobs run: locks `locks` until the transaction ends
  // (see LockSet). A shared store must lock every row the batch's jobs will update; rows a job
  // only reads need no lock. SQLite: nothing to do (one writer, and its transaction is
  // exclusive).
  virtual void lock(const LockSet& locks) = 0;
  // True when the transaction changed something (a transaction that only read proves nothing
  // about whether the store can write).
  virtual bool commit() = 0;
  virtual void rollback() noexcept = 0;

  // Throws StoreError{lost} when the database this connection writes to is no longer the one its
  // URL names: for SQLite, the file (or its -wal) was deleted or another file was moved over its
  // path, so every commit lands in a file that a restart will not open. The writer calls it before
  // each COMMIT and again after it, before acknowledging anything. Cheap: two stat() calls.
  virtual void verify_identity() = 0;
  // After a `lost` fault: copies everything this connection still reads (the database it has
  // open) into a new file next to the path, which nothing opens by itself, and makes sure the
  // next start does not mix this database's remains with the file now at the path. Says what it
  // did, for the operator. Throws StoreError when it cannot copy.
  virtual RescueReport rescue() = 0;
  // The writer's readiness probe: a small real write (one row of its own), inside begin/commit.
  virtual void record_probe(TimeMs at) = 0;

  virtual std::optional<core::Account> find_account(AccountId id) = 0;
  // The accounts with an id above `after`, in id order, at most `limit`.
  virtual std::vector<core::Account> list_accounts(AccountId after, std::int64_t limit) = 0;
  // The accounts whose status a recalculate may change (negative settled balance, or
  // delinquent; every other account is current and stays so), id above `after`, in id order, at
  // most `limit`.
  virtual std::vector<AccountId> delinquency_candidates(AccountId after, std::int64_t limit) = 0;
  std::vector<core::Account> all_accounts() {
    return list_accounts(0, std::numeric_limits<std::int64_t>::max());
  }
  virtual AccountId max_account_id() = 0;
  // A new account id, never issued before, also by other instances (SQLite: the largest + 1;
  // PostgreSQL: a sequence). Account 1 is the bootstrap account: never returned.
  virtual AccountId next_account_id() = 0;
  virtual void insert_account(const core::Account& a) = 0;
  virtual void update_account(const core::Account& a) = 0;

  virtual std::optional<core::Payment> find_payment(MovementId id) = 0;
  virtual std::vector<core::Payment> list_payments(const PaymentFilter& filter) = 0;
  // Payments whose resend_at is at or before `now`, earliest first, at most `limit`. A shared
  // store locks the rows it returns and skips rows another transaction holds (FOR UPDATE SKIP
  // LOCKED): each due payment goes to one instance.
  virtual std::vector<core::Payment> due_resends(TimeMs now, std::size_t limit) = 0;
  // The earliest resend_at of any payment; empty when none waits for a (re-)send.
  virtual std::optional<TimeMs> next_resend_at() = 0;
  // Makes every payment waiting out a backoff due at `now`; payments under a send lease (their
  // resend_at is exactly last_sent_at + `send_lease_ms`: an attempt is under way) keep it.
  // Returns how many.
  virtual std::size_t make_backoffs_due(TimeMs now, TimeMs send_lease_ms) = 0;
  // The largest money_movement_id stored; 0 when none.
  virtual MovementId max_movement_id() = 0;
  // A new money_movement_id (writer connection only): never issued before by any instance, also
  // not in an earlier database that was wiped (the provider remembers ids), and at most
  // core::kMaxMovementId. SQLite: core::MovementIdGenerator from the largest stored id;
  // PostgreSQL: blocks from a sequence that starts at the time-based id of its creation.
  virtual MovementId next_movement_id(TimeMs now) = 0;
  virtual void insert_payment(const core::Payment& p) = 0;
  virtual void update_payment(const core::Payment& p) = 0;

  virtual void append_event(const Event& e) = 0;
  // `at` of the newest event (largest event_id); empty when there is none. The service's time
  // high-water mark at start (core::ServiceClock): service time never goes back, so the newest
  // event carries the largest `at`. One primary-key lookup, not a scan.
  virtual std::optional<TimeMs> latest_event_time() = 0;
  virtual std::vector<CallbackRecord> callback_history(MovementId id) = 0;

  // For reading the whole database at once (app/verify.hpp): a read-only transaction in which
  // every read sees one committed state, also while other connections write (SQLite: a deferred
  // transaction, its snapshot taken at its first read; PostgreSQL: REPEATABLE READ READ ONLY).
  // Ended by commit() or rollback().
  virtual void begin_snapshot() = 0;
  // Up to `limit` events with an event_id above `after`, in event_id order.
  virtual std::vector<Event> events_after(EventId after, std::size_t limit) = 0;
  // Up to `limit` payments with a money_movement_id above `after`, in id order.
  virtual std::vector<core::Payment> payments_after(MovementId after, std::size_t limit) = 0;

  virtual std::optional<IdempotencyRecord> find_idempotency(const std::string& key) = 0;
  virtual std::optional<IdempotencyRecord> find_idempotency_for_payment(MovementId id) = 0;
  virtual void insert_idempotency(const IdempotencyRecord& r) = 0;
  virtual void complete_idempotency(const std::string& key, int status,
                                    const std::string& body) = 0;
  virtual void delete_idempotency(const std::string& key) = 0;
  // Deletes up to `limit` keys created before `cutoff`, oldest first; returns how many.
  virtual std::size_t delete_idempotency_created_before(TimeMs cutoff, std::size_t limit) = 0;

  // Cheap query proving the store answers (readiness).
  virtual void ping() = 0;
};

// PRAGMA quick_check or integrity_check when the writer's store opens, before migrations.
// Measured through the service (start-up log line) on a database of 1,000,000 payments with five
// events each (612 MB, in the page cache, 2 cores shared with other work): quick_check 1.3 s of
// CPU, 1.7-1.9 s wall (up to 5.9 s while the cores were busy); integrity_check, which also
// matches every index entry against its table, 3.2 s of CPU, 4.8-5.3 s wall. Reproduce with
// `time sqlite3 DB "PRAGMA quick_check"` (1.2-1.3 s of CPU on the same file).
enum class IntegrityCheck { off, quick, full };

// WAL pages after which a commit checkpoints them into the database (wal_autocheckpoint). 16,384
// pages (64 MiB) instead of SQLite's 1,000: the pages every batch rewrites (the accounts, the ends
// of the tables and indexes) are copied back once per checkpoint, so fewer checkpoints copy far
// fewer pages. Measured in bench/ (callbacks and lifecycle, docs/decisions.md). The cost: up to
// 64 MiB of WAL on disk (the file keeps its largest size and is reused) and to replay after a
// crash. A small volume sets fewer (DATABASE_WAL_CHECKPOINT_PAGES); 0 would turn checkpoints off
// and let the WAL grow without bound, so the range starts at 1.
inline constexpr int kWalCheckpointPagesDefault = 16384;
inline constexpr int kWalCheckpointPagesMin = 1;
inline constexpr int kWalCheckpointPagesMax = 1 << 20;  // 4 GiB of WAL at 4 KiB pages

struct StoreOptions {
  bool durable = true;  // fsync every commit (SQLite synchronous=FULL)
  bool read_only = false;
  // Only for the writer's store (not read_only); the service's default is in config.hpp.
  IntegrityCheck integrity_check = IntegrityCheck::off;
  int wal_checkpoint_pages = kWalCheckpointPagesDefault;
};

// `url`: "sqlite:PATH", or a PostgreSQL URI ("postgresql://..." or "postgres://..."). Applies
// migrations unless read_only.
std::unique_ptr<Store> open_store(const std::string& url, const StoreOptions& options);

}  // namespace ps::store
