#include "config/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

namespace ps::config {

namespace {

// {"time":"...","level":"info","message":"..."}: the message is escaped by Boost.JSON, so any
// text (quotes, newlines) stays one valid JSON line.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    time_.format(msg, dest);
    const auto level = spdlog::level::to_string_view(msg.level);
    const std::string message = boost::json::serialize(
        boost::json::string(std::string_view(msg.payload.data(), msg.payload.size())));
    fmt::format_to(std::back_inserter(dest), ",\"level\":\"{}\",\"message\":{}}}\n",
                   std::string_view(level.data(), level.size()), message);
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }

 private:
  spdlog::pattern_formatter time_{"{\"time\":\"%Y-%m-%dT%H:%M:%S.%eZ\"",
                                  spdlog::pattern_time_type::utc, ""};
};

}  // namespace

void setup_logging(const std::string& level, const std::string& format) {
  auto logger = spdlog::stderr_logger_mt("payment_service");
  if (format == "json") {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc));
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace ps::config
