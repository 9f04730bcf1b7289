// Conformance: Store::Transaction commits every push and ack of a call together or none of them
// (semantics.md rule 6), reports duplicates without aborting, and leaves the engine's state (and
// anything it caches) as if a refused transaction had never been sent.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>

#include "broker/transaction.h"
#include "store_fixture.h"

namespace ordo::conformance {
namespace {

using broker::TxOperation;
using broker::TxRequest;
using broker::TxResult;

PushItem Item(const std::string& queue, const std::string& partition, const std::string& txid) {
  PushItem item;
  item.queue = queue;
  item.partition = partition;
  item.transaction_id = txid;
  item.payload = PayloadFor(txid);
  return item;
}

TxOperation PushOp(std::vector<PushItem> items) {
  TxOperation op;
  op.kind = TxOperation::Kind::kPush;
  op.items = std::move(items);
  return op;
}

TxOperation AckOp(AckItem ack) {
  TxOperation op;
  op.kind = TxOperation::Kind::kAck;
  op.ack = std::move(ack);
  return op;
}

class TransactionTest : public StoreTest {
 protected:
  Result<TxResult> Transact(std::vector<TxOperation> operations) {
    TxRequest req;
    req.operations = std::move(operations);
    return Run<TxResult>([&](Executor ex, Completion<TxResult> done) {
      store().Transaction(ex, std::move(req), std::move(done));
    });
  }

  // Pops one message of `queue` (partition P) under a lease, failing the test otherwise.
  PopResult PopOne(const std::string& queue) {
    PopResult pop = PopPartition(queue, "P");
    EXPECT_EQ(pop.kind, PopKind::kMessages);
    EXPECT_EQ(pop.messages.size(), 1u);
    return pop;
  }

  broker::MessageCounts Counts(const std::string& queue) {
    auto q = GetQueue(queue);
    EXPECT_TRUE(q.ok()) << q.status().message();
    return q.ok() ? q->totals : broker::MessageCounts{};
  }
};

TEST_F(TransactionTest, ARefusedAckLeavesNoTraceOfTheEarlierOperations) {
  const std::string src = Q("src");
  const std::string next = Q("next");
  Push(src, "P", {"s-0"});
  Push(next, "P", {"n-0"});  // an existing partition: its head must survive the rollback
  const PopResult pop = PopOne(src);
  ASSERT_EQ(pop.messages.size(), 1u);
  const Message& m = pop.messages[0];
  const broker::MessageCounts src_before = Counts(src);
  const broker::MessageCounts next_before = Counts(next);

  auto r = Transact({
      PushOp({Item(next, "P", "n-1"), Item(next + "-new", "P", "fresh")}),
      AckOp(MakeAck(m.transaction_id, m.partition_id, pop.lease_id)),  // valid: undone too
      AckOp(MakeAck(m.transaction_id, m.partition_id, RandomUuidV4())),
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kConflict);
  // The valid ack before it already completed the message inside the transaction, so the
  // refused one is a second ack of a completed message.
  EXPECT_EQ(r.status().message(), "operations[2]: Invalid or expired lease");

  // Nothing of the call is stored: no new queue, no message, the ack undone.
  EXPECT_EQ(GetQueue(next + "-new").status().code(), Code::kNotFound);
  const broker::MessageCounts next_after = Counts(next);
  EXPECT_EQ(next_after.total, next_before.total);
  EXPECT_EQ(next_after.pending, next_before.pending);
  const broker::MessageCounts src_after = Counts(src);
  EXPECT_EQ(src_after.total, src_before.total);
  EXPECT_EQ(src_after.processing, 1) << "the message is still leased";
  EXPECT_EQ(src_after.completed, 0);
  EXPECT_EQ(PopAny(next + "-new").kind, PopKind::kNoPartition);

  // The lease is intact: the plain ack of the same message succeeds now.
  const AckOutcome again = AckMessage(m, pop.lease_id);
  EXPECT_TRUE(again.success) << again.error;
  EXPECT_TRUE(again.lease_released);

  // The partition head is the one before the rollback: the next push numbers after n-0, the
  // rolled-back transaction id is free, and n-1 is not a duplicate.
  const std::vector<PushOutcome> later = Push(next, "P", {"n-1", "n-2"});
  ASSERT_EQ(later.size(), 2u);
  EXPECT_EQ(later[0].status, PushStatus::kQueued);
  EXPECT_EQ(TxIds(Drain(next, "P")), (Strings{"n-0", "n-1", "n-2"}));
}

TEST_F(TransactionTest, AnAckOfAnUnknownMessageRefusesTheWholeCall) {
  const std::string queue = Q();
  Push(queue, "P", {"a-0"});
  const PopResult pop = PopOne(queue);
  ASSERT_EQ(pop.messages.size(), 1u);

  auto r = Transact({AckOp(MakeAck("never-pushed", pop.messages[0].partition_id, pop.lease_id)),
                     PushOp({Item(queue, "P", "a-1")})});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kConflict);
  EXPECT_EQ(r.status().message(), "operations[0]: Message not found");
  EXPECT_EQ(Counts(queue).total, 1);
}

TEST_F(TransactionTest, AckAndFollowUpPushCommitTogether) {
  const std::string src = Q("src");
  const std::string next = Q("next");
  Push(src, "P", {"job"});
  const PopResult pop = PopOne(src);
  ASSERT_EQ(pop.messages.size(), 1u);
  const Message& m = pop.messages[0];

  auto r = Transact({AckOp(MakeAck(m.transaction_id, m.partition_id, pop.lease_id)),
                     PushOp({Item(next, "Default", "follow-up")})});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->operations.size(), 2u);
  const AckOutcome& ack = r->operations[0].ack;
  EXPECT_TRUE(ack.success);
  EXPECT_TRUE(ack.lease_released) << "the whole leased batch is done";
  EXPECT_EQ(ack.queue, src);
  EXPECT_EQ(ack.partition, "P");
  EXPECT_TRUE(r->operations[0].pushed.empty());
  ASSERT_EQ(r->operations[1].pushed.size(), 1u);
  const PushOutcome& pushed = r->operations[1].pushed[0];
  EXPECT_EQ(pushed.status, PushStatus::kQueued);
  EXPECT_EQ(pushed.transaction_id, "follow-up");
  EXPECT_EQ(pushed.queue, next);
  EXPECT_TRUE(IsUuidV7(pushed.message_id)) << pushed.message_id;
  EXPECT_TRUE(IsUuidText(pushed.partition_id)) << pushed.partition_id;

