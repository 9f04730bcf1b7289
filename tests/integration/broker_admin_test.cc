// configure, resources (queues list, detail, delete), health routes, CORS and content types.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

class BrokerAdminTest : public BrokerTest {};

const std::vector<std::string> kEveryOption = {"leaseTime",          "retryLimit",
                                               "retryDelay",         "retryBackoff",
                                               "retryDelayMax",      "delayedProcessing",
                                               "windowBuffer",       "maxSize",
                                               "retentionSeconds",   "completedRetentionSeconds",
                                               "maxWaitTimeSeconds", "dedupWindowSeconds",
                                               "priority",           "encryptionEnabled"};

TEST_F(BrokerAdminTest, ConfigureAnswersEveryOptionAndKeepsUnsetOnes) {
  const std::string q = UniqueName("conf");
  HttpResponse r = http().Post(
      "/api/v1/configure", "{\"queue\":" + JsonQuote(q) +
                               ",\"namespace\":\"billing\",\"task\":\"invoice\","
                               "\"options\":{\"leaseTime\":120,\"retryLimit\":5,\"priority\":7}}");
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(IsJsonAnswer(r));
  JsonDoc doc(r.body);
  EXPECT_EQ(doc.Bool("/configured"), true) << r.body;
  EXPECT_EQ(doc.String("/queue"), q);
  std::string queue_id = doc.String("/queueId").value_or("");
  std::string partition_id = doc.String("/partitionId").value_or("");
  EXPECT_TRUE(LooksLikeUuid(queue_id)) << r.body;
  EXPECT_TRUE(LooksLikeUuid(partition_id)) << r.body;
  EXPECT_EQ(doc.String("/namespace"), "billing");
  EXPECT_EQ(doc.String("/task"), "invoice");
  for (const std::string& option : kEveryOption) {
    EXPECT_TRUE(doc.Has("/options/" + option)) << "option " << option << " missing: " << r.body;
  }
  EXPECT_EQ(doc.Int("/options/leaseTime"), 120);
  EXPECT_EQ(doc.Int("/options/retryLimit"), 5);
  EXPECT_EQ(doc.Int("/options/priority"), 7);
  // Defaults of semantics.md for the options not given.
  EXPECT_EQ(doc.Int("/options/retryDelay"), 1000) << r.body;
  EXPECT_EQ(doc.Bool("/options/retryBackoff"), false) << r.body;
  EXPECT_EQ(doc.Int("/options/retryDelayMax"), 60000) << r.body;
  EXPECT_EQ(doc.Int("/options/dedupWindowSeconds"), 3600) << r.body;
  EXPECT_EQ(doc.Bool("/options/encryptionEnabled"), false) << r.body;

  // A second configure with a subset changes only that subset.
  HttpResponse r2 = http().Post(
      "/api/v1/configure",
      "{\"queue\":" + JsonQuote(q) + ",\"options\":{\"retryDelay\":250,\"retryBackoff\":true}}");
  ASSERT_EQ(r2.status, 200) << r2.Describe();
  JsonDoc doc2(r2.body);
  EXPECT_EQ(doc2.String("/queueId"), queue_id) << "configure made a new queue: " << r2.body;
  EXPECT_EQ(doc2.String("/partitionId"), partition_id) << r2.body;
  EXPECT_EQ(doc2.Int("/options/retryDelay"), 250) << r2.body;
  EXPECT_EQ(doc2.Bool("/options/retryBackoff"), true) << r2.body;
  EXPECT_EQ(doc2.Int("/options/leaseTime"), 120) << r2.body;
  EXPECT_EQ(doc2.Int("/options/retryLimit"), 5) << r2.body;
  EXPECT_EQ(doc2.Int("/options/priority"), 7) << r2.body;
  EXPECT_EQ(doc2.String("/namespace"), "billing") << r2.body;
  EXPECT_EQ(doc2.String("/task"), "invoice") << r2.body;

  // Reading the queue shows the same options.
  HttpResponse detail = http().Get("/api/v1/resources/queues/" + UrlEncode(q));
  ASSERT_EQ(detail.status, 200) << detail.Describe();
  JsonDoc d(detail.body);
  EXPECT_EQ(d.Int("/options/leaseTime"), 120) << detail.body;
  EXPECT_EQ(d.Int("/options/retryDelay"), 250) << detail.body;
}

