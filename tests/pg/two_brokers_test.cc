// Two brokers on one database: consumers on both share a queue without ever getting the same
// message twice, and a push on one broker wakes a long poll parked on the other.
#include <atomic>
#include <future>
#include <iostream>
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

class TwoBrokersTest : public PgTest {};

TEST_F(TwoBrokersTest, ConsumersOnBothBrokersGetEveryMessageExactlyOnce) {
  constexpr int kMessages = 2000;
  constexpr int kPartitions = 20;
  constexpr int kPerRequest = 100;
  BrokerProcess a, b;
  ASSERT_TRUE(a.Start());
  ASSERT_TRUE(b.Start());
  const std::string q = UniqueName("shared");

  // Producers on both brokers, round-robin over the partitions.
  HttpClient push_a(a.port()), push_b(b.port());
  std::set<std::string> pushed;
  for (int request = 0; request < kMessages / kPerRequest; ++request) {
    std::vector<std::string> items;
    for (int k = 0; k < kPerRequest; ++k) {
      int i = request * kPerRequest + k;
      std::string tx = Indexed("m-", i);
      pushed.insert(tx);
      items.push_back(PushItem(q, Indexed("p", i % kPartitions), tx, std::to_string(i)));
    }
    HttpResponse r = PushItems(request % 2 ? push_b : push_a, items);
    ASSERT_EQ(r.status, 200) << r.Describe();
    JsonDoc doc(r.body);
    for (int k = 0; k < kPerRequest; ++k) {
      ASSERT_EQ(doc.String(Indexed("/", k, "/status")), "queued") << r.body;
    }
  }

  // Four consumers, two per broker, each popping 10 at a time and acking what it got.
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> deliveries;  // tx -> "consumer/lease"
  std::vector<std::string> errors;
  std::atomic<int> delivered{0};
  const auto deadline = SteadyClock::now() + 120s;
  auto consume = [&](uint16_t port, int consumer) {
    HttpClient http(port, 15s);
    const std::string target =
        "/api/v1/pop/queue/" + UrlEncode(q) + "?batch=10&wait=true&timeout=500";
    while (delivered.load() < kMessages && SteadyClock::now() < deadline) {
      HttpResponse r = http.Get(target);
      if (r.status != 200) {
        std::lock_guard lock(mu);
        errors.push_back(Indexed("consumer ", consumer, ": pop -> ") + r.Describe());
        return;
      }
      std::vector<Delivery> got = Deliveries(JsonDoc(r.body));
      if (got.empty()) continue;
      {
        std::lock_guard lock(mu);
        for (const Delivery& d : got) {
          deliveries[d.transaction_id].push_back(std::to_string(consumer) + "/" + d.lease_id);
        }
      }
      delivered += static_cast<int>(got.size());
      if (std::string e = AckAll(http, got); !e.empty()) {
        std::lock_guard lock(mu);
        errors.push_back(Indexed("consumer ", consumer, ": ") + e);
        return;
      }
    }
  };
  std::vector<std::thread> consumers;
  consumers.emplace_back(consume, a.port(), 0);
  consumers.emplace_back(consume, a.port(), 1);
  consumers.emplace_back(consume, b.port(), 2);
  consumers.emplace_back(consume, b.port(), 3);
  for (std::thread& t : consumers) t.join();

  EXPECT_TRUE(errors.empty()) << ::testing::PrintToString(errors);
  std::vector<std::string> twice, unknown;
  for (const auto& [tx, who] : deliveries) {
    if (who.size() > 1 && twice.size() < 10) {
      twice.push_back(tx + " to " + ::testing::PrintToString(who));
    }
    if (!pushed.count(tx)) unknown.push_back(tx);
  }
  EXPECT_TRUE(twice.empty()) << "delivered more than once (first ones): "
                             << ::testing::PrintToString(twice);
  EXPECT_TRUE(unknown.empty()) << ::testing::PrintToString(unknown);
  EXPECT_EQ(deliveries.size(), pushed.size())
      << "distinct messages delivered; " << delivered.load() << " deliveries in all";
  EXPECT_EQ(delivered.load(), kMessages);

  // Nothing is left behind on either broker.
  for (BrokerProcess* broker : {&a, &b}) {
    HttpClient http(broker->port());
    HttpResponse r = http.Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=100");
    ASSERT_EQ(r.status, 200) << r.Describe();
    EXPECT_EQ(Deliveries(JsonDoc(r.body)).size(), 0u) << "left over: " << r.body;
  }
}

