// GET /api/v1/pop?namespace=&task=: a pop across every queue of a namespace and/or task, higher
// priority first, rotating among equal priorities, with long polls woken by any of the queues.
#include <future>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

class BrokerPopAnyTest : public BrokerTest {
 protected:
  void Configure(const std::string& queue, const std::string& ns, const std::string& task,
                 int priority) {
    HttpResponse r = http().Post(
        "/api/v1/configure", "{\"queue\":" + JsonQuote(queue) + ",\"namespace\":" + JsonQuote(ns) +
                                 ",\"task\":" + JsonQuote(task) +
                                 ",\"options\":{\"priority\":" + std::to_string(priority) + "}}");
    ASSERT_EQ(r.status, 200) << r.Describe();
  }
  JsonDoc PopAny(const std::string& query) {
    HttpResponse r = http().Get("/api/v1/pop?" + query);
    EXPECT_EQ(r.status, 200) << r.Describe();
    return JsonDoc(r.body);
  }
};

TEST_F(BrokerPopAnyTest, HigherPriorityQueuesFirstAndTheAnswerNamesTheQueue) {
  const std::string ns = UniqueName("ns");
  const std::string high = UniqueName("high"), low = UniqueName("low"), other = UniqueName("other");
  Configure(high, ns, "t1", 5);
  Configure(low, ns, "t1", 1);
  Configure(other, UniqueName("elsewhere"), "t1", 9);  // another namespace: never popped here
  PushOne(low, "{\"n\":\"low\"}");
  PushOne(other, "{\"n\":\"other\"}");
  PushOne(high, "{\"n\":\"high\"}");

  JsonDoc first = PopAny("namespace=" + UrlEncode(ns) + "&autoAck=true");
  ASSERT_EQ(first.Size("/messages"), 1u) << first.text();
  EXPECT_EQ(first.String("/queue"), high) << first.text();
  EXPECT_EQ(first.String("/messages/0/queue"), high);
  EXPECT_EQ(RawJsonAt(first.text(), "/messages/0/data"), "{\"n\":\"high\"}");

  JsonDoc second = PopAny("namespace=" + UrlEncode(ns) + "&autoAck=true");
  ASSERT_EQ(second.Size("/messages"), 1u) << second.text();
  EXPECT_EQ(second.String("/messages/0/queue"), low);

  JsonDoc none = PopAny("namespace=" + UrlEncode(ns));
  EXPECT_EQ(none.Bool("/success"), false) << none.text();
  EXPECT_EQ(none.String("/error"), "no_available_partition");
}

TEST_F(BrokerPopAnyTest, TaskFilterAndBothFilters) {
  const std::string ns = UniqueName("ns");
  const std::string task = UniqueName("task");
  const std::string a = UniqueName("a"), b = UniqueName("b");
  Configure(a, ns, task, 0);
  Configure(b, ns, "another-task", 0);
  PushOne(a, "1");
  PushOne(b, "2");
  JsonDoc by_task = PopAny("task=" + UrlEncode(task) + "&batch=10&autoAck=true");
  ASSERT_EQ(by_task.Size("/messages"), 1u) << by_task.text();
  EXPECT_EQ(by_task.String("/messages/0/queue"), a);
  JsonDoc both = PopAny("namespace=" + UrlEncode(ns) + "&task=another-task&batch=10");
  ASSERT_EQ(both.Size("/messages"), 1u) << both.text();
  EXPECT_EQ(both.String("/messages/0/queue"), b);
  EXPECT_TRUE(LooksLikeUuid(both.String("/leaseId").value_or(""))) << both.text();
  // The lease of a namespace pop is acked like any other.
  JsonDoc acked = Ack(both, 0);
  EXPECT_EQ(acked.Bool("/0/success"), true) << acked.text();
}

TEST_F(BrokerPopAnyTest, EqualPrioritiesTakeTurns) {
  const std::string ns = UniqueName("ns");
  const std::string a = UniqueName("a"), b = UniqueName("b");
  Configure(a, ns, "t", 3);
  Configure(b, ns, "t", 3);
  for (int i = 0; i < 4; ++i) {
    PushOne(a, std::to_string(i));
    PushOne(b, std::to_string(i));
  }
  std::map<std::string, int> served;
  for (int i = 0; i < 4; ++i) {
    JsonDoc d = PopAny("namespace=" + UrlEncode(ns) + "&autoAck=true");
    ASSERT_EQ(d.Size("/messages"), 1u) << d.text();
    ++served[d.String("/messages/0/queue").value_or("")];
  }
  EXPECT_EQ(served[a], 2);
  EXPECT_EQ(served[b], 2);
}

