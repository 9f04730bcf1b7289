// The README walk-through against the real binary: push, pop (long poll), ack, pop again.
#include <string>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

class BrokerWalkthroughTest : public BrokerTest {};

TEST_F(BrokerWalkthroughTest, PushPopAckThenNothingLeft) {
  const std::string q = UniqueName("demo");

  HttpResponse push = http().Post(
      "/api/v1/push",
      "{\"items\":[{\"queue\":" + JsonQuote(q) + ",\"payload\":{\"hello\":\"world\"}}]}");
  ASSERT_EQ(push.status, 200) << push.Describe();
  ASSERT_TRUE(IsJsonAnswer(push));
  JsonDoc pushed(push.body);
  ASSERT_EQ(pushed.Size(""), 1u) << push.body;
  EXPECT_EQ(pushed.String("/0/status"), "queued") << push.body;
  std::string message_id = pushed.String("/0/message_id").value_or("");
  std::string transaction_id = pushed.String("/0/transaction_id").value_or("");
  std::string partition_id = pushed.String("/0/partition_id").value_or("");
  EXPECT_TRUE(LooksLikeUuid(message_id)) << push.body;
  EXPECT_FALSE(transaction_id.empty()) << push.body;
  EXPECT_TRUE(LooksLikeUuid(partition_id)) << push.body;
  EXPECT_EQ(pushed.String("/0/queueName"), q) << push.body;

  HttpResponse pop =
      http().Get("/api/v1/pop/queue/" + UrlEncode(q) + "?wait=true&timeout=1000");
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  ASSERT_TRUE(IsJsonAnswer(pop));
  JsonDoc popped(pop.body);
  EXPECT_EQ(popped.Bool("/success"), true) << pop.body;
  ASSERT_EQ(popped.Size("/messages"), 1u) << pop.body;
  EXPECT_EQ(RawJsonAt(pop.body, "/messages/0/data"), "{\"hello\":\"world\"}") << pop.body;
  EXPECT_EQ(popped.String("/messages/0/id"), message_id);
  EXPECT_EQ(popped.String("/messages/0/transactionId"), transaction_id);
  EXPECT_EQ(popped.String("/messages/0/partitionId"), partition_id);
  std::string lease_id = popped.String("/leaseId").value_or("");
  EXPECT_TRUE(LooksLikeUuid(lease_id)) << pop.body;

  HttpResponse ack = http().Post(
      "/api/v1/ack", "{\"transactionId\":" + JsonQuote(transaction_id) +
                         ",\"partitionId\":" + JsonQuote(partition_id) +
                         ",\"leaseId\":" + JsonQuote(lease_id) + ",\"status\":\"completed\"}");
  ASSERT_EQ(ack.status, 200) << ack.Describe();
  ASSERT_TRUE(IsJsonAnswer(ack));
  JsonDoc acked(ack.body);
  ASSERT_EQ(acked.Size(""), 1u) << ack.body;
  EXPECT_EQ(acked.Bool("/0/success"), true) << ack.body;

  JsonDoc again = Pop(q);
  EXPECT_EQ(again.Size("/messages"), 0u) << again.text();
}

// "stored and returned byte-for-byte as received": whitespace, number spellings, escapes and key
// order of the payload survive the round trip.
TEST_F(BrokerWalkthroughTest, PayloadReturnedByteForByte) {
  const std::string q = UniqueName("bytes");
  const std::vector<std::string> payloads = {
      "{ \"b\" : 1.50, \"a\":[1e3, -0.0 ,true,null] ,\"s\":\"caf\\u00e9 \\\"x\\\" \\n\"}",
      "\"just a string\"",
      "12345678901234567890",
      "[ ]",
      "{\"nested\":{\"deep\":{\"k\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}}}",
  };
  std::string items = "[";
  for (size_t i = 0; i < payloads.size(); ++i) {
    if (i) items += ",";
    items += "{\"queue\":" + JsonQuote(q) + ",\"payload\":" + payloads[i] + "}";
  }
  items += "]";
  JsonDoc pushed = Push(items);
  ASSERT_EQ(pushed.Size(""), payloads.size()) << pushed.text();

  HttpResponse pop = http().Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=10");
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  JsonDoc popped(pop.body);
  ASSERT_EQ(popped.Size("/messages"), payloads.size()) << pop.body;
  for (size_t i = 0; i < payloads.size(); ++i) {
    EXPECT_EQ(RawJsonAt(pop.body, "/messages/" + std::to_string(i) + "/data"), payloads[i])
        << "message " << i << " in " << pop.body;
  }
}

// Keep-alive with pipelining: a push and a pop written in one go are answered in order.
TEST_F(BrokerWalkthroughTest, PipelinedPushThenPopAnsweredInOrder) {
  const std::string q = UniqueName("pipe");
  std::string push_body =
      "{\"items\":[{\"queue\":" + JsonQuote(q) + ",\"payload\":{\"n\":1}}]}";
  std::string bytes = "POST /api/v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: " + std::to_string(push_body.size()) + "\r\n\r\n" +
                      push_body + "GET /api/v1/pop/queue/" + UrlEncode(q) +
                      " HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  HttpClient client(port());
  ASSERT_TRUE(client.SendRaw(bytes));
  HttpResponse a = client.ReadResponse();
  HttpResponse b = client.ReadResponse();
  HttpResponse c = client.ReadResponse();
  ASSERT_EQ(a.status, 200) << a.Describe();
  EXPECT_EQ(JsonDoc(a.body).String("/0/status"), "queued") << a.body;
  ASSERT_EQ(b.status, 200) << b.Describe();
  EXPECT_EQ(JsonDoc(b.body).Size("/messages"), 1u) << b.body;
  ASSERT_EQ(c.status, 200) << c.Describe();
  EXPECT_EQ(JsonDoc(c.body).String("/status"), "healthy") << c.body;
}

}  // namespace
}  // namespace ordo::integration
