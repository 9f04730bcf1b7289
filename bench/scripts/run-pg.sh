#!/usr/bin/env bash
# The BENCHMARKS.md workloads against `ordo serve` on PostgreSQL, driven by `ordo bench` over
# loopback, beside the database's own ceiling (bench/pg_ceiling) in the same run:
#   push-1, push-100   50 connections, 1 or 100 messages (~100 B) per request, 100 partitions
#   pg-ceiling-CxP     pg_ceiling with push-100's rows: C connections, P statements in flight each
#   drain              DRAIN_MESSAGES in 100 partitions, then DRAIN_CONSUMERS consumers popping 100
#                      and acking each batch (1st/2nd half rates: must not fall as the backlog drains)
#   e2e                open-loop producers at E2E_RATE msg/s, 10 consumers long-polling batch=10
#                      (its notes give the p99 of the messages due after the first second too,
#                      from --latency-log: the start-up transient of new partitions, apart)
#   idle               after e2e, on the same broker: IDLE_POLLS parked long polls, no traffic,
#                      IDLE_SECONDS; the transactions the broker ran in the database meanwhile
# and, when EXTRA names them, BENCHMARKS.md's other two (each run's last phases):
#   fanout-5           FANOUT_MESSAGES in 100 partitions, then 5 consumer groups of
#                      FANOUT_CONSUMERS consumers each, popping 100 and acking each batch, every
#                      group reading everything (msg/s: deliveries of all groups together)
#   partitions-10k     push-1 over 10,000 partitions for DURATION (partitions-10k-push), then
#                      DRAIN_CONSUMERS consumers drain what it queued (partitions-10k-drain)
# Builds nothing: run it on a Release build (targets ordo and pg_ceiling).
#
#   bench/scripts/run-pg.sh [BUILD_DIR]        BUILD_DIR defaults to build/release
#
# Environment:
#   DURATION=30            seconds of each push, pg_ceiling and e2e run
#   DRAIN_MESSAGES=1000000 messages filled into 100 partitions, then drained
#   DRAIN_CONSUMERS=8      consumers of the drain
#   E2E_RATE=1000          msg/s offered by the e2e producers
#   E2E_WARMUP=0           seconds at the start of e2e left out of its latency figures
#   PG_CEILING="50x1 2x1 2x8"  pg_ceiling runs as CONNECTIONSxPIPELINE; the first has push-100's
#                          concurrency, the others what a pooled, pipelining client can get
#   IDLE_SECONDS=60        length of the idle window
#   IDLE_POLLS=10          long polls parked during it
#   IDLE_SETTLE=15         seconds between the end of e2e (and the polls' start) and the window
#   RUNS=1                 runs of each workload; with 3 or more, quote the median (BENCHMARKS.md)
#   HOST_PROBE_SECONDS=5   the host's state before and after the set (`ordo bench host`); 0: none
#   EXTRA=""               more workloads: "fanout-5", "partitions-10k" or both
#   FANOUT_MESSAGES=200000 messages each group of fanout-5 reads (5x that are delivered)
#   FANOUT_CONSUMERS=2     consumers per group of fanout-5 (10 in all)
#   KEEP_TMP=1             keep the temporary directory (logs, tool outputs) for a post-mortem
#
# The server is a throwaway cluster from scripts/pg-cluster (its defaults: shared_buffers=128MB,
# max_connections=200, fsync and synchronous_commit on), removed at exit. Every workload gets a
# fresh database and, for the broker's workloads, a fresh broker; a CHECKPOINT runs before each
# phase so one phase's dirty pages are not written during the next. Per phase: the broker's CPU
# seconds, idle and peak RSS (as run-sqlite.sh), and the CPU seconds of the whole PostgreSQL
# cluster (postmaster, live backends and reaped ones: /proc utime+stime+cutime+cstime).
#
# Idle: the count is the change of xact_commit + xact_rollback of the broker's database in
# pg_stat_database over the window (every statement outside an explicit transaction is one), less
# the one transaction of the script's own first probe. PostgreSQL publishes a backend's counters
# up to ~10 s late (hence IDLE_SETTLE before the window: the e2e load's tail must not count), so
# the figure is good to about one such delay; autovacuum runs in the window are counted too and
# shown beside it.
set -euo pipefail

