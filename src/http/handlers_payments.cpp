// POST /payments, GET /payments, GET /payments/{id}.
#include "http/api.hpp"

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <optional>
#include <string>

#include "http/codec.hpp"
#include "http/fingerprint.hpp"
#include "http/requests.hpp"

namespace ps::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using bhttp::status;

app::Replay render_payment_created(const core::Payment& p, const app::ProviderAnswer& answer) {
  switch (answer.judgement.verdict) {
    case core::ProviderVerdict::rejected: {
      if (p.callbacks_applied > 0) {
        // A callback proved that the provider holds the movement before its 4xx arrived, so
        // the 4xx rejected nothing (the ledger keeps the payment): a 502 would tell the client
        // to pay again. The payment as it is, as for an acceptance.
        return app::Replay{201, json::serialize(payment_json(p))};
      }
      Problem rejected = simple_problem(
          status::bad_gateway, "provider-rejected", "The payment provider rejected the payment",
          "the provider answered HTTP " + std::to_string(answer.reply.http_status));
      rejected.extra = json::object{{"provider_status", answer.reply.http_status},
                                    {"provider_body_excerpt", answer.reply.body_excerpt},
                                    {"payment", payment_json(p)}};
      return app::Replay{502, json::serialize(rejected.to_json())};
    }
    case core::ProviderVerdict::accepted:
      return app::Replay{201, json::serialize(payment_json(p))};
    case core::ProviderVerdict::unknown:
      break;
  }
  return app::Replay{202, json::serialize(payment_json(p))};
}

asio::awaitable<Response> Api::create_payment(const Request& req) {
  auto key_or_problem = parse_idempotency_key(req);
  if (auto* p = std::get_if<Problem>(&key_or_problem)) co_return problem(req, *p);
  auto key = std::get<std::optional<std::string>>(std::move(key_or_problem));
  auto parsed = parse_payment_body(req.body());
  if (auto* p = std::get_if<Problem>(&parsed)) co_return problem(req, *p);
  auto& r = std::get<PaymentRequest>(parsed);

  // The fingerprint covers the fields that define the payment, in a fixed order.
  const std::string fingerprint =
      key ? sha256_hex(json::serialize(json::array{r.account_id, r.amount_cents, r.merchant_name}))
          : std::string();
  const app::NewPayment request{
      .account_id = r.account_id,
      .amount_cents = r.amount_cents,
      .merchant_name = std::move(r.merchant_name),
      .idempotency_key = std::move(key),
      .request_hash = fingerprint,
  };
  auto result = co_await ctx_.commands.create_payment(flow_, request);

  if (const auto* f = std::get_if<app::Failure>(&result.created)) {
    co_return problem(req, failure_problem(*f));
  }
  const auto& created = std::get<app::PaymentCreated>(result.created);
  if (!created.replay) {
    using core::ProviderVerdict;
    const auto verdict = result.provider.judgement.verdict;
    auto& counter = verdict == ProviderVerdict::accepted   ? ctx_.metrics.provider_accepted
                    : verdict == ProviderVerdict::rejected ? ctx_.metrics.provider_rejected
                                                           : ctx_.metrics.provider_unknown;
    counter.fetch_add(1, std::memory_order_relaxed);
  }
  const app::Replay answer =
      created.replay ? *created.replay : render_payment_created(created.payment, result.provider);
  auto res = make_response(static_cast<status>(answer.status), req.version(), req.keep_alive(),
                           answer.body, answer.status == 502 ? kProblemJson : kJson);
  if (created.replay) res.set("Idempotent-Replayed", "true");
  co_return res;
}

asio::awaitable<Response> Api::list_payments(const Request& req, boost::urls::params_view query) {
  const auto parsed = parse_payment_query(query);
  if (const auto* p = std::get_if<Problem>(&parsed)) co_return problem(req, *p);
  const auto& filter = std::get<app::PaymentQuery>(parsed);

  const auto page = co_await ctx_.queries.list_payments(filter);
  json::array data;
  data.reserve(page.payments.size());
  for (const auto& p : page.payments) data.push_back(payment_json(p));
  json::value next = nullptr;
  if (page.next_cursor) next = std::to_string(*page.next_cursor);
  co_return json_response(req, status::ok,
                          json::object{{"data", std::move(data)}, {"next_cursor", next}});
}

asio::awaitable<Response> Api::get_payment(const Request& req, std::string_view id_text) {
  const auto id = parse_payment_id(id_text);
  if (const auto* p = std::get_if<Problem>(&id)) co_return problem(req, *p);
  const auto found = co_await ctx_.queries.find_payment(std::get<core::MovementId>(id));
  if (!found) co_return problem(req, not_found("no payment with this money_movement_id"));
  json::object o = payment_json(found->payment);
  json::array callbacks;
  for (const auto& c : found->callbacks) callbacks.push_back(callback_json(c));
  o["callbacks"] = std::move(callbacks);
  co_return json_response(req, status::ok, o);
}

}  // namespace ps::http
