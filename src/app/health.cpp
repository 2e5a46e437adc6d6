#include "app/health.hpp"

#include "app/payments.hpp"
#include "app/resender.hpp"
#include "app/writer.hpp"

namespace ps::app {

WriterReadiness Health::writer_readiness() const {
  auto health = writer_.health();
  return WriterReadiness{.ready = health.ready, .detail = std::move(health.detail)};
}

Counters Health::counters() const {
  const auto& w = writer_.stats();
  return Counters{
      .commits = w.batches.load(),
      .committed_jobs = w.jobs.load(),
      .failed_batches = w.failed_batches.load(),
      .commit_ns_total = w.commit_ns_total.load(),
      .write_queue_depth = w.queue_depth.load(),
      .provider_configuration_errors = provider_stats_.configuration_errors.load(),
      .provider_resends = provider_stats_.resends.load(),
      .provider_outage = resender_.in_outage(),
  };
}

}  // namespace ps::app
