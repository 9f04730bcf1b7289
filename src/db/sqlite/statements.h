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

// Namespace/task pop: ?1 namespace, ?2 task (NULL: any); higher priority first.
inline constexpr const char* kSelectQueuesByLabel =
    "SELECT pk, id, name, namespace, task, created_at, lease_time_s, retry_limit, retry_delay_ms,"
    " retry_backoff, retry_delay_max_ms, delayed_processing_s, window_buffer_s, max_size,"
    " retention_s, completed_retention_s, max_wait_time_s, dedup_window_s, priority,"
    " encryption_enabled FROM queues WHERE (?1 IS NULL OR namespace = ?1)"
    " AND (?2 IS NULL OR task = ?2) ORDER BY priority DESC, name";

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
//   ?8..?23 up to 16 preferred partition names (NULL: unused slot), which come first
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
    ") WHERE oldest IS NOT NULL AND oldest <= ?6"
    " ORDER BY COALESCE(name IN (?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,"
    "  ?21, ?22, ?23), 0) DESC, oldest, pk LIMIT ?7";

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
    "       MIN(CASE WHEN p.last_seq > COALESCE(c.position, 0) THEN"
    "            (SELECT CASE WHEN m.visible_at > ?3 THEN m.visible_at END FROM messages m"
    "              WHERE m.partition_pk = p.pk AND m.seq > COALESCE(c.position, 0)"
    "              ORDER BY m.seq LIMIT 1) END)"
    " FROM queues q LEFT JOIN partitions p ON p.queue_pk = q.pk"
    " LEFT JOIN cursors c ON c.partition_pk = p.pk AND c.group_name = ?2"
    " WHERE q.name = ?1 GROUP BY q.pk";

inline constexpr const char* kPing = "SELECT 1";

// ---- consumer groups and seek ----
// Every known (queue, group) pair (a subscription or a cursor), one row per partition of the
// queue (NULL partition columns for a queue without partitions). ?1 group (NULL: all) ?2 now.
// Columns: queue, group, start_from, subscribed_at, partition id, partition name, last_seq,
// first_seq, position, completions past the position, created_at of the first message past the
// position, live lease id, its expiry. Bounded lookups per partition: the position of a partition
// the group has not met yet (start after its newest message: last_seq, no scan), MIN(seq), the
// first message after the position, the completion marks past it.
inline constexpr const char* kDescribeGroups =
    "WITH known(queue_pk, group_name) AS ("
    "  SELECT s.queue_pk, s.group_name FROM subscriptions s WHERE ?1 IS NULL OR s.group_name = ?1"
    "  UNION"
    "  SELECT p.queue_pk, c.group_name FROM cursors c JOIN partitions p ON p.pk = c.partition_pk"
    "   WHERE ?1 IS NULL OR c.group_name = ?1"
    "), placed AS ("
    "  SELECT q.name AS queue_name, k.group_name AS group_name, s.start_from AS start_from,"
    "    s.created_at AS subscribed_at, p.pk AS ppk, p.id AS pid, p.name AS pname,"
    "    COALESCE(p.last_seq, 0) AS last_seq,"
    "    COALESCE(c.position, CASE"
    "      WHEN COALESCE(s.start_from, 0) <= 0 OR p.pk IS NULL THEN 0"
    "      WHEN p.last_at < s.start_from THEN p.last_seq"
    "      ELSE (SELECT COALESCE(MAX(m.seq), 0) FROM messages m"
    "             WHERE m.partition_pk = p.pk AND m.created_at < s.start_from) END) AS position,"
    "    CASE WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > ?2 THEN c.lease_id END"
    "      AS lease_id,"
    "    CASE WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > ?2 THEN c.lease_expires_at"
    "      ELSE 0 END AS lease_expires_at"
    "  FROM known k JOIN queues q ON q.pk = k.queue_pk"
    "  LEFT JOIN partitions p ON p.queue_pk = k.queue_pk"
    "  LEFT JOIN cursors c ON c.partition_pk = p.pk AND c.group_name = k.group_name"
    "  LEFT JOIN subscriptions s ON s.queue_pk = k.queue_pk AND s.group_name = k.group_name"
    ")"
    " SELECT x.queue_name, x.group_name, x.start_from, x.subscribed_at, x.pid, x.pname,"
    "  x.last_seq,"
    "  COALESCE((SELECT MIN(m.seq) FROM messages m WHERE m.partition_pk = x.ppk), 0),"
    "  x.position,"
    "  (SELECT COUNT(*) FROM completions k WHERE k.partition_pk = x.ppk"
    "     AND k.group_name = x.group_name AND k.seq > x.position),"
    "  (SELECT m.created_at FROM messages m WHERE m.partition_pk = x.ppk AND m.seq > x.position"
    "     ORDER BY m.seq LIMIT 1),"
    "  x.lease_id, x.lease_expires_at"
    " FROM placed x ORDER BY x.queue_name, x.group_name, x.pname";

