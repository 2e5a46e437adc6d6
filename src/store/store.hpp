#pragma once
// The Store port: everything the application needs from durable storage. One Store object is one
// connection and is used by one thread at a time. Writes happen only between begin() and commit()
// on the single writer's connection (see app/writer.hpp); readers use their own connections.
// Implementations: sqlite/ (embedded). Every method throws StoreError on failure.

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/types.hpp"

namespace ps::store {

using core::AccountId;
using core::Cents;
using core::MovementId;
using core::TimeMs;

struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One row of the append-only history (docs/decisions.md, "Storage schema").
struct Event {
  TimeMs at = 0;
  std::string kind;
  AccountId account_id = 0;
  std::optional<MovementId> money_movement_id;
  std::optional<Cents> amount_cents;
  std::optional<std::string> status;
  std::optional<TimeMs> settle_deadline;
  Cents balance_after = 0;
  Cents settled_balance_after = 0;
  std::optional<std::string> detail;
};

namespace event_kind {
inline constexpr const char* kAccountOpened = "account_opened";
inline constexpr const char* kAccountStatus = "account_status";
inline constexpr const char* kPaymentCreated = "payment_created";
inline constexpr const char* kPaymentResent = "payment_resent";
inline constexpr const char* kProviderAccepted = "provider_accepted";
inline constexpr const char* kProviderRejected = "provider_rejected";
inline constexpr const char* kCallbackApplied = "callback_applied";
inline constexpr const char* kCallbackLate = "callback_late";
}  // namespace event_kind

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

class Store {
 public:
  virtual ~Store() = default;
  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;

  virtual std::optional<core::Account> find_account(AccountId id) = 0;
  virtual std::vector<core::Account> list_accounts() = 0;
  virtual AccountId max_account_id() = 0;
  virtual void insert_account(const core::Account& a) = 0;
  virtual void update_account(const core::Account& a) = 0;

  virtual std::optional<core::Payment> find_payment(MovementId id) = 0;
  virtual std::vector<core::Payment> list_payments(const PaymentFilter& filter) = 0;
  // Payments whose resend_at is at or before `now`, earliest first, at most `limit`.
  virtual std::vector<core::Payment> due_resends(TimeMs now, std::size_t limit) = 0;
  // The earliest resend_at of any payment; empty when none waits for a (re-)send.
  virtual std::optional<TimeMs> next_resend_at() = 0;
  // Makes every payment waiting out a backoff due at `now`; payments under a send lease (their
  // resend_at is exactly last_sent_at + `send_lease_ms`: an attempt is under way) keep it.
  // Returns how many.
  virtual std::size_t make_backoffs_due(TimeMs now, TimeMs send_lease_ms) = 0;
  virtual MovementId max_movement_id() = 0;
  virtual void insert_payment(const core::Payment& p) = 0;
  virtual void update_payment(const core::Payment& p) = 0;

  virtual void append_event(const Event& e) = 0;
  // `at` of the newest event (largest event_id); empty when there is none. The service's time
  // high-water mark at start (core::ServiceClock): service time never goes back, so the newest
  // event carries the largest `at`. One primary-key lookup, not a scan.
  virtual std::optional<TimeMs> latest_event_time() = 0;
  virtual std::vector<CallbackRecord> callback_history(MovementId id) = 0;

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

struct StoreOptions {
  bool durable = true;  // fsync every commit (SQLite synchronous=FULL)
  bool read_only = false;
};

// `url`: "sqlite:PATH". Applies migrations unless read_only.
std::unique_ptr<Store> open_store(const std::string& url, const StoreOptions& options);

}  // namespace ps::store
