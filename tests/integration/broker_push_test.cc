// POST /api/v1/push: answer shapes (queued, duplicate, index order, defaults) over HTTP.
#include <string>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

class BrokerPushTest : public BrokerTest {};

TEST_F(BrokerPushTest, QueuedAnswerHasEveryField) {
  const std::string q = UniqueName("shape");
  const std::string trace = "0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d";
  HttpResponse r = http().Post(
      "/api/v1/push", "{\"items\":[{\"queue\":" + JsonQuote(q) +
                          ",\"partition\":\"p1\",\"payload\":{\"x\":1},\"transactionId\":\"t1\""
                          ",\"traceId\":" + JsonQuote(trace) + "}]}");
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(IsJsonAnswer(r));
  JsonDoc doc(r.body);
  ASSERT_EQ(doc.Size(""), 1u) << r.body;
  EXPECT_EQ(doc.Int("/0/index"), 0);
  EXPECT_EQ(doc.String("/0/status"), "queued");
  std::string id = doc.String("/0/message_id").value_or("");
  ASSERT_TRUE(LooksLikeUuid(id)) << r.body;
  EXPECT_EQ(id[14], '7') << "message_id is not a UUIDv7: " << id;
  EXPECT_EQ(doc.String("/0/transaction_id"), "t1");
  EXPECT_TRUE(LooksLikeUuid(doc.String("/0/partition_id").value_or(""))) << r.body;
  EXPECT_EQ(doc.String("/0/trace_id"), trace) << r.body;
  EXPECT_EQ(doc.String("/0/queueName"), q);

  // The trace id travels with the message.
  JsonDoc pop = PopPartition(q, "p1");
  ASSERT_EQ(pop.Size("/messages"), 1u) << pop.text();
  EXPECT_EQ(pop.String("/messages/0/traceId"), trace) << pop.text();
  EXPECT_EQ(pop.String("/messages/0/transactionId"), "t1");
  EXPECT_EQ(pop.String("/messages/0/partition"), "p1");
}

TEST_F(BrokerPushTest, TraceIdIsNullWhenAbsentAndServerMakesATransactionId) {
  const std::string q = UniqueName("defaults");
  JsonDoc doc = Push("[{\"queue\":" + JsonQuote(q) + ",\"payload\":1},{\"queue\":" +
                     JsonQuote(q) + ",\"payload\":2}]");
  ASSERT_EQ(doc.Size(""), 2u) << doc.text();
  EXPECT_TRUE(doc.IsNull("/0/trace_id")) << doc.text();
  std::string t0 = doc.String("/0/transaction_id").value_or("");
  std::string t1 = doc.String("/1/transaction_id").value_or("");
  EXPECT_FALSE(t0.empty()) << doc.text();
  EXPECT_NE(t0, t1) << "server-made transaction ids must differ: " << doc.text();
}

TEST_F(BrokerPushTest, DuplicateAnswersTheOriginalMessageId) {
  const std::string q = UniqueName("dup");
  std::string original = PushOne(q, "{\"v\":1}", "tx-1");
  ASSERT_FALSE(original.empty());

  JsonDoc again = Push("[{\"queue\":" + JsonQuote(q) +
                       ",\"payload\":{\"v\":2},\"transactionId\":\"tx-1\"}]");
  EXPECT_EQ(again.String("/0/status"), "duplicate") << again.text();
  EXPECT_EQ(again.String("/0/message_id"), original) << again.text();

  // Same transactionId in another partition is another message.
  JsonDoc other = Push("[{\"queue\":" + JsonQuote(q) +
                       ",\"partition\":\"other\",\"payload\":{},\"transactionId\":\"tx-1\"}]");
  EXPECT_EQ(other.String("/0/status"), "queued") << other.text();

  // Only the first copy is stored, with its own payload.
  JsonDoc pop = PopPartition(q, "Default", "batch=10");
  ASSERT_EQ(pop.Size("/messages"), 1u) << pop.text();
  EXPECT_EQ(pop.Minified("/messages/0/data"), "{\"v\":1}");
}

