// Conformance: idempotent push by (queue, partition, transactionId), within one call, across
// calls and across concurrent calls; server-made transaction ids.
#include <gtest/gtest.h>

#include <latch>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

PushItem Item(const std::string& queue, const std::string& partition, const std::string& tx,
              const std::string& payload) {
  PushItem item;
  item.queue = queue;
  item.partition = partition;
  item.transaction_id = tx;
  item.payload = payload;
  return item;
}

TEST_F(StoreTest, DuplicateTransactionIdIsStoredOnce) {
  const std::string queue = Q();
  const std::vector<PushOutcome> first =
      PushItems({Item(queue, "P", "dup", R"({"copy":1})"), Item(queue, "P", "dup", R"({"copy":2})"),
                 Item(queue, "P", "other", R"({"copy":3})")});
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0].status, PushStatus::kQueued);
  EXPECT_EQ(first[1].status, PushStatus::kDuplicate) << "duplicate inside one call";
  EXPECT_EQ(first[1].message_id, first[0].message_id);
  EXPECT_EQ(first[2].status, PushStatus::kQueued);

  const std::vector<PushOutcome> later = PushItems({Item(queue, "P", "dup", R"({"copy":4})")});
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].status, PushStatus::kDuplicate) << "duplicate of an earlier call";
  EXPECT_EQ(later[0].message_id, first[0].message_id);

  // The same transaction id in another partition is another message.
  const std::vector<PushOutcome> elsewhere = PushItems({Item(queue, "P2", "dup", R"({"copy":5})")});
  ASSERT_EQ(elsewhere.size(), 1u);
  EXPECT_EQ(elsewhere[0].status, PushStatus::kQueued);
  EXPECT_NE(elsewhere[0].message_id, first[0].message_id);

  const std::vector<Message> p = Drain(queue, "P");
  EXPECT_EQ(TxIds(p), (Strings{"dup", "other"}));
  ASSERT_FALSE(p.empty());
  EXPECT_EQ(p[0].payload, R"({"copy":1})") << "the original is kept";
  const std::vector<Message> p2 = Drain(queue, "P2");
  ASSERT_EQ(TxIds(p2), (Strings{"dup"}));
  EXPECT_EQ(p2[0].payload, R"({"copy":5})");
}

// One call into partitions that already exist, interleaved, with duplicates of stored messages
// and of earlier items: each partition gets its new messages in item order after what it
// held. Run at two sizes: PostgreSQL serves the small one with its one-statement push and the
// big one (over 64 items) with the general one (migration 012); both must agree with SQLite.
TEST_F(StoreTest, AnInterleavedCallIntoExistingPartitionsKeepsEachPartitionsOrder) {
  for (const int extra : {0, 80}) {
    const std::string queue = Q(std::to_string(extra));
    Push(queue, "A", {"a0"});
    Push(queue, "B", {"b0", "bx"});  // partitions of different lengths
    Push(queue, "C", {"c0", "cx", "cy"});
    std::vector<PushItem> items = {
        Item(queue, "A", "a1", R"("a1")"),  Item(queue, "B", "b1", R"("b1")"),
        Item(queue, "A", "a1", R"("a1'")"), Item(queue, "C", "c0", R"("c0'")"),
        Item(queue, "B", "b2", R"("b2")"),  Item(queue, "A", "a2", R"("a2")"),
        Item(queue, "C", "c1", R"("c1")"),  Item(queue, "B", "b0", R"("b0'")"),
    };
    Strings more_a;
    for (int i = 0; i < extra; ++i) {
      const std::string tx = "a-extra-" + std::to_string(i);
      items.push_back(Item(queue, "A", tx, "\"" + tx + "\""));
      more_a.push_back(tx);
    }
    const std::vector<PushOutcome> out = PushItems(items);
    ASSERT_EQ(out.size(), items.size()) << "extra " << extra;
    const PushStatus q = PushStatus::kQueued, d = PushStatus::kDuplicate;
    const std::vector<PushStatus> want = {q, q, d, d, q, q, q, d};
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(out[i].status, want[i]) << "item " << i << ", extra " << extra;
    }
    EXPECT_EQ(out[2].message_id, out[0].message_id) << "a repeat answers the first's id";
    for (int i = 0; i < extra; ++i) EXPECT_EQ(out[8 + i].status, q) << "extra item " << i;

    Strings want_a = {"a0", "a1", "a2"};
    want_a.insert(want_a.end(), more_a.begin(), more_a.end());
    const std::vector<Message> a = Drain(queue, "A");
    EXPECT_EQ(TxIds(a), want_a) << "extra " << extra;
    ASSERT_GE(a.size(), 2u);
    EXPECT_EQ(a[1].payload, R"("a1")") << "the first of the repeated items is stored";
    const std::vector<Message> b = Drain(queue, "B");
    EXPECT_EQ(TxIds(b), (Strings{"b0", "bx", "b1", "b2"})) << "extra " << extra;
    const std::vector<Message> c = Drain(queue, "C");
    EXPECT_EQ(TxIds(c), (Strings{"c0", "cx", "cy", "c1"})) << "extra " << extra;
    ASSERT_FALSE(c.empty());
    EXPECT_EQ(c[0].payload, R"({"tx":"c0"})") << "the stored message is kept";
    // Each partition's seqs run 1, 2, ... without a gap: the call took exactly what it stored.
    for (const std::vector<Message>* part : {&a, &b, &c}) {
      for (size_t i = 0; i < part->size(); ++i) {
        EXPECT_EQ((*part)[i].seq, static_cast<int64_t>(i) + 1) << "extra " << extra;
      }
    }
  }
}

