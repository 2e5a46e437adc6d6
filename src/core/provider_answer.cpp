#include "core/provider_answer.hpp"

namespace ps::core {

ProviderJudgement judge_provider_answer(int http_status, SendKind kind) {
  using V = ProviderVerdict;
  if (http_status >= 200 && http_status < 300) return {V::accepted, false};
  if (http_status >= 300 && http_status < 400) return {V::unknown, true};
  switch (http_status) {
    case 401:  // credentials
    case 403:  // credentials or an address the provider does not serve us from
    case 405:  // the URL names something that is not the money-movement endpoint
    case 407:  // a proxy in between wants credentials
      return {V::unknown, true};
    case 408:  // "not now", not "no"
    case 429:
      return {V::unknown, false};
    case 409:
      // To a copy, 409 says the provider already holds this money_movement_id (it remembers
      // ids): the first attempt reached it. To a first request it is a refusal like any 4xx.
      return {kind == SendKind::resend ? V::accepted : V::rejected, false};
    default:
      break;
  }
  // 404 stays a rejection: the provider may use it for an account or merchant it does not know.
  if (http_status >= 400 && http_status < 500) return {V::rejected, false};
  return {V::unknown, false};  // 5xx, 1xx, no answer
}

}  // namespace ps::core
