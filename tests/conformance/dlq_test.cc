// Conformance: the dead-letter queue (listing with keyset pagination and filters, requeue,
// delete) and message browsing (pagination, per-group state, detail, delete).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

using broker::BrowsedMessage;
using broker::DeadLetter;
using broker::DeadLetterPage;
using broker::DeadLetterQuery;
using broker::MessageDetail;
using broker::MessagePage;
using broker::MessageQuery;
using broker::MessageState;
using broker::RequeueRequest;
using broker::RequeueResult;

class DlqTest : public StoreTest {
 protected:
  DeadLetterPage ListDlq(DeadLetterQuery q) {
    auto r = Run<DeadLetterPage>([&](Executor ex, Completion<DeadLetterPage> done) {
      store().ListDeadLetters(ex, q, std::move(done));
    });
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : DeadLetterPage{};
  }
  // Every entry of the queue, following the pages.
  std::vector<DeadLetter> AllDlq(const std::string& queue) {
    std::vector<DeadLetter> out;
    DeadLetterQuery q;
    q.filter.queue = queue;
    q.limit = 1000;
    DeadLetterPage page = ListDlq(q);
    out = page.entries;
    return out;
  }
  RequeueResult Requeue(RequeueRequest req) {
    auto r = Run<RequeueResult>([&](Executor ex, Completion<RequeueResult> done) {
      store().RequeueDeadLetters(ex, req, std::move(done));
    });
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : RequeueResult{};
  }
  bool DeleteDlq(const std::string& id) {
    auto r = Run<bool>([&](Executor ex, Completion<bool> done) {
      store().DeleteDeadLetter(ex, id, std::move(done));
    });
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() && *r;
  }
  MessagePage ListMessages(MessageQuery q) {
    auto r = Run<MessagePage>([&](Executor ex, Completion<MessagePage> done) {
      store().ListMessages(ex, q, std::move(done));
    });
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : MessagePage{};
  }
  std::map<std::string, MessageState> States(const std::string& queue, const std::string& group) {
    MessageQuery q;
    q.queue = queue;
    q.group = group;
    q.limit = 1000;
    std::map<std::string, MessageState> out;
    for (const BrowsedMessage& b : ListMessages(q).messages) {
      out[b.message.transaction_id] = b.state;
    }
    return out;
  }
  Strings TxIdsWithState(const std::string& queue, const std::string& group, MessageState s) {
    MessageQuery q;
    q.queue = queue;
    q.group = group;
    q.state = s;
    q.limit = 1000;
    Strings out;
    for (const BrowsedMessage& b : ListMessages(q).messages) {
      out.push_back(b.message.transaction_id);
    }
    return out;
  }
  Result<MessageDetail> GetMessage(const std::string& partition_id, const std::string& txid) {
    return Run<MessageDetail>([&](Executor ex, Completion<MessageDetail> done) {
      store().GetMessage(ex, partition_id, txid, std::move(done));
    });
  }
  bool DeleteMessage(const std::string& partition_id, const std::string& txid) {
    auto r = Run<bool>([&](Executor ex, Completion<bool> done) {
      store().DeleteMessage(ex, partition_id, txid, std::move(done));
    });
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() && *r;
  }
  // Pops one message of `partition` for `group` and dead-letters it with `error`.
  void DeadLetterNext(const std::string& queue, const std::string& partition,
                      const std::string& group = broker::kDefaultGroup,
                      const std::string& error = "bad") {
    const PopResult pop = PopPartition(queue, partition, 1, group);
    ASSERT_EQ(pop.kind, PopKind::kMessages);
    const AckOutcome a =
        AckMessage(pop.messages.at(0), pop.lease_id, AckStatus::kDlq, group, error);
    ASSERT_TRUE(a.success) << a.error;
    ASSERT_TRUE(a.dlq);
  }
};

