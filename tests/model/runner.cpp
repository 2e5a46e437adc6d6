#include "runner.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "ledger_model.hpp"
#include "system.hpp"
#include "test_support/db_reader.hpp"
#include "test_support/json_fields.hpp"
#include "test_support/service_process.hpp"
#include "test_support/timestamps.hpp"

namespace model {

namespace json = boost::json;
using test_support::HttpResponse;

namespace {

// Clock steps are larger than the settle window (1,802 s) plus anything a run lasts, and than
// the Idempotency-Key TTL (1 h): after a step every earlier payment's window is closed and every
// earlier key expired, while within one epoch (a run lasts minutes) no window closes and no key
// expires. Half a step back from any moment lies in the gap before the current epoch.
constexpr std::int64_t kStepSeconds = 7200;
// Widens every observed instant: the service's clock follows the wall clock at its start and
// the monotonic clock after, the test's the monotonic clock only.
constexpr std::int64_t kSlackMs = 250;
constexpr auto kVerdictTimeout = std::chrono::seconds(20);
constexpr std::size_t kRecentOps = 12;
constexpr std::size_t kPageLimit = 1000;

// A difference between the model and the service: the run fails with it.
struct Difference : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void differ(const std::string& what, const std::string& expected,
                         const std::string& actual) {
  throw Difference(what + "\n    expected: " + expected + "\n    actual:   " + actual);
}

std::string show(const std::optional<std::string>& s) {
  return s ? "\"" + *s + "\"" : "null";
}

bool is_2xx(unsigned status) {
  return status >= 200 && status < 300;
}

class Run {
 public:
  explicit Run(const RunOptions& options)
      : options_(options),
        ledger_(Settings{.settle_window_ms = (kSettleSeconds + kGraceSeconds) * 1000,
                         .idempotency_ttl_ms = kKeyTtlHours * 3600 * 1000}),
        generator_(options.seed, Timing{.step_seconds = kStepSeconds}) {}

  RunResult go();

 private:
  static constexpr std::int64_t kSettleSeconds = 1800;
  static constexpr std::int64_t kGraceSeconds = 2;
  static constexpr std::int64_t kKeyTtlHours = 1;
  static constexpr std::int64_t kProviderTimeoutMs = 500;

  void perform(const Op& op);
  void open_account();
  void pay(const Op& op);
  void pay_same_key_at_once(const Op& op);
  void pay_racing_callback(const Op& op);
  void pay_invalid(const Op& op);
  void callback(const CallbackSpec& cb);
  void pay_burst(const Op& op);
  void callback_burst(const Op& op);
  // Sends request(i) for i < n from n connections at the same moment; the answers in order.
  template <typename Request>
  std::vector<HttpResponse> at_once(std::size_t n, Request request);
  json::object callback_body(const CallbackSpec& cb) const;
  void check_provider_request(std::int64_t id, std::int64_t account_id, std::int64_t amount_cents,
                              const std::string& merchant_name);
  void callback_unknown(const Op& op);
  void callback_invalid(const Op& op);
  void recalculate(const Op& op);
  void recalculate_invalid(const Op& op);
  void restart(const Op& op);
  void outage_end();

  // A new payment was answered with `r`: learn its id, check the answer and the provider's
  // request, and (unknown outcome) wait until the provider's verdict is recorded.
  void new_payment(const Op& op, const HttpResponse& r, Interval sent, std::size_t ids_before);
  void await_verdict(std::size_t payment, const ProviderStep& verdict);
  ProviderScripts::Script script_for(const Op& op) const;
  std::string payment_body(const Op& op) const;
  test_support::Headers key_header(const Op& op) const;

  void check_touched();
  void full_check(bool final);
  void check_provider();
  void plant_difference();
  void check_model_sums() const;

  void compare_payment(const Payment& p, const json::object& o, const std::string& where,
                       bool with_history) const;
  void compare_account(const Account& a, const json::object& o, const std::string& where) const;
  void touch(std::size_t payment) {
    touched_payments_.insert(payment);
    touched_accounts_.insert(ledger_.payments.at(payment).account);
  }

  Interval now_interval() const {
    const auto now = system_->model_now_ms();
    return {now - kSlackMs, now + kSlackMs};
  }
  Interval since(std::int64_t lo) const {
    return {lo - kSlackMs, system_->model_now_ms() + kSlackMs};
  }

  RunOptions options_;
  std::unique_ptr<System> system_;
  Ledger ledger_;
  Generator generator_;
  RunStats stats_;
  bool outage_ = false;
  std::map<std::size_t, ProviderStep> outage_verdicts_;  // payment -> its answer after the outage
  std::set<std::int64_t> ids_;
  std::set<std::size_t> touched_payments_;
  std::set<std::size_t> touched_accounts_;
  bool all_accounts_touched_ = false;
  std::size_t step_ = 0;
};

// ---- checks --------------------------------------------------------------------------------

void expect_status(const HttpResponse& r, unsigned status, const std::string& what) {
  if (r.status != status) differ(what + ": HTTP status", std::to_string(status), r.describe());
}

void expect_problem(const HttpResponse& r, unsigned status, const std::string& slug,
                    const std::string& what) {
  expect_status(r, status, what);
  const auto type = r.header("Content-Type").value_or("");
  if (type.rfind("application/problem+json", 0) != 0) {
    differ(what + ": Content-Type", "application/problem+json", r.describe());
  }
  if (!r.json || !r.json->is_object() || !r.json->get_object().contains("type") ||
      !r.json->get_object().at("type").is_string() ||
      r.json->get_object().at("type").get_string() != "/problems/" + slug) {
    differ(what + ": problem type", "/problems/" + slug, r.describe());
  }
}

const json::object& object_of(const HttpResponse& r, const std::string& what) {
  if (!r.json || !r.json->is_object()) differ(what + ": body", "a JSON object", r.describe());
  return r.json->get_object();
}

std::int64_t int_of(const json::object& o, std::string_view key, const std::string& where) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) differ(where + ": " + std::string(key), "present", json::serialize(o));
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v->get_uint64());
  }
  differ(where + ": " + std::string(key), "an integer", json::serialize(*v));
}

