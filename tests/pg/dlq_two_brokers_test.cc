// Two brokers on one database: a dead-letter requeue on one broker wakes a long poll parked on
// the other (the requeue announces its queues through NOTIFY, as a push does).
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

using integration::BrokerProcess;
using integration::JsonQuote;
using integration::StartGetAfterProbe;
using integration::UniqueName;
using integration::UrlEncode;

class DlqTwoBrokersTest : public PgTest {};

TEST_F(DlqTwoBrokersTest, RequeueOnOneBrokerWakesALongPollOnTheOther) {
  // B's safety re-check is pushed out to 30 s: only the NOTIFY from A's requeue can wake it.
  BrokerProcess a, b({"--long-poll-recheck", "30000"});
  ASSERT_TRUE(a.Start());
  ASSERT_TRUE(b.Start());
  const std::string q = UniqueName("requeue-wake");

  HttpClient on_a(a.port());
  HttpResponse push = PushItems(on_a, {PushItem(q, "p", "poison-1", "{\"n\":1}")});
  ASSERT_EQ(push.status, 200) << push.Describe();
  HttpResponse pop = on_a.Get("/api/v1/pop/queue/" + UrlEncode(q));
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  std::vector<Delivery> got = Deliveries(JsonDoc(pop.body));
  ASSERT_EQ(got.size(), 1u) << pop.body;
  HttpResponse ack = on_a.Post(
      "/api/v1/ack",
      "{\"transactionId\":\"poison-1\",\"partitionId\":" + JsonQuote(got[0].partition_id) +
          ",\"leaseId\":" + JsonQuote(got[0].lease_id) + ",\"status\":\"dlq\"}");
  ASSERT_EQ(ack.status, 200) << ack.Describe();

  HttpClient poller(b.port(), 15s);
  ASSERT_TRUE(
      StartGetAfterProbe(poller, "/api/v1/pop/queue/" + UrlEncode(q) + "?wait=true&timeout=10000"));
  auto waiter = std::async(std::launch::async, [&] { return poller.ReadResponse(); });
  // Nothing outside the broker shows that the poll has parked; give it that long, as the other
  // long-poll tests do.
  std::this_thread::sleep_for(300ms);
  ASSERT_NE(waiter.wait_for(0ms), std::future_status::ready) << "the long poll did not wait";

  HttpResponse requeue = on_a.Post("/api/v1/dlq/requeue", "{\"queue\":" + JsonQuote(q) + "}");
  ASSERT_EQ(requeue.status, 200) << requeue.Describe();
  EXPECT_EQ(JsonDoc(requeue.body).Int("/requeued"), 1) << requeue.body;

  ASSERT_EQ(waiter.wait_for(2s), std::future_status::ready)
      << "the long poll on broker B was not woken by the requeue on broker A";
  HttpResponse r = waiter.get();
  ASSERT_EQ(r.status, 200) << r.Describe();
  std::vector<Delivery> again = Deliveries(JsonDoc(r.body));
  ASSERT_EQ(again.size(), 1u) << r.body;
  EXPECT_EQ(again[0].data, "{\"n\":1}");
}

}  // namespace
}  // namespace ordo::pg_test
