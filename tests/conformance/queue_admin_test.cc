// Conformance: configure, reading queues (options, partitions, counts), listing and deleting.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

void ExpectOptionsEq(const broker::QueueOptions& got, const broker::QueueOptions& want) {
  EXPECT_EQ(got.lease_time_s, want.lease_time_s) << "leaseTime";
  EXPECT_EQ(got.retry_limit, want.retry_limit) << "retryLimit";
  EXPECT_EQ(got.retry_delay_ms, want.retry_delay_ms) << "retryDelay";
  EXPECT_EQ(got.retry_backoff, want.retry_backoff) << "retryBackoff";
  EXPECT_EQ(got.retry_delay_max_ms, want.retry_delay_max_ms) << "retryDelayMax";
  EXPECT_EQ(got.delayed_processing_s, want.delayed_processing_s) << "delayedProcessing";
  EXPECT_EQ(got.window_buffer_s, want.window_buffer_s) << "windowBuffer";
  EXPECT_EQ(got.max_size, want.max_size) << "maxSize";
  EXPECT_EQ(got.retention_s, want.retention_s) << "retentionSeconds";
  EXPECT_EQ(got.completed_retention_s, want.completed_retention_s) << "completedRetentionSeconds";
  EXPECT_EQ(got.max_wait_time_s, want.max_wait_time_s) << "maxWaitTimeSeconds";
  EXPECT_EQ(got.dedup_window_s, want.dedup_window_s) << "dedupWindowSeconds";
  EXPECT_EQ(got.priority, want.priority) << "priority";
  EXPECT_EQ(got.encryption_enabled, want.encryption_enabled) << "encryptionEnabled";
}

const QueueSummary* FindSummary(const std::vector<QueueSummary>& list, const std::string& name) {
  for (const QueueSummary& s : list) {
    if (s.info.name == name) return &s;
  }
  return nullptr;
}

