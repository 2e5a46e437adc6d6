// seed_accounts: fills a database with accounts before payment_service starts on it, for the
// benchmark's scale scenario (bench/README.md). It writes exactly what POST /accounts writes:
// the service's own store (open_store, with its migrations), ledger (Ledger::bootstrap and
// Ledger::open_account: one accounts row and one account_opened event each) and writer
// (Writer::run_now: begin, the work, commit, then publish), only with many accounts per
// transaction instead of one. tests/integration/seed_accounts_test.cpp compares its rows with
// those of accounts opened through the API, on SQLite and on PostgreSQL.
//
// One difference, for speed on PostgreSQL: the store takes each new id from the account_ids
// sequence with a round trip of its own (about 1 ms on a busy 2-core machine: 1,000,000
// accounts would take a quarter of an hour). Here the ids of a transaction are taken from the
// same sequence beforehand, in one statement (the same values, and the sequence ends where the
// service's path leaves it), and handed to the ledger by ReservedIds. On SQLite the store's own
// next_account_id (the largest id + 1) is used.
//
//   seed_accounts --database-url sqlite:FILE --open 999999
//   DATABASE_URL=postgresql://... seed_accounts --open 99999 --per-transaction 10000
//
// Creates account 1 first when the database has no account, as the service does at its start.
// Prints one JSON line: how many accounts it opened, the first and last id, transactions and
// seconds. Exit 0, 1 when the store fails, 2 on bad flags. Run it while no payment_service
// writes to the database.

#include <libpq-fe.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "app/accounts_view.hpp"
#include "app/ledger.hpp"
#include "app/writer.hpp"
#include "core/clock.hpp"
#include "store/store.hpp"

namespace {

using namespace ps;

// `count` values of the account_ids sequence, in one statement on a connection of its own.
// Sequence values are not transactional: taken here or by the writer's nextval, they are the
// same values, and none is ever handed out twice.
std::deque<core::AccountId> reserve_postgres_ids(const std::string& url, std::int64_t count) {
  const std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(url.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw store::StoreError(std::string("reserving account ids: ") + PQerrorMessage(conn.get()));
  }
  const std::string n = std::to_string(count);
  const char* params[] = {n.c_str()};
  const std::unique_ptr<PGresult, decltype(&PQclear)> result(
      PQexecParams(conn.get(),
                   "SELECT nextval('account_ids') FROM generate_series(1, $1::bigint) ORDER BY 1",
                   1, nullptr, params, nullptr, nullptr, 0),
      &PQclear);
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK ||
      PQntuples(result.get()) != static_cast<int>(count)) {
    throw store::StoreError(std::string("reserving account ids: ") + PQerrorMessage(conn.get()));
  }
  std::deque<core::AccountId> ids;
  for (int i = 0; i < PQntuples(result.get()); ++i) {
    ids.push_back(std::stoll(PQgetvalue(result.get(), i, 0)));
  }
  return ids;
}

// The real store, except that next_account_id hands out the ids in `reserved` while it has any.
// Everything else goes to the store as it is.
class ReservedIds final : public store::Store {
 public:
  explicit ReservedIds(std::unique_ptr<store::Store> inner) : inner_(std::move(inner)) {}

  std::deque<core::AccountId> reserved;

  bool shared() const override { return inner_->shared(); }
  void begin() override { inner_->begin(); }
  void lock(const store::LockSet& locks) override { inner_->lock(locks); }
  bool commit() override { return inner_->commit(); }
  void rollback() noexcept override { inner_->rollback(); }
  void verify_identity() override { inner_->verify_identity(); }
  store::RescueReport rescue() override { return inner_->rescue(); }
  void record_probe(core::TimeMs at) override { inner_->record_probe(at); }
  std::optional<core::Account> find_account(core::AccountId id) override {
    return inner_->find_account(id);
  }
  std::vector<core::Account> list_accounts(core::AccountId after, std::int64_t limit) override {
    return inner_->list_accounts(after, limit);
  }
  std::vector<core::AccountId> delinquency_candidates(core::AccountId after,
                                                      std::int64_t limit) override {
    return inner_->delinquency_candidates(after, limit);
  }
  core::AccountId max_account_id() override { return inner_->max_account_id(); }
  core::AccountId next_account_id() override {
    if (reserved.empty()) return inner_->next_account_id();
    const core::AccountId id = reserved.front();
    reserved.pop_front();
    return id;
  }
  void insert_account(const core::Account& a) override { inner_->insert_account(a); }
  void update_account(const core::Account& a) override { inner_->update_account(a); }
  std::optional<core::Payment> find_payment(core::MovementId id) override {
    return inner_->find_payment(id);
  }
  std::vector<core::Payment> list_payments(const store::PaymentFilter& filter) override {
    return inner_->list_payments(filter);
  }
  std::vector<core::Payment> due_resends(core::TimeMs now, std::size_t limit) override {
    return inner_->due_resends(now, limit);
  }
  std::optional<core::TimeMs> next_resend_at() override { return inner_->next_resend_at(); }
  std::size_t make_backoffs_due(core::TimeMs now, core::TimeMs send_lease_ms) override {
    return inner_->make_backoffs_due(now, send_lease_ms);
  }
  core::MovementId max_movement_id() override { return inner_->max_movement_id(); }
  core::MovementId next_movement_id(core::TimeMs now) override {
    return inner_->next_movement_id(now);
  }
  void insert_payment(const core::Payment& p) override { inner_->insert_payment(p); }
  void update_payment(const core::Payment& p) override { inner_->update_payment(p); }
  void append_event(const store::Event& e) override { inner_->append_event(e); }
  std::optional<core::TimeMs> latest_event_time() override { return inner_->latest_event_time(); }
  std::vector<store::CallbackRecord> callback_history(core::MovementId id) override {
    return inner_->callback_history(id);
  }
  void begin_snapshot() override { inner_->begin_snapshot(); }
  std::vector<store::Event> events_after(store::EventId after, std::size_t limit) override {
    return inner_->events_after(after, limit);
  }
  std::vector<core::Payment> payments_after(core::MovementId after, std::size_t limit) override {
    return inner_->payments_after(after, limit);
  }
  std::optional<store::IdempotencyRecord> find_idempotency(const std::string& key) override {
    return inner_->find_idempotency(key);
  }
  std::optional<store::IdempotencyRecord> find_idempotency_for_payment(
      core::MovementId id) override {
    return inner_->find_idempotency_for_payment(id);
  }
  void insert_idempotency(const store::IdempotencyRecord& r) override {
    inner_->insert_idempotency(r);
  }
  void complete_idempotency(const std::string& key, int status, const std::string& body) override {
    inner_->complete_idempotency(key, status, body);
  }
  void delete_idempotency(const std::string& key) override { inner_->delete_idempotency(key); }
  std::size_t delete_idempotency_created_before(core::TimeMs cutoff, std::size_t limit) override {
    return inner_->delete_idempotency_created_before(cutoff, limit);
  }
  void ping() override { inner_->ping(); }

