#pragma once
// The provider port: what the application needs from the external money-movement API.

#include <boost/asio/awaitable.hpp>

#include <string>

#include "core/types.hpp"

namespace ps::provider {

struct MoneyMovementRequest {
  core::MovementId money_movement_id = 0;
  core::AccountId account_id = 0;
  core::Cents amount_cents = 0;
  std::string merchant_name;
  std::int64_t time_to_settle_seconds = 0;
};

// What came back from one request. What it means for the payment is decided by the ledger's
// rules (core/provider_answer.hpp), not here.
struct ProviderReply {
  int http_status = 0;       // 0 when no HTTP answer arrived
  std::string body_excerpt;  // first bytes of the provider's body, for the 502 problem
  std::string error;         // transport error, when no HTTP answer arrived
  // No answer on a pooled keep-alive connection: the server may have closed it while idle, so
  // the failure says little about the provider; the caller may send again at once on a fresh
  // connection (moving the settle deadline first: the request may have arrived).
  bool stale_connection = false;
};

// Whether a request may go out on a pooled keep-alive connection.
enum class ConnectionChoice { pooled_or_new, new_only };

class Provider {
 public:
  virtual ~Provider() = default;
  // Never throws for transport errors; they are a reply without an HTTP status.
  virtual boost::asio::awaitable<ProviderReply> send(const MoneyMovementRequest& request,
                                                     ConnectionChoice connection) = 0;
};

}  // namespace ps::provider
