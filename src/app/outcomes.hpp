#pragma once
// The results and requests of the use cases, as the HTTP layer sees them. No store type here:
// src/http includes this header, and the layering check (cmake/check_layers.cmake) forbids
// src/http to reach src/store, directly or through an app header.

#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "core/provider_answer.hpp"
#include "core/types.hpp"
#include "provider/provider.hpp"

namespace ps::app {

enum class Failure {
  account_not_found,
  payment_not_found,
  overflow,                // arithmetic would leave int64
  idempotency_key_reused,  // same key, different request body
  idempotency_key_in_use,  // same key, first request still in flight
  callback_too_late,       // after the settle deadline: recorded, nothing changed
};

template <class T>
using Outcome = std::variant<T, Failure>;

// The account every new store starts with (SPEC 2: the brief's clients use it without opening one).
inline constexpr core::AccountId kBootstrapAccount = 1;

struct NewPayment {
  core::AccountId account_id = kBootstrapAccount;
  core::Cents amount_cents = 0;
  std::string merchant_name;
  std::optional<std::string> idempotency_key;
  std::string request_hash;  // identifies the request body for the idempotency check
};

// The stored first response of an idempotent request.
struct Replay {
  int status = 0;
  std::string body;
};

struct PaymentCreated {
  core::Payment payment;
  std::optional<Replay> replay;  // set when the key was seen before: answer this, send nothing
};

// What one attempt to send a payment came to: the provider's reply and what it proves.
struct ProviderAnswer {
  core::ProviderJudgement judgement;
  provider::ProviderReply reply;
};

struct PaymentResult {
  Outcome<PaymentCreated> created;  // a Failure, or the recorded payment
  ProviderAnswer provider;          // meaningless when created is a Failure or a replay
};

// Renders the HTTP answer for a recorded payment and the provider's answer: (status, body).
// Also what the payment's idempotency key replays.
using CreateRenderer = std::function<Replay(const core::Payment&, const ProviderAnswer&)>;

}  // namespace ps::app
