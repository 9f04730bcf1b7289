#!/usr/bin/env bash
# The BENCHMARKS.md workloads push-1, push-100 and drain against `ordo serve` on a temporary SQLite
# database, driven by `ordo bench` over loopback. Builds nothing: run it on a Release build.
#
#   bench/scripts/run-sqlite.sh [BUILD_DIR]        BUILD_DIR defaults to build/release
#
# Environment:
#   DURATION=30           seconds of each push run
#   DRAIN_MESSAGES=1000000 messages filled into 100 partitions, then drained
#   RUNS=1                runs of each workload; with 3 or more, quote the median (BENCHMARKS.md)
#   HOST_PROBE_SECONDS=5  the host's state before and after the set (`ordo bench host`); 0: none
#   KEEP_TMP=1            keep the temporary directory (databases, logs) for a post-mortem
#
# Each run gets a fresh broker and database. Per phase it records the broker's CPU seconds
# (utime+stime from /proc/PID/stat), its idle RSS (after start, before load) and its peak RSS
# (VmHWM, reset before the phase through /proc/PID/clear_refs where the kernel allows).
# The markdown table goes to stdout; progress and diagnostics to stderr.
set -euo pipefail

SCRIPT="run-sqlite"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${1:-build/release}
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
# shellcheck source=bench/scripts/common.sh
source "$ROOT/bench/scripts/common.sh"
bench_init
collect_facts
host_probe "before the set"
log "$SCRIPT: $ORDO; DURATION=$DURATION DRAIN_MESSAGES=$DRAIN_MESSAGES RUNS=$RUNS"

# ---- the workloads -----------------------------------------------------------------------------
for run in $(seq 1 "$RUNS"); do
  log "run $run/$RUNS"
  for batch in 1 100; do
    dir=$TMP/run$run-push-$batch
    start_broker "$dir" "sqlite:$dir/ordo.db"
    run_phase "push-$batch" "$dir/bench.out" bench push --url "$URL" \
      --queue bench-push --connections 50 --batch "$batch" --partitions "$PARTITIONS" \
      --duration "$DURATION" --payload-bytes 100
    stop_broker
  done
  dir=$TMP/run$run-drain
  start_broker "$dir" "sqlite:$dir/ordo.db"
  run_phase "fill" "$dir/fill.out" bench fill --url "$URL" --queue bench-drain \
    --messages "$DRAIN_MESSAGES" --connections 10 --batch 100 --partitions "$PARTITIONS" \
    --payload-bytes 100
  run_phase "drain" "$dir/drain.out" bench drain --url "$URL" --queue bench-drain \
    --consumers 10 --batch 100 --expect "$DRAIN_MESSAGES"
  stop_broker
done

host_probe "after the set"

# ---- the table ---------------------------------------------------------------------------------
echo
print_machine
echo "Commit $commit. Engine: SQLite (WAL, synchronous=FULL), fresh database per run, loopback."
echo "Broker: \`ordo serve --host 127.0.0.1 --port PORT --db sqlite:TMP/ordo.db --data-dir TMP --log-level warn\`."
echo "$RUNS run(s) per workload; cells are the median (min-max) over runs. Latency: per request"
echo "(push) or per pop (drain). Peak RSS: $([[ $RESET_OK = 1 ]] && echo "VmHWM within the phase" || echo "VmHWM since broker start (clear_refs refused)")."
print_table 's#http://127\.0\.0\.1:[0-9]+#http://127.0.0.1:PORT#'