TEST_F(StoreTest, ConcurrentDuplicatesAreStoredOnce) {
  constexpr int kProducers = 8;
  const std::string queue = Q();
  std::mutex mu;
  std::vector<PushOutcome> outcomes;
  std::latch start(kProducers);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      boost::asio::io_context io;
      std::vector<PushItem> items = {
          Item(queue, "P", "shared", "{\"from\":" + std::to_string(p) + "}"),
          Item(queue, "P", "own-" + std::to_string(p), "{}")};
      start.arrive_and_wait();
      auto r = RunOn<std::vector<PushOutcome>>(
          io, [&](Executor ex, Completion<std::vector<PushOutcome>> done) {
            store().Push(ex, std::move(items), std::move(done));
          });
      if (!r.ok()) {
        ADD_FAILURE() << "Push: " << r.status().message();
        return;
      }
      EXPECT_EQ(r->size(), 2u);
      if (r->size() != 2) return;
      EXPECT_EQ((*r)[1].status, PushStatus::kQueued);
      std::lock_guard<std::mutex> lock(mu);
      outcomes.push_back((*r)[0]);
    });
  }
  for (std::thread& t : producers) t.join();
  ASSERT_EQ(outcomes.size(), static_cast<size_t>(kProducers));

  int queued = 0;
  std::string original;
  for (const PushOutcome& o : outcomes) {
    EXPECT_NE(o.status, PushStatus::kFailed) << o.error;
    if (o.status == PushStatus::kQueued) {
      ++queued;
      original = o.message_id;
    }
  }
  EXPECT_EQ(queued, 1) << "exactly one concurrent copy is stored";
  for (const PushOutcome& o : outcomes) EXPECT_EQ(o.message_id, original);

  const std::vector<Message> stored = Drain(queue, "P");
  int shared = 0;
  for (const Message& m : stored) {
    if (m.transaction_id == "shared") {
      ++shared;
      EXPECT_EQ(m.id, original);
    }
  }
  EXPECT_EQ(shared, 1);
  EXPECT_EQ(stored.size(), static_cast<size_t>(kProducers + 1));
}

TEST_F(StoreTest, EmptyTransactionIdGetsAUniqueServerMadeOne) {
  const std::string queue = Q();
  std::vector<PushOutcome> pushed =
      PushItems({Item(queue, "P", "", R"({"n":1})"), Item(queue, "P", "", R"({"n":2})")});
  const std::vector<PushOutcome> more = PushItems({Item(queue, "P", "", R"({"n":3})")});
  pushed.insert(pushed.end(), more.begin(), more.end());
  ASSERT_EQ(pushed.size(), 3u);

  std::set<std::string> ids;
  for (const PushOutcome& o : pushed) {
    EXPECT_EQ(o.status, PushStatus::kQueued) << "empty ids must not dedup against each other";
    EXPECT_FALSE(o.transaction_id.empty());
    ids.insert(o.transaction_id);
  }
  EXPECT_EQ(ids.size(), 3u);

  const std::vector<Message> stored = Drain(queue, "P");
  ASSERT_EQ(stored.size(), 3u);
  for (size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(stored[i].transaction_id, pushed[i].transaction_id);
    EXPECT_EQ(stored[i].payload, "{\"n\":" + std::to_string(i + 1) + "}");
  }
}

}  // namespace
}  // namespace ordo::conformance
