#include "system.hpp"

#include <boost/json/serialize.hpp>

#include <cstdlib>
#include <stdexcept>

namespace model {

namespace {

constexpr const char* kLibFaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
constexpr const char* kProviderUser = "model-user";
constexpr const char* kProviderPassword = "model pass:1";
constexpr const char* kProviderAuthorization = "Basic bW9kZWwtdXNlcjptb2RlbCBwYXNzOjE=";

std::optional<std::int64_t> movement_id_of(const FakeProvider::Request& request) {
  if (!request.json || !request.json->is_object()) return std::nullopt;
  const auto* id = request.json->get_object().if_contains("money_movement_id");
  if (id == nullptr || !id->is_int64()) return std::nullopt;
  return id->get_int64();
}

}  // namespace

FakeProvider::Action to_action(const ProviderStep& step) {
  switch (step.kind) {
    case ProviderStep::Kind::hang:
      return FakeProvider::Hang{};
    case ProviderStep::Kind::close:
      return FakeProvider::Close{};
    case ProviderStep::Kind::reply:
      break;
  }
  return FakeProvider::reply(step.status, step.status < 300 ? R"({"status":"pending"})"
                                                            : R"({"error":"scripted answer"})");
}

// ---- ProviderScripts ----------------------------------------------------------------------

std::optional<FakeProvider::Action> ProviderScripts::answer(const FakeProvider::Request& request) {
  const std::lock_guard lock(mutex_);
  if (request.header("Authorization").value_or("") != expected_authorization_) {
    problems_.push_back("a request without the configured Basic credentials: " +
                        request.header("Authorization").value_or("(none)"));
  }
  const auto id = movement_id_of(request);
  if (request.method != "POST" || request.target != "/money_movement/" || !id) {
    problems_.push_back("an unexpected request: " + request.method + " " + request.target + " " +
                        request.body);
    return FakeProvider::reply(400, R"({"error":"unexpected"})");
  }
  auto [seen, first] = seen_.try_emplace(*id);
  seen->second.id = *id;
  seen->second.requests += 1;
  if (first) {
    seen->second.first_body = *request.json;
    seen->second.first_received_at = request.received_at;
    order_.push_back(*id);
    if (next_new_ && next_new_count_ > 0) {
      scripts_.emplace(*id, *next_new_);
      if (--next_new_count_ == 0) next_new_.reset();
    } else {
      problems_.push_back("a payment the test did not make was sent: " + request.body);
    }
    changed_.notify_all();
  } else if (*request.json != seen->second.first_body) {
    seen->second.copies_differ = true;
  }
  const bool is_copy = !first;
  if (outage_) return is_copy ? outage_->second : outage_->first;
  const auto script = scripts_.find(*id);
  if (script == scripts_.end()) return FakeProvider::reply(201);
  if (script->second.steps.empty()) return script->second.last;
  FakeProvider::Action action = std::move(script->second.steps.front());
  script->second.steps.pop_front();
  return action;
}

void ProviderScripts::expect_new(Script script, std::size_t count) {
  const std::lock_guard lock(mutex_);
  next_new_ = std::move(script);
  next_new_count_ = count;
}

void ProviderScripts::expect_nothing() {
  const std::lock_guard lock(mutex_);
  next_new_.reset();
}

void ProviderScripts::begin_outage(FakeProvider::Action first_sends, FakeProvider::Action copies) {
  const std::lock_guard lock(mutex_);
  outage_.emplace(std::move(first_sends), std::move(copies));
}

void ProviderScripts::end_outage() {
  const std::lock_guard lock(mutex_);
  outage_.reset();
}

std::size_t ProviderScripts::new_ids() const {
  const std::lock_guard lock(mutex_);
  return order_.size();
}

bool ProviderScripts::wait_for_new_ids(std::size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return order_.size() >= count; });
}

std::optional<ProviderScripts::Seen> ProviderScripts::seen(std::int64_t id) const {
  const std::lock_guard lock(mutex_);
  const auto it = seen_.find(id);
  if (it == seen_.end()) return std::nullopt;
  return it->second;
}

std::int64_t ProviderScripts::id_at(std::size_t index) const {
  const std::lock_guard lock(mutex_);
  return order_.at(index);
}

std::vector<std::string> ProviderScripts::take_problems() {
  const std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  out.swap(problems_);
  return out;
}

