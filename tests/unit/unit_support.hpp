#pragma once
// Helpers shared by the unit tests: a temporary directory that cleans up after itself, and the
// ledger invariants of docs/decisions.md checked straight from a SQLite file with the C API.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace ps::unit {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A read-only connection of its own to a SQLite file (sees what was committed).
class SqlReader {
 public:
  explicit SqlReader(const std::string& path);
  ~SqlReader();
  SqlReader(const SqlReader&) = delete;
  SqlReader& operator=(const SqlReader&) = delete;

  // Every row of `sql`, each column as text (NULL as std::nullopt).
  std::vector<std::vector<std::optional<std::string>>> rows(const std::string& sql) const;
  std::int64_t scalar(const std::string& sql) const;

 private:
  ::sqlite3* db_ = nullptr;
};

// The four ledger invariants of docs/decisions.md (plus negative_since being set exactly when the
// settled balance is negative). Returns one line per violation; empty when all hold.
std::vector<std::string> ledger_invariant_violations(const std::string& db_path);

}  // namespace ps::unit
