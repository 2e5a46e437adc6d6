#pragma once
// A PostgreSQL database of its own for a test. PS_TEST_POSTGRES_URL is the URL of a server (and a
// role allowed to create databases) that tests may use; unset, PostgreSQL tests skip, unless
// PS_REQUIRE_POSTGRES=1 makes that a failure.

#include <optional>
#include <string>

namespace test_support {

std::optional<std::string> postgres_admin_url();
bool postgres_required();

// `url` with its database name replaced by `database`.
std::string with_database(const std::string& url, const std::string& database);

// A new, empty database, dropped (with its sessions) when this object goes away.
class ScratchDatabase {
 public:
  ScratchDatabase();  // throws std::runtime_error without PS_TEST_POSTGRES_URL
  ~ScratchDatabase();
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;

  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

 private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

}  // namespace test_support
