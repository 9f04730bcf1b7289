-- Ordo schema, PostgreSQL engine, version 1.
--
-- Mirrors src/db/migrations/sqlite/001_init.sql table for table, and the SQLite engine's
-- operations (src/broker/sqlite_store.cc) function for function: the same conformance suite
-- runs against both engines.
--
-- Layout
--   * Messages are append-only rows keyed by (partition_pk, seq). Per (partition, group) position
--     and lease live in `cursors`, a small row updated in place (fillfactor 50, only the primary
--     key and a partial index on lease_id, so updates that keep lease_id are HOT). `partitions`
--     carries last_seq/last_at, updated by every push (fillfactor 70, those columns un-indexed).
--   * Times are bigint microseconds since the epoch. Every time decision uses the p_now argument,
--     never now(), because the tests drive a fake clock.
--   * Names, ids and transaction ids are `text COLLATE "C"`: byte-wise equality and ordering, as
--     SQLite's BINARY collation, whatever the database's default collation is.
--   * Payloads are `text`, stored and returned verbatim (never jsonb).
--
-- Concurrency (several brokers, several connections, READ COMMITTED)
--   * push: creates missing queues and partitions with INSERT ... ON CONFLICT DO NOTHING (sorted,
--     so two pushes creating the same new partitions cannot deadlock), then locks every partition
--     row it touches with SELECT ... ORDER BY pk FOR UPDATE, then numbers the new messages from
--     last_seq. Sequence order is therefore commit order per partition, and created_at =
--     greatest(p_now, last_at) never decreases with seq.
--   * pop: a named pop locks its cursor row FOR UPDATE (waits); a wildcard pop locks candidate
--     cursors FOR UPDATE SKIP LOCKED and re-checks eligibility on the locked row, so two wildcard
--     consumers never wait for each other and never get the same partition. A cursor row is
--     created under a transaction-scoped advisory lock (two-int4 key space, key1 = 1869767791,
--     key2 = hashtext(partition_pk || '/' || group)): a named pop waits for it, a wildcard pop
--     tries it and skips the partition when it is taken.
--   * ack / extend_lease lock the cursor rows they touch in (partition_pk, group_name) order.
--   * NOTIFY channel `ordo_push`, payload = queue name: sent by the broker after the commit
--     (src/db/pg/statements.h, kNotify), once per queue, for a push that stored at least one
--     message and for an ack that released a lease (its lease_released column); no function
--     here notifies.
--
-- Absent values in function results are NULL (e.g. ack error on success, pop message columns on
-- a non-message row); see each function.

CREATE SCHEMA IF NOT EXISTS ordo;

CREATE TABLE ordo.queues (
  pk                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id                    text COLLATE "C" NOT NULL UNIQUE,
  name                  text COLLATE "C" NOT NULL UNIQUE,
  namespace             text NOT NULL DEFAULT '',
  task                  text NOT NULL DEFAULT '',
  created_at            bigint NOT NULL,
  lease_time_s          bigint NOT NULL DEFAULT 300,
  retry_limit           bigint NOT NULL DEFAULT 3,
  retry_delay_ms        bigint NOT NULL DEFAULT 1000,
  retry_backoff         boolean NOT NULL DEFAULT false,
  retry_delay_max_ms    bigint NOT NULL DEFAULT 60000,
  delayed_processing_s  bigint NOT NULL DEFAULT 0,
  window_buffer_s       bigint NOT NULL DEFAULT 0,
  max_size              bigint NOT NULL DEFAULT 0,
  retention_s           bigint NOT NULL DEFAULT 0,
  completed_retention_s bigint NOT NULL DEFAULT 0,
  max_wait_time_s       bigint NOT NULL DEFAULT 0,
  dedup_window_s        bigint NOT NULL DEFAULT 3600,
  priority              bigint NOT NULL DEFAULT 0,
  encryption_enabled    boolean NOT NULL DEFAULT false
);

CREATE TABLE ordo.partitions (
  pk         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id         text COLLATE "C" NOT NULL UNIQUE,
  queue_pk   bigint NOT NULL,
  name       text COLLATE "C" NOT NULL,
  created_at bigint NOT NULL,
  last_seq   bigint NOT NULL DEFAULT 0,  -- sequence of the newest message
  last_at    bigint NOT NULL DEFAULT 0,  -- created_at of the newest message
  UNIQUE (queue_pk, name)
) WITH (fillfactor = 70);

-- created_at is non-decreasing with seq inside a partition (push enforces it), so "messages
-- created before T" is always a prefix of the partition.
CREATE TABLE ordo.messages (
  partition_pk   bigint NOT NULL,
  seq            bigint NOT NULL,
  created_at     bigint NOT NULL,
  id             text COLLATE "C" NOT NULL,
  transaction_id text COLLATE "C" NOT NULL,
  trace_id       text,
  payload        text NOT NULL,
  PRIMARY KEY (partition_pk, seq)
);
CREATE UNIQUE INDEX messages_by_txid ON ordo.messages (partition_pk, transaction_id);

-- Where a group stands in a partition: every seq <= position is done for the group.
CREATE TABLE ordo.cursors (
  partition_pk     bigint NOT NULL,
  group_name       text COLLATE "C" NOT NULL,
  position         bigint NOT NULL DEFAULT 0,
  lease_id         text COLLATE "C",
  lease_expires_at bigint NOT NULL DEFAULT 0,
  lease_last_seq   bigint NOT NULL DEFAULT 0,  -- newest seq delivered under the lease
  eligible_at      bigint NOT NULL DEFAULT 0,  -- retry back-off: not before this instant
  PRIMARY KEY (partition_pk, group_name)
) WITH (fillfactor = 50);
CREATE INDEX cursors_by_lease ON ordo.cursors (lease_id) WHERE lease_id IS NOT NULL;

