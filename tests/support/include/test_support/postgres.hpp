#pragma once
// PostgreSQL for tests: the private cluster that scripts/test starts (scripts/pg-test-cluster)
// and announces in PS_TEST_POSTGRES_URL (the admin URL of its `postgres` database), a fresh
// database per test, and read access to it.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "test_support/db_reader.hpp"

struct pg_conn;

namespace test_support {

// PS_TEST_POSTGRES_URL, when a test cluster runs.
std::optional<std::string> postgres_admin_url();
// PS_REQUIRE_POSTGRES=1 (scripts/test sets it): a test that needs PostgreSQL fails instead of
// skipping when no cluster was announced, so CI cannot go green without running them.
bool postgres_required();

// Skips the current test (or fails it, see postgres_required) when no test cluster runs. Use as
// the first statement of a test or fixture SetUp.
#define PS_NEED_POSTGRES()                                                     \
  do {                                                                         \
    if (!::test_support::postgres_admin_url()) {                               \
      if (::test_support::postgres_required()) {                               \
        FAIL() << "PS_REQUIRE_POSTGRES=1 but PS_TEST_POSTGRES_URL is not set"; \
      }                                                                        \
      GTEST_SKIP() << "no PostgreSQL test cluster (scripts/test starts one: "  \
                      "scripts/pg-test-cluster)";                              \
    }                                                                          \
  } while (false)

// A new, empty database on the test cluster, dropped (with its connections) on destruction.
class TestDatabase {
 public:
  TestDatabase();  // throws when no cluster runs
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;
  TestDatabase(TestDatabase&&) = delete;
  TestDatabase& operator=(TestDatabase&&) = delete;

  [[nodiscard]] const std::string& url() const { return url_; }
  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

// `url` with its database replaced by `database` (query parameters kept).
std::string with_database(const std::string& url, std::string_view database);

// Runs one statement on `url` on a new connection; throws with the server's message on error.
void postgres_exec(const std::string& url, const std::string& sql);

class PostgresReader final : public DbReader {
 public:
  explicit PostgresReader(const std::string& url);
  ~PostgresReader() override;
  PostgresReader(const PostgresReader&) = delete;
  PostgresReader& operator=(const PostgresReader&) = delete;
  PostgresReader(PostgresReader&&) = delete;
  PostgresReader& operator=(PostgresReader&&) = delete;

  [[nodiscard]] std::vector<SqlRow> query(std::string_view sql,
                                          const std::vector<SqlValue>& params = {}) const override;
  void exec(std::string_view sql) const override;
  void begin_snapshot() const override { exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); }
  void end_snapshot() const override { exec("COMMIT"); }

 private:
  pg_conn* conn_ = nullptr;
};

}  // namespace test_support