TEST_F(BrokerAdminTest, ConfiguredLeaseTimeIsUsedByPop) {
  const std::string q = UniqueName("leasetime");
  ASSERT_EQ(http()
                .Post("/api/v1/configure",
                      "{\"queue\":" + JsonQuote(q) + ",\"options\":{\"leaseTime\":1}}")
                .status,
            200);
  PushOne(q, "{}");
  JsonDoc first = Pop(q);
  ASSERT_EQ(first.Size("/messages"), 1u);
  // Not acked: after the 1 s lease expires the message is delivered again.
  JsonDoc again = Pop(q, "wait=true&timeout=4000");
  ASSERT_EQ(again.Size("/messages"), 1u)
      << "not redelivered after the lease expired: " << again.text();
  EXPECT_EQ(again.String("/messages/0/id"), first.String("/messages/0/id"));
  EXPECT_NE(again.String("/leaseId"), first.String("/leaseId"));
}

TEST_F(BrokerAdminTest, QueueListShowsCounts) {
  const std::string q = UniqueName("list");
  PushOne(q, "1", "", "p1");
  PushOne(q, "2", "", "p1");
  PushOne(q, "3", "", "p2");
  JsonDoc leased = PopPartition(q, "p2");
  ASSERT_EQ(leased.Size("/messages"), 1u);

  HttpResponse r = http().Get("/api/v1/resources/queues");
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(IsJsonAnswer(r));
  JsonDoc doc(r.body);
  size_t n = doc.Size("/queues").value_or(0);
  bool found = false;
  for (size_t i = 0; i < n; ++i) {
    std::string p = "/queues/" + std::to_string(i);
    if (doc.String(p + "/name") != q) continue;
    found = true;
    EXPECT_TRUE(LooksLikeUuid(doc.String(p + "/id").value_or(""))) << doc.Minified(p);
    EXPECT_TRUE(doc.Has(p + "/namespace")) << doc.Minified(p);
    EXPECT_TRUE(doc.Has(p + "/task")) << doc.Minified(p);
    EXPECT_TRUE(LooksLikeTimestamp(doc.String(p + "/createdAt").value_or(""))) << doc.Minified(p);
    EXPECT_EQ(doc.Int(p + "/partitions"), 2) << doc.Minified(p);
    EXPECT_EQ(doc.Int(p + "/messages/total"), 3) << doc.Minified(p);
    EXPECT_EQ(doc.Int(p + "/messages/processing"), 1) << doc.Minified(p);
    EXPECT_EQ(doc.Int(p + "/messages/pending"), 2) << doc.Minified(p);
  }
  EXPECT_TRUE(found) << q << " not listed in " << r.body.substr(0, 4000);
}

