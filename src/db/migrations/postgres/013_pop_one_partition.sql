-- Ordo schema, PostgreSQL engine, version 13: the pop of the one partition the broker names, in
-- one statement (issue #3, the e2e figure).
--
-- Why: most pops under load are made by a long poll that a push woke for one partition; the
-- broker then names that partition alone (p_prefer, p_prefer_only: src/broker/broker.cc,
-- Broker::Choose). Version 9 served it with its general loop: a cursor over the candidate
-- query (open, two fetches, close), a statement that locks the cursor row and re-checks it, and
-- the batch statement. The pop was the costliest call per message in an e2e run (0.25-0.43 ms,
-- of which its statements' own execution is ~0.10 ms; the rest is starting an executor for each
-- of them: docs/benchmarks.md).
--
-- ordo.pop: arguments and result as version 9. When the pop names no partition, is not autoAck,
-- prefers exactly one partition and may take no other (p_prefer_only, or p_max_partitions = 1),
-- and the queue has no maxWaitTimeSeconds, one statement:
--   * takes the partition's cursor when version 9 would have taken it: the cursor exists, no live
--     lease, no back-off, something past the position whose oldest waiting message is visible
--     (delayMs) and old enough (delayedProcessing), the window buffer closed. It is locked with
--     FOR UPDATE SKIP LOCKED, as version 9's lock statement did; the position used is that of the
--     locked row version (READ COMMITTED re-reads a row updated since the snapshot; the other
--     conditions are re-checked on it as version 9's lock statement re-checked them);
--   * reads the batch after that position and claims the cursor exactly as version 9's batch
--     statement (the batch ends before the first message not yet visible; completions skipped;
--     retry counts from failures).
-- When it delivers nothing (a missing cursor, a partition taken meanwhile, nothing eligible) or
-- any condition above does not hold, version 9's function, kept as ordo._pop_choose, serves the
-- pop as before: the fast path writes nothing unless it delivers.

ALTER FUNCTION ordo.pop(text, text, text, int, int, boolean, smallint, bigint, text, bigint,
                        text[], boolean)
  RENAME TO _pop_choose;

CREATE FUNCTION ordo.pop(p_queue text, p_partition text, p_group text, p_batch int,
                         p_max_partitions int, p_auto_ack boolean, p_sub_kind smallint,
                         p_sub_from bigint, p_lease_id text, p_now bigint,
                         p_prefer text[], p_prefer_only boolean)
RETURNS TABLE(kind smallint, lease_expires_at bigint, window_active boolean,
              partition_id text, partition_name text, seq bigint, message_id text,
              transaction_id text, trace_id text, payload text, created_at bigint,
              retry_count bigint)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  v_group text := coalesce(p_group, '__QUEUE_MODE__');
  v_qpk bigint;
  v_lease_time_s bigint;
  v_delayed_s bigint;
  v_window_s bigint;
  v_max_wait_s bigint;
  v_visible bigint;
  v_window bigint;
  v_expires bigint;
  v_count bigint;
BEGIN
  IF p_partition IS NULL AND NOT coalesce(p_auto_ack, false) AND p_lease_id IS NOT NULL
     AND cardinality(p_prefer) = 1 AND p_prefer[1] IS NOT NULL AND p_batch >= 1
     AND p_max_partitions >= 1 AND (coalesce(p_prefer_only, false) OR p_max_partitions = 1) THEN
    SELECT q.pk, q.lease_time_s, q.delayed_processing_s, q.window_buffer_s, q.max_wait_time_s
      INTO v_qpk, v_lease_time_s, v_delayed_s, v_window_s, v_max_wait_s
      FROM ordo.queues q WHERE q.name = p_queue;
    IF FOUND AND v_max_wait_s <= 0 THEN
      -- A consumer group's first pop fixes where it starts (its side effect is kept here).
      IF v_group <> '__QUEUE_MODE__' THEN
        PERFORM ordo._group_start(v_qpk, v_group, p_sub_kind, p_sub_from, p_now);
      END IF;
      v_visible := p_now - v_delayed_s * 1000000;
      v_window := CASE WHEN v_window_s > 0 THEN p_now - v_window_s * 1000000
                       ELSE 9223372036854775807 END;
      v_expires := p_now + v_lease_time_s * 1000000;
      RETURN QUERY
        WITH cur AS MATERIALIZED (
          SELECT c.partition_pk AS ppk, c.position AS pos, p.id AS pid, p.name AS pname
            FROM ordo.partitions p
            JOIN ordo.cursors c ON c.partition_pk = p.pk AND c.group_name = v_group
            CROSS JOIN LATERAL (
              SELECT m.created_at, m.visible_at FROM ordo.messages m
               WHERE m.partition_pk = p.pk AND m.seq > c.position
               ORDER BY m.seq LIMIT 1) o
           WHERE p.queue_pk = v_qpk AND p.name = p_prefer[1]
             AND p.last_seq > c.position
             AND (c.lease_id IS NULL OR c.lease_expires_at <= p_now)
             AND c.eligible_at <= p_now
             AND p.last_at <= v_window
             AND o.visible_at <= p_now AND o.created_at <= v_visible
             FOR UPDATE OF c SKIP LOCKED
        ),
        head AS MATERIALIZED (
          SELECT h.seq, h.id, h.transaction_id, h.trace_id, h.payload, h.created_at, h.rc,
                 h.visible_at
            FROM cur
            CROSS JOIN LATERAL (
              SELECT m.seq, m.id, m.transaction_id, m.trace_id, m.payload, m.created_at,
                     coalesce((SELECT f.count FROM ordo.failures f
                                WHERE f.partition_pk = cur.ppk AND f.group_name = v_group
                                  AND f.seq = m.seq), 0) AS rc,
                     m.visible_at
                FROM ordo.messages m
               WHERE m.partition_pk = cur.ppk AND m.seq > cur.pos AND m.created_at <= v_visible
                 AND NOT EXISTS (SELECT 1 FROM ordo.completions k
                                  WHERE k.partition_pk = cur.ppk AND k.group_name = v_group
                                    AND k.seq = m.seq)
               ORDER BY m.seq
               LIMIT p_batch) h
        ),
        -- As version 9: a delayed message (delayMs) ends the batch before it.
        held AS (SELECT min(h.seq) AS seq FROM head h WHERE h.visible_at > p_now),
        batch AS (
          SELECT h.seq, h.id, h.transaction_id, h.trace_id, h.payload, h.created_at, h.rc
            FROM head h, held
           WHERE held.seq IS NULL OR h.seq < held.seq
        ),
        newest AS (SELECT max(b.seq) AS seq FROM batch b),
        claim AS (
          UPDATE ordo.cursors c
             SET lease_id = p_lease_id, lease_expires_at = v_expires, lease_last_seq = l.seq
            FROM newest l, cur
           WHERE l.seq IS NOT NULL AND c.partition_pk = cur.ppk AND c.group_name = v_group
        )
        SELECT 0::smallint, v_expires, false, cur.pid::text, cur.pname::text, b.seq,
               b.id::text, b.transaction_id::text, b.trace_id, b.payload, b.created_at, b.rc
          FROM batch b, cur
         ORDER BY b.seq;
      GET DIAGNOSTICS v_count = ROW_COUNT;
      IF v_count > 0 THEN
        RETURN;
      END IF;
    END IF;
  END IF;
  RETURN QUERY SELECT * FROM ordo._pop_choose(p_queue, p_partition, p_group, p_batch,
                                              p_max_partitions, p_auto_ack, p_sub_kind,
                                              p_sub_from, p_lease_id, p_now, p_prefer,
                                              p_prefer_only);
END;
$$;
