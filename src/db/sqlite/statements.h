// Every SQL statement of the SQLite engine, in one place. The schema is in
// src/db/migrations/sqlite/. Parameters are numbered (?N) so a statement reads on its own.
#pragma once

namespace ordo::db::sqlite::sql {

inline constexpr const char* kQueueColumns =
    "pk, id, name, namespace, task, created_at, lease_time_s, retry_limit, retry_delay_ms,"
    " retry_backoff, retry_delay_max_ms, delayed_processing_s, window_buffer_s, max_size,"
    " retention_s, completed_retention_s, max_wait_time_s, dedup_window_s, priority,"
    " encryption_enabled";

inline constexpr const char* kSelectQueueByName =
    "SELECT pk, id, name, namespace, task, created_at, lease_time_s, retry_limit, retry_delay_ms,"
    " retry_backoff, retry_delay_max_ms, delayed_processing_s, window_buffer_s, max_size,"
    " retention_s, completed_retention_s, max_wait_time_s, dedup_window_s, priority,"
    " encryption_enabled FROM queues WHERE name = ?1";

inline constexpr const char* kSelectQueueByPk =
    "SELECT pk, id, name, namespace, task, created_at, lease_time_s, retry_limit, retry_delay_ms,"
    " retry_backoff, retry_delay_max_ms, delayed_processing_s, window_buffer_s, max_size,"
    " retention_s, completed_retention_s, max_wait_time_s, dedup_window_s, priority,"
    " encryption_enabled FROM queues WHERE pk = ?1";

inline constexpr const char* kSelectAllQueues =
    "SELECT pk, id, name, namespace, task, created_at, lease_time_s, retry_limit, retry_delay_ms,"
    " retry_backoff, retry_delay_max_ms, delayed_processing_s, window_buffer_s, max_size,"
    " retention_s, completed_retention_s, max_wait_time_s, dedup_window_s, priority,"
    " encryption_enabled FROM queues ORDER BY name";

inline constexpr const char* kInsertQueue =
    "INSERT INTO queues (id, name, created_at) VALUES (?1, ?2, ?3)";

inline constexpr const char* kUpdateQueue =
    "UPDATE queues SET namespace = ?2, task = ?3, lease_time_s = ?4, retry_limit = ?5,"
    " retry_delay_ms = ?6, retry_backoff = ?7, retry_delay_max_ms = ?8,"
    " delayed_processing_s = ?9, window_buffer_s = ?10, max_size = ?11, retention_s = ?12,"
    " completed_retention_s = ?13, max_wait_time_s = ?14, dedup_window_s = ?15, priority = ?16,"
    " encryption_enabled = ?17 WHERE pk = ?1";

inline constexpr const char* kSelectPartitionByName =
    "SELECT pk, id, last_seq, last_at FROM partitions WHERE queue_pk = ?1 AND name = ?2";

inline constexpr const char* kSelectPartitionById =
    "SELECT pk, queue_pk, name, last_seq, last_at FROM partitions WHERE id = ?1";

inline constexpr const char* kInsertPartition =
    "INSERT INTO partitions (id, queue_pk, name, created_at) VALUES (?1, ?2, ?3, ?4)";

inline constexpr const char* kUpdatePartitionHead =
    "UPDATE partitions SET last_seq = ?2, last_at = ?3 WHERE pk = ?1";

inline constexpr const char* kFindMessageByTxid =
    "SELECT seq, id FROM messages WHERE partition_pk = ?1 AND transaction_id = ?2";

// A duplicate transactionId inserts nothing (changes() == 0): the unique index does the dedup
// check, so a new message costs no separate lookup.
inline constexpr const char* kInsertMessage =
    "INSERT INTO messages (partition_pk, seq, id, transaction_id, trace_id, payload, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    " ON CONFLICT (partition_pk, transaction_id) DO NOTHING";

inline constexpr const char* kSelectSubscription =
    "SELECT start_from FROM subscriptions WHERE queue_pk = ?1 AND group_name = ?2";

inline constexpr const char* kInsertSubscription =
    "INSERT INTO subscriptions (queue_pk, group_name, start_from, created_at)"
    " VALUES (?1, ?2, ?3, ?4)";

inline constexpr const char* kSelectCursor =
    "SELECT position, lease_id, lease_expires_at, lease_last_seq, eligible_at FROM cursors"
    " WHERE partition_pk = ?1 AND group_name = ?2";

// A group's first position in a partition: past every message created before its start.
inline constexpr const char* kStartPosition =
    "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE partition_pk = ?1 AND created_at < ?2";

inline constexpr const char* kInsertCursor =
    "INSERT INTO cursors (partition_pk, group_name, position) VALUES (?1, ?2, ?3)";

inline constexpr const char* kUpdateCursor =
    "UPDATE cursors SET position = ?3, lease_id = ?4, lease_expires_at = ?5, lease_last_seq = ?6,"
    " eligible_at = ?7 WHERE partition_pk = ?1 AND group_name = ?2";

// Eligible partitions of a queue for a group, oldest waiting message first.
//   ?1 queue_pk  ?2 group  ?3 now  ?4 group start (for partitions the group has not met yet)
//   ?5 window edge (newest message must be at or before)  ?6 visibility edge (delayed
//   processing: the oldest waiting message must be at or before)  ?7 limit
// A partition whose head message is still delayed (delayMs) is not eligible.
inline constexpr const char* kEligiblePartitions =
    "SELECT pk, id, name, position, oldest FROM ("
    " SELECT p.pk AS pk, p.id AS id, p.name AS name, COALESCE(c.position, -1) AS position,"
    "  (SELECT CASE WHEN m.visible_at > ?3 THEN NULL ELSE m.created_at END"
    "     FROM messages m WHERE m.partition_pk = p.pk"
    "     AND m.seq > COALESCE(c.position, 0) AND (c.partition_pk IS NOT NULL OR m.created_at >= "
    "?4)"
    "     ORDER BY m.seq LIMIT 1) AS oldest"
    " FROM partitions p LEFT JOIN cursors c ON c.partition_pk = p.pk AND c.group_name = ?2"
    " WHERE p.queue_pk = ?1 AND p.last_seq > COALESCE(c.position, 0)"
    "   AND (c.lease_id IS NULL OR c.lease_expires_at <= ?3)"
    "   AND COALESCE(c.eligible_at, 0) <= ?3"
    "   AND (c.partition_pk IS NOT NULL OR p.last_at >= ?4)"
    "   AND p.last_at <= ?5"
    ") WHERE oldest IS NOT NULL AND oldest <= ?6 ORDER BY oldest, pk LIMIT ?7";

// Messages a group may receive from a partition, in order, skipping ones it already completed.
//   ?1 partition_pk  ?2 group  ?3 position  ?4 visibility edge  ?5 limit
// The last column is visible_at (delayMs): the reader stops at the first one still delayed.
inline constexpr const char* kFetchMessages =
    "SELECT m.seq, m.id, m.transaction_id, m.trace_id, m.payload, m.created_at,"
    "  COALESCE((SELECT f.count FROM failures f WHERE f.partition_pk = m.partition_pk"
    "            AND f.group_name = ?2 AND f.seq = m.seq), 0), m.visible_at"
    " FROM messages m"
    " WHERE m.partition_pk = ?1 AND m.seq > ?3 AND m.created_at <= ?4"
    "   AND NOT EXISTS (SELECT 1 FROM completions k WHERE k.partition_pk = m.partition_pk"
    "                   AND k.group_name = ?2 AND k.seq = m.seq)"
    " ORDER BY m.seq LIMIT ?5";

inline constexpr const char* kIsCompleted =
    "SELECT 1 FROM completions WHERE partition_pk = ?1 AND group_name = ?2 AND seq = ?3";
inline constexpr const char* kInsertCompletion =
    "INSERT OR IGNORE INTO completions (partition_pk, group_name, seq) VALUES (?1, ?2, ?3)";
inline constexpr const char* kCompletionsAfter =
    "SELECT seq FROM completions WHERE partition_pk = ?1 AND group_name = ?2 AND seq > ?3"
    " ORDER BY seq";
inline constexpr const char* kDeleteCompletionsUpTo =
    "DELETE FROM completions WHERE partition_pk = ?1 AND group_name = ?2 AND seq <= ?3";
inline constexpr const char* kDeleteCompletionsFrom =
    "DELETE FROM completions WHERE partition_pk = ?1 AND group_name = ?2 AND seq >= ?3";

inline constexpr const char* kBumpFailure =
    "INSERT INTO failures (partition_pk, group_name, seq, count) VALUES (?1, ?2, ?3, 1)"
    " ON CONFLICT (partition_pk, group_name, seq) DO UPDATE SET count = count + 1"
    " RETURNING count";
inline constexpr const char* kSelectFailure =
    "SELECT count FROM failures WHERE partition_pk = ?1 AND group_name = ?2 AND seq = ?3";
inline constexpr const char* kDeleteFailuresUpTo =
    "DELETE FROM failures WHERE partition_pk = ?1 AND group_name = ?2 AND seq <= ?3";

//   ?1 dlq id  ?2 queue_pk  ?3 group  ?4 error  ?5 retry_count  ?6 failed_at  ?7 partition_pk
//   ?8 seq
inline constexpr const char* kInsertDeadLetter =
    "INSERT INTO dead_letters (id, queue_pk, partition_pk, group_name, message_id, seq,"
    "  transaction_id, trace_id, payload, created_at, error, retry_count, failed_at)"
    " SELECT ?1, ?2, partition_pk, ?3, id, seq, transaction_id, trace_id, payload, created_at,"
    "  ?4, ?5, ?6 FROM messages WHERE partition_pk = ?7 AND seq = ?8";

inline constexpr const char* kSelectLease =
    "SELECT partition_pk, group_name, lease_expires_at FROM cursors WHERE lease_id = ?1";
inline constexpr const char* kExtendLease =
    "UPDATE cursors SET lease_expires_at = ?2 WHERE lease_id = ?1 AND lease_expires_at > ?3";

inline constexpr const char* kDeleteQueueRows =
    "DELETE FROM messages WHERE partition_pk IN (SELECT pk FROM partitions WHERE queue_pk = ?1);"
    "DELETE FROM cursors WHERE partition_pk IN (SELECT pk FROM partitions WHERE queue_pk = ?1);"
    "DELETE FROM completions WHERE partition_pk IN"
    " (SELECT pk FROM partitions WHERE queue_pk = ?1);"
    "DELETE FROM failures WHERE partition_pk IN (SELECT pk FROM partitions WHERE queue_pk = ?1);"
    "DELETE FROM dead_letters WHERE queue_pk = ?1;"
    "DELETE FROM subscriptions WHERE queue_pk = ?1;"
    "DELETE FROM dedup_window WHERE partition_pk IN"
    " (SELECT pk FROM partitions WHERE queue_pk = ?1);"
    "DELETE FROM partitions WHERE queue_pk = ?1;"
    "DELETE FROM queues WHERE pk = ?1;";

// Per-partition counts for the default group, for browsing (reader connections).
//   ?1 queue_pk  ?2 group  ?3 now
inline constexpr const char* kPartitionStats =
    "SELECT p.id, p.name, p.created_at,"
    "  (SELECT COUNT(*) FROM messages m WHERE m.partition_pk = p.pk),"
    "  (SELECT MIN(created_at) FROM messages m WHERE m.partition_pk = p.pk),"
    "  (SELECT MAX(created_at) FROM messages m WHERE m.partition_pk = p.pk),"
    "  (SELECT COUNT(*) FROM messages m WHERE m.partition_pk = p.pk"
    "     AND m.seq <= COALESCE(c.position, 0)),"
    "  (SELECT COUNT(*) FROM completions k WHERE k.partition_pk = p.pk AND k.group_name = ?2),"
    "  CASE WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > ?3 THEN"
    "    (SELECT COUNT(*) FROM messages m WHERE m.partition_pk = p.pk AND m.seq > c.position"
    "       AND m.seq <= c.lease_last_seq) ELSE 0 END,"
    "  (SELECT COUNT(*) FROM failures f WHERE f.partition_pk = p.pk AND f.group_name = ?2),"
    "  (SELECT COUNT(*) FROM dead_letters d WHERE d.partition_pk = p.pk AND d.group_name = ?2)"
    " FROM partitions p LEFT JOIN cursors c ON c.partition_pk = p.pk AND c.group_name = ?2"
    " WHERE p.queue_pk = ?1 ORDER BY p.name";

// Time-based events that may end an empty pop's wait.  ?1 queue name  ?2 group  ?3 now
// Columns: earliest live lease expiry, earliest future retry back-off end, the queue's delayed
// processing and window buffer (seconds), earliest instant a delayed message at the head of a
// partition becomes visible (delayMs). No row when the queue does not exist.
inline constexpr const char* kNextTimedEvent =
    "SELECT MIN(CASE WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > ?3"
    "                THEN c.lease_expires_at END),"
    "       MIN(CASE WHEN c.eligible_at > ?3 THEN c.eligible_at END),"
    "       q.delayed_processing_s, q.window_buffer_s,"
    "       MIN((SELECT CASE WHEN m.visible_at > ?3 THEN m.visible_at END FROM messages m"
    "            WHERE m.partition_pk = p.pk AND m.seq > COALESCE(c.position, 0)"
    "            ORDER BY m.seq LIMIT 1))"
    " FROM queues q LEFT JOIN partitions p ON p.queue_pk = q.pk"
    " LEFT JOIN cursors c ON c.partition_pk = p.pk AND c.group_name = ?2"
    " WHERE q.name = ?1 GROUP BY q.pk";

inline constexpr const char* kPing = "SELECT 1";

// ==== transactions: #4.1 transactions, #4.3 per-message delay ====
// ==== end transactions ====

// ==== consumer groups: #4.4 consumer groups, seek ====
// ==== end consumer groups ====

// ==== lifecycle: #4.5 maxSize, retention, dedup window, background jobs ====
// A queue's size for maxSize: messages the default group has not consumed and retention has
// not removed.  ?1 queue_pk
inline constexpr const char* kLcQueueSize =
    "SELECT COALESCE(SUM(p.last_seq - MAX(COALESCE(c.position, 0), p.removed_through)), 0)"
    " FROM partitions p LEFT JOIN cursors c"
    "  ON c.partition_pk = p.pk AND c.group_name = '__QUEUE_MODE__'"
    " WHERE p.queue_pk = ?1";

// ?1 partition_pk  ?2 transaction id  ?3 oldest created_at still inside the window
inline constexpr const char* kLcDedupLookup =
    "SELECT message_id FROM dedup_window"
    " WHERE partition_pk = ?1 AND transaction_id = ?2 AND created_at >= ?3";
inline constexpr const char* kLcDedupAny = "SELECT EXISTS (SELECT 1 FROM dedup_window)";

// A bounded scan from just past a position.  ?1 partition_pk  ?2 after seq  ?3 limit
inline constexpr const char* kLcScanFrom =
    "SELECT seq, created_at FROM messages WHERE partition_pk = ?1 AND seq > ?2"
    " ORDER BY seq LIMIT ?3";

// Messages of (partition, group) in (?3, ?4] not completed, with their failure count.
inline constexpr const char* kLcWaiting =
    "SELECT m.seq, COALESCE(f.count, 0) FROM messages m"
    " LEFT JOIN failures f ON f.partition_pk = m.partition_pk AND f.group_name = ?2"
    "  AND f.seq = m.seq"
    " WHERE m.partition_pk = ?1 AND m.seq > ?3 AND m.seq <= ?4"
    "  AND NOT EXISTS (SELECT 1 FROM completions k WHERE k.partition_pk = m.partition_pk"
    "                  AND k.group_name = ?2 AND k.seq = m.seq)"
    " ORDER BY m.seq";

// Before removing (partition, seq <= ?2): producer-chosen transaction ids created at or after
// ?3 (inside the queue's dedup window) are kept.
inline constexpr const char* kLcKeepDedup =
    "INSERT INTO dedup_window (partition_pk, transaction_id, message_id, created_at)"
    " SELECT partition_pk, transaction_id, id, created_at FROM messages"
    " WHERE partition_pk = ?1 AND seq <= ?2 AND transaction_id <> id AND created_at >= ?3"
    " ON CONFLICT (partition_pk, transaction_id)"
    " DO UPDATE SET message_id = excluded.message_id, created_at = excluded.created_at";
inline constexpr const char* kLcDeletePrefix =
    "DELETE FROM messages WHERE partition_pk = ?1 AND seq <= ?2";
inline constexpr const char* kLcCursorsBehind =
    "SELECT group_name FROM cursors WHERE partition_pk = ?1 AND position < ?2"
    " ORDER BY group_name";
inline constexpr const char* kLcSetRemovedThrough =
    "UPDATE partitions SET removed_through = MAX(removed_through, ?2) WHERE pk = ?1";

// Rule 1 (retentionSeconds): partitions whose oldest message is past the cutoff.  ?1 now
// Columns: partition_pk, dedup_window_s, cutoff.
inline constexpr const char* kLcRetentionCandidates =
    "SELECT p.pk, q.dedup_window_s, ?1 - q.retention_s * 1000000"
    " FROM queues q JOIN partitions p ON p.queue_pk = q.pk"
    " WHERE q.retention_s > 0"
    "  AND (SELECT m.created_at FROM messages m WHERE m.partition_pk = p.pk"
    "       ORDER BY m.seq LIMIT 1) < ?1 - q.retention_s * 1000000"
    " ORDER BY p.pk";

// Rule 2 (completedRetentionSeconds), as ordo.run_retention.  ?1 now
// Columns: partition_pk, dedup_window_s, cutoff, done_through (lowest position).
inline constexpr const char* kLcCompletedCandidates =
    "SELECT pk, dedup_window_s, cutoff, done_through FROM ("
    " SELECT p.pk AS pk, q.dedup_window_s AS dedup_window_s,"
    "  ?1 - q.completed_retention_s * 1000000 AS cutoff,"
    "  (SELECT MIN(c.position) FROM cursors c WHERE c.partition_pk = p.pk) AS done_through,"
    "  p.removed_through AS removed_through"
    " FROM queues q JOIN partitions p ON p.queue_pk = q.pk"
    " WHERE q.completed_retention_s > 0"
    "  AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.queue_pk = q.pk"
    "   AND NOT EXISTS (SELECT 1 FROM cursors c WHERE c.partition_pk = p.pk"
    "                   AND c.group_name = s.group_name))"
    "  AND NOT (EXISTS (SELECT 1 FROM partitions p2 JOIN cursors c2"
    "                   ON c2.partition_pk = p2.pk AND c2.group_name = '__QUEUE_MODE__'"
    "                   WHERE p2.queue_pk = q.pk)"
    "           AND NOT EXISTS (SELECT 1 FROM cursors c WHERE c.partition_pk = p.pk"
    "                           AND c.group_name = '__QUEUE_MODE__'))"
    "  AND (SELECT m.created_at FROM messages m WHERE m.partition_pk = p.pk"
    "       ORDER BY m.seq LIMIT 1) < ?1 - q.completed_retention_s * 1000000"
    ") WHERE done_through > removed_through ORDER BY pk";

// Rule 3 (maxWaitTimeSeconds): cursors without a live lease whose first waiting message is past
// the cutoff.  ?1 now.  Columns: partition_pk, group, queue_pk, queue name, cutoff, position.
inline constexpr const char* kLcExpiryCandidates =
    "SELECT c.partition_pk, c.group_name, q.pk, q.name, ?1 - q.max_wait_time_s * 1000000,"
    "  c.position"
    " FROM queues q JOIN partitions p ON p.queue_pk = q.pk"
    " JOIN cursors c ON c.partition_pk = p.pk"
    " WHERE q.max_wait_time_s > 0 AND p.last_seq > c.position"
    "  AND (c.lease_id IS NULL OR c.lease_expires_at <= ?1)"
    "  AND (SELECT m.created_at FROM messages m WHERE m.partition_pk = p.pk"
    "       AND m.seq > c.position ORDER BY m.seq LIMIT 1) < ?1 - q.max_wait_time_s * 1000000"
    " ORDER BY c.partition_pk, c.group_name";

// Rule 4: dedup window entries past their queue's window (or of deleted queues).
//   ?1 now  ?2 limit
inline constexpr const char* kLcPruneDedup =
    "DELETE FROM dedup_window WHERE (partition_pk, transaction_id) IN ("
    " SELECT d.partition_pk, d.transaction_id FROM dedup_window d"
    " LEFT JOIN partitions p ON p.pk = d.partition_pk"
    " LEFT JOIN queues q ON q.pk = p.queue_pk"
    " WHERE d.created_at < ?1 - COALESCE((SELECT MIN(dedup_window_s) FROM queues), 0) * 1000000"
    "  AND (q.pk IS NULL OR d.created_at < ?1 - q.dedup_window_s * 1000000)"
    " LIMIT ?2)";
// Per-message delay: ?1 partition_pk  ?2 seq  ?3 visible_at
inline constexpr const char* kLcSetVisibleAt =
    "UPDATE messages SET visible_at = ?3 WHERE partition_pk = ?1 AND seq = ?2";
// ==== end lifecycle ====

// ==== dlq and browsing: #4.6 dead-letter queue, #4.8 message browsing ====
// ==== end dlq and browsing ====

// ==== status: #4.8 overview, namespaces, tasks, status, analytics ====
// ==== end status ====
}  // namespace ordo::db::sqlite::sql
