-- Ordo schema, PostgreSQL engine, version 4: admission and retention (issue #4 item 5).
-- Mirrors src/db/migrations/sqlite/004_lifecycle.sql and the SQLite engine's lifecycle code
-- (src/broker/sqlite_store.cc, section "lifecycle").
--
--   * partitions.removed_through: every seq at or below it was removed by a retention rule
--     (removal is always a prefix of a partition: created_at is non-decreasing with seq).
--   * A queue's size for maxSize: sum over its partitions of
--     last_seq - greatest(default group's position, removed_through), i.e. messages the default
--     group has neither completed, dead-lettered nor seen expire, and retention has not removed.
--     Read only for queues with maxSize > 0, whose rows push then locks (FOR UPDATE, before the
--     partition rows, in pk order): concurrent pushes into one capped queue are serialised, so
--     the bound holds exactly with any number of connections and instances.
--   * dedup_window: transaction ids of messages removed by retention, kept until
--     dedupWindowSeconds after the original's created_at (producer-chosen ids only).
--   * ordo.push is replaced (one more parameter: the call index of each item, so that a call
--     that would overflow a queue is refused whole while the other calls of the same statement
--     are stored), ordo.pop is replaced (a pop never delivers a message past maxWaitTimeSeconds:
--     it dead-letters it first; a message with a per-message delay holds its lane until it is
--     visible), and ordo.run_retention is new: one bounded batch of every background rule
--     under an advisory lock.

ALTER TABLE ordo.partitions ADD COLUMN removed_through bigint NOT NULL DEFAULT 0;

-- Per-message delay (push item `delayMs`): not delivered before visible_at; 0: at once. A
-- partition is a FIFO lane, so the messages behind a delayed one wait for it too.
ALTER TABLE ordo.messages ADD COLUMN visible_at bigint NOT NULL DEFAULT 0;

CREATE TABLE ordo.dedup_window (
  partition_pk   bigint NOT NULL,
  transaction_id text COLLATE "C" NOT NULL,
  message_id     text COLLATE "C" NOT NULL,
  created_at     bigint NOT NULL,
  PRIMARY KEY (partition_pk, transaction_id)
);
CREATE INDEX dedup_window_by_time ON ordo.dedup_window (created_at);

-- =============================================================================================
-- Internal: messages of (partition, group) waiting longer than the cutoff go to the dead-letter
-- queue with error 'expired' and count as done for the group. The cursor row must be locked by
-- the caller and carry no live lease. Handles at most p_limit messages; returns the new
-- position, or -1 when expired messages remain past the limit (the caller must not deliver
-- from this partition now). p_count receives the number dead-lettered.
-- =============================================================================================
CREATE FUNCTION ordo._expire_waiting(p_queue_pk bigint, p_partition_pk bigint, p_group text,
                                     p_position bigint, p_cutoff bigint, p_limit bigint,
                                     p_now bigint, OUT new_position bigint, OUT expired bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_last bigint;
  v_newest bigint;
  v_scanned bigint;
BEGIN
  expired := 0;
  new_position := p_position;
  -- created_at grows with seq: the expired messages are a prefix of what follows the position.
  SELECT max(x.seq) FILTER (WHERE x.created_at < p_cutoff), max(x.seq), count(*)
    INTO v_last, v_newest, v_scanned
    FROM (SELECT m.seq, m.created_at FROM ordo.messages m
           WHERE m.partition_pk = p_partition_pk AND m.seq > p_position
           ORDER BY m.seq LIMIT p_limit) x;
  IF v_last IS NULL THEN
    RETURN;
  END IF;
  INSERT INTO ordo.dead_letters (id, queue_pk, partition_pk, group_name, message_id, seq,
                                 transaction_id, trace_id, payload, created_at, error,
                                 retry_count, failed_at)
  SELECT gen_random_uuid()::text, p_queue_pk, m.partition_pk, p_group, m.id, m.seq,
         m.transaction_id, m.trace_id, m.payload, m.created_at, 'expired',
         coalesce(f.count, 0), p_now
    FROM ordo.messages m
    LEFT JOIN ordo.failures f
           ON f.partition_pk = m.partition_pk AND f.group_name = p_group AND f.seq = m.seq
   WHERE m.partition_pk = p_partition_pk AND m.seq > p_position AND m.seq <= v_last
     AND NOT EXISTS (SELECT 1 FROM ordo.completions k
                      WHERE k.partition_pk = p_partition_pk AND k.group_name = p_group
                        AND k.seq = m.seq);
  GET DIAGNOSTICS expired = ROW_COUNT;
  DELETE FROM ordo.completions k
   WHERE k.partition_pk = p_partition_pk AND k.group_name = p_group AND k.seq <= v_last;
  new_position := ordo._complete_message(p_partition_pk, p_group, v_last - 1, v_last);
  UPDATE ordo.cursors c SET position = new_position
   WHERE c.partition_pk = p_partition_pk AND c.group_name = p_group;
  IF v_scanned = p_limit AND v_last = v_newest THEN
    -- Every scanned message had expired: more may follow.
    new_position := -1;
  END IF;
END;
$$;

-- =============================================================================================
-- push (replaces version 1): one more parameter, p_calls, the call (HTTP request) each item
-- belongs to (NULL: all one call), and p_delays, each item's delayMs (NULL: none). status 0 queued, 1 duplicate, 2 refused: the item's queue
-- would pass maxSize, 3 refused: another queue of the same call would (message_id NULL for 2
-- and 3; nothing of a refused call is stored).
-- =============================================================================================
DROP FUNCTION ordo.push(text[], text[], text[], text[], text[], text[], bigint);

CREATE FUNCTION ordo.push(p_queues text[], p_partitions text[], p_ids text[], p_txids text[],
                          p_trace_ids text[], p_payloads text[], p_now bigint,
                          p_calls int[], p_delays bigint[])
RETURNS TABLE(idx int, status smallint, message_id text, transaction_id text,
              partition_id text)
LANGUAGE plpgsql
-- Custom plans would be re-planned on every call (the array sizes vary): ~0.8 ms of planning
-- for a one-item push. The generic plans are index nested loops that scale linearly.
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_n int := coalesce(cardinality(p_queues), 0);
  v_ppk bigint[];     -- partition pk per item
  v_pid text[];       -- partition id per item
  v_locks bigint[];   -- distinct partition pks, ascending
  v_found int;
  v_locked int;
  v_attempt int := 0;
  v_status smallint[];
  v_mid text[];
  v_item_q bigint[];     -- queue pk per item
  v_cap_q bigint[];      -- queues with maxSize > 0 among the items, ascending pk
  v_cap_max bigint[];
  v_cap_size bigint[];   -- their size, then plus what accepted calls add
  v_a_call int[];        -- per (call, capped queue): messages the call would add
  v_a_ord int[];
  v_a_n bigint[];
  v_bad_calls int[];     -- calls refused whole
  v_full_call int[];     -- (call, queue) pairs that overflowed
  v_full_q bigint[];
  v_refused smallint[];  -- per item: 0 accepted, 2 its queue is full, 3 another queue of its call
  v_status2 smallint[];
  v_mid2 text[];
  v_fits boolean;
  v_len int;
  v_j int;
  v_k int;
  v_m int;
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

    SELECT array_agg(p.pk ORDER BY u.i), array_agg(p.id::text ORDER BY u.i),
           array_agg(q.pk ORDER BY u.i), count(*)
      INTO v_ppk, v_pid, v_item_q, v_found
      FROM unnest(p_queues, p_partitions) WITH ORDINALITY AS u(qn, pn, i)
      JOIN ordo.queues q ON q.name = u.qn
      JOIN ordo.partitions p ON p.queue_pk = q.pk AND p.name = u.pn;

    IF v_found = v_n THEN
      SELECT array_agg(DISTINCT x ORDER BY x) INTO v_locks FROM unnest(v_ppk) AS x;
      -- Serialises pushes per partition: seq order = commit order.
      SELECT count(*) INTO v_locked FROM (
        SELECT p.pk FROM unnest(v_locks) AS l(pk) JOIN ordo.partitions p ON p.pk = l.pk
         ORDER BY p.pk FOR UPDATE OF p) x;
      EXIT WHEN v_locked = cardinality(v_locks);
    END IF;
    -- A queue or partition vanished under us (concurrent delete_queue): start over.
    IF v_attempt >= 5 THEN
      RAISE EXCEPTION 'ordo.push: a queue was deleted concurrently' USING ERRCODE = '40001';
    END IF;
  END LOOP;

  -- Admission (maxSize): calls in order; a call fits when every capped queue it adds to stays
  -- within maxSize, counting only messages it would store (not transaction ids already stored
  -- or in the dedup window). A call that does not fit is refused whole.
  IF v_cap_q IS NOT NULL THEN
    SELECT array_agg(coalesce(s.n, 0) ORDER BY x.o) INTO v_cap_size
      FROM unnest(v_cap_q) WITH ORDINALITY AS x(qpk, o)
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
              FROM unnest(v_ppk, v_item_q, p_txids, p_calls) AS u(ppk, qpk, txid, c)
              JOIN unnest(v_cap_q) WITH ORDINALITY AS x(qpk, o) ON x.qpk = u.qpk
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
        IF v_cap_size[v_a_ord[v_k]] + v_a_n[v_k] > v_cap_max[v_a_ord[v_k]] THEN
          v_fits := false;
          v_full_call := v_full_call || v_a_call[v_k];
          v_full_q := v_full_q || v_cap_q[v_a_ord[v_k]];
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
        FROM unnest(v_item_q, p_calls) WITH ORDINALITY AS u(qpk, c, i);
    END IF;
  END IF;

  WITH items AS (
    SELECT u.i::int AS i, u.ppk, u.txid, u.mid, u.trace, u.body, u.qn, u.delay
      FROM unnest(v_ppk, p_txids, p_ids, p_trace_ids, p_payloads, p_queues, v_refused, p_delays)
           WITH ORDINALITY AS u(ppk, txid, mid, trace, body, qn, refused, delay, i)
     WHERE coalesce(u.refused, 0) = 0
  ),
  -- A transaction id is a duplicate while its message is stored, and while its entry in the
  -- dedup window (messages removed by retention) is younger than the queue's window.
  marked AS (
    SELECT it.i, it.ppk, it.txid, it.mid, it.trace, it.body, it.qn, it.delay,
           coalesce(e.id, dw.message_id) AS old_id,
           row_number() OVER w AS occ,
           first_value(it.mid) OVER w AS first_mid
      FROM items it
      LEFT JOIN ordo.messages e ON e.partition_pk = it.ppk AND e.transaction_id = it.txid
      LEFT JOIN ordo.dedup_window dw
             ON dw.partition_pk = it.ppk AND dw.transaction_id = it.txid
            AND dw.created_at >= p_now - 1000000 * (
                  SELECT q.dedup_window_s FROM ordo.partitions p
                    JOIN ordo.queues q ON q.pk = p.queue_pk WHERE p.pk = it.ppk)
    WINDOW w AS (PARTITION BY it.ppk, it.txid ORDER BY it.i)
  ),
  fresh AS (
    SELECT mk.i, mk.ppk, mk.txid, mk.mid, mk.trace, mk.body, mk.delay,
           row_number() OVER (PARTITION BY mk.ppk ORDER BY mk.i) AS rn
      FROM marked mk
     WHERE mk.old_id IS NULL AND mk.occ = 1
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
  SELECT array_agg(CASE WHEN mk.old_id IS NULL AND mk.occ = 1 THEN 0 ELSE 1 END::smallint
                   ORDER BY mk.i),
         array_agg(CASE WHEN mk.old_id IS NULL AND mk.occ = 1 THEN mk.mid
                        ELSE coalesce(mk.old_id, mk.first_mid) END ORDER BY mk.i)
    INTO v_status, v_mid
    FROM marked mk;

  -- Refused items (2, 3) answer without a message id; the others keep their outcome's order.
  IF v_refused IS NOT NULL THEN
    v_k := 1;
    FOR v_j IN 1 .. v_n LOOP
      IF v_refused[v_j] = 0 THEN
        v_status2 := v_status2 || v_status[v_k];
        v_mid2 := v_mid2 || v_mid[v_k];
        v_k := v_k + 1;
      ELSE
        v_status2 := v_status2 || v_refused[v_j];
        v_mid2 := v_mid2 || NULL::text;
      END IF;
    END LOOP;
    v_status := v_status2;
    v_mid := v_mid2;
  END IF;

  -- No NOTIFY here: the broker sends it after the commit (src/db/pg/statements.h, kNotify).

  RETURN QUERY
  SELECT u.i::int, u.st, u.mid, u.txid, u.pid
    FROM unnest(v_status, v_mid, p_txids, v_pid) WITH ORDINALITY AS u(st, mid, txid, pid, i)
   ORDER BY u.i;
END;
$$;

-- =============================================================================================
-- pop (replaces version 1): with maxWaitTimeSeconds, messages of the claimed partition that
-- waited longer go to the dead-letter queue ('expired', done for the group) before the batch is
-- read, so no pop delivers one even when the background job has not run yet.
-- =============================================================================================
CREATE OR REPLACE FUNCTION ordo.pop(p_queue text, p_partition text, p_group text, p_batch int,
                         p_max_partitions int, p_auto_ack boolean, p_sub_kind smallint,
                         p_sub_from bigint, p_lease_id text, p_now bigint)
RETURNS TABLE(kind smallint, lease_expires_at bigint, window_active boolean,
              partition_id text, partition_name text, seq bigint, message_id text,
              transaction_id text, trace_id text, payload text, created_at bigint,
              retry_count bigint)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
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
  v_ppk bigint;
  v_pid text;
  v_pname text;
  v_last_at bigint;
  v_pos bigint;
  v_lease text;
  v_lease_exp bigint;
  v_eligible bigint;
  v_count bigint;
  v_room bigint;
  v_delivered bigint := 0;
  v_claimed int := 0;
  v_cand record;
BEGIN
  p_group := coalesce(p_group, '__QUEUE_MODE__');
  IF NOT v_auto AND p_lease_id IS NULL THEN
    RAISE EXCEPTION 'ordo.pop: a lease id is required unless auto_ack' USING ERRCODE = '22023';
  END IF;
  kind := 0; lease_expires_at := 0; window_active := false;

  SELECT q.pk, q.lease_time_s, q.delayed_processing_s, q.window_buffer_s, q.max_wait_time_s
    INTO v_qpk, v_lease_time_s, v_delayed_s, v_window_s, v_max_wait_s
    FROM ordo.queues q WHERE q.name = p_queue;
  IF NOT FOUND THEN
    kind := CASE WHEN p_partition IS NULL THEN 1 ELSE 2 END;
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

  -- ---- named partition ---------------------------------------------------------------------
  IF p_partition IS NOT NULL THEN
    SELECT p.pk, p.id, p.name INTO v_ppk, v_pid, v_pname
      FROM ordo.partitions p WHERE p.queue_pk = v_qpk AND p.name = p_partition;
    IF NOT FOUND THEN
      kind := 2;
      RETURN NEXT;
      RETURN;
    END IF;
    partition_id := v_pid;
    partition_name := v_pname;
    SELECT c.position, c.lease_id, c.lease_expires_at, c.eligible_at
      INTO v_pos, v_lease, v_lease_exp, v_eligible
      FROM ordo.cursors c WHERE c.partition_pk = v_ppk AND c.group_name = p_group
       FOR UPDATE;
    IF NOT FOUND THEN  -- the group's first pop in this partition
      PERFORM ordo._ensure_cursor(v_ppk, p_group, v_start, true);
      SELECT c.position, c.lease_id, c.lease_expires_at, c.eligible_at
        INTO v_pos, v_lease, v_lease_exp, v_eligible
        FROM ordo.cursors c WHERE c.partition_pk = v_ppk AND c.group_name = p_group
         FOR UPDATE;
    END IF;
    IF v_lease IS NOT NULL AND v_lease_exp > p_now THEN
      kind := 3;
      RETURN NEXT;
      RETURN;
    END IF;
    kind := 4;
    IF v_eligible > p_now THEN
      RETURN NEXT;
      RETURN;
    END IF;
    SELECT p.last_at INTO v_last_at FROM ordo.partitions p WHERE p.pk = v_ppk;
    IF v_last_at > v_window THEN
      window_active := true;
      RETURN NEXT;
      RETURN;
    END IF;
    -- maxWaitTimeSeconds: what waited too long is dead-lettered ('expired') before delivery.
    IF v_max_wait_s > 0 THEN
      SELECT x.new_position, x.expired INTO v_pos, v_expired
        FROM ordo._expire_waiting(v_qpk, v_ppk, p_group, v_pos,
                                  p_now - v_max_wait_s * 1000000, 10000, p_now) x;
      IF v_pos < 0 THEN
        RETURN NEXT;  -- kind 4: more expired messages than one pop handles; the job goes on
        RETURN;
      END IF;
    END IF;
    -- The batch, and in the same statement the claim of the cursor: a lease over the batch, or
    -- with auto-ack the position moved to its last seq. No per-row work in PL/pgSQL. The
    -- cursor's completions and failures are read once: these tables are small, often empty,
    -- and a plan that rescans one of them per message pays a file size lookup per rescan.
    RETURN QUERY
      WITH done AS MATERIALIZED (
        SELECT k.seq FROM ordo.completions k
         WHERE k.partition_pk = v_ppk AND k.group_name = p_group AND k.seq > v_pos
      ),
      failed AS MATERIALIZED (
        SELECT f.seq, f.count FROM ordo.failures f
         WHERE f.partition_pk = v_ppk AND f.group_name = p_group AND f.seq > v_pos
      ),
      head AS MATERIALIZED (
        SELECT m.seq, m.id, m.transaction_id, m.trace_id, m.payload, m.created_at,
               coalesce(fl.count, 0) AS rc, m.visible_at
          FROM ordo.messages m
          LEFT JOIN failed fl ON fl.seq = m.seq
         WHERE m.partition_pk = v_ppk AND m.seq > v_pos AND m.created_at <= v_visible
           AND NOT EXISTS (SELECT 1 FROM done d WHERE d.seq = m.seq)
         ORDER BY m.seq
         LIMIT CASE WHEN p_batch < 0 THEN NULL ELSE p_batch END
      ),
      -- A delayed message (delayMs) holds back itself and everything behind it in the lane.
      batch AS (
        SELECT h.seq, h.id, h.transaction_id, h.trace_id, h.payload, h.created_at, h.rc
          FROM head h
         WHERE NOT EXISTS (SELECT 1 FROM head x WHERE x.visible_at > p_now AND x.seq <= h.seq)
      ),
      newest AS (SELECT max(b.seq) AS seq FROM batch b),
      claim AS (
        UPDATE ordo.cursors c
           SET position = CASE WHEN v_auto THEN l.seq ELSE c.position END,
               lease_id = CASE WHEN v_auto THEN NULL ELSE p_lease_id END,
               lease_expires_at = CASE WHEN v_auto THEN 0 ELSE v_expires END,
               lease_last_seq = CASE WHEN v_auto THEN 0 ELSE l.seq END
          FROM newest l
         WHERE l.seq IS NOT NULL AND c.partition_pk = v_ppk AND c.group_name = p_group
      )
      SELECT 0::smallint, v_out_expires, false, v_pid, v_pname, b.seq, b.id::text,
             b.transaction_id::text, b.trace_id, b.payload, b.created_at, b.rc
        FROM batch b
       ORDER BY b.seq;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count = 0 THEN
      RETURN NEXT;  -- kind 4
    ELSIF v_auto THEN  -- the batch is done: the claim moved the position to its last seq
      SELECT c.position INTO v_pos
        FROM ordo.cursors c WHERE c.partition_pk = v_ppk AND c.group_name = p_group;
      DELETE FROM ordo.completions k
       WHERE k.partition_pk = v_ppk AND k.group_name = p_group AND k.seq <= v_pos;
      DELETE FROM ordo.failures f
       WHERE f.partition_pk = v_ppk AND f.group_name = p_group AND f.seq <= v_pos;
    END IF;
    RETURN;
  END IF;

  -- ---- wildcard ----------------------------------------------------------------------------
  -- Eligible partitions, oldest waiting message first (ties: pk). Extra candidates cover
  -- partitions that turn out to have nothing deliverable or are being taken by another pop.
  FOR v_cand IN
    SELECT x.pk, x.id, x.name, x.has_cursor FROM (
      SELECT p.pk, p.id, p.name, (c.partition_pk IS NOT NULL) AS has_cursor,
             (SELECT CASE WHEN m.visible_at > p_now THEN NULL ELSE m.created_at END
                FROM ordo.messages m
               WHERE m.partition_pk = p.pk AND m.seq > coalesce(c.position, 0)
                 AND (c.partition_pk IS NOT NULL OR m.created_at >= v_start)
               ORDER BY m.seq LIMIT 1) AS oldest
        FROM ordo.partitions p
        LEFT JOIN ordo.cursors c ON c.partition_pk = p.pk AND c.group_name = p_group
       WHERE p.queue_pk = v_qpk AND p.last_seq > coalesce(c.position, 0)
         AND (c.lease_id IS NULL OR c.lease_expires_at <= p_now)
         AND coalesce(c.eligible_at, 0) <= p_now
         AND (c.partition_pk IS NOT NULL OR p.last_at >= v_start)
         AND p.last_at <= v_window
    ) x
    WHERE x.oldest IS NOT NULL AND x.oldest <= v_visible
    ORDER BY x.oldest, x.pk
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
    SELECT c.position INTO v_pos
      FROM ordo.cursors c
     WHERE c.partition_pk = v_cand.pk AND c.group_name = p_group
       AND (c.lease_id IS NULL OR c.lease_expires_at <= p_now)
       AND c.eligible_at <= p_now
       FOR UPDATE SKIP LOCKED;
    CONTINUE WHEN NOT FOUND;
    SELECT p.last_at INTO v_last_at FROM ordo.partitions p WHERE p.pk = v_cand.pk;
    CONTINUE WHEN v_last_at > v_window;
    IF v_max_wait_s > 0 THEN
      SELECT x.new_position, x.expired INTO v_pos, v_expired
        FROM ordo._expire_waiting(v_qpk, v_cand.pk, p_group, v_pos,
                                  p_now - v_max_wait_s * 1000000, 10000, p_now) x;
      CONTINUE WHEN v_pos < 0;
    END IF;
    -- The batch, and in the same statement the claim of the cursor: a lease over the batch, or
    -- with auto-ack the position moved to its last seq. No per-row work in PL/pgSQL. The
    -- cursor's completions and failures are read once: these tables are small, often empty,
    -- and a plan that rescans one of them per message pays a file size lookup per rescan.
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
      batch AS (
        SELECT h.seq, h.id, h.transaction_id, h.trace_id, h.payload, h.created_at, h.rc
          FROM head h
         WHERE NOT EXISTS (SELECT 1 FROM head x WHERE x.visible_at > p_now AND x.seq <= h.seq)
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
-- Internal: removes messages (partition, seq <= p_last), a prefix of the partition. Producer-
-- chosen transaction ids still inside the queue's dedup window are kept in dedup_window. Cursors
-- behind the prefix move past it (their completions, failures and a lease wholly inside it go
-- too), so "every seq at or below position is done" keeps holding. Returns the count removed.
-- =============================================================================================
CREATE FUNCTION ordo._remove_prefix(p_partition_pk bigint, p_last bigint, p_dedup_window_s bigint,
                                    p_now bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_n bigint;
  v_pos bigint;
  v_g text;
BEGIN
  WITH del AS (
    DELETE FROM ordo.messages m
     WHERE m.partition_pk = p_partition_pk AND m.seq <= p_last
    RETURNING m.transaction_id, m.id, m.created_at
  ),
  kept AS (
    INSERT INTO ordo.dedup_window (partition_pk, transaction_id, message_id, created_at)
    SELECT p_partition_pk, d.transaction_id, d.id, d.created_at
      FROM del d
     WHERE d.transaction_id <> d.id AND d.created_at >= p_now - p_dedup_window_s * 1000000
    ON CONFLICT (partition_pk, transaction_id)
      DO UPDATE SET message_id = excluded.message_id, created_at = excluded.created_at
  )
  SELECT count(*) INTO v_n FROM del;
  FOR v_g IN
    SELECT c.group_name FROM ordo.cursors c
     WHERE c.partition_pk = p_partition_pk AND c.position < p_last
     ORDER BY c.group_name FOR UPDATE
  LOOP
    DELETE FROM ordo.completions k
     WHERE k.partition_pk = p_partition_pk AND k.group_name = v_g AND k.seq <= p_last;
    v_pos := ordo._complete_message(p_partition_pk, v_g, p_last - 1, p_last);
    UPDATE ordo.cursors c
       SET position = v_pos,
           lease_id = CASE WHEN c.lease_last_seq <= v_pos THEN NULL ELSE c.lease_id END,
           lease_expires_at = CASE WHEN c.lease_last_seq <= v_pos THEN 0
                                   ELSE c.lease_expires_at END,
           lease_last_seq = CASE WHEN c.lease_last_seq <= v_pos THEN 0 ELSE c.lease_last_seq END
     WHERE c.partition_pk = p_partition_pk AND c.group_name = v_g;
  END LOOP;
  UPDATE ordo.partitions p SET removed_through = greatest(p.removed_through, p_last)
   WHERE p.pk = p_partition_pk;
  RETURN v_n;
END;
$$;

-- =============================================================================================
-- run_retention: one bounded batch (about p_limit rows) of the background rules, on one
-- instance at a time (advisory lock; ran = false when another instance holds it):
--   1. retentionSeconds: messages created more than N s ago are removed, done or not.
--   2. completedRetentionSeconds: messages created more than N s ago that every group reading
--      the partition has done (at or below its position) are removed. The groups: every group
--      with a cursor there; the partition is skipped while a group subscribed to the queue, or
--      the default group reading another partition of it, has no cursor there yet, and when no
--      group has read it at all.
--   3. maxWaitTimeSeconds: per (partition, group) without a live lease, messages past the
--      position created more than N s ago go to the dead-letter queue ('expired') and are done
--      for the group (a leased batch is in a consumer's hands; it expires once the lease ends).
--   4. dedup window entries older than their queue's dedupWindowSeconds are pruned.
-- more: work may remain (call again). expired_queues: queues where messages expired.
-- =============================================================================================
CREATE FUNCTION ordo.run_retention(p_now bigint, p_limit bigint)
RETURNS TABLE(ran boolean, removed bigint, expired bigint, pruned bigint, more boolean,
              expired_queues text[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_budget bigint := greatest(coalesce(p_limit, 10000), 1);
  v_took bigint;
  v_removed bigint := 0;
  v_expired bigint := 0;
  v_pruned bigint := 0;
  v_more boolean := false;
  v_queues text[];
  v_p record;
  v_last bigint;
  v_newest bigint;
  v_scanned bigint;
  v_n bigint;
  v_pos bigint;
BEGIN
  IF NOT pg_try_advisory_xact_lock(7216373620962) THEN
    RETURN QUERY SELECT false, 0::bigint, 0::bigint, 0::bigint, false, NULL::text[];
    RETURN;
  END IF;

  -- 1. retentionSeconds
  FOR v_p IN
    SELECT p.pk, q.dedup_window_s, p_now - q.retention_s * 1000000 AS cutoff
      FROM ordo.queues q JOIN ordo.partitions p ON p.queue_pk = q.pk
     WHERE q.retention_s > 0
       AND (SELECT m.created_at FROM ordo.messages m WHERE m.partition_pk = p.pk
             ORDER BY m.seq LIMIT 1) < p_now - q.retention_s * 1000000
     ORDER BY p.pk
  LOOP
    IF v_budget <= 0 THEN
      v_more := true;
      EXIT;
    END IF;
    -- A bounded scan from the oldest: the old messages are a prefix (created_at grows with seq).
    SELECT max(x.seq) FILTER (WHERE x.created_at < v_p.cutoff), max(x.seq), count(*)
      INTO v_last, v_newest, v_scanned
      FROM (SELECT m.seq, m.created_at FROM ordo.messages m WHERE m.partition_pk = v_p.pk
             ORDER BY m.seq LIMIT v_budget) x;
    CONTINUE WHEN v_last IS NULL;
    IF v_scanned = v_budget AND v_last = v_newest THEN
      v_more := true;
    END IF;
    v_n := ordo._remove_prefix(v_p.pk, v_last, v_p.dedup_window_s, p_now);
    v_removed := v_removed + v_n;
    v_budget := v_budget - greatest(v_n, 1);
  END LOOP;

  -- 2. completedRetentionSeconds
  FOR v_p IN
    SELECT z.pk, z.dedup_window_s, z.cutoff, z.done_through FROM (
      SELECT p.pk, q.dedup_window_s, p_now - q.completed_retention_s * 1000000 AS cutoff,
             (SELECT min(c.position) FROM ordo.cursors c WHERE c.partition_pk = p.pk)
               AS done_through,
             p.removed_through
        FROM ordo.queues q JOIN ordo.partitions p ON p.queue_pk = q.pk
       WHERE q.completed_retention_s > 0
         AND NOT EXISTS (
               SELECT 1 FROM ordo.subscriptions s
                WHERE s.queue_pk = q.pk
                  AND NOT EXISTS (SELECT 1 FROM ordo.cursors c
                                   WHERE c.partition_pk = p.pk AND c.group_name = s.group_name))
         AND NOT (EXISTS (SELECT 1 FROM ordo.partitions p2
                            JOIN ordo.cursors c2
                              ON c2.partition_pk = p2.pk AND c2.group_name = '__QUEUE_MODE__'
                           WHERE p2.queue_pk = q.pk)
                  AND NOT EXISTS (SELECT 1 FROM ordo.cursors c
                                   WHERE c.partition_pk = p.pk
                                     AND c.group_name = '__QUEUE_MODE__'))
         AND (SELECT m.created_at FROM ordo.messages m WHERE m.partition_pk = p.pk
               ORDER BY m.seq LIMIT 1) < p_now - q.completed_retention_s * 1000000
    ) z
    WHERE z.done_through > z.removed_through
    ORDER BY z.pk
  LOOP
    IF v_budget <= 0 THEN
      v_more := true;
      EXIT;
    END IF;
    SELECT max(x.seq) FILTER (WHERE x.created_at < v_p.cutoff AND x.seq <= v_p.done_through),
           max(x.seq), count(*)
      INTO v_last, v_newest, v_scanned
      FROM (SELECT m.seq, m.created_at FROM ordo.messages m WHERE m.partition_pk = v_p.pk
             ORDER BY m.seq LIMIT v_budget) x;
    CONTINUE WHEN v_last IS NULL;
    IF v_scanned = v_budget AND v_last = v_newest THEN
      v_more := true;
    END IF;
    v_n := ordo._remove_prefix(v_p.pk, v_last, v_p.dedup_window_s, p_now);
    v_removed := v_removed + v_n;
    v_budget := v_budget - greatest(v_n, 1);
  END LOOP;

  -- 3. maxWaitTimeSeconds
  FOR v_p IN
    SELECT c.partition_pk, c.group_name, q.pk AS qpk, q.name::text AS qname,
           p_now - q.max_wait_time_s * 1000000 AS cutoff
      FROM ordo.queues q JOIN ordo.partitions p ON p.queue_pk = q.pk
      JOIN ordo.cursors c ON c.partition_pk = p.pk
     WHERE q.max_wait_time_s > 0 AND p.last_seq > c.position
       AND (c.lease_id IS NULL OR c.lease_expires_at <= p_now)
       AND (SELECT m.created_at FROM ordo.messages m
             WHERE m.partition_pk = p.pk AND m.seq > c.position
             ORDER BY m.seq LIMIT 1) < p_now - q.max_wait_time_s * 1000000
     ORDER BY c.partition_pk, c.group_name
  LOOP
    IF v_budget <= 0 THEN
      v_more := true;
      EXIT;
    END IF;
    -- A pop holding the cursor right now handles it itself.
    SELECT c.position INTO v_pos FROM ordo.cursors c
     WHERE c.partition_pk = v_p.partition_pk AND c.group_name = v_p.group_name
       AND (c.lease_id IS NULL OR c.lease_expires_at <= p_now)
       FOR UPDATE SKIP LOCKED;
    CONTINUE WHEN NOT FOUND;
    SELECT x.new_position, x.expired INTO v_pos, v_n
      FROM ordo._expire_waiting(v_p.qpk, v_p.partition_pk, v_p.group_name, v_pos, v_p.cutoff,
                                v_budget, p_now) x;
    IF v_n > 0 THEN
      v_expired := v_expired + v_n;
      IF v_queues IS NULL OR NOT (v_p.qname = ANY (v_queues)) THEN
        v_queues := v_queues || v_p.qname;
      END IF;
    END IF;
    IF v_pos < 0 THEN
      v_more := true;
    END IF;
    v_budget := v_budget - greatest(v_n, 1);
  END LOOP;

  -- 4. dedup window entries past their window (or of deleted queues)
  IF v_budget > 0 THEN
    v_took := v_budget;
    WITH old AS (
      SELECT d.partition_pk, d.transaction_id
        FROM ordo.dedup_window d
        LEFT JOIN ordo.partitions p ON p.pk = d.partition_pk
        LEFT JOIN ordo.queues q ON q.pk = p.queue_pk
       WHERE d.created_at < p_now - coalesce((SELECT min(q2.dedup_window_s)
                                                FROM ordo.queues q2), 0) * 1000000
         AND (q.pk IS NULL OR d.created_at < p_now - q.dedup_window_s * 1000000)
       LIMIT v_took
    )
    DELETE FROM ordo.dedup_window d USING old
     WHERE d.partition_pk = old.partition_pk AND d.transaction_id = old.transaction_id;
    GET DIAGNOSTICS v_pruned = ROW_COUNT;
    IF v_pruned >= v_took THEN
      v_more := true;
    END IF;
  ELSE
    v_more := true;
  END IF;

  RETURN QUERY SELECT true, v_removed, v_expired, v_pruned, v_more, v_queues;
END;
$$;
