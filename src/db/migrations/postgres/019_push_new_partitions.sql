-- Ordo schema, PostgreSQL engine, version 19: a push of several items whose only obstacle is a
-- missing partition creates it and takes version 12's statement (issue #3: the e2e start, the
-- partitions-10k workload).
--
-- Why: version 12's ordo.push serves a push of up to 64 items in one statement only when every
-- item's partition exists; one new partition sends the whole push to version 7's function,
-- ordo._push_general, which creates it, looks every partition up and locks it, and stores with
-- statements written for every case: 1.8-2.0 ms for the few items of a push at the start of an
-- e2e run, where each push names a partition the broker has not used yet (pg_stat_statements;
-- docs/decisions.md). Version 18 did the same for a push of one item.
--
-- ordo._push_general now stands in front of version 7's function (renamed
-- ordo._push_general_v7, unchanged). For 2 to 64 items it locks the rows of the items' queues
-- that exist without a maxSize (FOR KEY SHARE, pk order: a concurrent ordo.delete_queue either
-- waits for this push or has deleted the row already, as in version 18) and inserts their missing
-- partitions (sorted, ON CONFLICT DO NOTHING: one created meanwhile by another push is waited
-- for and left as it is). When it created any, it calls ordo.push again, whose statement now
-- finds them all; when that falls back again (a missing queue, a maxSize, a duplicate race),
-- this function creates nothing the second time and hands the push to version 7. Everything
-- else goes to version 7 directly, as before: one item (ordo.push_one calls it only for a
-- missing queue or a maxSize), more than 64, missing queues, capped queues.

ALTER FUNCTION ordo._push_general(text[], text[], text[], text[], text[], text[], bigint, int[],
                                  bigint[])
  RENAME TO _push_general_v7;

CREATE FUNCTION ordo._push_general(p_queues text[], p_partitions text[], p_ids text[],
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
  v_created bigint := 0;
BEGIN
  IF v_n > 1 AND v_n <= 64 AND coalesce(cardinality(p_partitions), 0) = v_n THEN
    WITH queues AS MATERIALIZED (
      SELECT q.pk, q.name FROM ordo.queues q
       WHERE q.name = ANY (p_queues) AND q.max_size = 0
       ORDER BY q.pk
         FOR KEY SHARE
    ),
    made AS (
      INSERT INTO ordo.partitions (id, queue_pk, name, created_at)
      SELECT gen_random_uuid()::text, d.queue_pk, d.pn, p_now
        FROM (SELECT DISTINCT k.pk AS queue_pk, u.pn
                FROM unnest(p_queues, p_partitions) AS u(qn, pn)
                JOIN queues k ON k.name = u.qn COLLATE "C"
               WHERE u.pn IS NOT NULL) d
       WHERE NOT EXISTS (SELECT 1 FROM ordo.partitions p
                          WHERE p.queue_pk = d.queue_pk AND p.name = d.pn COLLATE "C")
       ORDER BY d.queue_pk, d.pn COLLATE "C"
      ON CONFLICT (queue_pk, name) DO NOTHING
      RETURNING 1
    )
    SELECT count(*) INTO v_created FROM made;
    IF v_created > 0 THEN
      RETURN QUERY SELECT * FROM ordo.push(p_queues, p_partitions, p_ids, p_txids, p_trace_ids,
                                           p_payloads, p_now, p_calls, p_delays);
      RETURN;
    END IF;
  END IF;
  RETURN QUERY SELECT * FROM ordo._push_general_v7(p_queues, p_partitions, p_ids, p_txids,
                                                   p_trace_ids, p_payloads, p_now, p_calls,
                                                   p_delays);
END;
$$;
