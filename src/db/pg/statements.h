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
// The migration transaction is not bounded by the request path's statement_timeout (set on every
// connection): neither its wait for another instance's migrations nor a long migration itself.
inline constexpr const char* kMigrationNoTimeout = "SET LOCAL statement_timeout = 0";
inline constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7216373620961)";
// What exists already: DDL runs only for what is missing, so a role without CREATE on the
// database (after the first start, whose migration 001 creates the schema) or without CREATE on
// the schema (every migration applied by another role) can start. CREATE ... IF NOT EXISTS checks
// the privilege before the existence.
inline constexpr const char* kSchemaState =
    "SELECT to_regnamespace('ordo') IS NOT NULL, to_regclass('ordo.schema_version') IS NOT NULL";
inline constexpr const char* kCreateSchema = "CREATE SCHEMA IF NOT EXISTS ordo";
inline constexpr const char* kCreateVersionTable =
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

// A flush of one item: $1 queue $2 partition $3 id $4 transaction id $5 trace id $6 payload
// $7 now $8 delayMs (NULL: not delayed). One row, as kPush's.
inline constexpr PreparedStatement kPushOne{
    "push_one",
    "SELECT idx, status, message_id, transaction_id, partition_id"
    " FROM ordo.push_one($1, $2, $3, $4, $5, $6, $7, $8)"};

// Lazy commits: the statements marked lazy_commit (pops without autoAck, acks, NOTIFYs) take a
// last boolean parameter, `lazy`. true turns synchronous_commit off for the statement's
// transaction (set_config(..., true) in a one-time filter, run before the function), so that
// its commit does not wait for the WAL flush; the pipeline never lets a durable statement share
// such a transaction (db::pg::Pipeline::Send). false (`--db-consumer-commit durable`, autoAck
// pops): the commit waits. See docs/decisions.md, "Lazy consumer commits".

// $1 queue $2 partition (NULL: any) $3 group $4 batch $5 max partitions $6 auto ack
// $7 subscription kind (0 all, 1 new, 2 timestamp) $8 subscription from $9 lease id $10 now
// $11 partitions to choose among first (NULL: none) $12 only those $13 lazy. Message rows
// (kind 0), or one row of another kind; after the messages, kind 5 rows name other eligible
// partitions (partition_name; PopResult::more_eligible).
inline constexpr PreparedStatement kPop{
    "pop",
    "SELECT kind, lease_expires_at, window_active, partition_id, partition_name, seq, message_id,"
    " transaction_id, trace_id, payload, created_at, retry_count"
    " FROM ordo.pop($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text[], $12)"
    " WHERE NOT $13::boolean OR (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL",
    /*shareable=*/true, /*lazy_commit=*/true};
// An autoAck pop moves the position as it reads (at-most-once): its commit waits for the flush.
inline constexpr PreparedStatement kPopAutoAck = Durable(kPop);

// Parallel arrays: $1 transaction ids $2 partition ids $3 lease ids $4 statuses (0 completed,
// 1 failed, 2 dlq, 3 retry) $5 groups $6 errors; $7 now $8 lazy.
inline constexpr PreparedStatement kAck{
    "ack",
    "SELECT idx, success, error, queue, partition, lease_released, dlq, more_waiting"
    " FROM ordo.ack($1::text[], $2::text[], $3::text[], $4::smallint[], $5::text[], $6::text[],"
    " $7)"
    " WHERE NOT $8::boolean OR (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL",
    /*shareable=*/true, /*lazy_commit=*/true};

// A flush of one ack of status completed: $1 transaction id $2 partition id $3 lease id
// $4 group $5 now $6 lazy. One row, as kAck's.
inline constexpr PreparedStatement kAckOne{
    "ack_one",
    "SELECT idx, success, error, queue, partition, lease_released, dlq, more_waiting"
    " FROM ordo.ack_one($1, $2, $3, $4, $5)"
    " WHERE NOT $6::boolean OR (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL",
    /*shareable=*/true, /*lazy_commit=*/true};