  // The acked message is done, and the follow-up is there to pop.
  EXPECT_EQ(PopAny(src).kind, PopKind::kNoPartition);
  EXPECT_EQ(Counts(src).completed, 1);
  const PopResult follow = PopAny(next);
  ASSERT_EQ(follow.kind, PopKind::kMessages);
  ASSERT_EQ(follow.messages.size(), 1u);
  EXPECT_EQ(follow.messages[0].id, pushed.message_id);
  EXPECT_EQ(follow.messages[0].payload, PayloadFor("follow-up"));
  EXPECT_EQ(follow.messages[0].partition_id, pushed.partition_id);
}

TEST_F(TransactionTest, DuplicatesAreReportedAndTheRestCommits) {
  const std::string queue = Q();
  const std::vector<PushOutcome> stored = Push(queue, "P", {"d-0"});
  ASSERT_EQ(stored.size(), 1u);

  auto r =
      Transact({PushOp({Item(queue, "P", "d-0"), Item(queue, "P", "d-1"), Item(queue, "P", "d-1")}),
                PushOp({Item(queue, "P", "d-1"), Item(queue, "P", "d-2")})});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->operations.size(), 2u);
  const std::vector<PushOutcome>& first = r->operations[0].pushed;
  const std::vector<PushOutcome>& second = r->operations[1].pushed;
  ASSERT_EQ(first.size(), 3u);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(first[0].status, PushStatus::kDuplicate);
  EXPECT_EQ(first[0].message_id, stored[0].message_id) << "a duplicate names the original";
  EXPECT_EQ(first[1].status, PushStatus::kQueued);
  EXPECT_EQ(first[2].status, PushStatus::kDuplicate) << "a copy within the same operation";
  EXPECT_EQ(first[2].message_id, first[1].message_id);
  EXPECT_EQ(second[0].status, PushStatus::kDuplicate) << "a copy in a later operation";
  EXPECT_EQ(second[0].message_id, first[1].message_id);
  EXPECT_EQ(second[1].status, PushStatus::kQueued);

  EXPECT_EQ(TxIds(Drain(queue, "P")), (Strings{"d-0", "d-1", "d-2"}));
}

