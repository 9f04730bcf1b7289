// Pushes whose statement waits for a partition row while another transaction changes what the
// statement's snapshot saw. The broker's push of one item goes through ordo.push_one (migration
// 015), the other client's through ordo.push (012):
//  - another push of the same transaction id into the partition: "duplicate", one message, and
//    the seq the waiting push took is given back (seqs stay gapless);
//  - the queue deleted meanwhile: the push creates the queue again and stores its message;
//  - a push into a partition that does not exist yet (push_one creates it, migration 018) while
//    the queue's deletion is uncommitted: it waits, then creates the queue again, leaving no
//    partition without a queue; the same for a push of several items into new partitions
//    (ordo._push_general creates them, migration 019);
//  - two pushes creating one new partition: the second waits for the first's row and stores
//    after its message, in the same partition.
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

using integration::BrokerProcess;
using integration::UniqueName;
using integration::UrlEncode;

class PushRaceTest : public PgTest {
 protected:
  // A broker and queue `q_` whose partition P1 holds one message, "first".
  void StartWithP1(const std::string& name) {
    ASSERT_TRUE(broker_.Start());
    q_ = UniqueName(name);
    http_ = std::make_unique<HttpClient>(broker_.port());
    HttpResponse first = PushItems(*http_, {PushItem(q_, "P1", "first", "\"first\"")});
    ASSERT_EQ(first.status, 200) << first.Describe();
  }
  // Another session with a transaction open.
  std::unique_ptr<PgConn> OpenTransaction() {
    std::string error;
    auto conn = PgConn::Open(Env().url, &error);
    EXPECT_TRUE(conn) << error;
    if (conn) {
      EXPECT_TRUE(conn->Exec("BEGIN").ok());
    }
    return conn;
  }
  // A push of `items` through the broker, from a thread of its own.
  std::future<HttpResponse> PushAsync(std::vector<std::string> items) {
    return std::async(std::launch::async, [this, items = std::move(items)] {
      HttpClient c(broker_.port(), 15s);
      return PushItems(c, items);
    });
  }
  // A push of one item to P1 through the broker, from a thread of its own.
  std::future<HttpResponse> PushToP1Async(const std::string& txid, const std::string& payload) {
    return PushAsync({PushItem(q_, "P1", txid, payload)});
  }
  // Once `push` waits for a lock of `other`, commits `other` and returns the push's answer.
  HttpResponse CommitThenAnswer(PgConn& other, std::future<HttpResponse>& push) {
    if (!SomeBackendWaitsFor(other)) ADD_FAILURE() << "the broker's push never waited for a lock";
    if (!other.Exec("COMMIT").ok()) ADD_FAILURE() << "COMMIT failed";
    if (push.wait_for(10s) != std::future_status::ready) {
      HttpResponse none;
      none.error = "no answer within 10 s";
      return none;
    }
    return push.get();
  }
  // Partition rows whose queue row is gone (none may exist).
  static std::string PartitionsWithoutAQueue(PgConn& db) {
    std::string error;
    auto n = db.Scalar(
        "SELECT count(*) FROM ordo.partitions p WHERE NOT EXISTS"
        " (SELECT 1 FROM ordo.queues q WHERE q.pk = p.queue_pk)",
        {}, &error);
    return n ? *n : "<" + error + ">";
  }
  // The queue's deletion done and left uncommitted; then `items`, into partitions that do not
  // exist, pushed through the broker. Expects the push to wait for the deletion, to answer
  // "queued" for every item once it is committed, and to store them in the queue created anew
  // as `stored` says (partition:transaction id, by partition), leaving no partition without a
  // queue.
  void PushIntoNewPartitionsDuringTheQueuesDeletion(std::vector<std::string> items,
                                                    const std::string& stored) {
    auto other = OpenTransaction();
    ASSERT_TRUE(other);
    PgConn::Outcome deleted = other->Exec("SELECT ordo.delete_queue($1)", {q_});
    ASSERT_TRUE(deleted.ok()) << deleted.error;

    const size_t n = items.size();
    auto waiting_push = PushAsync(std::move(items));
    HttpResponse r = CommitThenAnswer(*other, waiting_push);
    ASSERT_EQ(r.status, 200) << r.Describe();
    JsonDoc doc(r.body);
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(doc.String("/" + std::to_string(i) + "/status"), "queued") << r.body;
    }
    std::string error;
    EXPECT_EQ(
        other->Scalar("SELECT string_agg(p.name || ':' || m.transaction_id, ',' ORDER BY p.name)"
                      " FROM ordo.queues q JOIN ordo.partitions p ON p.queue_pk = q.pk"
                      " JOIN ordo.messages m ON m.partition_pk = p.pk WHERE q.name = $1",
                      {q_}, &error),
        stored)
        << error;
    EXPECT_EQ(PartitionsWithoutAQueue(*other), "0");
  }
  // Everything P1 delivers to one pop.
  std::vector<Delivery> PopP1() {
    HttpResponse pop = http_->Get("/api/v1/pop/queue/" + UrlEncode(q_) + "/partition/P1?batch=10");
    EXPECT_EQ(pop.status, 200) << pop.Describe();
    return Deliveries(JsonDoc(pop.body));
  }

  BrokerProcess broker_;
  std::string q_;
  std::unique_ptr<HttpClient> http_;
};

