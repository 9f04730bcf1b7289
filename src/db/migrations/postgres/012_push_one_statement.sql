-- Ordo schema, PostgreSQL engine, version 12: a push into existing partitions of queues without
-- maxSize in one statement (issue #3, the push-1 and e2e figures).
--
-- Why: version 7 looks up and locks the partition rows in one statement (SELECT ... FOR
-- UPDATE, in pk order) so that the next, which reads each partition's last seq and the
-- duplicates, has a snapshot taken after the lock. With push-1's 25 items a statement, the lock
-- statement read 287 buffers and wrote a WAL record per partition, 0.16 ms of the function's
-- 0.87 ms, and its rows are then updated again (pg_stat_statements; docs/benchmarks.md).
--
-- ordo.push: arguments and result as version 7. When every item's queue and partition exist
-- and none of the queues has a maxSize, one statement looks the partitions up, finds the
-- duplicates, takes the seqs by updating each partition row (UPDATE ... RETURNING: it waits
-- for a concurrent push of the partition and then reads that push's last seq, as the lock
-- did; pushes to one partition still commit in seq order) and stores the messages. A
-- duplicate is still found by its stored message or its dedup-window entry; the one case the
-- statement's snapshot can miss is a push of the same transaction id to the same partition
-- that commits while this one waits for the partition row: storing it then violates
-- messages_by_txid. That rolls back to the block's start, and version 7's function, kept as
-- ordo._push_general, does the push again and answers "duplicate". The statement's other reads
-- are not affected by the wait. A partition deleted while the statement ran (ordo.delete_queue)
-- leaves items unstored: the block is rolled back the same way. Version 7 also serves every
-- other push (missing queues or partitions, maxSize admission) and the arrays' checks.

ALTER FUNCTION ordo.push(text[], text[], text[], text[], text[], text[], bigint, int[], bigint[])
  RENAME TO _push_general;

CREATE FUNCTION ordo.push(p_queues text[], p_partitions text[], p_ids text[],
                          p_txids text[], p_trace_ids text[], p_payloads text[],
                          p_now bigint, p_calls int[], p_delays bigint[])
RETURNS TABLE(idx int, status smallint, message_id text, transaction_id text,
              partition_id text)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  v_n int := coalesce(cardinality(p_queues), 0);
  v_rows bigint := 0;
BEGIN
  IF v_n > 0 AND array_lower(p_queues, 1) = 1
     AND array_lower(p_partitions, 1) = 1 AND cardinality(p_partitions) = v_n
     AND array_lower(p_ids, 1) = 1 AND cardinality(p_ids) = v_n
     AND array_lower(p_txids, 1) = 1 AND cardinality(p_txids) = v_n
     AND array_lower(p_payloads, 1) = 1 AND cardinality(p_payloads) = v_n
     AND (p_trace_ids IS NULL OR (array_lower(p_trace_ids, 1) = 1
                                  AND cardinality(p_trace_ids) = v_n))
     AND (p_delays IS NULL OR (array_lower(p_delays, 1) = 1
                               AND cardinality(p_delays) = v_n)) THEN
    BEGIN
      RETURN QUERY
      -- Each item's partition, an index probe per item (see 007's header); no row when a
      -- queue or partition is missing or a queue has a maxSize: version 7 then does it all.
      WITH found AS MATERIALIZED (
        SELECT u.i::int AS i, k.pk AS ppk, k.id AS pid, k.max_size, u.txid, u.mid, u.trace,
               u.body, u.delay
          FROM unnest(p_queues, p_partitions, p_txids, p_ids, p_trace_ids, p_payloads,
                      p_delays)
               WITH ORDINALITY AS u(qn, pn, txid, mid, trace, body, delay, i)
          LEFT JOIN LATERAL (
            SELECT p.pk, p.id, q.max_size
              FROM ordo.queues q
              JOIN ordo.partitions p ON p.queue_pk = q.pk AND p.name = u.pn COLLATE "C"
             WHERE q.name = u.qn COLLATE "C"
             LIMIT 1) k ON true
      ),
      items AS (
        SELECT f.* FROM found f
         WHERE NOT EXISTS (SELECT 1 FROM found g WHERE g.ppk IS NULL OR g.max_size > 0)
      ),
      -- Duplicates: as version 7 (stored message, dedup-window entry, or an earlier item of
      -- this statement with the same partition and transaction id).
      marked AS (
        SELECT it.i, it.ppk, it.pid, it.txid, it.mid, it.trace, it.body, it.delay,
               coalesce(e.id, dw.message_id) AS old_id,
               row_number() OVER w AS occ,
               first_value(it.mid) OVER w AS first_mid
          FROM items it
          LEFT JOIN LATERAL (SELECT e.id FROM ordo.messages e
                              WHERE e.partition_pk = it.ppk
                                AND e.transaction_id = it.txid COLLATE "C"
                              ORDER BY e.transaction_id LIMIT 1) e ON true
          LEFT JOIN ordo.dedup_window dw
                 ON dw.partition_pk = it.ppk AND dw.transaction_id = it.txid
                AND dw.created_at >= p_now - 1000000 * (
                      SELECT q.dedup_window_s FROM ordo.partitions p
                        JOIN ordo.queues q ON q.pk = p.queue_pk WHERE p.pk = it.ppk)
        WINDOW w AS (PARTITION BY it.ppk, it.txid ORDER BY it.i)
      ),
      fresh AS (
        SELECT mk.i, mk.ppk, mk.txid, mk.mid, mk.trace, mk.body, mk.delay,
               row_number() OVER (PARTITION BY mk.ppk ORDER BY mk.i) AS rn
          FROM marked mk
         WHERE mk.old_id IS NULL AND mk.occ = 1
      ),
      -- The seqs: each partition row updated once, in pk order, returning its new last seq.
      taken AS (
        UPDATE ordo.partitions p
           SET last_seq = p.last_seq + c.n, last_at = greatest(p_now, p.last_at)
          FROM (SELECT f.ppk, count(*) AS n FROM fresh f GROUP BY f.ppk ORDER BY f.ppk) c
         WHERE p.pk = c.ppk
        RETURNING p.pk, p.last_seq - c.n AS base, p.last_at AS at
      ),
      stored AS (
        INSERT INTO ordo.messages (partition_pk, seq, created_at, id, transaction_id, trace_id,
                                   payload, visible_at)
        SELECT f.ppk, t.base + f.rn, t.at, f.mid, f.txid, f.trace, f.body,
               CASE WHEN coalesce(f.delay, 0) > 0 THEN t.at + f.delay * 1000 ELSE 0 END
          FROM fresh f JOIN taken t ON t.pk = f.ppk
         ORDER BY f.ppk, f.rn
        RETURNING 1
      ),
      -- Read before any row is answered, so that a violation raises before the first one. A
      -- partition deleted meanwhile (ordo.delete_queue) leaves messages unstored: no rows.
      done AS (SELECT (SELECT count(*) FROM stored) = (SELECT count(*) FROM fresh) AS ok)
      SELECT mk.i,
             CASE WHEN mk.old_id IS NULL AND mk.occ = 1 THEN 0 ELSE 1 END::smallint,
             CASE WHEN mk.old_id IS NULL AND mk.occ = 1 THEN mk.mid::text
                  ELSE coalesce(mk.old_id, mk.first_mid)::text END,
             mk.txid::text, mk.pid::text
        FROM marked mk, done
       WHERE done.ok
       ORDER BY mk.i;
      GET DIAGNOSTICS v_rows = ROW_COUNT;
      IF v_rows = 0 THEN  -- undo what the statement may have written
        RAISE EXCEPTION USING ERRCODE = 'OR100';
      END IF;
    EXCEPTION WHEN unique_violation OR SQLSTATE 'OR100' THEN
      v_rows := 0;
    END;
    IF v_rows > 0 THEN
      RETURN;
    END IF;
  END IF;
  RETURN QUERY SELECT * FROM ordo._push_general(p_queues, p_partitions, p_ids, p_txids,
                                                p_trace_ids, p_payloads, p_now, p_calls,
                                                p_delays);
END;
$$;