TEST_F(DlqTest, DeadLetterPagesSeeEveryEntryOnceWhileEntriesArrive) {
  const std::string queue = Q();
  Push(queue, "P", Names("m", 8));
  for (int i = 0; i < 5; ++i) {
    DeadLetterNext(queue, "P", broker::kDefaultGroup, "error " + std::to_string(i));
    if (i % 2 == 0) Advance(1);  // some entries share a failed_at: pk breaks the tie
  }
  std::vector<std::string> seen;
  DeadLetterQuery q;
  q.filter.queue = queue;
  q.limit = 2;
  int arrivals = 0;
  for (int page_no = 0; page_no < 20; ++page_no) {
    DeadLetterPage page = ListDlq(q);
    for (const DeadLetter& d : page.entries) seen.push_back(d.transaction_id);
    // A new entry arrives between pages, at the same instant as the previous one or later.
    if (arrivals < 3) {
      DeadLetterNext(queue, "P");
      if (arrivals++ == 1) Advance(1);
    }
    if (!page.more) break;
    q.after = page.entries.back().key;
  }
  EXPECT_EQ(seen, Names("m", 8)) << "every entry exactly once, in failure order";
}

TEST_F(DlqTest, DeadLetterEntriesCarryTheMessageAndFilter) {
  const std::string queue = Q();
  const std::string other = Q("other");
  broker::QueueOptionsPatch o;
  o.retry_limit = 0;
  ConfigureOptions(queue, o);
  PushItems({{queue, "A", "{\"n\":1}", "a-1", std::string("0190a5f0-0000-7000-8000-000000000001")},
             {queue, "B", "[2]", "b-1", std::nullopt},
             {other, "A", "3", "o-1", std::nullopt}});
  // a-1 fails past retryLimit 0 for group g1; b-1 dead-lettered by g2 later; o-1 in another queue.
  const PopResult pa = PopPartition(queue, "A", 1, "g1");
  ASSERT_EQ(pa.kind, PopKind::kMessages);
  const AckOutcome fa =
      AckMessage(pa.messages.at(0), pa.lease_id, AckStatus::kFailed, "g1", "boom");
  ASSERT_TRUE(fa.dlq);
  const Micros first_failure = Now();
  Advance(10'000);
  DeadLetterNext(queue, "B", "g2", "nope");
  const Micros second_failure = Now();
  DeadLetterNext(other, "A");

  std::vector<DeadLetter> all = AllDlq(queue);
  ASSERT_EQ(all.size(), 2u);
  const DeadLetter& d = all[0];
  EXPECT_TRUE(IsUuidText(d.id));
  EXPECT_EQ(d.transaction_id, "a-1");
  EXPECT_EQ(d.trace_id, std::optional<std::string>("0190a5f0-0000-7000-8000-000000000001"));
  EXPECT_EQ(d.queue, queue);
  EXPECT_EQ(d.partition, "A");
  EXPECT_EQ(d.partition_id, pa.partition_id);
  EXPECT_EQ(d.message_id, pa.messages[0].id);
  EXPECT_EQ(d.group, "g1");
  EXPECT_EQ(d.error, "boom");
  EXPECT_EQ(d.retry_count, 1);
  EXPECT_EQ(d.payload, "{\"n\":1}");
  EXPECT_EQ(d.created_at, pa.messages[0].created_at);
  EXPECT_EQ(d.failed_at, first_failure);
  EXPECT_EQ(all[1].transaction_id, "b-1");
  EXPECT_EQ(all[1].failed_at, second_failure);

  auto txids = [&](DeadLetterQuery q) {
    Strings out;
    for (const DeadLetter& e : ListDlq(q).entries) out.push_back(e.transaction_id);
    return out;
  };
  DeadLetterQuery q;
  q.filter.queue = queue;
  q.filter.group = "g2";
  EXPECT_EQ(txids(q), (Strings{"b-1"}));
  q.filter.group.reset();
  q.filter.partition = "A";
  EXPECT_EQ(txids(q), (Strings{"a-1"}));
  q.filter.partition.reset();
  q.filter.from = second_failure;
  EXPECT_EQ(txids(q), (Strings{"b-1"})) << "from is inclusive";
  q.filter.from.reset();
  q.filter.to = second_failure - 1;
  EXPECT_EQ(txids(q), (Strings{"a-1"}));
  q.filter.to = first_failure;
  EXPECT_EQ(txids(q), (Strings{"a-1"})) << "to is inclusive";
  q.filter = {};
  q.filter.queue = other;
  EXPECT_EQ(txids(q), (Strings{"o-1"}));
  q.filter.queue = Q("missing");
  EXPECT_TRUE(txids(q).empty());
}

TEST_F(DlqTest, RequeueRedeliversToTheDeadLetteringGroupOnly) {
  const std::string queue = Q();
  Push(queue, "P", {"m-0", "m-1"});
  // g1 dead-letters m-0; g2 completes it. g3 stands just before the tail, g4 behind it.
  DeadLetterNext(queue, "P", "g1", "poison");
  const PopResult g2 = PopPartition(queue, "P", 2, "g2");
  ASSERT_EQ(TxIds(g2), (Strings{"m-0", "m-1"}));
  AckAll(g2, AckStatus::kCompleted, "g2");
  const PopResult g4 = PopPartition(queue, "P", 1, "g4");
  ASSERT_EQ(TxIds(g4), (Strings{"m-0"}));
  AckAll(g4, AckStatus::kCompleted, "g4");

  std::vector<DeadLetter> dlq = AllDlq(queue);
  ASSERT_EQ(dlq.size(), 1u);
  RequeueRequest req;
  req.ids = {dlq[0].id, "00000000-0000-7000-8000-00000000dead", dlq[0].id};
  RequeueResult r = Requeue(req);
  EXPECT_EQ(r.requeued, 1) << "a repeated id counts once";
  EXPECT_EQ(r.not_found, (Strings{"00000000-0000-7000-8000-00000000dead"}));
  EXPECT_EQ(r.queues, (Strings{queue}));
  EXPECT_TRUE(AllDlq(queue).empty()) << "a requeued entry leaves the DLQ";

  // g1 has m-1 first (it was behind m-0), then the requeued copy with the same payload.
  const PopResult again = PopPartition(queue, "P", 5, "g1");
  ASSERT_EQ(again.kind, PopKind::kMessages);
  ASSERT_EQ(again.messages.size(), 2u);
  EXPECT_EQ(again.messages[0].transaction_id, "m-1");
  const Message& copy = again.messages[1];
  EXPECT_EQ(copy.payload, PayloadFor("m-0"));
  EXPECT_NE(copy.id, dlq[0].message_id) << "stored as a new message";
  EXPECT_EQ(copy.transaction_id, copy.id) << "with a fresh transactionId";
  EXPECT_GT(copy.seq, again.messages[0].seq);
  EXPECT_EQ(copy.retry_count, 0);
  AckAll(again, AckStatus::kCompleted, "g1");
  EXPECT_EQ(PopPartition(queue, "P", 5, "g1").kind, PopKind::kEmpty);

  // Other groups never see the copy: g2 had read everything, g4 reads m-1 and stops.
  EXPECT_EQ(PopPartition(queue, "P", 5, "g2").kind, PopKind::kEmpty);
  const PopResult rest = PopPartition(queue, "P", 5, "g4");
  EXPECT_EQ(TxIds(rest), (Strings{"m-1"}));
  AckAll(rest, AckStatus::kCompleted, "g4");
  EXPECT_EQ(PopPartition(queue, "P", 5, "g4").kind, PopKind::kEmpty);

  // Unknown ids only: nothing requeued, nothing fails.
  RequeueRequest none;
  none.ids = {dlq[0].id};
  RequeueResult r2 = Requeue(none);
  EXPECT_EQ(r2.requeued, 0);
  EXPECT_EQ(r2.not_found, (Strings{dlq[0].id}));
}

TEST_F(DlqTest, RequeueByFilterTakesOnlyMatchingEntries) {
  const std::string queue = Q();
  Push(queue, "A", Names("a", 3));
  Push(queue, "B", Names("b", 1));
  for (int i = 0; i < 3; ++i) DeadLetterNext(queue, "A");
  DeadLetterNext(queue, "B");
  RequeueRequest req;
  req.filter.queue = queue;
  req.filter.partition = "A";
  req.limit = 2;
  RequeueResult r = Requeue(req);
  EXPECT_EQ(r.requeued, 2) << "bounded by the limit";
  EXPECT_TRUE(r.not_found.empty());
  std::vector<DeadLetter> left = AllDlq(queue);
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].transaction_id, "a-2") << "the oldest failures go first";
  EXPECT_EQ(left[1].transaction_id, "b-0");
  const PopResult again = PopPartition(queue, "A", 5);
  ASSERT_EQ(again.kind, PopKind::kMessages);
  ASSERT_EQ(again.messages.size(), 2u);
  EXPECT_EQ(again.messages[0].payload, PayloadFor("a-0"));
  EXPECT_EQ(again.messages[1].payload, PayloadFor("a-1"));
}

