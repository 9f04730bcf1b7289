// Bad input: each gets a clear 4xx JSON answer {"error": ...} (or the connection is closed), and
// the same server keeps serving other connections without losing what it accepted.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

struct BadRequest {
  const char* name;
  const char* method;
  // "{q}" in target or body is replaced by a queue name unique to the test.
  std::string target;
  std::string body;
  int status;
  // When set, the error message must contain one of these (it names what is wrong).
  std::vector<std::string> mentions;
};

std::string Fill(std::string s, const std::string& q) {
  for (size_t at; (at = s.find("{q}")) != std::string::npos;) s.replace(at, 3, q);
  return s;
}

const std::string kLease = "00000000-0000-4000-8000-000000000000";

std::vector<BadRequest> Cases() {
  std::string ack_prefix = "{\"transactionId\":\"t\",\"partitionId\":\"" + kLease +
                           "\",\"leaseId\":\"" + kLease + "\"";
  return {
      {"InvalidJson", "POST", "/api/v1/push", "{\"items\": [", 400, {}},
      {"TrailingGarbage", "POST", "/api/v1/push", "{\"items\": []} x", 400, {}},
      {"BodyNotAnObject", "POST", "/api/v1/push", "[1,2]", 400, {}},
      {"EmptyBody", "POST", "/api/v1/push", "", 400, {}},
      {"InvalidUtf8InString", "POST", "/api/v1/push",
       "{\"items\":[{\"queue\":\"{q}\",\"payload\":{\"s\":\"ab\xff\xfe" "cd\"}}]}", 400, {}},
      {"InvalidUtf8InQueueName", "POST", "/api/v1/push",
       "{\"items\":[{\"queue\":\"a\xc3\"}]}", 400, {}},
      {"ItemsNotAnArray", "POST", "/api/v1/push", "{\"items\": 5}", 400, {"items"}},
      {"ItemsMissing", "POST", "/api/v1/push", "{}", 400, {"items"}},
      {"ItemNotAnObject", "POST", "/api/v1/push", "{\"items\":[\"q\"]}", 400, {}},
      {"QueueMissing", "POST", "/api/v1/push", "{\"items\":[{\"payload\":{}}]}", 400, {"queue"}},
      {"QueueNotAString", "POST", "/api/v1/push", "{\"items\":[{\"queue\":7}]}", 400, {"queue"}},
      {"QueueNameWithSpace", "POST", "/api/v1/push", "{\"items\":[{\"queue\":\"a b\"}]}", 400,
       {"' '", "0x20", "space"}},
      {"QueueNameWithSlash", "POST", "/api/v1/push", "{\"items\":[{\"queue\":\"a/b\"}]}", 400,
       {"'/'", "\"/\"", "0x2f"}},
      {"QueueNameNonAscii", "POST", "/api/v1/push",
       "{\"items\":[{\"queue\":\"caf\xc3\xa9\"}]}", 400, {"0xc3"}},
      {"QueueNameEmpty", "POST", "/api/v1/push", "{\"items\":[{\"queue\":\"\"}]}", 400, {}},
      {"QueueNameTooLong", "POST", "/api/v1/push",
       "{\"items\":[{\"queue\":\"" + std::string(256, 'q') + "\"}]}", 400, {"255"}},
      {"TransactionIdNotAString", "POST", "/api/v1/push",
       "{\"items\":[{\"queue\":\"{q}\",\"transactionId\":12}]}", 400, {"transactionId"}},
      {"TransactionIdEmpty", "POST", "/api/v1/push",
       "{\"items\":[{\"queue\":\"{q}\",\"transactionId\":\"\"}]}", 400, {"transactionId"}},
      {"PopQueueNameWithSpace", "GET", "/api/v1/pop/queue/a%20b", "", 400, {}},
      {"PopBatchNotANumber", "GET", "/api/v1/pop/queue/{q}?batch=abc", "", 400, {"batch"}},
      {"PopBatchZero", "GET", "/api/v1/pop/queue/{q}?batch=0", "", 400, {"batch"}},
      {"PopBatchNegative", "GET", "/api/v1/pop/queue/{q}?batch=-3", "", 400, {"batch"}},
      {"PopTimeoutNotANumber", "GET", "/api/v1/pop/queue/{q}?wait=true&timeout=soon", "", 400,
       {"timeout"}},
      {"PopWaitNotABoolean", "GET", "/api/v1/pop/queue/{q}?wait=maybe", "", 400, {"wait"}},
      {"PopSubscriptionModeUnknown", "GET", "/api/v1/pop/queue/{q}?subscriptionMode=later", "",
       400, {"subscriptionMode"}},
      {"UnknownRoute", "GET", "/api/v1/nothing-here", "", 404, {}},
      {"UnknownRouteOutsideApi", "POST", "/foo", "{}", 404, {}},
      {"WrongMethodOnPush", "DELETE", "/api/v1/push", "", 405, {}},
      {"WrongMethodOnPop", "POST", "/api/v1/pop/queue/{q}", "{}", 405, {}},
      {"AckStatusBogus", "POST", "/api/v1/ack", ack_prefix + ",\"status\":\"bogus\"}", 400,
       {"status"}},
      {"AckTransactionIdMissing", "POST", "/api/v1/ack",
       "{\"partitionId\":\"" + kLease + "\",\"leaseId\":\"" + kLease +
           "\",\"status\":\"completed\"}",
       400, {"transactionId"}},
      {"AckBatchNotAnArray", "POST", "/api/v1/ack/batch", "{\"acknowledgments\":{}}", 400,
       {"acknowledgments"}},
      {"AckBatchItemStatusBogus", "POST", "/api/v1/ack/batch",
       "{\"acknowledgments\":[" + ack_prefix + ",\"status\":\"completed\"}," + ack_prefix +
           ",\"status\":\"nope\"}]}",
       400, {"status"}},
      {"ExtendSecondsNotANumber", "POST", "/api/v1/lease/" + kLease + "/extend",
       "{\"seconds\":\"ten\"}", 400, {"seconds"}},
      {"ConfigureQueueMissing", "POST", "/api/v1/configure", "{\"options\":{}}", 400,
       {"queue"}},
      {"ConfigureOptionWrongType", "POST", "/api/v1/configure",
       "{\"queue\":\"{q}\",\"options\":{\"leaseTime\":\"long\"}}", 400, {"leaseTime"}},
  };
}