// $1 lease id $2 seconds $3 now $4 ids of the partitions under the lease (NULL: not known).
inline constexpr PreparedStatement kExtendLease{
    "extend_lease",
    "SELECT success, error, expires_at FROM ordo.extend_lease($1, $2, $3, $4::text[])"};

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
// end, the queue's delayed processing and window buffer (seconds), earliest instant a delayed
// message at the head of a partition becomes visible (delayMs; only partitions with messages
// past the group's position are read); no row without the queue.
inline constexpr PreparedStatement kNextTimedEvent{
    "next_timed_event",
    "SELECT MIN(CASE WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > $3"
    "                THEN c.lease_expires_at END),"
    "       MIN(CASE WHEN c.eligible_at > $3 THEN c.eligible_at END),"
    "       q.delayed_processing_s, q.window_buffer_s,"
    "       MIN(CASE WHEN p.last_seq > COALESCE(c.position, 0) THEN"
    "             (SELECT CASE WHEN m.visible_at > $3 THEN m.visible_at END FROM ordo.messages m"
    "               WHERE m.partition_pk = p.pk AND m.seq > COALESCE(c.position, 0)"
    "               ORDER BY m.seq LIMIT 1) END)"
    " FROM ordo.queues q LEFT JOIN ordo.partitions p ON p.queue_pk = q.pk"
    " LEFT JOIN ordo.cursors c ON c.partition_pk = p.pk AND c.group_name = $2"
    " WHERE q.name = $1 GROUP BY q.pk"};

inline constexpr PreparedStatement kPing{"ping", "SELECT 1"};

// Wakes other instances' long polls: $1 the queues that got messages or released leases, $2
// lazy. Sent after the push/ack committed, never inside the push transaction: PostgreSQL takes
// its notify-queue lock at commit and holds it through the WAL flush, which would serialise
// every push commit of the cluster behind it. Shareable: it may commit with pops and acks (one
// WAL flush less per push group; at most one NOTIFY per instance is out at a time, so only that
// one transaction waits for the lock).
inline constexpr PreparedStatement kNotify{
    "notify",
    "SELECT count(pg_notify('ordo_push', q)) FROM unnest($1::text[]) AS q"
    " WHERE NOT $2::boolean OR (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL",
    /*shareable=*/true, /*lazy_commit=*/true};

// ---- other instances (docs/architecture.md, "Cross-instance wake-up") ----
// Each instance's LISTEN connection holds this session-level advisory lock in shared mode for as
// long as it listens: the lock is how instances on one database find each other (pg_locks is
// readable by every role, and a crashed session's lock goes with it). The channel's payloads are
// queue names, which never start with '@' and are never empty, so two payloads are free for the
// instances' own handshake: a LISTEN connection that comes up sends kHello (""), and every other
// instance answers it with "@<pid of that connection>" (kNotify), telling it to re-check its
// parked polls once.
inline constexpr const char* kListenPresence = "SELECT pg_advisory_lock_shared(7216373620963)";
inline constexpr const char* kHello = "SELECT pg_notify('ordo_push', '')";
// Rows: one, the number of other instances listening on this database ($2 is our own LISTEN
// connection's backend pid, 0 without one), and the NOTIFYs sent: as kNotify for $1, only when
// there is another instance to hear them. A transaction that sends none writes nothing and
// commits without a WAL flush. $3 lazy.
inline constexpr PreparedStatement kNotifyIfPeers{
    "notify_if_peers",
    "WITH peers AS MATERIALIZED ("
    " SELECT count(*) AS n FROM pg_locks"
    "  WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND pid <> $2::int"
    "    AND (classid::bigint << 32) + objid::bigint = 7216373620963"
    "    AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
    " SELECT (SELECT n FROM peers),"
    "  (SELECT count(pg_notify('ordo_push', q)) FROM unnest($1::text[]) AS q"
    "    WHERE (SELECT n FROM peers) > 0"
    "      AND (NOT $3::boolean"
    "           OR (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL))",
    /*shareable=*/true, /*lazy_commit=*/true};

// Run once by each pool connection before it serves (migration 017): plans the common push,
// pop and ack paths for the session, leaving nothing behind.
inline constexpr PreparedStatement kWarmUp{"warm_up", "SELECT ordo.warm_up()"};

// ---- transactions ----
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
    " $14, $15::bigint[])"};
inline constexpr const char* kTransactRefused = "OR409";
// A push of the call would take a queue past its maxSize: nothing is stored (429).
inline constexpr const char* kTransactQueueFull = "OR429";

// ---- consumer groups and seek ----
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

// ---- admission and retention ----
// One bounded batch of the background rules: $1 now $2 row limit. One row: ran (false: another
// instance holds the job lock), removed, expired, pruned, more, expired queues joined by ','
// (queue names never contain one).
// Last column: idle (no queue has a rule and the dedup window is empty; see RetentionReport).
inline constexpr PreparedStatement kRunRetention{
    "run_retention",
    "SELECT ran, removed, expired, pruned, more, array_to_string(expired_queues, ','),"
    " NOT EXISTS (SELECT 1 FROM ordo.queues q WHERE q.retention_s > 0"
    "              OR q.completed_retention_s > 0 OR q.max_wait_time_s > 0)"
    " AND NOT EXISTS (SELECT 1 FROM ordo.dedup_window)"
    " FROM ordo.run_retention($1, $2)"};