SCRIPT="run-pg"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${1:-build/release}
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
# shellcheck source=bench/scripts/common.sh
source "$ROOT/bench/scripts/common.sh"
PG_CEILING_BIN=$BUILD_DIR/bench/pg_ceiling
PG_CEILING_RUNS=${PG_CEILING:-50x1 2x1 2x8}
DRAIN_CONSUMERS=${DRAIN_CONSUMERS:-8}
E2E_RATE=${E2E_RATE:-1000}
E2E_WARMUP=${E2E_WARMUP:-0}
IDLE_SECONDS=${IDLE_SECONDS:-60}
IDLE_POLLS=${IDLE_POLLS:-10}
IDLE_SETTLE=${IDLE_SETTLE:-15}
EXTRA=${EXTRA:-}
FANOUT_MESSAGES=${FANOUT_MESSAGES:-200000}
FANOUT_CONSUMERS=${FANOUT_CONSUMERS:-2}

bench_init
[[ -x $PG_CEILING_BIN ]] ||
  die "$PG_CEILING_BIN not found; build it first: cmake --build $BUILD_DIR --target ordo pg_ceiling"
for v in DRAIN_CONSUMERS IDLE_SECONDS IDLE_POLLS IDLE_SETTLE FANOUT_MESSAGES FANOUT_CONSUMERS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
[[ $E2E_RATE =~ ^[0-9]+([.][0-9]+)?$ ]] || die "E2E_RATE must be a number of msg/s"
for c in $PG_CEILING_RUNS; do
  [[ $c =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]] || die "PG_CEILING entries are CONNECTIONSxPIPELINE, got '$c'"
done
for w in $EXTRA; do
  [[ $w = fanout-5 || $w = partitions-10k ]] || die "EXTRA names fanout-5 and partitions-10k, got '$w'"
done
wanted() { [[ " $EXTRA " = *" $1 "* ]]; }
collect_facts
host_probe "before the set"

# ---- the cluster -------------------------------------------------------------------------------
# Directly under /tmp: when run as root the cluster runs as another user, who must reach it.
PGDIR=$(mktemp -d /tmp/ordo-pg.XXXXXX)
extra_cleanup() {
  [[ ${KEEP_TMP:-0} = 1 ]] && cp "$PGDIR/log" "$TMP/postgres.log" 2>/dev/null
  "$ROOT/scripts/pg-cluster" stop "$PGDIR" || log "could not stop the cluster in $PGDIR"
}
log "$SCRIPT: starting a throwaway cluster in $PGDIR"
"$ROOT/scripts/pg-cluster" start "$PGDIR" >/dev/null || die "scripts/pg-cluster start failed"
PGPORT=$(<"$PGDIR/port")
PG_BASE=postgres://postgres@127.0.0.1:$PGPORT
PSQL=$(<"$PGDIR/bindir")/psql
[[ -x $PSQL ]] || PSQL=$(command -v psql) || die "psql not found"
POSTMASTER=$(head -n 1 "$PGDIR/data/postmaster.pid")

