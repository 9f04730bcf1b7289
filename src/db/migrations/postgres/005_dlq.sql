-- Dead-letter queue listing, requeue and message browsing (issue #4.6, #4.8).
-- Mirrors src/db/migrations/sqlite/005_dlq.sql and the SQLite engine's dlq section
-- (src/broker/sqlite_store.cc).

-- DLQ pages are read in (failed_at, pk) order, optionally for one queue; the per-message
-- "dead-lettered for this group?" test of browsing looks entries up by (partition, group, seq).
CREATE INDEX dead_letters_by_failed_at ON ordo.dead_letters (failed_at, pk);
CREATE INDEX dead_letters_by_queue_failed_at ON ordo.dead_letters (queue_pk, failed_at, pk);
CREATE INDEX dead_letters_by_message ON ordo.dead_letters (partition_pk, group_name, seq);

-- Requeues dead-letter entries: each entry's message is stored again at the tail of its
-- partition under the new id p_new_ids[i] (also its transactionId, so the dedup index never
-- refuses it), payload and trace id kept. Only the group that dead-lettered it receives it:
-- every other group with a cursor in the partition has the copy marked done (its position moves
-- over it when it stood just before it, else a completion row). The entries are deleted.
-- Partition rows are locked in pk order, as ordo.push does, so the two cannot deadlock.
-- Returns one row per requeued entry: its id and its queue's name. Unknown ids return nothing.
CREATE FUNCTION ordo.dlq_requeue(p_ids text[], p_new_ids text[], p_now bigint)
RETURNS TABLE(id text, queue text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  r record;
  v_seq bigint;
  v_at bigint;
BEGIN
  IF coalesce(cardinality(p_ids), 0) <> coalesce(cardinality(p_new_ids), 0) THEN
    RAISE EXCEPTION 'ordo.dlq_requeue: the id arrays differ in length' USING ERRCODE = '22023';
  END IF;
  PERFORM 1 FROM ordo.partitions p
   WHERE p.pk IN (SELECT d.partition_pk FROM ordo.dead_letters d WHERE d.id = ANY (p_ids))
   ORDER BY p.pk FOR UPDATE OF p;
  FOR r IN
    SELECT d.pk AS dpk, d.id AS did, d.partition_pk AS ppk, d.group_name AS grp,
           d.trace_id AS trace, d.payload AS body, u.new_id AS new_id, q.name AS qname
      FROM unnest(p_ids, p_new_ids) AS u(want, new_id)
      JOIN ordo.dead_letters d ON d.id = u.want
      JOIN ordo.partitions p ON p.pk = d.partition_pk
      JOIN ordo.queues q ON q.pk = p.queue_pk
     ORDER BY d.partition_pk, d.failed_at, d.pk
     FOR UPDATE OF d
  LOOP
    UPDATE ordo.partitions p
       SET last_seq = p.last_seq + 1, last_at = greatest(p_now, p.last_at)
     WHERE p.pk = r.ppk
    RETURNING p.last_seq, p.last_at INTO v_seq, v_at;
    INSERT INTO ordo.messages (partition_pk, seq, created_at, id, transaction_id, trace_id,
                               payload)
      VALUES (r.ppk, v_seq, v_at, r.new_id, r.new_id, r.trace, r.body);
    UPDATE ordo.cursors c SET position = v_seq
     WHERE c.partition_pk = r.ppk AND c.group_name <> r.grp AND c.position = v_seq - 1;
    INSERT INTO ordo.completions (partition_pk, group_name, seq)
      SELECT c.partition_pk, c.group_name, v_seq FROM ordo.cursors c
       WHERE c.partition_pk = r.ppk AND c.group_name <> r.grp AND c.position < v_seq
      ON CONFLICT (partition_pk, group_name, seq) DO NOTHING;
    DELETE FROM ordo.dead_letters d WHERE d.pk = r.dpk;
    id := r.did;
    queue := r.qname;
    RETURN NEXT;
  END LOOP;
END;
$$;

-- Removes message (partition id, transaction id); false when it does not exist. Every group
-- that had not passed it counts it as done: a group standing just before it moves over it (and
-- its lease ends when that was the last message the lease covered), any other gets a completion
-- row, so the hole never holds a position back. Its failure counts go; dead-letter entries keep
-- their own copy.
CREATE FUNCTION ordo.delete_message(p_partition_id text, p_txid text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  v_ppk bigint;
  v_seq bigint;
BEGIN
  SELECT p.pk INTO v_ppk FROM ordo.partitions p WHERE p.id = p_partition_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  SELECT m.seq INTO v_seq FROM ordo.messages m
   WHERE m.partition_pk = v_ppk AND m.transaction_id = p_txid;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  UPDATE ordo.cursors c
     SET position = v_seq,
         lease_id = CASE WHEN c.lease_last_seq <= v_seq THEN NULL ELSE c.lease_id END,
         lease_expires_at = CASE WHEN c.lease_last_seq <= v_seq THEN 0
                                 ELSE c.lease_expires_at END,
         lease_last_seq = CASE WHEN c.lease_last_seq <= v_seq THEN 0 ELSE c.lease_last_seq END
   WHERE c.partition_pk = v_ppk AND c.position = v_seq - 1;
  INSERT INTO ordo.completions (partition_pk, group_name, seq)
    SELECT c.partition_pk, c.group_name, v_seq FROM ordo.cursors c
     WHERE c.partition_pk = v_ppk AND c.position < v_seq
    ON CONFLICT (partition_pk, group_name, seq) DO NOTHING;
  DELETE FROM ordo.failures f WHERE f.partition_pk = v_ppk AND f.seq = v_seq;
  DELETE FROM ordo.messages m WHERE m.partition_pk = v_ppk AND m.seq = v_seq;
  RETURN true;
END;
$$;
