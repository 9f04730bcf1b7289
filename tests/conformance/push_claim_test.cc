// Conformance: Store::PushClaiming, the push that also runs the pops of parked long polls in its
// own transaction (delivery on push). An engine that delivers on push (DeliversOnPush) answers
// each claim as that pop would have answered right after the push's commit: the same messages,
// under a lease of its own, and nothing another consumer holds. One that does not answers every
// claim with nothing and leaves the messages to the next pop. Either way the push itself is the
// same push.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

class PushClaimTest : public StoreTest {
 protected:
  // A long poll's claim as the broker makes it: a wildcard poll popping only `partition`.
  static PopRequest Claim(const std::string& queue, const std::string& partition,
                          const std::string& group = broker::kDefaultGroup, int64_t batch = 10) {
    PopRequest r;
    r.queue = queue;
    r.group = group;
    r.batch = batch;
    r.prefer = {partition};
    r.prefer_only = true;
    return r;
  }

  Store::PushClaimed PushClaiming(const std::string& queue, const std::string& partition,
                                  const std::vector<std::string>& transaction_ids,
                                  std::vector<PopRequest> claims) {
    std::vector<PushItem> items = ItemsFor(queue, partition, transaction_ids);
    const size_t n = claims.size();
    auto r = Run<Store::PushClaimed>([&](Executor ex, Completion<Store::PushClaimed> done) {
      store_->PushClaiming(ex, std::move(items), std::move(claims), std::move(done));
    });
    if (!r.ok()) {
      ADD_FAILURE() << "PushClaiming: " << r.status().message();
      return {};
    }
    EXPECT_TRUE(r->refused.ok()) << r->refused.message();
    EXPECT_EQ(r->outcomes.size(), transaction_ids.size());
    EXPECT_EQ(r->claimed.size(), n) << "one answer per claim";
    return std::move(r).value();
  }

  bool Delivers() { return store().DeliversOnPush(); }

  // `claimed` delivered exactly `txids`, under a lease.
  static void ExpectDelivered(const std::optional<PopResult>& claimed,
                              const std::vector<std::string>& txids) {
    ASSERT_TRUE(claimed.has_value()) << "the claim did not run";
    ASSERT_EQ(claimed->kind, PopKind::kMessages);
    EXPECT_EQ(TxIds(*claimed), txids);
    EXPECT_TRUE(IsUuidText(claimed->lease_id)) << claimed->lease_id;
    EXPECT_GT(claimed->lease_expires_at, 0);
  }

  static bool TookNothing(const std::optional<PopResult>& claimed) {
    return !claimed || claimed->kind != PopKind::kMessages;
  }
};

TEST_F(PushClaimTest, AClaimTakesWhatThePushAppendedUnderALeaseOfItsOwn) {
  const std::string q = Q();
  Store::PushClaimed r = PushClaiming(q, "p", {"t1"}, {Claim(q, "p")});
  ASSERT_EQ(r.outcomes.size(), 1u);
  EXPECT_EQ(r.outcomes[0].status, PushStatus::kQueued);
  if (!Delivers()) {
    EXPECT_FALSE(r.claimed[0].has_value()) << "an engine without claims answered one";
    EXPECT_EQ(TxIds(PopAny(q, 10)), std::vector<std::string>{"t1"});
    return;
  }
  ExpectDelivered(r.claimed[0], {"t1"});
  EXPECT_EQ(r.claimed[0]->partition, "p");
  EXPECT_EQ(PopAny(q, 10).kind, PopKind::kNoPartition) << "the claim's lease hides the message";
  for (const AckOutcome& a : AckAll(*r.claimed[0])) EXPECT_TRUE(a.success) << a.error;
  EXPECT_EQ(PopAny(q, 10).kind, PopKind::kNoPartition) << "completed, yet delivered again";
}

TEST_F(PushClaimTest, AClaimTakesOlderWaitingMessagesFirstInOrder) {
  const std::string q = Q();
  Push(q, "p", {"t1", "t2"});
  Store::PushClaimed r = PushClaiming(q, "p", {"t3"}, {Claim(q, "p")});
  if (!Delivers()) {
    EXPECT_EQ(TxIds(PopAny(q, 10)), (std::vector<std::string>{"t1", "t2", "t3"}));
    return;
  }
  ExpectDelivered(r.claimed[0], {"t1", "t2", "t3"});
}

