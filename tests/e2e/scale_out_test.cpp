// Scale-out (SPEC 8, issue 9): several payment_service instances on one PostgreSQL database
// behind nginx, called back by the simulator through nginx, give exactly the results of one.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace e2e {
namespace {

using namespace std::chrono_literals;

constexpr auto kQuiescenceTimeout = 120s;
constexpr std::size_t kInstances = 3;

class ScaleOut : public EndToEndTest {
 protected:
  [[nodiscard]] bool needs_postgres() const override { return true; }

  // Every answer of a run is one of `allowed`; returns the ids of the acknowledged payments
  // (201 or 202), which must be unique.
  static std::set<std::int64_t> acknowledged_ids(const LoadgenRun& run,
                                                 const std::set<unsigned>& allowed) {
    std::set<std::int64_t> ids;
    std::size_t acknowledged = 0;
    for (const auto& result : run.results) {
      EXPECT_TRUE(allowed.count(result.status) == 1)
          << "request " << result.index << " answered " << result.status;
      if (result.status == 201 || result.status == 202) {
        ++acknowledged;
        ids.insert(result.money_movement_id);
      }
    }
    EXPECT_EQ(ids.size(), acknowledged) << "a money_movement_id was issued twice";
    return ids;
  }
};

// 3,000 payments from 32 connections over three accounts through nginx to three instances,
// while other clients open accounts and recalculate on whichever instance nginx picks.
TEST_F(ScaleOut, ThreeInstancesBehindNginxGiveTheResultsOfOne) {
  start_sim({"--callbacks-min", "2", "--callbacks-max", "5"});
  start_instances(kInstances, {});
  ASSERT_EQ(open_account(), 2);
  ASSERT_EQ(open_account(), 3);

  std::atomic<bool> load_done{false};
  std::mutex mutex;
  std::vector<std::int64_t> opened;
  std::vector<std::string> side_errors;
  std::thread accounts([&] {
    HttpClient nginx(service_port(), 30s);
    while (!load_done) {
      const auto response = nginx.request("POST", "/accounts");
      const std::lock_guard lock(mutex);
      if (response.status != 201) {
        side_errors.push_back("POST /accounts: " + response.describe());
        return;
      }
      opened.push_back(int_field(response.object(), "account_id"));
      std::this_thread::sleep_for(20ms);
    }
  });
  std::thread recalculate([&] {
    HttpClient nginx(service_port(), 30s);
    while (!load_done) {
      const auto response = nginx.request("PATCH", "/accounts/recalculate");
      if (response.status != 200) {
        const std::lock_guard lock(mutex);
        side_errors.push_back("PATCH /accounts/recalculate: " + response.describe());
        return;
      }
      std::this_thread::sleep_for(50ms);
    }
  });
  const auto run = run_loadgen({"payments", "--count", "3000", "--concurrency", "32", "--threads",
                                "2", "--accounts", "1,2,3", "--seed", "21"});
  load_done = true;
  accounts.join();
  recalculate.join();
  std::cerr << "[ measured ] payments through nginx to " << kInstances << " instances: " << run.rps
            << " req/s\n";
  EXPECT_TRUE(side_errors.empty()) << side_errors.front();
  ASSERT_EQ(run.results.size(), 3000U);
  const auto ids = acknowledged_ids(run, {201});
  EXPECT_EQ(ids.size(), 3000U);

  // Accounts opened at the same time on different instances are distinct.
  const std::set<std::int64_t> distinct(opened.begin(), opened.end());
  EXPECT_EQ(distinct.size(), opened.size()) << "an account id was issued twice";
  EXPECT_GT(opened.size(), 0U);

  expect_quiescent_and_equal_to_truth(kQuiescenceTimeout, ids);
  // The load was spread: every instance applied callbacks and created payments.
  for (std::size_t i = 0; i < instance_count(); ++i) {
    const auto callbacks = instance_metric(i, "payment_service_callbacks_applied_total");
    const auto created = instance_metric(i, "payment_service_provider_accepted_total");
    std::cerr << "[ measured ] instance " << i << ": " << created << " payments accepted, "
              << callbacks << " callbacks applied\n";
    EXPECT_GT(callbacks, 0) << "instance " << i << " applied no callback";
    EXPECT_GT(created, 0) << "instance " << i << " created no payment";
  }
}

// SIGKILL one of three instances while payments are in flight and the provider is slow: no
// acknowledged payment or callback is lost, and the payments it was sending are re-sent by the
// others within the send lease.
TEST_F(ScaleOut, KillingOneInstanceMidRunLosesNothingAcknowledged) {
  // 300 ms per answer: the killed instance has payments under way at the moment it dies.
  start_sim({"--callbacks-min", "1", "--callbacks-max", "3", "--slow-ms", "300"});
  start_instances(kInstances, {});
  ASSERT_EQ(open_account(), 2);

  std::thread killer([this] {
    std::this_thread::sleep_for(2s);
    instance(0).kill9();
  });
  const auto run = run_loadgen({"payments", "--count", "3000", "--concurrency", "32", "--threads",
                                "2", "--accounts", "1,2", "--seed", "22"});
  const auto killed_at = std::chrono::steady_clock::now();
  killer.join();
  // Requests under way on the killed instance got no answer from it: nginx answers 502 for
  // them (not acknowledged; the payment may exist and is then re-sent by the others).
  const auto ids = acknowledged_ids(run, {201, 202, 502});
  EXPECT_GT(ids.size(), 2500U) << "most requests must succeed on the survivors";

  expect_quiescent_and_equal_to_truth(kQuiescenceTimeout, ids);
  std::cerr << "[ measured ] no payment submitting "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count()
            << " s after the load ended\n";
  EXPECT_TRUE(list_payments("status=submitting").empty());
}

// The payments a dead instance was still trying to send (the provider was down) are taken over by
// another instance once their lease is up: each is sent, and sent by a live instance.
TEST_F(ScaleOut, ADeadInstancesUnsentPaymentsAreSentByAnother) {
  start_sim({"--callbacks-min", "1", "--callbacks-max", "2"});
  start_instances(2, {});
  set_provider_down(true);
  HttpClient first(instance(0).port(), 10s);
  std::set<std::int64_t> waiting;
  for (int i = 0; i < 20; ++i) {
    const auto response = first.post_json(
        "/payments",
        json::object{{"account_id", 1}, {"amount_cents", -100 - i}, {"merchant_name", "m"}});
    ASSERT_EQ(response.status, 202U) << response.describe();
    waiting.insert(int_field(response.object(), "money_movement_id"));
  }
  instance(0).kill9();
  set_provider_down(false);
  // The survivor sends them after their lease (10 s by default) and its own backoff; each must
  // reach the provider. The wait it logs is how long the take-over took (it begins just after the
  // instance died).
  ASSERT_TRUE(expect_quiescent_and_equal_to_truth(60s, waiting).has_value());
  EXPECT_GT(instance_metric(1, "payment_service_provider_resends_total"), 0)
      << "the survivor re-sent nothing";
}

}  // namespace
}  // namespace e2e
