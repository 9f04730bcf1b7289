// Wildcard pops (wait=false) of a queue with many partitions: while one pop chooses among all
// partitions, the pops that find no hint left wait for its list (Broker::Hints::choosing)
// instead of each reading all 10,000 partitions for nearly the same list. PostgreSQL only: the
// SQLite engine's hinted pops read every partition too, so a choice costs no more than they do
// and nobody waits there (Hints::WorthWaitingFor; pinned to `always` here).
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

using integration::BrokerProcess;
using integration::UniqueName;
using integration::UrlEncode;

class PopChoiceWaitTest : public PgTest {};

std::string Partition(int i) { return fmt::format("P{:05d}", i); }

// A wildcard pop of one partition; the partition it took, "" when none.
std::string PopOne(HttpClient& http, const std::string& queue) {
  HttpResponse r = http.Get("/api/v1/pop/queue/" + UrlEncode(queue) + "?batch=10");
  EXPECT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  if (doc.Size("/messages").value_or(0) == 0) return "";
  return doc.String("/partition").value_or("?");
}

TEST_F(PopChoiceWaitTest, PopsThatFindNoHintWaitForTheChoiceOutInsteadOfChoosingToo) {
  constexpr int kPartitions = 10000;
  // No hint ages out during the test, and the pops wait whatever the round trips measured
  // (under `auto` a stall of a hinted pop can make a choice look too cheap to wait for).
  BrokerProcess b({"--pop-hints", "60000", "--pop-choice-wait", "always"});
  ASSERT_TRUE(b.Start());
  HttpClient http(b.port(), 60s);
  const std::string q = UniqueName("choice");
  // One message in each partition, P00000 oldest (pushes in order; one push's items share a
  // timestamp and the partitions' creation order breaks the tie).
  for (int first = 0; first < kPartitions; first += 1000) {
    std::vector<std::string> items;
    for (int i = first; i < first + 1000; ++i) {
      items.push_back(PushItem(q, Partition(i), fmt::format("m{}", i), std::to_string(i)));
    }
    HttpResponse r = PushItems(http, items);
    ASSERT_EQ(r.status, 200) << r.Describe();
  }

  // A choice among all partitions (tens of ms here) takes the oldest and lists the next 64;
  // the next pops take those, newest first, each a few ms.
  ASSERT_EQ(PopOne(http, q), Partition(0));
  for (int i = 64; i >= 1; --i) ASSERT_EQ(PopOne(http, q), Partition(i));

  // The list is used up. Four pops at once: the first chooses (P00065) and lists P00066 to
  // P00129; the other three wait for that list and take its newest three. Each choosing on its
  // own, they would have taken the four oldest, P00065 to P00068.
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<HttpClient>(b.port(), 60s));
    ASSERT_EQ(clients.back()->Get("/health").status, 200);  // connected before the race
  }
  std::vector<std::string> taken(clients.size());
  std::vector<std::thread> pops;
  for (size_t i = 0; i < clients.size(); ++i) {
    pops.emplace_back([&, i] { taken[i] = PopOne(*clients[i], q); });
  }
  for (auto& t : pops) t.join();
  EXPECT_EQ(std::set<std::string>(taken.begin(), taken.end()),
            (std::set<std::string>{Partition(65), Partition(129), Partition(128), Partition(127)}));
}

}  // namespace
}  // namespace ordo::pg_test
