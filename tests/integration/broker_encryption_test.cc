// Encryption at rest (issue #4.9): queues with encryptionEnabled keep payloads sealed with
// AES-256-GCM under ORDO_ENCRYPTION_KEY; they come back intact on pop; without a key such pushes
// are refused item by item.
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "harness.h"

namespace ordo::integration {
namespace {

const char* kKey = "8f3c1a2b4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";

// The payload column of every message of `queue`, read straight from the broker's database.
std::vector<std::string> StoredPayloads(const BrokerProcess& b, const std::string& queue) {
  std::vector<std::string> out;
  if (b.engine() == "sqlite") {
    std::string path = b.db_url().substr(std::string("sqlite:").size());
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT m.payload FROM messages m"
                                 " JOIN partitions p ON p.pk = m.partition_pk"
                                 " JOIN queues q ON q.pk = p.queue_pk WHERE q.name = ?1",
                                 -1, &st, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_bind_text(st, 1, queue.c_str(), -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) {
      out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }
  PGconn* conn = PQconnectdb(b.db_url().c_str());
  EXPECT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  const char* params[] = {queue.c_str()};
  PGresult* r = PQexecParams(conn,
                             "SELECT m.payload FROM ordo.messages m"
                             " JOIN ordo.partitions p ON p.pk = m.partition_pk"
                             " JOIN ordo.queues q ON q.pk = p.queue_pk WHERE q.name = $1",
                             1, nullptr, params, nullptr, nullptr, 0);
  EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQerrorMessage(conn);
  for (int i = 0; i < PQntuples(r); ++i) out.emplace_back(PQgetvalue(r, i, 0));
  PQclear(r);
  PQfinish(conn);
  return out;
}

// A broker started with (or without) ORDO_ENCRYPTION_KEY in its environment.
std::unique_ptr<BrokerProcess> StartBroker(const char* key) {
  if (key) {
    setenv("ORDO_ENCRYPTION_KEY", key, 1);
  } else {
    unsetenv("ORDO_ENCRYPTION_KEY");
  }
  auto b = std::make_unique<BrokerProcess>();
  ::testing::AssertionResult started = b->Start();
  unsetenv("ORDO_ENCRYPTION_KEY");
  EXPECT_TRUE(started);
  return started ? std::move(b) : nullptr;
}

void Configure(HttpClient& http, const std::string& queue, bool encrypted) {
  HttpResponse r = http.Post("/api/v1/configure", "{\"queue\":" + JsonQuote(queue) +
                                                      ",\"options\":{\"encryptionEnabled\":" +
                                                      (encrypted ? "true" : "false") + "}}");
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(JsonDoc(r.body).Bool("/options/encryptionEnabled"), encrypted) << r.body;
}

TEST(BrokerEncryptionTest, SealedInTheDatabaseAndIntactOnPop) {
  auto b = StartBroker(kKey);
  ASSERT_TRUE(b);
  HttpClient http(b->port());
  const std::string secret_q = UniqueName("secret");
  const std::string plain_q = UniqueName("plain");
  Configure(http, secret_q, true);
  const std::string payload = R"({"card":"4111-1111-1111-1111","note":"\u00e9t\u00e9 \"quoted\""})";
  HttpResponse push = http.Post(
      "/api/v1/push", "{\"items\":[{\"queue\":" + JsonQuote(secret_q) + ",\"payload\":" + payload +
                          ",\"transactionId\":\"t1\"},{\"queue\":" + JsonQuote(plain_q) +
                          ",\"payload\":" + payload + "}]}");
  ASSERT_EQ(push.status, 200) << push.Describe();
  JsonDoc pushed(push.body);
  EXPECT_EQ(pushed.String("/0/status"), "queued") << push.body;
  EXPECT_EQ(pushed.String("/1/status"), "queued") << push.body;

