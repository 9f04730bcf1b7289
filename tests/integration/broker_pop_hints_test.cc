// Wildcard pops given the eligible partitions the last choice among all partitions left
// (--pop-hints, Broker::Hints): which partition each takes, that one taken meanwhile is skipped,
// and that --pop-hints 0 keeps every pop strictly oldest first. A hint gone stale elsewhere (the
// store's choice among all after the preferred ones) is covered by the conformance suite
// (PreferredPartitionsAreChosenFirstThenTheRest) and tests/pg (PopFastPathTest).
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

class PopHints {
 public:
  explicit PopHints(BrokerProcess& b) : http_(b.port()), queue_(UniqueName("hints")) {}

  // One message in each of partitions P0..P(n-1), pushed in that order (oldest first).
  void Fill(int n) {
    for (int i = 0; i < n; ++i) {
      std::string body = "{\"items\":[{\"queue\":" + JsonQuote(queue_) +
                         ",\"partition\":" + JsonQuote(Indexed("P", i)) +
                         ",\"payload\":" + std::to_string(i) + "}]}";
      HttpResponse r = http_.Post("/api/v1/push", body);
      ASSERT_EQ(r.status, 200) << r.Describe();
    }
  }

  // A wildcard pop (wait=false, one partition); the partition it took, "" when none.
  std::string Pop() {
    HttpResponse r = http_.Get("/api/v1/pop/queue/" + UrlEncode(queue_) + "?batch=10");
    EXPECT_EQ(r.status, 200) << r.Describe();
    JsonDoc doc(r.body);
    EXPECT_TRUE(doc.ok()) << doc.error();
    if (doc.Size("/messages").value_or(0) == 0) return "";
    return doc.String("/partition").value_or("?");
  }

  // A named pop of `partition`, acked: its partition has nothing left.
  void Empty(const std::string& partition) {
    HttpResponse r = http_.Get("/api/v1/pop/queue/" + UrlEncode(queue_) + "/partition/" +
                               UrlEncode(partition) + "?batch=10");
    ASSERT_EQ(r.status, 200) << r.Describe();
    JsonDoc doc(r.body);
    ASSERT_EQ(doc.Size("/messages"), 1u) << r.body;
    HttpResponse ack = http_.Post("/api/v1/ack/batch", AckBatchBody(doc));
    ASSERT_EQ(ack.status, 200) << ack.Describe();
  }

 private:
  HttpClient http_;
  std::string queue_;
};

TEST(BrokerPopHintsTest, NextPopsTakeWhatTheChoiceAmongAllLeftNewestFirst) {
  BrokerProcess b({"--pop-hints", "60000"});  // no hint ages out during the test
  ASSERT_TRUE(b.Start());
  PopHints h(b);
  h.Fill(5);
  EXPECT_EQ(h.Pop(), "P0") << "the choice among all: oldest first";
  // The rest it saw (P1..P4) go to the next pops, newest waiting message first: a pop choosing
  // among all meanwhile would take the oldest.
  EXPECT_EQ(h.Pop(), "P4");
  EXPECT_EQ(h.Pop(), "P3");
  EXPECT_EQ(h.Pop(), "P2");
  EXPECT_EQ(h.Pop(), "P1");
  EXPECT_EQ(h.Pop(), "") << "every partition is leased";
}

TEST(BrokerPopHintsTest, AHintTakenMeanwhileIsSkipped) {
  BrokerProcess b({"--pop-hints", "60000"});
  ASSERT_TRUE(b.Start());
  PopHints h(b);
  h.Fill(4);
  EXPECT_EQ(h.Pop(), "P0");  // leaves P1..P3
  h.Empty("P3");             // taken since: the hint is not handed out
  EXPECT_EQ(h.Pop(), "P2");
  EXPECT_EQ(h.Pop(), "P1");
  EXPECT_EQ(h.Pop(), "") << "the list is used up; the choice among all finds nothing";
}

TEST(BrokerPopHintsTest, WithoutHintsEveryPopIsOldestFirst) {
  BrokerProcess b({"--pop-hints", "0"});
  ASSERT_TRUE(b.Start());
  PopHints h(b);
  h.Fill(4);
  EXPECT_EQ(h.Pop(), "P0");
  EXPECT_EQ(h.Pop(), "P1");
  EXPECT_EQ(h.Pop(), "P2");
  EXPECT_EQ(h.Pop(), "P3");
  EXPECT_EQ(h.Pop(), "");
}

}  // namespace
}  // namespace ordo::integration