TEST_F(BrokerAdminTest, QueueDetailShowsPartitionsAndStats) {
  const std::string q = UniqueName("detail");
  PushOne(q, "1", "", "p1");
  PushOne(q, "2", "", "p1");
  AckAll(PopPartition(q, "p1"));  // one completed, one pending

  HttpResponse r = http().Get("/api/v1/resources/queues/" + UrlEncode(q));
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(IsJsonAnswer(r));
  JsonDoc doc(r.body);
  EXPECT_EQ(doc.String("/name"), q) << r.body;
  EXPECT_TRUE(doc.Has("/options")) << r.body;
  ASSERT_EQ(doc.Size("/partitions"), 1u) << r.body;
  EXPECT_TRUE(LooksLikeUuid(doc.String("/partitions/0/id").value_or(""))) << r.body;
  EXPECT_EQ(doc.String("/partitions/0/name"), "p1");
  EXPECT_TRUE(LooksLikeTimestamp(doc.String("/partitions/0/createdAt").value_or(""))) << r.body;
  EXPECT_TRUE(doc.Has("/partitions/0/newestMessage")) << r.body;
  EXPECT_TRUE(doc.Has("/partitions/0/oldestMessage")) << r.body;
  EXPECT_EQ(doc.Int("/partitions/0/stats/total"), 2) << r.body;
  EXPECT_EQ(doc.Int("/partitions/0/stats/pending"), 1) << r.body;
  EXPECT_EQ(doc.Int("/partitions/0/stats/processing"), 0) << r.body;
  EXPECT_EQ(doc.Int("/partitions/0/stats/completed"), 1) << r.body;
  EXPECT_EQ(doc.Int("/partitions/0/stats/failed"), 0) << r.body;
  EXPECT_EQ(doc.Int("/partitions/0/stats/deadLetter"), 0) << r.body;
}

TEST_F(BrokerAdminTest, MissingQueueDetailIs404) {
  HttpResponse r = http().Get("/api/v1/resources/queues/" + UrlEncode(UniqueName("nope")));
  EXPECT_TRUE(IsJsonError(r, 404));
}

TEST_F(BrokerAdminTest, DeleteQueueRemovesItAndItsMessages) {
  const std::string q = UniqueName("del");
  PushOne(q, "{}");
  HttpResponse r = http().Delete("/api/v1/resources/queues/" + UrlEncode(q));
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(IsJsonAnswer(r));
  JsonDoc doc(r.body);
  EXPECT_EQ(doc.Bool("/deleted"), true) << r.body;
  EXPECT_EQ(doc.String("/queue"), q) << r.body;
  EXPECT_EQ(doc.Bool("/existed"), true) << r.body;

  EXPECT_TRUE(IsJsonError(http().Get("/api/v1/resources/queues/" + UrlEncode(q)), 404));
  EXPECT_EQ(Pop(q).Size("/messages"), 0u) << "messages of a deleted queue are gone";

  HttpResponse again = http().Delete("/api/v1/resources/queues/" + UrlEncode(q));
  ASSERT_EQ(again.status, 200) << again.Describe();
  EXPECT_EQ(JsonDoc(again.body).Bool("/existed"), false) << again.body;
}

TEST_F(BrokerAdminTest, HealthRoutes) {
  HttpResponse h = http().Get("/health");
  ASSERT_EQ(h.status, 200) << h.Describe();
  ASSERT_TRUE(IsJsonAnswer(h));
  JsonDoc doc(h.body);
  EXPECT_EQ(doc.String("/status"), "healthy");
  EXPECT_EQ(doc.String("/database"), "connected");
  EXPECT_EQ(doc.String("/engine"), broker().engine());
  EXPECT_FALSE(doc.String("/version").value_or("").empty()) << h.body;

  for (const char* path : {"/health/live", "/health/ready"}) {
    HttpResponse r = http().Get(path);
    EXPECT_EQ(r.status, 200) << path << ": " << r.Describe();
    EXPECT_EQ(r.Header("access-control-allow-origin"), "*") << path;
  }
}

TEST_F(BrokerAdminTest, OptionsPreflightOnAnyPath) {
  for (const char* path : {"/anything", "/api/v1/push", "/api/v1/pop/queue/x"}) {
    HttpResponse r = http().Request(
        "OPTIONS", path, "",
        {{"Origin", "http://example.com"}, {"Access-Control-Request-Method", "POST"}});
    ASSERT_EQ(r.status, 204) << path << ": " << r.Describe();
    EXPECT_EQ(r.Header("access-control-allow-origin"), "*") << path;
    std::string methods = r.Header("access-control-allow-methods");
    for (const char* m : {"GET", "POST", "PUT", "DELETE", "OPTIONS"}) {
      EXPECT_NE(methods.find(m), std::string::npos) << m << " not in '" << methods << "'";
    }
    std::string headers = r.Header("access-control-allow-headers");
    for (const char* h : {"Content-Type", "Authorization"}) {
      EXPECT_NE(headers.find(h), std::string::npos) << h << " not in '" << headers << "'";
    }
    EXPECT_TRUE(r.body.empty()) << r.body;
  }
  // The connection is still usable after a 204 without a body.
  EXPECT_EQ(http().Get("/health").status, 200);
}