class BrokerBadInputTest : public BrokerTest,
                           public ::testing::WithParamInterface<BadRequest> {
 protected:
  // A normal request on another connection still works.
  void ExpectServerStillServes() {
    HttpClient other(port());
    HttpResponse r = other.Get("/health");
    EXPECT_EQ(r.status, 200) << "the server stopped serving: " << r.Describe();
  }
};

TEST_P(BrokerBadInputTest, AnswersClearErrorAndKeepsServing) {
  const BadRequest& c = GetParam();
  const std::string q = UniqueName("bad");
  std::string target = Fill(c.target, q);
  std::string body = Fill(c.body, q);
  HttpResponse r = http().Request(c.method, target, body);
  ASSERT_TRUE(IsJsonError(r, c.status)) << c.method << " " << target << " " << body;
  std::string message = JsonDoc(r.body).String("/error").value_or("");
  if (!c.mentions.empty()) {
    bool named = false;
    for (const std::string& m : c.mentions) named = named || message.find(m) != std::string::npos;
    EXPECT_TRUE(named) << "the error does not say what is wrong: " << message;
  }
  if (c.status == 405) {
    EXPECT_FALSE(r.Header("allow").empty()) << "405 without Allow";
  }
  // Nothing was stored for a refused push.
  if (std::string(c.method) == "POST" && target == "/api/v1/push" &&
      body.find(q) != std::string::npos) {
    EXPECT_EQ(Pop(q).Size("/messages"), 0u) << "a refused push stored something";
  }
  ExpectServerStillServes();
  // The connection that sent the bad request is still usable too (or was closed cleanly).
  HttpResponse again = http().Get("/health");
  EXPECT_EQ(again.status, 200) << again.Describe();
}

INSTANTIATE_TEST_SUITE_P(Requests, BrokerBadInputTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<BadRequest>& info) {
                           return std::string(info.param.name);
                         });

class BrokerMalformedHttpTest : public BrokerTest {
 protected:
  void ExpectServerStillServes() {
    HttpClient other(port());
    HttpResponse r = other.Get("/health");
    EXPECT_EQ(r.status, 200) << "the server stopped serving: " << r.Describe();
  }
};

TEST_F(BrokerMalformedHttpTest, GarbageRequestLineIs400ThenClose) {
  HttpClient client(port());
  ASSERT_TRUE(client.SendRaw("THIS IS NOT HTTP\r\n\r\n"));
  HttpResponse r = client.ReadResponse();
  EXPECT_TRUE(IsJsonError(r, 400));
  EXPECT_TRUE(client.WaitForClose(3s)) << "connection left open after a malformed request";
  ExpectServerStillServes();
}