  std::vector<std::string> stored = StoredPayloads(*b, secret_q);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].find("4111"), std::string::npos)
      << "plaintext in the database: " << stored[0];
  EXPECT_EQ(stored[0].rfind("~ordo:aes256gcm:v1:", 0), 0u) << stored[0];
  std::vector<std::string> plain = StoredPayloads(*b, plain_q);
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_EQ(plain[0], payload) << "a queue without encryption keeps its payload verbatim";

  HttpResponse pop = http.Get("/api/v1/pop/queue/" + UrlEncode(secret_q));
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  EXPECT_EQ(RawJsonAt(pop.body, "/messages/0/data"), payload) << pop.body;
  // A duplicate of a sealed message is still recognised (dedup works on ids, not payloads).
  HttpResponse again = http.Post("/api/v1/push", "{\"items\":[{\"queue\":" + JsonQuote(secret_q) +
                                                     ",\"payload\":{},\"transactionId\":\"t1\"}]}");
  EXPECT_EQ(JsonDoc(again.body).String("/0/status"), "duplicate") << again.body;
}

TEST(BrokerEncryptionTest, WithoutAKeyPushesToEncryptedQueuesFailItemByItem) {
  auto b = StartBroker(nullptr);
  ASSERT_TRUE(b);
  HttpClient http(b->port());
  const std::string secret_q = UniqueName("secret");
  const std::string plain_q = UniqueName("plain");
  Configure(http, secret_q, true);
  HttpResponse push =
      http.Post("/api/v1/push", "{\"items\":[{\"queue\":" + JsonQuote(secret_q) +
                                    ",\"payload\":{\"a\":1}},{\"queue\":" + JsonQuote(plain_q) +
                                    ",\"payload\":{\"b\":2}}]}");
  ASSERT_EQ(push.status, 200) << push.Describe();
  JsonDoc doc(push.body);
  EXPECT_EQ(doc.String("/0/status"), "failed") << push.body;
  EXPECT_NE(doc.String("/0/error").value_or("").find("ORDO_ENCRYPTION_KEY"), std::string::npos)
      << push.body;
  EXPECT_EQ(doc.Int("/0/index"), 0);
  EXPECT_EQ(doc.String("/1/status"), "queued") << push.body;
  EXPECT_EQ(doc.Int("/1/index"), 1);
  EXPECT_TRUE(StoredPayloads(*b, secret_q).empty());
  EXPECT_EQ(StoredPayloads(*b, plain_q).size(), 1u);
}

TEST(BrokerEncryptionTest, TurningEncryptionOnAppliesToLaterPushes) {
  auto b = StartBroker(kKey);
  ASSERT_TRUE(b);
  HttpClient http(b->port());
  const std::string q = UniqueName("later");
  Configure(http, q, false);
  ASSERT_EQ(http.Post("/api/v1/push", "{\"items\":[{\"queue\":" + JsonQuote(q) +
                                          ",\"payload\":{\"n\":\"before\"}}]}")
                .status,
            200);
  Configure(http, q, true);
  ASSERT_EQ(http.Post("/api/v1/push", "{\"items\":[{\"queue\":" + JsonQuote(q) +
                                          ",\"payload\":{\"n\":\"after\"}}]}")
                .status,
            200);
  std::vector<std::string> stored = StoredPayloads(*b, q);
  ASSERT_EQ(stored.size(), 2u);
  int sealed = 0;
  for (const std::string& s : stored) sealed += s.rfind("~ordo:", 0) == 0 ? 1 : 0;
  EXPECT_EQ(sealed, 1);
  HttpResponse pop = http.Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=10");
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  EXPECT_EQ(RawJsonAt(pop.body, "/messages/0/data"), R"({"n":"before"})") << pop.body;
  EXPECT_EQ(RawJsonAt(pop.body, "/messages/1/data"), R"({"n":"after"})") << pop.body;
}

TEST(BrokerEncryptionTest, ABadKeyStopsTheBrokerAtStart) {
  setenv("ORDO_ENCRYPTION_KEY", "not-hex", 1);
  BrokerProcess b;
  ::testing::AssertionResult started = b.Start();
  unsetenv("ORDO_ENCRYPTION_KEY");
  EXPECT_FALSE(started);
  EXPECT_NE(b.Log().find("ORDO_ENCRYPTION_KEY"), std::string::npos) << b.Log();
}

}  // namespace
}  // namespace ordo::integration