// A paged list of accounts: `first`, then every page its Link header leads to (GET), kept in
// `pages`; each account on exactly one of them. At most `max_pages` pages.
std::map<std::int64_t, const json::object*> account_pages(test_support::HttpClient& client,
                                                          HttpResponse first,
                                                          const std::string& what,
                                                          std::size_t max_pages,
                                                          std::deque<HttpResponse>& pages) {
  std::map<std::int64_t, const json::object*> by_id;
  pages.push_back(std::move(first));
  for (;;) {
    const auto& r = pages.back();
    if (!r.json || !r.json->is_array()) differ(what, "an array of accounts", r.describe());
    for (const auto& v : r.json->get_array()) {
      if (!v.is_object()) differ(what + ": entry", "an object", json::serialize(v));
      const auto id = int_of(v.get_object(), "account_id", what);
      if (!by_id.emplace(id, &v.get_object()).second) {
        differ(what, "account " + std::to_string(id) + " on one page", "twice");
      }
    }
    const auto next = r.next_page();
    if (next.empty()) return by_id;
    if (pages.size() >= max_pages) differ(what, "a last page", next);
    pages.push_back(client.get(next));
    expect_status(pages.back(), 200, "GET " + next);
  }
}

std::string string_of(const json::object& o, std::string_view key, const std::string& where) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) {
    differ(where + ": " + std::string(key), "a string", json::serialize(o));
  }
  return std::string(v->get_string());
}

template <typename T>
void expect_equal(const std::string& where, std::string_view field, const T& expected,
                  const T& actual) {
  if (expected == actual) return;
  std::ostringstream e;
  std::ostringstream a;
  e << expected;
  a << actual;
  differ(where + ": " + std::string(field), e.str(), a.str());
}

std::int64_t time_of(const json::object& o, std::string_view key, const std::string& where) {
  const auto text = string_of(o, key, where);
  if (!test_support::is_rfc3339_ms(text)) {
    differ(where + ": " + std::string(key), "RFC 3339 UTC with milliseconds", text);
  }
  return test_support::parse_timestamp_ms(text);
}

void Run::compare_payment(const Payment& p, const json::object& o, const std::string& where,
                          bool with_history) const {
  const std::string at = where + " (payment " + std::to_string(p.id) + ")";
  expect_equal(at, "money_movement_id", p.id, int_of(o, "money_movement_id", at));
  expect_equal(at, "account_id", ledger_.accounts.at(p.account).id, int_of(o, "account_id", at));
  expect_equal(at, "amount_cents", p.amount_cents, int_of(o, "amount_cents", at));
  expect_equal(at, "original_amount_cents", p.original_amount_cents,
               int_of(o, "original_amount_cents", at));
  expect_equal(at, "merchant_name", p.merchant_name, string_of(o, "merchant_name", at));
  expect_equal(at, "status", p.status, string_of(o, "status", at));
  expect_equal(at, "callbacks_applied", p.callbacks_applied, int_of(o, "callbacks_applied", at));
  const auto created = time_of(o, "created_at", at);
  const auto updated = time_of(o, "updated_at", at);
  const auto deadline = time_of(o, "settle_deadline", at);
  if (updated < created) differ(at + ": updated_at", ">= created_at", std::to_string(updated));
  // settle_deadline = last send + time_to_settle + grace (SPEC 4): exactly that after one send.
  const auto window = ledger_.settings().settle_window_ms;
  if (!p.resent) {
    expect_equal(at, "settle_deadline - created_at (one send)", window, deadline - created);
  } else if (deadline - created < window) {
    differ(at + ": settle_deadline - created_at (re-sent)", ">= " + std::to_string(window),
           std::to_string(deadline - created));
  }
  if (!with_history) return;
  const auto* history = o.if_contains("callbacks");
  if (history == nullptr || !history->is_array()) {
    differ(at + ": callbacks", "an array", json::serialize(o));
  }
  const auto& entries = history->get_array();
  expect_equal(at, "number of callbacks in the history", p.callbacks.size(), entries.size());
  std::int64_t previous = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string entry_at = at + " callbacks[" + std::to_string(i) + "]";
    if (!entries[i].is_object()) differ(entry_at, "an object", json::serialize(entries[i]));
    const auto& e = entries[i].get_object();
    const CallbackEntry& m = p.callbacks[i];
    expect_equal(entry_at, "amount_cents", m.amount_cents, int_of(e, "amount_cents", entry_at));
    expect_equal(entry_at, "outcome", std::string(m.applied ? "applied" : "late"),
                 string_of(e, "outcome", entry_at));
    const auto* s = e.if_contains("status");
    const std::optional<std::string> actual =
        s != nullptr && s->is_string() ? std::optional<std::string>(std::string(s->get_string()))
                                       : std::nullopt;
    if (actual != m.status) differ(entry_at + ": status", show(m.status), show(actual));
    const auto received = time_of(e, "received_at", entry_at);
    if (received < previous) {
      differ(entry_at + ": received_at", "in arrival order", json::serialize(entries));
    }
    previous = received;
  }
}

void Run::compare_account(const Account& a, const json::object& o, const std::string& where) const {
  const std::string at = where + " (account " + std::to_string(a.id) + ")";
  expect_equal(at, "account_id", a.id, int_of(o, "account_id", at));
  expect_equal(at, "balance", a.balance, int_of(o, "balance", at));
  expect_equal(at, "settled_balance", a.settled_balance, int_of(o, "settled_balance", at));
  expect_equal(at, "balance_cents", a.balance, int_of(o, "balance_cents", at));
  expect_equal(at, "settled_balance_cents", a.settled_balance,
               int_of(o, "settled_balance_cents", at));
  expect_equal(at, "status", a.status, string_of(o, "status", at));
  (void)time_of(o, "created_at", at);
}

void Run::check_model_sums() const {
  std::vector<std::pair<std::int64_t, std::int64_t>> sums(ledger_.accounts.size());
  for (const auto& p : ledger_.payments) {
    if (Ledger::counts_in_balance(p.status)) sums[p.account].first += p.amount_cents;
    if (Ledger::counts_in_settled(p.status)) sums[p.account].second += p.amount_cents;
  }
  for (std::size_t i = 0; i < sums.size(); ++i) {
    if (sums[i].first != ledger_.accounts[i].balance ||
        sums[i].second != ledger_.accounts[i].settled_balance) {
      throw std::logic_error("the model's own balances of account " +
                             std::to_string(ledger_.accounts[i].id) +
                             " differ from the sum of its payments");
    }
  }
}

