// db::pg::Pipeline against a real server, driven from an io_context run by the test: a failing
// statement in the middle of a pipeline fails only its own Send, statement_timeout surfaces as
// SQLSTATE 57014 / kUnavailable without breaking the connection, and shareable Sends made while
// earlier work is in flight commit as one transaction (a failure there rolls back the others,
// which say so with kRolledBackWithOthers). Lazy-commit Sends run in transactions of their own
// kind with synchronous_commit off; durable ones never share them. A warm-up statement runs
// before the connection is ready, and one that fails leaves it serving.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "common/status.h"
#include "db/pg/pipeline.h"
#include "db/pg/result.h"
#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

namespace asio = boost::asio;
using db::pg::Pipeline;
using db::pg::ResultPtr;

const db::pg::PreparedStatement kStatements[] = {
    {"ok", "SELECT $1::int"},
    {"bad", "SELECT 1/0"},
    {"slow", "SELECT pg_sleep($1::float8)"},
    {"xid", "SELECT txid_current()::text", /*shareable=*/true},
    {"bad_shared", "SELECT 1/0", /*shareable=*/true},
    // The commit mode of the statement's transaction, and the transaction.
    {"mode", "SELECT current_setting('synchronous_commit') || ' ' || txid_current()",
     /*shareable=*/true},
    // As the broker's lazy-commit statements do (db/pg/statements.h): $1 true turns
    // synchronous_commit off for the transaction.
    {"lazy_mode",
     "SELECT current_setting('synchronous_commit') || ' ' || txid_current() WHERE NOT $1::boolean"
     " OR (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL",
     /*shareable=*/true},
    // A session setting a warm-up leaves behind, and its reader.
    {"warm", "SELECT set_config('ordo.warmed', 'yes', false)"},
    {"warmed", "SELECT coalesce(current_setting('ordo.warmed', true), 'no')"},
};

// One Send's outcome, filled by its callback.
struct Answer {
  bool done = false;
  Result<ResultPtr> result = Status::Internal("no answer yet");
  std::string sqlstate;
  int order = -1;  // completion order among this test's Sends
  SteadyClock::time_point at;

  // The single value of a successful single-row answer.
  std::string Value() const {
    if (!result.ok() || !result.value()) return "<no result>";
    db::pg::Rows rows(result.value().get());
    return rows.size() == 1 ? rows.Str(0, 0) : integration::Indexed("<", rows.size(), " rows>");
  }
  std::string Describe() const {
    return result.ok() ? "ok " + Value() : "error [" + sqlstate + "] " + result.status().message();
  }
};

class PipelineTest : public PgTest {
 protected:
  void TearDown() override {
    if (pipeline_) pipeline_->Close(Status::Unavailable("the test is over"));
    // Let the cancelled socket waits run (they hold the pipeline) before it and io_ go away.
    io_.poll();
    pipeline_.reset();
    io_.poll();
  }

  // Connects with the test database URL plus `extra` libpq parameters and prepares kStatements.
  ::testing::AssertionResult Connect(std::vector<std::pair<std::string, std::string>> extra = {},
                                     const char* warm_up_statement = nullptr) {
    db::pg::ConnectOptions options;
    options.warm_up_statement = warm_up_statement;
    options.params = {{"application_name", "ordo-pg-tests"}, {"dbname", Env().url}};
    for (auto& p : extra) options.params.push_back(std::move(p));
    options.statements.assign(std::begin(kStatements), std::end(kStatements));
    pipeline_ = std::make_shared<Pipeline>(io_.get_executor(), std::move(options));
    std::optional<Status> ready;
    pipeline_->Start([&ready](Status s) { ready = std::move(s); },
                     [this](Status s) { lost_ = std::move(s); });
    if (!RunUntil([&] { return ready.has_value(); }, 10s)) {
      return ::testing::AssertionFailure() << "the pipeline did not connect within 10 s";
    }
    if (!ready->ok()) return ::testing::AssertionFailure() << "connect: " << ready->message();
    if (!pipeline_->ready()) return ::testing::AssertionFailure() << "on_ready(ok) but not ready";
    return ::testing::AssertionSuccess();
  }