// Partitions of a queue, for a queue-wide seek.  ?1 queue_pk
inline constexpr const char* kQueuePartitionNames =
    "SELECT name FROM partitions WHERE queue_pk = ?1 ORDER BY pk";

// A seek restarts the group's reading of a partition: no completion mark or failure count of the
// old reading survives.  ?1 partition_pk ?2 group
inline constexpr const char* kDeleteGroupCompletions =
    "DELETE FROM completions WHERE partition_pk = ?1 AND group_name = ?2";
inline constexpr const char* kDeleteGroupFailures =
    "DELETE FROM failures WHERE partition_pk = ?1 AND group_name = ?2";

// Queues where a group is known.  ?1 group
inline constexpr const char* kGroupQueues =
    "SELECT pk, name FROM queues WHERE pk IN ("
    " SELECT queue_pk FROM subscriptions WHERE group_name = ?1"
    " UNION SELECT p.queue_pk FROM cursors c JOIN partitions p ON p.pk = c.partition_pk"
    "  WHERE c.group_name = ?1) ORDER BY name";

// The group's cursors on a queue, and how many hold a live lease.  ?1 queue_pk ?2 group ?3 now
inline constexpr const char* kGroupCursorCounts =
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > ?3"
    " THEN 1 ELSE 0 END), 0) FROM cursors c JOIN partitions p ON p.pk = c.partition_pk"
    " WHERE p.queue_pk = ?1 AND c.group_name = ?2";

// Deleting a group on a queue, one statement per table.  ?1 queue_pk ?2 group
inline constexpr const char* kDeleteGroupOnQueue[] = {
    "DELETE FROM cursors WHERE group_name = ?2"
    " AND partition_pk IN (SELECT pk FROM partitions WHERE queue_pk = ?1)",
    "DELETE FROM completions WHERE group_name = ?2"
    " AND partition_pk IN (SELECT pk FROM partitions WHERE queue_pk = ?1)",
    "DELETE FROM failures WHERE group_name = ?2"
    " AND partition_pk IN (SELECT pk FROM partitions WHERE queue_pk = ?1)",
    "DELETE FROM subscriptions WHERE queue_pk = ?1 AND group_name = ?2",
};

// ---- admission and retention ----
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
// 1 when no queue has a retention rule (RetentionReport::idle, with an empty dedup window).
inline constexpr const char* kLcNoRules =
    "SELECT NOT EXISTS (SELECT 1 FROM queues WHERE retention_s > 0"
    " OR completed_retention_s > 0 OR max_wait_time_s > 0)";

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

// ---- dead-letter queue and message browsing ----
// A page of dead letters in (failed_at, pk) order. Every filter is optional (NULL):
//   ?1 queue name  ?2 group  ?3 partition name  ?4 failed_at from  ?5 failed_at to (inclusive)
//   ?6 ?7 keyset: after (failed_at, pk)  ?8 limit
inline constexpr const char* kListDeadLetters =
    "SELECT d.pk, d.id, d.message_id, d.transaction_id, d.trace_id, p.id, q.name, p.name,"
    "  d.group_name, d.error, d.retry_count, d.payload, d.created_at, d.failed_at"
    " FROM dead_letters d JOIN partitions p ON p.pk = d.partition_pk"
    " JOIN queues q ON q.pk = d.queue_pk"
    " WHERE (?1 IS NULL OR q.name = ?1) AND (?2 IS NULL OR d.group_name = ?2)"
    "   AND (?3 IS NULL OR p.name = ?3) AND (?4 IS NULL OR d.failed_at >= ?4)"
    "   AND (?5 IS NULL OR d.failed_at <= ?5)"
    "   AND (?6 IS NULL OR d.failed_at > ?6 OR (d.failed_at = ?6 AND d.pk > ?7))"
    " ORDER BY d.failed_at, d.pk LIMIT ?8";

