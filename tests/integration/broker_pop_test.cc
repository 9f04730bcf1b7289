// GET /api/v1/pop/queue/:queue[/partition/:partition]: every answer shape of http-api.md, long
// polls (time-out shape, wake-up by a push), autoAck.
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

class BrokerPopTest : public BrokerTest {
 protected:
  // Creates the queue (and its Default partition) without messages.
  void Configure(const std::string& q) {
    HttpResponse r = http().Post("/api/v1/configure", "{\"queue\":" + JsonQuote(q) + "}");
    ASSERT_EQ(r.status, 200) << r.Describe();
  }
};

TEST_F(BrokerPopTest, AnswerWithMessagesHasEveryField) {
  const std::string q = UniqueName("shape");
  std::string id = PushOne(q, "{\"k\":\"v\"}", "tx-shape");
  JsonDoc pop = Pop(q);
  ASSERT_TRUE(pop.ok()) << pop.error();
  EXPECT_EQ(pop.Bool("/success"), true);
  EXPECT_EQ(pop.String("/queue"), q);
  EXPECT_EQ(pop.String("/partition"), "Default");
  std::string partition_id = pop.String("/partitionId").value_or("");
  std::string lease = pop.String("/leaseId").value_or("");
  EXPECT_TRUE(LooksLikeUuid(partition_id)) << pop.text();
  EXPECT_TRUE(LooksLikeUuid(lease)) << pop.text();
  EXPECT_EQ(pop.String("/consumerGroup"), "__QUEUE_MODE__");
  EXPECT_EQ(pop.Int("/partitionsClaimed"), 1);
  ASSERT_EQ(pop.Size("/messages"), 1u) << pop.text();
  EXPECT_EQ(pop.String("/messages/0/id"), id);
  EXPECT_EQ(pop.String("/messages/0/transactionId"), "tx-shape");
  EXPECT_TRUE(pop.IsNull("/messages/0/traceId")) << pop.text();
  EXPECT_EQ(pop.Minified("/messages/0/data"), "{\"k\":\"v\"}");
  EXPECT_TRUE(pop.IsNull("/messages/0/producerSub")) << pop.text();
  std::string created = pop.String("/messages/0/createdAt").value_or("");
  EXPECT_TRUE(LooksLikeTimestamp(created)) << created;
  auto created_s = ParseTimestamp(created);
  double now_s =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  ASSERT_TRUE(created_s.has_value());
  EXPECT_NEAR(*created_s, now_s, 60.0) << "createdAt is not the push time: " << created;
  EXPECT_EQ(pop.String("/messages/0/partitionId"), partition_id);
  EXPECT_EQ(pop.String("/messages/0/partition"), "Default");
  EXPECT_EQ(pop.String("/messages/0/leaseId"), lease);
  EXPECT_EQ(pop.String("/messages/0/consumerGroup"), "__QUEUE_MODE__");
  EXPECT_EQ(pop.Int("/messages/0/retryCount"), 0);
}

TEST_F(BrokerPopTest, BatchDeliversInPushOrderAndLeaseHidesThem) {
  const std::string q = UniqueName("batch");
  std::string items = "[";
  for (int i = 0; i < 7; ++i) {
    if (i) items += ",";
    items += "{\"queue\":" + JsonQuote(q) + ",\"payload\":" + std::to_string(i) + "}";
  }
  Push(items + "]");
  JsonDoc first = Pop(q, "batch=5");
  ASSERT_EQ(first.Size("/messages"), 5u) << first.text();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(first.Minified("/messages/" + std::to_string(i) + "/data"), std::to_string(i));
  }
  // The only partition is leased: nothing for another consumer until the batch is acked.
  JsonDoc blocked = Pop(q, "batch=5");
  EXPECT_EQ(blocked.Size("/messages"), 0u) << blocked.text();
  AckAll(first);
  JsonDoc rest = Pop(q, "batch=5");
  ASSERT_EQ(rest.Size("/messages"), 2u) << rest.text();
  EXPECT_EQ(rest.Minified("/messages/0/data"), "5");
  EXPECT_EQ(rest.Minified("/messages/1/data"), "6");
}