-- Messages completed past a group's position (acked out of order inside a batch).
CREATE TABLE ordo.completions (
  partition_pk bigint NOT NULL,
  group_name   text COLLATE "C" NOT NULL,
  seq          bigint NOT NULL,
  PRIMARY KEY (partition_pk, group_name, seq)
);

-- Failure counts of messages not yet done for a group.
CREATE TABLE ordo.failures (
  partition_pk bigint NOT NULL,
  group_name   text COLLATE "C" NOT NULL,
  seq          bigint NOT NULL,
  count        bigint NOT NULL,
  PRIMARY KEY (partition_pk, group_name, seq)
);

-- Where a named group starts reading a queue, fixed at its first pop.
CREATE TABLE ordo.subscriptions (
  queue_pk   bigint NOT NULL,
  group_name text COLLATE "C" NOT NULL,
  start_from bigint NOT NULL,  -- deliver messages created at or after this instant
  created_at bigint NOT NULL,
  PRIMARY KEY (queue_pk, group_name)
);

CREATE TABLE ordo.dead_letters (
  pk             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id             text COLLATE "C" NOT NULL UNIQUE,
  queue_pk       bigint NOT NULL,
  partition_pk   bigint NOT NULL,
  group_name     text COLLATE "C" NOT NULL,
  message_id     text COLLATE "C" NOT NULL,
  seq            bigint NOT NULL,
  transaction_id text COLLATE "C" NOT NULL,
  trace_id       text,
  payload        text NOT NULL,
  created_at     bigint NOT NULL,
  error          text NOT NULL DEFAULT '',
  retry_count    bigint NOT NULL DEFAULT 0,
  failed_at      bigint NOT NULL
);
CREATE INDEX dead_letters_by_partition ON ordo.dead_letters (partition_pk, group_name);
CREATE INDEX dead_letters_by_queue ON ordo.dead_letters (queue_pk);

