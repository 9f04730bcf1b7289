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
// $7 now. One row per item: idx, status (0 queued, 1 duplicate), message_id, transaction_id,
// partition_id.
inline constexpr PreparedStatement kPush{
    "push",
    "SELECT idx, status, message_id, transaction_id, partition_id"
    " FROM ordo.push($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7)"};

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

// Namespace/task pop: $1 namespace, $2 task (NULL: any); higher priority first. Columns as
// kSelectQueues.
inline constexpr PreparedStatement kSelectQueuesByLabel{
    "select_queues_by_label",
    "SELECT id, name, namespace, task, created_at, lease_time_s, retry_limit, retry_delay_ms,"
    " retry_backoff, retry_delay_max_ms, delayed_processing_s, window_buffer_s, max_size,"
    " retention_s, completed_retention_s, max_wait_time_s, dedup_window_s, priority,"
    " encryption_enabled FROM ordo.queues WHERE ($1::text IS NULL OR namespace = $1)"
    " AND ($2::text IS NULL OR task = $2) ORDER BY priority DESC, name"};

// $1 queue name (NULL: all) $2 group $3 now.
inline constexpr PreparedStatement kPartitionStats{
    "partition_stats",
    "SELECT queue_name, partition_id, partition_name, created_at, total, oldest, newest,"
    " done_prefix, done_extra, in_lease, failed, dead FROM ordo.partition_stats($1, $2, $3)"};

// $1 queue $2 group $3 now. Columns: earliest live lease expiry, earliest future retry back-off
// end, the queue's delayed processing and window buffer (seconds); no row without the queue.
inline constexpr PreparedStatement kNextTimedEvent{
    "next_timed_event",
    "SELECT MIN(CASE WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > $3"
    "                THEN c.lease_expires_at END),"
    "       MIN(CASE WHEN c.eligible_at > $3 THEN c.eligible_at END),"
    "       q.delayed_processing_s, q.window_buffer_s"
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
// One transaction call as one statement (ordo.transact, migration 002). Push items over all push
// operations in order, as kPush: $1 queues $2 partitions $3 ids $4 transaction ids $5 trace ids
// $6 payloads; acks in order, as kAck, each with its operation index: $7 operation indexes
// $8 transaction ids $9 partition ids $10 lease ids $11 statuses $12 groups $13 errors; $14 now.
// Rows: kind (0 push, 1 ack), idx (1-based within its kind), status, message_id, transaction_id,
// partition_id (push columns), queue, partition, lease_released, dlq (ack columns).
// A refused ack raises kTransactRefused, "operations[i]: <reason>": nothing is stored.
inline constexpr PreparedStatement kTransact{
    "transact",
    "SELECT kind, idx, status, message_id, transaction_id, partition_id, queue, partition,"
    " lease_released, dlq"
    " FROM ordo.transact($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
    " $7::int[], $8::text[], $9::text[], $10::text[], $11::smallint[], $12::text[], $13::text[],"
    " $14)"};
inline constexpr const char* kTransactRefused = "OR409";
// ==== end transactions ====

// ==== consumer groups: #4.4 consumer groups, seek ====
// $1 group (NULL: all) $2 now. One row per partition of every known (queue, group) pair, see
// ordo.describe_groups (003_groups.sql); columns in the order of SQLite's kDescribeGroups.
inline constexpr PreparedStatement kDescribeGroups{
    "describe_groups",
    "SELECT queue_name, group_name, start_from, subscribed_at, partition_id, partition_name,"
    " last_seq, first_seq, cursor_position, completed_past, oldest_waiting, lease_id,"
    " lease_expires_at FROM ordo.describe_groups($1, $2)"};

// $1 group $2 queue $3 partition (NULL: all) $4 to end $5 timestamp $6 now.
// status: 0 done, 1 no such queue, 2 no such partition.
inline constexpr PreparedStatement kSeekGroup{
    "seek_group",
    "SELECT r_status, r_partitions, r_leases_ended FROM ordo.seek_group($1, $2, $3, $4, $5, $6)"};

// $1 group $2 queue (NULL: all) $3 now. One row per queue where something was removed.
inline constexpr PreparedStatement kDeleteGroup{
    "delete_group",
    "SELECT r_queue, r_partitions, r_leases_ended, r_subscription"
    " FROM ordo.delete_group($1, $2, $3)"};
// ==== end consumer groups ====

// ==== lifecycle: #4.5 maxSize, retention, dedup window, background jobs ====
// ==== end lifecycle ====

// ==== dlq and browsing: #4.6 dead-letter queue, #4.8 message browsing ====
// ==== end dlq and browsing ====

// ==== status: #4.8 overview, namespaces, tasks, status, analytics ====
// ==== end status ====
inline constexpr PreparedStatement kAll[] = {
    kConfigure,    kPush,           kPop,  kAck,    kExtendLease,   kDeleteQueue,
    kSelectQueues, kPartitionStats, kPing, kNotify, kNextTimedEvent,
    kSelectQueuesByLabel,
    // ==== transactions: #4.1 transactions, #4.3 per-message delay ====
    kTransact,
    // ==== end transactions ====

    // ==== consumer groups: #4.4 consumer groups, seek ====
    kDescribeGroups,
    kSeekGroup,
    kDeleteGroup,
    // ==== end consumer groups ====

    // ==== lifecycle: #4.5 maxSize, retention, dedup window, background jobs ====
    // ==== end lifecycle ====

    // ==== dlq and browsing: #4.6 dead-letter queue, #4.8 message browsing ====
    // ==== end dlq and browsing ====

    // ==== status: #4.8 overview, namespaces, tasks, status, analytics ====
    // ==== end status ====
};

}  // namespace ordo::db::pg::sql
