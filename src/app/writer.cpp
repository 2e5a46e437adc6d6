#include "app/writer.hpp"

#include <spdlog/spdlog.h>

#include <cassert>
#include <chrono>
#include <cstdlib>

namespace ps::app {

Writer::Writer(std::unique_ptr<store::Store> store, const core::Clock& clock, AccountsView& view,
               WriterOptions options)
    : store_(std::move(store)), clock_(clock), view_(view), options_(options) {
  assert(options_.queue_capacity > 0 && options_.batch_max > 0);
}

Writer::~Writer() {
  stop();
}

void Writer::run_now(const Work& work) {
  assert(!thread_.joinable());
  std::vector<Job> batch;
  std::exception_ptr error;
  batch.push_back(Job{work, [&error](std::exception_ptr e) { error = std::move(e); }});
  execute(batch);
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

bool Writer::try_enqueue(Work work, Completion done, Admission admission) {
  {
    const std::lock_guard lock(mutex_);
    if (stopping_) return false;
    if (admission == Admission::bounded && queue_.size() >= options_.queue_capacity) return false;
    queue_.push_back(Job{std::move(work), std::move(done)});
    stats_.queue_depth.store(queue_.size(), std::memory_order_relaxed);
  }
  wake_.notify_one();
  return true;
}

void Writer::loop() {
  std::vector<Job> batch;
  batch.reserve(options_.batch_max);
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is done
      while (!queue_.empty() && batch.size() < options_.batch_max) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      stats_.queue_depth.store(queue_.size(), std::memory_order_relaxed);
    }
    execute(batch);
    batch.clear();
  }
}

void Writer::execute(std::vector<Job>& batch) {
  std::exception_ptr error = attempt(batch, 0, batch.size());
  if (!error) return;
  stats_.failed_batches.fetch_add(1, std::memory_order_relaxed);
  if (batch.size() == 1) {
    complete(batch.front(), error);
    return;
  }
  // Isolate the failure: each job alone, so the healthy ones still commit. Nothing of the batch
  // was committed (attempt returned an error), so running each job again is safe.
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (auto single = attempt(batch, i, 1)) complete(batch[i], single);
  }
}

std::exception_ptr Writer::attempt(std::vector<Job>& batch, std::size_t first, std::size_t count) {
  Touched touched;
  try {
    commit_batch(batch, first, count, touched);
  } catch (...) {
    return std::current_exception();  // commit_batch logged it
  }
  // Committed. From here on nothing may throw back into execute(): whatever fails now, these
  // jobs must not run again (that would be a second payment) and each is completed once.
  acknowledge(batch, first, count, touched);
  return nullptr;
}

void Writer::acknowledge(std::vector<Job>& batch, std::size_t first, std::size_t count,
                         const Touched& touched) noexcept {
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
        "publishing the accounts snapshot after a commit failed ({}): aborting so "
        "that a restart rebuilds it from the database",
        e.what());
    spdlog::default_logger()->flush();
    std::abort();
  }
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
void Writer::commit_batch(std::vector<Job>& batch, std::size_t first, std::size_t count,
                          Touched& touched) {
  const auto started = std::chrono::steady_clock::now();
  const core::TimeMs now = clock_.now_ms();
  try {
    store_->begin();
    for (std::size_t i = first; i < first + count; ++i) batch[i].work(*store_, now, touched);
    store_->commit();
  } catch (const std::exception& e) {
    store_->rollback();
    touched.clear();
    spdlog::error("write batch of {} job(s) failed and was rolled back: {}", count, e.what());
    throw;
  } catch (...) {
    store_->rollback();
    touched.clear();
    spdlog::error("write batch of {} job(s) failed and was rolled back: non-standard exception",
                  count);
    throw;
  }
  stats_.batches.fetch_add(1, std::memory_order_relaxed);
  stats_.jobs.fetch_add(count, std::memory_order_relaxed);
  stats_.commit_ns_total.fetch_add(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now() - started)
                                     .count()),
      std::memory_order_relaxed);
}

}  // namespace ps::app
