// Process life cycle: durability across kill -9, graceful shutdown on SIGTERM (parked long polls
// answered, exit code 0), data kept across a clean restart. Each test owns its broker.
#include <signal.h>
#include <sys/wait.h>

#include <future>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

std::string PushBody(const std::string& q, int first, int count) {
  std::string body = "{\"items\":[";
  for (int i = first; i < first + count; ++i) {
    if (i != first) body += ",";
    body += "{\"queue\":" + JsonQuote(q) + ",\"transactionId\":\"d" + std::to_string(i) +
            "\",\"payload\":{\"i\":" + std::to_string(i) + "}}";
  }
  return body + "]}";
}

// Pops (batch 100) and acks until the queue is empty; returns the transaction ids in delivery
// order.
std::vector<std::string> DrainQueue(HttpClient& http, const std::string& q) {
  std::vector<std::string> out;
  for (int round = 0; round < 50; ++round) {
    HttpResponse r = http.Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=100");
    EXPECT_EQ(r.status, 200) << r.Describe();
    JsonDoc pop(r.body);
    size_t n = pop.Size("/messages").value_or(0);
    if (n == 0) break;
    std::string acks = "{\"acknowledgments\":[";
    for (size_t i = 0; i < n; ++i) {
      std::string m = "/messages/" + std::to_string(i);
      out.push_back(pop.String(m + "/transactionId").value_or(""));
      if (i) acks += ",";
      acks += "{\"transactionId\":" + JsonQuote(out.back()) +
              ",\"partitionId\":" + JsonQuote(pop.String(m + "/partitionId").value_or("")) +
              ",\"leaseId\":" + JsonQuote(pop.String(m + "/leaseId").value_or("")) +
              ",\"status\":\"completed\"}";
    }
    HttpResponse a = http.Post("/api/v1/ack/batch", acks + "]}");
    EXPECT_EQ(a.status, 200) << a.Describe();
  }
  return out;
}

TEST(BrokerDurabilityTest, QueuedPushesSurviveKill9) {
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start());
  const std::string q = UniqueName("durable");
  {
    HttpClient http(broker.port());
    for (int batch = 0; batch < 5; ++batch) {
      HttpResponse r = http.Post("/api/v1/push", PushBody(q, batch * 100, 100));
      ASSERT_EQ(r.status, 200) << r.Describe();
      JsonDoc doc(r.body);
      ASSERT_EQ(doc.Size(""), 100u) << r.body.substr(0, 500);
      for (size_t i = 0; i < 100; ++i) {
        ASSERT_EQ(doc.String(Indexed("/", static_cast<int64_t>(i), "/status")), "queued") << i;
      }
    }
  }
  broker.Kill9();
  ASSERT_TRUE(broker.Restart());

  HttpClient http(broker.port());
  std::vector<std::string> got = DrainQueue(http, q);
  ASSERT_EQ(got.size(), 500u);
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(got[i], "d" + std::to_string(i)) << "position " << i;
    if (HasFailure()) break;
  }
}

TEST(BrokerDurabilityTest, LeasedButUnackedMessagesAreDeliveredAgainAfterKill9) {
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start());
  const std::string q = UniqueName("leased");
  {
    HttpClient http(broker.port());
    ASSERT_EQ(http.Post("/api/v1/configure", "{\"queue\":" + JsonQuote(q) +
                                                  ",\"options\":{\"leaseTime\":1}}").status,
              200);
    ASSERT_EQ(http.Post("/api/v1/push", PushBody(q, 0, 3)).status, 200);
    HttpResponse pop = http.Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=3");
    ASSERT_EQ(JsonDoc(pop.body).Size("/messages"), 3u) << pop.body;
  }
  broker.Kill9();
  ASSERT_TRUE(broker.Restart());
  HttpClient http(broker.port());
  // After the (1 s) lease runs out, the three come back in order.
  HttpResponse r = http.Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=10&wait=true&timeout=5000");
  ASSERT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  ASSERT_EQ(doc.Size("/messages"), 3u) << r.body;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(doc.String("/messages/" + std::to_string(i) + "/transactionId"),
              "d" + std::to_string(i));
  }
}

TEST(BrokerShutdownTest, SigtermAnswersParkedLongPollAndExitsZero) {
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start());
  const std::string q = UniqueName("parked");
  const uint16_t port = broker.port();
  HttpClient a(port, 20s);
  ASSERT_TRUE(StartGetAfterProbe(a, "/api/v1/pop/queue/" + UrlEncode(q) +
                                        "?wait=true&timeout=30000"));
  auto waiter = std::async(std::launch::async, [&] { return a.ReadResponse(); });
  std::this_thread::sleep_for(200ms);  // let the poll park
  ASSERT_NE(waiter.wait_for(0ms), std::future_status::ready) << "the long poll did not park";

  auto start = SteadyClock::now();
  broker.Signal(SIGTERM);
  ASSERT_EQ(waiter.wait_for(10s), std::future_status::ready)
      << "parked long poll not answered on SIGTERM";
  HttpResponse r = waiter.get();
  EXPECT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  EXPECT_TRUE(doc.ok()) << doc.error();
  EXPECT_EQ(doc.Size("/messages"), 0u) << r.body;

  std::optional<int> status = broker.WaitExit(10s);
  ASSERT_TRUE(status.has_value()) << "ordo still running 10 s after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status)) << "wait status " << *status;
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  EXPECT_LT(SteadyClock::now() - start, 10s);
}

TEST(BrokerShutdownTest, DataKeptAcrossGracefulRestart) {
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start());
  const std::string q = UniqueName("graceful");
  {
    HttpClient http(broker.port());
    ASSERT_EQ(http.Post("/api/v1/push", PushBody(q, 0, 10)).status, 200);
    // Two of them completed before the restart.
    HttpResponse pop = http.Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=2");
    JsonDoc doc(pop.body);
    ASSERT_EQ(doc.Size("/messages"), 2u) << pop.body;
    std::string acks = "{\"acknowledgments\":[";
    for (int i = 0; i < 2; ++i) {
      std::string m = "/messages/" + std::to_string(i);
      if (i) acks += ",";
      acks += "{\"transactionId\":" + JsonQuote(doc.String(m + "/transactionId").value_or("")) +
              ",\"partitionId\":" + JsonQuote(doc.String(m + "/partitionId").value_or("")) +
              ",\"leaseId\":" + JsonQuote(doc.String(m + "/leaseId").value_or("")) +
              ",\"status\":\"completed\"}";
    }
    ASSERT_EQ(http.Post("/api/v1/ack/batch", acks + "]}").status, 200);
  }
  int status = broker.Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  ASSERT_TRUE(broker.Start());
  HttpClient http(broker.port());
  std::vector<std::string> got = DrainQueue(http, q);
  ASSERT_EQ(got.size(), 8u);
  EXPECT_EQ(got.front(), "d2");
  EXPECT_EQ(got.back(), "d9");
}

}  // namespace
}  // namespace ordo::integration
