#pragma once
// What an answer of the provider to `POST /money_movement/` means for the payment (SPEC 3).
// Pure: the HTTP client reports the status it saw; this decides what it proves.

#include "core/types.hpp"

namespace ps::core {

enum class ProviderVerdict {
  accepted,  // the provider holds the movement: `pending`
  rejected,  // the provider refused it: `rejected`, it leaves the balance
  unknown,   // no judgement: the payment stays `submitting` and is re-sent
};

// The first request for a movement, or a copy of it sent again because an earlier attempt's
// outcome was unknown (the provider may already hold the id).
enum class SendKind { first, resend };

struct ProviderJudgement {
  ProviderVerdict verdict = ProviderVerdict::unknown;
  // The provider did not judge the payment because our configuration is wrong (credentials,
  // URL): 401, 403, 405, 407 and 3xx. Logged as an error and counted, re-sent like an unknown
  // outcome, so that fixing the configuration completes the payment.
  bool our_configuration_fault = false;
};

// `http_status` 0: no HTTP answer (timeout, connection failure).
ProviderJudgement judge_provider_answer(int http_status, SendKind kind);

}  // namespace ps::core
