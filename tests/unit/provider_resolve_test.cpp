// provider: resolving the provider's host name is bounded by the connect timeout (issue 8: a
// DNS server that never answered held the payment's request, and every later resolution on
// that I/O thread, for as long as the system resolver cared to wait).
//
// A resolver that never answers cannot be had from the network without one, so this binary
// interposes getaddrinfo(3): the executable's own definition wins over libc's for every caller
// in the process, including Asio's resolver thread. Only the reserved name below hangs (until
// the test releases it); every other name goes to the real resolver.

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>

#include "provider/http_provider.hpp"

namespace {

// RFC 6761: .invalid never resolves, so no real lookup can collide with it.
constexpr const char* kHangingHost = "resolver-never-answers.invalid";

std::mutex hang_mutex;
std::condition_variable hang_released;
bool hang_release = false;
int hang_calls = 0;

void release_hanging_resolutions() {
  const std::lock_guard lock(hang_mutex);
  hang_release = true;
  hang_released.notify_all();
}

}  // namespace

extern "C" int getaddrinfo(const char* __restrict node, const char* __restrict service,
                           const struct addrinfo* __restrict hints,
                           struct addrinfo** __restrict result) {
  if (node != nullptr && std::strcmp(node, kHangingHost) == 0) {
    std::unique_lock lock(hang_mutex);
    ++hang_calls;
    // Bounded even if a test forgets to release it, so the process can always exit.
    hang_released.wait_for(lock, std::chrono::seconds(30), [] { return hang_release; });
    return EAI_AGAIN;
  }
  using Real = int (*)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
  static const auto real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "getaddrinfo"));
  return real(node, service, hints, result);
}

namespace ps::provider {
namespace {

TEST(ProviderResolve, AHangingResolutionTimesOutAfterTheConnectTimeout) {
  constexpr auto kConnectTimeout = std::chrono::milliseconds(200);
  std::optional<ProviderReply> reply;
  std::chrono::steady_clock::duration took{};
  {
    boost::asio::io_context io;
    boost::asio::ssl::context tls(boost::asio::ssl::context::tls_client);
    HttpProvider provider(io.get_executor(),
                          ProviderSettings{.url = std::string("http://") + kHangingHost + ":9",
                                           .username = "u",
                                           .password = "p",
                                           .connect_timeout = kConnectTimeout,
                                           .total_timeout = std::chrono::milliseconds(500)},
                          tls);
    const MoneyMovementRequest request{.money_movement_id = 1,
                                       .account_id = 1,
                                       .amount_cents = 100,
                                       .merchant_name = "m",
                                       .time_to_settle_seconds = 10};
    const auto started = std::chrono::steady_clock::now();
    boost::asio::co_spawn(io, provider.send(request, ConnectionChoice::pooled_or_new),
                          [&](std::exception_ptr e, ProviderReply r) {
                            EXPECT_FALSE(e);
                            reply = std::move(r);
                            took = std::chrono::steady_clock::now() - started;
                          });
    // Ten times the timeout: without a bound the send would wait until the resolver answers.
    // (run_for alone would wait the whole time: the abandoned lookup still counts as work.)
    const auto give_up = started + 10 * kConnectTimeout;
    while (!reply && std::chrono::steady_clock::now() < give_up) {
      io.run_one_until(give_up);
    }
    const bool finished = reply.has_value();
    // Let the hanging lookup return so the resolver's thread can be joined, then finish.
    release_hanging_resolutions();
    if (!finished) io.run_for(std::chrono::seconds(5));
    EXPECT_TRUE(finished) << "send() was still waiting for the resolver after "
                          << (10 * kConnectTimeout).count() << " ms";
  }
  {
    const std::lock_guard lock(hang_mutex);
    EXPECT_EQ(hang_calls, 1) << "the reserved name did not reach the interposed resolver";
  }
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->http_status, 0) << "no answer: an unknown outcome (core/provider_answer)";
  EXPECT_FALSE(reply->stale_connection) << "a new connection, so no immediate copy";
  EXPECT_NE(reply->error.find("resolve"), std::string::npos) << reply->error;
  EXPECT_NE(reply->error.find("timed out"), std::string::npos) << reply->error;
  EXPECT_GE(took, kConnectTimeout);
  EXPECT_LT(took, 5 * kConnectTimeout);
}

}  // namespace
}  // namespace ps::provider