// ---- System --------------------------------------------------------------------------------

System::System(SystemOptions options)
    : options_(std::move(options)), scripts_(kProviderAuthorization) {
  if (options_.postgres) {
    database_ = std::make_unique<test_support::TestDatabase>();
    database_url_ = database_->url();
  } else {
    database_url_ = "sqlite:" + (dir_ / "model.sqlite").string();
  }
  provider_ = std::make_unique<FakeProvider>();
  provider_->set_policy([this](const FakeProvider::Request& r) { return scripts_.answer(r); });
}

System::~System() {
  client_.reset();
  other_client_.reset();
  burst_clients_.clear();
  if (service_) service_->stop();
  service_.reset();
  if (provider_) provider_->stop();
}

void System::start() {
  client_.reset();
  other_client_.reset();
  burst_clients_.clear();
  service_.reset();
  // free_port() cannot reserve the port: another test may take it first; try again then.
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    const std::uint16_t port = test_support::free_port();
    test_support::ServiceOptions o;
    o.binary = options_.service_binary;
    o.args = {"--port", std::to_string(port), "--bind", "127.0.0.1", "--database-url",
              database_url_, "--provider-url", provider_->url(), "--provider-timeout-ms",
              std::to_string(options_.provider_timeout_ms), "--provider-connect-timeout-ms", "1000",
              // Short re-send delays: the test waits for every verdict before it goes on.
              "--provider-retry-initial-ms", "2", "--provider-retry-max-ms", "100",
              "--time-to-settle-seconds", std::to_string(options_.time_to_settle_seconds),
              "--settle-grace-seconds", std::to_string(options_.settle_grace_seconds),
              "--idempotency-key-ttl-hours", std::to_string(options_.idempotency_key_ttl_hours),
              "--threads", "2", "--log-level",
              // MODEL_TEST_LOG_LEVEL=debug to see every re-send in the service's log.
              std::getenv("MODEL_TEST_LOG_LEVEL") != nullptr ? std::getenv("MODEL_TEST_LOG_LEVEL")
                                                             : "warn"};
    o.unset_env = test_support::service_environment_variables();
    const char* inherited_asan = std::getenv("ASAN_OPTIONS");
    std::string asan = inherited_asan != nullptr ? inherited_asan : "";
    asan += std::string(asan.empty() ? "" : ":") + "verify_asan_link_order=0";
    // Only the wall clock is moved (monotonic time stays real, as on a real machine); the
    // offset is read once per process, and it changes only while the service is down.
    o.env = {{"PROVIDER_USERNAME", kProviderUser},
             {"PROVIDER_PASSWORD", kProviderPassword},
             {"LD_PRELOAD", std::string(FAKETIME_TIMERFD_SHIM) + ":" + kLibFaketime},
             {"ASAN_OPTIONS", asan},
             {"FAKETIME", "+" + std::to_string(wall_offset_seconds_)},
             {"FAKETIME_DONT_FAKE_MONOTONIC", "1"},
             {"DATABASE_DURABLE", "false"}};
    o.log_path = dir_ / "service.log";
    o.port = port;
    o.health_path = "/healthz";
    o.start_timeout = std::chrono::seconds(20);
    service_ = std::make_unique<test_support::ServiceProcess>(std::move(o));
    try {
      service_->start();
      break;
    } catch (const std::runtime_error& error) {
      if (attempt == kAttempts ||
          std::string_view(error.what()).find("Address already in use") == std::string_view::npos) {
        throw;
      }
    }
  }
  applied_offset_seconds_ = wall_offset_seconds_;
  client_ = std::make_unique<test_support::HttpClient>(service_->port());
  other_client_ = std::make_unique<test_support::HttpClient>(service_->port());
  for (std::size_t i = 0; i < kBurstClients; ++i) {
    burst_clients_.push_back(std::make_unique<test_support::HttpClient>(service_->port()));
  }
}

test_support::ExitStatus System::stop(bool kill9) {
  client_.reset();
  other_client_.reset();
  burst_clients_.clear();
  if (kill9) return service_->kill9();
  return service_->stop(std::chrono::milliseconds{10000}, SIGTERM);
}

std::string System::log_tail(std::size_t bytes) const {
  return service_ ? service_->log_tail(bytes) : std::string();
}

std::int64_t System::model_now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
             .count() +
         applied_offset_seconds_ * 1000;
}

}  // namespace model
