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

struct ProviderReply {
  enum class Kind {
    accepted,  // 2xx
    rejected,  // 4xx: the provider refused the movement
    unknown,   // timeout, connection failure, 5xx: it may or may not have the movement
  };
  Kind kind = Kind::unknown;
  int http_status = 0;       // 0 when no HTTP answer arrived
  std::string body_excerpt;  // first bytes of the provider's body, for the 502 problem
  std::string error;         // transport error, when kind == unknown without an HTTP answer
};

class Provider {
 public:
  virtual ~Provider() = default;
  // Never throws for transport errors; they are a `unknown` reply.
  virtual boost::asio::awaitable<ProviderReply> send(const MoneyMovementRequest& request) = 0;
};

}  // namespace ps::provider
