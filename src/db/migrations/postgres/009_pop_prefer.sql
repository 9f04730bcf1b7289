-- Ordo schema, PostgreSQL engine, version 9: a wildcard pop can be told which partitions to look
-- at first (issue #3, the e2e figure).
--
-- Why: a wildcard pop chose its partition by reading every partition of the queue with its
-- cursor (the partitions with nothing waiting are most of them): at 1,000 msg/s over 100
-- partitions that scan was 0.39 ms of the pop's 0.65 ms, and the pop was most of the database's
-- work per message (docs/benchmarks.md). Most pops are made by a long poll that a push woke for
-- one partition, or while the broker knows which partitions were opened since a pop found
-- nothing (src/broker/broker.cc): the broker now names those partitions.
--
-- ordo.pop: arguments as version 7 plus p_prefer, partition names (NULL or empty: none), and
-- p_prefer_only. A wildcard pop looks among the preferred partitions first, with the same
-- eligibility rules and the same order (oldest waiting message first), through the
-- (queue_pk, name) index; only when that leaves the pop with room for more partitions and
-- messages (always, when none of them yields) does it choose among all the queue's partitions
-- as before, and not at all with p_prefer_only (the broker knows nothing else can be eligible).
-- A pop of a named partition ignores both. The body is version 7's with the choice made in two passes; PostgreSQL
-- cannot add an argument in place, hence the drop (the statement is prepared per connection
-- with the new argument list).

DROP FUNCTION ordo.pop(text, text, text, int, int, boolean, smallint, bigint, text, bigint);

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
    LOOP
      FETCH v_cur INTO v_cand;
      EXIT WHEN NOT FOUND;
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
