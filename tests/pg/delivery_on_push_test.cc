// Delivery on push (Broker::ReserveForPush, PgStore's claims): a push to a partition for which a
// long poll is parked runs that poll's pop in the push's own transaction, and the poll is
// answered with the push's commit. The status route counts what the claims did
// (longPolls.deliveredOnPush, longPolls.claimsDeclined), which is how these tests tell the claim
// from the wake-and-pop path that gives the same answer. PostgreSQL only: the SQLite engine's pop
// is an in-process call and it runs no claim.
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

using integration::BrokerProcess;
using integration::Indexed;
using integration::StartGetAfterProbe;
using integration::UniqueName;
using integration::UrlEncode;

class DeliveryOnPushTest : public PgTest {
 protected:
  struct Counts {
    int64_t parked = -1;
    int64_t delivered = -1;
    int64_t declined = -1;
  };
  static Counts Read(HttpClient& http) {
    HttpResponse r = http.Get("/api/v1/status");
    EXPECT_EQ(r.status, 200) << r.Describe();
    JsonDoc doc(r.body);
    return {doc.Int("/longPolls/parked").value_or(-1),
            doc.Int("/longPolls/deliveredOnPush").value_or(-1),
            doc.Int("/longPolls/claimsDeclined").value_or(-1)};
  }

  // A long poll of `target`'s query on its own connection; the future holds its answer.
  static std::future<HttpResponse> Park(HttpClient& client, const std::string& target) {
    EXPECT_TRUE(StartGetAfterProbe(client, target));
    return std::async(std::launch::async, [&client] { return client.ReadResponse(); });
  }

  // Waits until `n` long polls are parked (their first attempt found nothing).
  static bool ParkedAtLeast(HttpClient& http, int64_t n) {
    return PollUntil([&] { return Read(http).parked >= n; }, 5s);
  }

  static std::string PollTarget(const std::string& queue, const std::string& query) {
    return "/api/v1/pop/queue/" + UrlEncode(queue) + "?wait=true&timeout=10000" + query;
  }
};

TEST_F(DeliveryOnPushTest, AParkedLongPollGetsThePushedMessageWithTheCommit) {
  BrokerProcess b;
  ASSERT_TRUE(b.Start());
  HttpClient http(b.port());
  const std::string q = UniqueName("dop");
  ASSERT_EQ(Read(http).delivered, 0);

  HttpClient poller(b.port(), 15s);
  auto answer = Park(poller, PollTarget(q, "&batch=10"));
  ASSERT_TRUE(ParkedAtLeast(http, 1));
  HttpResponse push = PushItems(http, {PushItem(q, "p1", "t1", "{\"n\":1}")});
  ASSERT_EQ(push.status, 200) << push.Describe();
  ASSERT_EQ(answer.wait_for(5s), std::future_status::ready) << "the long poll got nothing";
  HttpResponse r = answer.get();
  ASSERT_EQ(r.status, 200) << r.Describe();
  std::vector<Delivery> got = Deliveries(JsonDoc(r.body));
  ASSERT_EQ(got.size(), 1u) << r.body;
  EXPECT_EQ(got[0].transaction_id, "t1");
  EXPECT_EQ(got[0].data, "{\"n\":1}");
  EXPECT_FALSE(got[0].lease_id.empty()) << r.body;

  Counts c = Read(http);
  EXPECT_EQ(c.delivered, 1) << "the push's claim did not deliver it";
  EXPECT_EQ(c.declined, 0);
  EXPECT_EQ(c.parked, 0);

  // The claim's lease is a lease like a pop's: it hides the message and its ack completes it.
  HttpResponse again = http.Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=10");
  ASSERT_EQ(again.status, 200) << again.Describe();
  EXPECT_EQ(Deliveries(JsonDoc(again.body)).size(), 0u) << again.body;
  EXPECT_EQ(AckAll(http, got), "");
  std::vector<Delivery> rest;
  EXPECT_EQ(DrainQueue(http, q, &rest), "");
  EXPECT_TRUE(rest.empty()) << "completed, yet delivered again";
}

