// Overview, namespaces, tasks (current counts) and the status routes (flow counters flushed by
// the broker every --stats-flush-interval, here 100 ms), over HTTP, on the real binary.
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "harness.h"

namespace ordo::integration {
namespace {

constexpr auto kDeadline = 10s;

class BrokerStatusTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    broker_ =
        std::make_unique<BrokerProcess>(std::vector<std::string>{"--stats-flush-interval", "100"});
    (void)broker_->Start();
  }
  static void TearDownTestSuite() { broker_.reset(); }
  void SetUp() override {
    if (!broker_->Alive()) {
      ASSERT_TRUE(broker_->Start());
    }
    http_ = std::make_unique<HttpClient>(broker_->port());
  }
  void TearDown() override { http_.reset(); }

  HttpClient& http() { return *http_; }

  void Configure(const std::string& queue, const std::string& ns, const std::string& task,
                 const std::string& options = "{}") {
    HttpResponse r = http().Post(
        "/api/v1/configure", "{\"queue\":" + JsonQuote(queue) + ",\"namespace\":" + JsonQuote(ns) +
                                 ",\"task\":" + JsonQuote(task) + ",\"options\":" + options + "}");
    ASSERT_EQ(r.status, 200) << r.Describe();
  }

  // Pushes one message per transaction id to queue (partition Default).
  void PushTx(const std::string& queue, const std::vector<std::string>& txids) {
    std::string items;
    for (const std::string& tx : txids) {
      if (!items.empty()) items += ",";
      items += "{\"queue\":" + JsonQuote(queue) + ",\"transactionId\":" + JsonQuote(tx) +
               ",\"payload\":{\"n\":1}}";
    }
    HttpResponse r = http().Post("/api/v1/push", "{\"items\":[" + items + "]}");
    ASSERT_EQ(r.status, 200) << r.Describe();
  }

  // GETs `target` until `ok(doc)` holds or the deadline passes; returns the last answer.
  JsonDoc PollUntil(const std::string& target, const std::function<bool(const JsonDoc&)>& ok) {
    const auto deadline = SteadyClock::now() + kDeadline;
    std::string last;
    while (true) {
      HttpResponse r = http().Get(target);
      EXPECT_EQ(r.status, 200) << r.Describe();
      last = r.body;
      JsonDoc doc(r.body);
      if (r.status != 200 || ok(doc) || SteadyClock::now() >= deadline) return JsonDoc(last);
      std::this_thread::sleep_for(50ms);
    }
  }

  static inline std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<HttpClient> http_;
};

// The element of the array at `list` whose `key` equals `value`, as a pointer prefix.
std::optional<std::string> FindIn(const JsonDoc& doc, const std::string& list,
                                  const std::string& key, const std::string& value) {
  for (size_t i = 0; i < doc.Size(list).value_or(0); ++i) {
    std::string at = Indexed(list + "/", static_cast<int64_t>(i));
    if (doc.String(at + "/" + key) == value) return at;
  }
  return std::nullopt;
}

