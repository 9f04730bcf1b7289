#!/usr/bin/env bash
# The BENCHMARKS.md workloads push-1, push-100 and drain against `ordo serve` on a temporary SQLite
# database, driven by ordo-loadgen over loopback. Builds nothing: run it on a Release build.
#
#   bench/scripts/run-sqlite.sh [BUILD_DIR]        BUILD_DIR defaults to build/release
#
# Environment:
#   DURATION=30           seconds of each push run
#   DRAIN_MESSAGES=1000000 messages filled into 100 partitions, then drained
#   RUNS=1                runs of each workload; with 3 or more, quote the median (BENCHMARKS.md)
#   LOADGEN=path          ordo-loadgen to use (default BUILD_DIR/bench/ordo-loadgen)
#   KEEP_TMP=1            keep the temporary directory (databases, logs) for a post-mortem
#
# Each run gets a fresh broker and database. Per phase it records the broker's CPU seconds
# (utime+stime from /proc/PID/stat), its idle RSS (after start, before load) and its peak RSS
# (VmHWM, reset before the phase through /proc/PID/clear_refs where the kernel allows).
# The markdown table goes to stdout; progress and diagnostics to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${1:-build/release}
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
ORDO=$BUILD_DIR/ordo
LOADGEN=${LOADGEN:-$BUILD_DIR/bench/ordo-loadgen}
DURATION=${DURATION:-30}
DRAIN_MESSAGES=${DRAIN_MESSAGES:-1000000}
RUNS=${RUNS:-1}
PARTITIONS=100

log() { printf '%s\n' "$*" >&2; }
die() { log "run-sqlite: $*"; exit 1; }

for exe in "$ORDO" "$LOADGEN"; do
  [[ -x $exe ]] || die "$exe not found; build it first: cmake --build $BUILD_DIR --target ordo ordo-loadgen"
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
command -v curl >/dev/null || die "curl is needed to wait for /health/ready"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ordo-bench.XXXXXX")
BROKER_PID=
BROKER_LOG=
CLK_TCK=$(getconf CLK_TCK)

