-- Ordo schema, PostgreSQL engine, version 3: consumer-group administration and seek
-- (issue #4.4). No table changes: functions over the cursors, completions, failures and
-- subscriptions of 001_init.sql, mirroring the SQLite engine's consumer-groups section
-- (src/broker/sqlite_store.cc, src/db/sqlite/statements.h).
--
-- Concurrency: seek_group and delete_group lock the group's cursor rows FOR UPDATE in
-- partition_pk order (as ack does), so a pop or ack of the group on those partitions finishes
-- before them and the next one sees their result. A cursor that does not exist yet is created
-- under the advisory lock of ordo._ensure_cursor, as pop creates it.

-- Every known (queue, group) pair: a subscription row (named groups, fixed at the first pop) or
-- a cursor (any group, the default one included, created by its first pop in a partition or by a
-- seek). One row per partition of the queue (NULL partition columns for a queue without one).
-- The position of a partition the group has not met yet is where its first pop would put it.
-- Per partition: bounded index lookups only (MIN(seq), the first message after the position,
-- the completion marks past it); no scan of the partition's messages, except the start position
-- of a not-yet-met partition whose newest message is past a named group's start.
CREATE FUNCTION ordo.describe_groups(p_group text, p_now bigint)
RETURNS TABLE(queue_name text, group_name text, start_from bigint, subscribed_at bigint,
              partition_id text, partition_name text, last_seq bigint, first_seq bigint,
              cursor_position bigint, completed_past bigint, oldest_waiting bigint, lease_id text,
              lease_expires_at bigint)
LANGUAGE sql STABLE AS $$
  WITH known AS (
    SELECT s.queue_pk, s.group_name FROM ordo.subscriptions s
     WHERE p_group IS NULL OR s.group_name = p_group
    UNION
    SELECT p.queue_pk, c.group_name FROM ordo.cursors c
      JOIN ordo.partitions p ON p.pk = c.partition_pk
     WHERE p_group IS NULL OR c.group_name = p_group
  ), placed AS (
    SELECT q.name AS qname, k.group_name AS gname, s.start_from AS sfrom,
           s.created_at AS sat, p.pk AS ppk, p.id AS pid, p.name AS pname,
           coalesce(p.last_seq, 0) AS plast,
           coalesce(c.position, CASE
             WHEN coalesce(s.start_from, 0) <= 0 OR p.pk IS NULL THEN 0
             WHEN p.last_at < s.start_from THEN p.last_seq
             ELSE (SELECT coalesce(max(m.seq), 0) FROM ordo.messages m
                    WHERE m.partition_pk = p.pk AND m.created_at < s.start_from) END) AS pos,
           CASE WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > p_now
                THEN c.lease_id END AS lid,
           CASE WHEN c.lease_id IS NOT NULL AND c.lease_expires_at > p_now
                THEN c.lease_expires_at ELSE 0 END AS lexp
      FROM known k
      JOIN ordo.queues q ON q.pk = k.queue_pk
      LEFT JOIN ordo.partitions p ON p.queue_pk = k.queue_pk
      LEFT JOIN ordo.cursors c ON c.partition_pk = p.pk AND c.group_name = k.group_name
      LEFT JOIN ordo.subscriptions s ON s.queue_pk = k.queue_pk AND s.group_name = k.group_name
  )
  SELECT x.qname::text, x.gname::text, x.sfrom, x.sat, x.pid::text, x.pname::text, x.plast,
         coalesce((SELECT min(m.seq) FROM ordo.messages m WHERE m.partition_pk = x.ppk), 0),
         x.pos,
         (SELECT count(*) FROM ordo.completions k
           WHERE k.partition_pk = x.ppk AND k.group_name = x.gname AND k.seq > x.pos),
         (SELECT m.created_at FROM ordo.messages m
           WHERE m.partition_pk = x.ppk AND m.seq > x.pos ORDER BY m.seq LIMIT 1),
         x.lid::text, x.lexp
    FROM placed x
   ORDER BY x.qname, x.gname, x.pname;
$$;

-- Moves p_group's position in partition p_partition of p_queue (NULL: every partition): to the
-- newest message (p_to_end) or before the first message created at or after p_timestamp. Ends
-- the group's leases there and clears its completion marks, failure counts and back-off, so the
-- group reads every message past the new position again, in order.
-- r_status: 0 done, 1 no such queue, 2 no such partition.
CREATE FUNCTION ordo.seek_group(p_group text, p_queue text, p_partition text, p_to_end boolean,
                                p_timestamp bigint, p_now bigint)
RETURNS TABLE(r_status smallint, r_partitions bigint, r_leases_ended bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_qpk bigint;
  v_ppk bigint;
  v_pos bigint;
  v_lease text;
  v_lease_exp bigint;
BEGIN
  r_status := 0; r_partitions := 0; r_leases_ended := 0;
  SELECT q.pk INTO v_qpk FROM ordo.queues q WHERE q.name = p_queue;
  IF NOT FOUND THEN
    r_status := 1;
    RETURN NEXT;
    RETURN;
  END IF;
  IF p_partition IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM ordo.partitions p WHERE p.queue_pk = v_qpk AND p.name = p_partition) THEN
    r_status := 2;
    RETURN NEXT;
    RETURN;
  END IF;
  FOR v_ppk IN SELECT p.pk FROM ordo.partitions p
                WHERE p.queue_pk = v_qpk AND (p_partition IS NULL OR p.name = p_partition)
                ORDER BY p.pk LOOP
    PERFORM ordo._ensure_cursor(v_ppk, p_group, 0, true);
    SELECT c.lease_id, c.lease_expires_at INTO v_lease, v_lease_exp
      FROM ordo.cursors c WHERE c.partition_pk = v_ppk AND c.group_name = p_group
       FOR UPDATE;
    IF p_to_end THEN
      SELECT p.last_seq INTO v_pos FROM ordo.partitions p WHERE p.pk = v_ppk;
    ELSE
      SELECT coalesce(max(m.seq), 0) INTO v_pos
        FROM ordo.messages m WHERE m.partition_pk = v_ppk AND m.created_at < p_timestamp;
    END IF;
    UPDATE ordo.cursors c
       SET position = v_pos, lease_id = NULL, lease_expires_at = 0, lease_last_seq = 0,
           eligible_at = 0
     WHERE c.partition_pk = v_ppk AND c.group_name = p_group;
    DELETE FROM ordo.completions k WHERE k.partition_pk = v_ppk AND k.group_name = p_group;
    DELETE FROM ordo.failures f WHERE f.partition_pk = v_ppk AND f.group_name = p_group;
    r_partitions := r_partitions + 1;
    IF v_lease IS NOT NULL AND v_lease_exp > p_now THEN
      r_leases_ended := r_leases_ended + 1;
    END IF;
  END LOOP;
  RETURN NEXT;
END;
$$;

-- Removes p_group's cursors (positions, leases, completion marks, failure counts) and
-- subscription on p_queue (NULL: every queue). One row per queue where something was removed.
CREATE FUNCTION ordo.delete_group(p_group text, p_queue text, p_now bigint)
RETURNS TABLE(r_queue text, r_partitions bigint, r_leases_ended bigint, r_subscription boolean)
LANGUAGE plpgsql AS $$
DECLARE
  v_qpk bigint;
  v_qname text;
  v_n bigint;
  v_live bigint;
BEGIN
  FOR v_qpk, v_qname IN
    SELECT q.pk, q.name FROM ordo.queues q
     WHERE (p_queue IS NULL OR q.name = p_queue)
       AND q.pk IN (SELECT s.queue_pk FROM ordo.subscriptions s WHERE s.group_name = p_group
                    UNION
                    SELECT p.queue_pk FROM ordo.cursors c
                      JOIN ordo.partitions p ON p.pk = c.partition_pk
                     WHERE c.group_name = p_group)
     ORDER BY q.name
  LOOP
    SELECT count(*), count(*) FILTER (WHERE l.lease_id IS NOT NULL AND l.lease_expires_at > p_now)
      INTO v_n, v_live
      FROM (SELECT c.lease_id, c.lease_expires_at FROM ordo.cursors c
              JOIN ordo.partitions p ON p.pk = c.partition_pk
             WHERE p.queue_pk = v_qpk AND c.group_name = p_group
             ORDER BY c.partition_pk FOR UPDATE OF c) l;
    DELETE FROM ordo.cursors c USING ordo.partitions p
     WHERE p.pk = c.partition_pk AND p.queue_pk = v_qpk AND c.group_name = p_group;
    DELETE FROM ordo.completions k USING ordo.partitions p
     WHERE p.pk = k.partition_pk AND p.queue_pk = v_qpk AND k.group_name = p_group;
    DELETE FROM ordo.failures f USING ordo.partitions p
     WHERE p.pk = f.partition_pk AND p.queue_pk = v_qpk AND f.group_name = p_group;
    DELETE FROM ordo.subscriptions s WHERE s.queue_pk = v_qpk AND s.group_name = p_group;
    r_subscription := FOUND;
    IF v_n > 0 OR r_subscription THEN
      r_queue := v_qname;
      r_partitions := v_n;
      r_leases_ended := v_live;
      RETURN NEXT;
    END IF;
  END LOOP;
END;
$$;