TEST_F(BrokerStatusTest, CountersReflectPushesPopsAndAcksAfterAFlush) {
  const std::string q = UniqueName("flow");
  Configure(q, "", "", "{\"retryLimit\":0}");
  PushTx(q, {"t1", "t2", "t3", "t4"});
  PushTx(q, {"t1"});  // a duplicate

  HttpResponse pop = http().Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=3");
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  JsonDoc popped(pop.body);
  ASSERT_EQ(popped.Size("/messages"), 3u) << pop.body;
  const std::string lease = popped.String("/leaseId").value_or("");
  auto ack = [&](int i, const std::string& status) {
    std::string m = Indexed("/messages/", i);
    HttpResponse r = http().Post(
        "/api/v1/ack", "{\"transactionId\":" + JsonQuote(*popped.String(m + "/transactionId")) +
                           ",\"partitionId\":" + JsonQuote(*popped.String(m + "/partitionId")) +
                           ",\"leaseId\":" + JsonQuote(lease) + ",\"status\":\"" + status + "\"}");
    ASSERT_EQ(r.status, 200) << r.Describe();
    EXPECT_EQ(JsonDoc(r.body).Bool("/0/success"), true) << r.body;
  };
  ack(0, "completed");
  ack(1, "completed");
  ack(2, "failed");  // retryLimit 0: to the dead-letter queue

  const std::string target = "/api/v1/status/queues/" + UrlEncode(q);
  JsonDoc doc = PollUntil(target, [](const JsonDoc& d) {
    return d.Int("/totals/pushed") == 4 && d.Int("/totals/dlq") == 1 &&
           d.Int("/totals/completed") == 2 && d.Int("/totals/delivered") == 3;
  });
  EXPECT_EQ(doc.String("/name"), q) << doc.text();
  EXPECT_EQ(doc.Int("/totals/pushed"), 4) << doc.text();
  EXPECT_EQ(doc.Int("/totals/duplicates"), 1) << doc.text();
  EXPECT_EQ(doc.Int("/totals/delivered"), 3) << doc.text();
  EXPECT_EQ(doc.Int("/totals/completed"), 2) << doc.text();
  EXPECT_EQ(doc.Int("/totals/failed"), 1) << doc.text();
  EXPECT_EQ(doc.Int("/totals/dlq"), 1) << doc.text();
  // Current depth, from the cheap counts: t4 waits, the others are done.
  EXPECT_EQ(doc.Int("/depth/total"), 4) << doc.text();
  EXPECT_EQ(doc.Int("/depth/pending"), 1) << doc.text();
  EXPECT_EQ(doc.Int("/depth/processing"), 0) << doc.text();
  EXPECT_EQ(doc.Int("/depth/completed"), 2) << doc.text();
  EXPECT_EQ(doc.Int("/depth/deadLetter"), 1) << doc.text();
  EXPECT_EQ(doc.Int("/partitions"), 1) << doc.text();
  auto rate = doc.At("/messagesPerSecond/pushed");
  ASSERT_TRUE(rate.has_value()) << doc.text();
  EXPECT_NEAR(rate->get_double().value(), 4.0 / 3600, 1e-6) << "default window: the last hour";

  // The same counts in the per-queue list, the minute series and the global totals.
  HttpResponse list = http().Get("/api/v1/status/queues");
  ASSERT_EQ(list.status, 200) << list.Describe();
  JsonDoc all(list.body);
  auto at = FindIn(all, "/queues", "name", q);
  ASSERT_TRUE(at) << list.body;
  EXPECT_EQ(all.Int(*at + "/totals/pushed"), 4);
  EXPECT_EQ(all.Int(*at + "/depth/pending"), 1);

  HttpResponse series =
      http().Get("/api/v1/status/analytics?interval=minute&queue=" + UrlEncode(q));
  ASSERT_EQ(series.status, 200) << series.Describe();
  ASSERT_TRUE(IsJsonAnswer(series));
  JsonDoc s(series.body);
  EXPECT_EQ(s.Int("/totals/pushed"), 4) << series.body;
  EXPECT_EQ(s.String("/interval"), "minute");
  int64_t pushed = 0;
  size_t n = s.Size("/buckets").value_or(0);
  EXPECT_GE(n, 60u) << "a minute bucket for every minute of the last hour";
  EXPECT_LE(n, 61u);
  for (size_t i = 0; i < n; ++i)
    pushed += s.Int(Indexed("/buckets/", int64_t(i), "/pushed")).value_or(0);
  EXPECT_EQ(pushed, 4) << series.body;

  HttpResponse total = http().Get("/api/v1/status");
  ASSERT_EQ(total.status, 200) << total.Describe();
  JsonDoc t(total.body);
  EXPECT_GE(t.Int("/totals/pushed").value_or(0), 4) << total.body;
  EXPECT_GE(t.Int("/totals/dlq").value_or(0), 1) << total.body;
}

