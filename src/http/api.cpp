#include "http/api.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <chrono>
#include <sstream>

#include "core/delinquency.hpp"
#include "http/codec.hpp"
#include "http/openapi_document.hpp"

namespace ps::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using bhttp::status;

namespace {

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kProblemJson = "application/problem+json";
constexpr std::size_t kMaxIdempotencyKeyChars = 255;
constexpr std::int64_t kMaxPageSize = 1000;
constexpr std::int64_t kDefaultPageSize = 100;
constexpr std::int64_t kDefaultDelinquencyWindowSeconds = 10;

Response make_response(status s, unsigned version, bool keep_alive, std::string body,
                       std::string_view content_type) {
  Response res{s, version};
  res.set(bhttp::field::content_type, content_type);
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response json_response(const Request& req, status s, const json::value& v) {
  return make_response(s, req.version(), req.keep_alive(), json::serialize(v), kJson);
}

Response problem(const Request& req, const Problem& p) {
  return problem_response(p, req.version(), req.keep_alive());
}

Problem simple_problem(status s, std::string slug, std::string title, std::string detail) {
  return Problem{.status = s,
                 .slug = std::move(slug),
                 .title = std::move(title),
                 .detail = std::move(detail),
                 .errors = {},
                 .extra = {}};
}

Problem failure_problem(app::Failure f) {
  switch (f) {
    case app::Failure::account_not_found:
      return not_found("no account with this account_id");
    case app::Failure::payment_not_found:
      return not_found("no payment with this money_movement_id");
    case app::Failure::overflow:
      return validation_problem({{"amount_cents", "would overflow the account's balance"}});
    case app::Failure::idempotency_key_reused:
      return simple_problem(status::unprocessable_entity, "idempotency-key-reused",
                            "Idempotency-Key reused with a different request",
                            "this Idempotency-Key was first used with another request body");
    case app::Failure::idempotency_key_in_use:
      return simple_problem(status::conflict, "idempotency-key-in-use",
                            "A request with this Idempotency-Key is in progress",
                            "retry after the first request has been answered");
    case app::Failure::callback_too_late:
      return simple_problem(status::conflict, "callback-too-late",
                            "The payment's settle window has closed",
                            "the callback arrived after settle_deadline; it was recorded and "
                            "changed nothing");
  }
  return simple_problem(status::internal_server_error, "internal", "Internal error", "");
}

// Query parameters of interest, decoded; repeated keys keep the last value.
std::map<std::string, std::string, std::less<>> query_params(boost::urls::params_view params) {
  std::map<std::string, std::string, std::less<>> out;
  for (const auto& p : params) out[p.key] = p.value;
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

// Splits "/a/b/" into {"a","b"}; the trailing slash is optional on every path (SPEC 3).
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    const std::size_t start = i;
    while (i < path.size() && path[i] != '/') ++i;
    if (i > start) out.push_back(path.substr(start, i - start));
  }
  return out;
}

}  // namespace

Response problem_response(const Problem& p, unsigned version, bool keep_alive) {
  auto res =
      make_response(p.status, version, keep_alive, json::serialize(p.to_json()), kProblemJson);
  return res;
}

