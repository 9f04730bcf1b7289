// Admission and retention over HTTP (issue #4 item 5), with the background rules running every
// second (--retention-interval 1): maxSize answers 429 and stores nothing of the request,
// retention and completed retention remove what their rule says, the dedup window outlives
// retention, maxWaitTimeSeconds dead-letters waiting messages, bad option values are 400s; with
// no rule anywhere the job sleeps until a queue changes.
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "db/sqlite/connection.h"
#include "harness.h"

namespace ordo::integration {
namespace {

// The error texts of a queue's dead-letter entries, in sequence order, read straight from the
// broker's database (no route lists the dead-letter queue in this build).
std::vector<std::string> DeadLetterErrors(const BrokerProcess& broker, const std::string& queue) {
  std::vector<std::string> out;
  const std::string& url = broker.db_url();
  if (broker.engine() == "sqlite") {
    auto conn = db::sqlite::Connection::Open(url.substr(std::string("sqlite:").size()), true);
    if (!conn.ok()) {
      ADD_FAILURE() << conn.status().message();
      return out;
    }
    auto st = conn->Prepare(
        "SELECT d.error FROM dead_letters d JOIN queues q ON q.pk = d.queue_pk"
        " WHERE q.name = ?1 ORDER BY d.seq");
    if (!st.ok()) {
      ADD_FAILURE() << st.status().message();
      return out;
    }
    st->Bind(1, queue);
    while (st->Step()) out.emplace_back(st->Text(0));
    return out;
  }
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(url.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    ADD_FAILURE() << PQerrorMessage(conn.get());
    return out;
  }
  const char* params[] = {queue.c_str()};
  std::unique_ptr<PGresult, decltype(&PQclear)> res(
      PQexecParams(conn.get(),
                   "SELECT d.error FROM ordo.dead_letters d JOIN ordo.queues q ON q.pk = d.queue_pk"
                   " WHERE q.name = $1 ORDER BY d.seq",
                   1, nullptr, params, nullptr, nullptr, 0),
      &PQclear);
  if (PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
    ADD_FAILURE() << PQerrorMessage(conn.get());
    return out;
  }
  for (int i = 0; i < PQntuples(res.get()); ++i) out.emplace_back(PQgetvalue(res.get(), i, 0));
  return out;
}

class BrokerRetentionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    broker_ =
        std::make_unique<BrokerProcess>(std::vector<std::string>{"--retention-interval", "1"});
    (void)broker_->Start();
  }
  static void TearDownTestSuite() { broker_.reset(); }
  void SetUp() override {
    if (!broker_->Alive()) {
      ASSERT_TRUE(broker_->Start());
    }
    http_ = std::make_unique<HttpClient>(broker_->port());
  }
  void TearDown() override {
    http_.reset();
    if (HasFailure()) std::cerr << broker_->LogSince(0) << "\n";
  }

  HttpClient& http() { return *http_; }

  void Configure(const std::string& queue, const std::string& options_json) {
    HttpResponse r = http().Post("/api/v1/configure", "{\"queue\":" + JsonQuote(queue) +
                                                          ",\"options\":" + options_json + "}");
    ASSERT_EQ(r.status, 200) << r.Describe();
  }

  HttpResponse PushTx(const std::string& queue, const std::vector<std::string>& txids,
                      const std::string& partition = "Default") {
    std::string body = "{\"items\":[";
    for (size_t i = 0; i < txids.size(); ++i) {
      if (i > 0) body += ",";
      body += "{\"queue\":" + JsonQuote(queue) + ",\"partition\":" + JsonQuote(partition) +
              ",\"transactionId\":" + JsonQuote(txids[i]) +
              ",\"payload\":{\"n\":" + std::to_string(i) + "}}";
    }
    body += "]}";
    return http().Post("/api/v1/push", body);
  }

  // The queue's totals (GET /api/v1/resources/queues/:queue), -1 on error.
  int64_t Count(const std::string& queue, const std::string& field) {
    HttpResponse r = http().Get("/api/v1/resources/queues/" + UrlEncode(queue));
    if (r.status != 200) return -1;
    return JsonDoc(r.body).Int("/messages/" + field).value_or(-1);
  }