 private:
  std::unique_ptr<store::Store> inner_;
};

struct Seeded {
  std::int64_t opened = 0;
  core::AccountId first_id = 0;
  core::AccountId last_id = 0;
  std::int64_t transactions = 0;
};

Seeded seed(const std::string& database_url, std::int64_t to_open, std::int64_t per_transaction) {
  auto opened_store = store::open_store(database_url, store::StoreOptions{.durable = true});
  const core::SystemTimeSources time_sources;
  const core::ServiceClock clock(time_sources, opened_store->latest_event_time().value_or(0),
                                 [](const core::ClockStep&) {});
  auto reserving = std::make_unique<ReservedIds>(std::move(opened_store));
  ReservedIds& ids = *reserving;
  const bool postgres = ids.shared();
  // Ledger::open_account and bootstrap use none of the settings; the service's defaults anyway.
  app::Ledger ledger(app::LedgerSettings{});
  app::AccountsView view;
  app::Writer writer(std::move(reserving), clock, view, app::WriterOptions{});

  // As the service starts: account 1 when the database has none (SPEC 2).
  writer.run_now([&](store::Store& s, core::TimeMs now, app::Touched& touched) {
    ledger.bootstrap(s, now, touched);
  });
  Seeded out;
  while (out.opened < to_open) {
    const std::int64_t n = std::min(to_open - out.opened, per_transaction);
    if (postgres) ids.reserved = reserve_postgres_ids(database_url, n);
    writer.run_now([&](store::Store& s, core::TimeMs now, app::Touched& touched) {
      for (std::int64_t i = 0; i < n; ++i) {
        const core::Account a = ledger.open_account(s, now, touched);
        if (out.first_id == 0) out.first_id = a.account_id;
        out.last_id = a.account_id;
      }
    });
    if (!ids.reserved.empty()) throw store::StoreError("reserved account ids left unused");
    out.opened += n;
    ++out.transactions;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string database_url = "sqlite:payment_service.db";
  std::int64_t to_open = 0;
  std::int64_t per_transaction = 10'000;
  CLI::App app{
      "seed_accounts: creates account 1 when the database has none (as the service does), then "
      "opens --open accounts through the service's ledger and writer (the rows POST /accounts "
      "writes), --per-transaction per commit. Run it while no payment_service writes to the "
      "database."};
  app.add_option("--database-url", database_url, "sqlite:PATH or postgresql://... as the service")
      ->envname("DATABASE_URL")
      ->capture_default_str();
  app.add_option("--open", to_open, "accounts to open (besides account 1)")
      ->required()
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{100'000'000}));
  app.add_option("--per-transaction", per_transaction, "accounts opened per commit")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : 2;
  }
  spdlog::set_level(spdlog::level::warn);

  const auto started = std::chrono::steady_clock::now();
  Seeded done;
  try {
    done = seed(database_url, to_open, per_transaction);
  } catch (const std::exception& e) {
    std::cerr << "seed_accounts: " << e.what() << "\n";
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << R"({"opened":)" << done.opened << R"(,"first_id":)" << done.first_id
            << R"(,"last_id":)" << done.last_id << R"(,"transactions":)" << done.transactions
            << R"(,"seconds":)" << seconds << "}\n";
  return 0;
}
