// Two instances starting at once on an empty database: both become ready, the schema is applied
// exactly once (the advisory lock in db::pg::Migrate), and both then serve the same data. Each
// test makes its own scratch database on the test cluster and drops it at the end.
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "db/embedded_sql.h"
#include "db/pg/migrate.h"
#include "db/pg/statements.h"
#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

using integration::BrokerProcess;
using integration::ScratchPgDatabase;
using integration::UniqueName;

// One BrokerProcess driven from a thread of its own that lives as long as the broker: the
// harness forks with PR_SET_PDEATHSIG, which kills the child when the *thread* that forked it
// exits. The thread starts the broker when `go` is ready, and stops it in the destructor.
class BrokerOnThread {
 public:
  BrokerOnThread(const std::string& db_url, std::shared_future<void> go) {
    broker_ = std::make_unique<BrokerProcess>(std::vector<std::string>{}, db_url);
    port_ = broker_->port();
    started_ = started_promise_.get_future();
    thread_ = std::thread([this, go = std::move(go)] {
      go.wait();
      started_promise_.set_value(broker_->Start());
      stop_.get_future().wait();
      broker_.reset();
    });
  }
  ~BrokerOnThread() {
    stop_.set_value();
    thread_.join();
  }
  BrokerOnThread(const BrokerOnThread&) = delete;
  BrokerOnThread& operator=(const BrokerOnThread&) = delete;

  // Blocks until the start-up is over (the harness bounds it to 10 s).
  ::testing::AssertionResult Started() { return started_.get(); }
  uint16_t port() const { return port_; }

 private:
  std::unique_ptr<BrokerProcess> broker_;
  uint16_t port_ = 0;
  std::promise<::testing::AssertionResult> started_promise_;
  std::future<::testing::AssertionResult> started_;
  std::promise<void> stop_;
  std::thread thread_;
};

// ordo.schema_version of `url` as "version name" lines, and what the binary ships.
std::vector<std::string> AppliedVersions(const std::string& url, std::string* error) {
  std::vector<std::string> out;
  auto conn = PgConn::Open(url, error);
  if (!conn) return out;
  PgConn::Outcome o = conn->Exec("SELECT version, name FROM ordo.schema_version ORDER BY version");
  if (!o.ok()) {
    *error = o.error;
    return out;
  }
  db::pg::Rows rows(o.result.get());
  for (int i = 0; i < rows.size(); ++i) out.push_back(rows.Str(i, 0) + " " + rows.Str(i, 1));
  return out;
}

std::vector<std::string> ShippedVersions() {
  std::vector<std::string> out;
  for (const db::Migration& m : db::PostgresMigrations()) {
    out.push_back(std::to_string(m.version) + " " + std::string(m.name));
  }
  return out;
}

class ConcurrentStartTest : public PgTest {};

TEST_F(ConcurrentStartTest, TwoBrokersStartingAtOnceOnAnEmptyDatabaseBothBecomeReady) {
  ScratchPgDatabase db(Env().url, "ordo_mig_");
  ASSERT_TRUE(db.Create());
  std::promise<void> go;
  std::shared_future<void> gate = go.get_future().share();
  BrokerOnThread one(db.url(), gate);
  BrokerOnThread two(db.url(), gate);
  go.set_value();  // both fork now
  ::testing::AssertionResult started_one = one.Started();
  ::testing::AssertionResult started_two = two.Started();
  ASSERT_TRUE(started_one);
  ASSERT_TRUE(started_two);

  std::string error;
  std::vector<std::string> applied = AppliedVersions(db.url(), &error);
  ASSERT_EQ(error, "");
  ASSERT_FALSE(ShippedVersions().empty());
  EXPECT_EQ(applied, ShippedVersions()) << "ordo.schema_version after two concurrent starts";

  // Both serve the one database: a push on one is popped on the other.
  HttpClient on_one(one.port()), on_two(two.port());
  EXPECT_EQ(PushThenPopBack(on_one, on_two, UniqueName("both")), "");
}

