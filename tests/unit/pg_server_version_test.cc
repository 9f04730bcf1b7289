// The PostgreSQL engine refuses a server older than the schema needs, with a message that names
// both versions (db::pg::CheckServerVersion; Migrate calls it before it writes anything).
#include <gtest/gtest.h>

#include "db/pg/migrate.h"

namespace ordo::db::pg {
namespace {

TEST(PgServerVersionTest, ThirteenAndLaterAreAccepted) {
  EXPECT_TRUE(CheckServerVersion(130000).ok());
  EXPECT_TRUE(CheckServerVersion(150018).ok());
  EXPECT_TRUE(CheckServerVersion(170002).ok());
}

TEST(PgServerVersionTest, AnOlderServerIsRefusedWithBothVersionsNamed) {
  Status s = CheckServerVersion(120022);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("PostgreSQL 13 or later is needed"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("this server runs 12.22"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--db sqlite:PATH"), std::string::npos) << s.message();
}

TEST(PgServerVersionTest, ServersBeforeTenAreNamedTheirOwnWay) {
  Status s = CheckServerVersion(90624);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("this server runs 9.6.24"), std::string::npos) << s.message();
}

TEST(PgServerVersionTest, AnUnknownVersionIsRefused) {
  // PQserverVersion returns 0 when it cannot tell.
  Status s = CheckServerVersion(0);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("this server runs unknown"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace ordo::db::pg
