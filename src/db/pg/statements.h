// Every SQL statement of the PostgreSQL engine, in one place. The schema and the functions these
// call are in src/db/migrations/postgres/. Each is prepared once per connection under its name.
// Column order of every result is fixed here and read by position in broker/pg_store.cc.
#pragma once

#include "db/pg/pipeline.h"

namespace ordo::db::pg::sql {

// Migrations (run at start-up on a plain connection, see migrate.cc).
inline constexpr const char* kBegin = "BEGIN";
inline constexpr const char* kCommit = "COMMIT";
inline constexpr const char* kRollback = "ROLLBACK";
inline constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7216373620961)";
inline constexpr const char* kCreateVersionTable =
    "CREATE SCHEMA IF NOT EXISTS ordo;"
    "CREATE TABLE IF NOT EXISTS ordo.schema_version ("
    " version integer PRIMARY KEY, name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";
inline constexpr const char* kAppliedVersions = "SELECT version FROM ordo.schema_version";
inline constexpr const char* kRecordVersion =
    "INSERT INTO ordo.schema_version (version, name) VALUES ($1, $2)";

// $1 queue $2 now $3 namespace $4 task $5.. options (NULL: unchanged), see ordo.configure.
inline constexpr PreparedStatement kConfigure{
    "configure",
    "SELECT * FROM ordo.configure($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
    " $15, $16, $17, $18)"};

// Parallel arrays: $1 queues $2 partitions $3 ids $4 transaction ids $5 trace ids $6 payloads
// $7 now $8 call index of each item (maxSize refuses a call whole) $9 delayMs of each item
// (NULL: none delayed). One row per item: idx,
// status (0 queued, 1 duplicate, 2 refused: its queue is full, 3 refused: another queue of its
// call is full), message_id (NULL when refused), transaction_id, partition_id.
inline constexpr PreparedStatement kPush{
    "push",
    "SELECT idx, status, message_id, transaction_id, partition_id"
    " FROM ordo.push($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7,"
    " $8::int[], $9::bigint[])"};

// $1 queue $2 partition (NULL: any) $3 group $4 batch $5 max partitions $6 auto ack
// $7 subscription kind (0 all, 1 new, 2 timestamp) $8 subscription from $9 lease id $10 now.
inline constexpr PreparedStatement kPop{
    "pop",
    "SELECT kind, lease_expires_at, window_active, partition_id, partition_name, seq, message_id,"
    " transaction_id, trace_id, payload, created_at, retry_count"
    " FROM ordo.pop($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"};

// Parallel arrays: $1 transaction ids $2 partition ids $3 lease ids $4 statuses (0 completed,
// 1 failed, 2 dlq, 3 retry) $5 groups $6 errors; $7 now.
inline constexpr PreparedStatement kAck{
    "ack",
    "SELECT idx, success, error, queue, partition, lease_released, dlq"
    " FROM ordo.ack($1::text[], $2::text[], $3::text[], $4::smallint[], $5::text[], $6::text[],"
    " $7)"};

inline constexpr PreparedStatement kExtendLease{
    "extend_lease", "SELECT success, error, expires_at FROM ordo.extend_lease($1, $2, $3)"};

inline constexpr PreparedStatement kDeleteQueue{"delete_queue", "SELECT ordo.delete_queue($1)"};

// $1 queue name (NULL: all queues).
inline constexpr PreparedStatement kSelectQueues{
    "select_queues",
    "SELECT id, name, namespace, task, created_at, lease_time_s, retry_limit, retry_delay_ms,"
    " retry_backoff, retry_delay_max_ms, delayed_processing_s, window_buffer_s, max_size,"
    " retention_s, completed_retention_s, max_wait_time_s, dedup_window_s, priority,"
    " encryption_enabled FROM ordo.queues WHERE $1::text IS NULL OR name = $1 ORDER BY name"};

