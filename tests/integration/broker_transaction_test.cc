// POST /api/v1/transaction over HTTP: pushes and acks on several queues commit together or not
// at all (409 and nothing stored), duplicates are reported without aborting, bad bodies are 400
// (or 413 past the bounds) before anything runs, and a commit wakes parked long polls.
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

class BrokerTransactionTest : public BrokerTest {
 protected:
  HttpResponse Transact(const std::string& operations) {
    return http().Post("/api/v1/transaction", "{\"operations\":[" + operations + "]}");
  }

  static std::string PushOp(const std::string& items) {
    return "{\"type\":\"push\",\"items\":[" + items + "]}";
  }
  static std::string Item(const std::string& queue, const std::string& txid,
                          const std::string& payload, const std::string& partition = "") {
    std::string item = "{\"queue\":" + JsonQuote(queue) + ",\"transactionId\":" + JsonQuote(txid) +
                       ",\"payload\":" + payload;
    if (!partition.empty()) item += ",\"partition\":" + JsonQuote(partition);
    return item + "}";
  }
  // An ack operation for message `i` of a pop answer; `lease` overrides the pop's lease.
  static std::string AckOp(const JsonDoc& pop, size_t i, const std::string& status = "completed",
                           const std::string& lease = "") {
    const std::string m = "/messages/" + std::to_string(i);
    return "{\"type\":\"ack\",\"transactionId\":" +
           JsonQuote(pop.String(m + "/transactionId").value_or("")) +
           ",\"partitionId\":" + JsonQuote(pop.String(m + "/partitionId").value_or("")) +
           ",\"leaseId\":" +
           JsonQuote(lease.empty() ? pop.String("/leaseId").value_or("") : lease) +
           ",\"status\":" + JsonQuote(status) + "}";
  }
  // Total and pending counts of a queue, from GET /resources/queues/:queue ("404" when missing).
  std::string Counts(const std::string& queue) {
    HttpResponse r = http().Get("/api/v1/resources/queues/" + UrlEncode(queue));
    if (r.status == 404) return "404";
    JsonDoc doc(r.body);
    return "total=" + std::to_string(doc.Int("/messages/total").value_or(-1)) +
           " pending=" + std::to_string(doc.Int("/messages/pending").value_or(-1)) +
           " processing=" + std::to_string(doc.Int("/messages/processing").value_or(-1));
  }
};

TEST_F(BrokerTransactionTest, RefusedAckAnswers409AndLeavesNoTraceOfThePush) {
  const std::string src = UniqueName("src");
  const std::string next = UniqueName("next");
  PushOne(src, "{\"job\":1}", "job-1");
  PushOne(next, "{\"n\":0}", "n-0");
  JsonDoc pop = Pop(src);
  ASSERT_EQ(pop.Size("/messages"), 1u) << pop.text();
  const std::string src_before = Counts(src);
  const std::string next_before = Counts(next);

  HttpResponse r = Transact(PushOp(Item(next, "n-1", "{\"n\":1}")) + "," +
                            AckOp(pop, 0, "completed", "00000000-0000-4000-8000-000000000000"));
  ASSERT_EQ(r.status, 409) << r.Describe();
  ASSERT_TRUE(IsJsonAnswer(r));
  JsonDoc doc(r.body);
  EXPECT_EQ(doc.Keys(""), (std::vector<std::string>{"success", "error", "results"})) << r.body;
  EXPECT_EQ(doc.Bool("/success"), false);
  EXPECT_EQ(doc.String("/error"), "operations[1]: Invalid or expired lease") << r.body;
  EXPECT_EQ(doc.Size("/results"), 0u);

  EXPECT_EQ(Counts(src), src_before);
  EXPECT_EQ(Counts(next), next_before) << "the pushed message was stored";
  JsonDoc next_pop = Pop(next, "batch=10");
  ASSERT_EQ(next_pop.Size("/messages"), 1u) << next_pop.text();
  EXPECT_EQ(next_pop.String("/messages/0/transactionId"), "n-0");
  // The lease the transaction did not use is intact.
  JsonDoc ack = Ack(pop, 0);
  EXPECT_EQ(ack.Bool("/0/success"), true) << ack.text();
}

