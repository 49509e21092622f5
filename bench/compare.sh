#!/usr/bin/env bash
# Client API side by side: an etcd 3.4 cluster and a Synod cluster (3 members each by default) on this machine,
# driven by the same `synod bench` commands, alternating system by system for every workload so
# that both see the same machine load. Every run gets a fresh cluster (fresh data dirs).
#
# Recorded per run: throughput, p50/p99/p99.9 latency (from `synod bench --json`), the server CPU
# time of the members (utime+stime from /proc/<pid>/stat, before and after the run) per 10,000
# requests, and the peak RSS of each member (VmHWM from /proc/<pid>/status) after the run.
# Output: a markdown table with both systems and the ratio Synod/etcd, on stdout (and --out).
# With --baseline the reference is another Synod build instead of etcd (an A/B of a change on
# this noisy machine); with --rounds N every figure is the median of N alternating runs.
#
# Usage: bench/compare.sh [options]
#   --synod PATH        synod binary: the server (`PATH server ...`), default build/synod
#   --bench PATH        binary whose `bench` subcommand makes the load, default: --synod
#   --etcd PATH         etcd binary, default /usr/bin/etcd
#   --baseline PATH     A/B two Synod builds: this synod binary takes etcd's place (its ports,
#                       its turn), and the report compares it with --synod
#   --rounds N          run the whole alternation N times and report medians, default 1
#   --clients "64 1"    client counts to run each workload at, default "64"
#   --total N           requests per run, default 10000
#   --workloads LIST    default "put range-l range-s txn-put"
#   --engine "raft multipaxos pbft"
#                       Synod's consensus engines to run, each a system of its own (its own
#                       fresh cluster per run, alternating with the others), default "raft";
#                       with Raft and another, the report adds that engine's ratio to Raft.
#                       PBFT members get keys (`synod keys new`) before their first start
#   --members N         members per cluster, every system alike; default 3, or 4 when PBFT
#                       is among the engines (n = 3f + 1 with f = 1)
#   --tls               https:// client URLs on every system (a CA and a member certificate made
#                       with openssl in the work dir; no client certificates; peers plain):
#                       the bench connects with --cacert
#   --memory            also load 1M keys of 256-byte values and report RSS per node (long)
#   --memory-keys N     keys of the memory load, default 1000000 (smaller: to try the script)
#   --run-timeout S     bound on one bench run, default 300 (the memory load gets 6x)
#   --data-root DIR     where the temporary data dirs go, default ${TMPDIR:-/tmp}
#   --out FILE          also write the markdown report to FILE
#   --results FILE      also keep the raw results (one JSON object per run) in FILE
#   --keep              keep the work dir (data and logs) on exit
#
# Ports: etcd members on 32379/32380, 32389/32390, ... (client/peer, 10 apart), Synod members
# on 33379/33380, 33389/33390, ... Everything listens on 127.0.0.1 only.
set -euo pipefail

SYNOD=build/synod
BENCH=""
ETCD=/usr/bin/etcd
BASELINE=""
ROUNDS=1
CLIENTS_LIST="64"
TOTAL=10000
WORKLOADS="put range-l range-s txn-put"
ENGINES="raft"
MEMBERS=""
MEMORY=0
TLS=0
RUN_TIMEOUT=300
DATA_ROOT="${TMPDIR:-/tmp}"
OUT=""
RESULTS=""
KEEP=0
readonly START_TIMEOUT_S=30 STOP_TIMEOUT_S=10 VAL_SIZE=256
MEMORY_KEYS=1000000
readonly ETCD_BASE_PORT=32379 SYNOD_BASE_PORT=33379