// longPolls: this instance's parked polls, and what pushes delivered to them in their own
// transaction (PostgreSQL's delivery on push; the SQLite engine wakes them instead).
TEST_F(BrokerStatusTest, LongPollsShowParkedPollsAndDeliveriesOnPush) {
  const std::string q = UniqueName("polls");
  JsonDoc before = PollUntil("/api/v1/status", [](const JsonDoc&) { return true; });
  const int64_t delivered = before.Int("/longPolls/deliveredOnPush").value_or(-1);
  ASSERT_GE(delivered, 0) << before.Minified("");
  ASSERT_GE(before.Int("/longPolls/claimsDeclined").value_or(-1), 0) << before.Minified("");

  HttpClient poller(broker_->port(), 15s);
  ASSERT_TRUE(
      StartGetAfterProbe(poller, "/api/v1/pop/queue/" + UrlEncode(q) + "?wait=true&timeout=10000"));
  JsonDoc parked = PollUntil("/api/v1/status", [](const JsonDoc& d) {
    return d.Int("/longPolls/parked").value_or(0) >= 1;
  });
  ASSERT_GE(parked.Int("/longPolls/parked").value_or(0), 1) << parked.Minified("");
  PushTx(q, {"t1"});
  HttpResponse got = poller.ReadResponse();
  ASSERT_EQ(got.status, 200) << got.Describe();
  ASSERT_EQ(JsonDoc(got.body).Size("/messages"), 1u) << got.body;
  JsonDoc after = PollUntil("/api/v1/status", [](const JsonDoc& d) {
    return d.Int("/longPolls/parked").value_or(1) == 0;
  });
  EXPECT_EQ(after.Int("/longPolls/parked"), 0) << after.Minified("");
  EXPECT_EQ(after.Int("/longPolls/deliveredOnPush").value_or(-1),
            delivered + (OnPostgres() ? 1 : 0))
      << after.Minified("");
}

TEST_F(BrokerStatusTest, AutoAckedPopsCountAsDeliveredAndCompleted) {
  const std::string q = UniqueName("autoack");
  PushTx(q, {"a", "b"});
  HttpResponse pop = http().Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=5&autoAck=true");
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  ASSERT_EQ(JsonDoc(pop.body).Size("/messages"), 2u) << pop.body;
  JsonDoc doc = PollUntil("/api/v1/status/queues/" + UrlEncode(q),
                          [](const JsonDoc& d) { return d.Int("/totals/completed") == 2; });
  EXPECT_EQ(doc.Int("/totals/delivered"), 2) << doc.text();
  EXPECT_EQ(doc.Int("/totals/completed"), 2) << doc.text();
  EXPECT_EQ(doc.Int("/depth/pending"), 0) << doc.text();
}

