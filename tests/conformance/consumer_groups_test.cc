// Conformance: consumer-group administration (describe, delete) and seek (replay, skip).
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

using broker::GroupDeletion;
using broker::GroupQueueRow;
using broker::GroupState;
using broker::SeekOutcome;
using broker::SeekRequest;
using Kind = broker::SubscriptionStart::Kind;

constexpr int64_t kMinuteMs = 60'000;

class ConsumerGroupsTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    queue_ = Q();
    // The database may be shared between tests (PostgreSQL): a group name of this test only.
    group_ = Q("group");
  }

  std::vector<GroupQueueRow> Describe(const std::string& group) {
    auto r =
        Run<std::vector<GroupQueueRow>>([&](Executor ex, Completion<std::vector<GroupQueueRow>> d) {
          store().DescribeGroups(ex, group, std::move(d));
        });
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? std::move(r).value() : std::vector<GroupQueueRow>{};
  }

  // The group's entry on queue_ (fails the test when absent).
  GroupQueueRow DescribeOnQueue(const std::string& group) {
    for (GroupQueueRow& row : Describe(group)) {
      if (row.queue == queue_) return row;
    }
    ADD_FAILURE() << "group " << group << " not described on " << queue_;
    return {};
  }

  Result<SeekOutcome> Seek(const std::string& group, std::optional<std::string> partition,
                           bool to_end, Micros timestamp = 0) {
    SeekRequest req;
    req.group = group;
    req.queue = queue_;
    req.partition = std::move(partition);
    req.to_end = to_end;
    req.timestamp = timestamp;
    return Run<SeekOutcome>(
        [&](Executor ex, Completion<SeekOutcome> d) { store().SeekGroup(ex, req, std::move(d)); });
  }

  std::vector<GroupDeletion> Delete(const std::string& group, std::optional<std::string> queue) {
    auto r =
        Run<std::vector<GroupDeletion>>([&](Executor ex, Completion<std::vector<GroupDeletion>> d) {
          store().DeleteGroup(ex, group, queue, std::move(d));
        });
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? std::move(r).value() : std::vector<GroupDeletion>{};
  }

  // Pops partition `partition` for the group (batch 100) and acks everything completed.
  Strings Consume(const std::string& group, const std::string& partition = "P",
                  Kind kind = Kind::kAll) {
    PopRequest req;
    req.queue = queue_;
    req.partition = partition;
    req.group = group;
    req.batch = 100;
    req.subscription.kind = kind;
    const PopResult pop = Pop(req);
    if (pop.kind != PopKind::kMessages) {
      EXPECT_EQ(pop.kind, PopKind::kEmpty) << "group " << group;
      return {};
    }
    for (const AckOutcome& a : AckAll(pop, AckStatus::kCompleted, group)) {
      EXPECT_TRUE(a.success) << a.error;
    }
    return TxIds(pop);
  }

  std::string queue_;
  std::string group_;
};

