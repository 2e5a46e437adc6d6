#pragma once

#include <sys/types.h>
#include <csignal>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "test_support/service_environment.hpp"

namespace test_support {

// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close).
std::uint16_t free_port();

// True when something accepts TCP connections on 127.0.0.1:port.
bool port_accepts(std::uint16_t port);

struct ExitStatus {
  bool exited = false;                // normal exit: `code` is valid
  int code = -1;                      // exit code when `exited`
  int signal = 0;                     // terminating signal when !exited
  bool killed_after_timeout = false;  // stop() had to escalate to SIGKILL
};

// How a command that runs to completion ended, and what it wrote (stdout and stderr).
struct CommandOutcome {
  ExitStatus exit;
  std::string output;
};

// Runs `binary args...` to its end (e.g. `payment_service verify`), with every variable of
// service_environment_variables() unset and then `env` set.
CommandOutcome run_to_completion(const std::filesystem::path& binary,
                                 const std::vector<std::string>& args,
                                 const std::vector<std::pair<std::string, std::string>>& env = {});

// `payment_service verify --database-url URL` (SPEC 4: the history replays to exactly the
// stored payments and accounts). Empty when it exits 0; else its exit and output, for a message.
std::optional<std::string> verify_history_with(const std::filesystem::path& binary,
                                               const std::string& database_url);

struct ServiceOptions {
  std::filesystem::path binary;
  std::vector<std::string> args;  // argv[1..]
  // Added to the inherited environment, replacing variables of the same name.
  std::vector<std::pair<std::string, std::string>> env;
  // Removed from the inherited environment (e.g. PORT, DATABASE_URL of the developer's shell).
  std::vector<std::string> unset_env;
  std::filesystem::path log_path;  // stdout and stderr, appended
  std::uint16_t port = 0;          // where readiness is probed
  // Readiness: GET this path answers 200. Empty: only wait until the port accepts connections.
  std::string health_path = "/healthz";
  std::chrono::milliseconds start_timeout{10000};
};

// A child process (fork/execve) that is always reaped: the destructor SIGKILLs it if still up.
// The child gets PR_SET_PDEATHSIG=SIGKILL so it cannot outlive a crashed test either.
class ServiceProcess {
 public:
  explicit ServiceProcess(ServiceOptions options);
  ~ServiceProcess();
  ServiceProcess(const ServiceProcess&) = delete;
  ServiceProcess& operator=(const ServiceProcess&) = delete;
  ServiceProcess(ServiceProcess&&) = delete;
  ServiceProcess& operator=(ServiceProcess&&) = delete;

  // Starts the process and waits until it is ready. Throws std::runtime_error (with the log
  // tail) if it exits early or is not ready within start_timeout.
  void start();
  // start() in two steps, to start several processes at once. The child dies with the thread
  // that launched it (PR_SET_PDEATHSIG): launch from a thread that outlives it.
  void launch();
  void await_ready();
  // Sends `signal` (SIGTERM by default), waits up to `grace`, then SIGKILL. Returns how the
  // process ended.
  ExitStatus stop(std::chrono::milliseconds grace = std::chrono::milliseconds{5000},
                  int signal = SIGTERM);
  // SIGKILL and reap.
  ExitStatus kill9();
  // Non-blocking: true while the child has not exited.
  [[nodiscard]] bool running();
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] std::uint16_t port() const { return options_.port; }
  [[nodiscard]] const ServiceOptions& options() const { return options_; }
  [[nodiscard]] std::string log() const;
  [[nodiscard]] std::string log_tail(std::size_t max_bytes = 8192) const;
  // Exit status of the last run (valid after stop/kill9 or an early exit seen by running()).
  [[nodiscard]] const ExitStatus& last_exit() const { return last_exit_; }

 private:
  void spawn();
  bool wait_ready();
  ExitStatus reap_blocking();

  ServiceOptions options_;
  pid_t pid_ = -1;
  ExitStatus last_exit_;
};

}  // namespace test_support