TEST_F(BrokerStatusTest, AnalyticsBucketsCoverTheWindowByTheInterval) {
  const std::string q = UniqueName("buckets");
  PushTx(q, {"x"});
  const Micros now = SystemNowMicros();
  const Micros from = now - 5 * 60'000'000LL;
  std::string window = "&from=" + UrlEncode(FormatIso8601(from)) +
                       "&to=" + UrlEncode(FormatIso8601(now + 60'000'000LL));
  JsonDoc doc = PollUntil("/api/v1/status/analytics?interval=minute&queue=" + UrlEncode(q) + window,
                          [](const JsonDoc& d) { return d.Int("/totals/pushed") == 1; });
  EXPECT_EQ(doc.Int("/totals/pushed"), 1) << doc.text();
  ASSERT_EQ(doc.Size("/buckets"), 7u) << "minutes from-5m (its minute) to now+1m: " << doc.text();
  const Micros first_minute = from - from % 60'000'000LL;
  EXPECT_EQ(doc.String("/buckets/0/time"), FormatIso8601(first_minute)) << doc.text();
  EXPECT_EQ(doc.String("/buckets/1/time"), FormatIso8601(first_minute + 60'000'000LL));

  HttpResponse hours =
      http().Get("/api/v1/status/analytics?interval=hour&queue=" + UrlEncode(q) + window);
  ASSERT_EQ(hours.status, 200) << hours.Describe();
  JsonDoc h(hours.body);
  size_t n = h.Size("/buckets").value_or(0);
  ASSERT_GE(n, 1u) << hours.body;
  ASSERT_LE(n, 2u) << hours.body;
  int64_t sum = 0;
  for (size_t i = 0; i < n; ++i) {
    std::string time = h.String(Indexed("/buckets/", int64_t(i), "/time")).value_or("");
    EXPECT_NE(time.find(":00:00.000000Z"), std::string::npos) << "hour buckets start at :00";
    sum += h.Int(Indexed("/buckets/", int64_t(i), "/pushed")).value_or(0);
  }
  EXPECT_EQ(sum, 1) << hours.body;

  HttpResponse days =
      http().Get("/api/v1/status/analytics?interval=day&queue=" + UrlEncode(q) + window);
  ASSERT_EQ(days.status, 200) << days.Describe();
  JsonDoc d(days.body);
  EXPECT_EQ(d.Int("/totals/pushed"), 1) << days.body;
  EXPECT_NE(d.String("/buckets/0/time").value_or("").find("T00:00:00.000000Z"), std::string::npos)
      << days.body;

  // A window that ended before the push sees nothing of it.
  std::string before = "&from=" + UrlEncode(FormatIso8601(from - 3600'000'000LL)) +
                       "&to=" + UrlEncode(FormatIso8601(from - 60'000'000LL));
  HttpResponse old = http().Get("/api/v1/status/analytics?queue=" + UrlEncode(q) + before);
  ASSERT_EQ(old.status, 200) << old.Describe();
  EXPECT_EQ(JsonDoc(old.body).Int("/totals/pushed"), 0) << old.body;
}

TEST_F(BrokerStatusTest, NamespacesAndTasksGroupQueuesWithTheirCounts) {
  const std::string n1 = UniqueName("ns1"), n2 = UniqueName("ns2");
  const std::string t1 = UniqueName("task1"), t2 = UniqueName("task2");
  const std::string qa = UniqueName("qa"), qb = UniqueName("qb"), qc = UniqueName("qc");
  Configure(qa, n1, t1);
  Configure(qb, n1, t2);
  Configure(qc, n2, t1);
  PushTx(qa, {"1", "2"});
  PushTx(qb, {"1", "2", "3"});
  PushTx(qc, {"1"});

  HttpResponse ns = http().Get("/api/v1/resources/namespaces");
  ASSERT_EQ(ns.status, 200) << ns.Describe();
  ASSERT_TRUE(IsJsonAnswer(ns));
  JsonDoc nd(ns.body);
  auto g1 = FindIn(nd, "/namespaces", "namespace", n1);
  auto g2 = FindIn(nd, "/namespaces", "namespace", n2);
  ASSERT_TRUE(g1 && g2) << ns.body;
  EXPECT_EQ(nd.Minified(*g1 + "/queues"), "[" + JsonQuote(qa) + "," + JsonQuote(qb) + "]");
  EXPECT_EQ(nd.Int(*g1 + "/partitions"), 2);
  EXPECT_EQ(nd.Int(*g1 + "/messages/total"), 5);
  EXPECT_EQ(nd.Int(*g1 + "/messages/pending"), 5);
  EXPECT_EQ(nd.Minified(*g2 + "/queues"), "[" + JsonQuote(qc) + "]");
  EXPECT_EQ(nd.Int(*g2 + "/messages/total"), 1);

  HttpResponse tasks = http().Get("/api/v1/resources/tasks");
  ASSERT_EQ(tasks.status, 200) << tasks.Describe();
  JsonDoc td(tasks.body);
  auto k1 = FindIn(td, "/tasks", "task", t1);
  auto k2 = FindIn(td, "/tasks", "task", t2);
  ASSERT_TRUE(k1 && k2) << tasks.body;
  EXPECT_EQ(td.Minified(*k1 + "/queues"), "[" + JsonQuote(qa) + "," + JsonQuote(qc) + "]");
  EXPECT_EQ(td.Int(*k1 + "/messages/total"), 3);
  EXPECT_EQ(td.Int(*k2 + "/messages/total"), 3);
  EXPECT_EQ(td.Int(*k2 + "/messages/processing"), 0);

  HttpResponse over = http().Get("/api/v1/resources/overview");
  ASSERT_EQ(over.status, 200) << over.Describe();
  JsonDoc od(over.body);
  EXPECT_GE(od.Int("/queues").value_or(0), 3) << over.body;
  EXPECT_GE(od.Int("/partitions").value_or(0), 3) << over.body;
  EXPECT_GE(od.Int("/namespaces").value_or(0), 2) << over.body;
  EXPECT_GE(od.Int("/tasks").value_or(0), 2) << over.body;
  EXPECT_GE(od.Int("/messages/total").value_or(0), 6) << over.body;
  for (const char* f : {"pending", "processing", "completed", "failed", "deadLetter"}) {
    EXPECT_TRUE(od.Has(std::string("/messages/") + f)) << f << ": " << over.body;
  }
  EXPECT_TRUE(LooksLikeTimestamp(od.String("/timestamp").value_or(""))) << over.body;
}

