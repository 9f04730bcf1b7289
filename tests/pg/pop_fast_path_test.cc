// The one-statement pop of the one partition the broker names (migration 013) against the general
// wildcard pop it stands in for (version 9, kept as ordo._pop_choose). Each case sets a partition
// up through the SQL functions with a clock of its own, then runs the same pop through ordo.pop
// and through ordo._pop_choose, each in a transaction that is rolled back, and compares the
// answers and the cursor rows they leave. Where the fast path must serve the pop, ordo.pop runs
// with _pop_choose renamed away inside its transaction, so a fallback fails the case; where it
// must not, the answers are compared alone.
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

using integration::BrokerProcess;
using integration::UniqueName;

constexpr int64_t kT = 1'700'000'000'000'000;  // the cases' clock, in microseconds
constexpr int64_t kSecond = 1'000'000;

// One pop call's arguments (ordo.pop's, less the named partition and the subscription mode).
struct Pop {
  std::string prefer = "P1";
  std::string group;  // "" = queue mode
  int batch = 10;
  int max_partitions = 1;
  bool prefer_only = true;
  bool auto_ack = false;
  std::string lease = "lease-x";  // "" = NULL
  int64_t now = kT + 100 * kSecond;
};

enum class Path { kFast, kGeneral };

class PopFastPathTest : public PgTest {
 protected:
  void SetUp() override {
    PgTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(broker_.Start());  // migrates the test database
    std::string error;
    db_ = PgConn::Open(Env().url, &error);
    ASSERT_TRUE(db_) << error;
    q_ = UniqueName("fastpop");
    Configure(/*delayed_s=*/0, /*window_s=*/0, /*max_wait_s=*/0);  // a lease of 60 s
  }

