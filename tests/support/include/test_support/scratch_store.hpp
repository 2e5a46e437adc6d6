#pragma once
// "A store of kind K for this test": the unit tests of the application layer run each scenario
// against both stores, as a TEST_P over StoreKind:
//
//   class Suite : public ::testing::TestWithParam<test_support::StoreKind> {
//     void SetUp() override {
//       PS_NEED_STORE(GetParam());
//       db_.emplace(GetParam(), "suite.db");
//       ... store::open_store(db_->url(), {}) ...
//     }
//     std::optional<test_support::ScratchStore> db_;
//   };
//   INSTANTIATE_TEST_SUITE_P(Stores, Suite, test_support::both_stores(),
//                            test_support::store_kind_name);
//
// The test names end in /Sqlite and /Postgres. PostgreSQL runs when PS_TEST_POSTGRES_URL names a
// test cluster (scripts/with-test-postgres); see PS_NEED_POSTGRES for when it skips or fails.
// Header only: it needs GoogleTest, which the test_support library does not link.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include "test_support/postgres.hpp"
#include "test_support/temp_dir.hpp"

namespace test_support {

enum class StoreKind { sqlite, postgres };

inline auto both_stores() {
  return ::testing::Values(StoreKind::sqlite, StoreKind::postgres);
}

inline std::string store_kind_name(const ::testing::TestParamInfo<StoreKind>& info) {
  return info.param == StoreKind::sqlite ? "Sqlite" : "Postgres";
}

// Skips the current test (or fails it, see PS_NEED_POSTGRES) when `kind` is PostgreSQL and no
// test cluster runs. Use as the first statement of the fixture's SetUp, before ScratchStore.
#define PS_NEED_STORE(kind)                                                \
  do {                                                                     \
    if ((kind) == ::test_support::StoreKind::postgres) PS_NEED_POSTGRES(); \
  } while (false)

// The empty database of one test: a SQLite file `sqlite_file` in a fresh temporary directory, or
// a fresh database on the PostgreSQL test cluster. Removed (dropped) on destruction.
class ScratchStore {
 public:
  ScratchStore(StoreKind kind, std::string_view sqlite_file) : kind_(kind) {
    if (kind == StoreKind::postgres) {
      postgres_.emplace();
      url_ = postgres_->url();
    } else {
      url_ = "sqlite:" + (dir_ / sqlite_file).string();
    }
  }

  [[nodiscard]] StoreKind kind() const { return kind_; }
  // For store::open_store, test_support::open_reader and check_ledger_invariants.
  [[nodiscard]] const std::string& url() const { return url_; }
  // SQLite: the temporary directory that holds the file (PostgreSQL: an empty one).
  [[nodiscard]] const TempDir& dir() const { return dir_; }

 private:
  StoreKind kind_;
  TempDir dir_{"ps_unit"};
  std::optional<TestDatabase> postgres_;
  std::string url_;
};

}  // namespace test_support
