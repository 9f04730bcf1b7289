-- Ordo schema, PostgreSQL engine, version 17: a new connection plans its hot statements before
-- it serves (issue #3, the e2e figure).
--
-- Why: a session compiles a PL/pgSQL function on its first call and plans each of its
-- statements on their first execution (generic plans, force_generic_plan). On a fresh
-- connection the first push_one to a new partition took 8.4 ms, the first ordo.push 3.1 ms,
-- against 0.3-0.7 ms once warm, and pop and ack pay it too. The broker's first requests after
-- a start or a reconnect queued behind that: in a 15 s e2e run at 1,000 msg/s, the messages of
-- the first 100 ms waited 20-30 ms, 100 of the 150 above the p99 (docs/benchmarks.md).
--
-- ordo.warm_up: run once by every pool connection after its statements are prepared and before
-- it takes requests (src/db/pg/statements.h, kWarmUp). In a subtransaction that it rolls back,
-- it pushes to a queue of its own (named after the backend, so that connections warming up at
-- once never wait on each other), one item and two, to a new partition and to existing ones;
-- pops from the queue and from a named partition; and acks one message and two. Every function
-- the broker's push, pop and ack statements reach on their common paths runs once, so their
-- plans are cached for the session. Nothing is left behind but identity values (gaps in the
-- queues' and partitions' pks). It answers the number of steps done: 9, or fewer when one
-- failed (the failure is a NOTICE, and the connection serves anyway, colder).

CREATE FUNCTION ordo.warm_up()
RETURNS int
LANGUAGE plpgsql
AS $$
DECLARE
  v_queue text := '__ordo_warm_up_' || pg_backend_pid();
  v_now bigint := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
  v_lease text := gen_random_uuid()::text;
  v_steps int := 0;
  v_txids text[];
  v_pids text[];
BEGIN
  -- Nothing is kept, so the commit need not wait for a WAL flush.
  PERFORM set_config('synchronous_commit', 'off', true);
  BEGIN
    -- One item: a new queue (ordo._push_general), an existing partition, a new one.
    PERFORM ordo.push_one(v_queue, 'a', gen_random_uuid()::text, 'w1', NULL, '{}', v_now, NULL);
    v_steps := v_steps + 1;
    PERFORM ordo.push_one(v_queue, 'a', gen_random_uuid()::text, 'w2', NULL, '{}', v_now, NULL);
    v_steps := v_steps + 1;
    PERFORM ordo.push_one(v_queue, 'c', gen_random_uuid()::text, 'w7', NULL, '{}', v_now, NULL);
    v_steps := v_steps + 1;
    -- Two items: a new partition (ordo._push_general), then version 12's statement.
    PERFORM ordo.push(ARRAY[v_queue, v_queue], ARRAY['a', 'b'],
                      ARRAY[gen_random_uuid()::text, gen_random_uuid()::text], ARRAY['w3', 'w4'],
                      NULL, ARRAY['{}', '{}'], v_now, ARRAY[1, 1], NULL);
    v_steps := v_steps + 1;
    PERFORM ordo.push(ARRAY[v_queue, v_queue], ARRAY['a', 'b'],
                      ARRAY[gen_random_uuid()::text, gen_random_uuid()::text], ARRAY['w5', 'w6'],
                      NULL, ARRAY['{}', '{}'], v_now, ARRAY[1, 1], NULL);
    v_steps := v_steps + 1;
    -- A pop of the queue (ordo._pop_choose) and the ack of its first message (ordo.ack_one).
    SELECT array_agg(r.transaction_id ORDER BY r.seq), array_agg(r.partition_id ORDER BY r.seq)
      INTO v_txids, v_pids
      FROM ordo.pop(v_queue, NULL, NULL, 10, 1, false, 0::smallint, 0, v_lease, v_now, NULL,
                    false) r
     WHERE r.transaction_id IS NOT NULL;
    v_steps := v_steps + 1;
    PERFORM ordo.ack_one(v_txids[1], v_pids[1], v_lease, NULL, v_now);
    v_steps := v_steps + 1;
    -- A pop of a named partition (version 13's path) and an ack of two messages (ordo.ack).
    v_lease := gen_random_uuid()::text;
    SELECT array_agg(r.transaction_id ORDER BY r.seq), array_agg(r.partition_id ORDER BY r.seq)
      INTO v_txids, v_pids
      FROM ordo.pop(v_queue, 'b', NULL, 10, 1, false, 0::smallint, 0, v_lease, v_now, NULL,
                    false) r
     WHERE r.transaction_id IS NOT NULL;
    v_steps := v_steps + 1;
    PERFORM ordo.ack(v_txids[1:2], v_pids[1:2], ARRAY[v_lease, v_lease],
                     ARRAY[0, 0]::smallint[], ARRAY[NULL, NULL]::text[],
                     ARRAY[NULL, NULL]::text[], v_now);
    v_steps := v_steps + 1;
    RAISE SQLSTATE 'OW001';
  EXCEPTION
    WHEN SQLSTATE 'OW001' THEN
      NULL;
    WHEN OTHERS THEN
      RAISE NOTICE 'ordo.warm_up stopped after % steps: %', v_steps, SQLERRM;
  END;
  RETURN v_steps;
END;
$$;
