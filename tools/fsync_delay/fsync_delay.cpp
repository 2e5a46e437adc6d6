// LD_PRELOAD shim: makes every fsync/fdatasync of the process take FSYNC_DELAY_US microseconds
// longer, emulating a disk whose cache flush is slower than this machine's. The calling thread
// blocks for the delay, as it would on such a disk; the CPU is free. The real call still runs
// first, so durability is unchanged.
//
//   LD_PRELOAD=build/bin/libfsync_delay.so FSYNC_DELAY_US=250 build/bin/payment_service ...
//
// With FSYNC_DELAY_FILE=PATH instead, the delay is read from that file (decimal microseconds,
// up to 5 s; missing or empty: none) at every call, so a test can slow the disk for a moment
// while the service runs. Used by bench/ (scenario 5) and by integration tests; the service
// itself knows nothing about it.
#include <dlfcn.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace {

using SyncFn = int (*)(int);

constexpr long kMaxFileDelayUs = 5'000'000;

long parse_us(const char* text, long max) {
  char* end = nullptr;
  const long parsed = std::strtol(text, &end, 10);
  const bool whole = end != text && (*end == '\0' || *end == '\n');
  return (whole && parsed > 0 && parsed <= max) ? parsed : 0L;
}

long delay_us() {
  static const char* const file = std::getenv("FSYNC_DELAY_FILE");
  if (file != nullptr) {
    std::FILE* f = std::fopen(file, "r");
    if (f == nullptr) return 0L;
    char text[32] = {};
    const bool read = std::fgets(text, sizeof text, f) != nullptr;
    std::fclose(f);
    return read ? parse_us(text, kMaxFileDelayUs) : 0L;
  }
  static const long value = [] {
    const char* text = std::getenv("FSYNC_DELAY_US");
    return text == nullptr ? 0L : parse_us(text, 1'000'000);
  }();
  return value;
}

void pause_after_flush() {
  const long us = delay_us();
  if (us == 0) return;
  timespec left{.tv_sec = us / 1'000'000, .tv_nsec = (us % 1'000'000) * 1000};
  while (nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
}

SyncFn next(const char* name) {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): dlsym returns void*
  return reinterpret_cast<SyncFn>(dlsym(RTLD_NEXT, name));
}

int delayed(SyncFn real, int fd) {
  if (real == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  const int saved_errno = errno;
  const int rc = real(fd);
  const int call_errno = errno;
  pause_after_flush();
  errno = rc == 0 ? saved_errno : call_errno;
  return rc;
}

}  // namespace

extern "C" {

int fsync(int fd) {
  static const SyncFn real = next("fsync");
  return delayed(real, fd);
}

int fdatasync(int fd) {
  static const SyncFn real = next("fdatasync");
  return delayed(real, fd);
}

}  // extern "C"
