#pragma once
#include <string>

namespace ps::config {

// LOG_LEVEL and LOG_FORMAT: "text" for people, "json" for one JSON object per line.
void setup_logging(const std::string& level, const std::string& format);

}  // namespace ps::config