// The entry to requeue: ?1 entry id.
inline constexpr const char* kSelectDeadLetterForRequeue =
    "SELECT d.pk, p.id, d.group_name, d.trace_id, d.payload FROM dead_letters d"
    " JOIN partitions p ON p.pk = d.partition_pk WHERE d.id = ?1";

// Requeue: the copy at seq ?3 of partition ?1 is done for every group but ?2 (the one that
// dead-lettered it); a group standing just before it moves over it.
inline constexpr const char* kRequeueAdvanceOthers =
    "UPDATE cursors SET position = ?3"
    " WHERE partition_pk = ?1 AND group_name <> ?2 AND position = ?3 - 1";
inline constexpr const char* kRequeueMarkOthers =
    "INSERT OR IGNORE INTO completions (partition_pk, group_name, seq)"
    " SELECT partition_pk, group_name, ?3 FROM cursors"
    " WHERE partition_pk = ?1 AND group_name <> ?2 AND position < ?3";

inline constexpr const char* kDeleteDeadLetterByPk = "DELETE FROM dead_letters WHERE pk = ?1";
inline constexpr const char* kDeleteDeadLetterById = "DELETE FROM dead_letters WHERE id = ?1";

// Message deletion, partition ?1, seq ?2: a group standing just before it moves over it (its
// lease ends when that was the last message it covered); any other group that has not passed it
// gets a completion row, so the hole never holds a position back.
inline constexpr const char* kDeleteMessageAdvance =
    "UPDATE cursors SET position = ?2,"
    "  lease_id = CASE WHEN lease_last_seq <= ?2 THEN NULL ELSE lease_id END,"
    "  lease_expires_at = CASE WHEN lease_last_seq <= ?2 THEN 0 ELSE lease_expires_at END,"
    "  lease_last_seq = CASE WHEN lease_last_seq <= ?2 THEN 0 ELSE lease_last_seq END"
    " WHERE partition_pk = ?1 AND position = ?2 - 1";
inline constexpr const char* kDeleteMessageMark =
    "INSERT OR IGNORE INTO completions (partition_pk, group_name, seq)"
    " SELECT partition_pk, group_name, ?2 FROM cursors WHERE partition_pk = ?1 AND position < ?2";
inline constexpr const char* kDeleteMessageFailures =
    "DELETE FROM failures WHERE partition_pk = ?1 AND seq = ?2";
inline constexpr const char* kDeleteMessageRow =
    "DELETE FROM messages WHERE partition_pk = ?1 AND seq = ?2";