TEST_F(DlqTest, DeleteRemovesOneEntry) {
  const std::string queue = Q();
  Push(queue, "P", Names("m", 2));
  DeadLetterNext(queue, "P");
  DeadLetterNext(queue, "P");
  std::vector<DeadLetter> dlq = AllDlq(queue);
  ASSERT_EQ(dlq.size(), 2u);
  EXPECT_TRUE(DeleteDlq(dlq[0].id));
  EXPECT_FALSE(DeleteDlq(dlq[0].id)) << "already gone";
  EXPECT_FALSE(DeleteDlq("no-such-entry"));
  std::vector<DeadLetter> left = AllDlq(queue);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].id, dlq[1].id);
}

TEST_F(DlqTest, MessageStatesFollowTheGroup) {
  const std::string queue = Q();
  broker::QueueOptionsPatch o;
  o.lease_time_s = 30;
  ConfigureOptions(queue, o);
  Push(queue, "P", Names("m", 4));
  const PopResult p0 = PopPartition(queue, "P", 1, "g");
  AckAll(p0, AckStatus::kCompleted, "g");
  DeadLetterNext(queue, "P", "g");
  const PopResult p2 = PopPartition(queue, "P", 1, "g");
  ASSERT_EQ(TxIds(p2), (Strings{"m-2"}));

  using S = MessageState;
  EXPECT_EQ(States(queue, "g"), (std::map<std::string, MessageState>{{"m-0", S::kCompleted},
                                                                     {"m-1", S::kDeadLetter},
                                                                     {"m-2", S::kProcessing},
                                                                     {"m-3", S::kPending}}));
  EXPECT_EQ(TxIdsWithState(queue, "g", S::kPending), (Strings{"m-3"}));
  EXPECT_EQ(TxIdsWithState(queue, "g", S::kProcessing), (Strings{"m-2"}));
  EXPECT_EQ(TxIdsWithState(queue, "g", S::kCompleted), (Strings{"m-0"}));
  EXPECT_EQ(TxIdsWithState(queue, "g", S::kDeadLetter), (Strings{"m-1"}));
  // Relative to the group: the default group has done nothing.
  EXPECT_EQ(TxIdsWithState(queue, broker::kDefaultGroup, S::kPending), Names("m", 4));

  // Out-of-order completion inside a batch counts; an expired lease is pending again.
  Advance(31'000);
  EXPECT_EQ(TxIdsWithState(queue, "g", S::kPending), (Strings{"m-2", "m-3"}));
  const PopResult p23 = PopPartition(queue, "P", 2, "g");
  ASSERT_EQ(TxIds(p23), (Strings{"m-2", "m-3"}));
  ASSERT_TRUE(AckMessage(p23.messages[1], p23.lease_id, AckStatus::kCompleted, "g").success);
  EXPECT_EQ(TxIdsWithState(queue, "g", S::kCompleted), (Strings{"m-0", "m-3"}));
  EXPECT_EQ(TxIdsWithState(queue, "g", S::kProcessing), (Strings{"m-2"}));

  MessageQuery q;
  q.queue = queue;
  q.group = "g";
  q.limit = 10;
  MessagePage page = ListMessages(q);
  ASSERT_EQ(page.messages.size(), 4u);
  const Message& m = page.messages[0].message;
  EXPECT_EQ(m.transaction_id, "m-0");
  EXPECT_EQ(m.payload, PayloadFor("m-0"));
  EXPECT_EQ(m.queue, queue);
  EXPECT_EQ(m.partition, "P");
  EXPECT_EQ(m.id, p0.messages[0].id);
  EXPECT_EQ(m.partition_id, p0.partition_id);
  EXPECT_EQ(m.created_at, p0.messages[0].created_at);
}

TEST_F(DlqTest, MessagePagesAreStableUnderPushes) {
  const std::string queue = Q();
  Push(queue, "A", Names("a", 5));
  Push(queue, "B", Names("b", 5));
  std::vector<std::string> seen;
  MessageQuery q;
  q.queue = queue;
  q.limit = 3;
  int round = 0;
  for (;;) {
    MessagePage page = ListMessages(q);
    for (const BrowsedMessage& b : page.messages) seen.push_back(b.message.transaction_id);
    // Pushes between pages: to a partition already passed, the current ones and a new one.
    if (round < 3) {
      Push(queue, "A", {"a-late-" + std::to_string(round)});
      Push(queue, "B", {"b-late-" + std::to_string(round)});
      Push(queue, "C", {"c-late-" + std::to_string(round)});
      ++round;
    }
    if (!page.more) break;
    q.after = page.messages.back().key;
  }
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size()) << "no message twice";
  for (const std::string& t : Names("a", 5)) EXPECT_TRUE(unique.count(t)) << t;
  for (const std::string& t : Names("b", 5)) EXPECT_TRUE(unique.count(t)) << t;
  // Within a partition, sequence order.
  std::vector<std::string> a_order;
  for (const std::string& t : seen)
    if (t[0] == 'a') a_order.push_back(t);
  ASSERT_GE(a_order.size(), 5u);
  EXPECT_EQ(std::vector<std::string>(a_order.begin(), a_order.begin() + 5), Names("a", 5));

  // Filters: partition, created_at range.
  MessageQuery only_b;
  only_b.queue = queue;
  only_b.partition = "B";
  only_b.limit = 100;
  for (const BrowsedMessage& b : ListMessages(only_b).messages) EXPECT_EQ(b.message.partition, "B");
}

