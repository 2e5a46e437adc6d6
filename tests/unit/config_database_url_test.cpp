// The DATABASE_URL as the start-up log line shows it: never a password.

#include <gtest/gtest.h>

#include "config/config.hpp"

namespace ps::config {
namespace {

TEST(ConfigDatabaseUrlForLog, APasswordInAPostgresUriIsHidden) {
  EXPECT_EQ(database_url_for_log("postgresql://ps:s3cret@db.internal:5432/ledger?sslmode=require"),
            "postgresql://ps:***@db.internal:5432/ledger?sslmode=require");
  EXPECT_EQ(database_url_for_log("postgres://ps:s3cret@h1,h2/ledger"),
            "postgres://ps:***@h1,h2/ledger");  // several hosts
  EXPECT_EQ(database_url_for_log("postgresql://ps:s3cret@[bad/ledger"),
            "a PostgreSQL URI that cannot be shown safely");
}

TEST(ConfigDatabaseUrlForLog, UrlsWithoutAPasswordAreShownAsGiven) {
  EXPECT_EQ(database_url_for_log("postgresql://ps@db.internal/ledger"),
            "postgresql://ps@db.internal/ledger");
  EXPECT_EQ(database_url_for_log("sqlite:payment_service.db"), "sqlite:payment_service.db");
}

}  // namespace
}  // namespace ps::config