TEST_F(TransactionTest, OneTransactionSpansSeveralQueuesAndPartitions) {
  const std::string a = Q("a");
  const std::string b = Q("b");
  const std::string c = Q("c");
  Push(a, "P", {"a-0"});
  Push(b, "P", {"b-0"});
  const PopResult pop_a = PopOne(a);
  const PopResult pop_b = PopOne(b);
  ASSERT_EQ(pop_a.messages.size(), 1u);
  ASSERT_EQ(pop_b.messages.size(), 1u);

  auto r = Transact({
      PushOp({Item(c, "X", "c-x"), Item(c, "Y", "c-y")}),
      AckOp(MakeAck("a-0", pop_a.messages[0].partition_id, pop_a.lease_id)),
      PushOp({Item(a, "P", "a-1")}),
      AckOp(MakeAck("b-0", pop_b.messages[0].partition_id, pop_b.lease_id, AckStatus::kRetry)),
  });
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->operations.size(), 4u);
  EXPECT_EQ(r->operations[0].pushed.size(), 2u);
  EXPECT_NE(r->operations[0].pushed[0].partition_id, r->operations[0].pushed[1].partition_id);
  EXPECT_TRUE(r->operations[1].ack.success);
  EXPECT_EQ(r->operations[1].ack.queue, a);
  EXPECT_TRUE(r->operations[3].ack.success);
  EXPECT_TRUE(r->operations[3].ack.lease_released) << "retry ends the lease";
  EXPECT_EQ(r->operations[3].ack.queue, b);

  EXPECT_EQ(TxIds(Drain(c, "X")), (Strings{"c-x"}));
  EXPECT_EQ(TxIds(Drain(c, "Y")), (Strings{"c-y"}));
  EXPECT_EQ(TxIds(Drain(a, "P")), (Strings{"a-1"})) << "a-0 was completed by the transaction";
  EXPECT_EQ(TxIds(Drain(b, "P")), (Strings{"b-0"})) << "retry makes b-0 deliverable again";
}

TEST_F(TransactionTest, EmptyTransactionsCommitNothing) {
  auto none = Transact({});
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_TRUE(none->operations.empty());

  auto empty_push = Transact({PushOp({})});
  ASSERT_TRUE(empty_push.ok()) << empty_push.status().message();
  ASSERT_EQ(empty_push->operations.size(), 1u);
  EXPECT_TRUE(empty_push->operations[0].pushed.empty());
}

TEST_F(TransactionTest, PushesOfATransactionTakeTheirPlaceInCommitOrder) {
  const std::string queue = Q();
  Push(queue, "P", {"m-0"});
  auto r = Transact({PushOp({Item(queue, "P", "m-1"), Item(queue, "P", "m-2")})});
  ASSERT_TRUE(r.ok()) << r.status().message();
  Push(queue, "P", {"m-3"});
  EXPECT_EQ(TxIds(Drain(queue, "P")), (Strings{"m-0", "m-1", "m-2", "m-3"}));
}

// Refused transactions racing plain pushes to the same partition: each refusal takes back its
// own work only, never a neighbour's (SQLite commits them in one group; PostgreSQL must not batch
// them together), and the partition numbering stays dense and in commit order.
TEST_F(TransactionTest, RefusedTransactionsDoNotTakeConcurrentPushesWithThem) {
  const std::string queue = Q();
  constexpr int kRounds = 20;
  int pending = 0;
  std::vector<std::string> expected;
  std::vector<Status> push_status, tx_status;
  const Executor ex = io_.get_executor();
  for (int i = 0; i < kRounds; ++i) {
    const std::string plain = "plain-" + std::to_string(i);
    expected.push_back(plain);
    ++pending;
    store().Push(ex, {Item(queue, "P", plain)}, [&](Result<std::vector<PushOutcome>> r) {
      push_status.push_back(r.status());
      if (r.ok() && (r->size() != 1 || (*r)[0].status != PushStatus::kQueued)) {
        ADD_FAILURE() << "a plain push was not queued";
      }
      --pending;
    });
    TxRequest req;
    req.operations = {PushOp({Item(queue, "P", "rolled-back-" + std::to_string(i))}),
                      AckOp(MakeAck("nothing", "no-such-partition", RandomUuidV4()))};
    ++pending;
    store().Transaction(ex, std::move(req), [&](Result<TxResult> r) {
      tx_status.push_back(r.status());
      --pending;
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + kOperationGuard;
  auto work = boost::asio::make_work_guard(io_);
  io_.restart();
  while (pending > 0 && std::chrono::steady_clock::now() < deadline) {
    io_.run_one_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(pending, 0) << "operations did not complete";
  for (const Status& s : push_status) EXPECT_TRUE(s.ok()) << s.message();
  for (const Status& s : tx_status) {
    EXPECT_EQ(s.code(), Code::kConflict) << s.message();
    EXPECT_EQ(s.message(), "operations[1]: Message not found");
  }
  const std::vector<Message> drained = Drain(queue, "P", 100);
  EXPECT_EQ(TxIds(drained), expected);
  for (size_t i = 0; i < drained.size(); ++i) {
    EXPECT_EQ(drained[i].seq, drained[0].seq + static_cast<int64_t>(i)) << "no gap, no reorder";
  }
}

}  // namespace
}  // namespace ordo::conformance
