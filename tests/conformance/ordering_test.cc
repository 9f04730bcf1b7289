// Conformance: order within a partition (also under concurrent producers), partitions never block
// each other, wildcard fairness and the batch cap.
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

void ExpectSeqStrictlyIncreasing(const std::vector<Message>& messages) {
  int violations = 0;
  for (size_t i = 1; i < messages.size(); ++i) {
    if (messages[i].seq <= messages[i - 1].seq && ++violations <= 5) {
      ADD_FAILURE() << "seq not increasing at delivery " << i << ": " << messages[i - 1].seq << " ("
                    << messages[i - 1].transaction_id << ") then " << messages[i].seq << " ("
                    << messages[i].transaction_id << ")";
    }
  }
}

std::string ProducerTx(int producer, int k) {
  std::string tx = "p";
  tx += std::to_string(producer);
  tx += '-';
  tx += std::to_string(k);
  return tx;
}

TEST_F(StoreTest, OnePartitionDeliversInPushOrderAcrossPops) {
  const std::string queue = Q();
  Strings expected;
  for (int call = 0; call < 10; ++call) {
    const Strings txids = Names("m", 20, call * 20);
    Push(queue, "P", txids);
    expected.insert(expected.end(), txids.begin(), txids.end());
  }

  std::vector<Message> delivered;
  const int64_t batches[] = {7, 13, 1, 50, 29};
  for (int round = 0; round < 100; ++round) {
    const PopResult pop = PopPartition(queue, "P", batches[round % 5]);
    if (pop.kind == PopKind::kEmpty) break;
    ASSERT_EQ(pop.kind, PopKind::kMessages);
    ASSERT_LE(pop.messages.size(), static_cast<size_t>(batches[round % 5])) << "batch exceeded";
    const std::vector<AckOutcome> acks = AckAll(pop);
    for (size_t i = 0; i < acks.size(); ++i) {
      EXPECT_TRUE(acks[i].success) << acks[i].error;
      EXPECT_EQ(acks[i].lease_released, i + 1 == acks.size())
          << "lease must end exactly when the whole batch is done (ack " << i << ")";
    }
    delivered.insert(delivered.end(), pop.messages.begin(), pop.messages.end());
  }
  EXPECT_EQ(TxIds(delivered), expected);
  ExpectSeqStrictlyIncreasing(delivered);
}

// Each producer pushes one message at a time and waits for it. A push whose completion was seen
// before another push was even issued committed first, so it must have the smaller seq.
TEST_F(StoreTest, ConcurrentProducersKeepCommitOrderInOnePartition) {
  constexpr int kProducers = 8;
  constexpr int kPerProducer = 50;
  const std::string queue = Q();
  struct Record {
    int64_t issued = 0;
    int64_t answered = 0;
  };
  std::vector<std::vector<Record>> records(kProducers, std::vector<Record>(kPerProducer));
  std::atomic<int64_t> ticket{0};
  std::atomic<int> failures{0};
  std::latch start(kProducers);

  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      boost::asio::io_context io;
      start.arrive_and_wait();
      for (int k = 0; k < kPerProducer; ++k) {
        PushItem item;
        item.queue = queue;
        item.partition = "hot";
        item.transaction_id = ProducerTx(p, k);
        item.payload = PayloadFor(item.transaction_id);
        records[p][k].issued = ticket.fetch_add(1);
        auto r = RunOn<std::vector<PushOutcome>>(
            io, [&](Executor ex, Completion<std::vector<PushOutcome>> done) {
              store().Push(ex, {item}, std::move(done));
            });
        records[p][k].answered = ticket.fetch_add(1);
        if (!r.ok() || r->size() != 1 || (*r)[0].status != PushStatus::kQueued) {
          ++failures;
          ADD_FAILURE() << item.transaction_id << " not queued: "
                        << (r.ok() ? (r->empty() ? "no outcome" : (*r)[0].error)
                                   : r.status().message());
        }
      }
    });
  }
  for (std::thread& t : producers) t.join();
  ASSERT_EQ(failures.load(), 0);

  const std::vector<Message> delivered = Drain(queue, "hot", 64);
  ASSERT_EQ(delivered.size(), static_cast<size_t>(kProducers * kPerProducer));

  std::map<std::string, std::pair<int, int>> producer_of;  // txid -> (producer, k)
  for (int p = 0; p < kProducers; ++p) {
    for (int k = 0; k < kPerProducer; ++k) {
      producer_of[ProducerTx(p, k)] = {p, k};
    }
  }
  std::set<std::string> seen;
  std::vector<int> next_k(kProducers, 0);
  std::vector<std::vector<int64_t>> seq_of(kProducers, std::vector<int64_t>(kPerProducer, -1));
  for (const Message& m : delivered) {
    EXPECT_TRUE(seen.insert(m.transaction_id).second) << m.transaction_id << " delivered twice";
    auto it = producer_of.find(m.transaction_id);
    ASSERT_NE(it, producer_of.end()) << "unknown message " << m.transaction_id;
    const auto [p, k] = it->second;
    EXPECT_EQ(k, next_k[p]) << "producer " << p << " out of order";
    next_k[p] = k + 1;
    seq_of[p][k] = m.seq;
  }
  ExpectSeqStrictlyIncreasing(delivered);

  // Commit order across producers: answered(A) < issued(B) implies seq(A) < seq(B).
  int violations = 0;
  for (int pa = 0; pa < kProducers; ++pa) {
    for (int ka = 0; ka < kPerProducer; ++ka) {
      for (int pb = 0; pb < kProducers; ++pb) {
        for (int kb = 0; kb < kPerProducer; ++kb) {
          if (records[pa][ka].answered < records[pb][kb].issued &&
              seq_of[pa][ka] >= seq_of[pb][kb] && ++violations <= 5) {
            ADD_FAILURE() << "p" << pa << "-" << ka << " committed before p" << pb << "-" << kb
                          << " was pushed, yet has seq " << seq_of[pa][ka]
                          << " >= " << seq_of[pb][kb];
          }
        }
      }
    }
  }
  EXPECT_EQ(violations, 0);
}