TEST_F(BrokerTransactionTest, AckAndFollowUpPushCommitTogether) {
  const std::string src = UniqueName("src");
  const std::string next = UniqueName("next");
  PushOne(src, "{\"step\":1}", "step-1");
  JsonDoc pop = Pop(src);
  ASSERT_EQ(pop.Size("/messages"), 1u) << pop.text();

  HttpResponse r = Transact(AckOp(pop, 0) + "," + PushOp(Item(next, "t9", "{\"step\":2}")));
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(IsJsonAnswer(r));
  JsonDoc doc(r.body);
  EXPECT_EQ(doc.Bool("/success"), true) << r.body;
  EXPECT_TRUE(LooksLikeUuid(doc.String("/transactionId").value_or(""))) << r.body;
  ASSERT_EQ(doc.Size("/results"), 2u) << r.body;

  EXPECT_EQ(doc.Int("/results/0/index"), 0);
  EXPECT_EQ(doc.String("/results/0/type"), "ack");
  EXPECT_EQ(doc.Bool("/results/0/success"), true);
  EXPECT_TRUE(doc.IsNull("/results/0/error"));
  EXPECT_EQ(doc.String("/results/0/transactionId"), "step-1");
  EXPECT_EQ(doc.String("/results/0/partitionId"), pop.String("/messages/0/partitionId"));
  EXPECT_EQ(doc.String("/results/0/queueName"), src);
  EXPECT_EQ(doc.String("/results/0/partitionName"), "Default");
  EXPECT_EQ(doc.Bool("/results/0/leaseReleased"), true);
  EXPECT_EQ(doc.Bool("/results/0/dlq"), false);

  EXPECT_EQ(doc.Int("/results/1/index"), 1);
  EXPECT_EQ(doc.Int("/results/1/itemIndex"), 0);
  EXPECT_EQ(doc.String("/results/1/type"), "push");
  EXPECT_EQ(doc.Bool("/results/1/success"), true);
  EXPECT_EQ(doc.String("/results/1/status"), "queued");
  EXPECT_EQ(doc.String("/results/1/transactionId"), "t9");
  EXPECT_TRUE(LooksLikeUuid(doc.String("/results/1/messageId").value_or(""))) << r.body;
  EXPECT_TRUE(LooksLikeUuid(doc.String("/results/1/partitionId").value_or(""))) << r.body;
  EXPECT_EQ(doc.String("/results/1/queueName"), next);

  // The acked message is done; the follow-up is there.
  EXPECT_EQ(Pop(src).Size("/messages"), 0u);
  JsonDoc follow = Pop(next);
  ASSERT_EQ(follow.Size("/messages"), 1u) << follow.text();
  EXPECT_EQ(follow.String("/messages/0/id"), doc.String("/results/1/messageId"));
  EXPECT_EQ(follow.Minified("/messages/0/data"), "{\"step\":2}");
}

TEST_F(BrokerTransactionTest, DuplicateIsReportedAndTheRestCommits) {
  const std::string q = UniqueName("dup");
  const std::string original = PushOne(q, "{\"v\":0}", "d-0");

  HttpResponse r =
      Transact(PushOp(Item(q, "d-0", "{\"v\":\"again\"}") + "," + Item(q, "d-1", "{\"v\":1}") +
                      "," + Item(q, "d-1", "{\"v\":\"copy\"}")) +
               "," + PushOp(Item(q, "d-2", "{\"v\":2}")));
  ASSERT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  ASSERT_EQ(doc.Size("/results"), 4u) << r.body;
  EXPECT_EQ(doc.String("/results/0/status"), "duplicate");
  EXPECT_EQ(doc.String("/results/0/messageId"), original);
  EXPECT_EQ(doc.Int("/results/0/index"), 0);
  EXPECT_EQ(doc.Int("/results/0/itemIndex"), 0);
  EXPECT_EQ(doc.String("/results/1/status"), "queued");
  EXPECT_EQ(doc.String("/results/2/status"), "duplicate");
  EXPECT_EQ(doc.Int("/results/2/itemIndex"), 2);
  EXPECT_EQ(doc.String("/results/2/messageId"), doc.String("/results/1/messageId"));
  EXPECT_EQ(doc.Int("/results/3/index"), 1);
  EXPECT_EQ(doc.Int("/results/3/itemIndex"), 0);
  EXPECT_EQ(doc.String("/results/3/status"), "queued");

  JsonDoc all = Pop(q, "batch=10");
  ASSERT_EQ(all.Size("/messages"), 3u) << all.text();
  EXPECT_EQ(all.Minified("/messages/0/data"), "{\"v\":0}");
  EXPECT_EQ(all.Minified("/messages/1/data"), "{\"v\":1}");
  EXPECT_EQ(all.Minified("/messages/2/data"), "{\"v\":2}");
}