void Run::check_touched() {
  auto& client = system_->client();
  for (const std::size_t i : touched_payments_) {
    const Payment& p = ledger_.payments.at(i);
    const auto r = client.get("/payments/" + std::to_string(p.id));
    expect_status(r, 200, "GET /payments/" + std::to_string(p.id));
    compare_payment(p, object_of(r, "GET /payments/{id}"), "GET /payments/{id}", true);
  }
  // The accounts are checked even after a change the service made in the background (a
  // re-send's verdict) that this step saw through GET /payments/{id}: they must show it too.
  if (all_accounts_touched_ || touched_accounts_.size() > 3) {
    std::deque<HttpResponse> pages;  // stable: by_id points into them
    const auto by_id = account_pages(client, client.get("/accounts"), "GET /accounts",
                                     ledger_.accounts.size() + 1, pages);
    expect_equal("GET /accounts", "number of accounts", ledger_.accounts.size(), by_id.size());
    for (const auto& a : ledger_.accounts) {
      const auto it = by_id.find(a.id);
      if (it == by_id.end()) differ("GET /accounts", "account " + std::to_string(a.id), "absent");
      compare_account(a, *it->second, "GET /accounts");
    }
  } else {
    for (const std::size_t i : touched_accounts_) {
      const Account& a = ledger_.accounts.at(i);
      const auto r = client.get("/accounts/" + std::to_string(a.id));
      expect_status(r, 200, "GET /accounts/" + std::to_string(a.id));
      compare_account(a, object_of(r, "GET /accounts/{id}"), "GET /accounts/{id}");
    }
  }
  touched_payments_.clear();
  touched_accounts_.clear();
  all_accounts_touched_ = false;
}

void Run::check_provider() {
  system_->scripts().expect_nothing();
  const auto problems = system_->scripts().take_problems();
  if (!problems.empty())
    differ("the provider's requests", "only those of the test's payments", problems.front());
}

void Run::full_check(bool final) {
  ++stats_.full_checks;
  check_model_sums();
  all_accounts_touched_ = true;
  check_touched();
  auto& client = system_->client();
  // Every payment, through the list's cursor pagination.
  std::map<std::int64_t, json::object> listed;
  auto list_all = [&](const std::string& filter) {
    std::map<std::int64_t, json::object> out;
    std::string cursor;
    for (int pages = 0;; ++pages) {
      std::string target = "/payments?limit=" + std::to_string(kPageLimit) + filter;
      if (!cursor.empty()) target += "&cursor=" + cursor;
      const auto r = client.get(target);
      expect_status(r, 200, "GET " + target);
      const auto& page = object_of(r, "GET " + target);
      const auto* data = page.if_contains("data");
      if (data == nullptr || !data->is_array())
        differ("GET " + target, "data: [...]", r.describe());
      std::int64_t previous_id = INT64_MAX;
      for (const auto& v : data->get_array()) {
        if (!v.is_object()) differ("GET " + target, "payments", json::serialize(v));
        const auto id = int_of(v.get_object(), "money_movement_id", "GET " + target);
        if (id >= previous_id) differ("GET " + target, "newest first", json::serialize(*data));
        previous_id = id;
        if (!out.emplace(id, v.get_object()).second) {
          differ("GET /payments pages", "each payment once",
                 "payment " + std::to_string(id) + " twice");
        }
      }
      const auto* next = page.if_contains("next_cursor");
      if (next == nullptr || next->is_null()) break;
      if (!next->is_string()) differ("GET " + target, "next_cursor a string or null", r.describe());
      cursor = std::string(next->get_string());
      if (pages > 100000) differ("GET /payments pages", "an end", "more than 100000 pages");
    }
    return out;
  };
  listed = list_all("");
  expect_equal("GET /payments (every page)", "number of payments", ledger_.payments.size(),
               listed.size());
  for (const auto& p : ledger_.payments) {
    const auto it = listed.find(p.id);
    if (it == listed.end()) {
      differ("GET /payments (every page)", "payment " + std::to_string(p.id), "absent");
    }
    compare_payment(p, it->second, "GET /payments", false);
  }
  // The filters, on one account (which one does not change the operations).
  const Account& a = ledger_.accounts.at(step_ % ledger_.accounts.size());
  for (const bool posted_only : {false, true}) {
    const std::string filter =
        "&account_id=" + std::to_string(a.id) + (posted_only ? "&status=posted" : "");
    const auto filtered = list_all(filter);
    std::set<std::int64_t> expected;
    for (const auto& p : ledger_.payments) {
      if (ledger_.accounts[p.account].id == a.id && (!posted_only || p.status == status::kPosted)) {
        expected.insert(p.id);
      }
    }
    std::set<std::int64_t> actual;
    for (const auto& [id, o] : filtered) actual.insert(id);
    if (expected != actual) {
      differ("GET /payments?" + filter.substr(1), std::to_string(expected.size()) + " payments",
             std::to_string(actual.size()) + " payments (other ids)");
    }
  }
  if (!final) return;
  for (std::size_t i = 0; i < ledger_.payments.size(); ++i) touched_payments_.insert(i);
  check_touched();
  const auto violations = test_support::check_ledger_invariants(system_->database_url());
  if (!violations.empty())
    differ("the ledger invariants in the database", "none violated", violations.front());
  const auto verified =
      test_support::verify_history_with(options_.service_binary, system_->database_url());
  if (verified) differ("payment_service verify", "exit 0", *verified);
}

void Run::plant_difference() {
  if (ledger_.payments.empty()) return;
  test_support::write_sql(system_->database_url(),
                          "UPDATE payments SET amount_cents = amount_cents + 1 "
                          "WHERE money_movement_id = " +
                              std::to_string(ledger_.payments.front().id));
  if (options_.verbose) std::cerr << "planted a difference in payment #0\n";
}

// ---- operations ----------------------------------------------------------------------------

ProviderScripts::Script Run::script_for(const Op& op) const {
  ProviderScripts::Script script;
  for (const auto& step : op.unknowns) script.steps.push_back(to_action(step));
  script.last = to_action(op.verdict);
  return script;
}

std::string Run::payment_body(const Op& op) const {
  const std::int64_t account_id = ledger_.accounts.at(op.account).id;
  if (op.body_in_another_form) {
    // Same payment, another form: fields reordered and an unknown one (ignored, SPEC 3).
    return json::serialize(json::object{{"merchant_name", op.merchant_name},
                                        {"note", "retry"},
                                        {"amount_cents", op.amount_cents},
                                        {"account_id", account_id}});
  }
  return json::serialize(json::object{{"account_id", account_id},
                                      {"amount_cents", op.amount_cents},
                                      {"merchant_name", op.merchant_name}});
}

test_support::Headers Run::key_header(const Op& op) const {
  if (op.idempotency_key.empty()) return {};
  return {{"Idempotency-Key", op.idempotency_key}};
}