die() { echo "compare.sh: $*" >&2; exit 2; }
note() { echo "compare.sh: $*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --synod) SYNOD="$2"; shift 2 ;;
    --bench) BENCH="$2"; shift 2 ;;
    --etcd) ETCD="$2"; shift 2 ;;
    --baseline) BASELINE="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --clients) CLIENTS_LIST="$2"; shift 2 ;;
    --total) TOTAL="$2"; shift 2 ;;
    --workloads) WORKLOADS="$2"; shift 2 ;;
    --engine) ENGINES="$2"; shift 2 ;;
    --members) MEMBERS="$2"; shift 2 ;;
    --memory) MEMORY=1; shift ;;
    --tls) TLS=1; shift ;;
    --memory-keys) MEMORY_KEYS="$2"; shift 2 ;;
    --run-timeout) RUN_TIMEOUT="$2"; shift 2 ;;
    --data-root) DATA_ROOT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --results) RESULTS="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[[ -n "$BENCH" ]] || BENCH="$SYNOD"
[[ "$TOTAL" =~ ^[1-9][0-9]*$ ]] || die "--total wants a positive number, got '$TOTAL'"
[[ "$MEMORY_KEYS" =~ ^[1-9][0-9]{0,7}$ ]] || die "--memory-keys wants 1..99999999, not '$MEMORY_KEYS'"
[[ "$RUN_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "--run-timeout wants seconds, got '$RUN_TIMEOUT'"
[[ "$ROUNDS" =~ ^[1-9][0-9]{0,2}$ ]] || die "--rounds wants 1..999, got '$ROUNDS'"
for c in $CLIENTS_LIST; do [[ "$c" =~ ^[1-9][0-9]*$ ]] || die "--clients: bad count '$c'"; done
for w in $WORKLOADS; do
  case "$w" in put|range-l|range-s|txn-put) ;; *) die "--workloads: unknown '$w'" ;; esac
done
"$BENCH" bench --help >/dev/null 2>&1 || die "'$BENCH bench --help' failed: build synod first"
# The reference: etcd, or with --baseline another Synod build in etcd's place.
REF="etcd"
if [[ -n "$BASELINE" ]]; then
  REF="baseline"
  [[ "$(timeout 10 "$BASELINE" server --help 2>&1 || true)" == *--initial-cluster-token* ]] ||
    die "'$BASELINE server --help' failed or lists no --initial-cluster-token: not a Synod build"
else
  "$ETCD" --version >/dev/null 2>&1 || die "'$ETCD --version' failed"
fi
REPORT_PY="$(cd "$(dirname "$0")" && pwd)/compare_report.py"
[[ -f "$REPORT_PY" ]] || die "missing $REPORT_PY"

# Synod's systems: "synod" runs Raft (the default engine), "synod-multipaxos" Multi-Paxos.
SYNOD_SYSTEMS=""
for e in $ENGINES; do
  case "$e" in
    raft) SYNOD_SYSTEMS+="${SYNOD_SYSTEMS:+ }synod" ;;
    multipaxos) SYNOD_SYSTEMS+="${SYNOD_SYSTEMS:+ }synod-multipaxos" ;;
    pbft) SYNOD_SYSTEMS+="${SYNOD_SYSTEMS:+ }synod-pbft" ;;
    *) die "--engine: unknown '$e' (raft, multipaxos, pbft)" ;;
  esac
done
[[ -n "$SYNOD_SYSTEMS" ]] || die "--engine wants raft, multipaxos or pbft (or several)"
if [[ -z "$MEMBERS" ]]; then
  MEMBERS=3
  [[ " $SYNOD_SYSTEMS " == *" synod-pbft "* ]] && MEMBERS=4
fi
[[ "$MEMBERS" =~ ^[1-9]$ ]] || die "--members wants 1..9"
[[ " $SYNOD_SYSTEMS " != *" synod-pbft "* || $MEMBERS -ge 4 ]] || die "PBFT needs --members 4 or more"
[[ -z "$BASELINE" || "$SYNOD_SYSTEMS" == synod ]] || die "--baseline compares Raft builds only"
SYSTEMS="$REF"
SYNOD_SKIPPED=""
# A server that takes etcd's flags lists them in its help (a bare `synod --help` would not).
SYNOD_HELP=$(timeout 10 "$SYNOD" server --help 2>&1 || true)
if [[ "$SYNOD_HELP" == *--initial-cluster-token* ]]; then
  SYSTEMS="$REF $SYNOD_SYSTEMS"