TEST_F(BrokerTransactionTest, SeveralQueuesInOneTransaction) {
  const std::string a = UniqueName("a");
  const std::string b = UniqueName("b");
  const std::string c = UniqueName("c");
  PushOne(a, "1", "a-0");
  PushOne(b, "2", "b-0");
  JsonDoc pop_a = Pop(a);
  JsonDoc pop_b = Pop(b);
  ASSERT_EQ(pop_a.Size("/messages"), 1u);
  ASSERT_EQ(pop_b.Size("/messages"), 1u);

  HttpResponse r =
      Transact(AckOp(pop_a, 0) + "," + AckOp(pop_b, 0, "retry") + "," +
               PushOp(Item(c, "c-x", "{\"x\":1}", "X") + "," + Item(c, "c-y", "{\"y\":1}", "Y") +
                      "," + Item(a, "a-1", "{\"a\":1}")));
  ASSERT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  ASSERT_EQ(doc.Size("/results"), 5u) << r.body;
  EXPECT_EQ(doc.String("/results/1/queueName"), b);
  EXPECT_EQ(doc.Bool("/results/1/leaseReleased"), true) << "retry ends the lease";
  EXPECT_EQ(doc.String("/results/2/queueName"), c);
  EXPECT_EQ(doc.String("/results/4/queueName"), a);

  EXPECT_EQ(PopPartition(c, "X").Size("/messages"), 1u);
  EXPECT_EQ(PopPartition(c, "Y").Size("/messages"), 1u);
  JsonDoc next_a = Pop(a, "batch=10");
  ASSERT_EQ(next_a.Size("/messages"), 1u) << next_a.text();
  EXPECT_EQ(next_a.String("/messages/0/transactionId"), "a-1") << "a-0 is completed";
  JsonDoc again_b = Pop(b);
  ASSERT_EQ(again_b.Size("/messages"), 1u) << again_b.text();
  EXPECT_EQ(again_b.String("/messages/0/transactionId"), "b-0") << "retry redelivers";
}

TEST_F(BrokerTransactionTest, CommitWakesALongPollOnThePushedQueue) {
  const std::string q = UniqueName("wake");
  HttpClient waiter_client(port());
  ASSERT_TRUE(StartGetAfterProbe(waiter_client,
                                 "/api/v1/pop/queue/" + UrlEncode(q) + "?wait=true&timeout=20000"));
  auto waiter = std::async(std::launch::async, [&] { return waiter_client.ReadResponse(); });
  HttpResponse r = Transact(PushOp(Item(q, "w-1", "{\"woke\":true}")));
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_EQ(waiter.wait_for(10s), std::future_status::ready) << "long poll not woken";
  HttpResponse got = waiter.get();
  ASSERT_EQ(got.status, 200) << got.Describe();
  JsonDoc doc(got.body);
  ASSERT_EQ(doc.Size("/messages"), 1u) << got.body;
  EXPECT_EQ(doc.Minified("/messages/0/data"), "{\"woke\":true}");
}

TEST_F(BrokerTransactionTest, EmptyTransactionCommitsNothing) {
  HttpResponse r = http().Post("/api/v1/transaction", "{\"operations\":[]}");
  ASSERT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  EXPECT_EQ(doc.Bool("/success"), true);
  EXPECT_EQ(doc.Size("/results"), 0u);
}

struct BadTransaction {
  const char* name;
  std::string body;  // "{q}" is replaced by a queue name unique to the test
  int status;
  std::string mentions;  // the error names what is wrong
};