cleanup() {
  local rc=$?
  if [[ -n $BROKER_PID ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  if [[ ${KEEP_TMP:-0} = 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A TCP port nobody listens on (loopback), outside the kernel's ephemeral range so no outgoing
# connection holds it; the broker start retries if it loses a race for it anyway.
free_port() {
  local port low=32768 high=60999 lo=20000 span
  read -r low high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  if ((low - 10000 >= 2000)); then lo=10000; span=$((low - 10000)); else lo=$((high + 1)); span=$((65535 - high)); fi
  ((span > 0)) || die "no port range outside the ephemeral ports ($low-$high)"
  for _ in $(seq 1 200); do
    port=$((lo + (RANDOM * 32768 + RANDOM) % span))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}

# Starts a broker on a fresh database in $1; sets BROKER_PID, BROKER_LOG, PORT, URL, IDLE_RSS.
start_broker() {
  local dir=$1 attempt
  mkdir -p "$dir"
  BROKER_LOG=$dir/broker.log
  for attempt in 1 2 3; do
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT
    "$ORDO" serve --host 127.0.0.1 --port "$PORT" --db "sqlite:$dir/ordo.db" --data-dir "$dir" \
      --log-level warn >>"$BROKER_LOG" 2>&1 &
    BROKER_PID=$!
    for _ in $(seq 1 300); do
      if curl -fsS -o /dev/null --max-time 1 "$URL/health/ready" 2>/dev/null; then
        sleep 0.5  # let start-up work settle before the idle figure
        IDLE_RSS=$(status_mib VmRSS)
        return 0
      fi
      kill -0 "$BROKER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$BROKER_PID" 2>/dev/null; then
      kill -KILL "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true
      BROKER_PID=
      die "broker not ready after 30 s; log: $(tail -5 "$BROKER_LOG")"
    fi
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=
    log "broker exited at start (attempt $attempt): $(tail -3 "$BROKER_LOG")"
    mv "$BROKER_LOG" "$dir/broker-start-$attempt.log"
  done
  die "broker does not start"
}

# Stops the broker with SIGTERM (SIGKILL after 20 s) and reports how it ended.
stop_broker() {
  [[ -n $BROKER_PID ]] || return 0
  local rc=0
  if kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID"
    for _ in $(seq 1 200); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$BROKER_PID" 2>/dev/null; then
      log "broker ignored SIGTERM for 20 s: killing it"
      BROKER_PROBLEMS+=("ignored SIGTERM for 20 s")
      kill -KILL "$BROKER_PID"
    fi
  fi
  wait "$BROKER_PID" 2>/dev/null || rc=$?
  if [[ $rc -ne 0 ]]; then
    log "broker exited with status $rc; log tail:"
    tail -20 "$BROKER_LOG" | sed 's/^/    /' >&2
    BROKER_PROBLEMS+=("exit status $rc")
  fi
  local noisy
  noisy=$(grep -cE ' (warning|error|critical) ' "$BROKER_LOG" || true)
  if [[ $noisy -gt 0 ]]; then
    log "broker logged $noisy warnings/errors, first ones:"
    grep -E ' (warning|error|critical) ' "$BROKER_LOG" | head -5 | sed 's/^/    /' >&2
    BROKER_PROBLEMS+=("$noisy log lines at warning or above")
  fi
  BROKER_PID=
}

broker_alive() { [[ -n $BROKER_PID ]] && kill -0 "$BROKER_PID" 2>/dev/null; }

# CPU seconds (user + system) the broker used so far. The command name in field 2 may hold spaces,
# so fields are counted after its closing parenthesis: utime and stime are fields 14 and 15.
cpu_seconds() {
  local stat
  stat=$(<"/proc/$BROKER_PID/stat")
  stat=${stat##*) }
  awk -v tck="$CLK_TCK" '{ printf "%.2f", ($12 + $13) / tck }' <<<"$stat"
}

# A /proc/PID/status field (VmRSS, VmHWM) in MiB.
status_mib() {
  awk -v f="$1:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$BROKER_PID/status"
}

# Starts a new peak-RSS window; false where the kernel refuses.
reset_peak_rss() { echo 5 2>/dev/null >"/proc/$BROKER_PID/clear_refs"; }

# A key's value in the RESULT line of a loadgen output file.
result_field() { grep -m1 '^RESULT ' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }

# median and spread of numbers given as arguments: "median (min-max)", or the value for one run.
median_spread() {
  printf '%s\n' "$@" | sort -g | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "-"; exit }
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      if (NR == 1) printf "%s", fmt(m); else printf "%s (%s-%s)", fmt(m), fmt(v[1]), fmt(v[NR])
    }
    function fmt(x) { return (x == int(x)) ? sprintf("%d", x) : sprintf("%.1f", x) }'
}

# Runs one loadgen phase against the live broker and appends its figures to the arrays named
# after the workload. $1 workload name, $2 output file, rest: loadgen arguments.
declare -A COL  # COL[workload:field] = space-separated values, one per run
declare -A CMD  # CMD[workload] = the loadgen command line of the last run
WORKLOADS=()
BROKER_PROBLEMS=()
RESET_OK=1

run_phase() {
  local name=$1 out=$2
  shift 2
  [[ " ${WORKLOADS[*]} " = *" $name "* ]] || WORKLOADS+=("$name")
  CMD[$name]="ordo-loadgen $*"
  local cpu0 cpu1 peak rc=0
  reset_peak_rss || RESET_OK=0
  cpu0=$(cpu_seconds)
  log "  $name: ordo-loadgen $*"
  "$LOADGEN" "$@" --progress 0 >"$out" 2>&1 || rc=$?
  if ! broker_alive; then
    log "  broker died during $name; loadgen said:"
    sed 's/^/    /' "$out" >&2
    BROKER_PROBLEMS+=("died during $name")
    stop_broker
    die "broker crashed"
  fi
  cpu1=$(cpu_seconds)
  peak=$(status_mib VmHWM)
  grep -E '^(push|fill|drain|pops|latency|pop latency|ack latency|errors|RESULT)|^ +[0-9]+ x ' "$out" \
    | sed 's/^/    /' >&2 || true
  [[ $rc -eq 0 ]] || log "  ordo-loadgen exited with status $rc"
  grep -q '^RESULT ' "$out" || die "no RESULT line from ordo-loadgen ($name)"
  local msgs cpu
  msgs=$(result_field "$out" msgs)
  cpu=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')
  COL[$name:msg_per_s]+="$(result_field "$out" msg_per_s) "
  COL[$name:p50]+="$(result_field "$out" p50_us) "
  COL[$name:p99]+="$(result_field "$out" p99_us) "
  COL[$name:max]+="$(result_field "$out" max_us) "
  COL[$name:errors]+="$(result_field "$out" errors) "
  COL[$name:cpu]+="$cpu "
  COL[$name:cpu_per_m]+="$(awk -v c="$cpu" -v m="$msgs" 'BEGIN { printf "%.1f", (m > 0 ? c * 1e6 / m : 0) }') "
  COL[$name:idle_rss]+="$IDLE_RSS "
  COL[$name:peak_rss]+="$peak "
  if [[ $name = drain* ]]; then
    COL[$name:first]+="$(result_field "$out" first_half_msg_per_s) "
    COL[$name:second]+="$(result_field "$out" second_half_msg_per_s) "
  fi
}

cell() { # shellcheck disable=SC2086
  median_spread ${COL[$1:$2]}
}

# ---- header: what ran where --------------------------------------------------------------------
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  commit="$commit (with uncommitted changes)"
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
log "run-sqlite: $ORDO, $LOADGEN; DURATION=$DURATION DRAIN_MESSAGES=$DRAIN_MESSAGES RUNS=$RUNS"
[[ $build_type = Release ]] || log "warning: build type is '${build_type:-unknown}', not Release"

# ---- the workloads -----------------------------------------------------------------------------
for run in $(seq 1 "$RUNS"); do
  log "run $run/$RUNS"
  for batch in 1 100; do
    start_broker "$TMP/run$run-push-$batch"
    run_phase "push-$batch" "$TMP/run$run-push-$batch/loadgen.out" push --url "$URL" \
      --queue bench-push --connections 50 --batch "$batch" --partitions $PARTITIONS \
      --duration "$DURATION" --payload-bytes 100
    stop_broker
  done
  start_broker "$TMP/run$run-drain"
  run_phase "fill" "$TMP/run$run-drain/fill.out" fill --url "$URL" --queue bench-drain \
    --messages "$DRAIN_MESSAGES" --connections 10 --batch 100 --partitions $PARTITIONS \
    --payload-bytes 100
  run_phase "drain" "$TMP/run$run-drain/drain.out" drain --url "$URL" --queue bench-drain \
    --consumers 10 --batch 100 --expect "$DRAIN_MESSAGES"
  stop_broker
done

# ---- the table ---------------------------------------------------------------------------------
echo
echo "Machine: $(uname -srm), $cpu_model, $(nproc) cores, ${mem_gib} GiB. Build: ${build_type:-unknown}."
echo "Commit $commit. Engine: SQLite (WAL, synchronous=FULL), fresh database per run, loopback."
echo "Broker: \`ordo serve --host 127.0.0.1 --port PORT --db sqlite:TMP/ordo.db --data-dir TMP --log-level warn\`."
echo "$RUNS run(s) per workload; cells are the median (min-max) over runs. Latency: per request"
echo "(push) or per pop (drain). Peak RSS: $([[ $RESET_OK = 1 ]] && echo "VmHWM within the phase" || echo "VmHWM since broker start (clear_refs refused)")."
echo
echo "| workload | msg/s | p50 µs | p99 µs | max µs | errors | broker CPU s | CPU s / 1M msgs | idle RSS MiB | peak RSS MiB | notes | command |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for w in "${WORKLOADS[@]}"; do
  notes=
  if [[ $w = drain* ]]; then notes="1st half $(cell "$w" first) msg/s, 2nd half $(cell "$w" second) msg/s"; fi
  [[ $w = fill ]] && notes="setup for drain"
  cmd=$(sed -E 's#http://127\.0\.0\.1:[0-9]+#http://127.0.0.1:PORT#' <<<"${CMD[$w]}")
  echo "| $w | $(cell "$w" msg_per_s) | $(cell "$w" p50) | $(cell "$w" p99) | $(cell "$w" max) |" \
       "$(cell "$w" errors) | $(cell "$w" cpu) | $(cell "$w" cpu_per_m) | $(cell "$w" idle_rss) |" \
       "$(cell "$w" peak_rss) | $notes | \`$cmd\` |"
done
if [[ ${#BROKER_PROBLEMS[@]} -gt 0 ]]; then
  echo
  echo "Broker problems seen: $(IFS=';'; echo "${BROKER_PROBLEMS[*]}")."
fi