TEST_F(DlqTest, MessageTimeFilterBoundsCreation) {
  const std::string queue = Q();
  Push(queue, "P", {"early"});
  Advance(1000);
  const Micros middle = Now();
  Push(queue, "P", {"middle"});
  Advance(1000);
  Push(queue, "P", {"late"});
  MessageQuery q;
  q.queue = queue;
  q.from = middle;
  q.to = middle;
  Strings got;
  for (const BrowsedMessage& b : ListMessages(q).messages) got.push_back(b.message.transaction_id);
  EXPECT_EQ(got, (Strings{"middle"}));
}

TEST_F(DlqTest, MessageDetailShowsEveryGroup) {
  const std::string queue = Q();
  broker::QueueOptionsPatch o;
  o.retry_limit = 5;
  o.lease_time_s = 60;
  ConfigureOptions(queue, o);
  std::vector<PushOutcome> pushed = Push(queue, "P", {"m"});
  const std::string pid = pushed.at(0).partition_id;
  AckAll(PopPartition(queue, "P", 1, "done"), AckStatus::kCompleted, "done");
  const PopResult leased = PopPartition(queue, "P", 1, "busy");
  ASSERT_EQ(leased.kind, PopKind::kMessages);
  const PopResult failing = PopPartition(queue, "P", 1, "failing");
  ASSERT_TRUE(
      AckMessage(failing.messages.at(0), failing.lease_id, AckStatus::kFailed, "failing").success);
  DeadLetterNext(queue, "P", "dead");

  auto d = GetMessage(pid, "m");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->message.transaction_id, "m");
  EXPECT_EQ(d->message.id, pushed[0].message_id);
  EXPECT_EQ(d->message.payload, PayloadFor("m"));
  EXPECT_EQ(d->message.partition, "P");
  EXPECT_EQ(d->message.queue, queue);
  EXPECT_EQ(d->queue.name, queue);
  EXPECT_EQ(d->queue.options.retry_limit, 5);
  EXPECT_EQ(d->queue.options.lease_time_s, 60);
  std::map<std::string, broker::GroupMessageState> by;
  for (const auto& g : d->groups) by[g.group] = g;
  ASSERT_EQ(by.size(), 4u);
  EXPECT_TRUE(by["done"].consumed);
  EXPECT_FALSE(by["done"].leased);
  EXPECT_TRUE(by["busy"].leased);
  EXPECT_FALSE(by["busy"].consumed);
  EXPECT_EQ(by["failing"].failures, 1);
  EXPECT_FALSE(by["failing"].consumed);
  EXPECT_FALSE(by["failing"].leased) << "a failed ack ends the lease";
  EXPECT_TRUE(by["dead"].dead_lettered);
  EXPECT_FALSE(by["dead"].consumed);

  auto missing = GetMessage(pid, "no-such-tx");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  auto bad_partition = GetMessage(RandomUuidV4(), "m");
  ASSERT_FALSE(bad_partition.ok());
  EXPECT_EQ(bad_partition.status().code(), Code::kNotFound);
}

