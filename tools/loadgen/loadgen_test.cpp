// Unit tests of the load generator: histogram accuracy, workload determinism, and a run against
// the in-process fake HTTP server of test_support.
#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include "histogram.hpp"
#include "runner.hpp"
#include "test_support/fake_provider.hpp"
#include "workload.hpp"

namespace loadgen {
namespace {

TEST(LatencyHistogram, BucketsAreContiguousAndMonotonic) {
  std::size_t previous = 0;
  for (std::uint64_t value = 0; value < 1'000'000; ++value) {
    const std::size_t bucket = LatencyHistogram::bucket_of(value);
    ASSERT_TRUE(bucket == previous || bucket == previous + 1) << value;
    ASSERT_LE(value, LatencyHistogram::highest_in_bucket(bucket)) << value;
    if (bucket > 0) {
      ASSERT_GT(value, LatencyHistogram::highest_in_bucket(bucket - 1)) << value;
    }
    previous = bucket;
  }
  EXPECT_EQ(LatencyHistogram::bucket_of(LatencyHistogram::kMaxValue),
            LatencyHistogram::kBuckets - 1);
  EXPECT_EQ(LatencyHistogram::bucket_of(~std::uint64_t{0}), LatencyHistogram::kBuckets - 1);
  EXPECT_EQ(LatencyHistogram::highest_in_bucket(LatencyHistogram::kBuckets - 1),
            LatencyHistogram::kMaxValue);
}

TEST(LatencyHistogram, PercentilesWithinTwoPercentOfExact) {
  std::mt19937_64 random(7);
  std::lognormal_distribution<double> distribution(7.0, 1.5);
  std::vector<std::uint64_t> samples;
  LatencyHistogram histogram;
  for (int i = 0; i < 100'000; ++i) {
    const auto value = static_cast<std::uint64_t>(distribution(random));
    samples.push_back(value);
    histogram.record(value);
  }
  std::sort(samples.begin(), samples.end());
  for (const double q : {0.5, 0.9, 0.99, 0.999}) {
    const auto exact =
        samples[static_cast<std::size_t>(q * static_cast<double>(samples.size())) - 1];
    const auto reported = histogram.percentile(q);
    EXPECT_GE(reported, exact) << q;
    EXPECT_LE(static_cast<double>(reported), static_cast<double>(exact) * 1.02 + 1) << q;
  }
  EXPECT_EQ(histogram.max(), samples.back());
  EXPECT_EQ(histogram.percentile(1.0), samples.back());
  EXPECT_EQ(histogram.count(), samples.size());
}

TEST(LatencyHistogram, MergeAddsCounts) {
  LatencyHistogram a;
  LatencyHistogram b;
  a.record(10);
  b.record(1000);
  b.record(5);
  a.merge(b);
  EXPECT_EQ(a.count(), 3U);
  EXPECT_EQ(a.max(), 1000U);
  EXPECT_EQ(a.percentile(0.5), 10U);
  EXPECT_EQ(LatencyHistogram().percentile(0.5), 0U);
}

TEST(Workload, AmountsAreNonZeroBoundedAndDeterministic) {
  std::set<std::int64_t> seen;
  bool negative = false;
  bool positive = false;
  for (std::uint64_t i = 0; i < 100'000; ++i) {
    const auto amount = amount_for(42, i);
    ASSERT_NE(amount, 0);
    ASSERT_LE(amount, kMaxAbsAmountCents);
    ASSERT_GE(amount, -kMaxAbsAmountCents);
    ASSERT_EQ(amount, amount_for(42, i));
    negative = negative || amount < 0;
    positive = positive || amount > 0;
    seen.insert(amount);
  }
  EXPECT_TRUE(negative && positive);
  EXPECT_GT(seen.size(), 50'000U);
  EXPECT_NE(amount_for(1, 0), amount_for(2, 0));
}

TEST(Workload, PaymentBodyIsJsonWithRoundRobinAccounts) {
  const std::vector<std::int64_t> accounts{1, 2, 3};
  for (std::uint64_t i = 0; i < 6; ++i) {
    const auto body = boost::json::parse(payment_body(5, i, accounts)).as_object();
    EXPECT_EQ(body.at("account_id").as_int64(), accounts[i % 3]);
    EXPECT_EQ(body.at("amount_cents").as_int64(), amount_for(5, i));
    EXPECT_FALSE(body.at("merchant_name").as_string().empty());
  }
}

TEST(Workload, CallbackStatusAlternatesPerId) {
  const std::vector<std::int64_t> ids{11, 22};
  std::vector<std::string> statuses_of_11;
  for (std::uint64_t i = 0; i < 8; ++i) {
    const auto body = boost::json::parse(callback_body(3, i, ids)).as_object();
    EXPECT_EQ(body.at("money_movement_id").as_int64(), ids[i % 2]);
    if (ids[i % 2] == 11) {
      statuses_of_11.emplace_back(body.at("status").as_string());
    }
  }
  EXPECT_EQ(statuses_of_11, (std::vector<std::string>{"pending", "posted", "pending", "posted"}));
}

TEST(Runner, ClosedLoopAgainstFakeServer) {
  test_support::FakeProvider server;
  // Answer like the service: 201 with the payment id, derived from the amount for checking.
  server.set_policy([](const test_support::FakeProvider::Request& request)
                        -> std::optional<test_support::FakeProvider::Action> {
    const auto amount = request.json->as_object().at("amount_cents").as_int64();
    const std::int64_t id = amount + 1'000'000;
    return test_support::FakeProvider::reply(201,
                                             R"({"money_movement_id":)" + std::to_string(id) + "}");
  });
  Config config;
  config.port = server.port();
  config.concurrency = 8;
  config.threads = 2;
  config.count = 300;
  config.seed = 9;
  config.accounts = {1, 2};
  config.keep_results = true;
  const Summary summary = run(config);
  EXPECT_EQ(summary.requests, 300U);
  EXPECT_EQ(summary.status_counts[201], 300U);
  EXPECT_EQ(summary.status_counts[kTransportError], 0U);
  EXPECT_EQ(summary.latency_us.count(), 300U);
  ASSERT_EQ(summary.results.size(), 300U);
  for (std::uint64_t i = 0; i < 300; ++i) {
    EXPECT_EQ(summary.results[i].index, i);
    EXPECT_EQ(summary.results[i].money_movement_id, amount_for(9, i) + 1'000'000);
  }
  EXPECT_EQ(server.request_count(), 300U);
  const auto json = boost::json::parse(summary.to_json(config)).as_object();
  EXPECT_EQ(json.at("mode").as_string(), "payments");
  EXPECT_EQ(json.at("requests").as_int64(), 300);
  EXPECT_EQ(json.at("status_counts").as_object().at("201").as_int64(), 300);
  EXPECT_TRUE(json.at("latency_ms").as_object().contains("p99"));
}

TEST(Runner, DurationStopsAndTransportErrorsAreCounted) {
  std::uint16_t port = 0;
  {
    test_support::FakeProvider server;  // bound then closed: nothing listens there any more
    port = server.port();
  }
  Config config;
  config.port = port;
  config.concurrency = 2;
  config.duration_s = 0.3;
  const Summary summary = run(config);
  EXPECT_GT(summary.requests, 0U);
  EXPECT_EQ(summary.status_counts[kTransportError], summary.requests);
  EXPECT_LT(summary.seconds, 2.0);
  EXPECT_FALSE(summary.first_errors.empty());
}

}  // namespace
}  // namespace loadgen
