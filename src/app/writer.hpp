#pragma once
// The single writer. Every change to the ledger is a job on its bounded queue. Its thread takes
// all queued jobs (up to `batch_max`), runs them in ONE transaction, commits with ONE fsync, then
// completes all of them: group commit. Under light load a batch is one job and latency stays low;
// under heavy load the fsync is shared by hundreds of requests (ENGINEERING.md).
//
// A batch that fails (disk full, I/O error) is rolled back and its jobs are retried one per
// transaction, so one bad job cannot fail the others; a job that still fails gets the error.
// Nothing is acknowledged before its commit returns, and once it has returned nothing runs the
// batch's jobs again: each is completed exactly once, whatever fails after the commit.
//
// A shared database (PostgreSQL, several instances): each job names the rows it will change (a
// store::LockSet); the batch locks all of them first, in the store's fixed order, so instances
// cannot deadlock each other. A batch that still loses a race (serialization failure, deadlock:
// StoreFault::conflict) committed nothing and runs again, up to kConflictAttempts times with a
// growing pause. A COMMIT whose outcome could not be established (StoreFault::outcome_unknown)
// is neither acknowledged nor run again: its jobs fail (503), and an idempotent retry finds
// what, if anything, was committed.
//
// The database under the writer (issue 8):
// - Lost: before each COMMIT and again after it, the store checks that its path still names the
//   file it writes to (Store::verify_identity). If not (deleted, or a backup moved over it), the
//   batch is not acknowledged, writing stops for good (every later job fails at once), readiness
//   fails, and the database this process still has open is copied next to the path.
// - Corrupt: a write that meets damaged pages also stops writing for good: acknowledging more
//   writes on top of damage is what must not happen; the start-up integrity check refuses it.
// - Failing (disk full, I/O errors, locked): readiness fails until a write succeeds again. While
//   nothing else writes, the writer probes with a small real write every `probe_interval`, so
//   recovery turns readiness back without a restart or traffic.

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "app/accounts_view.hpp"
#include "app/errors.hpp"
#include "app/ledger.hpp"
#include "core/clock.hpp"
#include "store/store.hpp"
#include "util/await_callback.hpp"
#include "util/rate_limited_log.hpp"

namespace ps::app {

struct WriterOptions {
  std::size_t queue_capacity = 16384;
  std::size_t batch_max = 1024;  // 1 = one commit per request (the ablation baseline)
  // After a failed write, how often an otherwise idle writer tries a small real write: how soon
  // /readyz turns 200 again once the disk has room. A failing probe costs one failed statement.
  std::chrono::milliseconds probe_interval{1000};
};

// Readiness of the writer: false while writes fail, and for good once the database was lost or
// found corrupt. `detail` says why.
struct WriterHealth {
  bool ready = true;
  std::string detail;
};

struct WriterStats {
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> jobs{0};
  std::atomic<std::uint64_t> failed_batches{0};
  std::atomic<std::uint64_t> commit_ns_total{0};
  std::atomic<std::uint64_t> queue_depth{0};
};

class Writer {
 public:
  using Work = std::function<void(store::Store&, core::TimeMs now, Touched&)>;
  using Completion = std::function<void(std::exception_ptr)>;

  Writer(std::unique_ptr<store::Store> store, const core::Clock& clock, AccountsView& view,
         WriterOptions options);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Runs `work` synchronously on the calling thread, before start(): start-up tasks.
  void run_now(const Work& work);

  void start();
  // Finishes every queued job, then joins the thread.
  void stop();

  // Attempts of a batch that meets StoreFault::conflict, and the pause before the first retry
  // (doubling, with jitter).
  static constexpr int kConflictAttempts = 8;
  static constexpr std::chrono::microseconds kConflictPause{500};

  // New work is refused when the queue is full. Follow-up work of an already admitted request
  // (recording the provider's verdict) is always taken: it is bounded by the admitted requests,
  // and refusing it would strand a payment.
  enum class Admission { bounded, always };

  // False when the queue is full. When writing has stopped for good (see above), the job is not
  // run: `done` is called at once, on the calling thread, with a StoreError, and this returns true.
  // `locks`: the rows `work` will change (see above).
  bool try_enqueue(Work work, Completion done, Admission admission = Admission::bounded,
                   store::LockSet locks = {});