TEST_F(BrokerStatusTest, BadWindowsIntervalsAndQueuesAreRefused) {
  EXPECT_TRUE(IsJsonError(http().Get("/api/v1/status/analytics?interval=week"), 400));
  EXPECT_TRUE(IsJsonError(http().Get("/api/v1/status?from=yesterday"), 400));
  EXPECT_TRUE(IsJsonError(http().Get("/api/v1/status/queues?to=2026-13-45T00:00:00Z"), 400));
  EXPECT_TRUE(IsJsonError(
      http().Get("/api/v1/status?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"), 400))
      << "to before from";
  EXPECT_TRUE(IsJsonError(http().Get("/api/v1/status/analytics?interval=minute"
                                     "&from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"),
                          400))
      << "too many buckets";
  HttpResponse ok = http().Get(
      "/api/v1/status/analytics?interval=day"
      "&from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z");
  EXPECT_EQ(ok.status, 200) << "the same window by day is fine: " << ok.Describe();
  EXPECT_TRUE(IsJsonError(http().Get("/api/v1/status/analytics?queue=bad%20name"), 400));
  HttpResponse missing = http().Get("/api/v1/status/queues/" + UniqueName("missing"));
  EXPECT_TRUE(IsJsonError(missing, 404)) << missing.Describe();
  EXPECT_TRUE(IsJsonError(http().Get("/api/v1/status/queues/bad%20name"), 400));
}

TEST(BrokerStatusShutdownTest, OpenCountersAreFlushedAtShutdown) {
  // A flush interval far longer than the test: only the shutdown flush can store the counts.
  BrokerProcess broker({"--stats-flush-interval", "3600000"});
  ASSERT_TRUE(broker.Start());
  const std::string q = UniqueName("shutdown");
  {
    HttpClient http(broker.port());
    HttpResponse r = http.Post("/api/v1/push", "{\"items\":[{\"queue\":" + JsonQuote(q) +
                                                   "},{\"queue\":" + JsonQuote(q) + "}]}");
    ASSERT_EQ(r.status, 200) << r.Describe();
    HttpResponse before = http.Get("/api/v1/status/queues/" + UrlEncode(q));
    ASSERT_EQ(before.status, 200) << before.Describe();
    EXPECT_EQ(JsonDoc(before.body).Int("/totals/pushed"), 0)
        << "nothing is visible before a flush: " << before.body;
  }
  ASSERT_TRUE(broker.Restart());
  HttpClient http(broker.port());
  HttpResponse after = http.Get("/api/v1/status/queues/" + UrlEncode(q));
  ASSERT_EQ(after.status, 200) << after.Describe();
  EXPECT_EQ(JsonDoc(after.body).Int("/totals/pushed"), 2) << after.body;
}

}  // namespace
}  // namespace ordo::integration
