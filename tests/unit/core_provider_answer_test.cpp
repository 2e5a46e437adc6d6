// core/provider_answer: what each answer of the provider proves (SPEC 3), for a first request
// and for a copy sent again after an unknown outcome.
#include "core/provider_answer.hpp"

#include <gtest/gtest.h>

namespace ps::core {
namespace {

using V = ProviderVerdict;

TEST(CoreProviderAnswer, EveryStatusClassMeansWhatTheSpecSays) {
  struct Case {
    int http_status;
    V first;
    V resend;
    bool our_fault;
  };
  const Case cases[] = {
      {200, V::accepted, V::accepted, false}, {201, V::accepted, V::accepted, false},
      {204, V::accepted, V::accepted, false}, {400, V::rejected, V::rejected, false},
      {404, V::rejected, V::rejected, false}, {422, V::rejected, V::rejected, false},
      {409, V::rejected, V::accepted, false},  // a copy: the provider already holds the id
      {401, V::unknown, V::unknown, true},    {403, V::unknown, V::unknown, true},
      {405, V::unknown, V::unknown, true},    {407, V::unknown, V::unknown, true},
      {301, V::unknown, V::unknown, true},    {302, V::unknown, V::unknown, true},
      {307, V::unknown, V::unknown, true},    {308, V::unknown, V::unknown, true},
      {408, V::unknown, V::unknown, false},   {429, V::unknown, V::unknown, false},
      {500, V::unknown, V::unknown, false},   {502, V::unknown, V::unknown, false},
      {503, V::unknown, V::unknown, false},   {0, V::unknown, V::unknown, false},
      {100, V::unknown, V::unknown, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.http_status);
    const auto first = judge_provider_answer(c.http_status, SendKind::first);
    const auto resend = judge_provider_answer(c.http_status, SendKind::resend);
    EXPECT_EQ(first.verdict, c.first);
    EXPECT_EQ(resend.verdict, c.resend);
    EXPECT_EQ(first.our_configuration_fault, c.our_fault);
    EXPECT_EQ(resend.our_configuration_fault, c.our_fault);
  }
}

}  // namespace
}  // namespace ps::core