TEST_F(DeliveryOnPushTest, EachConsumerGroupsParkedPollGetsItsOwnCopy) {
  BrokerProcess b;
  ASSERT_TRUE(b.Start());
  HttpClient http(b.port());
  const std::string q = UniqueName("dopg");
  // The queue and both groups exist (their cursors from the start) before the polls park.
  ASSERT_EQ(PushItems(http, {PushItem(q, "p1", "t0", "0")}).status, 200);
  for (const char* g : {"g1", "g2"}) {
    HttpResponse r =
        http.Get("/api/v1/pop/queue/" + UrlEncode(q) + "?autoAck=true&consumerGroup=" + g);
    ASSERT_EQ(r.status, 200) << r.Describe();
    ASSERT_EQ(Deliveries(JsonDoc(r.body)).size(), 1u) << r.body;
  }

  HttpClient p1(b.port(), 15s), p2(b.port(), 15s);
  auto a1 = Park(p1, PollTarget(q, "&consumerGroup=g1"));
  auto a2 = Park(p2, PollTarget(q, "&consumerGroup=g2"));
  ASSERT_TRUE(ParkedAtLeast(http, 2));
  ASSERT_EQ(PushItems(http, {PushItem(q, "p1", "t1", "1")}).status, 200);
  std::set<std::string> leases;
  for (auto* a : {&a1, &a2}) {
    ASSERT_EQ(a->wait_for(5s), std::future_status::ready) << "a group's long poll got nothing";
    HttpResponse r = a->get();
    ASSERT_EQ(r.status, 200) << r.Describe();
    std::vector<Delivery> got = Deliveries(JsonDoc(r.body));
    ASSERT_EQ(got.size(), 1u) << r.body;
    EXPECT_EQ(got[0].transaction_id, "t1");
    leases.insert(got[0].lease_id);
  }
  EXPECT_EQ(leases.size(), 2u) << "one lease per group";
  EXPECT_EQ(Read(http).delivered, 2);
}

// A claim takes only what the poll's own pop could: a partition another consumer of the group
// has leased gives it nothing, the poll stays parked, and the ack's wake brings it the message.
TEST_F(DeliveryOnPushTest, AClaimOfALeasedPartitionTakesNothingAndThePollWaitsForTheAck) {
  BrokerProcess b;
  ASSERT_TRUE(b.Start());
  HttpClient http(b.port());
  const std::string q = UniqueName("dopl");
  ASSERT_EQ(PushItems(http, {PushItem(q, "p1", "t1", "1")}).status, 200);
  HttpResponse first = http.Get("/api/v1/pop/queue/" + UrlEncode(q));
  ASSERT_EQ(first.status, 200) << first.Describe();
  std::vector<Delivery> held = Deliveries(JsonDoc(first.body));
  ASSERT_EQ(held.size(), 1u) << first.body;

  HttpClient poller(b.port(), 15s);
  auto answer = Park(poller, PollTarget(q, "&batch=10"));
  ASSERT_TRUE(ParkedAtLeast(http, 1));
  ASSERT_EQ(PushItems(http, {PushItem(q, "p1", "t2", "2")}).status, 200);
  ASSERT_TRUE(PollUntil([&] { return Read(http).declined >= 1; }, 5s))
      << "the push ran no claim for the parked poll";
  EXPECT_EQ(answer.wait_for(300ms), std::future_status::timeout)
      << "delivered from a partition another consumer holds";
  EXPECT_EQ(Read(http).delivered, 0);

  ASSERT_EQ(AckAll(http, held), "");
  ASSERT_EQ(answer.wait_for(5s), std::future_status::ready) << "the ack did not wake the poll";
  HttpResponse r = answer.get();
  ASSERT_EQ(r.status, 200) << r.Describe();
  std::vector<Delivery> got = Deliveries(JsonDoc(r.body));
  ASSERT_EQ(got.size(), 1u) << r.body;
  EXPECT_EQ(got[0].transaction_id, "t2");
}

// autoAck polls are left to the wake: their pop commits the position, which must wait for the
// WAL flush on its own (docs/decisions.md, "Lazy consumer commits").
TEST_F(DeliveryOnPushTest, AnAutoAckPollIsWokenNotClaimed) {
  BrokerProcess b;
  ASSERT_TRUE(b.Start());
  HttpClient http(b.port());
  const std::string q = UniqueName("dopa");
  HttpClient poller(b.port(), 15s);
  auto answer = Park(poller, PollTarget(q, "&autoAck=true"));
  ASSERT_TRUE(ParkedAtLeast(http, 1));
  ASSERT_EQ(PushItems(http, {PushItem(q, "p1", "t1", "1")}).status, 200);
  ASSERT_EQ(answer.wait_for(5s), std::future_status::ready);
  HttpResponse r = answer.get();
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_EQ(Deliveries(JsonDoc(r.body)).size(), 1u) << r.body;
  Counts c = Read(http);
  EXPECT_EQ(c.delivered, 0);
  EXPECT_EQ(c.declined, 0);
}

