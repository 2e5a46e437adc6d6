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

// Found by fuzz_config's property (issue 10): libpq also takes the password (and sslpassword,
// the client key's) as a query parameter, and the start-up line showed it as given.
TEST(ConfigDatabaseUrlForLog, APasswordGivenAsAQueryParameterIsHidden) {
  EXPECT_EQ(
      database_url_for_log("postgresql://ps@db.internal/ledger?password=s3cret&sslmode=require"),
      "postgresql://ps@db.internal/ledger?password=***&sslmode=require");
  EXPECT_EQ(database_url_for_log("postgres:///ledger?host=/run/pg&sslpassword=k3y&password=s3cret"),
            "postgres:///ledger?host=/run/pg&sslpassword=***&password=***");
  // libpq decodes the keyword: a percent-encoded one is the same parameter.
  EXPECT_EQ(database_url_for_log("postgresql://db/ledger?pass%77ord=s3cret"),
            "postgresql://db/ledger?pass%77ord=***");
  EXPECT_EQ(database_url_for_log("postgresql://ps:one@db/ledger?password=two"),
            "postgresql://ps:***@db/ledger?password=***");
}

TEST(ConfigDatabaseUrlForLog, UrlsWithoutAPasswordAreShownAsGiven) {
  EXPECT_EQ(database_url_for_log("postgresql://ps@db.internal/ledger"),
            "postgresql://ps@db.internal/ledger");
  EXPECT_EQ(database_url_for_log("sqlite:payment_service.db"), "sqlite:payment_service.db");
}

}  // namespace
}  // namespace ps::config
