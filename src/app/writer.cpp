#include "app/writer.hpp"

#include <spdlog/spdlog.h>

#include <cassert>
#include <chrono>

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
  Touched touched;
  try {
    commit_batch(batch, 0, batch.size(), touched);
    view_.publish(touched);
    for (auto& job : batch) job.done(nullptr);
    return;
  } catch (...) {
    stats_.failed_batches.fetch_add(1, std::memory_order_relaxed);
    if (batch.size() == 1) {
      batch.front().done(std::current_exception());
      return;
    }
  }
  // Isolate the failure: each job alone, so the healthy ones still commit.
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Touched single;
    try {
      commit_batch(batch, i, 1, single);
      view_.publish(single);
      batch[i].done(nullptr);
    } catch (...) {
      batch[i].done(std::current_exception());
    }
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
