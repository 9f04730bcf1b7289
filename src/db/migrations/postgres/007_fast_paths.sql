-- Ordo schema, PostgreSQL engine, version 7: cheaper pop, ack and push for the common cases
-- (issue #3, the e2e, drain and push-1 figures). Same results as before for every input;
-- docs/decisions.md has the measurements.
--
--   * Plans: these functions run generic plans, made once per connection, often while the
--     tables are still small (a fresh database, or before autovacuum's first ANALYZE). A plan
--     made then may hash-join a whole table (seen: ordo.push seq-scanning ordo.messages for its
--     duplicate check, 2.4x slower after 10 s and growing with the table). Every function here
--     runs with enable_seqscan = off, and looks up an item's rows (partition, message, cursor)
--     in LATERAL or scalar subqueries keyed by the item's values, with LIMIT 1 so the planner
--     cannot turn them back into a join (a hash join over a whole table). A message is looked up
--     by transaction id "ORDER BY transaction_id": on tables without statistics the primary key
--     (partition_pk, seq) costs the same as (partition_pk, transaction_id) and was chosen, and
--     then every probe read the whole partition; the order makes the right index the cheaper.
--   * ordo.pop: the version-4 function is kept as ordo._pop_general and still serves pops of a
--     named partition. The wildcard choice is new: the oldest waiting message of each candidate
--     partition is read once, in a LATERAL join (the former scalar subquery was evaluated up to
--     three times per partition: in the filter, in the comparison and in the sort), and the
--     cursor lock also reads the partition's last_at (one statement fewer per claim), and the
--     end of the batch at a delayed message is found once (it was a per-row subquery over the
--     batch: quadratic in the batch size).
--   * ordo.push: fewer statements per call (lookup and lock in one, queues and partitions
--     created only when missing, outcomes straight from the storing statement); the maxSize
--     admission moves unchanged into ordo._admit.
--   * ordo.ack: the version-1 function is kept as ordo._ack_general. The new one takes a fast
--     path when every item is "completed" and, per cursor, its items are exactly the next k
--     messages after the position under the cursor's live lease (no completions pending): the
--     in-order ack of a whole batch or of its head, which is what consumers send. Anything else
--     (failures, retries, out-of-order or stale acks, unknown messages) goes to _ack_general,
--     before anything is written.

ALTER FUNCTION ordo.pop(text, text, text, int, int, boolean, smallint, bigint, text, bigint)
  RENAME TO _pop_general;
ALTER FUNCTION ordo.ack(text[], text[], text[], smallint[], text[], text[], bigint)
  RENAME TO _ack_general;

-- =============================================================================================
-- pop: arguments and result as version 4 (src/db/pg/statements.h, kPop).
-- =============================================================================================
CREATE FUNCTION ordo.pop(p_queue text, p_partition text, p_group text, p_batch int,
                         p_max_partitions int, p_auto_ack boolean, p_sub_kind smallint,
                         p_sub_from bigint, p_lease_id text, p_now bigint)
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
  v_auto boolean := coalesce(p_auto_ack, false);
  v_qpk bigint;
  v_lease_time_s bigint;
  v_delayed_s bigint;
  v_window_s bigint;
  v_max_wait_s bigint;
  v_expired bigint;
  v_start bigint;
  v_visible bigint;
  v_window bigint;
  v_expires bigint;
  v_out_expires bigint;
  v_last_at bigint;
  v_pos bigint;
  v_count bigint;
  v_room bigint;
  v_delivered bigint := 0;
  v_claimed int := 0;
  v_cand record;
BEGIN
  IF p_partition IS NOT NULL THEN
    RETURN QUERY SELECT * FROM ordo._pop_general(p_queue, p_partition, p_group, p_batch,
                                                 p_max_partitions, p_auto_ack, p_sub_kind,
                                                 p_sub_from, p_lease_id, p_now);
    RETURN;
  END IF;
  p_group := coalesce(p_group, '__QUEUE_MODE__');
  IF NOT v_auto AND p_lease_id IS NULL THEN
    RAISE EXCEPTION 'ordo.pop: a lease id is required unless auto_ack' USING ERRCODE = '22023';
  END IF;

  SELECT q.pk, q.lease_time_s, q.delayed_processing_s, q.window_buffer_s, q.max_wait_time_s
    INTO v_qpk, v_lease_time_s, v_delayed_s, v_window_s, v_max_wait_s
    FROM ordo.queues q WHERE q.name = p_queue;
  IF NOT FOUND THEN
    kind := 1; lease_expires_at := 0; window_active := false;
    RETURN NEXT;
    RETURN;
  END IF;

  v_start := CASE WHEN p_group = '__QUEUE_MODE__' THEN 0  -- as _group_start, without the call
                  ELSE ordo._group_start(v_qpk, p_group, p_sub_kind, p_sub_from, p_now) END;
  v_visible := p_now - v_delayed_s * 1000000;
  v_window := CASE WHEN v_window_s > 0 THEN p_now - v_window_s * 1000000
                   ELSE 9223372036854775807 END;
  v_expires := p_now + v_lease_time_s * 1000000;
  v_out_expires := CASE WHEN v_auto THEN 0 ELSE v_expires END;

  -- Eligible partitions, oldest waiting message first (ties: pk). Extra candidates cover
  -- partitions that turn out to have nothing deliverable or are being taken by another pop.
  FOR v_cand IN
    SELECT p.pk, p.id, p.name, (c.partition_pk IS NOT NULL) AS has_cursor
      FROM ordo.partitions p
      LEFT JOIN ordo.cursors c ON c.partition_pk = p.pk AND c.group_name = p_group
      CROSS JOIN LATERAL (
        SELECT m.created_at, m.visible_at FROM ordo.messages m
         WHERE m.partition_pk = p.pk AND m.seq > coalesce(c.position, 0)
           AND (c.partition_pk IS NOT NULL OR m.created_at >= v_start)
         ORDER BY m.seq LIMIT 1) o
     WHERE p.queue_pk = v_qpk AND p.last_seq > coalesce(c.position, 0)
       AND (c.lease_id IS NULL OR c.lease_expires_at <= p_now)
       AND coalesce(c.eligible_at, 0) <= p_now
       AND (c.partition_pk IS NOT NULL OR p.last_at >= v_start)
       AND p.last_at <= v_window
       AND o.visible_at <= p_now AND o.created_at <= v_visible
     ORDER BY o.created_at, p.pk
     LIMIT greatest(p_max_partitions, 0) + 64
  LOOP
    EXIT WHEN v_claimed >= p_max_partitions;
    v_room := p_batch - v_delivered;
    EXIT WHEN v_room <= 0;
    IF NOT v_cand.has_cursor THEN
      CONTINUE WHEN NOT ordo._ensure_cursor(v_cand.pk, p_group, v_start, false);
    END IF;
    -- Take the cursor unless another transaction holds it; re-check eligibility on the
    -- current row version (the candidate list may be stale).
    SELECT c.position, p.last_at INTO v_pos, v_last_at
      FROM ordo.cursors c JOIN ordo.partitions p ON p.pk = c.partition_pk
     WHERE c.partition_pk = v_cand.pk AND c.group_name = p_group
       AND (c.lease_id IS NULL OR c.lease_expires_at <= p_now)
       AND c.eligible_at <= p_now
       FOR UPDATE OF c SKIP LOCKED;
    CONTINUE WHEN NOT FOUND;
    CONTINUE WHEN v_last_at > v_window;
    IF v_max_wait_s > 0 THEN
      SELECT x.new_position, x.expired INTO v_pos, v_expired
        FROM ordo._expire_waiting(v_qpk, v_cand.pk, p_group, v_pos,
                                  p_now - v_max_wait_s * 1000000, 10000, p_now) x;
      CONTINUE WHEN v_pos < 0;
    END IF;
    -- The batch and the claim of the cursor in one statement, as in _pop_general.
    RETURN QUERY
      WITH done AS MATERIALIZED (
        SELECT k.seq FROM ordo.completions k
         WHERE k.partition_pk = v_cand.pk AND k.group_name = p_group AND k.seq > v_pos
      ),
      failed AS MATERIALIZED (
        SELECT f.seq, f.count FROM ordo.failures f
         WHERE f.partition_pk = v_cand.pk AND f.group_name = p_group AND f.seq > v_pos
      ),
      head AS MATERIALIZED (
        SELECT m.seq, m.id, m.transaction_id, m.trace_id, m.payload, m.created_at,
               coalesce(fl.count, 0) AS rc, m.visible_at
          FROM ordo.messages m
          LEFT JOIN failed fl ON fl.seq = m.seq
         WHERE m.partition_pk = v_cand.pk AND m.seq > v_pos AND m.created_at <= v_visible
           AND NOT EXISTS (SELECT 1 FROM done d WHERE d.seq = m.seq)
         ORDER BY m.seq
         LIMIT v_room
      ),
      -- A delayed message (delayMs) holds back itself and everything behind it in the lane:
      -- the batch ends before the first one not yet visible (found once, not per row).
      held AS (SELECT min(h.seq) AS seq FROM head h WHERE h.visible_at > p_now),
      batch AS (
        SELECT h.seq, h.id, h.transaction_id, h.trace_id, h.payload, h.created_at, h.rc
          FROM head h, held
         WHERE held.seq IS NULL OR h.seq < held.seq
      ),
      newest AS (SELECT max(b.seq) AS seq FROM batch b),
      claim AS (
        UPDATE ordo.cursors c
           SET position = CASE WHEN v_auto THEN l.seq ELSE c.position END,
               lease_id = CASE WHEN v_auto THEN NULL ELSE p_lease_id END,
               lease_expires_at = CASE WHEN v_auto THEN 0 ELSE v_expires END,
               lease_last_seq = CASE WHEN v_auto THEN 0 ELSE l.seq END
          FROM newest l
         WHERE l.seq IS NOT NULL AND c.partition_pk = v_cand.pk AND c.group_name = p_group
      )
      SELECT 0::smallint, v_out_expires, false, v_cand.id::text, v_cand.name::text, b.seq,
             b.id::text, b.transaction_id::text, b.trace_id, b.payload, b.created_at, b.rc
        FROM batch b
       ORDER BY b.seq;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    CONTINUE WHEN v_count = 0;
    IF v_auto THEN  -- the batch is done: the claim moved the position to its last seq
      SELECT c.position INTO v_pos
        FROM ordo.cursors c WHERE c.partition_pk = v_cand.pk AND c.group_name = p_group;
      DELETE FROM ordo.completions k
       WHERE k.partition_pk = v_cand.pk AND k.group_name = p_group AND k.seq <= v_pos;
      DELETE FROM ordo.failures f
       WHERE f.partition_pk = v_cand.pk AND f.group_name = p_group AND f.seq <= v_pos;
    END IF;
    v_delivered := v_delivered + v_count;
    v_claimed := v_claimed + 1;
  END LOOP;

  IF v_claimed = 0 THEN
    kind := 1; lease_expires_at := 0; window_active := false;
    partition_id := NULL; partition_name := NULL;
    RETURN NEXT;
  END IF;
  RETURN;
END;
$$;

-- =============================================================================================
-- ack: arguments and result as version 1 (src/db/pg/statements.h, kAck).
--   Fast path, all items "completed": after the cursors are locked (key order, as
--   _ack_general), one read-only statement checks, per (partition, group), that every item
--   names a stored message under the cursor's live lease, that no two items name the same
--   message, and that their seqs are exactly position+1 .. position+k with k <= what the lease
--   covers and no completions past the position. Then the position moves to position+k, the
--   failure counts up to it go, and the lease ends when it covered no more (lease_released on
--   the cursor's last item, as _ack_general reports it). Otherwise nothing has been written
--   and _ack_general decides every item.
-- =============================================================================================
CREATE FUNCTION ordo.ack(p_txids text[], p_partition_ids text[], p_lease_ids text[],
                         p_statuses smallint[], p_groups text[], p_errors text[], p_now bigint)
RETURNS TABLE(idx int, success boolean, error text, queue text, partition text,
              lease_released boolean, dlq boolean)
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
    RETURN QUERY SELECT * FROM ordo._ack_general(p_txids, p_partition_ids, p_lease_ids,
                                                 p_statuses, p_groups, p_errors, p_now);
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
         array_agg(x.ppk) FILTER (WHERE x.i = x.last_i),
         array_agg(x.g) FILTER (WHERE x.i = x.last_i),
         array_agg(x.pos) FILTER (WHERE x.i = x.last_i),
         array_agg(x.hi) FILTER (WHERE x.i = x.last_i),
         array_agg(x.hi >= x.lls) FILTER (WHERE x.i = x.last_i)
    INTO v_good, v_queue_a, v_part_a, v_rel_a, v_c_ppk, v_c_g, v_c_pos, v_c_new, v_c_rel
    FROM (
      SELECT w.i, w.ppk, w.g, w.qn, w.pn, w.pos, w.lls, w.hi, w.last_i,
             coalesce(w.seq IS NOT NULL AND w.c_lease = w.lease AND w.c_exp > p_now
                      AND w.dup = 1 AND w.lo = w.pos + 1 AND w.hi <= w.lls
                      AND w.hi - w.lo + 1 = w.cnt
                      AND NOT EXISTS (SELECT 1 FROM ordo.completions k
                                       WHERE k.partition_pk = w.ppk AND k.group_name = w.g
                                         AND k.seq > w.pos),
                      false) AS good
        FROM (
          SELECT t.i::int AS i, p.pk AS ppk, t.g, t.lease, m.seq, q.name::text AS qn,
                 p.name::text AS pn, c.position AS pos, c.lease_id AS c_lease,
                 c.lease_expires_at AS c_exp, c.lease_last_seq AS lls,
                 row_number() OVER (PARTITION BY p.pk, t.g, m.seq ORDER BY t.i) AS dup,
                 min(m.seq) OVER cur AS lo, max(m.seq) OVER cur AS hi,
                 count(*) OVER cur AS cnt, max(t.i) OVER cur AS last_i
            FROM (SELECT u.i, u.txid, u.pid, u.lease, coalesce(u.g, '__QUEUE_MODE__') AS g
                    FROM unnest(p_txids, p_partition_ids, p_lease_ids, p_groups)
                         WITH ORDINALITY AS u(txid, pid, lease, g, i)) t
            -- One index probe per item and table, whatever the plan cache thinks of the
            -- tables' sizes (LIMIT 1 keeps each subquery a per-item probe; see the header).
            LEFT JOIN LATERAL (SELECT p.pk, p.name, p.queue_pk FROM ordo.partitions p
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
    RETURN QUERY SELECT * FROM ordo._ack_general(p_txids, p_partition_ids, p_lease_ids,
                                                 p_statuses, p_groups, p_errors, p_now);
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
    SELECT a.i::int, true, NULL::text, a.qn, a.pn, a.rel, false
      FROM unnest(v_queue_a, v_part_a, v_rel_a) WITH ORDINALITY AS a(qn, pn, rel, i)
     ORDER BY a.i;
END;
$$;

-- =============================================================================================
-- Internal: maxSize admission for a push statement (moved out of push unchanged). Calls in
-- order; a call fits when every capped queue it adds to stays within maxSize, counting only
-- messages it would store (not transaction ids already stored or in the dedup window). A call
-- that does not fit is refused whole. Returns per item 0 accepted, 2 its queue is full, 3
-- another queue of its call is; NULL when every call fits. The capped queues' rows are locked
-- by the caller.
-- =============================================================================================
CREATE FUNCTION ordo._admit(p_ppk bigint[], p_item_q bigint[], p_txids text[], p_calls int[],
                            p_cap_q bigint[], p_cap_max bigint[])
RETURNS smallint[]
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
  v_cap_size bigint[];   -- the capped queues' size, then plus what accepted calls add
  v_a_call int[];        -- per (call, capped queue): messages the call would add
  v_a_ord int[];
  v_a_n bigint[];
  v_bad_calls int[];     -- calls refused whole
  v_full_call int[];     -- (call, queue) pairs that overflowed
  v_full_q bigint[];
  v_refused smallint[];
  v_fits boolean;
  v_len int;
  v_j int;
  v_k int;
  v_m int;
BEGIN
  SELECT array_agg(coalesce(s.n, 0) ORDER BY x.o) INTO v_cap_size
    FROM unnest(p_cap_q) WITH ORDINALITY AS x(qpk, o)
    LEFT JOIN LATERAL (
      SELECT sum(p.last_seq - greatest(coalesce(c.position, 0), p.removed_through)) AS n
        FROM ordo.partitions p
        LEFT JOIN ordo.cursors c
               ON c.partition_pk = p.pk AND c.group_name = '__QUEUE_MODE__'
       WHERE p.queue_pk = x.qpk) s ON true;
  SELECT array_agg(t.c ORDER BY t.c, t.o), array_agg(t.o ORDER BY t.c, t.o),
         array_agg(t.n ORDER BY t.c, t.o)
    INTO v_a_call, v_a_ord, v_a_n
    FROM (SELECT coalesce(u.c, 1) AS c, x.o::int AS o,
                 count(DISTINCT u.ppk::text || '/' || u.txid) AS n
            FROM unnest(p_ppk, p_item_q, p_txids, p_calls) AS u(ppk, qpk, txid, c)
            JOIN unnest(p_cap_q) WITH ORDINALITY AS x(qpk, o) ON x.qpk = u.qpk
           WHERE NOT EXISTS (SELECT 1 FROM ordo.messages e
                              WHERE e.partition_pk = u.ppk AND e.transaction_id = u.txid)
             AND NOT EXISTS (SELECT 1 FROM ordo.dedup_window d
                              WHERE d.partition_pk = u.ppk AND d.transaction_id = u.txid)
           GROUP BY 1, 2) t;
  v_len := coalesce(cardinality(v_a_call), 0);
  v_j := 1;
  WHILE v_j <= v_len LOOP
    v_k := v_j;
    v_fits := true;
    WHILE v_k <= v_len AND v_a_call[v_k] = v_a_call[v_j] LOOP
      IF v_cap_size[v_a_ord[v_k]] + v_a_n[v_k] > p_cap_max[v_a_ord[v_k]] THEN
        v_fits := false;
        v_full_call := v_full_call || v_a_call[v_k];
        v_full_q := v_full_q || p_cap_q[v_a_ord[v_k]];
      END IF;
      v_k := v_k + 1;
    END LOOP;
    IF v_fits THEN
      FOR v_m IN v_j .. v_k - 1 LOOP
        v_cap_size[v_a_ord[v_m]] := v_cap_size[v_a_ord[v_m]] + v_a_n[v_m];
      END LOOP;
    ELSE
      v_bad_calls := v_bad_calls || v_a_call[v_j];
    END IF;
    v_j := v_k;
  END LOOP;
  IF v_bad_calls IS NOT NULL THEN
    SELECT array_agg(CASE WHEN NOT (coalesce(u.c, 1) = ANY (v_bad_calls)) THEN 0
                          WHEN EXISTS (SELECT 1 FROM unnest(v_full_call, v_full_q) AS f(c, q)
                                        WHERE f.c = coalesce(u.c, 1) AND f.q = u.qpk) THEN 2
                          ELSE 3 END::smallint ORDER BY u.i)
      INTO v_refused
      FROM unnest(p_item_q, p_calls) WITH ORDINALITY AS u(qpk, c, i);
  END IF;
  RETURN v_refused;
END;
$$;

-- =============================================================================================
-- push: arguments and result as version 4 (src/db/pg/statements.h, kPush), fewer statements:
-- the partition rows are looked up and locked by one statement (queues and partitions are only
-- created when some are missing), and the outcome rows come straight from the statement that
-- stores the messages. Locking order as before: capped queue rows, then partition rows, each in
-- pk order.
-- =============================================================================================
CREATE OR REPLACE FUNCTION ordo.push(p_queues text[], p_partitions text[], p_ids text[],
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
  v_ppk bigint[];       -- partition pk per item
  v_pid text[];         -- partition id per item
  v_item_q bigint[];    -- queue pk per item
  v_found int;
  v_all_locked boolean;
  v_attempt int := 0;
  v_cap_q bigint[];     -- queues with maxSize > 0 among the items, ascending pk
  v_cap_max bigint[];
  v_refused smallint[]; -- per item: 0 accepted, 2 its queue is full, 3 another queue of its call
BEGIN
  IF v_n = 0 THEN
    RETURN;
  END IF;
  IF coalesce(cardinality(p_partitions), 0) <> v_n OR coalesce(cardinality(p_ids), 0) <> v_n
     OR coalesce(cardinality(p_txids), 0) <> v_n OR coalesce(cardinality(p_payloads), 0) <> v_n
     OR (p_trace_ids IS NOT NULL AND cardinality(p_trace_ids) <> v_n) THEN
    RAISE EXCEPTION 'ordo.push: the item arrays differ in length' USING ERRCODE = '22023';
  END IF;

  -- Capped queues (maxSize > 0): their rows are locked first (pk order, before any partition
  -- row), so concurrent pushes into one capped queue see each other's messages in the size.
  SELECT array_agg(c.pk ORDER BY c.pk), array_agg(c.max_size ORDER BY c.pk)
    INTO v_cap_q, v_cap_max
    FROM (SELECT q.pk, q.max_size FROM ordo.queues q
           WHERE q.name = ANY (p_queues) AND q.max_size > 0
           ORDER BY q.pk FOR UPDATE) c;

  LOOP
    v_attempt := v_attempt + 1;
    -- Each item's partition (an index probe per item, whatever the plan cache thinks of the
    -- tables' sizes), then every one of them locked in pk order: that serialises pushes per
    -- partition (seq order = commit order), in one order for all pushes (no deadlock).
    WITH items AS MATERIALIZED (
      SELECT u.i, k.pk, k.id, k.queue_pk
        FROM unnest(p_queues, p_partitions) WITH ORDINALITY AS u(qn, pn, i)
        LEFT JOIN LATERAL (
          SELECT p.pk, p.id, p.queue_pk FROM ordo.partitions p
           WHERE p.queue_pk = (SELECT q.pk FROM ordo.queues q WHERE q.name = u.qn COLLATE "C")
             AND p.name = u.pn COLLATE "C"
           LIMIT 1) k ON true
    ),
    wanted AS MATERIALIZED (
      SELECT array_agg(DISTINCT it.pk) AS pks FROM items it WHERE it.pk IS NOT NULL
    ),
    locked AS (
      SELECT p.pk FROM ordo.partitions p
       WHERE p.pk = ANY ((SELECT w.pks FROM wanted w)::bigint[])
       ORDER BY p.pk
         FOR UPDATE
    )
    SELECT array_agg(it.pk ORDER BY it.i), array_agg(it.id::text ORDER BY it.i),
           array_agg(it.queue_pk ORDER BY it.i), count(it.pk),
           (SELECT count(*) FROM locked) = (SELECT coalesce(cardinality(w.pks), 0) FROM wanted w)
      INTO v_ppk, v_pid, v_item_q, v_found, v_all_locked
      FROM items it;
    EXIT WHEN v_found = v_n AND v_all_locked;
    -- A queue or partition vanished under us (concurrent delete_queue): start over.
    IF v_attempt >= 5 THEN
      RAISE EXCEPTION 'ordo.push: a queue was deleted concurrently' USING ERRCODE = '40001';
    END IF;
    -- Missing queues, then missing partitions; sorted so concurrent creators cannot deadlock.
    INSERT INTO ordo.queues (id, name, created_at)
    SELECT gen_random_uuid()::text, d.qn, p_now
      FROM (SELECT DISTINCT u.qn FROM unnest(p_queues) AS u(qn)) d
     WHERE NOT EXISTS (SELECT 1 FROM ordo.queues q WHERE q.name = d.qn)
     ORDER BY d.qn COLLATE "C"
    ON CONFLICT (name) DO NOTHING;
    INSERT INTO ordo.partitions (id, queue_pk, name, created_at)
    SELECT gen_random_uuid()::text, d.queue_pk, d.pn, p_now
      FROM (SELECT DISTINCT q.pk AS queue_pk, u.pn
              FROM unnest(p_queues, p_partitions) AS u(qn, pn)
              JOIN ordo.queues q ON q.name = u.qn) d
     WHERE NOT EXISTS (SELECT 1 FROM ordo.partitions p
                        WHERE p.queue_pk = d.queue_pk AND p.name = d.pn)
     ORDER BY d.queue_pk, d.pn COLLATE "C"
    ON CONFLICT (queue_pk, name) DO NOTHING;
  END LOOP;

  IF v_cap_q IS NOT NULL THEN
    v_refused := ordo._admit(v_ppk, v_item_q, p_txids, p_calls, v_cap_q, v_cap_max);
  END IF;

  -- No NOTIFY here: the broker sends it after the commit (src/db/pg/statements.h, kNotify).
  RETURN QUERY
  WITH items AS (
    SELECT u.i::int AS i, u.ppk, u.txid, u.mid, u.trace, u.body, u.delay,
           coalesce(u.refused, 0)::smallint AS refused
      FROM unnest(v_ppk, p_txids, p_ids, p_trace_ids, p_payloads, v_refused, p_delays)
           WITH ORDINALITY AS u(ppk, txid, mid, trace, body, refused, delay, i)
  ),
  -- A transaction id is a duplicate while its message is stored, and while its entry in the
  -- dedup window (messages removed by retention) is younger than the queue's window. Items of
  -- refused calls are numbered apart: they store nothing and hide nothing.
  marked AS (
    SELECT it.i, it.ppk, it.txid, it.mid, it.trace, it.body, it.delay, it.refused,
           coalesce(e.id, dw.message_id) AS old_id,
           row_number() OVER w AS occ,
           first_value(it.mid) OVER w AS first_mid
      FROM items it
      LEFT JOIN LATERAL (SELECT e.id FROM ordo.messages e
                          WHERE e.partition_pk = it.ppk AND e.transaction_id = it.txid COLLATE "C"
                          ORDER BY e.transaction_id LIMIT 1) e ON true
      LEFT JOIN ordo.dedup_window dw
             ON dw.partition_pk = it.ppk AND dw.transaction_id = it.txid
            AND dw.created_at >= p_now - 1000000 * (
                  SELECT q.dedup_window_s FROM ordo.partitions p
                    JOIN ordo.queues q ON q.pk = p.queue_pk WHERE p.pk = it.ppk)
    WINDOW w AS (PARTITION BY it.ppk, it.txid, it.refused <> 0 ORDER BY it.i)
  ),
  fresh AS (
    SELECT mk.i, mk.ppk, mk.txid, mk.mid, mk.trace, mk.body, mk.delay,
           row_number() OVER (PARTITION BY mk.ppk ORDER BY mk.i) AS rn
      FROM marked mk
     WHERE mk.old_id IS NULL AND mk.occ = 1 AND mk.refused = 0
  ),
  -- Joins go to the (locked, unchanging) partition rows, never CTE to CTE: CTE scans have no
  -- estimates and no index, and a nested loop over two of them is quadratic.
  numbered AS (
    SELECT f.ppk, p.last_seq + f.rn AS seq, greatest(p_now, p.last_at) AS at, f.mid, f.txid,
           f.trace, f.body,
           CASE WHEN coalesce(f.delay, 0) > 0
                THEN greatest(p_now, p.last_at) + f.delay * 1000 ELSE 0 END AS vis
      FROM fresh f JOIN ordo.partitions p ON p.pk = f.ppk
  ),
  ins AS (
    INSERT INTO ordo.messages (partition_pk, seq, created_at, id, transaction_id, trace_id,
                               payload, visible_at)
    SELECT n.ppk, n.seq, n.at, n.mid, n.txid, n.trace, n.body, n.vis
      FROM numbered n
     ORDER BY n.ppk, n.seq
  ),
  upd AS (
    UPDATE ordo.partitions p
       SET last_seq = h.seq, last_at = h.at
      FROM (SELECT n.ppk, max(n.seq) AS seq, max(n.at) AS at FROM numbered n GROUP BY n.ppk) h
     WHERE p.pk = h.ppk
  )
  -- Refused items (2, 3) answer without a message id.
  SELECT mk.i,
         CASE WHEN mk.refused <> 0 THEN mk.refused
              WHEN mk.old_id IS NULL AND mk.occ = 1 THEN 0 ELSE 1 END::smallint,
         CASE WHEN mk.refused <> 0 THEN NULL
              WHEN mk.old_id IS NULL AND mk.occ = 1 THEN mk.mid::text
              ELSE coalesce(mk.old_id, mk.first_mid)::text END,
         mk.txid::text, v_pid[mk.i]
    FROM marked mk
   ORDER BY mk.i;
END;
$$;