  // Runs the event loop until `done` or `timeout`.
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    auto deadline = SteadyClock::now() + timeout;
    while (!done()) {
      if (SteadyClock::now() >= deadline) return false;
      io_.run_one_for(10ms);
    }
    return true;
  }

  std::shared_ptr<Answer> Send(const char* statement,
                               std::vector<std::optional<std::string>> params,
                               bool shareable = false, bool lazy = false, bool leave_open = false) {
    auto answer = std::make_shared<Answer>();
    bool sent = pipeline_->Send(
        statement, params,
        [this, answer](Result<ResultPtr> r, const std::string& state) {
          answer->result = std::move(r);
          answer->sqlstate = state;
          answer->order = completions_++;
          answer->at = SteadyClock::now();
          answer->done = true;
        },
        shareable, lazy, leave_open);
    if (!sent) {
      ADD_FAILURE() << "Send(" << statement << ") refused: the pipeline is not ready or full";
      answer->done = true;
    }
    return answer;
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::shared_ptr<Pipeline> pipeline_;
  std::optional<Status> lost_;
  int completions_ = 0;
};

TEST_F(PipelineTest, FailedStatementInTheMiddleFailsOnlyItsOwnSend) {
  ASSERT_TRUE(Connect());
  // Back to back, without running the loop in between: all three are on the wire together.
  auto first = Send("ok", {"1"});
  auto failing = Send("bad", {});
  auto third = Send("ok", {"3"});
  EXPECT_EQ(pipeline_->in_flight(), 3u);
  ASSERT_TRUE(RunUntil([&] { return first->done && failing->done && third->done; }, 10s))
      << "answers: " << first->done << failing->done << third->done;

  ASSERT_TRUE(first->result.ok()) << first->Describe();
  EXPECT_EQ(first->Value(), "1");
  ASSERT_FALSE(failing->result.ok()) << failing->Describe();
  EXPECT_EQ(failing->sqlstate, "22012") << failing->Describe();
  EXPECT_NE(failing->result.status().code(), Code::kUnavailable)
      << "a division by zero is not a database outage: " << failing->Describe();
  ASSERT_TRUE(third->result.ok()) << "the Send after the failed one was skipped: "
                                  << third->Describe();
  EXPECT_EQ(third->Value(), "3");
  // Results come back in the order the statements were sent.
  EXPECT_EQ(first->order, 0);
  EXPECT_EQ(failing->order, 1);
  EXPECT_EQ(third->order, 2);

  // The connection survived: a later Send works.
  EXPECT_TRUE(pipeline_->ready());
  EXPECT_FALSE(lost_.has_value()) << "on_lost: " << lost_->message();
  auto later = Send("ok", {"4"});
  ASSERT_TRUE(RunUntil([&] { return later->done; }, 10s));
  ASSERT_TRUE(later->result.ok()) << later->Describe();
  EXPECT_EQ(later->Value(), "4");
  EXPECT_EQ(pipeline_->in_flight(), 0u);
}

TEST_F(PipelineTest, StatementTimeoutFailsTheSlowSendAsUnavailableAndTheNextOneRuns) {
  ASSERT_TRUE(Connect({{"options", "-c statement_timeout=200"}}));
  auto start = SteadyClock::now();
  auto slow = Send("slow", {"2"});
  auto quick = Send("ok", {"7"});
  ASSERT_TRUE(RunUntil([&] { return slow->done && quick->done; }, 10s));

  ASSERT_FALSE(slow->result.ok()) << "pg_sleep(2) with statement_timeout=200: " << slow->Describe();
  EXPECT_EQ(slow->sqlstate, "57014") << slow->Describe();
  EXPECT_EQ(slow->result.status().code(), Code::kUnavailable)
      << "a statement timeout must map to 503: " << slow->Describe();
  // Cancelled by the timeout, not finished by the sleep.
  EXPECT_LT(slow->at - start, 1500ms);

  ASSERT_TRUE(quick->result.ok()) << "the Send behind the timed-out one: " << quick->Describe();
  EXPECT_EQ(quick->Value(), "7");
  EXPECT_LT(slow->order, quick->order);
  EXPECT_TRUE(pipeline_->ready());
  EXPECT_FALSE(lost_.has_value()) << "on_lost: " << lost_->message();
}

}  // namespace
}  // namespace ordo::pg_test