TEST_F(BrokerMalformedHttpTest, BinaryGarbageIs400ThenClose) {
  HttpClient client(port());
  ASSERT_TRUE(client.SendRaw(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) +
                             std::string(64, '\0') + "\r\n\r\n"));
  HttpResponse r = client.ReadResponse();
  if (r.status != 0) {
    EXPECT_EQ(r.status, 400) << r.Describe();
  }
  EXPECT_TRUE(client.WaitForClose(3s));
  ExpectServerStillServes();
}

TEST_F(BrokerMalformedHttpTest, HeaderBlockOf20KiBIs431) {
  HttpClient client(port());
  std::string request = "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20 * 1024, 'a') +
                        "\r\n\r\n";
  ASSERT_TRUE(client.SendRaw(request));
  HttpResponse r = client.ReadResponse();
  EXPECT_TRUE(IsJsonError(r, 431));
  ExpectServerStillServes();
}

TEST_F(BrokerMalformedHttpTest, ManyHeadersAddingUpTo20KiBIs431) {
  HttpClient client(port());
  std::string request = "GET /health HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 400; ++i) {
    request += "X-H" + std::to_string(i) + ": " + std::string(48, 'v') + "\r\n";
  }
  request += "\r\n";
  ASSERT_TRUE(client.SendRaw(request));
  HttpResponse r = client.ReadResponse();
  EXPECT_TRUE(IsJsonError(r, 431));
  ExpectServerStillServes();
}

TEST_F(BrokerMalformedHttpTest, BadInputDoesNotLoseAcceptedMessages) {
  const std::string q = UniqueName("kept");
  PushOne(q, "{\"keep\":1}", "k1");
  for (const BadRequest& c : Cases()) {
    HttpClient client(port());
    client.Request(c.method, Fill(c.target, q), Fill(c.body, q));
  }
  HttpClient garbage(port());
  garbage.SendRaw("\x01\x02\x03 nonsense\r\n\r\n");
  garbage.ReadResponse();
  JsonDoc pop = Pop(q, "batch=10");
  ASSERT_EQ(pop.Size("/messages"), 1u) << pop.text();
  EXPECT_EQ(pop.String("/messages/0/transactionId"), "k1");
}

// A broker with --max-body 1024 of its own.
TEST(BrokerMaxBodyTest, BodyOverMaxBodyIs413) {
  BrokerProcess broker({"--max-body", "1024"});
  ASSERT_TRUE(broker.Start());
  const std::string q = UniqueName("big");

  auto body_of_size = [&](size_t size) {
    std::string head = "{\"items\":[{\"queue\":" + JsonQuote(q) + ",\"payload\":\"";
    std::string tail = "\"}]}";
    return head + std::string(size - head.size() - tail.size(), 'x') + tail;
  };

  {  // At the limit: accepted.
    HttpClient http(broker.port());
    HttpResponse r = http.Post("/api/v1/push", body_of_size(1024));
    EXPECT_EQ(r.status, 200) << r.Describe();
  }
  {  // Over it, with Content-Length.
    HttpClient http(broker.port());
    HttpResponse r = http.Post("/api/v1/push", body_of_size(2048));
    EXPECT_TRUE(IsJsonError(r, 413));
  }
  {  // Over it, chunked.
    HttpClient http(broker.port());
    std::string body = body_of_size(4096);
    std::string raw = "POST /api/v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n";
    for (size_t at = 0; at < body.size(); at += 512) {
      std::string piece = body.substr(at, 512);
      char size_line[16];
      std::snprintf(size_line, sizeof(size_line), "%zx\r\n", piece.size());
      raw += size_line + piece + "\r\n";
    }
    raw += "0\r\n\r\n";
    http.SendRaw(raw);
    HttpResponse r = http.ReadResponse();
    EXPECT_TRUE(IsJsonError(r, 413));
  }
  HttpClient http(broker.port());
  EXPECT_EQ(http.Get("/health").status, 200);
  HttpResponse pop = http.Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=10");
  EXPECT_EQ(JsonDoc(pop.body).Size("/messages"), 1u) << "only the 1024-byte push is stored: "
                                                     << pop.body.substr(0, 300);
}

}  // namespace
}  // namespace ordo::integration
