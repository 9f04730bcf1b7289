-- Ordo schema, PostgreSQL engine, version 11: the ack of one lease's messages in two statements
-- (issue #3, the e2e figure).
--
-- Why: at 1,000 msg/s a consumer's ack names the head of one lease's batch, usually a single
-- message. Version 8's fast path serves any number of cursors with four statements, one of
-- them a window-and-aggregate query; pg_stat_statements put the four at 0.13 ms of the ack's
-- 0.35 ms, and perf the rest mostly in starting their executors (ExecInitNode: 16% of all
-- PostgreSQL CPU in an e2e run; docs/benchmarks.md).
--
-- ordo.ack: arguments and result as version 8. When every item names the same partition, group
-- and lease and every status is 0 (completed), the new path:
--   1. locks the cursor and, in the same statement, reads the acked messages' seqs (a probe of
--      messages_by_txid each) and whether completions are pending past the position. The cursor
--      columns are those of the locked row version (READ COMMITTED re-reads a row updated while
--      we waited for it). The other reads may predate the lock, and are safe for it: messages
--      are append-only and the acked ones were delivered before the ack was sent; completions
--      past the position are written only under the live lease, whose holder the check below
--      requires.
--   2. when the items are exactly the next k messages after the position under the live lease
--      (version 8's rule), moves the position, ends the lease when the last leased message is
--      acked, clears their failure counts and answers, in one statement with a fresh snapshot
--      (so more_waiting reads the partition's current last seq).
-- Anything else (several cursors, another status, a stale or out-of-order ack, an unknown
-- message) goes to version 8's function, kept as ordo._ack_cursors, before anything is written.

ALTER FUNCTION ordo.ack(text[], text[], text[], smallint[], text[], text[], bigint)
  RENAME TO _ack_cursors;

CREATE FUNCTION ordo.ack(p_txids text[], p_partition_ids text[], p_lease_ids text[],
                         p_statuses smallint[], p_groups text[], p_errors text[], p_now bigint)
RETURNS TABLE(idx int, success boolean, error text, queue text, partition text,
              lease_released boolean, dlq boolean, more_waiting boolean)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  v_n int := coalesce(cardinality(p_txids), 0);
  v_group text := coalesce(p_groups[1], '__QUEUE_MODE__');
  v_ppk bigint;
  v_pos bigint;
  v_lls bigint;
  v_live boolean;
  v_lo bigint;
  v_hi bigint;
  v_cnt bigint;
  v_pending boolean;
  v_rel boolean;
BEGIN
  IF v_n > 0 AND array_lower(p_txids, 1) = 1
     AND array_lower(p_partition_ids, 1) = 1 AND cardinality(p_partition_ids) = v_n
     AND array_lower(p_lease_ids, 1) = 1 AND cardinality(p_lease_ids) = v_n
     AND array_lower(p_statuses, 1) = 1 AND cardinality(p_statuses) = v_n
     AND (p_groups IS NULL OR (array_lower(p_groups, 1) = 1 AND cardinality(p_groups) = v_n
                               AND cardinality(array_remove(p_groups, p_groups[1])) = 0))
     AND p_partition_ids[1] IS NOT NULL
     AND cardinality(array_remove(p_partition_ids, p_partition_ids[1])) = 0
     AND p_lease_ids[1] IS NOT NULL
     AND cardinality(array_remove(p_lease_ids, p_lease_ids[1])) = 0
     AND cardinality(array_remove(p_statuses, 0::smallint)) = 0 THEN
    WITH c AS MATERIALIZED (
      SELECT c.partition_pk, c.position, c.lease_last_seq,
             coalesce(c.lease_id = p_lease_ids[1] COLLATE "C" AND c.lease_expires_at > p_now,
                      false) AS live
        FROM ordo.cursors c
       WHERE c.partition_pk = (SELECT p.pk FROM ordo.partitions p
                                WHERE p.id = p_partition_ids[1] COLLATE "C" LIMIT 1)
         AND c.group_name = v_group COLLATE "C"
         FOR UPDATE
    )
    SELECT c.partition_pk, c.position, c.lease_last_seq, c.live, m.lo, m.hi, m.cnt,
           EXISTS (SELECT 1 FROM ordo.completions k
                    WHERE k.partition_pk = c.partition_pk AND k.group_name = v_group COLLATE "C"
                      AND k.seq > c.position)
      INTO v_ppk, v_pos, v_lls, v_live, v_lo, v_hi, v_cnt, v_pending
      FROM c
      -- One probe of messages_by_txid per item whatever the plan cache thinks of the table's
      -- size (see 007's header). A repeated item makes the range shorter than the count.
      CROSS JOIN LATERAL (
        SELECT min(s.seq) AS lo, max(s.seq) AS hi, count(s.seq) AS cnt
          FROM unnest(p_txids) AS t(txid)
          CROSS JOIN LATERAL (SELECT m.seq FROM ordo.messages m
                               WHERE m.partition_pk = c.partition_pk
                                 AND m.transaction_id = t.txid COLLATE "C"
                               ORDER BY m.transaction_id LIMIT 1) s) m;

    IF FOUND AND v_live AND NOT v_pending AND v_cnt = v_n AND v_lo = v_pos + 1
       AND v_hi - v_lo + 1 = v_cnt AND v_hi <= v_lls THEN
      v_rel := v_hi >= v_lls;
      RETURN QUERY
        WITH cleared AS (
          DELETE FROM ordo.failures f
           WHERE f.partition_pk = v_ppk AND f.group_name = v_group COLLATE "C"
             AND f.seq > v_pos AND f.seq <= v_hi
        ),
        moved AS (
          UPDATE ordo.cursors c
             SET position = v_hi,
                 lease_id = CASE WHEN v_rel THEN NULL ELSE c.lease_id END,
                 lease_expires_at = CASE WHEN v_rel THEN 0 ELSE c.lease_expires_at END,
                 lease_last_seq = CASE WHEN v_rel THEN 0 ELSE c.lease_last_seq END
           WHERE c.partition_pk = v_ppk AND c.group_name = v_group COLLATE "C"
        )
        SELECT i.i, true, NULL::text, q.name::text, p.name::text, i.i = v_n AND v_rel, false,
               i.i = v_n AND v_rel AND p.last_seq > v_hi
          FROM ordo.partitions p
          JOIN ordo.queues q ON q.pk = p.queue_pk
          CROSS JOIN generate_series(1, v_n) AS i(i)
         WHERE p.pk = v_ppk
         ORDER BY i.i;
      RETURN;
    END IF;
  END IF;
  RETURN QUERY SELECT * FROM ordo._ack_cursors(p_txids, p_partition_ids, p_lease_ids, p_statuses,
                                              p_groups, p_errors, p_now);
END;
$$;