// Producers pushing one message per request while consumers long-poll and ack: claims and
// wake-and-pop attempts run side by side. Every message arrives exactly once, in order within
// its partition, and most through the pushes' claims.
TEST_F(DeliveryOnPushTest, UnderSteadyPushesEveryMessageArrivesOnceAndInOrder) {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 150;
  constexpr int kPartitions = 8;
  constexpr int kConsumers = 6;
  BrokerProcess b;
  ASSERT_TRUE(b.Start());
  HttpClient http(b.port());
  const std::string q = UniqueName("dops");

  std::mutex mu;
  std::map<std::string, int> times;                      // transaction id -> deliveries
  std::map<std::string, std::vector<int>> by_partition;  // payload order as delivered
  std::vector<std::string> errors;
  std::atomic<int> received{0};
  std::atomic<bool> stop{false};
  auto consume = [&](int consumer) {
    HttpClient c(b.port(), 15s);
    const std::string target =
        "/api/v1/pop/queue/" + UrlEncode(q) + "?batch=5&wait=true&timeout=1000";
    while (!stop.load()) {
      HttpResponse r = c.Get(target);
      if (r.status != 200) {
        std::lock_guard lock(mu);
        errors.push_back(Indexed("consumer ", consumer, ": ") + r.Describe());
        return;
      }
      JsonDoc doc(r.body);
      std::vector<Delivery> got = Deliveries(doc);
      if (got.empty()) continue;
      {
        std::lock_guard lock(mu);
        for (const Delivery& d : got) {
          ++times[d.transaction_id];
          by_partition[d.partition_id].push_back(std::stoi(d.data));
        }
      }
      received += static_cast<int>(got.size());
      if (std::string e = AckAll(c, got); !e.empty()) {
        std::lock_guard lock(mu);
        errors.push_back(e);
        return;
      }
    }
  };
  std::vector<std::thread> consumers;
  for (int i = 0; i < kConsumers; ++i) consumers.emplace_back(consume, i);
  ASSERT_TRUE(ParkedAtLeast(http, kConsumers));

  // Producer k sends its messages to partitions k, k + 4, ...: per partition one producer, so
  // the payloads (increasing per producer) give each partition's push order.
  auto produce = [&](int producer) {
    HttpClient p(b.port());
    for (int i = 0; i < kPerProducer; ++i) {
      int n = producer * kPerProducer + i;
      std::string partition =
          Indexed("p", producer + kProducers * (i % (kPartitions / kProducers)));
      HttpResponse r = PushItems(p, {PushItem(q, partition, Indexed("t", n), std::to_string(n))});
      if (r.status != 200) {
        std::lock_guard lock(mu);
        errors.push_back("push: " + r.Describe());
        return;
      }
      std::this_thread::sleep_for(2ms);
    }
  };
  std::vector<std::thread> producers;
  for (int i = 0; i < kProducers; ++i) producers.emplace_back(produce, i);
  for (std::thread& t : producers) t.join();
  const int total = kProducers * kPerProducer;
  EXPECT_TRUE(PollUntil([&] { return received.load() >= total; }, 30s))
      << received.load() << " of " << total << " received";
  stop = true;
  for (std::thread& t : consumers) t.join();

  EXPECT_TRUE(errors.empty()) << ::testing::PrintToString(errors);
  EXPECT_EQ(static_cast<int>(times.size()), total);
  for (const auto& [tx, n] : times) EXPECT_EQ(n, 1) << tx << " delivered " << n << " times";
  for (const auto& [partition, order] : by_partition) {
    EXPECT_TRUE(std::is_sorted(order.begin(), order.end()))
        << "partition " << partition << " out of order: " << ::testing::PrintToString(order);
  }
  Counts c = Read(http);
  EXPECT_GT(c.delivered, 0) << "no message went out through a claim";
  std::cout << "[          ] claims delivered " << c.delivered << ", declined " << c.declined
            << ", of " << total << " messages\n";
}

}  // namespace
}  // namespace ordo::pg_test