// ---- dead-letter queue and message browsing ----
// A page of dead letters in (failed_at, pk) order; every filter optional (NULL):
//   $1 queue name  $2 group  $3 partition name  $4 failed_at from  $5 failed_at to (inclusive)
//   $6 $7 keyset: after (failed_at, pk)  $8 limit
inline constexpr PreparedStatement kListDeadLetters{
    "list_dead_letters",
    "SELECT d.pk, d.id, d.message_id, d.transaction_id, d.trace_id, p.id, q.name, p.name,"
    "  d.group_name, d.error, d.retry_count, d.payload, d.created_at, d.failed_at"
    " FROM ordo.dead_letters d JOIN ordo.partitions p ON p.pk = d.partition_pk"
    " JOIN ordo.queues q ON q.pk = d.queue_pk"
    " WHERE ($1::text IS NULL OR q.name = $1) AND ($2::text IS NULL OR d.group_name = $2)"
    "   AND ($3::text IS NULL OR p.name = $3) AND ($4::bigint IS NULL OR d.failed_at >= $4)"
    "   AND ($5::bigint IS NULL OR d.failed_at <= $5)"
    "   AND ($6::bigint IS NULL OR (d.failed_at, d.pk) > ($6, $7::bigint))"
    " ORDER BY d.failed_at, d.pk LIMIT $8"};

// $1 entry ids $2 new message ids (one per entry) $3 now; see ordo.dlq_requeue.
inline constexpr PreparedStatement kRequeueDeadLetters{
    "dlq_requeue", "SELECT id, queue FROM ordo.dlq_requeue($1::text[], $2::text[], $3)"};

inline constexpr PreparedStatement kDeleteDeadLetter{
    "dlq_delete", "DELETE FROM ordo.dead_letters WHERE id = $1 RETURNING pk"};

// $1 partition id $2 transaction id; see ordo.delete_message.
inline constexpr PreparedStatement kDeleteMessage{"delete_message",
                                                  "SELECT ordo.delete_message($1, $2)"};

// A page of messages in (partition_pk, seq) order with their state for group $3:
// 0 pending, 1 processing (under a live lease), 2 completed, 3 dead-lettered.
//   $1 queue name  $2 partition name  $3 group  $4 now  $5 state  $6 created_at from
//   $7 created_at to (inclusive)  $8 $9 keyset: after (partition_pk, seq)  $10 limit
inline constexpr PreparedStatement kListMessages{
    "list_messages",
    "SELECT ppk, seq, id, transaction_id, trace_id, payload, created_at, pid, pname, qname,"
    "  retry_count, state FROM ("
    " SELECT m.partition_pk AS ppk, m.seq AS seq, m.id AS id, m.transaction_id AS transaction_id,"
    "  m.trace_id AS trace_id, m.payload AS payload, m.created_at AS created_at, p.id AS pid,"
    "  p.name AS pname, q.name AS qname,"
    "  coalesce((SELECT f.count FROM ordo.failures f WHERE f.partition_pk = m.partition_pk"
    "            AND f.group_name = $3 AND f.seq = m.seq), 0) AS retry_count,"
    "  CASE"
    "   WHEN EXISTS (SELECT 1 FROM ordo.dead_letters d WHERE d.partition_pk = m.partition_pk"
    "                AND d.group_name = $3 AND d.seq = m.seq) THEN 3"
    "   WHEN m.seq <= coalesce(c.position, 0) OR EXISTS (SELECT 1 FROM ordo.completions k"
    "        WHERE k.partition_pk = m.partition_pk AND k.group_name = $3 AND k.seq = m.seq)"
    "     THEN 2"
    "   WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > $4 AND m.seq <= c.lease_last_seq"
    "     THEN 1"
    "   ELSE 0 END AS state"
    " FROM ordo.messages m JOIN ordo.partitions p ON p.pk = m.partition_pk"
    " JOIN ordo.queues q ON q.pk = p.queue_pk"
    " LEFT JOIN ordo.cursors c ON c.partition_pk = m.partition_pk AND c.group_name = $3::text"
    " WHERE ($1::text IS NULL OR q.name = $1) AND ($2::text IS NULL OR p.name = $2)"
    "   AND ($6::bigint IS NULL OR m.created_at >= $6)"
    "   AND ($7::bigint IS NULL OR m.created_at <= $7)"
    "   AND ($8::bigint IS NULL OR (m.partition_pk, m.seq) > ($8, $9::bigint))"
    ") x WHERE $5::int IS NULL OR state = $5 ORDER BY ppk, seq LIMIT $10"};