TEST_F(DlqTest, DeletedMessageLeavesAHoleNobodyWaitsFor) {
  const std::string queue = Q();
  std::vector<PushOutcome> pushed = Push(queue, "P", Names("m", 4));
  const std::string pid = pushed.at(0).partition_id;
  // g holds m-0 under a lease; h has completed m-0 and stands before m-1.
  const PopResult held = PopPartition(queue, "P", 1, "g");
  ASSERT_EQ(TxIds(held), (Strings{"m-0"}));
  AckAll(PopPartition(queue, "P", 1, "h"), AckStatus::kCompleted, "h");

  EXPECT_TRUE(DeleteMessage(pid, "m-2")) << "a pending message";
  EXPECT_FALSE(DeleteMessage(pid, "m-2")) << "already gone";
  EXPECT_FALSE(DeleteMessage(pid, "never"));
  EXPECT_FALSE(DeleteMessage(RandomUuidV4(), "m-0"));
  EXPECT_FALSE(GetMessage(pid, "m-2").ok());

  // The leased message is deleted: the lease ends with it, so the partition is free at once.
  EXPECT_TRUE(DeleteMessage(pid, "m-0"));
  const AckOutcome late = AckMessage(held.messages[0], held.lease_id, AckStatus::kCompleted, "g");
  EXPECT_FALSE(late.success);
  EXPECT_EQ(late.error, "Message not found");
  const PopResult next = PopPartition(queue, "P", 5, "g");
  ASSERT_EQ(next.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(next), (Strings{"m-1", "m-3"}));
  // The hole does not hold the position back: acking both ends the lease at once.
  std::vector<AckOutcome> acks = AckAll(next, AckStatus::kCompleted, "g");
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_TRUE(acks[1].lease_released);
  EXPECT_EQ(PopPartition(queue, "P", 5, "g").kind, PopKind::kEmpty);

  // h had not reached the hole yet: it steps over it too, and its lease ends at its last ack.
  const PopResult h = PopPartition(queue, "P", 5, "h");
  EXPECT_EQ(TxIds(h), (Strings{"m-1", "m-3"}));
  Push(queue, "P", {"m-4"});
  std::vector<AckOutcome> h_acks = AckAll(h, AckStatus::kCompleted, "h");
  ASSERT_EQ(h_acks.size(), 2u);
  EXPECT_TRUE(h_acks[1].lease_released);
  EXPECT_EQ(TxIds(PopPartition(queue, "P", 5, "h")), (Strings{"m-4"}));
}

}  // namespace
}  // namespace ordo::conformance