  // The rows of `res`, each as its columns joined by '|' (NULL as "~").
  static std::vector<std::string> RowsOf(const PGresult* res) {
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(res); ++i) {
      std::string row;
      for (int j = 0; j < PQnfields(res); ++j) {
        if (j > 0) row += '|';
        row += PQgetisnull(res, i, j) ? "~" : PQgetvalue(res, i, j);
      }
      out.push_back(std::move(row));
    }
    return out;
  }

  // The transaction ids of a pop answer (column 8; NULL in the "nothing" row).
  static std::vector<std::string> TxidsOf(const PGresult* res) {
    std::vector<std::string> txids;
    for (int i = 0; i < PQntuples(res); ++i) {
      if (!PQgetisnull(res, i, 7)) txids.emplace_back(PQgetvalue(res, i, 7));
    }
    return txids;
  }

  // Runs `sql` on the test's connection and returns RowsOf its result.
  std::vector<std::string> Rows(const std::string& sql,
                                const std::vector<std::string>& params = {}) {
    PgConn::Outcome r = db_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.error << "\n" << sql;
    return r.ok() ? RowsOf(r.result.get()) : std::vector<std::string>{};
  }

  void Configure(int64_t delayed_s, int64_t window_s, int64_t max_wait_s,
                 int64_t retry_delay_ms = 0) {
    Rows(
        "SELECT name FROM ordo.configure($1, $2::bigint, NULL, NULL, 60, NULL, $6::bigint, false,"
        " NULL, $3::bigint, $4::bigint, NULL, NULL, NULL, $5::bigint, NULL, NULL, NULL)",
        {q_, std::to_string(kT), std::to_string(delayed_s), std::to_string(window_s),
         std::to_string(max_wait_s), std::to_string(retry_delay_ms)});
  }

  void Push(const std::string& partition, const std::string& txid, int64_t now,
            int64_t delay_ms = 0) {
    std::vector<std::string> r = Rows(
        "SELECT status FROM ordo.push(ARRAY[$1], ARRAY[$2], ARRAY[$3], ARRAY[$4], NULL,"
        " ARRAY['\"' || $4 || '\"'], $5::bigint, NULL, ARRAY[$6::bigint])",
        {q_, partition, "0190a0a0-0000-7000-8000-" + RandomHex(12), txid, std::to_string(now),
         std::to_string(delay_ms)});
    ASSERT_EQ(r, std::vector<std::string>{"0"}) << "push of " << txid;
  }

  std::string PopSql(const char* function) {
    return std::string(
               "SELECT kind, lease_expires_at, window_active, partition_id,"
               " partition_name, seq, message_id, transaction_id, trace_id, payload,"
               " created_at, retry_count FROM ordo.") +
           function +
           "($1, NULL, NULLIF($2, ''), $3::int, $4::int, $5::boolean, NULL, NULL,"
           " NULLIF($6, ''), $7::bigint, ARRAY[$8]::text[], $9::boolean)";
  }

  std::vector<std::string> PopParams(const Pop& p) {
    return {q_,
            p.group,
            std::to_string(p.batch),
            std::to_string(p.max_partitions),
            p.auto_ack ? "true" : "false",
            p.lease,
            std::to_string(p.now),
            p.prefer,
            p.prefer_only ? "true" : "false"};
  }

  // A pop through ordo.pop that stays: the transaction ids it delivered.
  std::vector<std::string> PopForReal(const Pop& p) {
    PgConn::Outcome r = db_->Exec(PopSql("pop"), PopParams(p));
    EXPECT_TRUE(r.ok()) << r.error;
    return r.ok() ? TxidsOf(r.result.get()) : std::vector<std::string>{};
  }

  // Acks `txid` of `partition` under `lease` with `status` (0 completed, 1 failed).
  void Ack(const std::string& partition, const std::string& txid, const std::string& lease,
           int status, int64_t now, const std::string& group = "") {
    std::vector<std::string> r = Rows(
        "SELECT success FROM ordo.ack(ARRAY[$1], ARRAY[(SELECT p.id FROM ordo.partitions p"
        " JOIN ordo.queues q ON q.pk = p.queue_pk WHERE q.name = $2 AND p.name = $3)],"
        " ARRAY[$4], ARRAY[$5::smallint], CASE WHEN $6 = '' THEN NULL ELSE ARRAY[$6] END,"
        " NULL, $7::bigint)",
        {txid, q_, partition, lease, std::to_string(status), group, std::to_string(now)});
    ASSERT_EQ(r, std::vector<std::string>{"t"}) << "ack of " << txid;
  }

  // Pushes "m0" into `partition` and delivers and completes it, so that the partition has a
  // cursor (a pop makes it) with nothing leased.
  void Prime(const std::string& partition, const std::string& group = "") {
    Push(partition, partition + "-m0", kT);
    Pop p;
    p.prefer = partition;
    p.group = group;
    p.lease = "lease-prime";
    p.now = kT + kSecond;
    ASSERT_EQ(PopForReal(p), std::vector<std::string>{partition + "-m0"});
    Ack(partition, partition + "-m0", "lease-prime", 0, kT + 2 * kSecond, group);
  }

  // A pop's answer rows followed by the queue's cursor and subscription rows after it, and the
  // transaction ids it delivered.
  struct Answer {
    std::vector<std::string> rows;
    std::vector<std::string> txids;
  };

  // The Answer of `function` to `p`, in a transaction rolled back afterwards. With
  // `without_general`, ordo._pop_choose does not exist meanwhile.
  Answer AnswerOf(const char* function, const Pop& p, bool without_general) {
    EXPECT_TRUE(db_->Exec("BEGIN").ok());
    if (without_general) {
      EXPECT_TRUE(db_->Exec("ALTER FUNCTION ordo._pop_choose(text, text, text, int, int, boolean,"
                            " smallint, bigint, text, bigint, text[], boolean)"
                            " RENAME TO _pop_choose_hidden")
                      .ok());
    }
    Answer out;
    PgConn::Outcome pop = db_->Exec(PopSql(function), PopParams(p));
    EXPECT_TRUE(pop.ok()) << function << ": " << pop.error;
    if (pop.ok()) {
      out.rows = RowsOf(pop.result.get());
      out.txids = TxidsOf(pop.result.get());
    }
    for (std::string& row : Rows("SELECT p.name, c.group_name, c.position, c.lease_id,"
                                 " c.lease_expires_at, c.lease_last_seq, c.eligible_at"
                                 " FROM ordo.cursors c"
                                 " JOIN ordo.partitions p ON p.pk = c.partition_pk"
                                 " JOIN ordo.queues q ON q.pk = p.queue_pk"
                                 " WHERE q.name = $1 ORDER BY p.name, c.group_name",
                                 {q_})) {
      out.rows.push_back("cursor " + row);
    }
    for (std::string& row : Rows("SELECT s.group_name, s.start_from FROM ordo.subscriptions s"
                                 " JOIN ordo.queues q ON q.pk = s.queue_pk WHERE q.name = $1"
                                 " ORDER BY 1",
                                 {q_})) {
      out.rows.push_back("subscription " + row);
    }
    EXPECT_TRUE(db_->Exec("ROLLBACK").ok());
    return out;
  }

  // ordo.pop and ordo._pop_choose answer `p` alike and leave the same cursors; with kFast,
  // ordo.pop answers without _pop_choose. Returns the transaction ids delivered.
  std::vector<std::string> Same(const Pop& p, Path path) {
    Answer general = AnswerOf("_pop_choose", p, false);
    Answer ours = AnswerOf("pop", p, path == Path::kFast);
    EXPECT_EQ(ours.rows, general.rows);
    return ours.txids;
  }

  BrokerProcess broker_;
  std::unique_ptr<PgConn> db_;
  std::string q_;
};

