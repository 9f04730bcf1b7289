// Brokers connecting as roles with fewer rights than the schema's creator (docs/configuration.md):
// once the schema is current, starting needs neither CREATE on the database nor CREATE on the
// schema `ordo`. Each test makes its own roles and scratch database and drops them at the end.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "db/pg/migrate.h"
#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

using integration::BrokerProcess;
using integration::ScratchPgDatabase;
using integration::UniqueName;

// A login role of the test cluster, dropped (with what it owns in the shared database, nothing)
// when the test ends; declare it before the databases it is used in, which go first.
class ScratchRole {
 public:
  explicit ScratchRole(const std::string& prefix) : name_(prefix + "_" + RandomHex(8)) {}
  ~ScratchRole() {
    std::string error;
    if (auto admin = PgConn::Open(Env().url, &error)) {
      admin->Exec("DROP ROLE IF EXISTS " + name_);
    }
  }
  ScratchRole(const ScratchRole&) = delete;
  ScratchRole& operator=(const ScratchRole&) = delete;

  ::testing::AssertionResult Create() {
    std::string error;
    auto admin = PgConn::Open(Env().url, &error);
    if (!admin) return ::testing::AssertionFailure() << error;
    PgConn::Outcome o = admin->Exec("CREATE ROLE " + name_ + " LOGIN");
    if (!o.ok()) return ::testing::AssertionFailure() << o.error;
    return ::testing::AssertionSuccess();
  }
  const std::string& name() const { return name_; }
  // `url` with this role as its user.
  std::string Url(const std::string& url) const { return WithUser(url, name_); }

 private:
  std::string name_;
};

// Runs each statement on `url` as the test's superuser; "" or the first error.
std::string AsAdmin(const std::string& url, const std::vector<std::string>& statements) {
  std::string error;
  auto conn = PgConn::Open(url, &error);
  if (!conn) return error;
  for (const std::string& sql : statements) {
    PgConn::Outcome o = conn->Exec(sql);
    if (!o.ok()) return sql + ": " + o.error;
  }
  return "";
}

class LeastPrivilegeTest : public PgTest {};

TEST_F(LeastPrivilegeTest, AfterTheFirstStartNoCreateOnTheDatabaseIsNeeded) {
  ScratchRole role("ordo_owner");
  ASSERT_TRUE(role.Create());
  ScratchPgDatabase db(Env().url, "ordo_priv_");
  ASSERT_TRUE(db.Create());
  // The first start creates the schema: it needs CREATE on the database, then loses it.
  ASSERT_EQ(AsAdmin(db.url(), {"GRANT CREATE ON DATABASE " + db.name() + " TO " + role.name()}),
            "");
  Status first = db::pg::Migrate({{"dbname", role.Url(db.url())}}, nullptr);
  ASSERT_TRUE(first.ok()) << first.message();
  ASSERT_EQ(AsAdmin(db.url(), {"REVOKE CREATE ON DATABASE " + db.name() + " FROM " + role.name()}),
            "");

  BrokerProcess broker({}, role.Url(db.url()));
  ASSERT_TRUE(broker.Start()) << broker.Log();
  HttpClient http(broker.port());
  EXPECT_EQ(PushThenPopBack(http, http, UniqueName("owner")), "");
}

TEST_F(LeastPrivilegeTest, ARoleWithOnlyDataRightsStartsOnASchemaAnotherRoleMigrated) {
  ScratchRole role("ordo_app");
  ASSERT_TRUE(role.Create());
  ScratchPgDatabase db(Env().url, "ordo_priv_");
  ASSERT_TRUE(db.Create());
  Status migrated = db::pg::Migrate({{"dbname", db.url()}}, nullptr);  // as the superuser
  ASSERT_TRUE(migrated.ok()) << migrated.message();
  const std::string& r = role.name();
  ASSERT_EQ(AsAdmin(db.url(),
                    {"GRANT USAGE ON SCHEMA ordo TO " + r,
                     "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ordo TO " + r,
                     "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ordo TO " + r}),
            "");

  BrokerProcess broker({}, role.Url(db.url()));
  ASSERT_TRUE(broker.Start()) << broker.Log();
  HttpClient http(broker.port());
  EXPECT_EQ(PushThenPopBack(http, http, UniqueName("app")), "");
}

}  // namespace
}  // namespace ordo::pg_test