std::vector<BadTransaction> BadCases() {
  const std::string ack = "\"transactionId\":\"t\",\"partitionId\":\"p\",\"leaseId\":\"l\"";
  const std::string push = "{\"type\":\"push\",\"items\":[{\"queue\":\"{q}\"}]}";
  std::string many_ops = "{\"operations\":[";
  for (int i = 0; i < 1001; ++i) many_ops += (i ? "," : "") + push;
  many_ops += "]}";
  // 100,001 items over two push operations: each alone would be within the bound.
  std::string half = "{\"type\":\"push\",\"items\":[";
  for (int i = 0; i < 50001; ++i) half += (i ? "," : "") + std::string("{\"queue\":\"tx-limit\"}");
  half += "]}";
  const std::string many_items = "{\"operations\":[" + half + "," + half + "]}";
  return {
      {"NotJson", "{\"operations\": [", 400, ""},
      {"NotAnObject", "[]", 400, ""},
      {"OperationsMissing", "{\"items\":[]}", 400, "operations"},
      {"OperationsNotAnArray", "{\"operations\":{}}", 400, "operations"},
      {"OperationNotAnObject", "{\"operations\":[" + push + ",7]}", 400, "operations[1]"},
      {"TypeMissing", "{\"operations\":[{\"items\":[]}]}", 400, "operations[0].type"},
      {"TypeUnknown", "{\"operations\":[{\"type\":\"pop\"}]}", 400, "operations[0].type"},
      {"TypeNotAString", "{\"operations\":[{\"type\":1}]}", 400, "operations[0].type"},
      {"PushItemsMissing", "{\"operations\":[{\"type\":\"push\"}]}", 400, "operations[0].items"},
      {"PushItemsNotAnArray", "{\"operations\":[{\"type\":\"push\",\"items\":{}}]}", 400,
       "operations[0].items"},
      {"PushQueueMissing",
       "{\"operations\":[" + push + ",{\"type\":\"push\",\"items\":[{\"payload\":1}]}]}", 400,
       "operations[1].items[0].queue"},
      {"PushQueueNameBad", "{\"operations\":[{\"items\":[{\"queue\":\"a b\"}],\"type\":\"push\"}]}",
       400, "operations[0].items[0].queue"},
      {"PushTraceIdNotAUuid",
       "{\"operations\":[{\"type\":\"push\",\"items\":[{\"queue\":\"{q}\",\"traceId\":\"x\"}]}]}",
       400, "traceId"},
      {"AckTransactionIdMissing",
       "{\"operations\":[" + push + ",{\"type\":\"ack\",\"partitionId\":\"p\",\"leaseId\":\"l\"}]}",
       400, "operations[1].transactionId"},
      {"AckStatusBogus", "{\"operations\":[{\"type\":\"ack\"," + ack + ",\"status\":\"maybe\"}]}",
       400, "status"},
      {"TooManyOperations", many_ops, 413, "1000"},
      {"TooManyPushItems", many_items, 413, "100000"},
  };
}

class BrokerBadTransactionTest : public BrokerTest,
                                 public ::testing::WithParamInterface<BadTransaction> {};

TEST_P(BrokerBadTransactionTest, AnswersWhatIsWrongAndStoresNothing) {
  const BadTransaction& c = GetParam();
  const std::string q = UniqueName("bad");
  std::string body = c.body;
  for (size_t at = 0; (at = body.find("{q}", at)) != std::string::npos; at += q.size()) {
    body.replace(at, 3, q);
  }
  HttpResponse r = http().Post("/api/v1/transaction", body);
  ASSERT_TRUE(IsJsonError(r, c.status)) << body.substr(0, 300);
  const std::string message = JsonDoc(r.body).String("/error").value_or("");
  EXPECT_NE(message.find(c.mentions), std::string::npos)
      << "the error does not say what is wrong: " << message;
  // Nothing ran: a valid push earlier in the body stored nothing.
  EXPECT_EQ(http().Get("/api/v1/resources/queues/" + UrlEncode(q)).status, 404);
}

INSTANTIATE_TEST_SUITE_P(Bodies, BrokerBadTransactionTest, ::testing::ValuesIn(BadCases()),
                         [](const ::testing::TestParamInfo<BadTransaction>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace ordo::integration
