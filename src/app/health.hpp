#pragma once
// What the service reports about itself (GET /readyz, GET /metrics) that lives in app/: the
// writer's readiness and the counters of the writer, the payment flows and the Resender, as
// plain values.

#include <cstdint>
#include <string>

namespace ps::app {

class Resender;
class Writer;
struct ProviderStats;

// Whether the writer can write (app/writer.hpp, WriterHealth); `detail` says why not.
struct WriterReadiness {
  bool ready = true;
  std::string detail;
};

// The counters as read now, each on its own (counters, not one consistent snapshot).
struct Counters {
  std::uint64_t commits = 0;         // group commits
  std::uint64_t committed_jobs = 0;  // write jobs committed
  std::uint64_t failed_batches = 0;  // group commits rolled back
  std::uint64_t commit_ns_total = 0;
  std::uint64_t write_queue_depth = 0;
  std::uint64_t provider_configuration_errors = 0;
  std::uint64_t provider_resends = 0;
  bool provider_outage = false;  // re-sends get no answer and only probe
};

class Health {
 public:
  Health(const Writer& writer, const ProviderStats& provider_stats, const Resender& resender)
      : writer_(writer), provider_stats_(provider_stats), resender_(resender) {}

  WriterReadiness writer_readiness() const;
  Counters counters() const;

 private:
  const Writer& writer_;
  const ProviderStats& provider_stats_;
  const Resender& resender_;
};

}  // namespace ps::app
