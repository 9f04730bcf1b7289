-- Ordo schema, PostgreSQL engine, version 15: a push of one item in small statements (issue #3,
-- the push-1 and e2e figures).
--
-- Why: most push statements of an e2e run (1,000 msg/s, a message a request) carry a single
-- item: 7,884 statements for 10,000 messages. Version 12 serves it with one statement of ~47
-- plan nodes (window aggregates, sorts, CTE scans), and PostgreSQL starts an executor for every
-- node of a plan on every execution: perf put ExecutorStart at 28% of a backend's CPU under
-- pgbench of one-item pushes, more than the statement's own work. Five statements of one or two
-- nodes each do the same work in 0.13-0.20 ms a call against 0.25-0.34 ms (pgbench, one
-- connection, alternating; docs/decisions.md).
--
-- ordo.push_one: the broker's statement when a flush holds one item (src/db/pg/statements.h,
-- kPushOne): that item's fields as scalars (no arrays to build and parse), the result as
-- ordo.push's, one row. When the queue and partition exist and the queue has no maxSize, it
--   1. looks the partition up;
--   2. answers "duplicate" with the stored message's id, or with the dedup-window entry's, as
--      version 12 does;
--   3. takes the next seq by updating the partition row (it waits for a concurrent push of the
--      partition, as version 12's UPDATE does; pushes to one partition still commit in seq
--      order; a partition deleted meanwhile updates nothing and version 7 does the push);
--   4. stores the message. A push of the same transaction id that committed while this one
--      waited for the row is found by the insert (ON CONFLICT on messages_by_txid): the seq is
--      given back, so that the partition's seqs stay gapless, and the answer is "duplicate"
--      with that push's id.
-- Anything else (a missing queue or partition, maxSize admission, a NULL field) goes to
-- version 7's function, ordo._push_general, before anything is written. ordo.push is unchanged:
-- a wrapper in front of it cost statements of several items 0.02-0.1 ms each.

CREATE FUNCTION ordo.push_one(p_queue text, p_partition text, p_id text, p_txid text,
                              p_trace_id text, p_payload text, p_now bigint, p_delay bigint)
RETURNS TABLE(idx int, status smallint, message_id text, transaction_id text,
              partition_id text)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  v_ppk bigint;
  v_pid text;
  v_max bigint;
  v_window_s bigint;
  v_old text;
  v_seq bigint;
  v_at bigint;
BEGIN
  IF p_txid IS NOT NULL AND p_id IS NOT NULL AND p_payload IS NOT NULL THEN
    SELECT p.pk, p.id, q.max_size, q.dedup_window_s
      INTO v_ppk, v_pid, v_max, v_window_s
      FROM ordo.queues q
      JOIN ordo.partitions p ON p.queue_pk = q.pk AND p.name = p_partition COLLATE "C"
     WHERE q.name = p_queue COLLATE "C";
    IF FOUND AND v_max = 0 THEN
      SELECT e.id INTO v_old
        FROM ordo.messages e
       WHERE e.partition_pk = v_ppk AND e.transaction_id = p_txid COLLATE "C";
      IF v_old IS NULL THEN
        SELECT dw.message_id INTO v_old
          FROM ordo.dedup_window dw
         WHERE dw.partition_pk = v_ppk AND dw.transaction_id = p_txid COLLATE "C"
           AND dw.created_at >= p_now - 1000000 * v_window_s;
      END IF;
      IF v_old IS NOT NULL THEN
        RETURN QUERY SELECT 1, 1::smallint, v_old, p_txid, v_pid;
        RETURN;
      END IF;

      UPDATE ordo.partitions p
         SET last_seq = p.last_seq + 1, last_at = greatest(p_now, p.last_at)
       WHERE p.pk = v_ppk
      RETURNING p.last_seq, p.last_at INTO v_seq, v_at;
      IF FOUND THEN
        INSERT INTO ordo.messages (partition_pk, seq, created_at, id, transaction_id, trace_id,
                                   payload, visible_at)
        VALUES (v_ppk, v_seq, v_at, p_id, p_txid, p_trace_id, p_payload,
                CASE WHEN coalesce(p_delay, 0) > 0 THEN v_at + p_delay * 1000 ELSE 0 END)
        ON CONFLICT (partition_pk, transaction_id) DO NOTHING;
        IF FOUND THEN
          RETURN QUERY SELECT 1, 0::smallint, p_id, p_txid, v_pid;
          RETURN;
        END IF;
        -- The same transaction id, pushed and committed while this push waited for the row.
        UPDATE ordo.partitions p SET last_seq = p.last_seq - 1 WHERE p.pk = v_ppk;
        SELECT e.id INTO v_old
          FROM ordo.messages e
         WHERE e.partition_pk = v_ppk AND e.transaction_id = p_txid COLLATE "C";
        RETURN QUERY SELECT 1, 1::smallint, v_old, p_txid, v_pid;
        RETURN;
      END IF;
    END IF;
  END IF;
  RETURN QUERY SELECT * FROM ordo._push_general(ARRAY[p_queue], ARRAY[p_partition], ARRAY[p_id],
                                                ARRAY[p_txid], ARRAY[p_trace_id],
                                                ARRAY[p_payload], p_now, ARRAY[1],
                                                CASE WHEN p_delay IS NULL THEN NULL
                                                     ELSE ARRAY[p_delay] END);
END;
$$;
