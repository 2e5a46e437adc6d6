#pragma once
// Every environment variable payment_service reads. Header-only, so that the fuzz build (which
// builds nothing of tests/) uses the same list: CommandLineTest checks it against --help.

#include <string>
#include <vector>

namespace test_support {

// Tests unset them all, so whatever the developer's shell exports cannot leak into the
// processes under test.
inline std::vector<std::string> service_environment_variables() {
  return {"PORT",
          "BIND",
          "DATABASE_URL",
          "DATABASE_DURABLE",
          "DATABASE_INTEGRITY_CHECK",
          "DATABASE_WAL_CHECKPOINT_PAGES",
          "WRITE_QUEUE_CAPACITY",
          "WRITE_BATCH_MAX",
          "PROVIDER_URL",
          "PROVIDER_USERNAME",
          "PROVIDER_PASSWORD",
          "TIME_TO_SETTLE_SECONDS",
          "SETTLE_GRACE_SECONDS",
          "CALLBACK_ALLOW_FROM",
          "PROVIDER_CONNECT_TIMEOUT_MS",
          "PROVIDER_TIMEOUT_MS",
          "PROVIDER_RETRY_INITIAL_MS",
          "PROVIDER_RETRY_MAX_MS",
          "PROVIDER_RESEND_MAX_PER_SECOND",
          "IDEMPOTENCY_KEY_TTL_HOURS",
          "THREADS",
          "MAX_CONNECTIONS",
          "LOG_LEVEL",
          "LOG_FORMAT"};
}

}  // namespace test_support
