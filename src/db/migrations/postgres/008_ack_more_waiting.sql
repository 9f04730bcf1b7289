-- Ordo schema, PostgreSQL engine, version 8: an ack that ends a lease says whether the
-- partition still has messages past the acked ones (issue #3, the e2e figure).
--
-- Why: a released lease used to wake every parked long poll of the queue. A consumer usually
-- takes a partition's whole backlog, so the release mostly frees an empty partition, and every
-- woken poll paid a pop that found nothing plus the query that parks it again (at 100 msg/s,
-- e2e ran eleven pops per message). The broker now wakes one poll per released partition, and
-- none when the ack says nothing is left there and no push to the partition was seen while the
-- ack was in flight (src/broker/broker.cc, Broker::Ack).
--
-- ordo.ack: arguments as version 7; one more result column, more_waiting: for an item that ends
-- its lease, whether the partition's last seq (read after the cursors are locked) is past the
-- acked ones; false for the other items; NULL when not known (the general path: the broker then
-- wakes a poll as if something were left). The body is version 7's with that column added;
-- PostgreSQL cannot change a function's result type in place, hence the drop. A wrapper around
-- version 7 would need a statement of its own to read the partition after the ack (a single
-- statement's snapshot does not see the writes of a function it calls), and statement start-up
-- is the largest cost of an ack (docs/benchmarks.md): the body is copied instead.

DROP FUNCTION ordo.ack(text[], text[], text[], smallint[], text[], text[], bigint);

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
  v_good boolean;
  v_queue_a text[];   -- per item, in idx order
  v_part_a text[];
  v_rel_a boolean[];
  v_more_a boolean[];  -- per item: its lease ends and its partition has messages past the ack
  v_c_ppk bigint[];   -- per cursor
  v_c_g text[];
  v_c_pos bigint[];
  v_c_new bigint[];
  v_c_rel boolean[];
BEGIN
  IF v_n = 0 THEN
    RETURN;
  END IF;
  IF array_lower(p_txids, 1) <> 1
     OR array_lower(p_partition_ids, 1) IS DISTINCT FROM 1
     OR cardinality(p_partition_ids) <> v_n
     OR array_lower(p_lease_ids, 1) IS DISTINCT FROM 1 OR cardinality(p_lease_ids) <> v_n
     OR (p_groups IS NOT NULL AND (array_lower(p_groups, 1) <> 1
                                   OR cardinality(p_groups) <> v_n))
     OR array_lower(p_statuses, 1) IS DISTINCT FROM 1 OR cardinality(p_statuses) <> v_n
     OR NOT coalesce(0 = ALL (p_statuses), false) THEN
    RETURN QUERY SELECT g.*, NULL::boolean
                   FROM ordo._ack_general(p_txids, p_partition_ids, p_lease_ids, p_statuses,
                                          p_groups, p_errors, p_now) g;
    RETURN;
  END IF;

  -- Its own statement, so that the next one's snapshot follows every lock wait.
  PERFORM 1
     FROM ordo.cursors c
    WHERE (c.partition_pk, c.group_name) IN (
            SELECT p.pk, coalesce(u.g, '__QUEUE_MODE__')
              FROM unnest(p_partition_ids, p_groups) AS u(pid, g)
              JOIN ordo.partitions p ON p.id = u.pid)
    ORDER BY c.partition_pk, c.group_name
      FOR UPDATE;

  SELECT bool_and(x.good),
         array_agg(x.qn ORDER BY x.i), array_agg(x.pn ORDER BY x.i),
         array_agg(x.i = x.last_i AND x.hi >= x.lls ORDER BY x.i),
         array_agg(x.i = x.last_i AND x.hi >= x.lls AND x.last_seq > x.hi ORDER BY x.i),
         array_agg(x.ppk) FILTER (WHERE x.i = x.last_i),
         array_agg(x.g) FILTER (WHERE x.i = x.last_i),
         array_agg(x.pos) FILTER (WHERE x.i = x.last_i),
         array_agg(x.hi) FILTER (WHERE x.i = x.last_i),
         array_agg(x.hi >= x.lls) FILTER (WHERE x.i = x.last_i)
    INTO v_good, v_queue_a, v_part_a, v_rel_a, v_more_a, v_c_ppk, v_c_g, v_c_pos, v_c_new,
         v_c_rel
    FROM (
      SELECT w.i, w.ppk, w.g, w.qn, w.pn, w.pos, w.lls, w.hi, w.last_i, w.last_seq,
             coalesce(w.seq IS NOT NULL AND w.c_lease = w.lease AND w.c_exp > p_now
                      AND w.dup = 1 AND w.lo = w.pos + 1 AND w.hi <= w.lls
                      AND w.hi - w.lo + 1 = w.cnt
                      AND NOT EXISTS (SELECT 1 FROM ordo.completions k
                                       WHERE k.partition_pk = w.ppk AND k.group_name = w.g
                                         AND k.seq > w.pos),
                      false) AS good
        FROM (
          SELECT t.i::int AS i, p.pk AS ppk, p.last_seq, t.g, t.lease, m.seq,
                 q.name::text AS qn,
                 p.name::text AS pn, c.position AS pos, c.lease_id AS c_lease,
                 c.lease_expires_at AS c_exp, c.lease_last_seq AS lls,
                 row_number() OVER (PARTITION BY p.pk, t.g, m.seq ORDER BY t.i) AS dup,
                 min(m.seq) OVER cur AS lo, max(m.seq) OVER cur AS hi,
                 count(*) OVER cur AS cnt, max(t.i) OVER cur AS last_i
            FROM (SELECT u.i, u.txid, u.pid, u.lease, coalesce(u.g, '__QUEUE_MODE__') AS g
                    FROM unnest(p_txids, p_partition_ids, p_lease_ids, p_groups)
                         WITH ORDINALITY AS u(txid, pid, lease, g, i)) t
            -- One index probe per item and table, whatever the plan cache thinks of the
            -- tables' sizes (LIMIT 1 keeps each subquery a per-item probe; see 007's header).
            LEFT JOIN LATERAL (SELECT p.pk, p.name, p.queue_pk, p.last_seq
                                 FROM ordo.partitions p
                                WHERE p.id = t.pid COLLATE "C" LIMIT 1) p ON true
            LEFT JOIN LATERAL (SELECT q.name FROM ordo.queues q
                                WHERE q.pk = p.queue_pk LIMIT 1) q ON true
            LEFT JOIN LATERAL (SELECT m.seq FROM ordo.messages m
                                WHERE m.partition_pk = p.pk
                                  AND m.transaction_id = t.txid COLLATE "C"
                                ORDER BY m.transaction_id LIMIT 1) m ON true
            LEFT JOIN LATERAL (SELECT c.position, c.lease_id, c.lease_expires_at, c.lease_last_seq
                                 FROM ordo.cursors c
                                WHERE c.partition_pk = p.pk AND c.group_name = t.g COLLATE "C"
                                LIMIT 1) c
                   ON true
          WINDOW cur AS (PARTITION BY p.pk, t.g)
        ) w
    ) x;

  IF NOT coalesce(v_good, false) THEN
    RETURN QUERY SELECT g.*, NULL::boolean
                   FROM ordo._ack_general(p_txids, p_partition_ids, p_lease_ids, p_statuses,
                                          p_groups, p_errors, p_now) g;
    RETURN;
  END IF;

  WITH cleared AS (
    DELETE FROM ordo.failures f
     USING unnest(v_c_ppk, v_c_g, v_c_pos, v_c_new) AS x(ppk, g, pos, new_pos)
     WHERE f.partition_pk = x.ppk AND f.group_name = x.g
       AND f.seq > x.pos AND f.seq <= x.new_pos
  )
  UPDATE ordo.cursors c
     SET position = x.new_pos,
         lease_id = CASE WHEN x.rel THEN NULL ELSE c.lease_id END,
         lease_expires_at = CASE WHEN x.rel THEN 0 ELSE c.lease_expires_at END,
         lease_last_seq = CASE WHEN x.rel THEN 0 ELSE c.lease_last_seq END
    FROM unnest(v_c_ppk, v_c_g, v_c_new, v_c_rel) AS x(ppk, g, new_pos, rel)
   WHERE c.partition_pk = x.ppk AND c.group_name = x.g;

  RETURN QUERY
    SELECT a.i::int, true, NULL::text, a.qn, a.pn, a.rel, false, a.more
      FROM unnest(v_queue_a, v_part_a, v_rel_a, v_more_a)
           WITH ORDINALITY AS a(qn, pn, rel, more, i)
     ORDER BY a.i;
END;
$$;
