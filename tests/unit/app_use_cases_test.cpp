// The use cases the HTTP layer calls (app/commands.hpp, app/queries.hpp) over each real store
// (SQLite, and PostgreSQL when PS_TEST_POSTGRES_URL names a server: a fresh database per test),
// the real writer and the real readers: their app-level results, and that a store failure leaves
// them as app::Unavailable with the store's message, never as a store type.

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/accounts_view.hpp"
#include "app/commands.hpp"
#include "app/errors.hpp"
#include "app/ledger.hpp"
#include "app/queries.hpp"
#include "app/readers.hpp"
#include "app/writer.hpp"
#include "core/clock.hpp"
#include "store/store.hpp"
#include "test_support/scratch_store.hpp"

namespace ps::app {
namespace {

constexpr TimeMs kT0 = 1'790'000'000'000;

// Runs `op` to completion on an io_context of its own; rethrows what it threw.
template <class R>
R await(boost::asio::awaitable<R> op) {
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::optional<R> result;
  std::exception_ptr error;
  boost::asio::co_spawn(io, std::move(op), [&](std::exception_ptr e, R r) {
    error = e;
    if (!e) result = std::move(r);
    guard.reset();
  });
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

void await(boost::asio::awaitable<void> op) {
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::exception_ptr error;
  boost::asio::co_spawn(io, std::move(op), [&](std::exception_ptr e) {
    error = e;
    guard.reset();
  });
  io.run();
  if (error) std::rethrow_exception(error);
}

Replay no_replay(const Payment&) {
  return Replay{};
}

class AppUseCases : public ::testing::TestWithParam<test_support::StoreKind> {
 protected:
  void SetUp() override {
    PS_NEED_STORE(GetParam());
    db_.emplace(GetParam(), "use_cases.db");
    writer_ =
        std::make_unique<Writer>(store::open_store(db_->url(), {}), clock_, view_, WriterOptions{});
    readers_.emplace(db_->url(), 1);
    commands_.emplace(*writer_, *readers_, ledger_, clock_);
    queries_.emplace(*readers_, &view_);
    writer_->run_now(
        [this](store::Store& s, TimeMs now, Touched& t) { ledger_.bootstrap(s, now, t); });
  }
  void TearDown() override {
    if (writer_) writer_->stop();
    if (readers_) readers_->stop();
  }

  // Payment of `amount` on account 1, created now, before the writer starts.
  MovementId create_payment(Cents amount) {
    MovementId id = 0;
    writer_->run_now([&](store::Store& s, TimeMs now, Touched& t) {
      const auto r = ledger_.create_payment(s,
                                            NewPayment{.account_id = 1,
                                                       .amount_cents = amount,
                                                       .merchant_name = "m",
                                                       .idempotency_key = std::nullopt,
                                                       .request_hash = "h"},
                                            now, t, no_replay);
      id = std::get<PaymentCreated>(r).payment.money_movement_id;
    });
    return id;
  }

  // db_, writer_, commands_, readers_, queries_: made by SetUp (after PS_NEED_STORE), each
  // declared after what it uses, so it goes first.
  std::optional<test_support::ScratchStore> db_;
  core::ManualClock clock_{kT0};
  AccountsView view_;
  Ledger ledger_{LedgerSettings{}};
  std::unique_ptr<Writer> writer_;
  std::optional<Readers> readers_;
  std::optional<Commands> commands_;
  std::optional<Queries> queries_;
};

TEST_P(AppUseCases, OpenAccountAndRecalculateCommitThroughTheWriter) {
  writer_->start();
  const Account opened = await(commands_->open_account());
  EXPECT_EQ(opened.account_id, 2);
  EXPECT_EQ(opened.created_at, kT0);
  ASSERT_TRUE(view_.find(2).has_value());  // published after the commit

  await(commands_->recalculate(10));
  EXPECT_EQ(view_.find(1)->status, core::AccountStatus::current);
  EXPECT_EQ(view_.find(2)->status, core::AccountStatus::current);
}

// Recalculate visits only the accounts whose status may change, kRecalculateChunk per write:
// 2,500 negative accounts among 5,000 take three writes, and every one of them is judged.
TEST_P(AppUseCases, RecalculateJudgesTheNegativeAccountsInChunksOfItsOwn) {
  constexpr AccountId kAccounts = 5'000;
  writer_->run_now([](store::Store& s, TimeMs now, Touched& touched) {
    for (AccountId id = 2; id <= kAccounts + 1; ++id) {
      const bool negative = id % 2 == 0;
      Account a{.account_id = id,
                .created_at = now,
                .status = core::AccountStatus::current,
                .balance = negative ? -100 : 100,
                .settled_balance = negative ? -100 : 100,
                .negative_since = negative ? std::optional<TimeMs>(now) : std::nullopt};
      s.insert_account(a);
      touched.push_back(a);
    }
  });
  writer_->start();
  clock_.set(kT0 + 20'000);
  const auto batches_before = writer_->stats().batches.load();
  await(commands_->recalculate(10));
  EXPECT_EQ(writer_->stats().batches.load() - batches_before, 3u);
  for (AccountId id = 2; id <= kAccounts + 1; ++id) {
    EXPECT_EQ(view_.find(id)->status,
              id % 2 == 0 ? core::AccountStatus::delinquent : core::AccountStatus::current)
        << id;
  }
}

TEST_P(AppUseCases, ApplyCallbackJudgesLatenessByWhenItIsCalled) {
  const MovementId first = create_payment(300);
  const MovementId second = create_payment(400);
  writer_->start();

  clock_.set(kT0 + 1'000);
  const auto applied = await(commands_->apply_callback(
      first, core::CallbackInput{.amount_cents = 250, .status = "settled"}));
  ASSERT_TRUE(std::holds_alternative<Payment>(applied));
  EXPECT_EQ(std::get<Payment>(applied).amount_cents, 250);
  EXPECT_EQ(std::get<Payment>(applied).status, "settled");

  // Settle deadline: 10 s + 2 s grace after creation; this one arrives a minute later.
  clock_.set(kT0 + 60'000);
  const auto late = await(
      commands_->apply_callback(second, core::CallbackInput{.amount_cents = 1, .status = {}}));
  ASSERT_TRUE(std::holds_alternative<Failure>(late));
  EXPECT_EQ(std::get<Failure>(late), Failure::callback_too_late);

  const auto unknown = await(commands_->apply_callback(
      second + 1000, core::CallbackInput{.amount_cents = 1, .status = {}}));
  ASSERT_TRUE(std::holds_alternative<Failure>(unknown));
  EXPECT_EQ(std::get<Failure>(unknown), Failure::payment_not_found);
}

TEST_P(AppUseCases, AStoreFailureLeavesACommandAsUnavailable) {
  EXPECT_THROW(writer_->run_now([](store::Store&, TimeMs, Touched&) {
    throw store::StoreError("database disk image is malformed", store::StoreFault::corrupt);
  }),
               store::StoreError);
  writer_->start();
  try {
    await(commands_->open_account());
    ADD_FAILURE() << "a write on a stopped writer succeeded";
  } catch (const Unavailable& e) {
    EXPECT_EQ(std::string(e.what()),
              "writes are stopped for good: database disk image is malformed");
  }
  EXPECT_THROW(await(commands_->recalculate(10)), Unavailable);
  EXPECT_THROW(
      await(commands_->apply_callback(1, core::CallbackInput{.amount_cents = 1, .status = {}})),
      Unavailable);
}

TEST_P(AppUseCases, ListPaymentsPagesNewestFirstWithACursorWhenThePageIsFull) {
  const MovementId a = create_payment(1);
  const MovementId b = create_payment(2);
  const MovementId c = create_payment(3);
  ASSERT_LT(a, b);
  ASSERT_LT(b, c);

  const PaymentQuery first{.account_id = 1, .status = std::nullopt, .before_id = {}, .limit = 2};
  const auto page1 = await(queries_->list_payments(first));
  ASSERT_EQ(page1.payments.size(), 2u);
  EXPECT_EQ(page1.payments[0].money_movement_id, c);
  EXPECT_EQ(page1.payments[1].money_movement_id, b);
  EXPECT_EQ(page1.next_cursor, b);

  const PaymentQuery second{.account_id = 1, .status = {}, .before_id = b, .limit = 2};
  const auto page2 = await(queries_->list_payments(second));
  ASSERT_EQ(page2.payments.size(), 1u);
  EXPECT_EQ(page2.payments[0].money_movement_id, a);
  EXPECT_FALSE(page2.next_cursor.has_value());

  // A full page has a cursor even when nothing follows (the API's contract: an empty last page).
  const PaymentQuery all{.account_id = {}, .status = "submitting", .before_id = {}, .limit = 3};
  const auto page3 = await(queries_->list_payments(all));
  EXPECT_EQ(page3.payments.size(), 3u);
  EXPECT_EQ(page3.next_cursor, a);

  const PaymentQuery none{.account_id = 7, .status = {}, .before_id = {}, .limit = 2};
  const auto empty = await(queries_->list_payments(none));
  EXPECT_TRUE(empty.payments.empty());
  EXPECT_FALSE(empty.next_cursor.has_value());
}

TEST_P(AppUseCases, FindPaymentReturnsItsCallbacksInTheOrderReceived) {
  const MovementId id = create_payment(500);
  writer_->start();
  clock_.set(kT0 + 1'000);
  const auto applied = await(
      commands_->apply_callback(id, core::CallbackInput{.amount_cents = 450, .status = "settled"}));
  ASSERT_TRUE(std::holds_alternative<Payment>(applied));
  clock_.set(kT0 + 60'000);
  const auto late =
      await(commands_->apply_callback(id, core::CallbackInput{.amount_cents = 9, .status = {}}));
  ASSERT_TRUE(std::holds_alternative<Failure>(late));

  const auto found = await(queries_->find_payment(id));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->payment.money_movement_id, id);
  EXPECT_EQ(found->payment.amount_cents, 450);
  ASSERT_EQ(found->callbacks.size(), 2u);
  EXPECT_EQ(found->callbacks[0].received_at, kT0 + 1'000);
  EXPECT_EQ(found->callbacks[0].amount_cents, 450);
  EXPECT_EQ(found->callbacks[0].status, "settled");
  EXPECT_TRUE(found->callbacks[0].applied);
  EXPECT_EQ(found->callbacks[1].received_at, kT0 + 60'000);
  EXPECT_EQ(found->callbacks[1].amount_cents, 9);
  EXPECT_FALSE(found->callbacks[1].status.has_value());
  EXPECT_FALSE(found->callbacks[1].applied);

  EXPECT_FALSE(await(queries_->find_payment(id + 1000)).has_value());
  EXPECT_NO_THROW(await(queries_->ping()));
}

// GET /accounts on a shared store: callers that arrive while a read is under way share the next
// read, which starts after they arrived and so sees what was committed before them.
TEST_P(AppUseCases, AccountListsOfConcurrentCallersShareOneReadStartedAfterThem) {
  writer_->start();
  // The one reader thread is busy until `release`: the first caller's read waits behind it.
  std::promise<void> release;
  readers_->submit<int>(
      [gate = release.get_future().share()](store::Store&) {
        gate.wait();
        return 0;
      },
      [](std::exception_ptr, int) {});
  boost::asio::io_context io;
  std::vector<Queries::SharedPage> first(1);
  std::vector<Queries::SharedPage> later(19);
  const AccountQuery page{};
  const auto list_into = [this, &page](Queries::SharedPage& out) -> boost::asio::awaitable<void> {
    out = co_await queries_->list_accounts(page);
  };
  boost::asio::co_spawn(io, list_into(first[0]), boost::asio::detached);
  io.poll();  // the first caller's read is queued
  const Account opened = await(commands_->open_account());
  for (auto& out : later) boost::asio::co_spawn(io, list_into(out), boost::asio::detached);
  io.poll();  // they wait for the next read
  release.set_value();
  io.run();

  ASSERT_NE(first[0], nullptr);
  for (const auto& accounts : later) {
    ASSERT_NE(accounts, nullptr);
    EXPECT_EQ(accounts, later[0]) << "one read answered every later caller";
  }
  EXPECT_NE(later[0], first[0]);
  ASSERT_EQ(later[0]->accounts.size(), 2u);
  EXPECT_EQ(later[0]->accounts.back().account_id, opened.account_id);
}

INSTANTIATE_TEST_SUITE_P(Stores, AppUseCases, test_support::both_stores(),
                         test_support::store_kind_name);

TEST(AppQueries, AStoreThatCannotBeOpenedLeavesAQueryAsUnavailable) {
  Readers readers("nosuch:anything", 1);
  Queries queries(readers, nullptr);
  try {
    await(queries.ping());
    ADD_FAILURE() << "ping of an unusable store succeeded";
  } catch (const Unavailable& e) {
    EXPECT_EQ(
        std::string(e.what()),
        "unsupported DATABASE_URL (expected sqlite:PATH, postgresql://... or postgres://...)");
  }
  const PaymentQuery query{};
  EXPECT_THROW(await(queries.list_payments(query)), Unavailable);
  EXPECT_THROW(await(queries.find_payment(1)), Unavailable);
  EXPECT_THROW(await(queries.list_accounts(AccountQuery{})), Unavailable);
  readers.stop();
}

}  // namespace
}  // namespace ps::app