TEST_F(BrokerPopAnyTest, LongPollIsWokenByAPushToAnyMatchingQueue) {
  const std::string ns = UniqueName("ns");
  const std::string a = UniqueName("a"), b = UniqueName("b");
  Configure(a, ns, "t", 0);
  Configure(b, ns, "t", 0);
  HttpClient waiter_client(port());
  ASSERT_TRUE(StartGetAfterProbe(
      waiter_client, "/api/v1/pop?namespace=" + UrlEncode(ns) + "&wait=true&timeout=10000"));
  auto waiter = std::async(std::launch::async, [&] { return waiter_client.ReadResponse(); });
  ASSERT_EQ(waiter.wait_for(300ms), std::future_status::timeout) << "the long poll did not wait";
  PushOne(b, "{\"woke\":true}");
  ASSERT_EQ(waiter.wait_for(5s), std::future_status::ready) << "long poll not woken";
  HttpResponse r = waiter.get();
  ASSERT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  ASSERT_EQ(doc.Size("/messages"), 1u) << r.body;
  EXPECT_EQ(doc.String("/messages/0/queue"), b);
}

TEST_F(BrokerPopAnyTest, ALongPollWithNoMatchingQueueTimesOut) {
  HttpResponse r = http().Get("/api/v1/pop?namespace=" + UrlEncode(UniqueName("none")) +
                              "&wait=true&timeout=300");
  ASSERT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  EXPECT_EQ(doc.Bool("/success"), true) << r.body;
  EXPECT_EQ(doc.Size("/messages"), 0u);
}

TEST_F(BrokerPopAnyTest, NamespaceOrTaskIsRequired) {
  EXPECT_TRUE(IsJsonError(http().Get("/api/v1/pop"), 400));
  EXPECT_TRUE(IsJsonError(http().Get("/api/v1/pop?batch=2"), 400));
  EXPECT_TRUE(IsJsonError(http().Get("/api/v1/pop?namespace=x&batch=zero"), 400));
}

}  // namespace
}  // namespace ordo::integration

namespace ordo::integration {
namespace {

// Queue-level delayed processing and window buffer over HTTP, with real time: a long poll gets
// the message once the rule lets go, without a push to wake it.
TEST_F(BrokerPopAnyTest, DelayedProcessingDeliversToAWaitingPollWhenDue) {
  const std::string q = UniqueName("delayed");
  HttpResponse c = http().Post("/api/v1/configure", "{\"queue\":" + JsonQuote(q) +
                                                        ",\"options\":{\"delayedProcessing\":1}}");
  ASSERT_EQ(c.status, 200) << c.Describe();
  auto pushed_at = SteadyClock::now();
  PushOne(q, "{\"late\":true}");
  JsonDoc now = Pop(q);
  EXPECT_EQ(now.Size("/messages"), 0u) << "delivered before its delay: " << now.text();
  JsonDoc later = Pop(q, "wait=true&timeout=5000");
  ASSERT_EQ(later.Size("/messages"), 1u) << later.text();
  EXPECT_GE(SteadyClock::now() - pushed_at, 900ms);
}

TEST_F(BrokerPopAnyTest, WindowBufferAnswersWindowBufferActiveThenDeliversTheBurst) {
  const std::string q = UniqueName("window");
  HttpResponse c = http().Post("/api/v1/configure",
                               "{\"queue\":" + JsonQuote(q) + ",\"options\":{\"windowBuffer\":1}}");
  ASSERT_EQ(c.status, 200) << c.Describe();
  PushOne(q, "1", "", "P");
  PushOne(q, "2", "", "P");
  JsonDoc held = PopPartition(q, "P");
  EXPECT_EQ(held.Size("/messages"), 0u) << held.text();
  EXPECT_EQ(held.Bool("/windowBufferActive"), true) << held.text();
  JsonDoc burst = Pop(q, "batch=10&wait=true&timeout=5000");
  ASSERT_EQ(burst.Size("/messages"), 2u) << burst.text();
}

}  // namespace
}  // namespace ordo::integration

namespace ordo::integration {
namespace {

// A namespace long poll that matches no queue parks on its timer only; it must leave the parked
// count as it found it, or --max-waiters would turn later long polls away.
TEST(BrokerPopAnyLimitsTest, PollsMatchingNoQueueDoNotUseUpMaxWaiters) {
  BrokerProcess b({"--max-waiters", "2"});
  ASSERT_TRUE(b.Start());
  HttpClient http(b.port());
  for (int i = 0; i < 4; ++i) {
    HttpResponse r = http.Get("/api/v1/pop?namespace=" + UrlEncode(UniqueName("none")) +
                              "&wait=true&timeout=200");
    ASSERT_EQ(r.status, 200) << "poll " << i << ": " << r.Describe();
  }
  const std::string q = UniqueName("q");
  HttpResponse r = http.Get("/api/v1/pop/queue/" + UrlEncode(q) + "?wait=true&timeout=200");
  EXPECT_EQ(r.status, 200) << r.Describe();
}

}  // namespace
}  // namespace ordo::integration