using Txids = std::vector<std::string>;

// The transaction id "m<i>".
std::string M(int i) {
  std::string txid = "m";
  txid += std::to_string(i);
  return txid;
}

TEST_F(PopFastPathTest, DeliversTheNextMessagesOfTheNamedPartitionAsTheGeneralPopDoes) {
  Prime("P1");
  if (HasFatalFailure()) return;
  for (int i = 1; i <= 5; ++i) Push("P1", M(i), kT + 10 * kSecond + i);
  Push("P2", "other", kT + 5 * kSecond);  // older, but not the partition named

  Pop p;
  p.batch = 3;
  EXPECT_EQ(Same(p, Path::kFast), (Txids{"m1", "m2", "m3"}));
  p.batch = 10;
  EXPECT_EQ(Same(p, Path::kFast), (Txids{"m1", "m2", "m3", "m4", "m5"}));
  p.prefer_only = false;  // max_partitions 1: no room for another partition either way
  EXPECT_EQ(Same(p, Path::kFast), (Txids{"m1", "m2", "m3", "m4", "m5"}));
  p.max_partitions = 2;
  p.prefer_only = true;
  EXPECT_EQ(Same(p, Path::kFast), (Txids{"m1", "m2", "m3", "m4", "m5"}));

  // Not for the one-statement pop: room for other partitions, autoAck, an unknown name.
  p.prefer_only = false;
  EXPECT_EQ(Same(p, Path::kGeneral), (Txids{"m1", "m2", "m3", "m4", "m5", "other"}));
  p.max_partitions = 1;
  p.prefer_only = true;
  p.auto_ack = true;
  p.lease = "";
  EXPECT_EQ(Same(p, Path::kGeneral), (Txids{"m1", "m2", "m3", "m4", "m5"}));
  p.auto_ack = false;
  p.lease = "lease-x";
  p.prefer = "P9";
  EXPECT_EQ(Same(p, Path::kGeneral), Txids{});
}

