# shellcheck shell=bash
# Shared by bench/scripts/run-*.sh (sourced, not run): the broker's life cycle, the per-phase
# measurements (broker CPU seconds, idle and peak RSS), and the markdown table.
#
# The sourcing script sets SCRIPT (its name, for messages) and BUILD_DIR (absolute) first, then
# calls bench_init. Phases run `ordo bench ...` (or pg_ceiling) and read their `RESULT ...` line.
# A script may define:
#   extra_cleanup             called on exit, after the broker was stopped
#   db_cpu_seconds            CPU seconds the database server used so far (adds a column)
#   phase_notes NAME          text for the notes column of workload NAME
# Progress and diagnostics go to stderr, the table to stdout.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ORDO=$BUILD_DIR/ordo
DURATION=${DURATION:-30}
DRAIN_MESSAGES=${DRAIN_MESSAGES:-1000000}
RUNS=${RUNS:-1}
HOST_PROBE_SECONDS=${HOST_PROBE_SECONDS:-5}
# shellcheck disable=SC2034  # used by the sourcing scripts
PARTITIONS=100

log() { printf '%s\n' "$*" >&2; }
die() { log "$SCRIPT: $*"; exit 1; }

BROKER_PID=
BROKER_LOG=
CLK_TCK=$(getconf CLK_TCK)
declare -A COL  # COL[workload:field] = space-separated values, one per run
declare -A CMD  # CMD[workload] = the command line of the last run
WORKLOADS=()
BROKER_PROBLEMS=()
# shellcheck disable=SC2034  # read by the sourcing scripts
RESET_OK=1