// Content-Type application/json and the CORS header on every JSON answer, 2xx or not.
TEST_F(BrokerAdminTest, EveryJsonAnswerHasContentTypeAndCors) {
  const std::string q = UniqueName("ct");
  struct Call {
    const char* method;
    std::string target;
    std::string body;
  };
  const std::vector<Call> calls = {
      {"POST", "/api/v1/configure", "{\"queue\":" + JsonQuote(q) + "}"},
      {"POST", "/api/v1/push", "{\"items\":[{\"queue\":" + JsonQuote(q) + "}]}"},
      {"GET", "/api/v1/pop/queue/" + UrlEncode(q), ""},
      {"GET", "/api/v1/pop/queue/" + UrlEncode(q) + "/partition/Default", ""},
      {"POST", "/api/v1/ack",
       "{\"transactionId\":\"x\",\"partitionId\":\"00000000-0000-4000-8000-000000000000\","
       "\"leaseId\":\"00000000-0000-4000-8000-000000000000\",\"status\":\"completed\"}"},
      {"POST", "/api/v1/ack/batch", "{\"acknowledgments\":[]}"},
      {"POST", "/api/v1/lease/00000000-0000-4000-8000-000000000000/extend", "{}"},
      {"GET", "/api/v1/resources/queues", ""},
      {"GET", "/api/v1/resources/queues/" + UrlEncode(q), ""},
      {"GET", "/health", ""},
      {"GET", "/no/such/route", ""},
      {"DELETE", "/api/v1/push", ""},
      {"POST", "/api/v1/push", "not json"},
      {"DELETE", "/api/v1/resources/queues/" + UrlEncode(q), ""},
  };
  for (const Call& c : calls) {
    HttpResponse r = http().Request(c.method, c.target, c.body);
    EXPECT_TRUE(IsJsonAnswer(r)) << c.method << " " << c.target;
  }
}

}  // namespace
}  // namespace ordo::integration

namespace ordo::integration {
namespace {

// Issue #4.7: every option sent comes back unchanged, from configure and from reading the queue.
TEST_F(BrokerAdminTest, EveryOptionSentComesBackUnchanged) {
  const std::string q = UniqueName("roundtrip");
  const std::string options =
      "{\"leaseTime\":61,\"retryLimit\":4,\"retryDelay\":1500,\"retryBackoff\":true,"
      "\"retryDelayMax\":9000,\"delayedProcessing\":2,\"windowBuffer\":3,\"maxSize\":100,"
      "\"retentionSeconds\":3600,\"completedRetentionSeconds\":60,\"maxWaitTimeSeconds\":600,"
      "\"dedupWindowSeconds\":120,\"priority\":5,\"encryptionEnabled\":false}";
  HttpResponse r = http().Post("/api/v1/configure", "{\"queue\":" + JsonQuote(q) +
                                                        ",\"namespace\":\"n1\",\"task\":\"t1\","
                                                        "\"options\":" +
                                                        options + "}");
  ASSERT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  EXPECT_EQ(doc.Minified("/options"), JsonDoc(options).Minified("")) << r.body;
  HttpResponse detail = http().Get("/api/v1/resources/queues/" + UrlEncode(q));
  ASSERT_EQ(detail.status, 200) << detail.Describe();
  JsonDoc d(detail.body);
  EXPECT_EQ(d.Minified("/options"), JsonDoc(options).Minified("")) << detail.body;
  EXPECT_EQ(d.String("/namespace"), "n1");
  EXPECT_EQ(d.String("/task"), "t1");
}

}  // namespace
}  // namespace ordo::integration