TEST_F(StoreTest, LeasedPartitionDoesNotBlockOtherPartitions) {
  const std::string queue = Q();
  Push(queue, "A", {"a-0"});  // A holds the oldest message: fairness alone would pick A
  Advance(1);
  Push(queue, "B", {"b-0"});

  const PopResult on_a = PopPartition(queue, "A");
  ASSERT_EQ(on_a.kind, PopKind::kMessages);

  const PopResult wildcard = PopAny(queue);
  ASSERT_EQ(wildcard.kind, PopKind::kMessages) << "lease on A blocked B";
  EXPECT_EQ(wildcard.partition, "B");
  EXPECT_EQ(TxIds(wildcard), (Strings{"b-0"}));
  EXPECT_NE(wildcard.lease_id, on_a.lease_id);

  EXPECT_EQ(PopAny(queue).kind, PopKind::kNoPartition) << "both partitions are leased";

  ASSERT_TRUE(AckAll(wildcard).at(0).success);
  Advance(1);
  Push(queue, "B", {"b-1"});
  const PopResult again = PopAny(queue);
  ASSERT_EQ(again.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(again), (Strings{"b-1"})) << "A is still leased; only B can serve";
}

TEST_F(StoreTest, WildcardPopServesOldestWaitingMessageFirst) {
  const std::string queue = Q();
  // "A-new" is created first and sorts first, so neither id nor name order would pick "Z-old".
  Push(queue, "A-new", {"x"});
  const PopResult first = PopPartition(queue, "A-new");
  ASSERT_EQ(first.kind, PopKind::kMessages);
  ASSERT_TRUE(AckAll(first).at(0).success);

  Advance(1'000);
  Push(queue, "Z-old", {"z-0"});
  Advance(1'000);
  Push(queue, "A-new", Names("a", 3));

  const PopResult pop = PopAny(queue, 10);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  EXPECT_EQ(pop.partition, "Z-old");
  EXPECT_EQ(TxIds(pop), (Strings{"z-0"}));

  const PopResult next = PopAny(queue, 10);
  ASSERT_EQ(next.kind, PopKind::kMessages);
  EXPECT_EQ(next.partition, "A-new");
  EXPECT_EQ(TxIds(next), (Strings{"a-0", "a-1", "a-2"}));
}

TEST_F(StoreTest, WildcardBatchIsCappedAndTakesOnePartition) {
  const std::string queue = Q();
  Push(queue, "P1", Names("p1", 4));
  Advance(1);
  Push(queue, "P2", Names("p2", 6));

  const PopResult pop = PopAny(queue, 3);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  EXPECT_EQ(pop.partitions_claimed, 1);
  EXPECT_EQ(pop.partition, "P1");
  EXPECT_EQ(TxIds(pop), (Strings{"p1-0", "p1-1", "p1-2"}));
  for (const Message& m : pop.messages) {
    EXPECT_EQ(m.partition, pop.partition);
    EXPECT_EQ(m.partition_id, pop.partition_id);
  }

  const PopResult other = PopAny(queue, 3);
  ASSERT_EQ(other.kind, PopKind::kMessages);
  EXPECT_EQ(other.partitions_claimed, 1);
  EXPECT_EQ(TxIds(other), (Strings{"p2-0", "p2-1", "p2-2"}));
}

TEST_F(StoreTest, WildcardPopCanClaimSeveralPartitionsUnderOneLease) {
  const std::string queue = Q();
  Push(queue, "P1", Names("p1", 4));
  Advance(1);
  Push(queue, "P2", Names("p2", 6));
  Advance(1);
  Push(queue, "P3", Names("p3", 1));

  PopRequest req;
  req.queue = queue;
  req.batch = 8;
  req.max_partitions = 2;
  const PopResult pop = Pop(req);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  EXPECT_EQ(pop.partitions_claimed, 2);
  EXPECT_LE(pop.messages.size(), 8u);
  // Oldest-first: P1 and P2 (not P3); within each partition a prefix, in order.
  std::map<std::string, Strings> by_partition;
  for (const Message& m : pop.messages) by_partition[m.partition].push_back(m.transaction_id);
  ASSERT_EQ(by_partition.size(), 2u)
      << "claimed two partitions but delivered from " << by_partition.size();
  ASSERT_EQ(by_partition.count("P1"), 1u);
  ASSERT_EQ(by_partition.count("P2"), 1u);
  EXPECT_EQ(by_partition["P1"], Names("p1", static_cast<int>(by_partition["P1"].size())));
  EXPECT_EQ(by_partition["P2"], Names("p2", static_cast<int>(by_partition["P2"].size())));

  // Both partitions are under the one lease: another consumer cannot take them.
  EXPECT_EQ(PopPartition(queue, "P1").kind, PopKind::kLeaseHeld);
  EXPECT_EQ(PopPartition(queue, "P2").kind, PopKind::kLeaseHeld);
  for (const AckOutcome& a : AckAll(pop)) EXPECT_TRUE(a.success) << a.error;
}

// PopRequest::prefer, the broker's hint: the preferred eligible partitions go first (oldest first
// among them), the rest of the queue after them; prefer_only stops at the preferred ones.
TEST_F(StoreTest, PreferredPartitionsAreChosenFirstThenTheRest) {
  const std::string queue = Q();
  Push(queue, "old", {"o-0"});
  Advance(1'000);
  Push(queue, "mid", {"m-0"});
  Advance(1'000);
  Push(queue, "new", {"n-0"});

  PopRequest req;
  req.queue = queue;
  req.batch = 10;
  req.prefer = {"new", "mid"};
  const PopResult first = Pop(req);
  ASSERT_EQ(first.kind, PopKind::kMessages);
  EXPECT_EQ(first.partition, "mid") << "oldest first among the preferred";

  // A preferred partition with nothing eligible (leased, or missing): the oldest of the rest.
  req.prefer = {"mid", "no-such-partition"};
  const PopResult fallback = Pop(req);
  ASSERT_EQ(fallback.kind, PopKind::kMessages);
  EXPECT_EQ(fallback.partition, "old");

  // prefer_only: the rest of the queue is not looked at.
  req.prefer_only = true;
  EXPECT_EQ(Pop(req).kind, PopKind::kNoPartition) << "only mid (leased) may be chosen";
  req.prefer = {"new"};
  const PopResult only = Pop(req);
  ASSERT_EQ(only.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(only), (Strings{"n-0"}));
  req.prefer.clear();
  EXPECT_EQ(Pop(req).kind, PopKind::kNoPartition) << "prefer_only with nothing preferred";
  for (const PopResult* p : {&first, &fallback, &only}) {
    for (const AckOutcome& a : AckAll(*p)) EXPECT_TRUE(a.success) << a.error;
  }
}

std::string Numbered(const char* prefix, int i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

// PopResult::more_eligible: what a pop choosing among all the queue's partitions found eligible
// and did not look at, oldest waiting message first; nothing when it did not choose among all.
TEST_F(StoreTest, AWildcardPopNamesTheEligiblePartitionsItLeft) {
  const std::string queue = Q();
  for (int i = 0; i < 7; ++i) {
    Push(queue, Numbered("P", i), {Numbered("m", i)});
    Advance(1'000);
  }
  const PopResult p3 = PopPartition(queue, "P3");  // leased: not eligible
  ASSERT_EQ(p3.kind, PopKind::kMessages);
  EXPECT_TRUE(p3.more_eligible.empty()) << "a pop of a named partition chooses nothing";

  PopRequest req;
  req.queue = queue;
  req.batch = 10;
  const PopResult first = Pop(req);
  ASSERT_EQ(first.kind, PopKind::kMessages);
  EXPECT_EQ(first.partition, "P0");
  EXPECT_EQ(first.more_eligible, (Strings{"P1", "P2", "P4", "P5", "P6"}));

  // The preferred partition fills the pop: the rest of the queue is not read.
  req.prefer = {"P6"};
  const PopResult preferred = Pop(req);
  ASSERT_EQ(preferred.kind, PopKind::kMessages);
  EXPECT_EQ(preferred.partition, "P6");
  EXPECT_TRUE(preferred.more_eligible.empty());

  // The preferred one is leased: the choice among all, stopped by the batch (one message) while
  // it could still take two more partitions.
  req.prefer = {"P3"};
  req.batch = 1;
  req.max_partitions = 3;
  const PopResult rest = Pop(req);
  ASSERT_EQ(rest.kind, PopKind::kMessages);
  EXPECT_EQ(rest.partition, "P1");
  EXPECT_EQ(rest.more_eligible, (Strings{"P2", "P4", "P5"}));

  req.prefer = {"P2"};
  req.prefer_only = true;
  const PopResult only = Pop(req);
  ASSERT_EQ(only.kind, PopKind::kMessages);
  EXPECT_TRUE(only.more_eligible.empty()) << "prefer_only reads the preferred ones alone";

  // Nothing left after the claims: nothing named.
  req = PopRequest{};
  req.queue = queue;
  req.batch = 10;
  req.max_partitions = 5;
  const PopResult last = Pop(req);
  ASSERT_EQ(last.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(last), (Strings{"m4", "m5"}));
  EXPECT_TRUE(last.more_eligible.empty());
  EXPECT_EQ(Pop(req).kind, PopKind::kNoPartition);
  for (const PopResult* p : {&p3, &first, &preferred, &rest, &only, &last}) {
    for (const AckOutcome& a : AckAll(*p)) EXPECT_TRUE(a.success) << a.error;
  }
}

// More preferred names than a store may handle in one statement still come first.
TEST_F(StoreTest, SeventeenPreferredPartitionsStillComeFirst) {
  const std::string queue = Q();
  PopRequest req;
  req.queue = queue;
  req.batch = 10;
  for (int i = 0; i < 20; ++i) {
    Push(queue, Numbered("P", i), {Numbered("m", i)});
    if (i >= 3) req.prefer.push_back(Numbered("P", i));
    AdvanceMicros(10);
  }
  ASSERT_EQ(req.prefer.size(), 17u);
  const PopResult pop = Pop(req);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  EXPECT_EQ(pop.partition, "P3") << "oldest first among the preferred";
  EXPECT_TRUE(pop.more_eligible.empty());
  req.prefer_only = true;
  req.max_partitions = 20;
  req.batch = 20;
  const PopResult only = Pop(req);
  ASSERT_EQ(only.kind, PopKind::kMessages);
  EXPECT_EQ(only.partitions_claimed, 16) << "P4..P19, not P0..P2";
  for (const PopResult* p : {&pop, &only}) {
    for (const AckOutcome& a : AckAll(*p)) EXPECT_TRUE(a.success) << a.error;
  }
}

TEST_F(StoreTest, AWildcardPopNamesAtMost64EligiblePartitions) {
  const std::string queue = Q();
  Strings expected;
  for (int i = 0; i < 70; ++i) {
    const std::string p = Numbered("P", i);
    Push(queue, p, {Numbered("m", i)});
    if (i >= 1 && i <= 64) expected.push_back(p);
    AdvanceMicros(10);
  }
  PopRequest req;
  req.queue = queue;
  const PopResult pop = Pop(req);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  EXPECT_EQ(pop.partition, "P0");
  EXPECT_EQ(pop.more_eligible, expected);
  for (const AckOutcome& a : AckAll(pop)) EXPECT_TRUE(a.success) << a.error;
}

TEST_F(StoreTest, PreferredPartitionsFillAPopOfSeveralPartitionsFromTheRest) {
  const std::string queue = Q();
  Push(queue, "P1", Names("p1", 2));
  Advance(1);
  Push(queue, "P2", Names("p2", 2));
  Advance(1);
  Push(queue, "P3", Names("p3", 2));

  PopRequest req;
  req.queue = queue;
  req.batch = 10;
  req.max_partitions = 2;
  req.prefer = {"P3"};
  const PopResult pop = Pop(req);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  EXPECT_EQ(pop.partitions_claimed, 2);
  std::set<std::string> partitions;
  for (const Message& m : pop.messages) partitions.insert(m.partition);
  EXPECT_EQ(partitions, (std::set<std::string>{"P1", "P3"}))
      << "the preferred P3, then the oldest of the rest";
  for (const AckOutcome& a : AckAll(pop)) EXPECT_TRUE(a.success) << a.error;
}

}  // namespace
}  // namespace ordo::conformance