// A page of messages in (partition_pk, seq) order with their state for group ?3:
// 0 pending, 1 processing (under a live lease), 2 completed, 3 dead-lettered.
//   ?1 queue name  ?2 partition name  ?3 group  ?4 now  ?5 state  ?6 created_at from
//   ?7 created_at to (inclusive)  ?8 ?9 keyset: after (partition_pk, seq)  ?10 limit
inline constexpr const char* kListMessages =
    "SELECT ppk, seq, id, transaction_id, trace_id, payload, created_at, pid, pname, qname,"
    "  retry_count, state FROM ("
    " SELECT m.partition_pk AS ppk, m.seq AS seq, m.id AS id, m.transaction_id AS transaction_id,"
    "  m.trace_id AS trace_id, m.payload AS payload, m.created_at AS created_at, p.id AS pid,"
    "  p.name AS pname, q.name AS qname,"
    "  COALESCE((SELECT f.count FROM failures f WHERE f.partition_pk = m.partition_pk"
    "            AND f.group_name = ?3 AND f.seq = m.seq), 0) AS retry_count,"
    "  CASE"
    "   WHEN EXISTS (SELECT 1 FROM dead_letters d WHERE d.partition_pk = m.partition_pk"
    "                AND d.group_name = ?3 AND d.seq = m.seq) THEN 3"
    "   WHEN m.seq <= COALESCE(c.position, 0) OR EXISTS (SELECT 1 FROM completions k"
    "        WHERE k.partition_pk = m.partition_pk AND k.group_name = ?3 AND k.seq = m.seq)"
    "     THEN 2"
    "   WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > ?4 AND m.seq <= c.lease_last_seq"
    "     THEN 1"
    "   ELSE 0 END AS state"
    " FROM messages m JOIN partitions p ON p.pk = m.partition_pk"
    " JOIN queues q ON q.pk = p.queue_pk"
    " LEFT JOIN cursors c ON c.partition_pk = m.partition_pk AND c.group_name = ?3"
    " WHERE (?1 IS NULL OR q.name = ?1) AND (?2 IS NULL OR p.name = ?2)"
    "   AND (?6 IS NULL OR m.created_at >= ?6) AND (?7 IS NULL OR m.created_at <= ?7)"
    "   AND (?8 IS NULL OR m.partition_pk > ?8 OR (m.partition_pk = ?8 AND m.seq > ?9))"
    ") WHERE ?5 IS NULL OR state = ?5 ORDER BY ppk, seq LIMIT ?10";

// One message with its queue: the queue columns (as kSelectQueueByName), then seq, id,
// transaction_id, trace_id, payload, created_at, partition pk, partition name.
//   ?1 partition id  ?2 transaction id
inline constexpr const char* kSelectMessageDetail =
    "SELECT q.pk, q.id, q.name, q.namespace, q.task, q.created_at, q.lease_time_s, q.retry_limit,"
    " q.retry_delay_ms, q.retry_backoff, q.retry_delay_max_ms, q.delayed_processing_s,"
    " q.window_buffer_s, q.max_size, q.retention_s, q.completed_retention_s, q.max_wait_time_s,"
    " q.dedup_window_s, q.priority, q.encryption_enabled,"
    " m.seq, m.id, m.transaction_id, m.trace_id, m.payload, m.created_at, p.pk, p.name"
    " FROM partitions p JOIN messages m ON m.partition_pk = p.pk"
    " JOIN queues q ON q.pk = p.queue_pk WHERE p.id = ?1 AND m.transaction_id = ?2";

// Every group known on queue ?1 (a cursor in any partition, a subscription, or a dead letter of
// this message) and its state for message (partition ?2, seq ?3) at ?4 = now:
// name, done, leased, failures, dead-lettered.
inline constexpr const char* kMessageGroupStates =
    "SELECT g.name,"
    "  CASE WHEN c.position >= ?3 OR EXISTS (SELECT 1 FROM completions k"
    "       WHERE k.partition_pk = ?2 AND k.group_name = g.name AND k.seq = ?3) THEN 1 ELSE 0 END,"
    "  CASE WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > ?4 AND c.position < ?3"
    "        AND c.lease_last_seq >= ?3 AND NOT EXISTS (SELECT 1 FROM completions k"
    "       WHERE k.partition_pk = ?2 AND k.group_name = g.name AND k.seq = ?3) THEN 1 ELSE 0 END,"
    "  COALESCE((SELECT f.count FROM failures f WHERE f.partition_pk = ?2"
    "            AND f.group_name = g.name AND f.seq = ?3),"
    "           (SELECT MAX(d.retry_count) FROM dead_letters d WHERE d.partition_pk = ?2"
    "            AND d.group_name = g.name AND d.seq = ?3), 0),"
    "  EXISTS (SELECT 1 FROM dead_letters d WHERE d.partition_pk = ?2 AND d.group_name = g.name"
    "          AND d.seq = ?3)"
    " FROM (SELECT c2.group_name AS name FROM cursors c2 JOIN partitions p2"
    "         ON p2.pk = c2.partition_pk WHERE p2.queue_pk = ?1"
    "       UNION SELECT s.group_name FROM subscriptions s WHERE s.queue_pk = ?1"
    "       UNION SELECT d.group_name FROM dead_letters d WHERE d.partition_pk = ?2"
    "         AND d.seq = ?3) g"
    " LEFT JOIN cursors c ON c.partition_pk = ?2 AND c.group_name = g.name"
    " ORDER BY g.name";