// One message with its queue: the queue columns (as kSelectQueues), then seq, id,
// transaction_id, trace_id, payload, created_at, partition pk, partition name, queue pk.
//   $1 partition id  $2 transaction id
inline constexpr PreparedStatement kSelectMessageDetail{
    "message_detail",
    "SELECT q.id, q.name, q.namespace, q.task, q.created_at, q.lease_time_s, q.retry_limit,"
    " q.retry_delay_ms, q.retry_backoff, q.retry_delay_max_ms, q.delayed_processing_s,"
    " q.window_buffer_s, q.max_size, q.retention_s, q.completed_retention_s, q.max_wait_time_s,"
    " q.dedup_window_s, q.priority, q.encryption_enabled,"
    " m.seq, m.id, m.transaction_id, m.trace_id, m.payload, m.created_at, p.pk, p.name, q.pk"
    " FROM ordo.partitions p JOIN ordo.messages m ON m.partition_pk = p.pk"
    " JOIN ordo.queues q ON q.pk = p.queue_pk WHERE p.id = $1 AND m.transaction_id = $2"};

// Every group known on queue $1 (a cursor in any partition, a subscription, or a dead letter of
// this message) and its state for message (partition $2, seq $3) at $4 = now:
// name, done, leased, failures, dead-lettered.
inline constexpr PreparedStatement kMessageGroupStates{
    "message_group_states",
    "SELECT g.name,"
    "  coalesce(c.position >= $3, false) OR EXISTS (SELECT 1 FROM ordo.completions k"
    "       WHERE k.partition_pk = $2 AND k.group_name = g.name AND k.seq = $3),"
    "  coalesce(c.lease_id IS NOT NULL AND c.lease_expires_at > $4 AND c.position < $3"
    "        AND c.lease_last_seq >= $3, false) AND NOT EXISTS (SELECT 1 FROM ordo.completions k"
    "       WHERE k.partition_pk = $2 AND k.group_name = g.name AND k.seq = $3),"
    "  coalesce((SELECT f.count FROM ordo.failures f WHERE f.partition_pk = $2"
    "            AND f.group_name = g.name AND f.seq = $3),"
    "           (SELECT max(d.retry_count) FROM ordo.dead_letters d WHERE d.partition_pk = $2"
    "            AND d.group_name = g.name AND d.seq = $3), 0),"
    "  EXISTS (SELECT 1 FROM ordo.dead_letters d WHERE d.partition_pk = $2"
    "          AND d.group_name = g.name AND d.seq = $3)"
    " FROM (SELECT c2.group_name AS name FROM ordo.cursors c2 JOIN ordo.partitions p2"
    "         ON p2.pk = c2.partition_pk WHERE p2.queue_pk = $1::bigint"
    "       UNION SELECT s.group_name FROM ordo.subscriptions s WHERE s.queue_pk = $1"
    "       UNION SELECT d.group_name FROM ordo.dead_letters d WHERE d.partition_pk = $2::bigint"
    "         AND d.seq = $3::bigint) g"
    " LEFT JOIN ordo.cursors c ON c.partition_pk = $2 AND c.group_name = g.name"
    " ORDER BY g.name"};

// ---- overview, status and analytics ----
// Adds (queue, minute) cells to the flow counters in one statement; concurrent flushes from
// several instances add up. The caller sorts the cells by (queue, minute), so two flushes lock
// shared rows in the same order. Parallel arrays: $1 queues $2 minutes $3 pushed $4 duplicates
// $5 delivered $6 completed $7 failed $8 dead_lettered; $9 the oldest minute kept: older rows
// are deleted and older cells ignored (0: keep all). The delete and the insert touch disjoint
// rows (before and from $9).
inline constexpr PreparedStatement kFlushStats{
    "flush_stats",
    "WITH expired AS (DELETE FROM ordo.queue_stats WHERE minute < $9::bigint)"
    " INSERT INTO ordo.queue_stats AS s (queue, minute, pushed, duplicates, delivered, completed,"
    " failed, dead_lettered)"
    " SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],"
    " $6::bigint[], $7::bigint[], $8::bigint[]) AS u(q, m, p, dup, del, c, f, d)"
    " WHERE u.m >= $9::bigint"
    " ON CONFLICT (queue, minute) DO UPDATE SET pushed = s.pushed + EXCLUDED.pushed,"
    " duplicates = s.duplicates + EXCLUDED.duplicates,"
    " delivered = s.delivered + EXCLUDED.delivered, completed = s.completed + EXCLUDED.completed,"
    " failed = s.failed + EXCLUDED.failed,"
    " dead_lettered = s.dead_lettered + EXCLUDED.dead_lettered"};