// The same race without the brokers around it, wider: many Migrate calls at the same instant.
TEST_F(ConcurrentStartTest, ManyMigrateCallsAtOnceApplyEachMigrationOnce) {
  constexpr int kCallers = 6;
  ScratchPgDatabase db(Env().url, "ordo_mig_");
  ASSERT_TRUE(db.Create());
  const std::vector<std::pair<std::string, std::string>> params = {
      {"application_name", "ordo-pg-tests"}, {"dbname", db.url()}};
  std::promise<void> go;
  std::shared_future<void> gate = go.get_future().share();
  std::vector<std::future<std::pair<Status, int>>> calls;
  for (int i = 0; i < kCallers; ++i) {
    calls.push_back(std::async(std::launch::async, [&params, gate] {
      gate.wait();
      int applied = 0;
      Status s = db::pg::Migrate(params, &applied);
      return std::make_pair(s, applied);
    }));
  }
  go.set_value();
  int total_applied = 0;
  for (auto& call : calls) {
    auto [status, applied] = call.get();
    EXPECT_TRUE(status.ok()) << status.message();
    total_applied += applied;
  }
  EXPECT_EQ(total_applied, static_cast<int>(ShippedVersions().size()))
      << "migrations applied across all callers";
  std::string error;
  EXPECT_EQ(AppliedVersions(db.url(), &error), ShippedVersions()) << error;
}

// An instance that starts while another holds the migration lock (a long migration, on a large
// database) waits for it however long it takes: the request path's statement_timeout bounds
// neither that wait nor the migrations themselves.
TEST_F(ConcurrentStartTest, AStartWaitsForAnotherInstancesMigrationPastTheStatementTimeout) {
  ScratchPgDatabase db(Env().url, "ordo_mig_");
  ASSERT_TRUE(db.Create());
  std::string error;
  auto other = PgConn::Open(db.url(), &error);
  ASSERT_TRUE(other) << error;
  ASSERT_TRUE(other->Exec("BEGIN").ok());
  PgConn::Outcome locked = other->Exec(db::pg::sql::kMigrationLock);
  ASSERT_TRUE(locked.ok()) << locked.error;

  const std::vector<std::pair<std::string, std::string>> params = {
      {"options", "-c statement_timeout=300"}, {"dbname", db.url()}};
  auto call = std::async(std::launch::async, [&params] {
    int applied = 0;
    Status s = db::pg::Migrate(params, &applied);
    return std::make_pair(s, applied);
  });
  // Four statement timeouts later the start is still waiting, not failed.
  EXPECT_EQ(call.wait_for(std::chrono::milliseconds(1200)), std::future_status::timeout);
  ASSERT_TRUE(other->Exec("COMMIT").ok());
  auto [status, applied] = call.get();
  EXPECT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(applied, static_cast<int>(ShippedVersions().size()));
}

// A database migrated by a newer build (a rolling upgrade in progress, or a downgrade): the
// versions this build does not ship are reported, nothing is applied, and the broker serves with
// a warning that names them.
TEST_F(ConcurrentStartTest, VersionsNewerThanTheBuildAreReportedAndServedOn) {
  ScratchPgDatabase db(Env().url, "ordo_mig_");
  ASSERT_TRUE(db.Create());
  const std::vector<std::pair<std::string, std::string>> params = {{"dbname", db.url()}};
  std::vector<int> unknown = {-1};
  Status s = db::pg::Migrate(params, nullptr, nullptr, &unknown);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(unknown.empty());

  std::string error;
  auto conn = PgConn::Open(db.url(), &error);
  ASSERT_TRUE(conn) << error;
  PgConn::Outcome o = conn->Exec(
      "INSERT INTO ordo.schema_version (version, name) VALUES (999, 'from a newer build')");
  ASSERT_TRUE(o.ok()) << o.error;
  int applied = -1;
  s = db::pg::Migrate(params, &applied, nullptr, &unknown);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(applied, 0);
  EXPECT_EQ(unknown, std::vector<int>{999});

  BrokerProcess broker({}, db.url());
  ASSERT_TRUE(broker.Start()) << broker.Log();
  const std::string log = broker.Log();
  EXPECT_NE(log.find("version(s) 999 in the database are newer than this build"), std::string::npos)
      << log;
  HttpClient http(broker.port());
  EXPECT_EQ(PushThenPopBack(http, http, UniqueName("newer")), "");
}

}  // namespace
}  // namespace ordo::pg_test
