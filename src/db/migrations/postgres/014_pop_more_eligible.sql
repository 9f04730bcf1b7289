-- Ordo schema, PostgreSQL engine, version 14: a wildcard pop tells the broker which other
-- partitions it found eligible (issue #3: the e2e and drain figures, and pops of queues with
-- many partitions).
--
-- Why: a wildcard pop that names no partition reads every partition of the queue with its cursor
-- and oldest waiting message to choose the oldest (0.9 ms for 100 partitions here; it grows with
-- the partitions). Under a backlog every pop is such a pop: the broker only knows which
-- partitions are open while consumers wait (src/broker/broker.h, Known). That pass already sorts
-- the eligible partitions and fetches up to 64 beyond those it may take.
--
-- ordo._pop_choose (version 9's ordo.pop, renamed by version 13): arguments and message rows as
-- before. When the pass over all the queue's partitions (not the preferred ones alone) claimed
-- a partition and stopped with candidates left, the rest of its candidate list follows the
-- messages as kind 5 rows (partition_id, partition_name; every other column NULL but
-- lease_expires_at 0 and window_active false), oldest waiting message first, the preferred
-- partitions left out, at most 64. They were eligible in the pop's snapshot and may no longer be:
-- the broker hands them to its next pops of the queue as preferred partitions
-- (PopResult::more_eligible), whose usual checks decide. ordo.pop passes them through.
-- Everything else is version 9's body unchanged.

CREATE OR REPLACE FUNCTION ordo._pop_choose(p_queue text, p_partition text, p_group text, p_batch int,
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
  v_cur refcursor;
  v_left boolean;
  v_hints int;
  v_pass int := CASE WHEN coalesce(cardinality(p_prefer), 0) = 0 THEN 1 ELSE 0 END;
  v_passes int := CASE WHEN coalesce(p_prefer_only, false) THEN 1 ELSE 2 END;
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

  -- Eligible partitions, oldest waiting message first (ties: pk): first among the preferred
  -- ones (pass 0, when any are named), then among all (pass 1, unless p_prefer_only) while the
  -- pop has room for more partitions and messages. Extra candidates cover partitions that turn out to have nothing
  -- deliverable or are being taken by another pop.
  -- Two texts of one query on purpose: with "p_prefer IS NULL OR p.name = ANY (p_prefer)" the
  -- generic plan could not probe the (queue_pk, name) index for the named partitions alone.
  WHILE v_pass < v_passes LOOP
    IF v_pass = 0 THEN
      OPEN v_cur FOR
        SELECT p.pk, p.id, p.name, (c.partition_pk IS NOT NULL) AS has_cursor
          FROM ordo.partitions p
          LEFT JOIN ordo.cursors c ON c.partition_pk = p.pk AND c.group_name = p_group
          CROSS JOIN LATERAL (
            SELECT m.created_at, m.visible_at FROM ordo.messages m
             WHERE m.partition_pk = p.pk AND m.seq > coalesce(c.position, 0)
               AND (c.partition_pk IS NOT NULL OR m.created_at >= v_start)
             ORDER BY m.seq LIMIT 1) o
         WHERE p.queue_pk = v_qpk AND p.name = ANY (p_prefer)
           AND p.last_seq > coalesce(c.position, 0)
           AND (c.lease_id IS NULL OR c.lease_expires_at <= p_now)
           AND coalesce(c.eligible_at, 0) <= p_now
           AND (c.partition_pk IS NOT NULL OR p.last_at >= v_start)
           AND p.last_at <= v_window
           AND o.visible_at <= p_now AND o.created_at <= v_visible
         ORDER BY o.created_at, p.pk
         LIMIT greatest(p_max_partitions, 0) + 64;
    ELSE
      OPEN v_cur FOR
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
         LIMIT greatest(p_max_partitions, 0) + 64;
    END IF;
    v_left := false;
    LOOP
      FETCH v_cur INTO v_cand;
      EXIT WHEN NOT FOUND;
      v_room := p_batch - v_delivered;
      IF v_claimed >= p_max_partitions OR v_room <= 0 THEN
        v_left := true;  -- v_cand is the first candidate the pop did not look at
        EXIT;
      END IF;
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
    -- What the choice among all partitions found eligible and left: the rest of its candidate
    -- list, in its order, not the preferred ones (kind 5 rows after the messages, at most 64).
    IF v_left AND v_pass = 1 AND v_claimed > 0 THEN
      v_hints := 0;
      kind := 5; lease_expires_at := 0; window_active := false; seq := NULL;
      message_id := NULL; transaction_id := NULL; trace_id := NULL; payload := NULL;
      created_at := NULL; retry_count := NULL;
      LOOP
        IF p_prefer IS NULL OR NOT (v_cand.name = ANY (p_prefer)) THEN
          partition_id := v_cand.id; partition_name := v_cand.name;
          RETURN NEXT;
          v_hints := v_hints + 1;
          EXIT WHEN v_hints >= 64;
        END IF;
        FETCH v_cur INTO v_cand;
        EXIT WHEN NOT FOUND;
      END LOOP;
    END IF;
    CLOSE v_cur;
    EXIT WHEN v_claimed >= p_max_partitions OR v_delivered >= p_batch;
    v_pass := v_pass + 1;
  END LOOP;

  IF v_claimed = 0 THEN
    kind := 1; lease_expires_at := 0; window_active := false;
    partition_id := NULL; partition_name := NULL;
    RETURN NEXT;
  END IF;
  RETURN;
END;
$$;