// ---- overview, status and analytics ----
// Adds one (queue, minute) cell to the flow counters (writer).
//   ?1 queue  ?2 minute  ?3 pushed  ?4 duplicates  ?5 delivered  ?6 completed  ?7 failed
//   ?8 dead_lettered
inline constexpr const char* kFlushStats =
    "INSERT INTO queue_stats (queue, minute, pushed, duplicates, delivered, completed, failed,"
    "  dead_lettered) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    " ON CONFLICT (queue, minute) DO UPDATE SET pushed = pushed + excluded.pushed,"
    "  duplicates = duplicates + excluded.duplicates, delivered = delivered + excluded.delivered,"
    "  completed = completed + excluded.completed, failed = failed + excluded.failed,"
    "  dead_lettered = dead_lettered + excluded.dead_lettered";

// Removes flow counters older than the retention (writer).  ?1 oldest minute kept
inline constexpr const char* kDeleteOldStats = "DELETE FROM queue_stats WHERE minute < ?1";

// Flow counters summed per bucket (reader).
//   ?1 from (inclusive)  ?2 to (exclusive)  ?3 bucket width (0: one bucket, reported as 0)
//   ?4 queue (NULL: every queue)  ?5 1: one row per queue and bucket, 0: queue reported as ''
inline constexpr const char* kReadStats =
    "SELECT CASE WHEN ?5 <> 0 THEN queue ELSE '' END AS q,"
    "  CASE WHEN ?3 > 0 THEN minute - (minute % ?3) ELSE 0 END AS b,"
    "  SUM(pushed), SUM(duplicates), SUM(delivered), SUM(completed), SUM(failed),"
    "  SUM(dead_lettered)"
    " FROM queue_stats WHERE minute >= ?1 AND minute < ?2 AND (?4 IS NULL OR queue = ?4)"
    " GROUP BY q, b ORDER BY b, q";

// Every queue (or one) with its partitions' cheap tallies for a group, for the overview
// (reader). No count over messages: the oldest retained seq is one index probe.
//   ?1 group  ?2 now  ?3 queue name (NULL: all)
// Columns: the 20 queue columns of kQueueColumns, then (NULL for a queue without partitions)
// 20 partition id, 21 partition name, 22 last_seq, 23 oldest retained seq (0: none),
// 24 position, 25 delivered under the live lease, 26 completions past the position,
// 27 failures, 28 dead letters.
inline constexpr const char* kOverview =
    "SELECT q.pk, q.id, q.name, q.namespace, q.task, q.created_at, q.lease_time_s,"
    " q.retry_limit, q.retry_delay_ms, q.retry_backoff, q.retry_delay_max_ms,"
    " q.delayed_processing_s, q.window_buffer_s, q.max_size, q.retention_s,"
    " q.completed_retention_s, q.max_wait_time_s, q.dedup_window_s, q.priority,"
    " q.encryption_enabled,"
    " p.id, p.name, p.last_seq,"
    " COALESCE((SELECT m.seq FROM messages m WHERE m.partition_pk = p.pk ORDER BY m.seq LIMIT 1),"
    "   0),"
    " COALESCE(c.position, 0),"
    " CASE WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > ?2"
    "   THEN c.lease_last_seq - c.position ELSE 0 END,"
    " (SELECT COUNT(*) FROM completions k WHERE k.partition_pk = p.pk AND k.group_name = ?1),"
    " (SELECT COUNT(*) FROM failures f WHERE f.partition_pk = p.pk AND f.group_name = ?1),"
    " (SELECT COUNT(*) FROM dead_letters d WHERE d.partition_pk = p.pk AND d.group_name = ?1)"
    " FROM queues q LEFT JOIN partitions p ON p.queue_pk = q.pk"
    " LEFT JOIN cursors c ON c.partition_pk = p.pk AND c.group_name = ?1"
    " WHERE ?3 IS NULL OR q.name = ?3"
    " ORDER BY q.name, p.name";
}  // namespace ordo::db::sqlite::sql
