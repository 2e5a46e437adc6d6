// LD_PRELOAD shim, loaded ahead of libfaketime for the model test's service: timerfd_settime
// and timerfd_gettime go straight to the kernel. libfaketime (Debian 0.9.10) rewrites the times
// of an absolute timerfd as if they were on its faked clock; the service's clock steps move the
// wall clock only (FAKETIME_DONT_FAKE_MONOTONIC=1), and Boost.Asio arms its CLOCK_MONOTONIC
// timerfd with an absolute 1 ns to run timers that are already due. Under an offset of +7200 s
// such a timer did not run until some other timer woke the reactor (measured: a due timer ran
// after 2.7 s instead of at once; the service's re-sends stalled for good), which a real wall
// clock step never does: CLOCK_MONOTONIC timers do not follow the wall clock.
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

extern "C" {

int timerfd_settime(int fd, int flags, const struct itimerspec* new_value,
                    struct itimerspec* old_value) {
  return static_cast<int>(syscall(SYS_timerfd_settime, fd, flags, new_value, old_value));
}

int timerfd_gettime(int fd, struct itimerspec* value) {
  return static_cast<int>(syscall(SYS_timerfd_gettime, fd, value));
}

}  // extern "C"
