#include "app/writer.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cassert>
#include <chrono>
#include <cstdlib>

namespace ps::app {

namespace {

using SteadyClock = std::chrono::steady_clock;

struct Described {
  store::StoreFault fault = store::StoreFault::none;
  std::string message;
};

Described describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const store::StoreError& e) {
    return {e.fault, e.what()};
  } catch (const std::exception& e) {
    return {store::StoreFault::none, e.what()};
  } catch (...) {
    return {store::StoreFault::none, "non-standard exception"};
  }
}

std::string suppressed_note(std::uint64_t suppressed) {
  return suppressed == 0
             ? std::string()
             : " (" + std::to_string(suppressed) + " similar line(s) suppressed before this one)";
}

}  // namespace

Writer::Writer(std::unique_ptr<store::Store> store, const core::Clock& clock, AccountsView& view,
               WriterOptions options)
    : store_(std::move(store)), clock_(clock), view_(view), options_(options) {
  assert(store_ != nullptr);
  assert(options_.queue_capacity > 0 && options_.batch_max > 0);
  assert(options_.probe_interval.count() > 0);
}

Writer::~Writer() {
  stop();
}

void Writer::run_now(const Work& work) {
  assert(!thread_.joinable());
  std::vector<Job> batch;
  std::exception_ptr error;
  batch.push_back(Job{work, [&error](std::exception_ptr e) { error = std::move(e); }, {}});
  execute(batch);
  if (rescue_pending_) rescue();
  if (error) std::rethrow_exception(error);
}

void Writer::start() {
  assert(!thread_.joinable());
  thread_ = std::thread([this] { loop(); });
}

void Writer::stop() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool Writer::try_enqueue(Work work, Completion done, Admission admission, store::LockSet locks) {
  Job job{std::move(work), std::move(done), std::move(locks)};
  std::exception_ptr stopped_for_good;
  {
    const std::lock_guard lock(mutex_);
    if (stopping_) return false;
    stopped_for_good = halted_;
    if (!stopped_for_good) {
      if (admission == Admission::bounded && queue_.size() >= options_.queue_capacity) {
        return false;
      }
      queue_.push_back(std::move(job));
      stats_.queue_depth.store(queue_.size(), std::memory_order_relaxed);
    }
  }
  if (stopped_for_good) {
    complete(job, stopped_for_good);  // not moved from: only queued when not stopped
    return true;
  }
  wake_.notify_one();
  return true;
}

WriterHealth Writer::health() const {
  const std::lock_guard lock(health_mutex_);
  return health_;
}

void Writer::set_health(bool ready, std::string detail) {
  const std::lock_guard lock(health_mutex_);
  health_ = WriterHealth{ready, std::move(detail)};
}

std::exception_ptr Writer::halted() const {
  const std::lock_guard lock(mutex_);
  return halted_;
}

void Writer::loop() {
  std::vector<Job> batch;
  batch.reserve(options_.batch_max);
  for (;;) {
    bool probe_now = false;
    {
      std::unique_lock lock(mutex_);
      const auto has_work = [this] { return stopping_ || !queue_.empty(); };
      if (failing_ && !halted_) {
        // Probe when due, also between batches: jobs that only read commit without writing and
        // prove nothing, so steady traffic of those must not postpone the probe for ever.
        probe_now =
            SteadyClock::now() >= next_probe_ || !wake_.wait_until(lock, next_probe_, has_work);
      } else {
        wake_.wait(lock, has_work);
      }
      if (!probe_now) {
        if (queue_.empty()) return;  // stopping, and everything queued is done
        while (!queue_.empty() && batch.size() < options_.batch_max) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        stats_.queue_depth.store(queue_.size(), std::memory_order_relaxed);
      }
    }
    if (probe_now) {
      probe();
      continue;
    }
    execute(batch);
    batch.clear();
    if (rescue_pending_) rescue();
  }
}

void Writer::execute(std::vector<Job>& batch) {
  if (const auto stopped_for_good = halted()) {
    for (auto& job : batch) complete(job, stopped_for_good);
    return;
  }
  std::exception_ptr error = attempt_until_no_conflict(batch, 0, batch.size());
  if (!error) return;
  stats_.failed_batches.fetch_add(1, std::memory_order_relaxed);
  // Whether an outcome_unknown batch committed is not known: running its jobs again could apply
  // them twice.
  if (batch.size() == 1 || halted() ||
      describe(error).fault == store::StoreFault::outcome_unknown) {
    for (auto& job : batch) complete(job, error);
    return;
  }
  // Isolate the failure: each job alone, so the healthy ones still commit. Nothing of the batch
  // was committed (attempt returned an error), so running each job again is safe.
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (const auto stopped_for_good = halted()) {
      complete(batch[i], stopped_for_good);
    } else if (auto single = attempt_until_no_conflict(batch, i, 1)) {
      complete(batch[i], single);
    }
  }
}