elif [[ -n "$BASELINE" ]]; then
  die "'$SYNOD server --help' failed or lists no --initial-cluster-token: nothing to compare"
else
  SYNOD_SKIPPED="'$SYNOD server --help' failed or lists no --initial-cluster-token"
  note "Synod skipped: $SYNOD_SKIPPED (no server yet?); measuring etcd only"
fi

WORK="$(mktemp -d "$DATA_ROOT/synod-compare.XXXXXX")"
RESULTS_TMP="$WORK/results.jsonl"
: >"$RESULTS_TMP"
PIDS=()
ENDPOINTS=""
BENCH_PID=""
SCHEME=http
SERVER_TLS=()
BENCH_TLS=""
if [[ $TLS -eq 1 ]]; then
  # A CA and one certificate for 127.0.0.1 that every member shows.
  pki="$WORK/pki"
  mkdir -p "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=compare-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" >/dev/null 2>&1 || die "openssl: cannot make the CA"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=member" -keyout "$pki/member.key" \
    -out "$pki/member.csr" >/dev/null 2>&1 || die "openssl: cannot make the member key"
  printf 'subjectAltName=IP:127.0.0.1\n' >"$pki/san.ext"
  openssl x509 -req -in "$pki/member.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$pki/san.ext" -out "$pki/member.crt" >/dev/null 2>&1 ||
    die "openssl: cannot sign the member certificate"
  SCHEME=https
  SERVER_TLS=(--cert-file "$pki/member.crt" --key-file "$pki/member.key")
  BENCH_TLS="--cacert $pki/ca.crt"
fi

