-- Ordo schema, PostgreSQL engine, version 2: atomic transactions (POST /api/v1/transaction).
--
-- ordo.transact runs the pushes and acks of one transaction call as ONE statement, with the
-- existing ordo.push and ordo.ack, so the pipelined connection is never left inside an open
-- transaction between round trips. When an ack is refused it raises SQLSTATE 'OR409' with the
-- reason; the statement, and with it every push and ack of the call, is rolled back, and the
-- engine answers 409 (src/broker/pg_store.cc maps that SQLSTATE to Status::Conflict).
--
-- Order of the work: every push item of the call goes to ONE ordo.push (in operation order, so
-- duplicates inside the call resolve to the earliest copy), then every ack to ONE ordo.ack (in
-- operation order). Pushes and acks never touch the same rows (a message pushed here cannot be
-- leased yet), so the outcome is the one of running the operations one by one in order; but
-- ordo.push then locks all the partitions it appends to in one sorted step, as a plain push
-- batch does, so two transactions, or a transaction and a push batch, cannot deadlock on
-- partition rows. Lock order is always partitions, then cursors (acks), as for any push and ack.
--
-- Result: the push rows first (kind 0, idx 1.. over all push items in operation order, columns
-- of ordo.push), then the ack rows (kind 1, idx 1.. over the acks in operation order, columns of
-- ordo.ack). Only committed calls return rows, so every ack row is a success.

CREATE FUNCTION ordo.transact(p_queues text[], p_partitions text[], p_ids text[],
                              p_txids text[], p_trace_ids text[], p_payloads text[],
                              p_ack_ops int[], p_ack_txids text[], p_ack_partition_ids text[],
                              p_ack_lease_ids text[], p_ack_statuses smallint[],
                              p_ack_groups text[], p_ack_errors text[], p_now bigint,
                              p_delays bigint[])
RETURNS TABLE(kind smallint, idx int, status smallint, message_id text, transaction_id text,
              partition_id text, queue text, partition text, lease_released boolean,
              dlq boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_ack record;
  v_push record;
BEGIN
  IF coalesce(cardinality(p_queues), 0) > 0 THEN
    -- ordo.push (its version 4 signature, 004_lifecycle.sql, resolved when this runs): the whole
    -- call is one request (p_calls NULL), refused whole (status 2/3) past a queue's maxSize.
    FOR v_push IN
      SELECT p.idx, p.status, p.message_id, p.transaction_id, p.partition_id
        FROM ordo.push(p_queues, p_partitions, p_ids, p_txids, p_trace_ids, p_payloads,
                       p_now, NULL, p_delays) p
       ORDER BY p.idx
    LOOP
      IF v_push.status >= 2 THEN
        RAISE EXCEPTION USING
          ERRCODE = 'OR429',
          MESSAGE = format('operations: a push would take queue ''%s'' past its maxSize; nothing was stored',
                           p_queues[v_push.idx]);
      END IF;
      kind := 0; idx := v_push.idx; status := v_push.status; message_id := v_push.message_id;
      transaction_id := v_push.transaction_id; partition_id := v_push.partition_id;
      queue := NULL; partition := NULL; lease_released := false; dlq := false;
      RETURN NEXT;
    END LOOP;
  END IF;

  IF coalesce(cardinality(p_ack_txids), 0) > 0 THEN
    IF cardinality(p_ack_ops) <> cardinality(p_ack_txids) THEN
      RAISE EXCEPTION 'ordo.transact: the ack arrays differ in length' USING ERRCODE = '22023';
    END IF;
    FOR v_ack IN
      SELECT a.idx, a.success, a.error, a.queue, a.partition, a.lease_released, a.dlq
        FROM ordo.ack(p_ack_txids, p_ack_partition_ids, p_ack_lease_ids, p_ack_statuses,
                      p_ack_groups, p_ack_errors, p_now) a
       ORDER BY a.idx
    LOOP
      IF NOT v_ack.success THEN
        RAISE EXCEPTION USING
          ERRCODE = 'OR409',
          MESSAGE = format('operations[%s]: %s', p_ack_ops[v_ack.idx],
                           coalesce(v_ack.error, 'the ack was refused'));
      END IF;
      kind := 1; idx := v_ack.idx; status := NULL; message_id := NULL;
      transaction_id := p_ack_txids[v_ack.idx]; partition_id := p_ack_partition_ids[v_ack.idx];
      queue := v_ack.queue; partition := v_ack.partition;
      lease_released := v_ack.lease_released; dlq := v_ack.dlq;
      RETURN NEXT;
    END LOOP;
  END IF;
  RETURN;
END;
$$;
