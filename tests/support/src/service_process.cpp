#include "test_support/service_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "test_support/http_client.hpp"

extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace test_support {

namespace {

std::string shell_quoted(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

CommandOutcome run_to_completion(const std::filesystem::path& binary,
                                 const std::vector<std::string>& args,
                                 const std::vector<std::pair<std::string, std::string>>& env) {
  std::string command = "env";
  for (const auto& variable : service_environment_variables()) command += " -u " + variable;
  for (const auto& [name, value] : env) command += " " + name + "=" + shell_quoted(value);
  command += " " + shell_quoted(binary.string());
  for (const auto& arg : args) command += " " + shell_quoted(arg);
  command += " 2>&1";
  CommandOutcome outcome;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::system_error(errno, std::generic_category(), "popen");
  char buffer[4096];
  for (std::size_t n = 0; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) {
    outcome.output.append(buffer, n);
  }
  const int status = ::pclose(pipe);
  outcome.exit.exited = WIFEXITED(status);
  outcome.exit.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  outcome.exit.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  return outcome;
}

std::optional<std::string> verify_history_with(const std::filesystem::path& binary,
                                               const std::string& database_url) {
  const auto outcome = run_to_completion(binary, {"verify", "--database-url", database_url});
  if (outcome.exit.exited && outcome.exit.code == 0) return std::nullopt;
  return "payment_service verify exited " +
         (outcome.exit.exited ? std::to_string(outcome.exit.code)
                              : "on signal " + std::to_string(outcome.exit.signal)) +
         ": " + outcome.output;
}

namespace {

using namespace std::chrono_literals;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&&) = delete;
  Fd& operator=(Fd&&) = delete;
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

ExitStatus decode(int wait_status) {
  ExitStatus result;
  if (WIFEXITED(wait_status)) {
    result.exited = true;
    result.code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    result.signal = WTERMSIG(wait_status);
  }
  return result;
}

}  // namespace

std::uint16_t free_port() {
  const Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    throw std::system_error(errno, std::generic_category(), "socket");
  }
  sockaddr_in addr = loopback(0);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::system_error(errno, std::generic_category(), "bind 127.0.0.1:0");
  }
  socklen_t len = sizeof addr;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::system_error(errno, std::generic_category(), "getsockname");
  }
  return ntohs(addr.sin_port);
}

bool port_accepts(std::uint16_t port) {
  const Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    return false;
  }
  sockaddr_in addr = loopback(port);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast)
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

ServiceProcess::ServiceProcess(ServiceOptions options) : options_(std::move(options)) {}

ServiceProcess::~ServiceProcess() {
  if (pid_ > 0) {
    ::kill(-pid_, SIGKILL);  // its process group: children it forked (nginx's workers) too
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
}

void ServiceProcess::spawn() {
  if (pid_ > 0) {
    throw std::logic_error("ServiceProcess::start: already running");
  }
  if (::access(options_.binary.c_str(), X_OK) != 0) {
    throw std::runtime_error("service binary not executable: " + options_.binary.string());
  }

  // Everything the child needs is prepared before fork(): after fork() in a multi-threaded
  // process only async-signal-safe calls are allowed.
  std::vector<std::string> argv_storage;
  argv_storage.push_back(options_.binary.string());
  argv_storage.insert(argv_storage.end(), options_.args.begin(), options_.args.end());

  std::set<std::string> replaced(options_.unset_env.begin(), options_.unset_env.end());
  for (const auto& [name, value] : options_.env) {
    replaced.insert(name);
  }
  std::vector<std::string> env_storage;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const auto eq = text.find('=');
    if (replaced.count(std::string(text.substr(0, eq))) == 0) {
      env_storage.emplace_back(text);
    }
  }
  for (const auto& [name, value] : options_.env) {
    std::string entry = name;
    entry += "=";
    entry += value;
    env_storage.push_back(std::move(entry));
  }

  std::vector<char*> argv;
  argv.reserve(argv_storage.size() + 1);
  for (auto& arg : argv_storage) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(env_storage.size() + 1);
  for (auto& var : env_storage) {
    envp.push_back(var.data());
  }
  envp.push_back(nullptr);

  const Fd log_fd(
      ::open(options_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (log_fd.get() < 0) {
    throw std::system_error(errno, std::generic_category(), "open " + options_.log_path.string());
  }
  const Fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (null_fd.get() < 0) {
    throw std::system_error(errno, std::generic_category(), "open /dev/null");
  }
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) {
    throw std::system_error(errno, std::generic_category(), "fork");
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(126);
    }
    ::setpgid(0, 0);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(null_fd.get(), STDIN_FILENO);
    ::dup2(log_fd.get(), STDOUT_FILENO);
    ::dup2(log_fd.get(), STDERR_FILENO);
    ::close_range(3, ~0U, 0);
    ::execve(argv[0], argv.data(), envp.data());
    static constexpr char kMessage[] = "ServiceProcess: execve failed\n";
    [[maybe_unused]] const auto written = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
    ::_exit(127);
  }
  pid_ = pid;
}

