// Two brokers on one database: a transaction committed on one broker wakes long polls parked on
// the other, both for the messages it pushed and for the leases its acks released (the NOTIFY
// that push and ack send, sent by the transaction too).
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

class TwoBrokersTransactionTest : public PgTest {
 protected:
  // B's safety re-check is pushed out to 30 s, so only a NOTIFY from A can wake its polls in time.
  void StartBoth() {
    ASSERT_TRUE(a_.Start());
    ASSERT_TRUE(b_.Start());
  }

  // Parks a long poll on broker B; read its answer with the returned future.
  std::future<HttpResponse> ParkOnB(HttpClient& poller, const std::string& queue) {
    EXPECT_TRUE(StartGetAfterProbe(
        poller, "/api/v1/pop/queue/" + UrlEncode(queue) + "?wait=true&timeout=10000"));
    auto waiter = std::async(std::launch::async, [&poller] { return poller.ReadResponse(); });
    // Nothing outside the broker shows that the poll has parked; give it that long, as the
    // push wake-up test does.
    std::this_thread::sleep_for(300ms);
    EXPECT_NE(waiter.wait_for(0ms), std::future_status::ready) << "the long poll did not wait";
    return waiter;
  }

  BrokerProcess a_;
  BrokerProcess b_{{"--long-poll-recheck", "30000"}};
};

TEST_F(TwoBrokersTransactionTest, PushInATransactionOnAWakesALongPollOnB) {
  StartBoth();
  const std::string q = UniqueName("txwake");
  HttpClient poller(b_.port(), 15s);
  auto waiter = ParkOnB(poller, q);

  HttpClient client(a_.port());
  HttpResponse r =
      client.Post("/api/v1/transaction", "{\"operations\":[{\"type\":\"push\",\"items\":[" +
                                             PushItem(q, "p1", "tx-wake", "{\"w\":1}") + "]}]}");
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_EQ(waiter.wait_for(5s), std::future_status::ready)
      << "the long poll on broker B was not woken by the transaction on broker A";
  HttpResponse got = waiter.get();
  ASSERT_EQ(got.status, 200) << got.Describe();
  std::vector<Delivery> d = Deliveries(JsonDoc(got.body));
  ASSERT_EQ(d.size(), 1u) << got.body;
  EXPECT_EQ(d[0].transaction_id, "tx-wake");
}

TEST_F(TwoBrokersTransactionTest, LeaseReleasedByATransactionOnAWakesALongPollOnB) {
  StartBoth();
  const std::string q = UniqueName("txlease");
  HttpClient client(a_.port());
  ASSERT_EQ(PushItems(client, {PushItem(q, "p1", "held", "{\"h\":1}")}).status, 200);
  HttpResponse pop = client.Get("/api/v1/pop/queue/" + UrlEncode(q));
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  std::vector<Delivery> leased = Deliveries(JsonDoc(pop.body));
  ASSERT_EQ(leased.size(), 1u) << pop.body;

  // The only partition is leased: B's poll parks until the lease ends.
  HttpClient poller(b_.port(), 15s);
  auto waiter = ParkOnB(poller, q);

  HttpResponse r =
      client.Post("/api/v1/transaction",
                  "{\"operations\":[{\"type\":\"ack\",\"transactionId\":\"held\",\"partitionId\":" +
                      JsonQuote(leased[0].partition_id) +
                      ",\"leaseId\":" + JsonQuote(leased[0].lease_id) + ",\"status\":\"retry\"}]}");
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_EQ(waiter.wait_for(5s), std::future_status::ready)
      << "the long poll on broker B was not woken by the lease the transaction released";
  HttpResponse got = waiter.get();
  ASSERT_EQ(got.status, 200) << got.Describe();
  std::vector<Delivery> d = Deliveries(JsonDoc(got.body));
  ASSERT_EQ(d.size(), 1u) << got.body;
  EXPECT_EQ(d[0].transaction_id, "held");
}

}  // namespace
}  // namespace ordo::pg_test