TEST_F(TwoBrokersTest, PushOnOneBrokerWakesALongPollOnTheOther) {
  // B's safety re-check is pushed out to 30 s, so only the NOTIFY from A's push can wake it in
  // time: with LISTEN broken this test fails.
  BrokerProcess a, b({"--long-poll-recheck", "30000"});
  ASSERT_TRUE(a.Start());
  ASSERT_TRUE(b.Start());
  const std::string q = UniqueName("wake");

  HttpClient poller(b.port(), 15s);
  auto poll_start = SteadyClock::now();
  ASSERT_TRUE(
      StartGetAfterProbe(poller, "/api/v1/pop/queue/" + UrlEncode(q) + "?wait=true&timeout=10000"));
  auto waiter = std::async(std::launch::async, [&] { return poller.ReadResponse(); });
  // Nothing outside the broker shows that the poll has run its first (empty) attempt and parked;
  // give it that long, as the single-broker long-poll tests do.
  std::this_thread::sleep_for(300ms);
  ASSERT_NE(waiter.wait_for(0ms), std::future_status::ready) << "the long poll did not wait";

  HttpClient pusher(a.port());
  HttpResponse push = PushItems(pusher, {PushItem(q, "p1", "wake-1", "{\"woke\":true}")});
  ASSERT_EQ(push.status, 200) << push.Describe();
  auto pushed_at = SteadyClock::now();
  ASSERT_EQ(waiter.wait_for(1s), std::future_status::ready)
      << "the long poll on broker B was not woken within 1 s of the push on broker A";
  HttpResponse r = waiter.get();
  auto woken_after = SteadyClock::now() - pushed_at;
  ASSERT_EQ(r.status, 200) << r.Describe();
  std::vector<Delivery> got = Deliveries(JsonDoc(r.body));
  ASSERT_EQ(got.size(), 1u) << r.body;
  EXPECT_EQ(got[0].data, "{\"woke\":true}");
  EXPECT_EQ(got[0].transaction_id, "wake-1");
  EXPECT_LT(SteadyClock::now() - poll_start, 5s) << "far from its 10 s timeout";
  std::cout << "woken "
            << std::chrono::duration_cast<std::chrono::milliseconds>(woken_after).count()
            << " ms after the push was answered\n";
}

// The broker remembers the partitions of the leases its own pops took, and finds their cursors
// through the primary key when extending (migration 010: no index on lease_id, so that pop and
// ack update cursors in place). A lease taken through the other broker is found all the same.
TEST_F(TwoBrokersTest, ALeaseTakenThroughOneBrokerIsExtendedThroughEither) {
  BrokerProcess a, b;
  ASSERT_TRUE(a.Start());
  ASSERT_TRUE(b.Start());
  const std::string q = UniqueName("extend");
  HttpClient on_a(a.port()), on_b(b.port());
  HttpResponse push =
      PushItems(on_a, {PushItem(q, "p1", "e-1", "1"), PushItem(q, "p2", "e-2", "2")});
  ASSERT_EQ(push.status, 200) << push.Describe();
  HttpResponse pop = on_a.Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=10&partitions=2");
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  JsonDoc popped(pop.body);
  ASSERT_EQ(popped.Size("/messages"), 2u) << pop.body;
  const std::string lease = popped.String("/leaseId").value_or("");
  ASSERT_FALSE(lease.empty()) << pop.body;

  for (HttpClient* via : {&on_b, &on_a}) {  // B does not know the lease; A does
    HttpResponse r = via->Post("/api/v1/lease/" + lease + "/extend", "{\"seconds\":600}");
    ASSERT_EQ(r.status, 200) << r.Describe();
    EXPECT_EQ(JsonDoc(r.body).Bool("/0/success"), true) << r.body;
  }
  // Both partitions are under the extended lease: 600 s, far past the queue's lease time.
  std::string error;
  std::unique_ptr<PgConn> db = PgConn::Open(Env().url, &error);
  ASSERT_TRUE(db) << error;
  auto n = db->Scalar(
      "SELECT count(*) FROM ordo.cursors c JOIN ordo.partitions p ON p.pk = c.partition_pk"
      " JOIN ordo.queues q ON q.pk = p.queue_pk WHERE q.name = $1 AND c.lease_id = $2"
      " AND c.lease_expires_at > (extract(epoch from now()) + 500) * 1000000",
      {q, lease}, &error);
  ASSERT_TRUE(n) << error;
  EXPECT_EQ(*n, "2");

  HttpResponse ack = on_b.Post("/api/v1/ack/batch", integration::AckBatchBody(popped));
  ASSERT_EQ(ack.status, 200) << ack.Describe();
  for (HttpClient* via : {&on_a, &on_b}) {
    HttpResponse r = via->Post("/api/v1/lease/" + lease + "/extend", "{\"seconds\":600}");
    ASSERT_EQ(r.status, 200) << r.Describe();
    EXPECT_EQ(JsonDoc(r.body).String("/0/error"), "Lease not found") << r.body;
  }
}

// Pops and acks change a cursor's position and lease on every call. PostgreSQL updates a row in
// place (HOT, no new index entries, no bloat) only when no indexed column changes: the cursors
// table may be indexed on its key alone.
TEST_F(TwoBrokersTest, CursorsAreIndexedOnTheirKeyAloneSoPopAndAckUpdateInPlace) {
  BrokerProcess a;
  ASSERT_TRUE(a.Start());  // the schema is migrated
  std::string error;
  std::unique_ptr<PgConn> db = PgConn::Open(Env().url, &error);
  ASSERT_TRUE(db) << error;
  auto indexes = db->Scalar(
      "SELECT string_agg(indexrelid::regclass::text, ',') FROM pg_index"
      " WHERE indrelid = 'ordo.cursors'::regclass",
      {}, &error);
  ASSERT_TRUE(indexes) << error;
  EXPECT_EQ(*indexes, "ordo.cursors_pkey");
  auto fillfactor = db->Scalar(
      "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'ordo.cursors'::regclass",
      {}, &error);
  ASSERT_TRUE(fillfactor) << error;
  EXPECT_EQ(*fillfactor, "fillfactor=50");
}

}  // namespace
}  // namespace ordo::pg_test