void ServiceProcess::start() {
  launch();
  await_ready();
}

void ServiceProcess::launch() {
  {
    std::ofstream log(options_.log_path, std::ios::app);
    log << "----- ServiceProcess: starting " << options_.binary.string();
    for (const auto& arg : options_.args) {
      log << ' ' << arg;
    }
    log << '\n';
  }
  spawn();
}

void ServiceProcess::await_ready() {
  if (!wait_ready()) {
    const bool still_running = running();
    if (still_running) {
      kill9();
    }
    std::ostringstream message;
    message << "service " << options_.binary.string()
            << (still_running ? " not ready within timeout" : " exited during start-up");
    if (!still_running) {
      message << " (exit code " << last_exit_.code << ", signal " << last_exit_.signal << ")";
    }
    message << "; log tail:\n" << log_tail();
    throw std::runtime_error(message.str());
  }
}

bool ServiceProcess::wait_ready() {
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) {
      return false;
    }
    if (port_accepts(options_.port)) {
      if (options_.health_path.empty()) {
        return true;
      }
      try {
        HttpClient client(options_.port, 1000ms);
        if (client.get(options_.health_path).status == 200) {
          return true;
        }
      } catch (const std::exception&) {
        // not ready yet: keep polling
      }
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

bool ServiceProcess::running() {
  if (pid_ <= 0) {
    return false;
  }
  int status = 0;
  const pid_t result = ::waitpid(pid_, &status, WNOHANG);
  if (result == pid_) {
    last_exit_ = decode(status);
    pid_ = -1;
    return false;
  }
  return true;
}

ExitStatus ServiceProcess::reap_blocking() {
  int status = 0;
  pid_t result = -1;
  do {
    result = ::waitpid(pid_, &status, 0);
  } while (result < 0 && errno == EINTR);
  pid_ = -1;
  last_exit_ = result < 0 ? ExitStatus{} : decode(status);
  return last_exit_;
}

ExitStatus ServiceProcess::stop(std::chrono::milliseconds grace, int signal) {
  if (!running()) {
    return last_exit_;
  }
  ::kill(pid_, signal);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) {
      return last_exit_;
    }
    std::this_thread::sleep_for(10ms);
  }
  ::kill(-pid_, SIGKILL);  // its process group: children it forked (nginx's workers) too
  reap_blocking();
  last_exit_.killed_after_timeout = true;
  return last_exit_;
}

ExitStatus ServiceProcess::kill9() {
  if (!running()) {
    return last_exit_;
  }
  ::kill(-pid_, SIGKILL);  // its process group: children it forked (nginx's workers) too
  return reap_blocking();
}

std::string ServiceProcess::log() const {
  std::ifstream in(options_.log_path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string ServiceProcess::log_tail(std::size_t max_bytes) const {
  std::string text = log();
  if (text.size() > max_bytes) {
    text = "[...]" + text.substr(text.size() - max_bytes);
  }
  return text;
}

}  // namespace test_support