  // Runs `op(store, now, touched) -> R` in the next group commit; resumes the calling coroutine
  // on its own executor with the result. Throws Overloaded, or what the commit threw.
  //
  // GCC 12 mishandles temporaries with non-trivial members inside a co_await expression (they
  // are destroyed twice or relocated bitwise; seen under AddressSanitizer). So `run` is not a
  // coroutine, and callers name the op first: `auto op = [..]{..}; co_await run<R>(std::move(op));`
  // The same rule holds for every co_await in this project.
  template <class R, class Op>
  boost::asio::awaitable<R> run(Op op, store::LockSet locks = {},
                                Admission admission = Admission::bounded) {
    auto result = std::make_shared<R>();
    auto work = std::make_shared<Work>(
        [result, op_ = std::move(op)](store::Store& s, core::TimeMs now, Touched& touched) {
          *result = op_(s, now, touched);
        });
    auto start = [this, admission, result, work, locks = std::move(locks)](auto done) mutable {
      Completion complete = [result, done = std::move(done)](std::exception_ptr e) {
        done(e, std::move(*result));
      };
      if (!try_enqueue(std::move(*work), complete, admission, std::move(locks))) {
        complete(std::make_exception_ptr(Overloaded()));
      }
    };
    return util::await_callback<R>(std::move(start));
  }

  const WriterStats& stats() const { return stats_; }
  WriterHealth health() const;

 private:
  struct Job {
    Work work;
    Completion done;
    store::LockSet locks;
  };

  void loop();
  void execute(std::vector<Job>& batch);
  // attempt(), again while it meets a conflict (up to kConflictAttempts).
  std::exception_ptr attempt_until_no_conflict(std::vector<Job>& batch, std::size_t first,
                                               std::size_t count);
  // Runs jobs [first, first + count) in one transaction. nullptr: committed, and the jobs are
  // completed; otherwise the jobs are not completed, and nothing was committed unless the error
  // is StoreFault::outcome_unknown.
  std::exception_ptr attempt(std::vector<Job>& batch, std::size_t first, std::size_t count);
  // Throws what the work or the commit threw, after rolling back. True: the commit wrote.
  bool commit_batch(std::vector<Job>& batch, std::size_t first, std::size_t count,
                    Touched& touched);
  // After the commit: checks the store is still the database, publishes the accounts and
  // completes each job exactly once.
  void acknowledge(std::vector<Job>& batch, std::size_t first, std::size_t count,
                   const Touched& touched, bool wrote) noexcept;
  static void complete(Job& job, std::exception_ptr error) noexcept;

  // Health bookkeeping, on the writer's thread. `jobs` is 0 for the probe.
  void on_failure(const std::exception_ptr& error, std::size_t jobs) noexcept;
  void on_success(bool wrote) noexcept;
  void halt(store::StoreFault fault, const std::string& reason) noexcept;
  std::exception_ptr halted() const;
  void probe() noexcept;
  void rescue() noexcept;
  void set_health(bool ready, std::string detail);

  std::unique_ptr<store::Store> store_;
  const core::Clock& clock_;
  AccountsView& view_;
  WriterOptions options_;
  WriterStats stats_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::exception_ptr halted_;  // set once, when writing stopped for good; guarded by mutex_
  std::thread thread_;

  mutable std::mutex health_mutex_;
  WriterHealth health_;  // guarded by health_mutex_

  // The writer's thread only.
  bool failing_ = false;  // the last write failed for a store fault; probing
  std::chrono::steady_clock::time_point next_probe_{};
  bool rescue_pending_ = false;
  std::size_t unacknowledged_in_rescue_ = 0;  // jobs committed into the lost file, answered 503
  // One line a second per cause of failure, with the count of the others (a full disk fails
  // every batch: 7,600 lines in 18 s before).
  util::RateLimitedLog failure_log_;
  std::uint64_t jitter_state_ = 0x9e3779b97f4a7c15ULL;  // conflict pauses; the writer's thread
};

}  // namespace ps::app