TEST_F(BrokerPopTest, WildcardWithNothingAnswersNoAvailablePartition) {
  const std::string q = UniqueName("empty");
  Configure(q);
  for (const std::string& queue : {q, UniqueName("missing")}) {
    HttpResponse r = http().Get("/api/v1/pop/queue/" + UrlEncode(queue));
    ASSERT_EQ(r.status, 200) << r.Describe();
    ASSERT_TRUE(IsJsonAnswer(r));
    JsonDoc doc(r.body);
    EXPECT_EQ(doc.Bool("/success"), false) << r.body;
    EXPECT_EQ(doc.String("/error"), "no_available_partition") << r.body;
    EXPECT_EQ(doc.Size("/messages"), 0u) << r.body;
  }
}

TEST_F(BrokerPopTest, NamedMissingPartitionAnswersPartitionNotFound) {
  const std::string q = UniqueName("named");
  PushOne(q, "{}");
  for (const std::string& target :
       {"/api/v1/pop/queue/" + UrlEncode(q) + "/partition/nope",
        "/api/v1/pop/queue/" + UrlEncode(UniqueName("missing")) + "/partition/Default"}) {
    HttpResponse r = http().Get(target);
    ASSERT_EQ(r.status, 200) << r.Describe();
    ASSERT_TRUE(IsJsonAnswer(r));
    JsonDoc doc(r.body);
    EXPECT_EQ(doc.Bool("/success"), false) << target << " -> " << r.body;
    EXPECT_EQ(doc.String("/error"), "partition_not_found") << target << " -> " << r.body;
    EXPECT_EQ(doc.Size("/messages"), 0u) << r.body;
  }
}

TEST_F(BrokerPopTest, NamedLeasedPartitionAnswersLeaseHeld) {
  const std::string q = UniqueName("held");
  PushOne(q, "1", "", "p");
  PushOne(q, "2", "", "p");
  JsonDoc first = PopPartition(q, "p");
  ASSERT_EQ(first.Size("/messages"), 1u) << first.text();

  HttpClient other(port());
  HttpResponse r = other.Get("/api/v1/pop/queue/" + UrlEncode(q) + "/partition/p");
  ASSERT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  EXPECT_EQ(doc.Bool("/success"), false) << r.body;
  EXPECT_EQ(doc.String("/error"), "lease_held") << r.body;
  EXPECT_EQ(doc.Size("/messages"), 0u) << r.body;

  // A wildcard pop finds no eligible partition either.
  HttpResponse w = other.Get("/api/v1/pop/queue/" + UrlEncode(q));
  EXPECT_EQ(JsonDoc(w.body).String("/error"), "no_available_partition") << w.body;
}

TEST_F(BrokerPopTest, NamedEmptyPartitionAnswersSuccessWithNoMessages) {
  const std::string q = UniqueName("drained");
  PushOne(q, "{}", "", "p");
  JsonDoc first = PopPartition(q, "p");
  ASSERT_EQ(first.Size("/messages"), 1u);
  AckAll(first);
  JsonDoc doc = PopPartition(q, "p");
  EXPECT_EQ(doc.Bool("/success"), true) << doc.text();
  EXPECT_EQ(doc.String("/queue"), q) << doc.text();
  EXPECT_FALSE(doc.Has("/error") && !doc.IsNull("/error")) << doc.text();
  EXPECT_EQ(doc.Size("/messages"), 0u) << doc.text();
}

TEST_F(BrokerPopTest, LongPollTimeoutShape) {
  const std::string q = UniqueName("timeout");
  Configure(q);
  for (const std::string& queue : {q, UniqueName("absent")}) {
    auto start = SteadyClock::now();
    HttpResponse r = http().Get("/api/v1/pop/queue/" + UrlEncode(queue) + "?wait=true&timeout=300");
    auto elapsed = SteadyClock::now() - start;
    ASSERT_EQ(r.status, 200) << r.Describe();
    ASSERT_TRUE(IsJsonAnswer(r));
    EXPECT_GE(elapsed, 250ms) << "the long poll did not wait for its timeout";
    EXPECT_LT(elapsed, 5s);
    JsonDoc doc(r.body);
    EXPECT_EQ(doc.Bool("/success"), true) << r.body;
    EXPECT_EQ(doc.String("/queue"), queue) << r.body;
    EXPECT_EQ(doc.String("/partition"), "") << r.body;
    EXPECT_TRUE(doc.IsNull("/partitionId")) << r.body;
    EXPECT_TRUE(doc.IsNull("/leaseId")) << r.body;
    EXPECT_EQ(doc.String("/consumerGroup"), "__QUEUE_MODE__") << r.body;
    EXPECT_EQ(doc.Size("/messages"), 0u) << r.body;
  }
}

