// Conformance: where a consumer group starts the first time it meets a queue.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

using Kind = broker::SubscriptionStart::Kind;

class SubscriptionTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    queue_ = Q();
  }

  // Pops partition "P" for `group` with `kind`, acks what it got, returns the transaction ids
  // (empty when the pop answered kEmpty).
  Strings PopAndAck(const std::string& group, Kind kind, Micros from = 0) {
    PopRequest req;
    req.queue = queue_;
    req.partition = "P";
    req.group = group;
    req.batch = 100;
    req.subscription.kind = kind;
    req.subscription.from = from;
    const PopResult pop = Pop(req);
    if (pop.kind != PopKind::kMessages) {
      EXPECT_EQ(pop.kind, PopKind::kEmpty) << "group " << group;
      return {};
    }
    for (const AckOutcome& a : AckAll(pop, AckStatus::kCompleted, group)) {
      EXPECT_TRUE(a.success) << "group " << group << ": " << a.error;
    }
    return TxIds(pop);
  }

  std::string queue_;
};

TEST_F(SubscriptionTest, GroupsStartWhereTheirSubscriptionSays) {
  Push(queue_, "P", {"a"});
  Advance(1);
  const Micros b_time = Now();
  Push(queue_, "P", {"b"});
  Advance(1);
  Push(queue_, "P", {"c"});
  Advance(1);

  EXPECT_EQ(PopAndAck("late-joiner", Kind::kNew), Strings{}) << "`new` sees no old messages";
  EXPECT_EQ(PopAndAck("from-b", Kind::kTimestamp, b_time), (Strings{"b", "c"}));
  EXPECT_EQ(PopAndAck("replay", Kind::kAll), (Strings{"a", "b", "c"}));
  EXPECT_EQ(PopAndAck(broker::kDefaultGroup, Kind::kNew), (Strings{"a", "b", "c"}))
      << "the default group always reads all";

  Advance(1);
  Push(queue_, "P", {"d", "e"});

  EXPECT_EQ(PopAndAck("late-joiner", Kind::kNew), (Strings{"d", "e"}));
  EXPECT_EQ(PopAndAck("from-b", Kind::kTimestamp, b_time), (Strings{"d", "e"}));
  EXPECT_EQ(PopAndAck("replay", Kind::kAll), (Strings{"d", "e"}));
  EXPECT_EQ(PopAndAck("default-start", Kind::kAll), (Strings{"a", "b", "c", "d", "e"}))
      << "a new group without a start reads all";

  // The start is fixed by the first pop: asking for `all` later does not rewind.
  Advance(1);
  Push(queue_, "P", {"f"});
  EXPECT_EQ(PopAndAck("late-joiner", Kind::kAll), (Strings{"f"}));
}

TEST_F(SubscriptionTest, NewGroupOnWildcardPopSkipsOldMessages) {
  Push(queue_, "P", {"old-0", "old-1"});
  Advance(1);

  PopRequest req;
  req.queue = queue_;
  req.group = "wildcard-new";
  req.batch = 10;
  req.subscription.kind = Kind::kNew;
  EXPECT_EQ(Pop(req).kind, PopKind::kNoPartition);

  Advance(1);
  Push(queue_, "P", {"new-0"});
  const PopResult pop = Pop(req);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(pop), (Strings{"new-0"}));
}

}  // namespace
}  // namespace ordo::conformance