TEST_F(PushClaimTest, AClaimTakesNoMoreThanItsBatch) {
  const std::string q = Q();
  Store::PushClaimed r =
      PushClaiming(q, "p", {"t1", "t2", "t3"}, {Claim(q, "p", broker::kDefaultGroup, 2)});
  if (!Delivers()) return;
  ExpectDelivered(r.claimed[0], {"t1", "t2"});
  PopResult rest = PopAny(q, 10);
  EXPECT_EQ(rest.kind, PopKind::kNoPartition) << "the partition is leased to the claim";
  for (const AckOutcome& a : AckAll(*r.claimed[0])) EXPECT_TRUE(a.success) << a.error;
  EXPECT_EQ(TxIds(PopAny(q, 10)), std::vector<std::string>{"t3"});
}

TEST_F(PushClaimTest, AClaimOfAPartitionAnotherConsumerHoldsTakesNothing) {
  const std::string q = Q();
  Push(q, "p", {"t1"});
  PopResult held = PopAny(q, 10);
  ASSERT_EQ(TxIds(held), std::vector<std::string>{"t1"});
  Store::PushClaimed r = PushClaiming(q, "p", {"t2"}, {Claim(q, "p")});
  EXPECT_TRUE(TookNothing(r.claimed[0])) << "delivered from a leased partition";
  for (const AckOutcome& a : AckAll(held)) EXPECT_TRUE(a.success) << a.error;
  EXPECT_EQ(TxIds(PopAny(q, 10)), std::vector<std::string>{"t2"}) << "the push was not stored";
}

TEST_F(PushClaimTest, ClaimsOfTwoConsumerGroupsEachTakeTheirCopy) {
  const std::string q = Q();
  Store::PushClaimed r = PushClaiming(q, "p", {"t1"}, {Claim(q, "p", "g1"), Claim(q, "p", "g2")});
  if (!Delivers()) {
    EXPECT_EQ(TxIds(PopAny(q, 10, "g1")), std::vector<std::string>{"t1"});
    EXPECT_EQ(TxIds(PopAny(q, 10, "g2")), std::vector<std::string>{"t1"});
    return;
  }
  ExpectDelivered(r.claimed[0], {"t1"});
  ExpectDelivered(r.claimed[1], {"t1"});
  EXPECT_NE(r.claimed[0]->lease_id, r.claimed[1]->lease_id);
  for (const AckOutcome& a : AckAll(*r.claimed[1], AckStatus::kCompleted, "g2")) {
    EXPECT_TRUE(a.success) << a.error;
  }
  EXPECT_EQ(PopAny(q, 10, "g1").kind, PopKind::kNoPartition) << "g1's copy is still leased";
}

TEST_F(PushClaimTest, AClaimOfANamedPartitionPollTakesItsPartitionOnly) {
  const std::string q = Q();
  Push(q, "other", {"t0"});
  PopRequest named;
  named.queue = q;
  named.partition = "p";
  named.batch = 10;
  Store::PushClaimed r = PushClaiming(q, "p", {"t1"}, {named});
  if (!Delivers()) return;
  ExpectDelivered(r.claimed[0], {"t1"});
  EXPECT_EQ(TxIds(PopAny(q, 10)), std::vector<std::string>{"t0"});
}

TEST_F(PushClaimTest, ADuplicatePushClaimsNothingNew) {
  const std::string q = Q();
  Push(q, "p", {"t1"});
  PopResult first = PopAny(q, 10);
  for (const AckOutcome& a : AckAll(first)) EXPECT_TRUE(a.success) << a.error;
  Store::PushClaimed r = PushClaiming(q, "p", {"t1"}, {Claim(q, "p")});
  ASSERT_EQ(r.outcomes.size(), 1u);
  EXPECT_EQ(r.outcomes[0].status, PushStatus::kDuplicate);
  EXPECT_TRUE(TookNothing(r.claimed[0])) << "a duplicate delivered something";
}

}  // namespace
}  // namespace ordo::conformance