stop_cluster() {
  [[ ${#PIDS[@]} -gt 0 ]] || return 0
  kill -TERM "${PIDS[@]}" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT_S)) pid
  for pid in "${PIDS[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [[ $SECONDS -lt $deadline ]]; do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}

cleanup() {
  local rc=$?
  if [[ -n "$BENCH_PID" ]]; then
    kill -TERM "$BENCH_PID" 2>/dev/null || true
    wait "$BENCH_PID" 2>/dev/null || true
  fi
  stop_cluster
  if [[ $KEEP -eq 1 || $rc -ne 0 ]]; then note "work dir (data, logs) kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# pbft_keys RUN_DIR: every member's keys in its data dir, every public file in every member's.
pbft_keys() {
  local dir="$1" i j
  for i in $(seq "$MEMBERS"); do
    "$SYNOD" keys new --data-dir "$dir/n$i" --name "n$i" >/dev/null || die "synod keys new failed"
  done
  for i in $(seq "$MEMBERS"); do
    for j in $(seq "$MEMBERS"); do
      [[ $i == "$j" ]] || cp "$dir/n$j/pbft/public/n$j.pub" "$dir/n$i/pbft/public/"
    done
  done
}

# start_cluster SYSTEM RUN_DIR: MEMBERS members with etcd's flags; sets PIDS and ENDPOINTS.
start_cluster() {
  local system="$1" dir="$2" base cmd i client peer initial=""
  if [[ "$system" == etcd ]]; then
    base=$ETCD_BASE_PORT cmd=("$ETCD")
  elif [[ "$system" == baseline ]]; then
    base=$ETCD_BASE_PORT cmd=("$BASELINE" server)
  elif [[ "$system" == synod-multipaxos ]]; then
    base=$SYNOD_BASE_PORT cmd=("$SYNOD" server --engine multipaxos)
  elif [[ "$system" == synod-pbft ]]; then
    base=$SYNOD_BASE_PORT cmd=("$SYNOD" server --engine pbft)
  else
    base=$SYNOD_BASE_PORT cmd=("$SYNOD" server)
  fi
  ENDPOINTS=""
  for i in $(seq "$MEMBERS"); do
    peer=$((base + 10 * (i - 1) + 1))
    initial+="${initial:+,}n$i=http://127.0.0.1:$peer"
  done
  mkdir -p "$dir"
  [[ "$system" != synod-pbft ]] || pbft_keys "$dir"
  for i in $(seq "$MEMBERS"); do
    client=$((base + 10 * (i - 1)))
    peer=$((client + 1))
    "${cmd[@]}" --name "n$i" --data-dir "$dir/n$i" \
      --listen-client-urls "$SCHEME://127.0.0.1:$client" --advertise-client-urls "$SCHEME://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token "compare-$system" \
      "${SERVER_TLS[@]}" >"$dir/n$i.log" 2>&1 &
    PIDS+=($!)
    ENDPOINTS+="${ENDPOINTS:+,}$SCHEME://127.0.0.1:$client"
  done
  wait_ready "$system" "$dir"
}

# Ready: a linearizable read answered by each of the members (so a leader exists).
wait_ready() {
  local system="$1" dir="$2" deadline=$((SECONDS + START_TIMEOUT_S)) pid
  while [[ $SECONDS -lt $deadline ]]; do
    for pid in "${PIDS[@]}"; do
      kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir"/n*.log >&2; die "$system member $pid exited during start"; }
    done
    # shellcheck disable=SC2086 # BENCH_TLS is words
    if "$BENCH" bench range compare-health --endpoints "$ENDPOINTS" $BENCH_TLS --total 3 --dial-timeout 1s \
      --request-timeout 2s --no-progress --json >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  tail -n 20 "$dir"/n*.log >&2
  die "$system cluster not ready within ${START_TIMEOUT_S}s"
}

members_alive() {
  local pid
  for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || return 1; done
}

cpu_ticks() {  # utime+stime of the members, in clock ticks (fields 14, 15; comm may hold spaces)
  local total=0 pid t
  for pid in "${PIDS[@]}"; do
    t=$(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')
    total=$((total + t))
  done
  echo "$total"
}

status_kb() {  # status_kb FIELD: the FIELD (VmHWM, VmRSS) of each member in kB, comma separated
  local pid out=""
  for pid in "${PIDS[@]}"; do
    out+="${out:+,}$(awk -v f="$1:" '$1 == f {print $2}' "/proc/$pid/status")"
  done
  echo "$out"
}

# bench_args WORKLOAD CLIENTS: the `synod bench` arguments of one run.
bench_args() {
  local common="--endpoints $ENDPOINTS $BENCH_TLS --clients $2 --conns $(( $2 < 8 ? 1 : 8 )) --total $TOTAL"
  case "$1" in
    put) echo "put $common --key-size 8 --val-size $VAL_SIZE --key-space-size 100000" ;;
    range-l) echo "range 00000000 $common --consistency l" ;;
    range-s) echo "range 00000000 $common --consistency s" ;;
    txn-put) echo "txn-put $common --key-size 8 --val-size $VAL_SIZE --key-space-size 100000 --txn-ops 1" ;;
    memory) echo "put --endpoints $ENDPOINTS $BENCH_TLS --clients $2 --conns 8 --total $MEMORY_KEYS --key-size 8 --val-size $VAL_SIZE --key-space-size $MEMORY_KEYS --sequential-keys" ;;
  esac
}

