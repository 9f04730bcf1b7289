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

}  // namespace
}  // namespace ordo::pg_test