// A correctness check of the wake-up path (not a performance target): the push itself wakes the
// parked poll, long before its 10 s timeout.
TEST_F(BrokerPopTest, LongPollWokenByPush) {
  const std::string q = UniqueName("wake");
  auto start = SteadyClock::now();
  HttpClient a(port());
  ASSERT_TRUE(
      StartGetAfterProbe(a, "/api/v1/pop/queue/" + UrlEncode(q) + "?wait=true&timeout=10000"));
  auto waiter = std::async(std::launch::async, [&] { return a.ReadResponse(); });
  std::this_thread::sleep_for(300ms);
  ASSERT_NE(waiter.wait_for(0ms), std::future_status::ready) << "the long poll did not wait";
  HttpClient b(port());
  HttpResponse push = b.Post(
      "/api/v1/push", "{\"items\":[{\"queue\":" + JsonQuote(q) + ",\"payload\":{\"woke\":true}}]}");
  ASSERT_EQ(push.status, 200) << push.Describe();
  ASSERT_EQ(waiter.wait_for(5s), std::future_status::ready) << "long poll not woken";
  HttpResponse r = waiter.get();
  auto elapsed = SteadyClock::now() - start;
  ASSERT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  ASSERT_EQ(doc.Size("/messages"), 1u) << r.body;
  EXPECT_EQ(doc.Minified("/messages/0/data"), "{\"woke\":true}");
  EXPECT_TRUE(LooksLikeUuid(doc.String("/leaseId").value_or(""))) << r.body;
  EXPECT_LT(elapsed, 3s);
}

// A long poll parks without asking the store while this broker knows nothing is deliverable
// (Broker::SkipPop). A lease taken since that knowledge is a timed event it must count: a poll
// parked right after another took the only message gets it back when that lease runs out.
TEST_F(BrokerPopTest, LongPollRightAfterAnotherTookTheMessageGetsItWhenTheLeaseExpires) {
  const std::string q = UniqueName("expiry");
  HttpResponse cfg = http().Post("/api/v1/configure",
                                 "{\"queue\":" + JsonQuote(q) + ",\"options\":{\"leaseTime\":1}}");
  ASSERT_EQ(cfg.status, 200) << cfg.Describe();
  JsonDoc none = Pop(q, "wait=true&timeout=100");  // the broker learns the queue is empty
  ASSERT_EQ(none.Size("/messages").value_or(1), 0u) << none.Minified("");
  PushOne(q, "{\"n\":1}");
  JsonDoc taken = Pop(q, "wait=true&timeout=2000");  // taken under a 1 s lease, never acked
  ASSERT_EQ(taken.Size("/messages"), 1u) << taken.Minified("");
  auto start = SteadyClock::now();
  JsonDoc again = Pop(q, "wait=true&timeout=8000");
  ASSERT_EQ(again.Size("/messages"), 1u) << "not redelivered when the lease expired";
  EXPECT_EQ(again.String("/messages/0/transactionId"), taken.String("/messages/0/transactionId"));
  EXPECT_LT(SteadyClock::now() - start, 5s);
}

// A consumer that gave up (closed its connection) while parked must not take the next message:
// it would sit under a lease nobody holds until the lease expires.
TEST_F(BrokerPopTest, LongPollOfADisconnectedClientTakesNothing) {
  const std::string q = UniqueName("gone");
  {
    HttpClient quitter(port());
    ASSERT_TRUE(StartGetAfterProbe(
        quitter, "/api/v1/pop/queue/" + UrlEncode(q) + "?wait=true&timeout=20000"));
    std::this_thread::sleep_for(300ms);  // parked
    quitter.Close();
  }
  std::this_thread::sleep_for(200ms);  // the broker sees the close
  HttpResponse push = http().Post(
      "/api/v1/push", "{\"items\":[{\"queue\":" + JsonQuote(q) + ",\"payload\":{\"n\":1}}]}");
  ASSERT_EQ(push.status, 200) << push.Describe();
  std::this_thread::sleep_for(300ms);  // the abandoned poll, if still alive, would pop now
  HttpResponse r = http().Get("/api/v1/pop/queue/" + UrlEncode(q) + "?wait=true&timeout=2000");
  ASSERT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  ASSERT_EQ(doc.Size("/messages"), 1u) << "the message went to the disconnected poll: " << r.body;
  EXPECT_EQ(doc.Minified("/messages/0/data"), "{\"n\":1}");
}