app::Replay render_payment_created(const core::Payment& p, const app::ProviderAnswer& answer) {
  switch (answer.judgement.verdict) {
    case core::ProviderVerdict::rejected: {
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

asio::awaitable<Response> Api::handle(const Request& req, const asio::ip::address& peer) {
  const auto started = std::chrono::steady_clock::now();
  Route route_id = Route::other;
  Response res;
  try {
    res = co_await route(req, peer, route_id);
  } catch (const app::Overloaded& e) {
    ctx_.metrics.overloaded.fetch_add(1, std::memory_order_relaxed);
    log_failure(req, route_id, 503, "overloaded", e.what());
    res = problem(
        req, simple_problem(status::service_unavailable, "overloaded", "The service is overloaded",
                            "the write queue is full; retry shortly"));
    res.set(bhttp::field::retry_after, "1");
  } catch (const store::StoreError& e) {
    log_failure(req, route_id, 503, "store unavailable", e.what());
    res = problem(
        req, simple_problem(status::service_unavailable, "unavailable", "The store is unavailable",
                            "nothing was changed; retry later"));
    res.set(bhttp::field::retry_after, "1");
  } catch (const std::exception& e) {
    log_failure(req, route_id, 500, "internal error", e.what());
    res = problem(req, simple_problem(status::internal_server_error, "internal", "Internal error",
                                      "the request failed unexpectedly"));
  }
  ctx_.metrics.count(route_id, res.result_int(), started);
  co_return res;
}

// The client sees only "unavailable" or "internal"; the operator needs the cause. A failing disk
// or database fails every request alike, thousands a second, so each cause is logged at most
// once per second (RateLimitedLog), with the number of answers held back since its last line.
void Api::log_failure(const Request& req, Route route, unsigned status, std::string_view kind,
                      std::string_view cause) {
  const std::string key =
      std::to_string(status) + " " + std::string(kind) + ": " + std::string(cause);
  std::uint64_t suppressed = 0;
  if (!ctx_.failure_log.should_log(key, suppressed)) return;
  const auto method = req.method_string();
  const auto level =
      status == 503 && kind == "overloaded" ? spdlog::level::warn : spdlog::level::err;
  if (suppressed == 0) {
    spdlog::log(level, "{} {} answered {}", std::string_view(method.data(), method.size()),
                route_name(route), key);
  } else {
    spdlog::log(level, "{} {} answered {} ({} more like it since the last such line)",
                std::string_view(method.data(), method.size()), route_name(route), key, suppressed);
  }
}

asio::awaitable<Response> Api::route(const Request& req, const asio::ip::address& peer,
                                     Route& route) {
  const auto target = boost::urls::parse_origin_form(req.target());
  if (!target) {
    co_return problem(req, validation_problem({{"target", "is not a valid request target"}}));
  }
  const std::string path = target->path();
  const auto seg = segments(path);
  const auto query = target->params();
  const auto method = req.method();

  auto not_allowed = [&req](std::string_view allow) {
    auto res = problem(
        req, simple_problem(status::method_not_allowed, "method-not-allowed", "Method not allowed",
                            std::string(req.method_string()) +
                                " is not allowed here; allowed: " + std::string(allow)));
    res.set(bhttp::field::allow, allow);
    return res;
  };
  using bhttp::verb;

  if (seg.size() == 1 && seg[0] == "payments") {
    if (method == verb::post) {
      route = Route::payments_create;
      co_return co_await create_payment(req);
    }
    if (method == verb::get) {
      route = Route::payments_list;
      co_return co_await list_payments(req, query);
    }
    co_return not_allowed("GET, POST");
  }
  if (seg.size() == 2 && seg[0] == "payments") {
    route = Route::payment_get;
    if (method == verb::get) co_return co_await get_payment(req, seg[1]);
    co_return not_allowed("GET");
  }
  if (seg.size() == 1 && seg[0] == "accounts") {
    if (method == verb::get) {
      route = Route::accounts_list;
      co_return list_accounts(req);
    }
    if (method == verb::post) {
      route = Route::accounts_create;
      co_return co_await open_account(req);
    }
    co_return not_allowed("GET, POST");
  }
  if (seg.size() == 2 && seg[0] == "accounts" && seg[1] == "recalculate") {
    route = Route::recalculate;
    if (method == verb::patch || method == verb::post) co_return co_await recalculate(req, query);
    co_return not_allowed("PATCH, POST");
  }
  if (seg.size() == 2 && seg[0] == "accounts") {
    route = Route::account_get;
    if (method == verb::get) co_return get_account(req, seg[1]);
    co_return not_allowed("GET");
  }
  if (seg.size() == 1 && seg[0] == "money_movement_request_callback") {
    route = Route::callback;
    if (method == verb::post) co_return co_await callback(req, peer);
    co_return not_allowed("POST");
  }
  if (seg.size() == 1 && (seg[0] == "healthz" || seg[0] == "readyz")) {
    route = Route::health;
    if (method != verb::get) co_return not_allowed("GET");
    if (seg[0] == "readyz") co_return co_await ready(req);
    co_return json_response(req, status::ok, json::object{{"status", "ok"}});
  }
  if (seg.size() == 1 && seg[0] == "metrics") {
    route = Route::metrics;
    if (method != verb::get) co_return not_allowed("GET");
    co_return metrics(req);
  }
  if (seg.size() == 1 && (seg[0] == "schema" || seg[0] == "openapi.json")) {
    route = Route::schema;
    if (method != verb::get) co_return not_allowed("GET");
    const bool yaml = seg[0] == "schema";
    co_return make_response(status::ok, req.version(), req.keep_alive(),
                            std::string(yaml ? openapi_yaml() : openapi_json()),
                            yaml ? "application/yaml" : kJson);
  }
  co_return problem(req, not_found("no endpoint at " + path));
}

asio::awaitable<Response> Api::create_payment(const Request& req) {
  std::optional<std::string> key;
  if (const auto it = req.find("Idempotency-Key"); it != req.end()) {
    const std::string_view value = it->value();
    bool printable = true;
    for (const char c : value) printable = printable && c >= 0x20 && c <= 0x7e;
    if (value.empty() || value.size() > kMaxIdempotencyKeyChars || !printable) {
      co_return problem(
          req,
          validation_problem({{"Idempotency-Key", "must be 1 to 255 printable ASCII characters"}}));
    }
    key = std::string(value);
  }
  auto body = parse_object(req.body());
  if (auto* p = std::get_if<Problem>(&body)) co_return problem(req, *p);
  auto parsed = parse_payment_request(std::get<json::object>(body));
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
  auto result = co_await flow_.create(request);

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
  const auto params = query_params(query);
  store::PaymentFilter filter;
  filter.limit = static_cast<int>(kDefaultPageSize);
  std::vector<FieldError> errors;
  if (const auto it = params.find("account_id"); it != params.end()) {
    if (const auto id = parse_id(it->second)) {
      filter.account_id = *id;
    } else {
      errors.push_back({"account_id", "must be a positive integer"});
    }
  }
  if (const auto it = params.find("status"); it != params.end()) {
    if (core::is_valid_status_token(it->second)) {
      filter.status = it->second;
    } else {
      errors.push_back({"status", "must be a lower-case token of 1 to 32 letters or '_'"});
    }
  }
  if (const auto it = params.find("limit"); it != params.end()) {
    const auto limit = parse_bounded(it->second, kMaxPageSize);
    if (limit && *limit >= 1) {
      filter.limit = static_cast<int>(*limit);
    } else {
      errors.push_back({"limit", "must be an integer from 1 to 1000"});
    }
  }
  if (const auto it = params.find("cursor"); it != params.end()) {
    if (const auto id = parse_id(it->second)) {
      filter.before_id = *id;
    } else {
      errors.push_back({"cursor", "is not a cursor this API returned"});
    }
  }
  if (!errors.empty()) co_return problem(req, validation_problem(std::move(errors)));

  auto query_page = [filter](store::Store& s) { return s.list_payments(filter); };
  auto page = co_await ctx_.readers.run<std::vector<core::Payment>>(std::move(query_page));
  json::array data;
  data.reserve(page.size());
  for (const auto& p : page) data.push_back(payment_json(p));
  json::value next = nullptr;
  if (static_cast<int>(page.size()) == filter.limit && !page.empty()) {
    next = std::to_string(page.back().money_movement_id);
  }
  co_return json_response(req, status::ok,
                          json::object{{"data", std::move(data)}, {"next_cursor", next}});
}

asio::awaitable<Response> Api::get_payment(const Request& req, std::string_view id_text) {
  const auto id = parse_id(id_text);
  if (!id) {
    co_return problem(
        req, validation_problem({{"money_movement_id", "must be a positive integer below 2^53"}}));
  }
  using Found = std::optional<std::pair<core::Payment, std::vector<store::CallbackRecord>>>;
  auto query = [id = *id](store::Store& s) -> Found {
    auto p = s.find_payment(id);
    if (!p) return std::nullopt;
    return std::make_pair(std::move(*p), s.callback_history(id));
  };
  auto found = co_await ctx_.readers.run<Found>(std::move(query));
  if (!found) co_return problem(req, not_found("no payment with this money_movement_id"));
  json::object o = payment_json(found->first);
  json::array callbacks;
  for (const auto& c : found->second) callbacks.push_back(callback_json(c));
  o["callbacks"] = std::move(callbacks);
  co_return json_response(req, status::ok, o);
}

const Api::AccountsRendering& Api::accounts_rendering() {
  // Per I/O thread: no lock, no sharing. Replaced, never mutated, so a write still sending the
  // previous version keeps its bytes alive through its own shared_ptr.
  thread_local AccountsRendering cache;
  const auto version = ctx_.accounts.version();
  if (cache.owner != this || cache.version != version || !cache.wire) {
    const auto snapshot = ctx_.accounts.snapshot();
    json::array list;
    list.reserve(snapshot->accounts.size());
    for (const auto& [id, a] : snapshot->accounts) list.push_back(account_json(a));
    cache.body = json::serialize(list);
    std::ostringstream wire;
    wire << make_response(status::ok, 11, true, cache.body, kJson);  // Beast's own serializer
    cache.wire = std::make_shared<const std::string>(std::move(wire).str());
    cache.version = snapshot->version;
    cache.owner = this;
  }
  return cache;
}

std::shared_ptr<const std::string> Api::prerendered(const Request& req, bool draining) {
  if (draining || req.method() != bhttp::verb::get || req.target() != "/accounts" ||
      req.version() != 11 || !req.keep_alive()) {
    return nullptr;
  }
  const auto started = std::chrono::steady_clock::now();
  auto wire = accounts_rendering().wire;
  ctx_.metrics.count(Route::accounts_list, 200, started);
  return wire;
}

Response Api::list_accounts(const Request& req) {
  return make_response(status::ok, req.version(), req.keep_alive(), accounts_rendering().body,
                       kJson);
}

asio::awaitable<Response> Api::open_account(const Request& req) {
  auto& ledger = ctx_.ledger;
  auto open = [&ledger](store::Store& s, core::TimeMs now, app::Touched& touched) {
    return ledger.open_account(s, now, touched);
  };
  const auto account = co_await ctx_.writer.run<core::Account>(std::move(open));
  co_return json_response(req, status::created, account_json(account));
}

Response Api::get_account(const Request& req, std::string_view id_text) {
  const auto id = parse_id(id_text);
  if (!id) return problem(req, validation_problem({{"account_id", "must be a positive integer"}}));
  const auto account = ctx_.accounts.find(*id);
  if (!account) return problem(req, not_found("no account with this account_id"));
  return json_response(req, status::ok, account_json(*account));
}

asio::awaitable<Response> Api::recalculate(const Request& req, boost::urls::params_view query) {
  constexpr std::string_view kField = "time_to_delinquency_seconds";
  const std::string rule = "must be an integer from 0 to 315360000 (seconds)";
  std::int64_t window = kDefaultDelinquencyWindowSeconds;
  // The query parameter wins over the body (docs/decisions.md).
  const auto params = query_params(query);
  if (const auto it = params.find(kField); it != params.end()) {
    const auto v = parse_bounded(it->second, core::kMaxDelinquencyWindowSeconds);
    if (!v) co_return problem(req, validation_problem({{std::string(kField), rule}}));
    window = *v;
  } else if (!req.body().empty()) {
    auto body = parse_object(req.body());
    if (auto* p = std::get_if<Problem>(&body)) co_return problem(req, *p);
    if (const auto* v = std::get<json::object>(body).if_contains(kField)) {
      if (!v->is_int64() || v->get_int64() < 0 ||
          v->get_int64() > core::kMaxDelinquencyWindowSeconds) {
        co_return problem(req, validation_problem({{std::string(kField), rule}}));
      }
      window = v->get_int64();
    }
  }
  auto& ledger = ctx_.ledger;
  auto recalc = [&ledger, window](store::Store& s, core::TimeMs now, app::Touched& touched) {
    return ledger.recalculate(s, window, now, touched);
  };
  const auto accounts = co_await ctx_.writer.run<std::vector<core::Account>>(std::move(recalc));
  json::array list;
  for (const auto& a : accounts) list.push_back(account_json(a));
  co_return json_response(req, status::ok, list);
}

asio::awaitable<Response> Api::callback(const Request& req, const asio::ip::address& peer) {
  if (!ctx_.callback_allow_list.allows(peer)) {
    co_return problem(req,
                      simple_problem(status::forbidden, "forbidden", "Callback source not allowed",
                                     peer.to_string() + " is not in CALLBACK_ALLOW_FROM"));
  }
  auto body = parse_object(req.body());
  if (auto* p = std::get_if<Problem>(&body)) co_return problem(req, *p);
  auto parsed = parse_callback(std::get<json::object>(body));
  if (auto* p = std::get_if<Problem>(&parsed)) co_return problem(req, *p);
  const auto cb = std::get<CallbackRequest>(std::move(parsed));

  auto& ledger = ctx_.ledger;
  const core::TimeMs arrived_at = ctx_.clock.now_ms();  // the request has been read
  auto apply = [&ledger, cb, arrived_at](store::Store& s, core::TimeMs now, app::Touched& touched) {
    return ledger.apply_callback(s, cb.money_movement_id, cb.input, arrived_at, now, touched);
  };
  const auto outcome = co_await ctx_.writer.run<app::Outcome<core::Payment>>(std::move(apply));
  if (const auto* f = std::get_if<app::Failure>(&outcome)) {
    if (*f == app::Failure::callback_too_late) {
      ctx_.metrics.callbacks_late.fetch_add(1, std::memory_order_relaxed);
    }
    co_return problem(req, failure_problem(*f));
  }
  ctx_.metrics.callbacks_applied.fetch_add(1, std::memory_order_relaxed);
  co_return json_response(req, status::created, payment_json(std::get<core::Payment>(outcome)));
}

// Ready = the writer can write (its last write, or its probe since, succeeded; and it has not
// stopped for good) AND the store answers reads. A service whose every write fails is not ready,
// even though it still answers reads (issue 8).
asio::awaitable<Response> Api::ready(const Request& req) {
  const auto writer = ctx_.writer.health();
  if (!writer.ready) {
    co_return problem(req, simple_problem(status::service_unavailable, "unavailable", "Not ready",
                                          "writer: " + writer.detail));
  }
  try {
    auto ping = [](store::Store& s) {
      s.ping();
      return true;
    };
    co_await ctx_.readers.run<bool>(std::move(ping));
  } catch (const std::exception& e) {
    co_return problem(req, simple_problem(status::service_unavailable, "unavailable", "Not ready",
                                          std::string("store: ") + e.what()));
  }
  co_return json_response(req, status::ok, json::object{{"status", "ready"}});
}

Response Api::metrics(const Request& req) {
  std::ostringstream out;
  const auto& m = ctx_.metrics;
  out << "# HELP payment_service_http_requests_total HTTP requests by route and status class.\n"
      << "# TYPE payment_service_http_requests_total counter\n";
  for (std::size_t r = 0; r < Metrics::kRoutes; ++r) {
    for (std::size_t c = 0; c < Metrics::kClasses; ++c) {
      const auto n = m.requests[r][c].load(std::memory_order_relaxed);
      if (n == 0) continue;
      out << "payment_service_http_requests_total{route=\"" << route_name(static_cast<Route>(r))
          << "\",code=\"" << c + 1 << "xx\"} " << n << "\n";
    }
  }
  out << "# HELP payment_service_http_request_seconds_total Time spent answering, by route.\n"
      << "# TYPE payment_service_http_request_seconds_total counter\n";
  for (std::size_t r = 0; r < Metrics::kRoutes; ++r) {
    const auto us = m.latency_us_total[r].load(std::memory_order_relaxed);
    if (us == 0) continue;
    out << "payment_service_http_request_seconds_total{route=\""
        << route_name(static_cast<Route>(r)) << "\"} " << static_cast<double>(us) / 1e6 << "\n";
  }
  const auto& w = ctx_.writer.stats();
  auto counter = [&out](const char* name, const char* help, std::uint64_t v) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " counter\n"
        << name << " " << v << "\n";
  };
  counter("payment_service_callbacks_applied_total", "Callbacks applied.",
          m.callbacks_applied.load());
  counter("payment_service_callbacks_late_total", "Callbacks after the settle deadline.",
          m.callbacks_late.load());
  counter("payment_service_provider_accepted_total", "Provider 2xx answers to new payments.",
          m.provider_accepted.load());
  counter("payment_service_provider_rejected_total", "Provider 4xx answers to new payments.",
          m.provider_rejected.load());
  counter("payment_service_provider_unknown_total",
          "New payments whose provider outcome was unknown.", m.provider_unknown.load());
  counter("payment_service_overloaded_total", "Requests refused with 503 (queue full).",
          m.overloaded.load());
  counter("payment_service_provider_configuration_errors_total",
          "Provider answers refusing our configuration (401, 403, 405, 407, 3xx); such payments "
          "stay submitting and are re-sent.",
          ctx_.provider_stats.configuration_errors.load());
  counter("payment_service_provider_resends_total", "Payments sent again after an unknown outcome.",
          ctx_.provider_stats.resends.load());
  counter("payment_service_commits_total", "Group commits.", w.batches.load());
  counter("payment_service_committed_jobs_total", "Write jobs committed.", w.jobs.load());
  counter("payment_service_failed_batches_total", "Group commits rolled back.",
          w.failed_batches.load());
  out << "# HELP payment_service_commit_seconds_total Time spent in group commits.\n"
      << "# TYPE payment_service_commit_seconds_total counter\n"
      << "payment_service_commit_seconds_total "
      << static_cast<double>(w.commit_ns_total.load()) / 1e9 << "\n"
      << "# HELP payment_service_write_queue_depth Write jobs waiting.\n"
      << "# TYPE payment_service_write_queue_depth gauge\n"
      << "payment_service_write_queue_depth " << w.queue_depth.load() << "\n"
      << "# HELP payment_service_provider_outage 1 while re-sends get no answer and only probe.\n"
      << "# TYPE payment_service_provider_outage gauge\n"
      << "payment_service_provider_outage " << (ctx_.resender.in_outage() ? 1 : 0) << "\n";
  return make_response(status::ok, req.version(), req.keep_alive(), out.str(),
                       "text/plain; version=0.0.4");
}

}  // namespace ps::http