# Checks the tools, makes TMP and installs the exit trap.
bench_init() {
  [[ -x $ORDO ]] || die "$ORDO not found; build it first: cmake --build $BUILD_DIR --target ordo"
  [[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
  [[ $DURATION =~ ^[0-9]+([.][0-9]+)?$ ]] || die "DURATION must be a number of seconds"
  [[ $DRAIN_MESSAGES =~ ^[1-9][0-9]*$ ]] || die "DRAIN_MESSAGES must be a positive integer"
  [[ $HOST_PROBE_SECONDS =~ ^[0-9]+([.][0-9]+)?$ ]] || die "HOST_PROBE_SECONDS must be a number of seconds"
  command -v curl >/dev/null || die "curl is needed to wait for /health/ready"
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/ordo-bench.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local rc=$?
  if [[ -n $BROKER_PID ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  if declare -F extra_cleanup >/dev/null; then extra_cleanup || true; fi
  if [[ ${KEEP_TMP:-0} = 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit $rc
}

# A TCP port nobody listens on (loopback), outside the kernel's ephemeral range so no outgoing
# connection holds it; the broker start retries if it loses a race for it anyway.
free_port() {
  local port low=32768 high=60999 lo span
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

# start_broker DIR DB_URL: starts `ordo serve` on DB_URL with its data directory and log in DIR;
# sets BROKER_PID, BROKER_LOG, PORT, URL, IDLE_RSS.
start_broker() {
  local dir=$1 db=$2 attempt
  mkdir -p "$dir"
  BROKER_LOG=$dir/broker.log
  for attempt in 1 2 3; do
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT
    "$ORDO" serve --host 127.0.0.1 --port "$PORT" --db "$db" --data-dir "$dir" \
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

# CPU seconds (user + system) process $1 used so far; with "children" as $2, also those of its
# exited and reaped children (cutime + cstime). The command name in field 2 may hold spaces, so
# fields are counted after its closing parenthesis: utime, stime, cutime, cstime are 14 to 17.
proc_cpu_seconds() {
  local stat
  stat=$(<"/proc/$1/stat") || { echo 0; return 0; }
  stat=${stat##*) }
  awk -v tck="$CLK_TCK" -v kids="${2:-}" \
    '{ t = $12 + $13; if (kids == "children") t += $14 + $15; printf "%.2f", t / tck }' <<<"$stat"
}

cpu_seconds() { proc_cpu_seconds "$BROKER_PID"; }

# "steal total" jiffies of the whole machine so far (/proc/stat's cpu line: steal is its 8th
# value). Steal is time the hypervisor gave this machine's virtual CPUs to someone else: on a
# shared host it is what makes one phase's figures differ from another's.
machine_jiffies() {
  awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t; exit }' /proc/stat
}

# Percent of the machine's CPU time stolen between two machine_jiffies readings.
steal_percent() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    split(a, x, " "); split(b, y, " "); d = y[2] - x[2]
    printf "%.0f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}

# A /proc/PID/status field (VmRSS, VmHWM) in MiB.
status_mib() {
  awk -v f="$1:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$BROKER_PID/status"
}

# Starts a new peak-RSS window; false where the kernel refuses.
reset_peak_rss() { echo 5 2>/dev/null >"/proc/$BROKER_PID/clear_refs"; }

# A key's value in the RESULT line of an output file.
result_field() { grep -m1 '^RESULT ' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }

# median and spread of numbers given as arguments: "median (min-max)", or the value for one run.
median_spread() {
  if [[ $# -eq 0 ]]; then echo "-"; return 0; fi
  printf '%s\n' "$@" | sort -g | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "-"; exit }
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      if (NR == 1) printf "%s", fmt(m); else printf "%s (%s-%s)", fmt(m), fmt(v[1]), fmt(v[NR])
    }
    function fmt(x) { return (x == int(x)) ? sprintf("%d", x) : sprintf("%.1f", x) }'
}

cell() { # shellcheck disable=SC2086
  median_spread ${COL[$1:$2]:-}
}

# Appends a value to a column of a workload (one per run).
record() { COL[$1:$2]+="$3 "; }

# run_phase NAME OUT TOOL ARGS...: runs one measured phase and appends its figures to the columns
# of workload NAME. TOOL is `bench` (ordo bench ARGS, against the live broker) or `pg_ceiling`
# ($PG_CEILING_BIN ARGS; no broker needed). Broker figures are taken only while a broker runs.
run_phase() {
  local name=$1 out=$2 tool=$3
  shift 3
  local -a cmd
  case $tool in
    bench) cmd=("$ORDO" bench "$@"); CMD[$name]="ordo bench $*" ;;
    pg_ceiling) cmd=("$PG_CEILING_BIN" "$@"); CMD[$name]="pg_ceiling $*" ;;
    *) die "run_phase: unknown tool $tool" ;;
  esac
  [[ " ${WORKLOADS[*]} " = *" $name "* ]] || WORKLOADS+=("$name")
  local with_broker=0 cpu0 cpu1 db0 db1 peak rc=0
  if broker_alive; then
    with_broker=1
    # shellcheck disable=SC2034  # read by the sourcing scripts
    reset_peak_rss || RESET_OK=0
    cpu0=$(cpu_seconds)
  fi
  declare -F db_cpu_seconds >/dev/null && db0=$(db_cpu_seconds)
  local host0
  host0=$(machine_jiffies)
  log "  $name: ${CMD[$name]}"
  "${cmd[@]}" --progress 0 >"$out" 2>&1 || rc=$?
  record "$name" steal "$(steal_percent "$host0" "$(machine_jiffies)")"
  if ((with_broker)) && ! broker_alive; then
    log "  broker died during $name; the tool said:"
    sed 's/^/    /' "$out" >&2
    BROKER_PROBLEMS+=("died during $name")
    stop_broker
    die "broker crashed"
  fi
  grep -E '^(push|fill|drain|e2e|pg_ceiling|server|pops|latency|pop latency|ack latency|push latency|messages|groups|warning|errors|RESULT)|^ +[0-9]+ x ' "$out" \
    | sed 's/^/    /' >&2 || true
  [[ $rc -eq 0 ]] || log "  ${CMD[$name]%% *} exited with status $rc"
  grep -q '^RESULT ' "$out" || die "no RESULT line ($name); output: $(tail -5 "$out")"
  local msgs
  msgs=$(result_field "$out" msgs)
  record "$name" msg_per_s "$(result_field "$out" msg_per_s)"
  record "$name" p50 "$(result_field "$out" p50_us)"
  record "$name" p99 "$(result_field "$out" p99_us)"
  record "$name" max "$(result_field "$out" max_us)"
  record "$name" errors "$(result_field "$out" errors)"
  if ((with_broker)); then
    cpu1=$(cpu_seconds)
    peak=$(status_mib VmHWM)
    local cpu
    cpu=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')
    record "$name" cpu "$cpu"
    record "$name" cpu_per_m "$(awk -v c="$cpu" -v m="$msgs" 'BEGIN { printf "%.1f", (m > 0 ? c * 1e6 / m : 0) }')"
    record "$name" idle_rss "$IDLE_RSS"
    record "$name" peak_rss "$peak"
  fi
  if [[ -n ${db0:-} ]]; then
    db1=$(db_cpu_seconds)
    record "$name" db_cpu "$(awk -v a="$db0" -v b="$db1" 'BEGIN { printf "%.2f", b - a }')"
  fi
  case $name in
    drain* | fanout*)
      record "$name" first "$(result_field "$out" first_half_msg_per_s)"
      record "$name" second "$(result_field "$out" second_half_msg_per_s)"
      ;;
    e2e*)
      record "$name" lag "$(result_field "$out" send_lag_p99_us)"
      record "$name" lost "$(result_field "$out" lost)"
      ;;
  esac
}

# Facts about the run, for the header lines.
collect_facts() {
  commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    commit="$commit (with uncommitted changes)"
  fi
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)
  cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  mem_gib=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
  [[ $build_type = Release ]] || log "warning: build type is '${build_type:-unknown}', not Release"
}

print_machine() {
  echo "Machine: $(uname -srm), $cpu_model, $(nproc) cores, ${mem_gib} GiB. Build: ${build_type:-unknown}."
  print_host
}

# The host's state with none of our load (`ordo bench host`), taken before and after a set: how
# late 1 ms sleeps woke, a fixed CPU loop's wall time against the CPU time it got, and the steal
# meanwhile. Every hop of a message is such a wake-up: a host whose sleeps wake milliseconds late
# adds that to the e2e tail whatever the broker does. HOST_PROBE_SECONDS=0: not taken.
HOST_STATES=()
host_probe() {
  local label=$1 out=$TMP/host-$1.out
  [[ $HOST_PROBE_SECONDS = 0 ]] && return 0
  log "$SCRIPT: host probe ($label)"
  if ! "$ORDO" bench host --seconds "$HOST_PROBE_SECONDS" >"$out" 2>&1; then
    log "$SCRIPT: ordo bench host failed, see $out"
    return 0
  fi
  local f=(late_p50_us late_p99_us late_max_us late_over_5ms loop_wall_ms loop_cpu_ms steal_pct)
  local -A v
  local k
  for k in "${f[@]}"; do v[$k]=$(result_field "$out" "$k"); done
  HOST_STATES+=("$label, 1 ms sleeps woke late by p50 ${v[late_p50_us]} µs, p99 ${v[late_p99_us]} µs, max ${v[late_max_us]} µs (${v[late_over_5ms]} over 5 ms), a CPU loop took ${v[loop_wall_ms]} ms for ${v[loop_cpu_ms]} ms of CPU, steal ${v[steal_pct]}%")
}

print_host() {
  [[ ${#HOST_STATES[@]} -eq 0 ]] && return 0
  local line
  echo "Host, with no load of ours (\`ordo bench host --seconds $HOST_PROBE_SECONDS\`; a CPU loop's wall time above its CPU time is time the host ran something else):"
  for line in "${HOST_STATES[@]}"; do echo "- $line."; done
}

# The notes column of the common workloads; a script's phase_notes NAME may add to it.
default_notes() {
  local w=$1
  case $w in
    drain* | fanout*) echo "1st half $(cell "$w" first) msg/s, 2nd half $(cell "$w" second) msg/s" ;;
    fill*) echo "setup for drain" ;;
    e2e*) echo "push-to-delivery latency; send lag p99 $(cell "$w" lag) µs; lost $(cell "$w" lost)" ;;
  esac
}

# The markdown table of every workload; $1: sed expression that hides run-specific addresses in
# the commands.
print_table() {
  local hide=$1 db_col=0 w notes extra cmd
  declare -F db_cpu_seconds >/dev/null && db_col=1
  echo "Host steal: the share of the machine's CPU time its hypervisor gave elsewhere during the phase."
  echo
  local -a heads=(workload msg/s "p50 µs" "p99 µs" "max µs" errors "broker CPU s" "CPU s / 1M msgs")
  ((db_col)) && heads+=("DB CPU s")
  heads+=("idle RSS MiB" "peak RSS MiB" "host steal %" notes command)
  printf '| %s ' "${heads[@]}"
  echo "|"
  printf '|---%.0s' "${heads[@]}"
  echo "|"
  for w in "${WORKLOADS[@]}"; do
    notes=$(default_notes "$w")
    if declare -F phase_notes >/dev/null; then
      extra=$(phase_notes "$w")
      [[ -n $extra ]] && notes="${notes:+$notes; }$extra"
    fi
    cmd=$(sed -E "$hide" <<<"${CMD[$w]}")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |' "$w" "$(cell "$w" msg_per_s)" \
      "$(cell "$w" p50)" "$(cell "$w" p99)" "$(cell "$w" max)" "$(cell "$w" errors)" \
      "$(cell "$w" cpu)" "$(cell "$w" cpu_per_m)"
    ((db_col)) && printf ' %s |' "$(cell "$w" db_cpu)"
    printf ' %s | %s | %s | %s | `%s` |\n' "$(cell "$w" idle_rss)" "$(cell "$w" peak_rss)" \
      "$(cell "$w" steal)" "$notes" "$cmd"
  done
  if [[ ${#BROKER_PROBLEMS[@]} -gt 0 ]]; then
    echo
    echo "Broker problems seen: $(IFS=';'; echo "${BROKER_PROBLEMS[*]}")."
  fi
}