void Run::pay(const Op& op) {
  const std::string body = payment_body(op);
  const auto ids_before = system_->scripts().new_ids();
  system_->scripts().expect_new(script_for(op));
  const auto lo = system_->model_now_ms();
  const auto r = system_->client().request("POST", "/payments", body, key_header(op));
  const Interval sent = since(lo);

  if (!op.idempotency_key.empty()) {
    const auto held = ledger_.keys.find(op.idempotency_key);
    if (held != ledger_.keys.end()) {
      const IdempotencyKey& k = held->second;
      const Certainty expired = ledger_.is_expired(k, sent);
      const bool generator_thinks_expired = k.epoch < ledger_.epoch;
      if (expired == Certainty::cannot_tell ||
          (expired == Certainty::yes) != generator_thinks_expired) {
        throw std::logic_error("timing assumption broken: cannot tell whether key " +
                               op.idempotency_key + " has expired");
      }
      if (expired == Certainty::no) {
        const bool same_body = k.account_id == ledger_.accounts.at(op.account).id &&
                               k.amount_cents == op.amount_cents &&
                               k.merchant_name == op.merchant_name;
        if (same_body) {
          // Stripe's semantics: the first response again, and no second payment.
          expect_status(r, k.response_status, "POST /payments replay of key " + op.idempotency_key);
          if (r.header("Idempotent-Replayed").value_or("") != "true") {
            differ("POST /payments replay: Idempotent-Replayed header", "true", r.describe());
          }
          boost::system::error_code ec;
          const auto first = json::parse(k.response_body, ec);
          if (!r.json || ec || *r.json != first) {
            differ("POST /payments replay of key " + op.idempotency_key + ": body", k.response_body,
                   r.body);
          }
        } else {
          expect_problem(r, 422, "idempotency-key-reused",
                         "POST /payments with key " + op.idempotency_key + " and another body");
        }
        expect_equal("POST /payments replay", "payments the provider got", ids_before,
                     system_->scripts().new_ids());
        touch(k.payment);
        return;
      }
    }
  }
  new_payment(op, r, sent, ids_before);
}

void Run::new_payment(const Op& op, const HttpResponse& r, Interval sent, std::size_t ids_before) {
  const unsigned expected_status = outage_ || !op.unknowns.empty() ? 202U
                                   : is_2xx(op.verdict.status)     ? 201U
                                                                   : 502U;
  expect_status(r, expected_status,
                "POST /payments (provider: " + std::string(outage_ ? "outage" : "scripted") + ")");
  expect_equal("POST /payments", "new payments the provider got", ids_before + 1,
               system_->scripts().new_ids());
  const auto& body = object_of(r, "POST /payments");
  const json::object* payment_json = &body;
  if (expected_status == 502) {
    expect_problem(r, 502, "provider-rejected", "POST /payments rejected by the provider");
    expect_equal("POST /payments 502", "provider_status",
                 static_cast<std::int64_t>(op.verdict.status),
                 int_of(body, "provider_status", "502 answer"));
    const auto* inner = body.if_contains("payment");
    if (inner == nullptr || !inner->is_object()) differ("502 answer", "payment: {...}", r.body);
    payment_json = &inner->get_object();
  }
  const std::int64_t id = system_->scripts().id_at(ids_before);
  if (!ids_.insert(id).second)
    differ("POST /payments", "a new money_movement_id", std::to_string(id));
  if (id <= 0 || id >= (std::int64_t{1} << 53)) {
    differ("POST /payments: money_movement_id", "0 < id < 2^53", std::to_string(id));
  }
  const std::size_t i = ledger_.add_payment(op.account, op.amount_cents, op.merchant_name, sent);
  ledger_.payments[i].id = id;
  // A send that failed on a pooled connection is followed at once by a copy (a re-send, which
  // moves the deadline) before the service answers.
  if (!op.unknowns.empty() || outage_) ledger_.payments[i].resent = true;
  touch(i);
  ++stats_.payments;

  check_provider_request(id, ledger_.accounts.at(op.account).id, op.amount_cents, op.merchant_name);

  if (outage_) {
    outage_verdicts_[i] = op.verdict;
  } else if (op.unknowns.empty()) {
    if (is_2xx(op.verdict.status)) {
      ledger_.provider_accepted(i);
    } else {
      ledger_.provider_rejected(i, sent);
    }
  }
  compare_payment(ledger_.payments[i], *payment_json, "POST /payments answer", false);
  if (!op.idempotency_key.empty()) {
    ledger_.keys[op.idempotency_key] = IdempotencyKey{
        .account_id = ledger_.accounts.at(op.account).id,
        .amount_cents = op.amount_cents,
        .merchant_name = op.merchant_name,
        .payment = i,
        .response_status = r.status,
        .response_body = r.body,
        .created = sent,
        .epoch = ledger_.epoch,
    };
  }
  if (!outage_ && !op.unknowns.empty()) await_verdict(i, op.verdict);
}

void Run::check_provider_request(std::int64_t id, std::int64_t account_id,
                                 std::int64_t amount_cents, const std::string& merchant_name) {
  // What the provider got (SPEC 3): the payment as requested, every copy the same.
  const auto seen = system_->scripts().seen(id);
  if (!seen || !seen->first_body.is_object()) {
    differ("the provider's request for payment " + std::to_string(id), "a JSON object", "none");
  }
  const auto& sent_body = seen->first_body.get_object();
  const std::string at = "the provider's request for payment " + std::to_string(id);
  expect_equal(at, "money_movement_id", id, int_of(sent_body, "money_movement_id", at));
  expect_equal(at, "account_id", account_id, int_of(sent_body, "account_id", at));
  expect_equal(at, "amount_cents", amount_cents, int_of(sent_body, "amount_cents", at));
  expect_equal(at, "merchant_name", merchant_name, string_of(sent_body, "merchant_name", at));
  expect_equal(at, "time_to_settle_seconds", kSettleSeconds,
               int_of(sent_body, "time_to_settle_seconds", at));
  if (seen->copies_differ)
    differ(at, "every copy the same as the first request", "a copy differed");
}

