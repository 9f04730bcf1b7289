-- Ordo schema, PostgreSQL engine, version 12: a push into existing partitions of queues without
-- maxSize in one statement (issue #3, the push-1 and e2e figures).
--
-- Why: version 7 looks up and locks the partition rows in one statement (SELECT ... FOR
-- UPDATE, in pk order) so that the next, which reads each partition's last seq and the
-- duplicates, has a snapshot taken after the lock. With push-1's 25 items a statement, the lock
-- statement read 287 buffers and wrote a WAL record per partition, 0.16 ms of the function's
-- 0.87 ms, and its rows are then updated again (pg_stat_statements; docs/benchmarks.md).
--
-- ordo.push: arguments and result as version 7. When a statement carries at most 64 items,
-- every item's queue and partition exist and none of the queues has a maxSize, one statement
-- looks the partitions up, finds the duplicates, takes the seqs by updating each partition row
-- (UPDATE ... RETURNING: it waits for a concurrent push of the partition and then reads that
-- push's last seq, as the lock did; pushes to one partition still commit in seq order) and
-- stores the messages. A duplicate is still found by its stored message or its dedup-window
-- entry; the one case the statement's snapshot can miss is a push of the same transaction id to
-- the same partition that commits while this one waits for the partition row: storing it then
-- violates messages_by_txid. That rolls back to the block's start, and version 7's function,
-- kept as ordo._push_general, does the push again and answers "duplicate". The statement's
-- other reads are not affected by the wait. A partition deleted while the statement ran
-- (ordo.delete_queue) leaves items unstored: the block is rolled back the same way.
--
-- Version 7 also serves every other push (missing queues or partitions, maxSize admission,
-- the arrays' checks) and bigger statements, where its cost per item is the lower one: 100
-- items 3.1-3.9 ms against 3.3-5.0 ms, push-100's ~2,400 items 31 against 35 ms. One item:
-- 0.24-0.26 ms against 0.31-0.34 ms; 25 items: 0.97-1.06 ms against 1.39-1.52 ms (pgbench,
-- one connection, alternating; docs/decisions.md).

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
  IF v_n > 0 AND v_n <= 64 AND array_lower(p_queues, 1) = 1
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
      -- Decided once for the statement (an InitPlan; a NOT EXISTS here became an anti-join of
      -- the items with themselves: quadratic, 44 ms instead of 33 for ~2,500 items).
      items AS (
        SELECT f.* FROM found f
         WHERE (SELECT bool_and(g.ppk IS NOT NULL AND g.max_size = 0) FROM found g)
      ),
      -- Duplicates: as version 7 (stored message, dedup-window entry, or an earlier item of
      -- this statement with the same partition and transaction id); the dedup window is
      -- probed per item too (version 7's join could hash the whole table).
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
          LEFT JOIN LATERAL (
                 SELECT dw.message_id FROM ordo.dedup_window dw
                  WHERE dw.partition_pk = it.ppk AND dw.transaction_id = it.txid COLLATE "C"
                    AND dw.created_at >= p_now - 1000000 * (
                          SELECT q.dedup_window_s FROM ordo.partitions p
                            JOIN ordo.queues q ON q.pk = p.queue_pk WHERE p.pk = it.ppk)
                  LIMIT 1) dw ON true
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
      -- Each item gets its partition's base seq by a window over the items and the updated
      -- rows together, not by a join: a join of two CTEs has no estimates and became a nested
      -- loop (23 ms of 57 for ~2,400 items over 100 partitions).
      numbered AS (
        SELECT x.ppk, x.rn, x.mid, x.txid, x.trace, x.body, x.delay,
               max(x.base) OVER (PARTITION BY x.ppk) AS base,
               max(x.at) OVER (PARTITION BY x.ppk) AS at
          FROM (SELECT f.ppk, f.rn, f.mid, f.txid, f.trace, f.body, f.delay,
                       NULL::bigint AS base, NULL::bigint AS at
                  FROM fresh f
                UNION ALL
                SELECT t.pk, 0, NULL::text, NULL::text, NULL::text, NULL::text, NULL::bigint,
                       t.base, t.at
                  FROM taken t) x
      ),
      stored AS (
        INSERT INTO ordo.messages (partition_pk, seq, created_at, id, transaction_id, trace_id,
                                   payload, visible_at)
        SELECT n.ppk, n.base + n.rn, n.at, n.mid, n.txid, n.trace, n.body,
               CASE WHEN coalesce(n.delay, 0) > 0 THEN n.at + n.delay * 1000 ELSE 0 END
          FROM numbered n
         WHERE n.rn > 0 AND n.base IS NOT NULL
         ORDER BY n.ppk, n.rn
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