namespace ordo::pg_test {
namespace {

TEST_F(PipelineTest, ShareableSendsBehindEarlierWorkCommitAsOneTransaction) {
  ASSERT_TRUE(Connect());
  // Alone on an idle connection, a shareable Send is sent with its Sync at once: it completes
  // without any other work coming.
  auto alone = Send("xid", {}, /*shareable=*/true);
  ASSERT_TRUE(RunUntil([&] { return alone->done; }, 10s)) << "a lone shareable Send was held";
  ASSERT_TRUE(alone->result.ok()) << alone->Describe();

  // Behind a slow statement, three shareable Sends share one transaction; a non-shareable Send
  // after them gets its own.
  auto slow = Send("slow", {"0.2"});
  auto a = Send("xid", {}, true);
  auto b = Send("xid", {}, true);
  auto c = Send("xid", {}, true);
  auto own = Send("xid", {}, /*shareable=*/false);
  EXPECT_EQ(pipeline_->in_flight(), 5u);
  ASSERT_TRUE(
      RunUntil([&] { return slow->done && a->done && b->done && c->done && own->done; }, 10s));
  for (const auto& x : {slow, a, b, c, own}) ASSERT_TRUE(x->result.ok()) << x->Describe();
  EXPECT_EQ(a->Value(), b->Value());
  EXPECT_EQ(a->Value(), c->Value());
  EXPECT_NE(a->Value(), own->Value()) << "a non-shareable Send joined the shared transaction";
  EXPECT_NE(a->Value(), alone->Value());
  EXPECT_EQ(slow->order, 1);
  EXPECT_EQ(a->order, 2);
  EXPECT_EQ(b->order, 3);
  EXPECT_EQ(c->order, 4);
  EXPECT_EQ(own->order, 5);
  EXPECT_EQ(pipeline_->in_flight(), 0u);
}

TEST_F(PipelineTest, AFailureInASharedTransactionRollsBackTheOthersWhichSaySo) {
  ASSERT_TRUE(Connect());
  auto slow = Send("slow", {"0.2"});
  auto before = Send("xid", {}, true);
  auto failing = Send("bad_shared", {}, true);
  auto after = Send("xid", {}, true);
  ASSERT_TRUE(
      RunUntil([&] { return slow->done && before->done && failing->done && after->done; }, 10s));
  ASSERT_TRUE(slow->result.ok()) << "the statement ahead was its own transaction: "
                                 << slow->Describe();
  ASSERT_FALSE(failing->result.ok());
  EXPECT_EQ(failing->sqlstate, "22012") << failing->Describe();
  for (const auto& x : {before, after}) {
    ASSERT_FALSE(x->result.ok()) << "committed although its transaction failed: " << x->Describe();
    EXPECT_EQ(x->sqlstate, db::pg::kRolledBackWithOthers) << x->Describe();
  }
  // The connection survived.
  EXPECT_FALSE(lost_.has_value());
  auto later = Send("xid", {}, true);
  ASSERT_TRUE(RunUntil([&] { return later->done; }, 10s));
  EXPECT_TRUE(later->result.ok()) << later->Describe();
}

// A push and the claims that deliver what it appends (PgStore): a non-shareable Send left open
// takes the shareable Sends after it into its transaction, even on an idle connection, until
// SealOpen; a failing one rolls the first back, which says so (and is then sent again alone).
TEST_F(PipelineTest, ASendLeftOpenSharesItsTransactionWithTheShareableSendsAfterIt) {
  ASSERT_TRUE(Connect());
  auto push = Send("xid", {}, /*shareable=*/false, /*lazy=*/false, /*leave_open=*/true);
  auto claim1 = Send("xid", {}, true);
  auto claim2 = Send("xid", {}, true);
  ASSERT_TRUE(pipeline_->SealOpen());
  auto next = Send("xid", {}, true);
  ASSERT_TRUE(
      RunUntil([&] { return push->done && claim1->done && claim2->done && next->done; }, 10s));
  for (const auto& x : {push, claim1, claim2, next}) ASSERT_TRUE(x->result.ok()) << x->Describe();
  EXPECT_EQ(push->Value(), claim1->Value());
  EXPECT_EQ(push->Value(), claim2->Value());
  EXPECT_NE(push->Value(), next->Value()) << "a Send after SealOpen joined the sealed transaction";

  auto rolled = Send("xid", {}, false, false, /*leave_open=*/true);
  auto failing = Send("bad_shared", {}, true);
  ASSERT_TRUE(pipeline_->SealOpen());
  ASSERT_TRUE(RunUntil([&] { return rolled->done && failing->done; }, 10s));
  ASSERT_FALSE(failing->result.ok());
  ASSERT_FALSE(rolled->result.ok()) << "committed although its claim failed";
  EXPECT_EQ(rolled->sqlstate, db::pg::kRolledBackWithOthers) << rolled->Describe();
  EXPECT_FALSE(lost_.has_value());
  EXPECT_EQ(pipeline_->in_flight(), 0u);
}

// "off 1234" -> "off".
std::string ModeOf(const Answer& a) { return a.Value().substr(0, a.Value().find(' ')); }
std::string TxnOf(const Answer& a) { return a.Value().substr(a.Value().find(' ') + 1); }

TEST_F(PipelineTest, LazyCommitSendsSkipTheFlushWaitAndNeverShareWithDurableOnes) {
  ASSERT_TRUE(Connect());
  // Alone: a lazy Send's transaction commits with synchronous_commit off; the next transaction
  // is back to the server's setting.
  auto lazy_alone = Send("lazy_mode", {"true"}, /*shareable=*/true, /*lazy=*/true);
  auto durable_alone = Send("mode", {}, /*shareable=*/false);
  ASSERT_TRUE(RunUntil([&] { return lazy_alone->done && durable_alone->done; }, 10s));
  ASSERT_TRUE(lazy_alone->result.ok()) << lazy_alone->Describe();
  ASSERT_TRUE(durable_alone->result.ok()) << durable_alone->Describe();
  EXPECT_EQ(ModeOf(*lazy_alone), "off");
  EXPECT_EQ(ModeOf(*durable_alone), "on") << "the lazy setting outlived its transaction";

  // Behind a slow statement: two lazy Sends share a transaction; a durable shareable Send does
  // not join it (it would commit without waiting), and a lazy one after it opens another.
  auto slow = Send("slow", {"0.2"});
  auto a = Send("lazy_mode", {"true"}, true, /*lazy=*/true);
  auto b = Send("lazy_mode", {"true"}, true, /*lazy=*/true);
  auto durable = Send("mode", {}, true, /*lazy=*/false);
  auto d = Send("lazy_mode", {"true"}, true, /*lazy=*/true);
  ASSERT_TRUE(
      RunUntil([&] { return slow->done && a->done && b->done && durable->done && d->done; }, 10s));
  for (const auto& x : {slow, a, b, durable, d}) ASSERT_TRUE(x->result.ok()) << x->Describe();
  EXPECT_EQ(ModeOf(*a), "off");
  EXPECT_EQ(ModeOf(*b), "off");
  EXPECT_EQ(TxnOf(*a), TxnOf(*b)) << "two lazy Sends behind earlier work did not share";
  EXPECT_EQ(ModeOf(*durable), "on");
  EXPECT_NE(TxnOf(*durable), TxnOf(*a));
  EXPECT_EQ(ModeOf(*d), "off");
  EXPECT_NE(TxnOf(*d), TxnOf(*durable));
  EXPECT_EQ(pipeline_->in_flight(), 0u);

  // A failing lazy Send alone reports its own error.
  auto failing = Send("bad_shared", {}, true, /*lazy=*/true);
  ASSERT_TRUE(RunUntil([&] { return failing->done; }, 10s));
  ASSERT_FALSE(failing->result.ok());
  EXPECT_EQ(failing->sqlstate, "22012") << failing->Describe();
  EXPECT_FALSE(lost_.has_value());
}

TEST_F(PipelineTest, ALazyStatementToldNotToSwitchCommitsWithTheFlushWait) {
  ASSERT_TRUE(Connect());
  // What the broker sends with --db-consumer-commit durable.
  auto asked = Send("lazy_mode", {"false"}, true, /*lazy=*/false);
  ASSERT_TRUE(RunUntil([&] { return asked->done; }, 10s));
  ASSERT_TRUE(asked->result.ok()) << asked->Describe();
  EXPECT_EQ(ModeOf(*asked), "on");
}

TEST_F(PipelineTest, TheWarmUpStatementRunsBeforeTheConnectionIsReady) {
  ASSERT_TRUE(Connect({}, /*warm_up_statement=*/"warm"));
  auto warmed = Send("warmed", {});
  ASSERT_TRUE(RunUntil([&] { return warmed->done; }, 10s));
  ASSERT_TRUE(warmed->result.ok()) << warmed->Describe();
  EXPECT_EQ(warmed->Value(), "yes") << "the first Send ran before the warm-up";
}

TEST_F(PipelineTest, AConnectionWithoutAWarmUpStatementRunsNone) {
  ASSERT_TRUE(Connect());
  auto warmed = Send("warmed", {});
  ASSERT_TRUE(RunUntil([&] { return warmed->done; }, 10s));
  ASSERT_TRUE(warmed->result.ok()) << warmed->Describe();
  EXPECT_EQ(warmed->Value(), "no");
}

TEST_F(PipelineTest, AFailingWarmUpLeavesTheConnectionServing) {
  ASSERT_TRUE(Connect({}, /*warm_up_statement=*/"bad"));
  EXPECT_FALSE(lost_.has_value()) << "on_lost: " << lost_->message();
  auto after = Send("ok", {"5"});
  ASSERT_TRUE(RunUntil([&] { return after->done; }, 10s));
  ASSERT_TRUE(after->result.ok()) << after->Describe();
  EXPECT_EQ(after->Value(), "5");
}

}  // namespace
}  // namespace ordo::pg_test