std::exception_ptr Writer::attempt_until_no_conflict(std::vector<Job>& batch, std::size_t first,
                                                     std::size_t count) {
  auto pause = kConflictPause;
  for (int attempts = 1;; ++attempts) {
    auto error = attempt(batch, first, count);
    if (!error || attempts == kConflictAttempts ||
        describe(error).fault != store::StoreFault::conflict) {
      return error;
    }
    // Nothing was committed. Another instance holds what this batch needs; wait a little (with
    // jitter, so two instances that collided do not collide again in step) and run it again.
    jitter_state_ ^= jitter_state_ << 13;
    jitter_state_ ^= jitter_state_ >> 7;
    jitter_state_ ^= jitter_state_ << 17;
    const auto jitter = std::chrono::microseconds(
        static_cast<std::int64_t>(jitter_state_ % static_cast<std::uint64_t>(pause.count() + 1)));
    std::this_thread::sleep_for(pause + jitter);
    pause *= 2;
  }
}

std::exception_ptr Writer::attempt(std::vector<Job>& batch, std::size_t first, std::size_t count) {
  const auto started = SteadyClock::now();
  Touched touched;
  bool wrote = false;
  try {
    wrote = commit_batch(batch, first, count, touched);
  } catch (...) {
    auto error = std::current_exception();
    view_.commits_settled();  // rolled back: nothing of it is visible
    on_failure(error, count);
    return error;
  }
  stats_.batches.fetch_add(1, std::memory_order_relaxed);
  stats_.jobs.fetch_add(count, std::memory_order_relaxed);
  stats_.commit_ns_total.fetch_add(
      static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - started)
              .count()),
      std::memory_order_relaxed);
  // Committed. From here on nothing may throw back into execute(): whatever fails now, these
  // jobs must not run again (that would be a second payment) and each is completed once.
  acknowledge(batch, first, count, touched, wrote);
  view_.commits_settled();  // published (or in a file no read opens, if the path was swapped)
  return nullptr;
}

void Writer::acknowledge(std::vector<Job>& batch, std::size_t first, std::size_t count,
                         const Touched& touched, bool wrote) noexcept {
  try {
    store_->verify_identity();
  } catch (...) {
    // The path was swapped during the COMMIT (the check before it passed): the batch went into
    // a file that no restart opens. Not acknowledged, and not run again: it would only go into
    // the same file. The rescued copy will hold it; the log says so.
    const auto error = std::current_exception();
    unacknowledged_in_rescue_ += count;
    halt(store::StoreFault::lost, describe(error).message);
    for (std::size_t i = first; i < first + count; ++i) complete(batch[i], error);
    return;
  }
  try {
    view_.publish(touched);
  } catch (const std::exception& e) {
    // The commit is durable but the accounts snapshot, the only source of GET /accounts, would
    // now miss it: every later read would answer a wrong balance, silently. Completing the
    // jobs anyway would acknowledge writes that reads contradict; rolling the view back is not
    // possible (the commit happened). The one safe way out is to stop the process: a restart
    // rebuilds the snapshot from the database (run_now's bootstrap lists every account), and the
    // clients of this batch get no answer, which they treat as an unknown outcome and retry
    // (an Idempotency-Key replays the committed result). publish only copies a map, so this is
    // an allocation failure in practice.
    spdlog::critical(
        "publishing the accounts snapshot after a commit failed ({}): aborting so that a "
        "restart rebuilds it from the database",
        e.what());
    spdlog::default_logger()->flush();
    std::abort();
  }
  on_success(wrote);
  for (std::size_t i = first; i < first + count; ++i) complete(batch[i], nullptr);
}

void Writer::complete(Job& job, std::exception_ptr error) noexcept {
  try {
    job.done(std::move(error));
  } catch (const std::exception& e) {
    // The job's outcome stands (committed or not); only its reply is lost. The other jobs of
    // the batch are completed regardless.
    spdlog::error("completing a write job threw: {}", e.what());
  } catch (...) {
    spdlog::error("completing a write job threw a non-standard exception");
  }
}