// Flow counters summed per bucket. $1 from (inclusive) $2 to (exclusive) $3 bucket width (0: one
// bucket, reported as 0) $4 queue (NULL: all) $5 one row per queue and bucket (false: queue '').
inline constexpr PreparedStatement kReadStats{
    "read_stats",
    "SELECT CASE WHEN $5::boolean THEN queue ELSE '' END AS q,"
    " CASE WHEN $3::bigint > 0 THEN minute - (minute % $3::bigint) ELSE 0 END AS b,"
    " sum(pushed)::bigint, sum(duplicates)::bigint, sum(delivered)::bigint,"
    " sum(completed)::bigint, sum(failed)::bigint, sum(dead_lettered)::bigint"
    " FROM ordo.queue_stats"
    " WHERE minute >= $1::bigint AND minute < $2::bigint AND ($4::text IS NULL OR queue = $4)"
    " GROUP BY 1, 2 ORDER BY 2, 1"};

// Every queue (or one) with its partitions' cheap tallies for a group, for the overview. No
// count over messages: the oldest retained seq is one primary-key probe.
// $1 group $2 now $3 queue name (NULL: all). Columns: the 19 queue columns of kSelectQueues, then
// (NULL for a queue without partitions) 19 partition id, 20 partition name, 21 last_seq,
// 22 oldest retained seq (0: none), 23 position, 24 delivered under the live lease,
// 25 completions past the position, 26 failures, 27 dead letters.
inline constexpr PreparedStatement kOverview{
    "overview",
    "SELECT q.id, q.name, q.namespace, q.task, q.created_at, q.lease_time_s, q.retry_limit,"
    " q.retry_delay_ms, q.retry_backoff, q.retry_delay_max_ms, q.delayed_processing_s,"
    " q.window_buffer_s, q.max_size, q.retention_s, q.completed_retention_s,"
    " q.max_wait_time_s, q.dedup_window_s, q.priority, q.encryption_enabled,"
    " p.id, p.name, p.last_seq,"
    " coalesce((SELECT m.seq FROM ordo.messages m WHERE m.partition_pk = p.pk"
    "   ORDER BY m.seq LIMIT 1), 0),"
    " coalesce(c.position, 0),"
    " CASE WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > $2::bigint"
    "   THEN c.lease_last_seq - c.position ELSE 0 END,"
    " (SELECT count(*) FROM ordo.completions k WHERE k.partition_pk = p.pk"
    "   AND k.group_name = $1::text),"
    " (SELECT count(*) FROM ordo.failures f WHERE f.partition_pk = p.pk"
    "   AND f.group_name = $1::text),"
    " (SELECT count(*) FROM ordo.dead_letters d WHERE d.partition_pk = p.pk"
    "   AND d.group_name = $1::text)"
    " FROM ordo.queues q LEFT JOIN ordo.partitions p ON p.queue_pk = q.pk"
    " LEFT JOIN ordo.cursors c ON c.partition_pk = p.pk AND c.group_name = $1::text"
    " WHERE $3::text IS NULL OR q.name = $3::text"
    " ORDER BY q.name, p.name"};
// What a push, an autoAck pop or a transaction call answered must survive a server crash.
static_assert(!kPush.lazy_commit && !kPushOne.lazy_commit && !kPopAutoAck.lazy_commit &&
              !kTransact.lazy_commit);

inline constexpr PreparedStatement kAll[] = {
    kConfigure,
    kPush,
    kPushOne,
    kPop,
    kAck,
    kAckOne,
    kExtendLease,
    kDeleteQueue,
    kSelectQueues,
    kPartitionStats,
    kPing,
    kNotify,
    kNotifyIfPeers,
    kWarmUp,
    kNextTimedEvent,
    kSelectQueuesByLabel,
    // ---- transactions ----
    kTransact,

    // ---- consumer groups and seek ----
    kDescribeGroups,
    kSeekGroup,
    kDeleteGroup,

    // ---- admission and retention ----
    kRunRetention,

    // ---- dead-letter queue and message browsing ----
    kListDeadLetters,
    kRequeueDeadLetters,
    kDeleteDeadLetter,
    kDeleteMessage,
    kListMessages,
    kSelectMessageDetail,
    kMessageGroupStates,

    // ---- overview, status and analytics ----
    kFlushStats,
    kReadStats,
    kOverview,
};

}  // namespace ordo::db::pg::sql