# sql URL QUERY: one unaligned, tuples-only result.
sql() { "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

# A fresh database named $1; prints its URL.
new_db() {
  sql "$PG_BASE/postgres" "CREATE DATABASE $1" >/dev/null || die "CREATE DATABASE $1 failed"
  echo "$PG_BASE/$1"
}

# Flushes dirty pages now rather than during the next measured phase.
checkpoint() { sql "$PG_BASE/postgres" "CHECKPOINT" >/dev/null; }

# CPU seconds of the whole cluster: the postmaster with its reaped children, and the live ones.
db_cpu_seconds() {
  local total kid kids=()
  total=$(proc_cpu_seconds "$POSTMASTER" children)
  read -ra kids <"/proc/$POSTMASTER/task/$POSTMASTER/children" 2>/dev/null || true
  for kid in "${kids[@]}"; do
    total=$(awk -v a="$total" -v b="$(proc_cpu_seconds "$kid" children)" 'BEGIN { printf "%.2f", a + b }')
  done
  echo "$total"
}

pg_settings=$(sql "$PG_BASE/postgres" "SELECT 'PostgreSQL ' || current_setting('server_version') ||
  ', shared_buffers=' || current_setting('shared_buffers') ||
  ', synchronous_commit=' || current_setting('synchronous_commit') ||
  ', fsync=' || current_setting('fsync') ||
  ', max_connections=' || current_setting('max_connections') ||
  ', wal_level=' || current_setting('wal_level') ||
  ', checkpoint_timeout=' || current_setting('checkpoint_timeout') ||
  ', max_wal_size=' || current_setting('max_wal_size')")
log "$SCRIPT: $ORDO, $PG_CEILING_BIN; $pg_settings"
log "$SCRIPT: DURATION=$DURATION DRAIN_MESSAGES=$DRAIN_MESSAGES DRAIN_CONSUMERS=$DRAIN_CONSUMERS" \
    "E2E_RATE=$E2E_RATE PG_CEILING='$PG_CEILING_RUNS' IDLE_SECONDS=$IDLE_SECONDS RUNS=$RUNS EXTRA='$EXTRA'"

# ---- idle --------------------------------------------------------------------------------------
declare -A IDLE  # IDLE[field] = space-separated values, one per run
E2E_LATE_P99=""  # per e2e run: p99 (µs) of the messages due after its first second

# The p99 latency (µs) in an `ordo bench e2e --latency-log` file of the messages due at or after
# $2 ms into the run (a start-up transient of new partitions and plans is left out); "-" if none.
p99_after() {
  awk -v from="$2" '$1 >= from { print $2 }' "$1" | sort -n |
    awk '{ v[NR] = $1 }
      END { if (NR == 0) { print "-"; exit } i = int(0.99 * NR); if (i < 0.99 * NR) i++; print v[i] }'
}
IDLE_CMD=

# "transactions autovacuum_runs" of the database at URL $1, read in one transaction of its own.
idle_probe() {
  sql "$1" "SELECT d.xact_commit + d.xact_rollback,
                   (SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0)
                      FROM pg_stat_all_tables)
              FROM pg_stat_database d WHERE d.datname = current_database()" | tr '|' ' '
}

# idle_phase DB_URL QUEUE: against the live broker, after its load.
idle_phase() {
  local db=$1 queue=$2 i
  local -a polls=()
  local poll_ms=$(((IDLE_SETTLE + IDLE_SECONDS + 30) * 1000))
  local poll_url="$URL/api/v1/pop/queue/$queue?batch=10&wait=true&timeout=$poll_ms"
  IDLE_CMD="$IDLE_POLLS x curl '$poll_url'; after ${IDLE_SETTLE} s, ${IDLE_SECONDS} s of xact_commit+xact_rollback (pg_stat_database)"
  log "  idle: $IDLE_CMD"
  for ((i = 0; i < IDLE_POLLS; i++)); do
    curl -s -o /dev/null --max-time $((IDLE_SETTLE + IDLE_SECONDS + 60)) "$poll_url" &
    polls+=($!)
  done
  # The polls park (each makes its first pop) and the counters of the load before are published:
  # PostgreSQL publishes an idle backend's counts up to 10 s late.
  sleep "$IDLE_SETTLE"
  local x0 a0 x1 a1 cpu0 cpu1
  read -r x0 a0 < <(idle_probe "$db")
  cpu0=$(cpu_seconds)
  sleep "$IDLE_SECONDS"
  read -r x1 a1 < <(idle_probe "$db")
  cpu1=$(cpu_seconds)
  for i in "${polls[@]}"; do
    kill "$i" 2>/dev/null || true
    wait "$i" 2>/dev/null || true
  done
  [[ "$x0 $a0 $x1 $a1" =~ ^[0-9]+\ [0-9]+\ [0-9]+\ [0-9]+$ ]] ||
    die "idle probes failed (read '$x0 $a0' and '$x1 $a1')"
  local txns=$((x1 - x0 - 1))  # less the first probe's own transaction
  ((txns >= 0)) || txns=0
  IDLE[txns]+="$txns "
  IDLE[per_min]+="$(awk -v t="$txns" -v s="$IDLE_SECONDS" 'BEGIN { printf "%.1f", t * 60 / s }') "
  IDLE[autovacuum]+="$((a1 - a0)) "
  IDLE[cpu]+="$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }') "
  log "    idle: $txns transactions in ${IDLE_SECONDS} s, $((a1 - a0)) autovacuum/autoanalyze runs"
}

# ---- the workloads -----------------------------------------------------------------------------
# fill_and_drain PHASE QUEUE MESSAGES DRAIN_ARGS...: on a fresh database and broker, MESSAGES
# pushed to QUEUE's partitions (phase "fill", or "fill-PHASE"), then popped 100 at a time and
# acked (phase PHASE) by `ordo bench drain QUEUE DRAIN_ARGS`, each group MESSAGES.
fill_and_drain() {
  local phase=$1 queue=$2 messages=$3 fill=fill
  shift 3
  [[ $phase = drain ]] || fill=fill-$phase
  dir=$TMP/run$run-$phase
  start_broker "$dir" "$(new_db "ordo_r${run}_${phase//-/_}")"
  checkpoint
  run_phase "$fill" "$dir/fill.out" bench fill --url "$URL" --queue "$queue" \
    --messages "$messages" --connections 10 --batch 100 --partitions "$PARTITIONS" \
    --payload-bytes 100
  checkpoint
  run_phase "$phase" "$dir/drain.out" bench drain --url "$URL" --queue "$queue" "$@" \
    --batch 100 --expect "$messages"
  stop_broker
}

for run in $(seq 1 "$RUNS"); do
  log "run $run/$RUNS"
  for batch in 1 100; do
    dir=$TMP/run$run-push-$batch
    db=$(new_db "ordo_r${run}_push_$batch")
    start_broker "$dir" "$db"
    checkpoint
    run_phase "push-$batch" "$dir/bench.out" bench push --url "$URL" \
      --queue bench-push --connections 50 --batch "$batch" --partitions "$PARTITIONS" \
      --duration "$DURATION" --payload-bytes 100
    stop_broker
  done

  for c in $PG_CEILING_RUNS; do
    dir=$TMP/run$run-pg-ceiling-$c
    mkdir -p "$dir"
    db=$(new_db "ordo_r${run}_ceiling_$c")
    checkpoint
    run_phase "pg-ceiling-$c" "$dir/pg_ceiling.out" pg_ceiling --url "$db" \
      --connections "${c%x*}" --pipeline "${c#*x}" --batch 100 --partitions "$PARTITIONS" \
      --payload-bytes 100 --duration "$DURATION"
  done

  fill_and_drain drain bench-drain "$DRAIN_MESSAGES" --consumers "$DRAIN_CONSUMERS"

  dir=$TMP/run$run-e2e
  db=$(new_db "ordo_r${run}_e2e")
  start_broker "$dir" "$db"
  checkpoint
  run_phase "e2e" "$dir/e2e.out" bench e2e --url "$URL" --queue bench-e2e --rate "$E2E_RATE" \
    --duration "$DURATION" --partitions "$PARTITIONS" --consumers 10 --batch 10 --payload-bytes 100 \
    --warmup "$E2E_WARMUP" --latency-log "$dir/latency.log"
  E2E_LATE_P99+="$(p99_after "$dir/latency.log" 1000) "
  idle_phase "$db" bench-e2e
  stop_broker

  if wanted fanout-5; then
    fill_and_drain fanout-5 bench-fanout "$FANOUT_MESSAGES" --groups 5 \
      --consumers "$FANOUT_CONSUMERS"
  fi

  if wanted partitions-10k; then
    dir=$TMP/run$run-partitions-10k
    db=$(new_db "ordo_r${run}_p10k")
    start_broker "$dir" "$db"
    checkpoint
    run_phase "partitions-10k-push" "$dir/push.out" bench push --url "$URL" --queue bench-p10k \
      --connections 50 --batch 1 --partitions 10000 --duration "$DURATION" --payload-bytes 100
    queued=$(result_field "$dir/push.out" msgs)
    [[ $queued =~ ^[1-9][0-9]*$ ]] || die "partitions-10k-push queued nothing"
    checkpoint
    run_phase "partitions-10k-drain" "$dir/drain.out" bench drain --url "$URL" \
      --queue bench-p10k --consumers "$DRAIN_CONSUMERS" --batch 100 --expect "$queued"
    stop_broker
  fi
done

host_probe "after the set"

# ---- the tables --------------------------------------------------------------------------------
# The best pg_ceiling run (by median msg/s), for the fractions in the notes. Only pushes compare:
# pg_ceiling has no read-back (pop and ack) side yet.
best_ceiling="" best_rate=0
for c in $PG_CEILING_RUNS; do
  rate=$(cell "pg-ceiling-$c" msg_per_s | awk '{ print $1 }')
  if awk -v a="$rate" -v b="$best_rate" 'BEGIN { exit !(a > b) }'; then
    best_ceiling=$c best_rate=$rate
  fi
done

phase_notes() {
  local w=$1 rate
  case $w in
    push-*)
      [[ -n $best_ceiling ]] || return 0
      rate=$(cell "$w" msg_per_s | awk '{ print $1 }')
      awk -v a="$rate" -v b="$best_rate" -v c="$best_ceiling" \
        'BEGIN { printf "%.0f%% of pg_ceiling %s", 100 * a / b, c }'
      ;;
    pg-ceiling-*)
      echo "no broker: ${w#pg-ceiling-} connections x statements in flight; latency per statement"
      ;;
    e2e)
      # shellcheck disable=SC2086
      echo "p99 of the messages due after the first second $(median_spread $E2E_LATE_P99) µs"
      ;;
  esac
}