TEST_F(PushRaceTest, ASecondPushOfATransactionIdThatWaitedForTheFirstAnswersDuplicate) {
  StartWithP1("race");
  if (HasFatalFailure()) return;

  // Another client's push of "tx-race", inside a transaction left open: it holds P1's row.
  auto other = OpenTransaction();
  ASSERT_TRUE(other);
  const std::string other_id = "0190a0a0-0000-7000-8000-" + RandomHex(12);
  PgConn::Outcome pushed = other->Exec(
      "SELECT status, message_id FROM ordo.push(ARRAY[$1], ARRAY['P1'], ARRAY[$2],"
      " ARRAY['tx-race'], NULL, ARRAY['\"theirs\"'],"
      " (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, NULL, NULL)",
      {q_, other_id});
  ASSERT_TRUE(pushed.ok()) << pushed.error;
  ASSERT_EQ(PQntuples(pushed.result.get()), 1);
  ASSERT_STREQ(PQgetvalue(pushed.result.get(), 0, 0), "0") << "stored";

  // The broker's push of the same id waits for that row.
  auto racing = PushToP1Async("tx-race", "\"ours\"");
  ASSERT_TRUE(SomeBackendWaitsFor(*other)) << "the broker's push never waited for the row";
  ASSERT_TRUE(other->Exec("COMMIT").ok());

  ASSERT_EQ(racing.wait_for(10s), std::future_status::ready) << "the push never got an answer";
  HttpResponse r = racing.get();
  ASSERT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  EXPECT_EQ(doc.String("/0/status"), "duplicate") << r.body;
  EXPECT_EQ(doc.String("/0/message_id"), other_id) << r.body;

  // One message of that id, the other client's, after "first".
  std::vector<Delivery> got = PopP1();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].data, "\"first\"");
  EXPECT_EQ(got[1].transaction_id, "tx-race");
  EXPECT_EQ(got[1].data, "\"theirs\"");

  // The partition takes pushes as before.
  HttpResponse after = PushItems(*http_, {PushItem(q_, "P1", "after", "\"after\"")});
  ASSERT_EQ(after.status, 200) << after.Describe();
  EXPECT_EQ(JsonDoc(after.body).String("/0/status"), "queued") << after.body;
  std::string error;
  EXPECT_EQ(other->Scalar("SELECT string_agg(m.seq::text, ',' ORDER BY m.seq) || '/' || p.last_seq"
                          " FROM ordo.queues q JOIN ordo.partitions p ON p.queue_pk = q.pk"
                          " JOIN ordo.messages m ON m.partition_pk = p.pk"
                          " WHERE q.name = $1 AND p.name = 'P1' GROUP BY p.last_seq",
                          {q_}, &error),
            "1,2,3/3")
      << error;
}