// $1 queue name (NULL: all) $2 group $3 now.
inline constexpr PreparedStatement kPartitionStats{
    "partition_stats",
    "SELECT queue_name, partition_id, partition_name, created_at, total, oldest, newest,"
    " done_prefix, done_extra, in_lease, failed, dead FROM ordo.partition_stats($1, $2, $3)"};

// $1 queue $2 group $3 now. Columns: earliest live lease expiry, earliest future retry back-off
// end, the queue's delayed processing and window buffer (seconds), earliest instant a delayed
// message at the head of a partition becomes visible (delayMs); no row without the queue.
inline constexpr PreparedStatement kNextTimedEvent{
    "next_timed_event",
    "SELECT MIN(CASE WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > $3"
    "                THEN c.lease_expires_at END),"
    "       MIN(CASE WHEN c.eligible_at > $3 THEN c.eligible_at END),"
    "       q.delayed_processing_s, q.window_buffer_s,"
    "       MIN((SELECT CASE WHEN m.visible_at > $3 THEN m.visible_at END FROM ordo.messages m"
    "             WHERE m.partition_pk = p.pk AND m.seq > COALESCE(c.position, 0)"
    "             ORDER BY m.seq LIMIT 1))"
    " FROM ordo.queues q LEFT JOIN ordo.partitions p ON p.queue_pk = q.pk"
    " LEFT JOIN ordo.cursors c ON c.partition_pk = p.pk AND c.group_name = $2"
    " WHERE q.name = $1 GROUP BY q.pk"};

inline constexpr PreparedStatement kPing{"ping", "SELECT 1"};

// Wakes other instances' long polls: $1 the queues that got messages or released leases. Sent as
// its own tiny transaction after the push/ack committed: a NOTIFY inside the push transaction
// would take PostgreSQL's notify-queue lock at commit and hold it through the WAL flush,
// serialising every push commit of the cluster behind it.
inline constexpr PreparedStatement kNotify{
    "notify", "SELECT count(pg_notify('ordo_push', q)) FROM unnest($1::text[]) AS q"};

// ==== transactions: #4.1 transactions, #4.3 per-message delay ====
// ==== end transactions ====

// ==== consumer groups: #4.4 consumer groups, seek ====
// ==== end consumer groups ====

// ==== lifecycle: #4.5 maxSize, retention, dedup window, background jobs ====
// One bounded batch of the background rules: $1 now $2 row limit. One row: ran (false: another
// instance holds the job lock), removed, expired, pruned, more, expired queues joined by ','
// (queue names never contain one).
inline constexpr PreparedStatement kRunRetention{
    "run_retention",
    "SELECT ran, removed, expired, pruned, more, array_to_string(expired_queues, ',')"
    " FROM ordo.run_retention($1, $2)"};
// ==== end lifecycle ====

// ==== dlq and browsing: #4.6 dead-letter queue, #4.8 message browsing ====
// ==== end dlq and browsing ====

// ==== status: #4.8 overview, namespaces, tasks, status, analytics ====
// ==== end status ====
inline constexpr PreparedStatement kAll[] = {
    kConfigure,    kPush,           kPop,  kAck,    kExtendLease,   kDeleteQueue,
    kSelectQueues, kPartitionStats, kPing, kNotify, kNextTimedEvent,
    // ==== transactions: #4.1 transactions, #4.3 per-message delay ====
    // ==== end transactions ====

    // ==== consumer groups: #4.4 consumer groups, seek ====
    // ==== end consumer groups ====

    // ==== lifecycle: #4.5 maxSize, retention, dedup window, background jobs ====
    kRunRetention,
    // ==== end lifecycle ====

    // ==== dlq and browsing: #4.6 dead-letter queue, #4.8 message browsing ====
    // ==== end dlq and browsing ====

    // ==== status: #4.8 overview, namespaces, tasks, status, analytics ====
    // ==== end status ====
};

}  // namespace ordo::db::pg::sql
