// POST /api/v1/ack, /api/v1/ack/batch, /api/v1/lease/:leaseId/extend, and retry / dead-letter
// over HTTP.
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

class BrokerAckTest : public BrokerTest {
 protected:
  std::string Configure(const std::string& q, const std::string& options) {
    HttpResponse r = http().Post("/api/v1/configure", "{\"queue\":" + JsonQuote(q) +
                                                          ",\"options\":" + options + "}");
    EXPECT_EQ(r.status, 200) << r.Describe();
    return r.body;
  }
  static double Now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

TEST_F(BrokerAckTest, CompletedAckAnswerShapeAndLeaseRelease) {
  const std::string q = UniqueName("ack");
  PushOne(q, "1", "t-a", "p");
  PushOne(q, "2", "t-b", "p");
  JsonDoc pop = PopPartition(q, "p", "batch=2");
  ASSERT_EQ(pop.Size("/messages"), 2u) << pop.text();

  JsonDoc first = Ack(pop, 0);
  ASSERT_EQ(first.Size(""), 1u) << first.text();
  EXPECT_EQ(first.Int("/0/index"), 0);
  EXPECT_EQ(first.String("/0/transactionId"), "t-a");
  EXPECT_EQ(first.Bool("/0/success"), true) << first.text();
  EXPECT_TRUE(first.IsNull("/0/error")) << first.text();
  EXPECT_EQ(first.String("/0/queueName"), q);
  EXPECT_EQ(first.String("/0/partitionName"), "p");
  EXPECT_EQ(first.Bool("/0/leaseReleased"), false) << "one message of the batch is left";
  EXPECT_EQ(first.Bool("/0/dlq"), false);

  JsonDoc second = Ack(pop, 1, "success");  // `success` is an alias of completed
  EXPECT_EQ(second.Bool("/0/success"), true) << second.text();
  EXPECT_EQ(second.Bool("/0/leaseReleased"), true) << "the whole batch is done: " << second.text();

  // Acking again: the lease is gone.
  JsonDoc third = Ack(pop, 1);
  EXPECT_EQ(third.Bool("/0/success"), false) << third.text();
  EXPECT_EQ(third.String("/0/error"), "Invalid or expired lease") << third.text();

  EXPECT_EQ(PopPartition(q, "p").Size("/messages"), 0u);
}

TEST_F(BrokerAckTest, RefusedAcksSayWhy) {
  const std::string q = UniqueName("refused");
  PushOne(q, "1", "known");
  JsonDoc pop = Pop(q);
  ASSERT_EQ(pop.Size("/messages"), 1u);
  std::string partition_id = pop.String("/partitionId").value_or("");
  std::string lease = pop.String("/leaseId").value_or("");

  HttpResponse unknown_tx = http().Post(
      "/api/v1/ack", "{\"transactionId\":\"never-pushed\",\"partitionId\":" +
                         JsonQuote(partition_id) + ",\"leaseId\":" + JsonQuote(lease) +
                         ",\"status\":\"completed\"}");
  ASSERT_EQ(unknown_tx.status, 200) << unknown_tx.Describe();
  JsonDoc a(unknown_tx.body);
  EXPECT_EQ(a.Bool("/0/success"), false) << unknown_tx.body;
  EXPECT_EQ(a.String("/0/error"), "Message not found") << unknown_tx.body;

  HttpResponse foreign_lease = http().Post(
      "/api/v1/ack", "{\"transactionId\":\"known\",\"partitionId\":" + JsonQuote(partition_id) +
                         ",\"leaseId\":\"00000000-0000-4000-8000-000000000000\""
                         ",\"status\":\"completed\"}");
  ASSERT_EQ(foreign_lease.status, 200) << foreign_lease.Describe();
  JsonDoc b(foreign_lease.body);
  EXPECT_EQ(b.Bool("/0/success"), false) << foreign_lease.body;
  EXPECT_EQ(b.String("/0/error"), "Invalid or expired lease") << foreign_lease.body;

  // The refused acks changed nothing: the real one still works.
  EXPECT_EQ(Ack(pop, 0).Bool("/0/success"), true);
}

TEST_F(BrokerAckTest, BatchAckAnswersEachItemInOrder) {
  const std::string q = UniqueName("batch");
  for (int i = 0; i < 3; ++i) PushOne(q, std::to_string(i), Indexed("m", i));
  JsonDoc pop = Pop(q, "batch=3");
  ASSERT_EQ(pop.Size("/messages"), 3u) << pop.text();
  std::string pid = pop.String("/partitionId").value_or("");
  std::string lease = pop.String("/leaseId").value_or("");
  auto item = [&](const std::string& tx, const std::string& lease_id) {
    return "{\"transactionId\":" + JsonQuote(tx) + ",\"partitionId\":" + JsonQuote(pid) +
           ",\"leaseId\":" + JsonQuote(lease_id) + ",\"status\":\"completed\"}";
  };
  std::string body = "{\"acknowledgments\":[" + item("m0", lease) + "," +
                     item("nope", lease) + "," + item("m1", lease) + "," +
                     item("m2", "00000000-0000-4000-8000-000000000001") + "]}";
  HttpResponse r = http().Post("/api/v1/ack/batch", body);
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(IsJsonAnswer(r));
  JsonDoc doc(r.body);
  ASSERT_EQ(doc.Size(""), 4u) << r.body;
  const bool expected_success[] = {true, false, true, false};
  const char* expected_tx[] = {"m0", "nope", "m1", "m2"};
  for (int i = 0; i < 4; ++i) {
    std::string p = Indexed("/", i);
    EXPECT_EQ(doc.Int(p + "/index"), i) << r.body;
    EXPECT_EQ(doc.String(p + "/transactionId"), expected_tx[i]) << r.body;
    EXPECT_EQ(doc.Bool(p + "/success"), expected_success[i]) << r.body;
  }
  EXPECT_EQ(doc.String("/1/error"), "Message not found") << r.body;
  EXPECT_EQ(doc.String("/3/error"), "Invalid or expired lease") << r.body;

  // m2 is still leased and not done; completing it with the right lease ends the batch.
  JsonDoc last = Ack(pop, 2);
  EXPECT_EQ(last.Bool("/0/success"), true) << last.text();
  EXPECT_EQ(last.Bool("/0/leaseReleased"), true) << last.text();
  EXPECT_EQ(Pop(q).Size("/messages"), 0u);
}

TEST_F(BrokerAckTest, LeaseExtendAnswersNewExpiry) {
  const std::string q = UniqueName("extend");
  PushOne(q, "{}");
  JsonDoc pop = Pop(q);
  std::string lease = pop.String("/leaseId").value_or("");
  ASSERT_TRUE(LooksLikeUuid(lease)) << pop.text();

  HttpResponse r = http().Post("/api/v1/lease/" + lease + "/extend", "{\"seconds\":120}");
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(IsJsonAnswer(r));
  JsonDoc doc(r.body);
  ASSERT_EQ(doc.Size(""), 1u) << r.body;
  EXPECT_EQ(doc.Int("/0/index"), 0);
  EXPECT_EQ(doc.String("/0/leaseId"), lease);
  EXPECT_EQ(doc.Bool("/0/success"), true) << r.body;
  EXPECT_TRUE(doc.IsNull("/0/error")) << r.body;
  auto expires = ParseTimestamp(doc.String("/0/expiresAt").value_or(""));
  ASSERT_TRUE(expires.has_value()) << r.body;
  EXPECT_NEAR(*expires, Now() + 120, 30) << r.body;

  // Default 60 s.
  HttpResponse d = http().Post("/api/v1/lease/" + lease + "/extend", "");
  ASSERT_EQ(d.status, 200) << d.Describe();
  auto expires_default = ParseTimestamp(JsonDoc(d.body).String("/0/expiresAt").value_or(""));
  ASSERT_TRUE(expires_default.has_value()) << d.body;
  EXPECT_NEAR(*expires_default, Now() + 60, 30) << d.body;

  // The lease is still the live one.
  EXPECT_EQ(Ack(pop, 0).Bool("/0/success"), true);
}

TEST_F(BrokerAckTest, LeaseExtendOfUnknownLease) {
  HttpResponse r = http().Post("/api/v1/lease/00000000-0000-4000-8000-0000000000aa/extend",
                               "{\"seconds\":10}");
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(IsJsonAnswer(r));
  JsonDoc doc(r.body);
  EXPECT_EQ(doc.Bool("/0/success"), false) << r.body;
  EXPECT_EQ(doc.String("/0/error"), "Lease not found") << r.body;
}

TEST_F(BrokerAckTest, FailedTwiceWithRetryLimitOneGoesToDeadLetter) {
  const std::string q = UniqueName("dlq");
  Configure(q, "{\"retryLimit\":1,\"retryDelay\":0}");
  PushOne(q, "{\"poison\":true}", "bad");

  JsonDoc pop1 = Pop(q, "wait=true&timeout=2000");
  ASSERT_EQ(pop1.Size("/messages"), 1u) << pop1.text();
  EXPECT_EQ(pop1.Int("/messages/0/retryCount"), 0);
  JsonDoc fail1 = Ack(pop1, 0, "failed");
  EXPECT_EQ(fail1.Bool("/0/success"), true) << fail1.text();
  EXPECT_EQ(fail1.Bool("/0/dlq"), false) << fail1.text();
  EXPECT_EQ(fail1.Bool("/0/leaseReleased"), true) << fail1.text();

  JsonDoc pop2 = Pop(q, "wait=true&timeout=2000");
  ASSERT_EQ(pop2.Size("/messages"), 1u) << "not redelivered after the first failure: "
                                         << pop2.text();
  EXPECT_EQ(pop2.String("/messages/0/transactionId"), "bad");
  EXPECT_EQ(pop2.Int("/messages/0/retryCount"), 1) << pop2.text();
  JsonDoc fail2 = Ack(pop2, 0, "failed");
  EXPECT_EQ(fail2.Bool("/0/success"), true) << fail2.text();
  EXPECT_EQ(fail2.Bool("/0/dlq"), true) << fail2.text();

  HttpResponse detail = http().Get("/api/v1/resources/queues/" + UrlEncode(q));
  ASSERT_EQ(detail.status, 200) << detail.Describe();
  JsonDoc d(detail.body);
  ASSERT_EQ(d.Size("/partitions"), 1u) << detail.body;
  EXPECT_EQ(d.Int("/partitions/0/stats/deadLetter"), 1) << detail.body;

  EXPECT_EQ(Pop(q).Size("/messages"), 0u) << "a dead-lettered message is not delivered again";
}

TEST_F(BrokerAckTest, RetryStatusRedeliversWithoutCountingAFailure) {
  const std::string q = UniqueName("retry");
  Configure(q, "{\"retryLimit\":0,\"retryDelay\":0}");
  PushOne(q, "1", "r1");
  JsonDoc pop1 = Pop(q);
  ASSERT_EQ(pop1.Size("/messages"), 1u);
  JsonDoc retry = Ack(pop1, 0, "retry");
  EXPECT_EQ(retry.Bool("/0/success"), true) << retry.text();
  EXPECT_EQ(retry.Bool("/0/dlq"), false) << retry.text();
  JsonDoc pop2 = Pop(q, "wait=true&timeout=2000");
  ASSERT_EQ(pop2.Size("/messages"), 1u) << pop2.text();
  EXPECT_EQ(pop2.Int("/messages/0/retryCount"), 0) << pop2.text();
}

TEST_F(BrokerAckTest, DlqStatusDeadLettersAtOnce) {
  const std::string q = UniqueName("todlq");
  PushOne(q, "1", "x1");
  PushOne(q, "2", "x2");
  JsonDoc pop = Pop(q);
  ASSERT_EQ(pop.Size("/messages"), 1u);
  JsonDoc dlq = Ack(pop, 0, "dlq");
  EXPECT_EQ(dlq.Bool("/0/success"), true) << dlq.text();
  EXPECT_EQ(dlq.Bool("/0/dlq"), true) << dlq.text();
  JsonDoc next = Pop(q);
  ASSERT_EQ(next.Size("/messages"), 1u) << next.text();
  EXPECT_EQ(next.String("/messages/0/transactionId"), "x2");
}

}  // namespace
}  // namespace ordo::integration