-- =============================================================================================
-- Internal helpers (not part of the engine's interface).
-- =============================================================================================

-- Where `p_group` starts in every partition of the queue it has not met yet: messages created at
-- or after the returned instant. Fixed at the group's first pop (subscriptions row). The default
-- group always reads everything. p_kind: 0 all, 1 new, 2 timestamp (p_from).
CREATE FUNCTION ordo._group_start(p_queue_pk bigint, p_group text, p_kind smallint,
                                  p_from bigint, p_now bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_from bigint;
BEGIN
  IF p_group = '__QUEUE_MODE__' THEN
    RETURN 0;
  END IF;
  SELECT s.start_from INTO v_from
    FROM ordo.subscriptions s WHERE s.queue_pk = p_queue_pk AND s.group_name = p_group;
  IF FOUND THEN
    RETURN v_from;
  END IF;
  v_from := CASE p_kind WHEN 1 THEN p_now + 1 WHEN 2 THEN coalesce(p_from, 0) ELSE 0 END;
  INSERT INTO ordo.subscriptions (queue_pk, group_name, start_from, created_at)
    VALUES (p_queue_pk, p_group, v_from, p_now)
    ON CONFLICT (queue_pk, group_name) DO NOTHING;
  -- A concurrent first pop may have fixed it first: its value wins.
  SELECT s.start_from INTO v_from
    FROM ordo.subscriptions s WHERE s.queue_pk = p_queue_pk AND s.group_name = p_group;
  RETURN v_from;
END;
$$;

-- Makes sure the cursor of (partition, group) exists. A new cursor starts past every message
-- created before p_start (0: at the beginning). p_wait false: returns false instead of waiting
-- when another transaction is creating the same cursor right now.
CREATE FUNCTION ordo._ensure_cursor(p_partition_pk bigint, p_group text, p_start bigint,
                                    p_wait boolean)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  v_key int := hashtext(p_partition_pk::text || '/' || p_group);
  v_pos bigint := 0;
BEGIN
  IF EXISTS (SELECT 1 FROM ordo.cursors c
              WHERE c.partition_pk = p_partition_pk AND c.group_name = p_group) THEN
    RETURN true;
  END IF;
  IF p_wait THEN
    PERFORM pg_advisory_xact_lock(1869767791, v_key);
  ELSIF NOT pg_try_advisory_xact_lock(1869767791, v_key) THEN
    RETURN false;
  END IF;
  IF p_start > 0 THEN
    SELECT coalesce(max(m.seq), 0) INTO v_pos
      FROM ordo.messages m WHERE m.partition_pk = p_partition_pk AND m.created_at < p_start;
  END IF;
  INSERT INTO ordo.cursors (partition_pk, group_name, position)
    VALUES (p_partition_pk, p_group, v_pos)
    ON CONFLICT (partition_pk, group_name) DO NOTHING;
  RETURN true;
END;
$$;

-- `p_seq` is now done for the group: moves the position over the completed run at its head
-- (SQLite CompleteMessage). Returns the new position; the caller saves the cursor.
CREATE FUNCTION ordo._complete_message(p_partition_pk bigint, p_group text, p_position bigint,
                                       p_seq bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_pos bigint := p_position;
  v_any boolean := false;
  v_s bigint;
BEGIN
  IF p_seq = v_pos + 1 THEN
    v_pos := p_seq;
  ELSE
    INSERT INTO ordo.completions (partition_pk, group_name, seq)
      VALUES (p_partition_pk, p_group, p_seq)
      ON CONFLICT (partition_pk, group_name, seq) DO NOTHING;
  END IF;
  FOR v_s IN
    SELECT k.seq FROM ordo.completions k
     WHERE k.partition_pk = p_partition_pk AND k.group_name = p_group AND k.seq > v_pos
     ORDER BY k.seq
  LOOP
    v_any := true;
    EXIT WHEN v_s <> v_pos + 1;
    v_pos := v_s;
  END LOOP;
  IF v_any THEN
    DELETE FROM ordo.completions k
     WHERE k.partition_pk = p_partition_pk AND k.group_name = p_group AND k.seq <= v_pos;
  END IF;
  DELETE FROM ordo.failures f
   WHERE f.partition_pk = p_partition_pk AND f.group_name = p_group AND f.seq <= v_pos;
  RETURN v_pos;
END;
$$;

-- Copies message (partition, seq) to the dead-letter queue for the group.
CREATE FUNCTION ordo._to_dead_letter(p_queue_pk bigint, p_partition_pk bigint, p_group text,
                                     p_seq bigint, p_error text, p_retry_count bigint,
                                     p_now bigint)
RETURNS void
LANGUAGE sql AS $$
  INSERT INTO ordo.dead_letters (id, queue_pk, partition_pk, group_name, message_id, seq,
                                 transaction_id, trace_id, payload, created_at, error,
                                 retry_count, failed_at)
  SELECT gen_random_uuid()::text, p_queue_pk, m.partition_pk, p_group, m.id, m.seq,
         m.transaction_id, m.trace_id, m.payload, m.created_at, coalesce(p_error, ''),
         p_retry_count, p_now
    FROM ordo.messages m
   WHERE m.partition_pk = p_partition_pk AND m.seq = p_seq;
$$;

-- =============================================================================================
-- 1. configure: creates the queue (and its Default partition) if needed; NULL = leave unchanged.
-- =============================================================================================
CREATE FUNCTION ordo.configure(
  p_queue text, p_now bigint, p_namespace text, p_task text, p_lease_time_s bigint,
  p_retry_limit bigint, p_retry_delay_ms bigint, p_retry_backoff boolean,
  p_retry_delay_max_ms bigint, p_delayed_processing_s bigint, p_window_buffer_s bigint,
  p_max_size bigint, p_retention_s bigint, p_completed_retention_s bigint,
  p_max_wait_time_s bigint, p_dedup_window_s bigint, p_priority bigint,
  p_encryption_enabled boolean)
RETURNS TABLE(id text, name text, namespace text, task text, created_at bigint,
              lease_time_s bigint, retry_limit bigint, retry_delay_ms bigint,
              retry_backoff boolean, retry_delay_max_ms bigint, delayed_processing_s bigint,
              window_buffer_s bigint, max_size bigint, retention_s bigint,
              completed_retention_s bigint, max_wait_time_s bigint, dedup_window_s bigint,
              priority bigint, encryption_enabled boolean, default_partition_id text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_qpk bigint;
  v_attempt int := 0;
BEGIN
  LOOP
    v_attempt := v_attempt + 1;
    SELECT q.pk INTO v_qpk FROM ordo.queues q WHERE q.name = p_queue;
    IF NOT FOUND THEN
      INSERT INTO ordo.queues (id, name, created_at)
        VALUES (gen_random_uuid()::text, p_queue, p_now)
        ON CONFLICT (name) DO NOTHING;
      SELECT q.pk INTO v_qpk FROM ordo.queues q WHERE q.name = p_queue;
    END IF;
    IF v_qpk IS NOT NULL THEN
      -- Locks the queue row: a concurrent delete_queue either finished before or waits.
      UPDATE ordo.queues q SET
        namespace             = coalesce(p_namespace, q.namespace),
        task                  = coalesce(p_task, q.task),
        lease_time_s          = coalesce(p_lease_time_s, q.lease_time_s),
        retry_limit           = coalesce(p_retry_limit, q.retry_limit),
        retry_delay_ms        = coalesce(p_retry_delay_ms, q.retry_delay_ms),
        retry_backoff         = coalesce(p_retry_backoff, q.retry_backoff),
        retry_delay_max_ms    = coalesce(p_retry_delay_max_ms, q.retry_delay_max_ms),
        delayed_processing_s  = coalesce(p_delayed_processing_s, q.delayed_processing_s),
        window_buffer_s       = coalesce(p_window_buffer_s, q.window_buffer_s),
        max_size              = coalesce(p_max_size, q.max_size),
        retention_s           = coalesce(p_retention_s, q.retention_s),
        completed_retention_s = coalesce(p_completed_retention_s, q.completed_retention_s),
        max_wait_time_s       = coalesce(p_max_wait_time_s, q.max_wait_time_s),
        dedup_window_s        = coalesce(p_dedup_window_s, q.dedup_window_s),
        priority              = coalesce(p_priority, q.priority),
        encryption_enabled    = coalesce(p_encryption_enabled, q.encryption_enabled)
      WHERE q.pk = v_qpk;
      EXIT WHEN FOUND;
    END IF;
    IF v_attempt >= 5 THEN
      RAISE EXCEPTION 'queue % was deleted concurrently', p_queue USING ERRCODE = '40001';
    END IF;
  END LOOP;

  IF NOT EXISTS (SELECT 1 FROM ordo.partitions p
                  WHERE p.queue_pk = v_qpk AND p.name = 'Default') THEN
    INSERT INTO ordo.partitions (id, queue_pk, name, created_at)
      VALUES (gen_random_uuid()::text, v_qpk, 'Default', p_now)
      ON CONFLICT (queue_pk, name) DO NOTHING;
  END IF;

  RETURN QUERY
  SELECT q.id::text, q.name::text, q.namespace, q.task, q.created_at, q.lease_time_s,
         q.retry_limit, q.retry_delay_ms, q.retry_backoff, q.retry_delay_max_ms,
         q.delayed_processing_s, q.window_buffer_s, q.max_size, q.retention_s,
         q.completed_retention_s, q.max_wait_time_s, q.dedup_window_s, q.priority,
         q.encryption_enabled,
         (SELECT p.id::text FROM ordo.partitions p
           WHERE p.queue_pk = q.pk AND p.name = 'Default')
    FROM ordo.queues q
   WHERE q.pk = v_qpk;
END;
$$;

-- =============================================================================================
-- 2. push: parallel arrays, item idx is 1-based. status 0 queued, 1 duplicate (message_id = the
--    original's id, possibly an earlier item of the same call). One row per item, in idx order.
-- =============================================================================================
CREATE FUNCTION ordo.push(p_queues text[], p_partitions text[], p_ids text[], p_txids text[],
                          p_trace_ids text[], p_payloads text[], p_now bigint)
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
BEGIN
  IF v_n = 0 THEN
    RETURN;
  END IF;
  IF coalesce(cardinality(p_partitions), 0) <> v_n OR coalesce(cardinality(p_ids), 0) <> v_n
     OR coalesce(cardinality(p_txids), 0) <> v_n OR coalesce(cardinality(p_payloads), 0) <> v_n
     OR (p_trace_ids IS NOT NULL AND cardinality(p_trace_ids) <> v_n) THEN
    RAISE EXCEPTION 'ordo.push: the item arrays differ in length' USING ERRCODE = '22023';
  END IF;

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

    SELECT array_agg(p.pk ORDER BY u.i), array_agg(p.id::text ORDER BY u.i), count(*)
      INTO v_ppk, v_pid, v_found
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

  WITH items AS (
    SELECT u.i::int AS i, u.ppk, u.txid, u.mid, u.trace, u.body, u.qn
      FROM unnest(v_ppk, p_txids, p_ids, p_trace_ids, p_payloads, p_queues)
           WITH ORDINALITY AS u(ppk, txid, mid, trace, body, qn, i)
  ),
  marked AS (
    SELECT it.i, it.ppk, it.txid, it.mid, it.trace, it.body, it.qn,
           e.id AS old_id,
           row_number() OVER w AS occ,
           first_value(it.mid) OVER w AS first_mid
      FROM items it
      LEFT JOIN ordo.messages e ON e.partition_pk = it.ppk AND e.transaction_id = it.txid
    WINDOW w AS (PARTITION BY it.ppk, it.txid ORDER BY it.i)
  ),
  fresh AS (
    SELECT mk.i, mk.ppk, mk.txid, mk.mid, mk.trace, mk.body,
           row_number() OVER (PARTITION BY mk.ppk ORDER BY mk.i) AS rn
      FROM marked mk
     WHERE mk.old_id IS NULL AND mk.occ = 1
  ),
  -- Joins go to the (locked, unchanging) partition rows, never CTE to CTE: CTE scans have no
  -- estimates and no index, and a nested loop over two of them is quadratic.
  numbered AS (
    SELECT f.ppk, p.last_seq + f.rn AS seq, greatest(p_now, p.last_at) AS at, f.mid, f.txid,
           f.trace, f.body
      FROM fresh f JOIN ordo.partitions p ON p.pk = f.ppk
  ),
  ins AS (
    INSERT INTO ordo.messages (partition_pk, seq, created_at, id, transaction_id, trace_id,
                               payload)
    SELECT n.ppk, n.seq, n.at, n.mid, n.txid, n.trace, n.body
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

  -- No NOTIFY here: the broker sends it after the commit (src/db/pg/statements.h, kNotify).

  RETURN QUERY
  SELECT u.i::int, u.st, u.mid, u.txid, u.pid
    FROM unnest(v_status, v_mid, p_txids, v_pid) WITH ORDINALITY AS u(st, mid, txid, pid, i)
   ORDER BY u.i;
END;
$$;

-- =============================================================================================
-- 3. pop. kind 0 messages (one row per message, in delivery order), 1 no partition, 2 partition
--    not found, 3 lease held, 4 empty (one row, message columns NULL). lease_expires_at is 0 with
--    auto-ack and on non-message rows.
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
AS $$
#variable_conflict use_column
DECLARE
  v_auto boolean := coalesce(p_auto_ack, false);
  v_qpk bigint;
  v_lease_time_s bigint;
  v_delayed_s bigint;
  v_window_s bigint;
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

  SELECT q.pk, q.lease_time_s, q.delayed_processing_s, q.window_buffer_s
    INTO v_qpk, v_lease_time_s, v_delayed_s, v_window_s
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
      batch AS (
        SELECT m.seq, m.id, m.transaction_id, m.trace_id, m.payload, m.created_at,
               coalesce(fl.count, 0) AS rc
          FROM ordo.messages m
          LEFT JOIN failed fl ON fl.seq = m.seq
         WHERE m.partition_pk = v_ppk AND m.seq > v_pos AND m.created_at <= v_visible
           AND NOT EXISTS (SELECT 1 FROM done d WHERE d.seq = m.seq)
         ORDER BY m.seq
         LIMIT CASE WHEN p_batch < 0 THEN NULL ELSE p_batch END
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
             (SELECT m.created_at FROM ordo.messages m
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
      batch AS (
        SELECT m.seq, m.id, m.transaction_id, m.trace_id, m.payload, m.created_at,
               coalesce(fl.count, 0) AS rc
          FROM ordo.messages m
          LEFT JOIN failed fl ON fl.seq = m.seq
         WHERE m.partition_pk = v_cand.pk AND m.seq > v_pos AND m.created_at <= v_visible
           AND NOT EXISTS (SELECT 1 FROM done d WHERE d.seq = m.seq)
         ORDER BY m.seq
         LIMIT v_room
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
-- 4. ack: items in idx order, each as SQLite's AckOne. status 0 completed, 1 failed, 2 dlq,
--    3 retry. error NULL on success; queue/partition NULL when the partition is unknown.
--    A call whose items are all "completed" (the drain path: a consumer acks its whole batch)
--    takes a set-based path with the same results and effects as the per-item loop; any other
--    call runs the loop.
-- =============================================================================================
CREATE FUNCTION ordo.ack(p_txids text[], p_partition_ids text[], p_lease_ids text[],
                         p_statuses smallint[], p_groups text[], p_errors text[], p_now bigint)
RETURNS TABLE(idx int, success boolean, error text, queue text, partition text,
              lease_released boolean, dlq boolean)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_n int := coalesce(cardinality(p_txids), 0);
  v_i int;
  v_group text;
  v_ppk bigint;
  v_qpk bigint;
  v_retry_limit bigint;
  v_delay_ms bigint;
  v_backoff boolean;
  v_delay_max_ms bigint;
  v_seq bigint;
  v_found boolean;
  v_pos bigint;
  v_lease text;
  v_lease_exp bigint;
  v_lease_last bigint;
  v_eligible bigint;
  v_ok boolean;
  v_failures bigint;
  v_k bigint;
  v_ok_a boolean[];    -- set-based path: per-item results, in idx order
  v_err_a text[];
  v_queue_a text[];
  v_part_a text[];
  v_rel_a boolean[];
  v_c_ppk bigint[];    -- set-based path: cursors whose position moves
  v_c_g text[];
  v_c_pos bigint[];
  v_c_new bigint[];
  v_c_rel boolean[];
  v_had_k boolean;
  v_k_ppk bigint[];    -- set-based path: new completions
  v_k_g text[];
  v_k_seq bigint[];
  v_l_ppk bigint[];    -- locked cursors with a live lease
  v_l_g text[];
  v_l_pos bigint[];
BEGIN
  IF v_n = 0 THEN
    RETURN;
  END IF;
  -- Lock every cursor this call may change, in key order (no deadlock with other acks). Its own
  -- statement: the statements below take their snapshots after every lock wait, so they see
  -- what the previous holders committed (completions, failures, cursor state).
  -- Also keeps the cursors with a live lease, for the set-based path.
  SELECT array_agg(l.partition_pk) FILTER (WHERE l.live),
         array_agg(l.group_name) FILTER (WHERE l.live),
         array_agg(l.position) FILTER (WHERE l.live)
    INTO v_l_ppk, v_l_g, v_l_pos
    FROM (SELECT c.partition_pk, c.group_name, c.position,
                 c.lease_id IS NOT NULL AND c.lease_expires_at > p_now AS live
            FROM ordo.cursors c
           WHERE (c.partition_pk, c.group_name) IN (
                   SELECT p.pk, d.g
                     FROM (SELECT DISTINCT u.pid, coalesce(u.g, '__QUEUE_MODE__') AS g
                             FROM unnest(p_partition_ids, p_groups) AS u(pid, g)) d
                     JOIN ordo.partitions p ON p.id = d.pid)
           ORDER BY c.partition_pk, c.group_name
             FOR UPDATE) l;

  -- ---- set-based path: every item "completed" ----------------------------------------------
  -- Equivalent to the loop below because a completion only ever moves a cursor forward:
  --   * An item is accepted iff, against the cursor as locked above, its message exists, the
  --     lease is live and is the item's lease, position < seq <= lease_last_seq, seq is not in
  --     completions, and no earlier item of the call was accepted for the same (cursor, seq)
  --     (the loop refuses that one as already completed). A cursor's lease only ends once
  --     position >= lease_last_seq, i.e. once every seq an item could still be accepted for is
  --     done, so no verdict depends on the items before it.
  --   * The new position is the end of the contiguous run position+1, position+2, ... over
  --     (completions past position) + (accepted seqs); accepted seqs past it go to completions,
  --     and completions and failures up to it are deleted (none exist at or below the old
  --     position: every move of the position deletes those up to the new one).
  --   * The lease ends iff new position >= lease_last_seq; the loop releases it at the item that
  --     completes the last missing seq of (position, lease_last_seq], which is the cursor's last
  --     accepted item (every accepted seq lies in that range and is not yet completed).
  --   * Each cursor row is updated once (not at all when nothing moved).
  IF array_lower(p_txids, 1) = 1
     AND coalesce(array_lower(p_partition_ids, 1), 1) = 1
     AND coalesce(array_lower(p_lease_ids, 1), 1) = 1
     AND coalesce(array_lower(p_groups, 1), 1) = 1
     AND array_lower(p_statuses, 1) = 1 AND cardinality(p_statuses) >= v_n
     AND coalesce(0 = ALL (p_statuses[1:v_n]), false) THEN
    -- One read-only statement decides everything; a few set statements write.
    -- Stream: the items, plus the completions past the position of every live lease (i NULL),
    -- sorted per cursor by (seq, i NULLS FIRST). "done" rows are candidates and completions;
    -- prev is the greatest done seq before the row. A candidate is accepted iff prev < seq
    -- (no completion and no earlier candidate has its seq). The run position+1, ... ends
    -- before the first done row with seq > prev + 1 (prev of the first: position).
    SELECT array_agg(z.acc ORDER BY z.i) FILTER (WHERE z.i IS NOT NULL),
           array_agg(CASE WHEN z.seq IS NULL THEN 'Message not found'
                          WHEN NOT z.acc THEN 'Invalid or expired lease' END ORDER BY z.i)
             FILTER (WHERE z.i IS NOT NULL),
           array_agg(z.qname ORDER BY z.i) FILTER (WHERE z.i IS NOT NULL),
           array_agg(z.pname ORDER BY z.i) FILTER (WHERE z.i IS NOT NULL),
           array_agg(z.rel ORDER BY z.i) FILTER (WHERE z.i IS NOT NULL),
           -- cursors that move, from the row of their last accepted item
           array_agg(z.ppk) FILTER (WHERE z.i = z.last_i AND z.new_pos > z.pos),
           array_agg(z.g) FILTER (WHERE z.i = z.last_i AND z.new_pos > z.pos),
           array_agg(z.pos) FILTER (WHERE z.i = z.last_i AND z.new_pos > z.pos),
           array_agg(z.new_pos) FILTER (WHERE z.i = z.last_i AND z.new_pos > z.pos),
           array_agg(z.new_pos >= z.lls) FILTER (WHERE z.i = z.last_i AND z.new_pos > z.pos),
           bool_or(z.i IS NULL),
           -- accepted seqs past the new position go to completions
           array_agg(z.ppk) FILTER (WHERE z.acc AND z.seq > z.new_pos),
           array_agg(z.g) FILTER (WHERE z.acc AND z.seq > z.new_pos),
           array_agg(z.seq) FILTER (WHERE z.acc AND z.seq > z.new_pos)
      INTO v_ok_a, v_err_a, v_queue_a, v_part_a, v_rel_a,
           v_c_ppk, v_c_g, v_c_pos, v_c_new, v_c_rel, v_had_k, v_k_ppk, v_k_g, v_k_seq
      FROM (
        SELECT y.i, y.ppk, y.g, y.seq, y.pos, y.lls, y.qname, y.pname, y.acc, y.last_i,
               y.new_pos, coalesce(y.acc AND y.i = y.last_i AND y.new_pos >= y.lls, false) AS rel
          FROM (
            SELECT x.i, x.ppk, x.g, x.seq, x.pos, x.lls, x.qname, x.pname, x.acc,
                   max(x.i) FILTER (WHERE x.acc) OVER cur AS last_i,
                   coalesce(min(coalesce(x.prev, x.pos)) FILTER (WHERE x.gap) OVER cur,
                            max(x.seq) FILTER (WHERE x.done) OVER cur) AS new_pos
              FROM (
                SELECT w.i, w.ppk, w.g, w.seq, w.pos, w.lls, w.qname, w.pname, w.done, w.prev,
                       w.done AND w.i IS NOT NULL AND coalesce(w.prev < w.seq, true) AS acc,
                       w.done AND w.seq > coalesce(w.prev, w.pos) + 1 AS gap
                  FROM (
                    SELECT s.i, s.ppk, s.g, s.seq, s.pos, s.lls, s.qname, s.pname, s.done,
                           max(s.seq) FILTER (WHERE s.done)
                             OVER (PARTITION BY s.ppk, s.g ORDER BY s.seq, s.i NULLS FIRST
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev
                      FROM (
                        SELECT u.i::int AS i, p.pk AS ppk, u.g, m.seq, c.position AS pos,
                               c.lease_last_seq AS lls, q.name::text AS qname,
                               p.name::text AS pname,
                               coalesce(c.lease_id = u.lease AND c.lease_expires_at > p_now
                                        AND m.seq > c.position AND m.seq <= c.lease_last_seq,
                                        false) AS done
                          FROM (SELECT t.i, t.txid, t.pid, t.lease,
                                       coalesce(t.g, '__QUEUE_MODE__') AS g
                                  FROM unnest(p_txids, p_partition_ids, p_lease_ids, p_groups)
                                       WITH ORDINALITY AS t(txid, pid, lease, g, i)
                                 WHERE t.i <= v_n) u
                          LEFT JOIN (ordo.partitions p JOIN ordo.queues q ON q.pk = p.queue_pk)
                                 ON p.id = u.pid
                          LEFT JOIN ordo.messages m
                                 ON m.partition_pk = p.pk AND m.transaction_id = u.txid
                          LEFT JOIN ordo.cursors c
                                 ON c.partition_pk = p.pk AND c.group_name = u.g
                        UNION ALL
                        SELECT NULL, l.ppk, l.g, k.seq, l.pos, NULL, NULL, NULL, true
                          FROM unnest(v_l_ppk, v_l_g, v_l_pos) AS l(ppk, g, pos)
                          JOIN ordo.completions k
                            ON k.partition_pk = l.ppk AND k.group_name = l.g AND k.seq > l.pos
                      ) s
                  ) w
              ) x
            WINDOW cur AS (PARTITION BY x.ppk, x.g)
          ) y
      ) z;

    IF v_k_seq IS NOT NULL THEN
      INSERT INTO ordo.completions (partition_pk, group_name, seq)
      SELECT x.ppk, x.g, x.seq FROM unnest(v_k_ppk, v_k_g, v_k_seq) AS x(ppk, g, seq)
       ORDER BY x.ppk, x.g, x.seq
      ON CONFLICT (partition_pk, group_name, seq) DO NOTHING;
    END IF;
    IF v_c_ppk IS NOT NULL THEN
      IF v_had_k THEN
        DELETE FROM ordo.completions k
         USING unnest(v_c_ppk, v_c_g, v_c_pos, v_c_new) AS x(ppk, g, pos, new_pos)
         WHERE k.partition_pk = x.ppk AND k.group_name = x.g
           AND k.seq > x.pos AND k.seq <= x.new_pos;
      END IF;
      DELETE FROM ordo.failures f
       USING unnest(v_c_ppk, v_c_g, v_c_pos, v_c_new) AS x(ppk, g, pos, new_pos)
       WHERE f.partition_pk = x.ppk AND f.group_name = x.g
         AND f.seq > x.pos AND f.seq <= x.new_pos;
      UPDATE ordo.cursors c
         SET position = x.new_pos,
             lease_id = CASE WHEN x.rel THEN NULL ELSE c.lease_id END,
             lease_expires_at = CASE WHEN x.rel THEN 0 ELSE c.lease_expires_at END,
             lease_last_seq = CASE WHEN x.rel THEN 0 ELSE c.lease_last_seq END
        FROM unnest(v_c_ppk, v_c_g, v_c_new, v_c_rel) AS x(ppk, g, new_pos, rel)
       WHERE c.partition_pk = x.ppk AND c.group_name = x.g;
    END IF;

    RETURN QUERY
      SELECT a.i::int, a.ok, a.err, a.qn, a.pn, a.rel, false
        FROM unnest(v_ok_a, v_err_a, v_queue_a, v_part_a, v_rel_a)
             WITH ORDINALITY AS a(ok, err, qn, pn, rel, i)
       ORDER BY a.i;
    RETURN;
  END IF;

  -- ---- per-item path -------------------------------------------------------------------------

  FOR v_i IN 1 .. v_n LOOP
    idx := v_i; success := false; error := NULL; queue := NULL; partition := NULL;
    lease_released := false; dlq := false;
    v_group := coalesce(p_groups[v_i], '__QUEUE_MODE__');

    SELECT p.pk, p.name, q.pk, q.name, q.retry_limit, q.retry_delay_ms, q.retry_backoff,
           q.retry_delay_max_ms
      INTO v_ppk, partition, v_qpk, queue, v_retry_limit, v_delay_ms, v_backoff,
           v_delay_max_ms
      FROM ordo.partitions p JOIN ordo.queues q ON q.pk = p.queue_pk
     WHERE p.id = p_partition_ids[v_i];
    IF NOT FOUND THEN
      queue := NULL; partition := NULL;
      error := 'Message not found';
      RETURN NEXT;
      CONTINUE;
    END IF;

    SELECT m.seq INTO v_seq
      FROM ordo.messages m
     WHERE m.partition_pk = v_ppk AND m.transaction_id = p_txids[v_i];
    IF NOT FOUND THEN
      error := 'Message not found';
      RETURN NEXT;
      CONTINUE;
    END IF;

    SELECT c.position, c.lease_id, c.lease_expires_at, c.lease_last_seq, c.eligible_at
      INTO v_pos, v_lease, v_lease_exp, v_lease_last, v_eligible
      FROM ordo.cursors c WHERE c.partition_pk = v_ppk AND c.group_name = v_group
       FOR UPDATE;
    v_found := FOUND;
    v_ok := v_found AND v_lease IS NOT NULL AND v_lease_exp > p_now
            AND v_lease = p_lease_ids[v_i] AND v_seq > v_pos AND v_seq <= v_lease_last;
    IF v_ok THEN
      v_ok := NOT EXISTS (SELECT 1 FROM ordo.completions k
                           WHERE k.partition_pk = v_ppk AND k.group_name = v_group
                             AND k.seq = v_seq);
    END IF;
    IF NOT coalesce(v_ok, false) THEN
      error := 'Invalid or expired lease';
      RETURN NEXT;
      CONTINUE;
    END IF;

    CASE p_statuses[v_i]
      WHEN 0 THEN  -- completed
        v_pos := ordo._complete_message(v_ppk, v_group, v_pos, v_seq);
      WHEN 2 THEN  -- dlq
        SELECT f.count INTO v_failures FROM ordo.failures f
         WHERE f.partition_pk = v_ppk AND f.group_name = v_group AND f.seq = v_seq;
        PERFORM ordo._to_dead_letter(v_qpk, v_ppk, v_group, v_seq, p_errors[v_i],
                                     coalesce(v_failures, 0), p_now);
        v_pos := ordo._complete_message(v_ppk, v_group, v_pos, v_seq);
        dlq := true;
      WHEN 1 THEN  -- failed
        INSERT INTO ordo.failures AS f (partition_pk, group_name, seq, count)
          VALUES (v_ppk, v_group, v_seq, 1)
          ON CONFLICT (partition_pk, group_name, seq) DO UPDATE SET count = f.count + 1
          RETURNING f.count INTO v_failures;
        IF v_failures > v_retry_limit THEN
          PERFORM ordo._to_dead_letter(v_qpk, v_ppk, v_group, v_seq, p_errors[v_i],
                                       v_failures, p_now);
          v_pos := ordo._complete_message(v_ppk, v_group, v_pos, v_seq);
          dlq := true;
        ELSE
          IF v_backoff THEN
            v_k := 1;
            WHILE v_k < v_failures AND v_delay_ms < v_delay_max_ms LOOP
              v_delay_ms := v_delay_ms * 2;
              v_k := v_k + 1;
            END LOOP;
            v_delay_ms := least(v_delay_ms, v_delay_max_ms);
          END IF;
          DELETE FROM ordo.completions k
           WHERE k.partition_pk = v_ppk AND k.group_name = v_group AND k.seq >= v_seq;
          v_lease := NULL; v_lease_exp := 0; v_lease_last := 0;
          v_eligible := p_now + v_delay_ms * 1000;
          lease_released := true;
        END IF;
      WHEN 3 THEN  -- retry
        DELETE FROM ordo.completions k
         WHERE k.partition_pk = v_ppk AND k.group_name = v_group AND k.seq >= v_seq;
        v_lease := NULL; v_lease_exp := 0; v_lease_last := 0;
        v_eligible := p_now;
        lease_released := true;
      ELSE
        RAISE EXCEPTION 'ordo.ack: unknown status % (item %)', p_statuses[v_i], v_i
          USING ERRCODE = '22023';
    END CASE;

    IF v_lease IS NOT NULL AND v_pos >= v_lease_last THEN
      v_lease := NULL; v_lease_exp := 0; v_lease_last := 0;
      lease_released := true;
    END IF;
    UPDATE ordo.cursors c
       SET position = v_pos, lease_id = v_lease, lease_expires_at = v_lease_exp,
           lease_last_seq = v_lease_last, eligible_at = v_eligible
     WHERE c.partition_pk = v_ppk AND c.group_name = v_group;
    success := true;
    RETURN NEXT;
  END LOOP;

  RETURN;
END;
$$;

-- =============================================================================================
-- 5. extend_lease: every partition under the lease id gets now + seconds, while the lease lives.
--    expires_at is NULL on failure.
-- =============================================================================================
CREATE FUNCTION ordo.extend_lease(p_lease_id text, p_seconds bigint, p_now bigint)
RETURNS TABLE(success boolean, error text, expires_at bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_found boolean := false;
  v_live boolean := false;
  v_expires bigint := p_now + p_seconds * 1000000;
BEGIN
  -- Lock in key order, like ack, then decide on the current row versions.
  SELECT true, coalesce(bool_or(l.lease_expires_at > p_now), false) INTO v_found, v_live
    FROM (SELECT c.lease_expires_at FROM ordo.cursors c WHERE c.lease_id = p_lease_id
           ORDER BY c.partition_pk, c.group_name FOR UPDATE) l
  HAVING count(*) > 0;
  IF NOT coalesce(v_found, false) THEN
    RETURN QUERY SELECT false, 'Lease not found'::text, NULL::bigint;
    RETURN;
  END IF;
  IF NOT v_live THEN
    RETURN QUERY SELECT false, 'Lease already expired'::text, NULL::bigint;
    RETURN;
  END IF;
  UPDATE ordo.cursors c SET lease_expires_at = v_expires
   WHERE c.lease_id = p_lease_id AND c.lease_expires_at > p_now;
  RETURN QUERY SELECT true, NULL::text, v_expires;
END;
$$;

-- =============================================================================================
-- 6. delete_queue: removes the queue and every row that belongs to it. false: no such queue.
-- =============================================================================================
CREATE FUNCTION ordo.delete_queue(p_name text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  v_qpk bigint;
BEGIN
  DELETE FROM ordo.queues q WHERE q.name = p_name RETURNING q.pk INTO v_qpk;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  -- Locking the partition rows waits for pushes holding them; their messages are then visible
  -- to the deletes below (each statement takes a new snapshot).
  PERFORM 1 FROM ordo.partitions p WHERE p.queue_pk = v_qpk ORDER BY p.pk FOR UPDATE;
  DELETE FROM ordo.messages m
   WHERE m.partition_pk IN (SELECT p.pk FROM ordo.partitions p WHERE p.queue_pk = v_qpk);
  DELETE FROM ordo.cursors c
   WHERE c.partition_pk IN (SELECT p.pk FROM ordo.partitions p WHERE p.queue_pk = v_qpk);
  DELETE FROM ordo.completions k
   WHERE k.partition_pk IN (SELECT p.pk FROM ordo.partitions p WHERE p.queue_pk = v_qpk);
  DELETE FROM ordo.failures f
   WHERE f.partition_pk IN (SELECT p.pk FROM ordo.partitions p WHERE p.queue_pk = v_qpk);
  DELETE FROM ordo.dead_letters d WHERE d.queue_pk = v_qpk;
  DELETE FROM ordo.subscriptions s WHERE s.queue_pk = v_qpk;
  DELETE FROM ordo.partitions p WHERE p.queue_pk = v_qpk;
  RETURN true;
END;
$$;

-- =============================================================================================
-- 7. partition_stats: SQLite's kPartitionStats for one queue (or all, p_queue NULL), ordered by
--    queue name then partition name (byte order).
-- =============================================================================================
CREATE FUNCTION ordo.partition_stats(p_queue text, p_group text, p_now bigint)
RETURNS TABLE(queue_name text, partition_id text, partition_name text, created_at bigint,
              total bigint, oldest bigint, newest bigint, done_prefix bigint,
              done_extra bigint, in_lease bigint, failed bigint, dead bigint)
LANGUAGE sql STABLE AS $$
  SELECT q.name::text, p.id::text, p.name::text, p.created_at,
         (SELECT count(*) FROM ordo.messages m WHERE m.partition_pk = p.pk),
         (SELECT min(m.created_at) FROM ordo.messages m WHERE m.partition_pk = p.pk),
         (SELECT max(m.created_at) FROM ordo.messages m WHERE m.partition_pk = p.pk),
         (SELECT count(*) FROM ordo.messages m
           WHERE m.partition_pk = p.pk AND m.seq <= coalesce(c.position, 0)),
         (SELECT count(*) FROM ordo.completions k
           WHERE k.partition_pk = p.pk AND k.group_name = p_group),
         CASE WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > p_now THEN
           (SELECT count(*) FROM ordo.messages m
             WHERE m.partition_pk = p.pk AND m.seq > c.position AND m.seq <= c.lease_last_seq)
         ELSE 0 END,
         (SELECT count(*) FROM ordo.failures f
           WHERE f.partition_pk = p.pk AND f.group_name = p_group),
         (SELECT count(*) FROM ordo.dead_letters d
           WHERE d.partition_pk = p.pk AND d.group_name = p_group)
    FROM ordo.queues q
    JOIN ordo.partitions p ON p.queue_pk = q.pk
    LEFT JOIN ordo.cursors c ON c.partition_pk = p.pk AND c.group_name = p_group
   WHERE p_queue IS NULL OR q.name = p_queue
   ORDER BY q.name, p.name;
$$;