void Run::await_verdict(std::size_t i, const ProviderStep& verdict) {
  Payment& p = ledger_.payments.at(i);
  const auto deadline = std::chrono::steady_clock::now() + kVerdictTimeout;
  for (;;) {
    const auto r = system_->client().get("/payments/" + std::to_string(p.id));
    expect_status(r, 200, "GET /payments/" + std::to_string(p.id));
    if (string_of(object_of(r, "GET /payments/{id}"), "status", "GET /payments/{id}") !=
        status::kSubmitting) {
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      differ("payment " + std::to_string(p.id) + " after the provider answers again",
             "the provider's verdict recorded within 20 s (re-sent with backoff)",
             "still submitting");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // At least one copy went out: its send opened the settle window again.
  ledger_.resent(i, since(p.last_sent.lo + kSlackMs));
  if (is_2xx(verdict.status) || verdict.status == 409) {  // 409 to a copy: the provider has it
    ledger_.provider_accepted(i);
  } else {
    ledger_.provider_rejected(i, since(p.last_sent.lo + kSlackMs));
  }
  touch(i);
}

void Run::pay_same_key_at_once(const Op& op) {
  const std::string body = payment_body(op);
  const auto ids_before = system_->scripts().new_ids();
  system_->scripts().expect_new(script_for(op));
  std::optional<HttpResponse> first;
  std::optional<HttpResponse> second;
  std::exception_ptr failure;
  std::atomic<int> ready{0};
  const auto lo = system_->model_now_ms();
  auto send = [&](test_support::HttpClient& client, std::optional<HttpResponse>& out) {
    try {
      ready.fetch_add(1);
      while (ready.load() < 2) std::this_thread::yield();
      out = client.request("POST", "/payments", body, key_header(op));
    } catch (...) {
      failure = std::current_exception();
    }
  };
  std::thread other([&] { send(system_->other_client(), second); });
  send(system_->client(), first);
  other.join();
  if (failure) std::rethrow_exception(failure);
  const Interval sent = since(lo);
  auto is_replay = [](const HttpResponse& r) {
    return r.header("Idempotent-Replayed").value_or("") == "true";
  };
  const HttpResponse* maker = nullptr;
  const HttpResponse* waiter = nullptr;
  for (auto* r : {&*first, &*second}) {
    if (r->status == 409 || is_replay(*r)) {
      waiter = r;
    } else if (maker == nullptr) {
      maker = r;
    } else {
      differ("two POST /payments with one Idempotency-Key at once",
             "one payment (the other request: 409 in use, or the same response replayed)",
             "two answers that each made a payment: " + first->describe() + " | " +
                 second->describe());
    }
  }
  if (maker == nullptr) {
    differ("two POST /payments with one Idempotency-Key at once", "one of them makes the payment",
           first->describe() + " | " + second->describe());
  }
  if (waiter->status == 409) {
    expect_problem(*waiter, 409, "idempotency-key-in-use", "the second request with one key");
  } else if (waiter->status != maker->status || !waiter->json || !maker->json ||
             *waiter->json != *maker->json) {
    differ("the replayed answer to the second request with one key", maker->describe(),
           waiter->describe());
  }
  new_payment(op, *maker, sent, ids_before);
}

void Run::pay_racing_callback(const Op& op) {
  const std::string gate = "race-" + std::to_string(step_);
  ProviderScripts::Script script;
  script.steps.push_back(
      FakeProvider::Hold{gate, std::get<FakeProvider::Reply>(to_action(op.verdict))});
  script.last = to_action(op.verdict);
  const auto ids_before = system_->scripts().new_ids();
  system_->scripts().expect_new(std::move(script));
  const std::string body = payment_body(op);
  std::optional<HttpResponse> response;
  std::exception_ptr failure;
  const auto lo = system_->model_now_ms();
  std::thread poster([&] {
    try {
      response = system_->other_client().request("POST", "/payments", body, key_header(op));
    } catch (...) {
      failure = std::current_exception();
    }
  });
  struct Joiner {
    std::thread& t;
    FakeProvider& provider;
    std::string gate;
    ~Joiner() {
      provider.release(gate);
      if (t.joinable()) t.join();
    }
  } joiner{poster, system_->provider(), gate};
  if (!system_->scripts().wait_for_new_ids(ids_before + 1, std::chrono::seconds(10))) {
    differ("POST /payments", "the payment sent to the provider within 10 s", "nothing sent");
  }
  const std::int64_t id = system_->scripts().id_at(ids_before);
  if (!ids_.insert(id).second)
    differ("POST /payments", "a new money_movement_id", std::to_string(id));
  const std::size_t i =
      ledger_.add_payment(op.account, op.amount_cents, op.merchant_name, since(lo));
  ledger_.payments[i].id = id;
  ++stats_.payments;
  touch(i);
  // The provider calls back before it answers the request (the payment is `submitting`).
  for (const auto& spec : op.callbacks) {
    CallbackSpec cb = spec;
    cb.payment = i;
    callback(cb);
  }
  // How long the provider held its answer, from the moment it got the request.
  const auto held_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - system_->scripts().seen(id).value().first_received_at)
          .count();
  system_->provider().release(gate);
  poster.join();
  if (failure) std::rethrow_exception(failure);
  const HttpResponse& r = *response;
  if (is_2xx(op.verdict.status)) {
    ledger_.provider_accepted(i);
  } else {
    ledger_.provider_rejected(i, since(lo));  // nothing to reject: a callback came first
  }
  // The service's timeout started when it sent the request, a little before the provider got
  // it: 100 ms of margin for that on a busy machine.
  if (r.status == 202 && held_ms >= kProviderTimeoutMs - 100) {
    // The callbacks took longer than the service waits for the provider: the answer was lost
    // to it (an unknown outcome), and the callbacks already proved the provider has it.
    ++stats_.races_timed_out;
  } else {
    expect_status(r, 201,
                  "POST /payments whose callbacks raced ahead of the provider's " +
                      std::to_string(op.verdict.status));
  }
  expect_equal("POST /payments", "new payments the provider got", ids_before + 1,
               system_->scripts().new_ids());
  compare_payment(ledger_.payments[i], object_of(r, "POST /payments"),
                  "POST /payments answer after racing callbacks", false);
  if (!op.idempotency_key.empty()) {
    ledger_.keys[op.idempotency_key] = IdempotencyKey{
        .account_id = ledger_.accounts.at(op.account).id,
        .amount_cents = op.amount_cents,
        .merchant_name = op.merchant_name,
        .payment = i,
        .response_status = r.status,
        .response_body = r.body,
        .created = since(lo),
        .epoch = ledger_.epoch,
    };
  }
}

void Run::pay_invalid(const Op& op) {
  const auto ids_before = system_->scripts().new_ids();
  test_support::Headers headers;
  if (!op.idempotency_key.empty()) headers.emplace_back("Idempotency-Key", op.idempotency_key);
  const auto r = system_->client().request("POST", "/payments", op.raw_body, headers);
  if (op.expected_status == 404) {
    expect_problem(r, 404, "not-found", "POST /payments for " + op.invalid_what);
  } else {
    expect_problem(r, 400, "validation-error", "POST /payments with " + op.invalid_what);
  }
  expect_equal("POST /payments refused", "payments the provider got", ids_before,
               system_->scripts().new_ids());
}

json::object Run::callback_body(const CallbackSpec& cb) const {
  const Payment& p = ledger_.payments.at(cb.payment);
  json::object body;
  if (cb.id_as_string) {
    body["money_movement_id"] = std::to_string(p.id);
  } else {
    body["money_movement_id"] = p.id;
  }
  body["amount_cents"] = cb.amount_cents;
  if (cb.form == CallbackSpec::StatusForm::given) body["status"] = cb.status;
  if (cb.form == CallbackSpec::StatusForm::null) body["status"] = nullptr;
  return body;
}

void Run::callback(const CallbackSpec& cb) {
  Payment& p = ledger_.payments.at(cb.payment);
  const json::object body = callback_body(cb);
  const int times = cb.twice ? 2 : 1;
  for (int n = 0; n < times; ++n) {
    const auto lo = system_->model_now_ms();
    const auto r = system_->client().post_json("/money_movement_request_callback", body);
    const Interval arrived = since(lo);
    const Certainty late = ledger_.is_late(p, arrived);
    const bool generator_thinks_late = p.sent_epoch < ledger_.epoch;
    if (late == Certainty::cannot_tell || (late == Certainty::yes) != generator_thinks_late) {
      throw std::logic_error("timing assumption broken: cannot tell whether a callback for " +
                             std::to_string(p.id) + " is late");
    }
    const std::string what =
        "callback for " + std::to_string(p.id) + (n == 1 ? " (the same again)" : "");
    if (late == Certainty::yes) {
      // After settle_deadline: 409, recorded, nothing changes (SPEC 3).
      expect_problem(r, 409, "callback-too-late", what + " after its settle_deadline");
      ledger_.record_late_callback(cb.payment, cb.amount_cents, cb.given());
      ++stats_.callbacks_late;
    } else {
      expect_status(r, 201, what);
      if (outage_ && Ledger::awaits_provider(p)) {
        // Copies may have gone out since the payment was made, each moving its deadline.
        p.last_sent.hi = arrived.hi;
        p.resent = true;
      }
      ledger_.apply_callback(cb.payment, cb.amount_cents, cb.given(), arrived);
      compare_payment(p, object_of(r, what), what + " answer", false);
      ++stats_.callbacks_applied;
    }
  }
  touch(cb.payment);
}

template <typename Request>
std::vector<HttpResponse> Run::at_once(std::size_t n, Request request) {
  if (n > System::kBurstClients) throw std::logic_error("a burst larger than the client pool");
  std::vector<HttpResponse> responses(n);
  std::vector<std::exception_ptr> failures(n);
  std::atomic<std::size_t> ready{0};
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      try {
        ready.fetch_add(1);
        while (ready.load() < n) std::this_thread::yield();
        responses[i] = request(i, system_->burst_client(i));
      } catch (...) {
        failures[i] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& f : failures) {
    if (f) std::rethrow_exception(f);
  }
  return responses;
}

void Run::pay_burst(const Op& op) {
  const std::size_t n = op.pays.size();
  const auto ids_before = system_->scripts().new_ids();
  system_->scripts().expect_new(script_for(op), n);
  std::vector<std::string> bodies;
  for (const auto& pay : op.pays) {
    bodies.push_back(
        json::serialize(json::object{{"account_id", ledger_.accounts.at(pay.account).id},
                                     {"amount_cents", pay.amount_cents},
                                     {"merchant_name", pay.merchant_name}}));
  }
  const auto lo = system_->model_now_ms();
  const auto responses = at_once(n, [&](std::size_t i, test_support::HttpClient& client) {
    return client.request("POST", "/payments", bodies[i]);
  });
  const Interval sent = since(lo);
  const unsigned expected_status = outage_ || !op.unknowns.empty() ? 202U
                                   : is_2xx(op.verdict.status)     ? 201U
                                                                   : 502U;
  expect_equal("POST /payments x" + std::to_string(n) + " at once", "new payments the provider got",
               ids_before + n, system_->scripts().new_ids());
  std::set<std::int64_t> new_ids;
  for (std::size_t k = 0; k < n; ++k) new_ids.insert(system_->scripts().id_at(ids_before + k));
  std::vector<std::size_t> made;
  for (std::size_t k = 0; k < n; ++k) {
    const PaySpec& pay = op.pays[k];
    const HttpResponse& r = responses[k];
    const std::string what =
        "POST /payments (" + std::to_string(k + 1) + " of " + std::to_string(n) + " at once)";
    expect_status(r, expected_status, what);
    const auto& body = object_of(r, what);
    const json::object* payment_json = &body;
    if (expected_status == 502) {
      expect_problem(r, 502, "provider-rejected", what);
      const auto* inner = body.if_contains("payment");
      if (inner == nullptr || !inner->is_object()) differ(what, "payment: {...}", r.body);
      payment_json = &inner->get_object();
    }
    const auto id = int_of(*payment_json, "money_movement_id", what);
    if (!new_ids.contains(id) || !ids_.insert(id).second) {
      differ(what + ": money_movement_id", "one of the ids just sent to the provider, once",
             std::to_string(id));
    }
    const std::size_t i =
        ledger_.add_payment(pay.account, pay.amount_cents, pay.merchant_name, sent);
    ledger_.payments[i].id = id;
    if (!op.unknowns.empty() || outage_) ledger_.payments[i].resent = true;
    ++stats_.payments;
    touch(i);
    made.push_back(i);
    check_provider_request(id, ledger_.accounts.at(pay.account).id, pay.amount_cents,
                           pay.merchant_name);
    if (outage_) {
      outage_verdicts_[i] = op.verdict;
    } else if (op.unknowns.empty()) {
      if (is_2xx(op.verdict.status)) {
        ledger_.provider_accepted(i);
      } else {
        ledger_.provider_rejected(i, sent);
      }
    }
    compare_payment(ledger_.payments[i], *payment_json, what + " answer", false);
  }
  if (!outage_ && !op.unknowns.empty()) {
    for (const auto i : made) await_verdict(i, op.verdict);
  }
}

void Run::callback_burst(const Op& op) {
  const std::size_t n = op.callbacks.size();
  // Settled balances before, per account: the order of concurrent changes decides when a
  // negative run began, which the model then knows only as an interval.
  std::map<std::size_t, std::pair<std::int64_t, std::optional<Interval>>> before;
  std::map<std::size_t, std::size_t> changes_per_account;
  std::vector<std::size_t> payments_in_order;
  std::map<std::size_t, std::vector<std::size_t>> by_payment;
  std::vector<json::object> bodies;
  for (std::size_t k = 0; k < n; ++k) {
    const CallbackSpec& cb = op.callbacks[k];
    const std::size_t account = ledger_.payments.at(cb.payment).account;
    const Account& a = ledger_.accounts.at(account);
    before.try_emplace(account, a.settled_balance, a.negative_since);
    changes_per_account[account] += 1;
    if (by_payment[cb.payment].empty()) payments_in_order.push_back(cb.payment);
    by_payment[cb.payment].push_back(k);
    bodies.push_back(callback_body(cb));
  }
  const auto lo = system_->model_now_ms();
  const auto responses = at_once(n, [&](std::size_t k, test_support::HttpClient& client) {
    return client.post_json("/money_movement_request_callback", bodies[k]);
  });
  const Interval arrived = since(lo);
  for (const std::size_t payment : payments_in_order) {
    Payment& p = ledger_.payments.at(payment);
    std::vector<std::size_t> order = by_payment[payment];
    const Certainty late = ledger_.is_late(p, arrived);
    if (late == Certainty::cannot_tell ||
        (late == Certainty::yes) != (p.sent_epoch < ledger_.epoch)) {
      throw std::logic_error("timing assumption broken: cannot tell whether a callback for " +
                             std::to_string(p.id) + " is late");
    }
    if (order.size() > 1) {
      // Two at once for one payment: one after the other (SPEC 3), in the order the history
      // shows; the amounts differ, so they tell which was first.
      const auto r = system_->client().get("/payments/" + std::to_string(p.id));
      expect_status(r, 200, "GET /payments/" + std::to_string(p.id));
      const auto* history = object_of(r, "GET /payments/{id}").if_contains("callbacks");
      if (history == nullptr || !history->is_array() ||
          history->get_array().size() != p.callbacks.size() + order.size()) {
        differ("the history of payment " + std::to_string(p.id),
               std::to_string(p.callbacks.size() + order.size()) + " callbacks", r.body);
      }
      const auto& entries = history->get_array();
      const auto& last = entries[entries.size() - 1].as_object();
      if (int_of(last, "amount_cents", "history") == op.callbacks[order[0]].amount_cents) {
        std::swap(order[0], order[1]);
      }
    }
    for (const std::size_t k : order) {
      const CallbackSpec& cb = op.callbacks[k];
      const HttpResponse& r = responses[k];
      const std::string what = "callback for " + std::to_string(p.id) + " (" +
                               std::to_string(k + 1) + " of " + std::to_string(n) + " at once)";
      if (late == Certainty::yes) {
        expect_problem(r, 409, "callback-too-late", what + " after its settle_deadline");
        ledger_.record_late_callback(payment, cb.amount_cents, cb.given());
        ++stats_.callbacks_late;
      } else {
        expect_status(r, 201, what);
        if (outage_ && Ledger::awaits_provider(p)) {
          p.last_sent.hi = arrived.hi;
          p.resent = true;
        }
        ledger_.apply_callback(payment, cb.amount_cents, cb.given(), arrived);
        compare_payment(p, object_of(r, what), what + " answer", false);
        ++stats_.callbacks_applied;
      }
    }
    touch(payment);
  }
  for (const auto& [account, was] : before) {
    Account& a = ledger_.accounts.at(account);
    if (changes_per_account[account] > 1 && was.first < 0 && a.settled_balance < 0 && was.second) {
      // Negative before and after: whether it stayed negative in between depends on the order.
      a.negative_since = Interval{was.second->lo, arrived.hi};
    }
  }
}

void Run::callback_unknown(const Op& op) {
  if (ids_.contains(op.unknown_id)) throw std::logic_error("an 'unknown' id is a payment's");
  const auto r = system_->client().post_json(
      "/money_movement_request_callback",
      json::object{
          {"money_movement_id", op.unknown_id}, {"amount_cents", 100}, {"status", "posted"}});
  expect_problem(r, 404, "not-found", "callback for unknown id " + std::to_string(op.unknown_id));
}

void Run::callback_invalid(const Op& op) {
  std::string body = op.raw_callback;
  std::string id = "1";
  if (!ledger_.payments.empty()) {
    const std::size_t target = op.callbacks.at(0).payment;
    id = std::to_string(ledger_.payments.at(target).id);
    touch(target);
  }
  for (auto at = body.find("ID"); at != std::string::npos; at = body.find("ID")) {
    body.replace(at, 2, id);
  }
  const auto r = system_->client().request("POST", "/money_movement_request_callback", body);
  expect_problem(r, 400, "validation-error", "callback " + body);
}

void Run::recalculate(const Op& op) {
  const std::string n = std::to_string(op.window_seconds);
  const std::string body = "{\"time_to_delinquency_seconds\":" + n + "}";
  const auto lo = system_->model_now_ms();
  HttpResponse r;
  auto& client = system_->client();
  switch (op.recalc_form) {
    case Op::RecalcForm::patch_query:
      r = client.request("PATCH", "/accounts/recalculate?time_to_delinquency_seconds=" + n);
      break;
    case Op::RecalcForm::post_body:
      r = client.request("POST", "/accounts/recalculate", body);
      break;
    case Op::RecalcForm::patch_body:
      r = client.request("PATCH", "/accounts/recalculate/", body);
      break;
    case Op::RecalcForm::query_wins:
      r = client.request("PATCH", "/accounts/recalculate?time_to_delinquency_seconds=" + n,
                         "{\"time_to_delinquency_seconds\":" +
                             std::to_string(op.window_seconds == 0 ? 7 : 0) + "}");
      break;
    case Op::RecalcForm::default_window:
      r = client.request("PATCH", "/accounts/recalculate");
      break;
  }
  const Interval now = since(lo);
  expect_status(r, 200, "recalculate with a window of " + n + " s");
  // Its answer is the first page; the rest is read after it, with nothing changing meanwhile.
  std::deque<HttpResponse> pages;
  const auto by_id =
      account_pages(client, std::move(r), "recalculate", ledger_.accounts.size() + 1, pages);
  expect_equal("recalculate", "number of accounts", ledger_.accounts.size(), by_id.size());
  for (auto& a : ledger_.accounts) {
    const auto it = by_id.find(a.id);
    if (it == by_id.end()) differ("recalculate", "account " + std::to_string(a.id), "absent");
    const std::string actual = string_of(*it->second, "status", "recalculate");
    switch (Ledger::is_delinquent(a, op.window_seconds, now, kSlackMs)) {
      case Certainty::yes:
        a.status = "delinquent";
        break;
      case Certainty::no:
        a.status = "current";
        break;
      case Certainty::cannot_tell:
        // The negative run began about `window` ago: either answer is right; learn it.
        if (actual != "current" && actual != "delinquent") {
          differ("recalculate: status", "current or delinquent", actual);
        }
        a.status = actual;
        ++stats_.statuses_learned;
        break;
    }
    compare_account(a, *it->second, "recalculate (window " + n + " s)");
  }
  all_accounts_touched_ = true;
}

void Run::recalculate_invalid(const Op& op) {
  const auto r = system_->client().request(
      "PATCH", "/accounts/recalculate?time_to_delinquency_seconds=" + op.invalid_window);
  expect_problem(r, 400, "validation-error",
                 "recalculate with time_to_delinquency_seconds='" + op.invalid_window + "'");
  all_accounts_touched_ = true;
}

void Run::restart(const Op& op) {
  const auto ended = system_->stop(op.kill9);
  if (!op.kill9 && (!ended.exited || ended.code != 0 || ended.killed_after_timeout)) {
    differ("SIGTERM", "the service drains and exits 0",
           ended.exited ? "exit " + std::to_string(ended.code)
                        : "signal " + std::to_string(ended.signal) +
                              (ended.killed_after_timeout ? " (killed after 10 s)" : ""));
  }
  if (op.kind == OpKind::clock_step) {
    system_->step_wall_clock(op.step_seconds);
    ledger_.epoch += 1;
    ledger_.epoch_first_payment = ledger_.payments.size();
  }
  system_->start();
  // Everything acknowledged before the stop must be there (SPEC 4).
  full_check(false);
}

void Run::outage_end() {
  system_->scripts().end_outage();
  outage_ = false;
  for (const auto& [i, verdict] : outage_verdicts_) {
    if (Ledger::awaits_provider(ledger_.payments.at(i))) await_verdict(i, verdict);
  }
  outage_verdicts_.clear();
}

void Run::perform(const Op& op) {
  switch (op.kind) {
    case OpKind::open_account:
      open_account();
      break;
    case OpKind::pay:
    case OpKind::pay_replay:
    case OpKind::pay_key_reused:
      pay(op);
      break;
    case OpKind::pay_same_key_at_once:
      pay_same_key_at_once(op);
      break;
    case OpKind::pay_racing_callback:
      pay_racing_callback(op);
      break;
    case OpKind::pay_invalid:
      pay_invalid(op);
      break;
    case OpKind::callback:
      callback(op.callbacks.at(0));
      break;
    case OpKind::pay_burst:
      pay_burst(op);
      break;
    case OpKind::callback_burst:
      callback_burst(op);
      break;
    case OpKind::callback_unknown:
      callback_unknown(op);
      break;
    case OpKind::callback_invalid:
      callback_invalid(op);
      break;
    case OpKind::recalculate:
      recalculate(op);
      break;
    case OpKind::recalculate_invalid:
      recalculate_invalid(op);
      break;
    case OpKind::restart:
    case OpKind::clock_step:
      restart(op);
      break;
    case OpKind::outage_begin:
      system_->scripts().begin_outage(to_action(op.outage_first), to_action(op.outage_copies));
      outage_ = true;
      break;
    case OpKind::outage_end:
      outage_end();
      break;
  }
}

void Run::open_account() {
  const auto r = system_->client().request("POST", "/accounts");
  expect_status(r, 201, "POST /accounts");
  const auto& o = object_of(r, "POST /accounts");
  const auto id = int_of(o, "account_id", "POST /accounts");
  for (const auto& a : ledger_.accounts) {
    if (a.id == id) differ("POST /accounts", "a new account id", std::to_string(id));
  }
  if (id <= 0) differ("POST /accounts: account_id", "positive", std::to_string(id));
  const std::size_t i = ledger_.open_account(id);
  compare_account(ledger_.accounts[i], o, "POST /accounts answer");
  touched_accounts_.insert(i);
}

RunResult Run::go() {
  RunResult result;
  const auto started = std::chrono::steady_clock::now();
  std::deque<std::string> recent;
  try {
    system_ = std::make_unique<System>(SystemOptions{
        .postgres = options_.postgres,
        .service_binary = options_.service_binary,
        .time_to_settle_seconds = kSettleSeconds,
        .settle_grace_seconds = kGraceSeconds,
        .idempotency_key_ttl_hours = kKeyTtlHours,
        .provider_timeout_ms = kProviderTimeoutMs,
    });
    system_->start();
    // On first start the service creates account 1 (SPEC 2).
    const auto accounts = system_->client().get("/accounts");
    expect_status(accounts, 200, "GET /accounts on a new database");
    if (!accounts.json || !accounts.json->is_array() || accounts.json->get_array().size() != 1) {
      differ("GET /accounts on a new database", "account 1 alone", accounts.describe());
    }
    ledger_.open_account(1);
    all_accounts_touched_ = true;
    check_touched();

    for (step_ = 1; step_ <= options_.ops; ++step_) {
      const Op op = generator_.next(ledger_);
      result.operation = op.describe(ledger_);
      recent.push_back("step " + std::to_string(step_) + ": " + result.operation);
      if (recent.size() > kRecentOps) recent.pop_front();
      if (options_.verbose) std::cerr << recent.back() << "\n";
      const auto op_started = std::chrono::steady_clock::now();
      perform(op);
      check_touched();
      check_provider();
      const auto kind = static_cast<std::size_t>(op.kind);
      stats_.ops_by_kind.at(kind) += 1;
      stats_.seconds_by_kind.at(kind) +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - op_started).count();
      if (options_.plant_difference_at && step_ == *options_.plant_difference_at) {
        plant_difference();
      }
      if (step_ % options_.full_check_every == 0) full_check(false);
    }
    step_ = options_.ops;
    result.operation = "the final checks";
    full_check(true);
  } catch (const Difference& d) {
    result.passed = false;
    result.message = d.what();
  } catch (const std::exception& e) {
    result.passed = false;
    result.message = std::string("error: ") + e.what();
  }
  result.step = step_;
  result.recent_operations = std::move(recent);
  if (!result.passed && system_) result.service_log_tail = system_->log_tail(4000);
  stats_.accounts = ledger_.accounts.size();
  stats_.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  result.stats = stats_;
  return result;
}

}  // namespace

RunResult run_model(const RunOptions& options) {
  Run run(options);
  return run.go();
}

}  // namespace model