# run_one SYSTEM WORKLOAD CLIENTS ROUND: fresh cluster, one bench run, one JSON line of results.
run_one() {
  local system="$1" workload="$2" clients="$3" round="$4" dir timeout_s=$RUN_TIMEOUT args
  dir="$WORK/$system-$workload-c$clients-r$round"
  local of=""
  [[ $ROUNDS -eq 1 ]] || of=", round $round of $ROUNDS"
  note "$system: $workload, --clients $clients$of"
  start_cluster "$system" "$dir"
  if [[ "$workload" == range-* ]]; then  # the key read: one value written first
    # shellcheck disable=SC2086
    "$BENCH" bench put --endpoints "$ENDPOINTS" $BENCH_TLS --total 1 --key-space-size 1 --val-size "$VAL_SIZE" \
      --no-progress >/dev/null
  fi
  [[ "$workload" == memory ]] && timeout_s=$((RUN_TIMEOUT * 6))
  args=$(bench_args "$workload" "$clients")
  local before after bench_json rc=0
  before=$(cpu_ticks)
  # In the background so that a signal to this script is handled at once (wait is interruptible);
  # timeout passes a TERM on to the bench.
  # shellcheck disable=SC2086  # args is a word list on purpose
  timeout --kill-after=5 "$timeout_s" "$BENCH" bench $args --json >"$dir/bench.json" 2>"$dir/bench.err" &
  BENCH_PID=$!
  wait "$BENCH_PID" || rc=$?
  BENCH_PID=""
  bench_json=$(cat "$dir/bench.json")
  if [[ $rc -gt 1 || -z "$bench_json" ]]; then  # 124: the run timed out; the report lists it
    tail -n 5 "$dir/bench.err" >&2
    note "$system $workload: bench failed (exit $rc), logs in $dir"
    printf '{"system":"%s","workload":"%s","clients":%s,"round":%s,"bench_failed":%s}\n' \
      "$system" "$workload" "$clients" "$round" "$rc" >>"$RESULTS_TMP"
    stop_cluster
    return 0
  fi
  local exited=false hwm="" rss="" ticks=null
  if members_alive; then
    after=$(cpu_ticks)
    ticks=$((after - before)) hwm=$(status_kb VmHWM) rss=$(status_kb VmRSS)
  else  # killed from outside, or crashed: no CPU or memory figures, the report says so
    exited=true
    note "$system $workload: a member exited during the run (logs in $dir)"
  fi
  printf '{"system":"%s","workload":"%s","clients":%s,"round":%s,"member_exited":%s,"cpu_ticks":%s,"clk_tck":%s,"hwm_kb":[%s],"rss_kb":[%s],"command":"synod bench %s","bench":%s}\n' \
    "$system" "$workload" "$clients" "$round" "$exited" "$ticks" "$(getconf CLK_TCK)" "$hwm" "$rss" \
    "$args --json" "$bench_json" >>"$RESULTS_TMP"
  stop_cluster
}

# Alternate: for every run the systems take turns, and which goes first flips each workload
# (and each round).
order=0
for round in $(seq "$ROUNDS"); do
  for workload in $WORKLOADS; do
    for clients in $CLIENTS_LIST; do
      systems="$SYSTEMS"
      # Reversed every other time, so that no system always runs first (or after another).
      [[ $((order % 2)) -eq 1 ]] && systems=$(echo "$SYSTEMS" | tr ' ' '\n' | tac | tr '\n' ' ')
      order=$((order + 1))
      for system in $systems; do run_one "$system" "$workload" "$clients" "$round"; done
    done
  done
done
if [[ $MEMORY -eq 1 ]]; then  # long: once, not per round
  for system in $(echo "$SYSTEMS" | cut -d' ' -f1-2); do run_one "$system" memory 64 1; done
fi

[[ -z "$RESULTS" ]] || cp "$RESULTS_TMP" "$RESULTS"
report_args=(--results "$RESULTS_TMP" --total "$TOTAL" --memory-keys "$MEMORY_KEYS" --reference "$REF"
             --engines "$SYNOD_SYSTEMS" --members "$MEMBERS")
[[ -z "$SYNOD_SKIPPED" ]] || report_args+=(--synod-skipped "$SYNOD_SKIPPED")
if [[ -n "$OUT" ]]; then
  python3 "$REPORT_PY" "${report_args[@]}" | tee "$OUT"
else
  python3 "$REPORT_PY" "${report_args[@]}"
fi