TEST_F(BrokerPopTest, LongPollOnNamedPartitionWokenByPushToThatPartition) {
  const std::string q = UniqueName("wakep");
  PushOne(q, "0", "", "mine");
  AckAll(PopPartition(q, "mine"));  // "mine" exists and is empty
  auto start = SteadyClock::now();
  HttpClient a(port());
  ASSERT_TRUE(StartGetAfterProbe(
      a, "/api/v1/pop/queue/" + UrlEncode(q) + "/partition/mine?wait=true&timeout=10000"));
  auto waiter = std::async(std::launch::async, [&] { return a.ReadResponse(); });
  std::this_thread::sleep_for(300ms);
  PushOne(q, "\"elsewhere\"", "", "other");  // must not satisfy a poll on "mine"
  std::this_thread::sleep_for(200ms);
  PushOne(q, "\"here\"", "", "mine");
  ASSERT_EQ(waiter.wait_for(5s), std::future_status::ready) << "long poll not woken";
  HttpResponse r = waiter.get();
  auto elapsed = SteadyClock::now() - start;
  ASSERT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  ASSERT_EQ(doc.Size("/messages"), 1u) << r.body;
  EXPECT_EQ(doc.Minified("/messages/0/data"), "\"here\"") << r.body;
  EXPECT_EQ(doc.String("/partition"), "mine") << r.body;
  EXPECT_LT(elapsed, 3s);
}

TEST_F(BrokerPopTest, LongPollOfAConsumerGroupWokenByPush) {
  const std::string q = UniqueName("wakeg");
  HttpClient a(port());
  ASSERT_TRUE(StartGetAfterProbe(
      a, "/api/v1/pop/queue/" + UrlEncode(q) + "?wait=true&timeout=10000&consumerGroup=g1"));
  auto waiter = std::async(std::launch::async, [&] { return a.ReadResponse(); });
  std::this_thread::sleep_for(300ms);
  PushOne(q, "{\"for\":\"g1\"}");
  ASSERT_EQ(waiter.wait_for(5s), std::future_status::ready) << "long poll not woken";
  HttpResponse r = waiter.get();
  ASSERT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  ASSERT_EQ(doc.Size("/messages"), 1u) << r.body;
  EXPECT_EQ(doc.String("/consumerGroup"), "g1") << r.body;
}

// Query strings: percent-decoding and exact key match (`xbatch` is not `batch`).
TEST_F(BrokerPopTest, QueryStringIsPercentDecodedWithExactKeys) {
  const std::string q = UniqueName("query");
  for (int i = 0; i < 3; ++i) PushOne(q, std::to_string(i));
  JsonDoc pop = Pop(q, "xbatch=3&batch=2&batchx=1&consumerGroup=team%20a%2Fb");
  EXPECT_EQ(pop.Size("/messages"), 2u) << pop.text();
  EXPECT_EQ(pop.String("/consumerGroup"), "team a/b") << pop.text();
  EXPECT_EQ(pop.String("/messages/0/consumerGroup"), "team a/b") << pop.text();
}

TEST_F(BrokerPopTest, AutoAckHasEmptyLeaseAndIsNotRedelivered) {
  const std::string q = UniqueName("autoack");
  PushOne(q, "{\"once\":1}");
  JsonDoc pop = Pop(q, "autoAck=true");
  ASSERT_EQ(pop.Size("/messages"), 1u) << pop.text();
  EXPECT_EQ(pop.String("/leaseId"), "") << pop.text();
  JsonDoc again = Pop(q);
  EXPECT_EQ(again.Size("/messages"), 0u) << again.text();
}

}  // namespace
}  // namespace ordo::integration