  // Polls `pred` every 100 ms until it holds or `within` passes.
  static bool Eventually(const std::function<bool()>& pred, std::chrono::seconds within = 30s) {
    auto deadline = SteadyClock::now() + within;
    while (SteadyClock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return pred();
  }

  static inline std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<HttpClient> http_;
};

TEST_F(BrokerRetentionTest, MaxSizeAnswers429StoresNothingAndRecoversWhenDrained) {
  const std::string q = UniqueName("capped");
  Configure(q, R"({"maxSize":2})");
  HttpResponse ok = PushTx(q, {"a", "b"});
  ASSERT_EQ(ok.status, 200) << ok.Describe();

  HttpResponse full = PushTx(q, {"c"});
  EXPECT_TRUE(IsJsonError(full, 429)) << full.Describe();
  EXPECT_NE(JsonDoc(full.body).String("/error").value_or("").find("maxSize"), std::string::npos)
      << full.body;
  EXPECT_EQ(Count(q, "total"), 2) << "nothing of the refused push is stored";

  // Drained by a consumer: accepted again.
  HttpResponse pop = http().Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=10&autoAck=true");
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  EXPECT_EQ(JsonDoc(pop.body).Size("/messages"), 2u) << pop.body;
  HttpResponse again = PushTx(q, {"c", "d"});
  ASSERT_EQ(again.status, 200) << again.Describe();
  EXPECT_EQ(JsonDoc(again.body).String("/1/status"), "queued") << again.body;
}

TEST_F(BrokerRetentionTest, RetentionRemovesOldMessagesOnly) {
  const std::string old_q = UniqueName("short");
  const std::string kept_q = UniqueName("long");
  Configure(old_q, R"({"retentionSeconds":1})");
  Configure(kept_q, R"({"retentionSeconds":3600})");
  ASSERT_EQ(PushTx(old_q, {"a", "b", "c"}).status, 200);
  ASSERT_EQ(PushTx(kept_q, {"a"}).status, 200);
  EXPECT_TRUE(Eventually([&] { return Count(old_q, "total") == 0; }))
      << "still stored: " << Count(old_q, "total");
  EXPECT_EQ(Count(kept_q, "total"), 1) << "younger than its retention: kept";
}

TEST_F(BrokerRetentionTest, CompletedRetentionRemovesOnlyCompletedMessages) {
  const std::string q = UniqueName("done");
  Configure(q, R"({"completedRetentionSeconds":1})");
  ASSERT_EQ(PushTx(q, {"a", "b"}).status, 200);
  HttpResponse pop = http().Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=1&autoAck=true");
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  ASSERT_EQ(JsonDoc(pop.body).String("/messages/0/transactionId"), "a") << pop.body;
  EXPECT_TRUE(Eventually([&] { return Count(q, "total") == 1; })) << "total: " << Count(q, "total");
  // The job removed "a" in a run where "b" was as old: "b" stays because it is not completed.
  EXPECT_EQ(Count(q, "pending"), 1);
  HttpResponse rest = http().Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=5&autoAck=true");
  EXPECT_EQ(JsonDoc(rest.body).String("/messages/0/transactionId"), "b") << rest.body;
}

TEST_F(BrokerRetentionTest, DedupWindowOutlivesRetentionThenLapses) {
  const std::string q = UniqueName("dedup");
  Configure(q, R"({"retentionSeconds":1,"dedupWindowSeconds":8})");
  HttpResponse first = PushTx(q, {"once"});
  ASSERT_EQ(first.status, 200) << first.Describe();
  const std::string id = JsonDoc(first.body).String("/0/message_id").value_or("");
  ASSERT_TRUE(Eventually([&] { return Count(q, "total") == 0; }));

  HttpResponse dup = PushTx(q, {"once"});
  ASSERT_EQ(dup.status, 200) << dup.Describe();
  EXPECT_EQ(JsonDoc(dup.body).String("/0/status"), "duplicate") << dup.body;
  EXPECT_EQ(JsonDoc(dup.body).String("/0/message_id"), id) << dup.body;

  // Past the window the id is accepted again (retried until then; duplicates store nothing).
  std::string last;
  EXPECT_TRUE(Eventually([&] {
    HttpResponse r = PushTx(q, {"once"});
    last = r.body;
    return JsonDoc(r.body).String("/0/status") == "queued";
  })) << last;
  EXPECT_NE(JsonDoc(last).String("/0/message_id"), id);
}

TEST_F(BrokerRetentionTest, MaxWaitTimeSendsWaitingMessagesToTheDeadLetterQueue) {
  const std::string q = UniqueName("wait");
  Configure(q, R"({"maxWaitTimeSeconds":1})");
  ASSERT_EQ(PushTx(q, {"first"}).status, 200);
  // The default group reads the queue.
  HttpResponse pop = http().Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=1&autoAck=true");
  ASSERT_EQ(JsonDoc(pop.body).Size("/messages"), 1u) << pop.body;
  ASSERT_EQ(PushTx(q, {"late-1", "late-2"}).status, 200);
  EXPECT_TRUE(Eventually([&] { return Count(q, "deadLetter") == 2; }))
      << "dead letters: " << Count(q, "deadLetter");
  EXPECT_EQ(DeadLetterErrors(*broker_, q), (std::vector<std::string>{"expired", "expired"}));
  HttpResponse after = http().Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=5");
  ASSERT_EQ(after.status, 200) << after.Describe();
  EXPECT_EQ(JsonDoc(after.body).Size("/messages").value_or(0), 0u) << after.body;
}

TEST_F(BrokerRetentionTest, BadOptionValuesAre400) {
  const std::string q = UniqueName("bad");
  for (const char* options : {R"({"maxSize":-1})", R"({"maxSize":"ten"})",
                              R"({"retentionSeconds":-5})", R"({"completedRetentionSeconds":1.5})",
                              R"({"maxWaitTimeSeconds":true})", R"({"dedupWindowSeconds":-1})"}) {
    HttpResponse r = http().Post("/api/v1/configure",
                                 "{\"queue\":" + JsonQuote(q) + ",\"options\":" + options + "}");
    EXPECT_TRUE(IsJsonError(r, 400)) << options << " -> " << r.Describe();
  }
}

// With no queue carrying a rule, the job finds nothing to do and sleeps: no runs (no database
// work) until a queue changes. A push wakes it for one more run; a rule keeps it scheduled.
TEST(BrokerRetentionIdleTest, TheJobSleepsWithoutRulesAndWakesWhenAQueueChanges) {
  // On PostgreSQL the suite shares one database, where other tests' queues carry rules: this
  // test gets one of its own.
  const char* pg_url = std::getenv("ORDO_TEST_PG_URL");
  ScratchPgDatabase scratch(pg_url ? pg_url : "", "ordo_idle_");
  if (OnPostgres()) {
    ASSERT_TRUE(scratch.Create());
  }
  BrokerProcess broker({"--retention-interval", "1"}, scratch.url());
  ASSERT_TRUE(broker.Start());
  HttpClient http(broker.port());
  auto job = [&http] {
    HttpResponse r = http.Get("/api/v1/status");
    EXPECT_EQ(r.status, 200) << r.Describe();
    return JsonDoc(r.body);
  };
  auto state = [&] { return job().String("/retentionJob/state").value_or("?"); };
  auto runs = [&] { return job().Int("/retentionJob/runs").value_or(-1); };
  auto eventually = [](const std::function<bool()>& pred) {
    auto deadline = SteadyClock::now() + 20s;
    while (SteadyClock::now() < deadline && !pred()) std::this_thread::sleep_for(50ms);
    return pred();
  };

  ASSERT_TRUE(eventually([&] { return state() == "sleeping"; })) << "state " << state();
  EXPECT_EQ(job().Int("/retentionJob/intervalMs").value_or(-1), 1000);
  int64_t asleep = runs();
  EXPECT_GE(asleep, 1);
  std::this_thread::sleep_for(2500ms);  // two and a half intervals
  EXPECT_EQ(runs(), asleep) << "the job ran while asleep";
  EXPECT_EQ(state(), "sleeping");

  // A push (a queue without rules) wakes it: one run, then asleep again.
  HttpResponse push = http.Post(
      "/api/v1/push", R"({"items":[{"queue":"idle-job","partition":"p","payload":{"n":1}}]})");
  ASSERT_EQ(push.status, 200) << push.Describe();
  ASSERT_TRUE(eventually([&] { return runs() > asleep && state() == "sleeping"; }))
      << "runs " << runs() << ", state " << state();
  asleep = runs();

  // A rule keeps it scheduled: it runs every interval.
  HttpResponse conf =
      http.Post("/api/v1/configure", R"({"queue":"idle-job","options":{"retentionSeconds":3600}})");
  ASSERT_EQ(conf.status, 200) << conf.Describe();
  ASSERT_TRUE(eventually([&] { return runs() >= asleep + 2; })) << "runs " << runs();
  EXPECT_EQ(state(), "scheduled");
}

}  // namespace
}  // namespace ordo::integration
