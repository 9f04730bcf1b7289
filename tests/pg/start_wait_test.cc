// A broker started before its database can be reached: it tries again with back-off for
// --db-start-timeout seconds (docs/configuration.md), then serves; past the timeout it exits with
// the last error. A failed attempt is a failure to connect (here: the database does not exist
// yet, as when an init job creates it after the broker starts); a migration that fails once
// connected is not retried. A server that takes no writes (a standby) counts as not reached.
#include <chrono>
#include <functional>
#include <string>
#include <thread>
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
using integration::WithDatabase;

class StartWaitTest : public PgTest {};

TEST_F(StartWaitTest, MigrateTellsAFailureToConnectFromAFailedMigration) {
  ScratchPgDatabase db(Env().url, "ordo_wait_");  // not created
  int applied = -1;
  bool connected = true;
  Status s = db::pg::Migrate({{"dbname", db.url()}}, &applied, &connected);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(connected) << s.message();
  EXPECT_NE(s.message().find("does not exist"), std::string::npos) << s.message();

  ASSERT_TRUE(db.Create());
  s = db::pg::Migrate({{"dbname", db.url()}}, &applied, &connected);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(connected);
  EXPECT_GT(applied, 0);
}

// Starts a broker on `db_url` with --db-start-timeout 30 while the database cannot be used yet;
// 1.5 s later `fix` makes it usable. The broker must have logged `waiting` (its reason for
// trying again), become ready by itself, and serve a push and its pop.
void StartsOnceFixed(const std::string& db_url, const std::function<std::string()>& fix,
                     const std::string& waiting) {
  BrokerProcess broker({"--db-start-timeout", "30"}, db_url);
  std::string fix_error = "not run";
  std::thread fixer([&] {
    std::this_thread::sleep_for(1500ms);
    fix_error = fix();
  });
  ::testing::AssertionResult started = broker.Start();  // waits up to 10 s for /health/ready
  fixer.join();
  ASSERT_EQ(fix_error, "");
  ASSERT_TRUE(started);
  const std::string log = broker.Log();
  EXPECT_NE(log.find(waiting + "; trying again in"), std::string::npos) << log;

  HttpClient http(broker.port());
  EXPECT_EQ(PushThenPopBack(http, http, UniqueName("late")), "");
}

TEST_F(StartWaitTest, ABrokerStartedBeforeItsDatabaseExistsServesOnceItIsCreated) {
  ScratchPgDatabase db(Env().url, "ordo_wait_");
  StartsOnceFixed(
      db.url(),
      [&db] {
        ::testing::AssertionResult created = db.Create();
        return created ? std::string() : std::string(created.message());
      },
      "does not exist");
}

// A read-only server (a hot standby not yet promoted; here a database whose sessions default to
// read-only) is waited for like one that cannot be reached, and served once it takes writes.
TEST_F(StartWaitTest, AReadOnlyServerIsWaitedForUntilItTakesWrites) {
  ScratchPgDatabase db(Env().url, "ordo_wait_");
  ASSERT_TRUE(db.Create());
  std::string error;
  auto admin = PgConn::Open(Env().url, &error);  // another database of the cluster
  ASSERT_TRUE(admin) << error;
  PgConn::Outcome o =
      admin->Exec("ALTER DATABASE " + db.name() + " SET default_transaction_read_only = on");
  ASSERT_TRUE(o.ok()) << o.error;
  StartsOnceFixed(
      db.url(),
      [&] {
        return admin->Exec("ALTER DATABASE " + db.name() + " RESET default_transaction_read_only")
            .error;
      },
      "session is read-only");
}

TEST_F(StartWaitTest, PastTheStartTimeoutTheBrokerExitsWithTheLastErrorAndNoPassword) {
  // A role that does not exist, with a password: the server refuses every session.
  const std::string url = WithUser(Env().url, "ordo_nobody:Secret-Word-42");
  ASSERT_NE(url, "") << "ORDO_TEST_PG_URL has no user: " << Env().url;
  BrokerProcess broker({"--db-start-timeout", "2"}, WithDatabase(url, "postgres"));
  const auto t0 = SteadyClock::now();
  ::testing::AssertionResult started = broker.Start();
  const auto took = SteadyClock::now() - t0;
  ASSERT_FALSE(started) << "the broker became ready on a role that does not exist";
  const std::string why = started.message();
  EXPECT_NE(why.find("exited during start-up"), std::string::npos) << why;
  EXPECT_NE(why.find("exit code 1"), std::string::npos) << why;
  EXPECT_LT(took, 8s) << "the start did not stop at --db-start-timeout 2";
  const std::string log = broker.Log();
  EXPECT_NE(log.find("trying again in"), std::string::npos) << log;
  EXPECT_NE(log.find("cannot open the database"), std::string::npos) << log;
  EXPECT_NE(log.find("ordo_nobody"), std::string::npos) << log;
  // The harness heads the log with the command line ("==== ordo serve ... ===="); the broker's
  // own lines must not hold the password.
  std::string own;
  for (size_t pos = 0; pos < log.size();) {
    size_t end = log.find('\n', pos);
    if (end == std::string::npos) end = log.size();
    if (log.compare(pos, 5, "==== ") != 0) own.append(log, pos, end - pos).push_back('\n');
    pos = end + 1;
  }
  EXPECT_EQ(own.find("Secret-Word-42"), std::string::npos) << "the password was logged:\n" << own;
}

}  // namespace
}  // namespace ordo::pg_test
