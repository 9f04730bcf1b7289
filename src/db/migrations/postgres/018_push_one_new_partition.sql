-- Ordo schema, PostgreSQL engine, version 18: a lone push creates its missing partition itself
-- (issue #3, the e2e figure; the partitions-10k workload).
--
-- Why: version 15's ordo.push_one sends a push to a partition that does not exist yet to
-- ordo._push_general, whose loop looks the partition up, creates the queue and partition rows
-- with statements written for many items, and looks up again: 0.9-1.5 ms a push against
-- 0.4-0.6 ms into an existing partition (psql, one connection, warm). A producer that names a
-- new partition per key pays it on every first message of a key, and a fresh broker at
-- 1,000 msg/s over 100 new partitions paid it on every push of its first 100 ms, which queued
-- the pushes behind one another: those messages waited 5-13 ms (docs/benchmarks.md).
--
-- ordo.push_one: as version 15, and when the queue exists without a maxSize but the partition
-- does not, it inserts the partition row (ON CONFLICT DO NOTHING: a push that created it first
-- is waited for, and its row is then read) and goes on as for an existing partition. The queue
-- row is locked FOR KEY SHARE first: a concurrent ordo.delete_queue, which deletes the queue row
-- before it locks the queue's partitions, then either waits for this push and finds the new
-- partition, or has deleted the row already, and this push finds no queue and goes to
-- ordo._push_general, which creates the queue anew (as for a missing queue).

CREATE OR REPLACE FUNCTION ordo.push_one(p_queue text, p_partition text, p_id text,
                                         p_txid text, p_trace_id text, p_payload text,
                                         p_now bigint, p_delay bigint)
RETURNS TABLE(idx int, status smallint, message_id text, transaction_id text,
              partition_id text)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  v_qpk bigint;
  v_ppk bigint;
  v_pid text;
  v_max bigint;
  v_window_s bigint;
  v_old text;
  v_seq bigint;
  v_at bigint;
BEGIN
  IF p_txid IS NOT NULL AND p_id IS NOT NULL AND p_payload IS NOT NULL
     AND p_queue IS NOT NULL AND p_partition IS NOT NULL THEN
    SELECT p.pk, p.id, q.max_size, q.dedup_window_s
      INTO v_ppk, v_pid, v_max, v_window_s
      FROM ordo.queues q
      JOIN ordo.partitions p ON p.queue_pk = q.pk AND p.name = p_partition COLLATE "C"
     WHERE q.name = p_queue COLLATE "C";
    IF NOT FOUND THEN
      SELECT q.pk, q.max_size, q.dedup_window_s INTO v_qpk, v_max, v_window_s
        FROM ordo.queues q
       WHERE q.name = p_queue COLLATE "C"
         FOR KEY SHARE;
      IF FOUND AND v_max = 0 THEN
        INSERT INTO ordo.partitions (id, queue_pk, name, created_at)
        VALUES (gen_random_uuid()::text, v_qpk, p_partition, p_now)
        ON CONFLICT (queue_pk, name) DO NOTHING
        RETURNING pk, id INTO v_ppk, v_pid;
        IF NOT FOUND THEN
          SELECT p.pk, p.id INTO v_ppk, v_pid
            FROM ordo.partitions p
           WHERE p.queue_pk = v_qpk AND p.name = p_partition COLLATE "C";
        END IF;
      END IF;
    END IF;
    IF v_ppk IS NOT NULL AND v_max = 0 THEN
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
