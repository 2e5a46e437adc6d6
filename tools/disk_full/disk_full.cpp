// LD_PRELOAD shim for the tests: a full disk without root, mounts or filling a real volume.
// While the file DISK_FULL_FLAG_FILE exists, every write, truncate, allocation and sync of a file
// whose path starts with DISK_FULL_PATH_PREFIX (the database, its -wal, -shm and anything named
// after it) fails with ENOSPC, as ext4 answers when no block is left; removing the flag frees the
// disk. Other files (the log, sockets) are untouched. Without both variables the shim passes every
// call through.
//
//   LD_PRELOAD=build/bin/libdisk_full.so DISK_FULL_FLAG_FILE=/tmp/x/full
//     DISK_FULL_PATH_PREFIX=/tmp/x/db.sqlite build/bin/payment_service ...
//
// Cost while the flag is absent: one access() per intercepted call. Used by DiskFullTest only.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

const char* setting(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

// True when the disk is "full" for this file descriptor. errno is preserved.
bool full(int fd) {
  static const char* const flag = setting("DISK_FULL_FLAG_FILE");
  static const char* const prefix = setting("DISK_FULL_PATH_PREFIX");
  if (flag == nullptr || prefix == nullptr) return false;
  const int saved = errno;
  bool result = false;
  if (access(flag, F_OK) == 0) {
    char link[64];
    char target[4096];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t n = readlink(link, target, sizeof target - 1);
    if (n > 0) {
      target[n] = '\0';
      result = std::strncmp(target, prefix, std::strlen(prefix)) == 0;
    }
  }
  errno = saved;
  return result;
}

template <class Fn>
Fn next(const char* name) {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): dlsym returns void*
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

int no_space() {
  errno = ENOSPC;
  return -1;
}

}  // namespace

extern "C" {

ssize_t write(int fd, const void* buf, size_t n) {
  static const auto real = next<ssize_t (*)(int, const void*, size_t)>("write");
  return full(fd) ? no_space() : real(fd, buf, n);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
  static const auto real = next<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite");
  return full(fd) ? no_space() : real(fd, buf, n, offset);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t offset) {
  static const auto real = next<ssize_t (*)(int, const void*, size_t, off64_t)>("pwrite64");
  return full(fd) ? no_space() : real(fd, buf, n, offset);
}

ssize_t writev(int fd, const struct iovec* iov, int count) {
  static const auto real = next<ssize_t (*)(int, const struct iovec*, int)>("writev");
  return full(fd) ? no_space() : real(fd, iov, count);
}

ssize_t pwritev(int fd, const struct iovec* iov, int count, off_t offset) {
  static const auto real = next<ssize_t (*)(int, const struct iovec*, int, off_t)>("pwritev");
  return full(fd) ? no_space() : real(fd, iov, count, offset);
}

int fsync(int fd) {
  static const auto real = next<int (*)(int)>("fsync");
  return full(fd) ? no_space() : real(fd);
}

int fdatasync(int fd) {
  static const auto real = next<int (*)(int)>("fdatasync");
  return full(fd) ? no_space() : real(fd);
}

int ftruncate(int fd, off_t length) noexcept {
  static const auto real = next<int (*)(int, off_t)>("ftruncate");
  return full(fd) ? no_space() : real(fd, length);
}

int ftruncate64(int fd, off64_t length) noexcept {
  static const auto real = next<int (*)(int, off64_t)>("ftruncate64");
  return full(fd) ? no_space() : real(fd, length);
}

int fallocate(int fd, int mode, off_t offset, off_t length) {
  static const auto real = next<int (*)(int, int, off_t, off_t)>("fallocate");
  return full(fd) ? no_space() : real(fd, mode, offset, length);
}

// posix_fallocate reports the error as its result, not through errno.
int posix_fallocate(int fd, off_t offset, off_t length) {
  static const auto real = next<int (*)(int, off_t, off_t)>("posix_fallocate");
  return full(fd) ? ENOSPC : real(fd, offset, length);
}

int posix_fallocate64(int fd, off64_t offset, off64_t length) {
  static const auto real = next<int (*)(int, off64_t, off64_t)>("posix_fallocate64");
  return full(fd) ? ENOSPC : real(fd, offset, length);
}

}  // extern "C"