// Runs jobs [first, first + count) in one transaction; on any failure rolls back and rethrows.
bool Writer::commit_batch(std::vector<Job>& batch, std::size_t first, std::size_t count,
                          Touched& touched) {
  const core::TimeMs now = clock_.now_ms();
  try {
    store_->begin();
    store::LockSet locks;
    for (std::size_t i = first; i < first + count; ++i) locks.merge(batch[i].locks);
    if (!locks.empty()) store_->lock(locks);
    for (std::size_t i = first; i < first + count; ++i) batch[i].work(*store_, now, touched);
    // Inside the transaction: a database lost while the writer was idle is found here, and the
    // batch rolled back, so it lands nowhere (the check after COMMIT catches the rest).
    store_->verify_identity();
    view_.commit_started();
    return store_->commit();
  } catch (...) {
    store_->rollback();
    touched.clear();
    throw;
  }
}

void Writer::on_failure(const std::exception_ptr& error, std::size_t jobs) noexcept {
  const auto [fault, message] = describe(error);
  const auto now = SteadyClock::now();
  if (std::uint64_t suppressed = 0; failure_log_.should_log(message, suppressed)) {
    if (jobs == 0) {
      spdlog::error("readiness probe (a small write) failed: {}{}", message,
                    suppressed_note(suppressed));
    } else {
      spdlog::error("write batch of {} job(s) failed and was rolled back: {}{}", jobs, message,
                    suppressed_note(suppressed));
    }
  }
  switch (fault) {
    case store::StoreFault::none:
    case store::StoreFault::conflict:
      return;  // the job's own failure (a bug, a constraint) or a lost race: the store is fine
    case store::StoreFault::unavailable:
    case store::StoreFault::outcome_unknown:
      next_probe_ = now + options_.probe_interval;
      if (!failing_) {
        failing_ = true;
        spdlog::error(
            "writes fail ({}): /readyz answers 503 until a write succeeds; while idle the writer "
            "tries a small write every {} ms",
            message, options_.probe_interval.count());
      }
      set_health(false, "the last write failed: " + message);
      return;
    case store::StoreFault::corrupt:
    case store::StoreFault::lost:
      halt(fault, message);
      return;
  }
}

void Writer::on_success(bool wrote) noexcept {
  // A transaction that only read proves nothing about writing.
  if (!failing_ || !wrote) return;
  failing_ = false;
  set_health(true, {});
  spdlog::info("writes succeed again: /readyz answers 200");
}

void Writer::halt(store::StoreFault fault, const std::string& reason) noexcept {
  const bool lost = fault == store::StoreFault::lost;
  std::deque<Job> queued;
  {
    const std::lock_guard lock(mutex_);
    if (halted_) return;
    halted_ =
        std::make_exception_ptr(store::StoreError("writes are stopped for good: " + reason, fault));
    queued.swap(queue_);
    stats_.queue_depth.store(0, std::memory_order_relaxed);
  }
  failing_ = false;  // nothing to probe: this does not heal by itself
  set_health(false, "writes are stopped for good: " + reason);
  spdlog::critical(
      "writes are stopped for good: {}. {}", reason,
      lost ? "Every acknowledged write is in the database this process still has open; copying "
             "it next to the path now."
           : "The database is damaged: restore it from a backup. A restart runs the integrity "
             "check (DATABASE_INTEGRITY_CHECK) and refuses to start on damage.");
  for (auto& job : queued) complete(job, halted_);
  rescue_pending_ = lost;
}

void Writer::probe() noexcept {
  next_probe_ = SteadyClock::now() + options_.probe_interval;
  std::vector<Job> probe;
  probe.push_back(Job{[](store::Store& s, core::TimeMs now, Touched&) { s.record_probe(now); },
                      [](const std::exception_ptr&) {},
                      {}});
  Touched touched;
  bool wrote = false;
  try {
    wrote = commit_batch(probe, 0, 1, touched);
    store_->verify_identity();
  } catch (...) {
    on_failure(std::current_exception(), 0);
    return;
  }
  on_success(wrote);
}

void Writer::rescue() noexcept {
  rescue_pending_ = false;
  try {
    const auto report = store_->rescue();
    spdlog::critical(
        "copied the database this process still has open to {}: it holds every acknowledged "
        "write{}. {}{}To go on from it: stop the service, check the copy, move it to the "
        "database path, start",
        report.copy_path,
        unacknowledged_in_rescue_ == 0
            ? std::string()
            : ", and also " + std::to_string(unacknowledged_in_rescue_) +
                  " job(s) committed while the path changed, which were answered 503",
        report.details, report.details.empty() ? "" : " ");
  } catch (const std::exception& e) {
    spdlog::critical(
        "could not copy the database this process still has open ({}). Its files stay readable "
        "while this process runs, under /proc/{}/fd (marked deleted if they were): copy them "
        "before stopping it",
        e.what(), ::getpid());
  }
}

}  // namespace ps::app
