// Two instances starting at once on an empty database: both become ready, the schema is applied
// exactly once (the advisory lock in db::pg::Migrate), and both then serve the same data. Each
// test makes its own scratch database on the test cluster and drops it at the end.
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "db/embedded_sql.h"
#include "db/pg/migrate.h"
#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

using integration::BrokerProcess;
using integration::JsonQuote;
using integration::UniqueName;
using integration::UrlEncode;

// A database of its own, `ordo_mig_<random>`, dropped (WITH (FORCE)) when this goes away.
// Declare it before anything that connects to it, so that those go first.
class ScratchDatabase {
 public:
  ScratchDatabase() : name_("ordo_mig_" + RandomHex(12)) {}
  ~ScratchDatabase() {
    if (!created_) return;
    std::string error;
    auto admin = PgConn::Open(Env().url, &error);
    PgConn::Outcome o;
    if (admin) o = admin->Exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    if (!admin || !o.ok()) {
      ADD_FAILURE() << "could not drop database " << name_ << ": " << (admin ? o.error : error);
    }
  }
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;

  ::testing::AssertionResult Create() {
    std::string error;
    auto admin = PgConn::Open(Env().url, &error);
    if (!admin) return ::testing::AssertionFailure() << error;
    PgConn::Outcome o = admin->Exec("CREATE DATABASE " + name_);
    if (!o.ok()) return ::testing::AssertionFailure() << "CREATE DATABASE: " << o.error;
    created_ = true;
    return ::testing::AssertionSuccess();
  }
  std::string url() const { return WithDatabase(Env().url, name_); }

 private:
  std::string name_;
  bool created_ = false;
};

// One BrokerProcess driven from a thread of its own that lives as long as the broker: the
// harness forks with PR_SET_PDEATHSIG, which kills the child when the *thread* that forked it
// exits. The thread starts the broker when `go` is ready, and stops it in the destructor.
class BrokerOnThread {
 public:
  BrokerOnThread(const std::string& db_url, std::shared_future<void> go) {
    // The harness takes the PostgreSQL URL from the environment when it builds the process
    // object. REQUIRES: no other thread of the test runs now.
    std::string saved = Env().url;
    ::setenv("ORDO_TEST_PG_URL", db_url.c_str(), 1);
    broker_ = std::make_unique<BrokerProcess>();
    port_ = broker_->port();
    ::setenv("ORDO_TEST_PG_URL", saved.c_str(), 1);
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
  ScratchDatabase db;
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
  const std::string q = UniqueName("both");
  HttpClient on_one(one.port()), on_two(two.port());
  HttpResponse push = PushItems(on_one, {PushItem(q, "p", "tx-1", "{\"n\":1}")});
  ASSERT_EQ(push.status, 200) << push.Describe();
  HttpResponse pop = on_two.Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=10");
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  std::vector<Delivery> got = Deliveries(JsonDoc(pop.body));
  ASSERT_EQ(got.size(), 1u) << pop.body;
  EXPECT_EQ(got[0].data, "{\"n\":1}");
}

// The same race without the brokers around it, wider: many Migrate calls at the same instant.
TEST_F(ConcurrentStartTest, ManyMigrateCallsAtOnceApplyEachMigrationOnce) {
  constexpr int kCallers = 6;
  ScratchDatabase db;
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

}  // namespace
}  // namespace ordo::pg_test