TEST_F(PopFastPathTest, SkipsCompletedMessagesAndCountsRetriesAfterAnExpiredLease) {
  Prime("P1");
  if (HasFatalFailure()) return;
  for (int i = 1; i <= 5; ++i) Push("P1", M(i), kT + 10 * kSecond + i);
  Pop first;
  first.lease = "lease-1";
  first.now = kT + 20 * kSecond;
  ASSERT_EQ(PopForReal(first), (Txids{"m1", "m2", "m3", "m4", "m5"}));
  Ack("P1", "m2", "lease-1", 0, kT + 21 * kSecond);
  Ack("P1", "m4", "lease-1", 1, kT + 21 * kSecond);  // failed: a retry, counted

  // The failed ack ended the lease; m2 is done, m4 comes again with its retry counted.
  Pop p;
  p.now = kT + 3600 * kSecond;
  EXPECT_EQ(Same(p, Path::kFast), (Txids{"m1", "m3", "m4", "m5"}));
}

TEST_F(PopFastPathTest, ABatchEndsBeforeADelayedMessageAndADelayedHeadDeliversNothing) {
  Prime("P1");
  Prime("P2");
  if (HasFatalFailure()) return;
  Push("P1", "m1", kT + 10 * kSecond);
  Push("P1", "m2", kT + 11 * kSecond);
  Push("P1", "m3", kT + 12 * kSecond, /*delay_ms=*/3'600'000);
  Push("P1", "m4", kT + 13 * kSecond);
  Push("P2", "h1", kT + 10 * kSecond, /*delay_ms=*/3'600'000);
  Push("P2", "h2", kT + 11 * kSecond);

  Pop p;
  EXPECT_EQ(Same(p, Path::kFast), (Txids{"m1", "m2"}));
  p.prefer = "P2";
  EXPECT_EQ(Same(p, Path::kGeneral), Txids{});
  p.now = kT + 7200 * kSecond;
  EXPECT_EQ(Same(p, Path::kFast), (Txids{"h1", "h2"}));
}

TEST_F(PopFastPathTest, DelayedProcessingAndTheWindowBufferHoldThePartitionBack) {
  Prime("P1");
  Prime("P2");
  if (HasFatalFailure()) return;
  Configure(/*delayed_s=*/30, /*window_s=*/0, /*max_wait_s=*/0);
  Push("P1", "m1", kT + 100 * kSecond);
  Push("P1", "m2", kT + 120 * kSecond);
  Pop p;
  p.now = kT + 110 * kSecond;
  EXPECT_EQ(Same(p, Path::kGeneral), Txids{});
  p.now = kT + 131 * kSecond;  // m1 is old enough, m2 is not
  EXPECT_EQ(Same(p, Path::kFast), Txids{"m1"});
  p.now = kT + 151 * kSecond;
  EXPECT_EQ(Same(p, Path::kFast), (Txids{"m1", "m2"}));

  // A push whose clock is behind the partition's last push (another instance's clock) is
  // stamped with the partition's last time, so it waits with the message ahead of it.
  Push("P2", "s1", kT + 100 * kSecond);
  Push("P2", "s2", kT + 50 * kSecond);
  p.prefer = "P2";
  p.now = kT + 110 * kSecond;
  EXPECT_EQ(Same(p, Path::kGeneral), Txids{});
  p.now = kT + 131 * kSecond;
  EXPECT_EQ(Same(p, Path::kFast), (Txids{"s1", "s2"}));

  Configure(/*delayed_s=*/0, /*window_s=*/20, /*max_wait_s=*/0);
  Push("P1", "m3", kT + 200 * kSecond);
  p.prefer = "P1";
  p.now = kT + 210 * kSecond;  // the last push is within the window: nothing
  EXPECT_EQ(Same(p, Path::kGeneral), Txids{});
  p.now = kT + 221 * kSecond;
  EXPECT_EQ(Same(p, Path::kFast), (Txids{"m1", "m2", "m3"}));
}

