// Consumer groups over HTTP: fan-out (every group sees every message), independent positions,
// subscriptionMode=new.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

class BrokerGroupsTest : public BrokerTest {
 protected:
  std::vector<std::string> Payloads(const JsonDoc& pop) {
    std::vector<std::string> out;
    for (size_t i = 0; i < pop.Size("/messages").value_or(0); ++i) {
      out.push_back(pop.Minified("/messages/" + std::to_string(i) + "/data"));
    }
    return out;
  }
};

TEST_F(BrokerGroupsTest, EveryGroupReceivesEveryMessage) {
  const std::string q = UniqueName("fanout");
  for (int i = 0; i < 3; ++i) PushOne(q, std::to_string(i));
  const std::vector<std::string> all = {"0", "1", "2"};

  JsonDoc g1 = Pop(q, "consumerGroup=g1&batch=10");
  EXPECT_EQ(g1.String("/consumerGroup"), "g1") << g1.text();
  EXPECT_EQ(g1.String("/messages/0/consumerGroup"), "g1") << g1.text();
  EXPECT_EQ(Payloads(g1), all);
  // g2 is not blocked by g1's lease.
  JsonDoc g2 = Pop(q, "consumerGroup=g2&batch=10");
  EXPECT_EQ(Payloads(g2), all);
  // Nor is the queue-mode reader.
  JsonDoc queue_mode = Pop(q, "batch=10");
  EXPECT_EQ(Payloads(queue_mode), all);

  // Acks are per group: g1 completing does not complete g2.
  AckAll(g1, "g1");
  EXPECT_EQ(Pop(q, "consumerGroup=g1&batch=10").Size("/messages"), 0u);
  PushOne(q, "3");
  JsonDoc g1_next = Pop(q, "consumerGroup=g1&batch=10");
  EXPECT_EQ(Payloads(g1_next), std::vector<std::string>{"3"});
  // g2 still holds its lease on 0..2: nothing for g2 until it acks, then only "3".
  EXPECT_EQ(Pop(q, "consumerGroup=g2&batch=10").Size("/messages"), 0u);
  AckAll(g2, "g2");
  EXPECT_EQ(Payloads(Pop(q, "consumerGroup=g2&batch=10")), std::vector<std::string>{"3"});
}

TEST_F(BrokerGroupsTest, AckWithoutTheGroupDoesNotCompleteTheGroupsMessage) {
  const std::string q = UniqueName("wronggroup");
  PushOne(q, "1");
  JsonDoc g = Pop(q, "consumerGroup=g");
  ASSERT_EQ(g.Size("/messages"), 1u);
  // Ack in queue mode with g's lease: that lease is not queue mode's.
  JsonDoc wrong = Ack(g, 0);
  EXPECT_EQ(wrong.Bool("/0/success"), false) << wrong.text();
  JsonDoc right = Ack(g, 0, "completed", "g");
  EXPECT_EQ(right.Bool("/0/success"), true) << right.text();
}

TEST_F(BrokerGroupsTest, SubscriptionModeNewSkipsEarlierMessages) {
  const std::string q = UniqueName("new");
  PushOne(q, "\"old1\"");
  PushOne(q, "\"old2\"");

  JsonDoc first = Pop(q, "consumerGroup=late&subscriptionMode=new&batch=10");
  EXPECT_EQ(first.Size("/messages"), 0u) << "a `new` group saw earlier messages: "
                                         << first.text();
  PushOne(q, "\"fresh\"");
  JsonDoc second = Pop(q, "consumerGroup=late&subscriptionMode=new&batch=10");
  EXPECT_EQ(Payloads(second), std::vector<std::string>{"\"fresh\""}) << second.text();

  // A group with the default mode reads from the start.
  JsonDoc early = Pop(q, "consumerGroup=early&batch=10");
  EXPECT_EQ(Payloads(early), (std::vector<std::string>{"\"old1\"", "\"old2\"", "\"fresh\""}));
}

}  // namespace
}  // namespace ordo::integration