TEST_F(ConsumerGroupsTest, SeekToAPastTimestampRedeliversEverythingFromThereInOrder) {
  Push(queue_, "P", {"a", "b"});
  Advance(1000);
  const Micros t = Now();
  Push(queue_, "P", {"c", "d"});
  Advance(1000);
  Push(queue_, "P", {"e"});
  ASSERT_EQ(Consume(group_), (Strings{"a", "b", "c", "d", "e"}));
  ASSERT_EQ(Consume(group_), Strings{}) << "all completed";

  auto seek = Seek(group_, std::nullopt, /*to_end=*/false, t);
  ASSERT_TRUE(seek.ok()) << seek.status().message();
  EXPECT_EQ(seek->partitions, 1);
  EXPECT_EQ(seek->leases_ended, 0);
  EXPECT_EQ(Consume(group_), (Strings{"c", "d", "e"})) << "completed messages come back";
  EXPECT_EQ(Consume(group_), Strings{});

  // Further back than the oldest message: everything, also on a wildcard pop.
  ASSERT_TRUE(Seek(group_, std::nullopt, false, t - 60'000'000).ok());
  const PopResult all = PopAny(queue_, 100, group_);
  ASSERT_EQ(all.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(all), (Strings{"a", "b", "c", "d", "e"}));

  // Other groups are untouched.
  EXPECT_EQ(Consume("other-" + group_), (Strings{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(Consume("other-" + group_), Strings{});
}

TEST_F(ConsumerGroupsTest, SeekForwardSkipsAndSeekToEndSkipsTheBacklog) {
  Push(queue_, "P", {"a", "b"});
  Advance(1000);
  const Micros t = Now();
  Push(queue_, "P", {"c"});

  // A group that never popped can be positioned before its first pop.
  ASSERT_TRUE(Seek(group_, std::nullopt, false, t).ok());
  EXPECT_EQ(Consume(group_), (Strings{"c"}));

  Push(queue_, "P", {"d", "e"});
  auto seek = Seek(group_, std::nullopt, /*to_end=*/true);
  ASSERT_TRUE(seek.ok()) << seek.status().message();
  EXPECT_EQ(seek->partitions, 1);
  EXPECT_EQ(Consume(group_), Strings{}) << "toEnd skips the backlog";
  EXPECT_EQ(PopAny(queue_, 10, group_).kind, PopKind::kNoPartition);
  Advance(1);
  Push(queue_, "P", {"f"});
  EXPECT_EQ(Consume(group_), (Strings{"f"})) << "messages pushed after the seek arrive";

  // The default group too.
  ASSERT_TRUE(Seek(broker::kDefaultGroup, std::nullopt, true).ok());
  EXPECT_EQ(Consume(broker::kDefaultGroup), Strings{});
}

TEST_F(ConsumerGroupsTest, PartitionSeekMovesOnlyThatPartition) {
  const Micros t0 = Now();
  Advance(1);
  Push(queue_, "P1", {"p1-a", "p1-b"});
  Push(queue_, "P2", {"p2-a", "p2-b"});
  ASSERT_EQ(Consume(group_, "P1"), (Strings{"p1-a", "p1-b"}));
  ASSERT_EQ(Consume(group_, "P2"), (Strings{"p2-a", "p2-b"}));

  auto seek = Seek(group_, "P1", false, t0);
  ASSERT_TRUE(seek.ok()) << seek.status().message();
  EXPECT_EQ(seek->partitions, 1);
  EXPECT_EQ(Consume(group_, "P2"), Strings{}) << "P2 was not moved";
  EXPECT_EQ(Consume(group_, "P1"), (Strings{"p1-a", "p1-b"}));

  // A queue-wide seek moves both.
  seek = Seek(group_, std::nullopt, false, t0);
  ASSERT_TRUE(seek.ok());
  EXPECT_EQ(seek->partitions, 2);
  EXPECT_EQ(Consume(group_, "P2"), (Strings{"p2-a", "p2-b"}));
}

TEST_F(ConsumerGroupsTest, SeekEndsTheGroupsLeaseAndClearsCompletionsAndFailures) {
  broker::QueueOptionsPatch options;
  options.retry_delay_ms = 10 * kMinuteMs;  // a failed message would be held back 10 minutes
  options.lease_time_s = 300;
  ConfigureOptions(queue_, options);
  const Micros t0 = Now();
  Advance(1);
  Push(queue_, "P", {"a", "b", "c"});

  const PopResult first = PopPartition(queue_, "P", 3, group_);
  ASSERT_EQ(first.kind, PopKind::kMessages);
  // "b" completed out of order: a completion mark past the position.
  ASSERT_TRUE(AckMessage(first.messages[1], first.lease_id, AckStatus::kCompleted, group_).success);
  // Another group's lease on the same partition is not this seek's business.
  const PopResult other = PopPartition(queue_, "P", 3, "other-" + group_);
  ASSERT_EQ(other.kind, PopKind::kMessages);

  auto seek = Seek(group_, std::nullopt, false, t0);
  ASSERT_TRUE(seek.ok()) << seek.status().message();
  EXPECT_EQ(seek->leases_ended, 1);
  const AckOutcome stale =
      AckMessage(first.messages[2], first.lease_id, AckStatus::kCompleted, group_);
  EXPECT_FALSE(stale.success) << "the seek ended the old lease";
  EXPECT_EQ(stale.error, "Invalid or expired lease");
  EXPECT_TRUE(
      AckMessage(other.messages[0], other.lease_id, AckStatus::kCompleted, "other-" + group_)
          .success);

  // Everything again, "b" included; then a failure with its long back-off...
  const PopResult second = PopPartition(queue_, "P", 3, group_);
  ASSERT_EQ(second.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(second), (Strings{"a", "b", "c"}));
  ASSERT_TRUE(AckMessage(second.messages[0], second.lease_id, AckStatus::kFailed, group_).success);
  EXPECT_EQ(PopPartition(queue_, "P", 3, group_).kind, PopKind::kEmpty) << "back-off holds it";

  // ... which a seek clears, with the failure count.
  ASSERT_TRUE(Seek(group_, "P", false, t0).ok());
  const PopResult third = PopPartition(queue_, "P", 3, group_);
  ASSERT_EQ(third.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(third), (Strings{"a", "b", "c"}));
  EXPECT_EQ(third.messages[0].retry_count, 0);
}

TEST_F(ConsumerGroupsTest, SeeksRacingConsumersLeaveTheGroupConsistent) {
  constexpr int kPerPartition = 30;
  const Micros t0 = Now();
  Advance(1);
  Push(queue_, "P1", Names("a", kPerPartition));
  Push(queue_, "P2", Names("b", kPerPartition));

  std::atomic<bool> stop{false};
  std::vector<std::thread> consumers;
  for (int c = 0; c < 3; ++c) {
    consumers.emplace_back([&] {
      boost::asio::io_context io;
      while (!stop.load()) {
        PopRequest req;
        req.queue = queue_;
        req.group = group_;
        req.batch = 5;
        req.max_partitions = 2;
        auto pop = RunOn<PopResult>(
            io, [&](Executor ex, Completion<PopResult> done) { store().Pop(ex, req, done); });
        if (!pop.ok()) {
          ADD_FAILURE() << "Pop: " << pop.status().message();
          return;
        }
        if (pop->kind != PopKind::kMessages) {
          std::this_thread::yield();
          continue;
        }
        std::vector<AckItem> acks;
        for (size_t i = 0; i < pop->messages.size(); ++i) {
          const Message& m = pop->messages[i];
          if (i > 0 && pop->messages[i - 1].partition_id == m.partition_id) {
            EXPECT_EQ(pop->messages[i - 1].seq + 1, m.seq) << "a batch is in sequence order";
          }
          acks.push_back(MakeAck(m.transaction_id, m.partition_id, pop->lease_id,
                                 AckStatus::kCompleted, group_));
        }
        // An ack may find its lease ended by a seek: refused, never an error of the call.
        auto acked = RunOn<std::vector<AckOutcome>>(
            io, [&](Executor ex, Completion<std::vector<AckOutcome>> done) {
              store().Ack(ex, acks, done);
            });
        if (!acked.ok()) {
          ADD_FAILURE() << "Ack: " << acked.status().message();
          return;
        }
      }
    });
  }
  for (int i = 0; i < 10; ++i) {
    auto seek = Seek(group_, std::nullopt, /*to_end=*/i % 3 == 2, t0);
    EXPECT_TRUE(seek.ok()) << seek.status().message();
    std::this_thread::yield();
  }
  stop.store(true);
  for (std::thread& t : consumers) t.join();

  // Whatever the race left, one more seek replays each partition whole and in order.
  ASSERT_TRUE(Seek(group_, std::nullopt, false, t0).ok());
  EXPECT_EQ(Consume(group_, "P1"), Names("a", kPerPartition));
  EXPECT_EQ(Consume(group_, "P2"), Names("b", kPerPartition));
  EXPECT_EQ(broker::Summarize(DescribeOnQueue(group_), Now()).total_lag, 0);
}

TEST_F(ConsumerGroupsTest, SeekOnAMissingQueueOrPartitionIsNotFound) {
  auto no_queue = Seek(group_, std::nullopt, true);
  ASSERT_FALSE(no_queue.ok());
  EXPECT_EQ(no_queue.status().code(), Code::kNotFound);
  Push(queue_, "P", {"a"});
  auto no_partition = Seek(group_, "nope", true);
  ASSERT_FALSE(no_partition.ok());
  EXPECT_EQ(no_partition.status().code(), Code::kNotFound);
  EXPECT_TRUE(Describe(group_).empty()) << "a refused seek leaves nothing behind";
}

TEST_F(ConsumerGroupsTest, DescribeShowsLagMembersStateAndSubscription) {
  EXPECT_TRUE(Describe(group_).empty()) << "unknown before its first pop";
  Push(queue_, "P", {"a", "b", "c"});
  Push(queue_, "Q", {"q-a"});

  const PopResult pop = PopPartition(queue_, "P", 1, group_);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  GroupQueueRow row = DescribeOnQueue(group_);
  EXPECT_EQ(row.group, group_);
  EXPECT_EQ(row.mode, Kind::kAll);
  ASSERT_TRUE(row.subscribed_at.has_value());
  EXPECT_EQ(*row.subscribed_at, Now());
  ASSERT_EQ(row.partitions.size(), 2u) << "every partition of the queue, by name";
  EXPECT_EQ(row.partitions[0].partition, "P");
  EXPECT_EQ(row.partitions[0].Lag(), 3) << "leased is not done";
  ASSERT_TRUE(row.partitions[0].lease_id.has_value());
  EXPECT_EQ(*row.partitions[0].lease_id, pop.lease_id);
  EXPECT_EQ(row.partitions[1].partition, "Q");
  EXPECT_EQ(row.partitions[1].Lag(), 1) << "a partition not popped yet counts";
  EXPECT_FALSE(row.partitions[1].lease_id.has_value());
  broker::GroupSummary s = broker::Summarize(row, Now());
  EXPECT_EQ(s.members, 1);
  EXPECT_EQ(s.total_lag, 4);
  EXPECT_EQ(s.partitions_with_lag, 2);
  EXPECT_EQ(s.state, GroupState::kStable);

  ASSERT_TRUE(AckAll(pop, AckStatus::kCompleted, group_)[0].success);
  row = DescribeOnQueue(group_);
  s = broker::Summarize(row, Now());
  EXPECT_EQ(s.total_lag, 3) << "lag falls as the group consumes";
  EXPECT_EQ(s.members, 0) << "the lease ended with its batch";
  EXPECT_EQ(row.partitions[0].position, 1);

  // Out-of-order completion counts as done without moving the position.
  const PopResult two = PopPartition(queue_, "P", 2, group_);
  ASSERT_EQ(TxIds(two), (Strings{"b", "c"}));
  ASSERT_TRUE(AckMessage(two.messages[1], two.lease_id, AckStatus::kCompleted, group_).success);
  row = DescribeOnQueue(group_);
  EXPECT_EQ(row.partitions[0].Lag(), 1);
  EXPECT_EQ(row.partitions[0].position, 1);

  // Time: the oldest waiting message ("b") ages; with a live lease the group is Lagging,
  // never Dead; once nobody holds a lease for an hour, Dead.
  Advance(2 * kMinuteMs);
  row = DescribeOnQueue(group_);
  s = broker::Summarize(row, Now());
  EXPECT_EQ(s.max_time_lag_s, 120);
  EXPECT_EQ(s.state, GroupState::kLagging);
  Advance(61 * kMinuteMs);
  row = DescribeOnQueue(group_);
  EXPECT_FALSE(row.partitions[0].lease_id.has_value()) << "the lease (300 s) expired";
  s = broker::Summarize(row, Now());
  EXPECT_EQ(s.state, GroupState::kDead);
  EXPECT_EQ(s.members, 0);

  // Consuming everything makes it Stable again, however old the messages.
  EXPECT_EQ(Consume(group_, "P"), (Strings{"b"}));
  EXPECT_EQ(Consume(group_, "Q"), (Strings{"q-a"}));
  s = broker::Summarize(DescribeOnQueue(group_), Now());
  EXPECT_EQ(s.total_lag, 0);
  EXPECT_EQ(s.max_time_lag_s, 0);
  EXPECT_EQ(s.state, GroupState::kStable);
}

TEST_F(ConsumerGroupsTest, DescribeShowsSubscriptionModesAndTheDefaultGroup) {
  Push(queue_, "P", {"a", "b"});
  Advance(10);
  const Micros first_pop = Now();
  EXPECT_EQ(Consume(group_, "P", Kind::kNew), Strings{});
  GroupQueueRow row = DescribeOnQueue(group_);
  EXPECT_EQ(row.mode, Kind::kNew);
  EXPECT_EQ(row.start_from, first_pop + 1);
  EXPECT_EQ(broker::Summarize(row, Now()).total_lag, 0) << "a `new` group owes nothing older";

  const std::string from_group = "from-" + group_;
  PopRequest req;
  req.queue = queue_;
  req.group = from_group;
  req.subscription.kind = Kind::kTimestamp;
  req.subscription.from = first_pop - 5;
  EXPECT_EQ(Pop(req).kind, PopKind::kNoPartition);
  row = DescribeOnQueue(from_group);
  EXPECT_EQ(row.mode, Kind::kTimestamp);
  EXPECT_EQ(row.start_from, first_pop - 5);
  EXPECT_EQ(broker::Summarize(row, Now()).total_lag, 0)
      << "a group that has not met a partition yet owes what its start says";

  // The default group is known once it popped a partition; it always reads all.
  EXPECT_EQ(Consume(broker::kDefaultGroup, "P"), (Strings{"a", "b"}));
  bool found = false;
  for (const GroupQueueRow& r : Describe(broker::kDefaultGroup)) {
    if (r.queue != queue_) continue;
    found = true;
    EXPECT_EQ(r.mode, Kind::kAll);
    EXPECT_FALSE(r.subscribed_at.has_value());
    EXPECT_EQ(broker::Summarize(r, Now()).total_lag, 0);
  }
  EXPECT_TRUE(found);
}

TEST_F(ConsumerGroupsTest, DeletedGroupStartsAfresh) {
  Push(queue_, "P", {"a"});
  Advance(1);
  EXPECT_EQ(Consume(group_, "P", Kind::kNew), Strings{});
  Advance(1);
  Push(queue_, "P", {"b"});
  EXPECT_EQ(Consume(group_, "P"), (Strings{"b"}));
  const PopResult leased = [&] {
    Push(queue_, "P", {"c"});
    return PopPartition(queue_, "P", 1, group_);
  }();
  ASSERT_EQ(leased.kind, PopKind::kMessages);
  // Another queue where the group is known, and another group on this queue.
  const std::string other_queue = Q("other");
  Push(other_queue, "P", {"x"});
  PopRequest req;
  req.queue = other_queue;
  req.partition = "P";
  req.group = group_;
  ASSERT_EQ(Pop(req).kind, PopKind::kMessages);
  EXPECT_EQ(Consume("other-" + group_, "P"), (Strings{"a", "b", "c"}));

  std::vector<GroupDeletion> removed = Delete(group_, queue_);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].queue, queue_);
  EXPECT_EQ(removed[0].partitions, 1);
  EXPECT_EQ(removed[0].leases_ended, 1);
  EXPECT_TRUE(removed[0].subscription);
  EXPECT_TRUE(Delete(group_, queue_).empty()) << "nothing left to delete";
  EXPECT_EQ(AckMessage(leased.messages[0], leased.lease_id, AckStatus::kCompleted, group_).error,
            "Invalid or expired lease");

  // Reused with mode all: everything retained, its subscription fixed again.
  Advance(1);
  EXPECT_EQ(Consume(group_, "P", Kind::kAll), (Strings{"a", "b", "c"}));
  GroupQueueRow row = DescribeOnQueue(group_);
  EXPECT_EQ(row.mode, Kind::kAll);
  ASSERT_TRUE(row.subscribed_at.has_value());
  EXPECT_EQ(*row.subscribed_at, Now());
  // The other group and the other queue were left alone.
  EXPECT_EQ(Consume("other-" + group_, "P"), Strings{});
  ASSERT_EQ(Describe(group_).size(), 2u);

  // Without a queue: every queue.
  removed = Delete(group_, std::nullopt);
  ASSERT_EQ(removed.size(), 2u);
  EXPECT_TRUE(Describe(group_).empty());
  EXPECT_TRUE(Delete(group_, std::nullopt).empty());
}

}  // namespace
}  // namespace ordo::conformance