echo
print_machine
echo "Commit $commit. Engine: $pg_settings; throwaway cluster (scripts/pg-cluster), fresh database per workload, loopback."
echo "Broker: \`ordo serve --host 127.0.0.1 --port PORT --db postgres://postgres@127.0.0.1:PGPORT/DB --data-dir TMP --log-level warn\`."
echo "$RUNS run(s) per workload; cells are the median (min-max) over runs. Latency: per request"
echo "(push), per pop (drain), per statement (pg-ceiling), push to delivery (e2e). DB CPU: the whole"
echo "PostgreSQL cluster. Peak RSS: $([[ $RESET_OK = 1 ]] && echo "VmHWM within the phase" || echo "VmHWM since broker start (clear_refs refused)")."
print_table 's#http://127\.0\.0\.1:[0-9]+#http://127.0.0.1:PORT#g; s#postgres://postgres@127\.0\.0\.1:[0-9]+/[A-Za-z0-9_]+#postgres://postgres@127.0.0.1:PGPORT/DB#g'
echo
echo "| workload | DB transactions / min | transactions in window | window s | parked long polls | broker CPU s | autovacuum runs in window | command |"
echo "|---|---|---|---|---|---|---|---|"
# shellcheck disable=SC2086
echo "| idle (after e2e) | $(median_spread ${IDLE[per_min]}) | $(median_spread ${IDLE[txns]}) |" \
     "$IDLE_SECONDS | $IDLE_POLLS | $(median_spread ${IDLE[cpu]}) | $(median_spread ${IDLE[autovacuum]}) |" \
     "\`$(sed -E 's#http://127\.0\.0\.1:[0-9]+#http://127.0.0.1:PORT#g' <<<"$IDLE_CMD")\` |"