TEST_F(PushRaceTest, APushThatWaitedForItsQueueToBeDeletedStoresIntoTheQueueAnew) {
  StartWithP1("deleted");
  if (HasFatalFailure()) return;

  auto other = OpenTransaction();
  ASSERT_TRUE(other);
  PgConn::Outcome lock = other->Exec(
      "SELECT 1 FROM ordo.partitions p JOIN ordo.queues q ON q.pk = p.queue_pk"
      " WHERE q.name = $1 AND p.name = 'P1' FOR UPDATE OF p",
      {q_});
  ASSERT_TRUE(lock.ok()) << lock.error;
  ASSERT_EQ(PQntuples(lock.result.get()), 1);

  auto waiting_push = PushToP1Async("second", "\"second\"");
  ASSERT_TRUE(SomeBackendWaitsFor(*other)) << "the broker's push never waited for the row";
  PgConn::Outcome deleted = other->Exec("SELECT ordo.delete_queue($1)", {q_});
  ASSERT_TRUE(deleted.ok()) << deleted.error;
  ASSERT_TRUE(other->Exec("COMMIT").ok());

  ASSERT_EQ(waiting_push.wait_for(10s), std::future_status::ready) << "no answer";
  HttpResponse r = waiting_push.get();
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(JsonDoc(r.body).String("/0/status"), "queued") << r.body;

  // The queue exists again with that message alone: "first" went with the deletion.
  std::vector<Delivery> got = PopP1();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, "\"second\"");
}

TEST_F(PushRaceTest, APushIntoANewPartitionWaitsForItsQueueDeletionAndCreatesTheQueueAnew) {
  StartWithP1("newpart-deleted");
  if (HasFatalFailure()) return;
  // One item: ordo.push_one creates the partition when it can lock the queue (migration 018).
  PushIntoNewPartitionsDuringTheQueuesDeletion({PushItem(q_, "P2", "into-p2", "\"p2\"")},
                                               "P2:into-p2");
}

TEST_F(PushRaceTest, APushOfSeveralItemsIntoNewPartitionsWaitsForItsQueueDeletion) {
  StartWithP1("newparts-deleted");
  if (HasFatalFailure()) return;
  // Two items: ordo.push hands them to ordo._push_general, which creates partitions for queues it
  // could lock (migration 019).
  PushIntoNewPartitionsDuringTheQueuesDeletion(
      {PushItem(q_, "P4", "into-p4", "\"p4\""), PushItem(q_, "P5", "into-p5", "\"p5\"")},
      "P4:into-p4,P5:into-p5");
}

TEST_F(PushRaceTest, TwoPushesCreatingOneNewPartitionStoreOneAfterTheOther) {
  StartWithP1("newpart-twice");
  if (HasFatalFailure()) return;

  // Another client's push creates P3, inside a transaction left open.
  auto other = OpenTransaction();
  ASSERT_TRUE(other);
  PgConn::Outcome pushed = other->Exec(
      "SELECT status FROM ordo.push_one($1, 'P3', $2, 'theirs', NULL, '\"theirs\"',"
      " (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, NULL)",
      {q_, "0190a0a0-0000-7000-8000-" + RandomHex(12)});
  ASSERT_TRUE(pushed.ok()) << pushed.error;
  ASSERT_EQ(PQntuples(pushed.result.get()), 1);
  ASSERT_STREQ(PQgetvalue(pushed.result.get(), 0, 0), "0") << "stored";

  // The broker's push into P3 waits for that partition row.
  auto racing = PushAsync({PushItem(q_, "P3", "ours", "\"ours\"")});
  HttpResponse r = CommitThenAnswer(*other, racing);
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(JsonDoc(r.body).String("/0/status"), "queued") << r.body;

  // One partition P3, holding both messages in commit order.
  std::string error;
  EXPECT_EQ(other->Scalar("SELECT count(DISTINCT p.pk) || ':' || string_agg(m.transaction_id || '@'"
                          " || m.seq, ',' ORDER BY m.seq) || '/' || max(p.last_seq)"
                          " FROM ordo.queues q JOIN ordo.partitions p ON p.queue_pk = q.pk"
                          " JOIN ordo.messages m ON m.partition_pk = p.pk"
                          " WHERE q.name = $1 AND p.name = 'P3'",
                          {q_}, &error),
            "1:theirs@1,ours@2/2")
      << error;
}

}  // namespace
}  // namespace ordo::pg_test