TEST_F(BrokerPushTest, DuplicateInsideOneRequest) {
  const std::string q = UniqueName("dup1");
  std::string item = "{\"queue\":" + JsonQuote(q) + ",\"payload\":{},\"transactionId\":\"same\"}";
  JsonDoc doc = Push("[" + item + "," + item + "]");
  ASSERT_EQ(doc.Size(""), 2u) << doc.text();
  EXPECT_EQ(doc.String("/0/status"), "queued") << doc.text();
  EXPECT_EQ(doc.String("/1/status"), "duplicate") << doc.text();
  EXPECT_EQ(doc.String("/1/message_id"), doc.String("/0/message_id")) << doc.text();
  EXPECT_EQ(doc.Int("/1/index"), 1);
}

TEST_F(BrokerPushTest, AnswerFollowsRequestOrderAcrossQueuesAndPartitions) {
  const std::string a = UniqueName("a");
  const std::string b = UniqueName("b");
  std::string items = "[";
  const char* targets[][2] = {{"b", "x"}, {"a", "Default"}, {"b", "y"}, {"a", "z"}, {"b", "x"}};
  for (int i = 0; i < 5; ++i) {
    if (i) items += ",";
    const std::string& queue = std::string(targets[i][0]) == "a" ? a : b;
    items += "{\"queue\":" + JsonQuote(queue) + ",\"partition\":\"" + targets[i][1] +
             "\",\"transactionId\":\"t" + std::to_string(i) + "\",\"payload\":" +
             std::to_string(i) + "}";
  }
  items += "]";
  JsonDoc doc = Push(items);
  ASSERT_EQ(doc.Size(""), 5u) << doc.text();
  for (int i = 0; i < 5; ++i) {
    std::string p = Indexed("/", i);
    EXPECT_EQ(doc.Int(p + "/index"), i) << doc.text();
    EXPECT_EQ(doc.String(p + "/status"), "queued") << doc.text();
    EXPECT_EQ(doc.String(p + "/transaction_id"), Indexed("t", i)) << doc.text();
    EXPECT_EQ(doc.String(p + "/queueName"), std::string(targets[i][0]) == "a" ? a : b);
  }
  // Same partition, same id; different partitions, different ids.
  EXPECT_EQ(doc.String("/0/partition_id"), doc.String("/4/partition_id"));
  EXPECT_NE(doc.String("/0/partition_id"), doc.String("/2/partition_id"));
  EXPECT_NE(doc.String("/1/partition_id"), doc.String("/3/partition_id"));
}

TEST_F(BrokerPushTest, EmptyItemsAnswersEmptyArray) {
  HttpResponse r = http().Post("/api/v1/push", "{\"items\":[]}");
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(IsJsonAnswer(r));
  EXPECT_EQ(JsonDoc(r.body).Size(""), 0u) << r.body;
}

TEST_F(BrokerPushTest, MissingPayloadIsAnEmptyObject) {
  const std::string q = UniqueName("nopayload");
  JsonDoc doc = Push("[{\"queue\":" + JsonQuote(q) + "}]");
  EXPECT_EQ(doc.String("/0/status"), "queued") << doc.text();
  HttpResponse pop = http().Get("/api/v1/pop/queue/" + UrlEncode(q));
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  EXPECT_EQ(RawJsonAt(pop.body, "/messages/0/data"), "{}") << pop.body;
}

TEST_F(BrokerPushTest, QueueNameOf255BytesIsAccepted) {
  std::string q = UniqueName("long");
  q.append(255 - q.size(), 'x');
  JsonDoc doc = Push("[{\"queue\":" + JsonQuote(q) + ",\"payload\":{}}]");
  EXPECT_EQ(doc.String("/0/status"), "queued") << doc.text();
  JsonDoc pop = Pop(q);
  EXPECT_EQ(pop.Size("/messages"), 1u) << pop.text();
}

}  // namespace
}  // namespace ordo::integration
