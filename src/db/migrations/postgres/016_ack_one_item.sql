-- Ordo schema, PostgreSQL engine, version 16: the ack of one message in small statements
-- (issue #3, the e2e figure).
--
-- Why: at 1,000 msg/s nearly every ack statement names one message: 9,643 of 9,800 in a 10 s
-- e2e run took version 11's one-lease path. Its two statements carry ~25 plan nodes (a
-- materialized CTE, a lateral aggregate over the items, data-modifying CTEs, a join with
-- generate_series), and starting their executors costs more than their work: the function took
-- 0.23 ms a call, its statements' own execution 0.085 ms (pg_stat_user_functions,
-- pg_stat_statements; migration 015 says the same of the push).
--
-- ordo.ack_one: the broker's statement when a flush holds one ack of status completed
-- (src/db/pg/statements.h, kAckOne): that item's fields as scalars, the result as ordo.ack's,
-- one row. It
--   1. looks the partition up and locks the group's cursor (the position and lease read are
--      those of the locked row version: READ COMMITTED re-reads a row updated while we waited);
--   2. finds the message's seq (messages are append-only, and the acked one was delivered
--      before the ack was sent);
--   3. when the message is the next one after the position, under the live lease named, with no
--      completions pending past the position (version 11's rule for one item), clears its
--      failure count, moves the position, ends the lease when it was the lease's last message,
--      and answers with a statement of its own, so that more_waiting reads the partition's
--      current last seq.
-- Anything else (a stale or out-of-order ack, an unknown message, a foreign lease) goes to
-- version 8's function, ordo._ack_cursors, before anything is written.

CREATE FUNCTION ordo.ack_one(p_txid text, p_partition_id text, p_lease_id text, p_group text,
                             p_now bigint)
RETURNS TABLE(idx int, success boolean, error text, queue text, partition text,
              lease_released boolean, dlq boolean, more_waiting boolean)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  v_group text := coalesce(p_group, '__QUEUE_MODE__');
  v_ppk bigint;
  v_pos bigint;
  v_lls bigint;
  v_live boolean;
  v_seq bigint;
  v_rel boolean;
BEGIN
  IF p_txid IS NOT NULL AND p_partition_id IS NOT NULL AND p_lease_id IS NOT NULL THEN
    SELECT p.pk INTO v_ppk FROM ordo.partitions p WHERE p.id = p_partition_id COLLATE "C";
    IF FOUND THEN
      SELECT c.position, c.lease_last_seq,
             coalesce(c.lease_id = p_lease_id COLLATE "C" AND c.lease_expires_at > p_now, false)
        INTO v_pos, v_lls, v_live
        FROM ordo.cursors c
       WHERE c.partition_pk = v_ppk AND c.group_name = v_group COLLATE "C"
         FOR UPDATE;
      IF FOUND AND v_live THEN
        SELECT m.seq INTO v_seq
          FROM ordo.messages m
         WHERE m.partition_pk = v_ppk AND m.transaction_id = p_txid COLLATE "C";
        IF v_seq = v_pos + 1 AND v_seq <= v_lls
           AND NOT EXISTS (SELECT 1 FROM ordo.completions k
                            WHERE k.partition_pk = v_ppk AND k.group_name = v_group COLLATE "C"
                              AND k.seq > v_pos) THEN
          v_rel := v_seq >= v_lls;
          DELETE FROM ordo.failures f
           WHERE f.partition_pk = v_ppk AND f.group_name = v_group COLLATE "C"
             AND f.seq = v_seq;
          UPDATE ordo.cursors c
             SET position = v_seq,
                 lease_id = CASE WHEN v_rel THEN NULL ELSE c.lease_id END,
                 lease_expires_at = CASE WHEN v_rel THEN 0 ELSE c.lease_expires_at END,
                 lease_last_seq = CASE WHEN v_rel THEN 0 ELSE c.lease_last_seq END
           WHERE c.partition_pk = v_ppk AND c.group_name = v_group COLLATE "C";
          RETURN QUERY
            SELECT 1, true, NULL::text, q.name::text, p.name::text, v_rel, false,
                   v_rel AND p.last_seq > v_seq
              FROM ordo.partitions p
              JOIN ordo.queues q ON q.pk = p.queue_pk
             WHERE p.pk = v_ppk;
          RETURN;
        END IF;
      END IF;
    END IF;
  END IF;
  RETURN QUERY SELECT * FROM ordo._ack_cursors(ARRAY[p_txid], ARRAY[p_partition_id],
                                              ARRAY[p_lease_id], ARRAY[0::smallint],
                                              ARRAY[p_group], ARRAY[NULL::text], p_now);
END;
$$;
