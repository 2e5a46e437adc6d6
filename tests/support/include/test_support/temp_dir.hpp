#pragma once

#include <filesystem>
#include <string_view>

namespace test_support {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
// Set TEST_KEEP_TEMP=1 in the environment to keep it for post-mortem inspection.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "payment_service_test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&&) = delete;
  TempDir& operator=(TempDir&&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path operator/(std::string_view name) const {
    return path_ / name;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace test_support