const broker::PartitionDetail* FindPartition(const QueueDetail& d, const std::string& name) {
  for (const broker::PartitionDetail& p : d.partitions) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

TEST_F(StoreTest, ConfigureChangesOnlyTheOptionsGiven) {
  const std::string queue = Q();
  ConfigureRequest first;
  first.queue = queue;
  first.ns = "billing";
  first.task = "invoices";
  first.options.lease_time_s = 60;
  first.options.retry_limit = 5;
  const Micros configured_at = Now();
  const QueueInfo info1 = Configure(first);
  EXPECT_FALSE(info1.id.empty());
  EXPECT_EQ(info1.name, queue);
  EXPECT_EQ(info1.ns, "billing");
  EXPECT_EQ(info1.task, "invoices");
  EXPECT_EQ(info1.created_at, configured_at);
  broker::QueueOptions want;  // the documented defaults...
  want.lease_time_s = 60;     // ...plus what was given
  want.retry_limit = 5;
  {
    SCOPED_TRACE("first configure");
    ExpectOptionsEq(info1.options, want);
  }

  Advance(1'000);
  ConfigureRequest second;
  second.queue = queue;
  second.options.retry_delay_ms = 2500;
  second.options.retry_backoff = true;
  second.options.priority = 7;
  second.options.dedup_window_s = 60;
  const QueueInfo info2 = Configure(second);
  want.retry_delay_ms = 2500;
  want.retry_backoff = true;
  want.priority = 7;
  want.dedup_window_s = 60;
  {
    SCOPED_TRACE("second configure");
    ExpectOptionsEq(info2.options, want);
  }
  EXPECT_EQ(info2.id, info1.id);
  EXPECT_EQ(info2.created_at, info1.created_at);
  EXPECT_EQ(info2.ns, "billing") << "namespace not given, so kept";
  EXPECT_EQ(info2.task, "invoices");

  ConfigureRequest third;
  third.queue = queue;
  third.task = "refunds";
  const QueueInfo info3 = Configure(third);
  EXPECT_EQ(info3.ns, "billing");
  EXPECT_EQ(info3.task, "refunds");

  auto detail = GetQueue(queue);
  ASSERT_TRUE(detail.ok()) << detail.status().message();
  EXPECT_EQ(detail->info.id, info1.id);
  EXPECT_EQ(detail->info.name, queue);
  EXPECT_EQ(detail->info.ns, "billing");
  EXPECT_EQ(detail->info.task, "refunds");
  EXPECT_EQ(detail->info.created_at, configured_at);
  SCOPED_TRACE("GetQueue");
  ExpectOptionsEq(detail->info.options, want);
}

TEST_F(StoreTest, ConfiguredLeaseTimeIsUsedByPop) {
  const std::string queue = Q();
  broker::QueueOptionsPatch options;
  options.lease_time_s = 42;
  ConfigureOptions(queue, options);
  Push(queue, "P", {"m"});
  const PopResult pop = PopPartition(queue, "P");
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  EXPECT_EQ(pop.lease_expires_at, Now() + 42 * 1'000'000LL);
}

TEST_F(StoreTest, ListQueuesShowsQueuesWithTheirCounts) {
  const std::string busy = Q("busy");
  const std::string idle = Q("idle");
  Push(busy, "P1", Names("a", 3));
  Push(busy, "P2", Names("b", 2));
  ConfigureRequest cfg;
  cfg.queue = idle;
  cfg.ns = "ops";
  Configure(cfg);

  const std::vector<QueueSummary> list = ListQueues();
  const QueueSummary* b = FindSummary(list, busy);
  const QueueSummary* i = FindSummary(list, idle);
  ASSERT_NE(b, nullptr) << busy << " not listed";
  ASSERT_NE(i, nullptr) << idle << " not listed";
  // Same partitions as GetQueue shows: the pushed ones, plus at most an empty `Default` (an engine
  // may make a queue's default partition with the queue; see QueueInfo::default_partition_id).
  auto detail = GetQueue(busy);
  ASSERT_TRUE(detail.ok()) << detail.status().message();
  std::set<std::string> names;
  for (const broker::PartitionDetail& p : detail->partitions) {
    names.insert(p.name);
    if (p.name == broker::kDefaultPartition) {
      EXPECT_EQ(p.stats.total, 0);
    }
  }
  names.erase(broker::kDefaultPartition);
  EXPECT_EQ(names, (std::set<std::string>{"P1", "P2"}));
  EXPECT_EQ(b->partitions, static_cast<int64_t>(detail->partitions.size()));
  EXPECT_EQ(b->messages.total, 5);
  EXPECT_EQ(b->messages.pending, 5);
  EXPECT_EQ(i->messages.total, 0);
  EXPECT_EQ(i->info.ns, "ops");

  const PopResult pop = PopPartition(busy, "P1", 2);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  ASSERT_EQ(pop.messages.size(), 2u);
  ASSERT_TRUE(AckMessage(pop.messages[0], pop.lease_id).success);
  const std::vector<QueueSummary> after = ListQueues();
  b = FindSummary(after, busy);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->messages.total, 5);
  EXPECT_EQ(b->messages.completed, 1);
  EXPECT_EQ(b->messages.processing, 1);
  EXPECT_EQ(b->messages.pending, 3);
}

TEST_F(StoreTest, QueueStatsFollowPopsAndAcks) {
  const std::string queue = Q();
  const Micros first_push = Now();
  Push(queue, "P", Names("m", 2));
  Advance(1'000);
  const Micros second_push = Now();
  Push(queue, "P", Names("m", 2, 2));

  auto expect_stats = [&](int64_t total, int64_t pending, int64_t processing, int64_t completed,
                          int64_t failed, int64_t dead_letter) {
    auto detail = GetQueue(queue);
    ASSERT_TRUE(detail.ok()) << detail.status().message();
    const broker::PartitionDetail* p = FindPartition(*detail, "P");
    ASSERT_NE(p, nullptr);
    const broker::MessageCounts* const both[] = {&p->stats, &detail->totals};
    for (const broker::MessageCounts* c : both) {
      EXPECT_EQ(c->total, total);
      EXPECT_EQ(c->pending, pending);
      EXPECT_EQ(c->processing, processing);
      EXPECT_EQ(c->completed, completed);
      EXPECT_EQ(c->failed, failed);
      EXPECT_EQ(c->dead_letter, dead_letter);
    }
    EXPECT_EQ(p->oldest_message, first_push);
    EXPECT_EQ(p->newest_message, second_push);
  };

  {
    SCOPED_TRACE("after push");
    expect_stats(4, 4, 0, 0, 0, 0);
  }
  const PopResult pop = PopPartition(queue, "P", 2);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  ASSERT_EQ(pop.messages.size(), 2u);
  {
    SCOPED_TRACE("after pop of 2");
    expect_stats(4, 2, 2, 0, 0, 0);
  }
  ASSERT_TRUE(AckMessage(pop.messages[0], pop.lease_id).success);
  {
    SCOPED_TRACE("after one completed");
    expect_stats(4, 2, 1, 1, 0, 0);
  }
  ASSERT_TRUE(AckMessage(pop.messages[1], pop.lease_id, AckStatus::kFailed).success);
  {
    SCOPED_TRACE("after one failed");
    expect_stats(4, 3, 0, 1, 1, 0);
  }
  // Another group's lease is not the default group's processing.
  ASSERT_EQ(PopPartition(queue, "P", 4, "auditors").kind, PopKind::kMessages);
  {
    SCOPED_TRACE("after a pop by another group");
    expect_stats(4, 3, 0, 1, 1, 0);
  }
}

TEST_F(StoreTest, GetQueueOfMissingQueueIsNotFound) {
  auto detail = GetQueue(Q("never-made"));
  ASSERT_FALSE(detail.ok());
  EXPECT_EQ(detail.status().code(), Code::kNotFound);
}

TEST_F(StoreTest, DeleteQueueRemovesEverythingAndPushRecreatesIt) {
  const std::string queue = Q();
  broker::QueueOptionsPatch options;
  options.lease_time_s = 77;
  ConfigureOptions(queue, options);
  Push(queue, "Default", Names("m", 3));
  Push(queue, "Other", {"o"});
  ASSERT_EQ(PopPartition(queue, "Default").kind, PopKind::kMessages);  // leaves a live lease

  EXPECT_TRUE(DeleteQueue(queue));
  EXPECT_FALSE(DeleteQueue(queue)) << "second delete found the queue again";
  EXPECT_EQ(GetQueue(queue).status().code(), Code::kNotFound);
  EXPECT_EQ(FindSummary(ListQueues(), queue), nullptr);
  EXPECT_EQ(PopAny(queue).kind, PopKind::kNoPartition);
  EXPECT_EQ(PopPartition(queue, "Default").kind, PopKind::kPartitionNotFound);

  const std::vector<PushOutcome> pushed = Push(queue, "Default", {"fresh"});
  ASSERT_EQ(pushed.size(), 1u);
  EXPECT_EQ(pushed[0].status, PushStatus::kQueued);
  auto detail = GetQueue(queue);
  ASSERT_TRUE(detail.ok()) << detail.status().message();
  EXPECT_EQ(detail->totals.total, 1);
  EXPECT_EQ(detail->info.options.lease_time_s, 300) << "options of the deleted queue survived";
  ASSERT_EQ(detail->partitions.size(), 1u);
  EXPECT_EQ(detail->partitions[0].name, "Default");

  const PopResult pop = PopAny(queue, 10);
  ASSERT_EQ(pop.kind, PopKind::kMessages) << "old lease survived the delete";
  EXPECT_EQ(TxIds(pop), (Strings{"fresh"}));
}

}  // namespace
}  // namespace ordo::conformance