TEST_F(PopFastPathTest, ARetryBackOffHoldsThePartitionBack) {
  Prime("P1");
  if (HasFatalFailure()) return;
  Configure(/*delayed_s=*/0, /*window_s=*/0, /*max_wait_s=*/0, /*retry_delay_ms=*/10'000);
  Push("P1", "m1", kT + 10 * kSecond);
  Pop first;
  first.lease = "lease-1";
  first.now = kT + 20 * kSecond;
  ASSERT_EQ(PopForReal(first), Txids{"m1"});
  Ack("P1", "m1", "lease-1", 1, kT + 21 * kSecond);

  Pop p;
  p.now = kT + 25 * kSecond;  // within the back-off
  EXPECT_EQ(Same(p, Path::kGeneral), Txids{});
  p.now = kT + 40 * kSecond;
  EXPECT_EQ(Same(p, Path::kFast), Txids{"m1"});
}

TEST_F(PopFastPathTest, ALiveLeaseALockedCursorOrAMissingCursorGoToTheGeneralPop) {
  Prime("P1");
  if (HasFatalFailure()) return;
  Push("P1", "m1", kT + 10 * kSecond);
  Push("P1", "m2", kT + 11 * kSecond);
  Push("P3", "n1", kT + 12 * kSecond);  // P3 has no cursor yet

  Pop p;
  p.prefer = "P3";
  EXPECT_EQ(Same(p, Path::kGeneral), Txids{"n1"});

  // Another transaction holds P1's cursor row: both skip it.
  std::string error;
  auto other = PgConn::Open(Env().url, &error);
  ASSERT_TRUE(other) << error;
  ASSERT_TRUE(other->Exec("BEGIN").ok());
  ASSERT_TRUE(other
                  ->Exec("SELECT 1 FROM ordo.cursors c JOIN ordo.partitions p"
                         " ON p.pk = c.partition_pk JOIN ordo.queues q ON q.pk = p.queue_pk"
                         " WHERE q.name = $1 AND p.name = 'P1' FOR UPDATE OF c",
                         {q_})
                  .ok());
  p.prefer = "P1";
  EXPECT_EQ(Same(p, Path::kGeneral), Txids{});
  ASSERT_TRUE(other->Exec("ROLLBACK").ok());

  Pop lease;
  lease.batch = 1;
  lease.lease = "lease-1";
  lease.now = kT + 50 * kSecond;
  ASSERT_EQ(PopForReal(lease), Txids{"m1"});
  p.now = kT + 60 * kSecond;
  EXPECT_EQ(Same(p, Path::kGeneral), Txids{});
  p.now = kT + 200 * kSecond;
  EXPECT_EQ(Same(p, Path::kFast), (Txids{"m1", "m2"}));
}

TEST_F(PopFastPathTest, AConsumerGroupAndMaxWaitTime) {
  Prime("P1", "g1");
  if (HasFatalFailure()) return;
  Push("P1", "m1", kT + 10 * kSecond);
  Pop p;
  p.group = "g1";
  EXPECT_EQ(Same(p, Path::kFast), Txids{"m1"});
  p.group = "g2";  // a new group: subscribes and makes its cursor through the general pop
  EXPECT_EQ(Same(p, Path::kGeneral), (Txids{"P1-m0", "m1"}));

  // A group with a cursor but no subscription (removed behind the broker's back) gets it back,
  // as from the general pop.
  ASSERT_TRUE(db_->Exec("DELETE FROM ordo.subscriptions s USING ordo.queues q"
                        " WHERE q.pk = s.queue_pk AND q.name = $1 AND s.group_name = 'g1'",
                        {q_})
                  .ok());
  p.group = "g1";
  EXPECT_EQ(Same(p, Path::kFast), Txids{"m1"});

  Configure(/*delayed_s=*/0, /*window_s=*/0, /*max_wait_s=*/3600);
  EXPECT_EQ(Same(p, Path::kGeneral), Txids{"m1"});
}

}  // namespace
}  // namespace ordo::pg_test
