// The database server crashes (`pg_ctl restart -m immediate`: no shutdown checkpoint, recovery
// from the WAL) right after pushes, pops and acks were answered. With the default lazy consumer
// commits (pops and acks do not wait for the WAL flush), every push answered `queued` is still
// stored after recovery and reaches a consumer: acked before the crash, or delivered after it
// (an acked one may come again: at-least-once). The broker serves again on its own.
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

using integration::BrokerProcess;
using integration::Indexed;
using integration::JsonQuote;
using integration::UniqueName;
using integration::UrlEncode;

class ServerCrashTest : public PgTest {};

TEST_F(ServerCrashTest, EveryQueuedPushSurvivesACrashRightAfterItsAnswer) {
  ORDO_SKIP_UNLESS_SERVER_CAN_RESTART();
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start());
  HttpClient http(broker.port());
  const std::string q = UniqueName("crash");
  // A short lease, so that leases the crash kept do not hold the drain after it up for long.
  HttpResponse conf = http.Post("/api/v1/configure",
                                "{\"queue\":" + JsonQuote(q) + ",\"options\":{\"leaseTime\":1}}");
  ASSERT_EQ(conf.status, 200) << conf.Describe();

  std::set<std::string> queued;
  auto push_round = [&](int round) {
    std::vector<std::string> items;
    for (int i = 0; i < 20; ++i) {
      std::string txid = Indexed("r", round, Indexed("-", i));
      items.push_back(PushItem(q, Indexed("P", i % 4), txid, std::to_string(i)));
    }
    HttpResponse r = PushItems(http, items);
    ASSERT_EQ(r.status, 200) << r.Describe();
    JsonDoc doc(r.body);
    for (int i = 0; i < 20; ++i) {
      ASSERT_EQ(doc.String(Indexed("/", i, "/status")), "queued") << r.body;
      queued.insert(Indexed("r", round, Indexed("-", i)));
    }
  };
  const std::string pop_target = "/api/v1/pop/queue/" + UrlEncode(q) + "?batch=10&partitions=4";

  // Before the crash: 100 messages queued, about half delivered and acked (lazy commits).
  for (int round = 0; round < 5; ++round) ASSERT_NO_FATAL_FAILURE(push_round(round));
  std::set<std::string> acked_before;
  for (int attempt = 0; attempt < 50 && acked_before.size() < 50; ++attempt) {
    HttpResponse pop = http.Get(pop_target);
    ASSERT_EQ(pop.status, 200) << pop.Describe();
    std::vector<Delivery> got = Deliveries(JsonDoc(pop.body));
    ASSERT_EQ(AckAll(http, got), "");
    for (const Delivery& d : got) acked_before.insert(d.transaction_id);
  }
  ASSERT_GE(acked_before.size(), 50u) << "the consumer got too little before the crash";
  // The last answers before it: 20 more pushes queued, then only lazy commits (an ack and a
  // lease taken), which the crash may forget: a forgotten ack means its messages come again.
  ASSERT_NO_FATAL_FAILURE(push_round(5));
  HttpResponse last = http.Get(pop_target);
  ASSERT_EQ(last.status, 200) << last.Describe();
  std::vector<Delivery> last_got = Deliveries(JsonDoc(last.body));
  ASSERT_EQ(AckAll(http, last_got), "");
  for (const Delivery& d : last_got) acked_before.insert(d.transaction_id);
  HttpResponse leased = http.Get(pop_target);
  ASSERT_EQ(leased.status, 200) << leased.Describe();

  std::string pg_ctl_output;
  ASSERT_TRUE(RestartServer(&pg_ctl_output, "immediate")) << pg_ctl_output;

  HttpClient probe(broker.port(), 5s);
  HttpResponse last_ready;
  ASSERT_TRUE(PollUntil(
      [&] {
        last_ready = probe.Get("/health/ready");
        return last_ready.status == 200;
      },
      30s, 50ms))
      << "/health/ready after the crash: " << last_ready.Describe();

  // Every queued push reaches a consumer: acked before the crash, or delivered now.
  std::set<std::string> seen = acked_before;
  size_t again = 0;  // acked before the crash and delivered again (a forgotten ack)
  std::string last_problem;
  auto missing = [&] {
    std::vector<std::string> out;
    for (const std::string& t : queued) {
      if (seen.count(t) == 0) out.push_back(t);
    }
    return out;
  };
  PollUntil(
      [&] {
        HttpResponse pop = http.Get(pop_target);
        if (pop.status != 200) {
          last_problem = pop.Describe();
          return false;
        }
        std::vector<Delivery> got = Deliveries(JsonDoc(pop.body));
        if (std::string e = AckAll(http, got); !e.empty()) last_problem = e;
        for (const Delivery& d : got) {
          if (acked_before.count(d.transaction_id) != 0) ++again;
          seen.insert(d.transaction_id);
        }
        return missing().empty();
      },
      30s, 20ms);
  std::vector<std::string> lost = missing();
  EXPECT_TRUE(lost.empty()) << lost.size() << " of " << queued.size()
                            << " queued messages never reached a consumer after the crash, e.g. "
                            << lost.front() << " (last problem: " << last_problem << ")";
  RecordProperty("acked_before_crash_and_delivered_again", static_cast<int>(again));
  EXPECT_TRUE(broker.Alive()) << "the broker process exited";
}

}  // namespace
}  // namespace ordo::pg_test
