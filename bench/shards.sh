#!/usr/bin/env bash
# Synod against itself at several shard counts: a 3-member cluster started with --shards S for
# each S (0: unsharded), driven by the same `synod bench` commands, alternating the shard counts
# run by run so that each sees the same machine load. Every run gets a fresh cluster.
#
# Recorded per run: throughput and p50/p99 latency (`synod bench --json`) and the members' CPU
# time (utime+stime from /proc/<pid>/stat, before and after) per request. Reported as a markdown
# table of medians over the rounds, with each figure's ratio to the first shard count.
#
# Workloads: put (one key), txn1 (a txn of one put: one shard), txn2 (a txn of two puts on random
# keys: two shards, by two-phase commit, once there is more than one shard), range-l (a
# linearizable read of one key).
#
# Usage: bench/shards.sh [options]
#   --synod PATH       synod binary, default build/synod
#   --shards "0 4 16"  shard counts, default "0 1 4 16 64"
#   --workloads LIST   default "put txn1 txn2 range-l"
#   --clients N        default 64
#   --total N          requests per run, default 10000
#   --rounds N         default 3
#   --data-root DIR    default ${TMPDIR:-/tmp}
#   --out FILE         also write the table to FILE
#   --keep             keep the work dir
# Ports: members on 35379/35380, 35389/35390, 35399/35400 (127.0.0.1 only).
set -euo pipefail

SYNOD=build/synod
SHARD_COUNTS="0 1 4 16 64"
WORKLOADS="put txn1 txn2 range-l"
CLIENTS=64
TOTAL=10000
ROUNDS=3
DATA_ROOT="${TMPDIR:-/tmp}"
OUT=""
KEEP=0
BASE=35379
START_TIMEOUT_S=60
RUN_TIMEOUT_S=300

die() { echo "bench/shards.sh: $*" >&2; exit 2; }
note() { echo "[$(date +%H:%M:%S)] $*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --synod) SYNOD="$2"; shift 2 ;;
    --shards) SHARD_COUNTS="$2"; shift 2 ;;
    --workloads) WORKLOADS="$2"; shift 2 ;;
    --clients) CLIENTS="$2"; shift 2 ;;
    --total) TOTAL="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --data-root) DATA_ROOT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[[ -x "$SYNOD" ]] || die "$SYNOD is not an executable (build it first)"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds wants a positive number"
for s in $SHARD_COUNTS; do [[ "$s" =~ ^[0-9]+$ && $s -le 1024 ]] || die "--shards: '$s' not in 0..1024"; done
for w in $WORKLOADS; do
  case "$w" in put|txn1|txn2|range-l) ;; *) die "--workloads: unknown '$w'" ;; esac
done

WORK=$(mktemp -d "$DATA_ROOT/synod-shards-XXXXXX")
RESULTS="$WORK/results.jsonl"
PIDS=()
BENCH_PID=""
stop_cluster() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
cleanup() {
  [[ -z "$BENCH_PID" ]] || kill -TERM "$BENCH_PID" 2>/dev/null || true
  stop_cluster
  if [[ $KEEP -eq 1 ]]; then note "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ENDPOINTS=""
start_cluster() {  # SHARDS DIR
  local shards="$1" dir="$2" i client peer initial="" extra=()
  [[ "$shards" -eq 0 ]] || extra=(--shards "$shards")
  ENDPOINTS=""
  for i in 1 2 3; do initial+="${initial:+,}n$i=http://127.0.0.1:$((BASE + 10 * (i - 1) + 1))"; done
  mkdir -p "$dir"
  for i in 1 2 3; do
    client=$((BASE + 10 * (i - 1)))
    peer=$((client + 1))
    "$SYNOD" server --name "n$i" --data-dir "$dir/n$i" \
      --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token "shards-$shards" \
      "${extra[@]}" >"$dir/n$i.log" 2>&1 &
    PIDS+=($!)
    ENDPOINTS+="${ENDPOINTS:+,}http://127.0.0.1:$client"
  done
  local deadline=$((SECONDS + START_TIMEOUT_S)) pid
  while [[ $SECONDS -lt $deadline ]]; do
    for pid in "${PIDS[@]}"; do
      kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir"/n*.log >&2; die "a member exited during start"; }
    done
    if "$SYNOD" bench put --endpoints "$ENDPOINTS" --total 3 --key-space-size 1 --dial-timeout 1s \
      --request-timeout 2s --no-progress --json >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  tail -n 20 "$dir"/n*.log >&2
  die "cluster with --shards $shards not ready in ${START_TIMEOUT_S}s"
}

cpu_ticks() {
  local total=0 pid
  for pid in "${PIDS[@]}"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}

bench_args() {
  local common="--endpoints $ENDPOINTS --clients $CLIENTS --conns 8 --total $TOTAL --no-progress --json"
  case "$1" in
    put) echo "put $common --key-size 8 --val-size 256 --key-space-size 100000" ;;
    txn1) echo "txn-put $common --key-size 8 --val-size 256 --key-space-size 100000 --txn-ops 1" ;;
    txn2) echo "txn-put $common --key-size 8 --val-size 256 --key-space-size 100000 --txn-ops 2" ;;
    range-l) echo "range 00000000 $common --consistency l" ;;
  esac
}

run_one() {  # SHARDS WORKLOAD ROUND
  local shards="$1" workload="$2" round="$3" dir before after rc=0
  dir="$WORK/s$shards-$workload-r$round"
  note "--shards $shards: $workload, round $round of $ROUNDS"
  start_cluster "$shards" "$dir"
  [[ "$workload" != range-l ]] || "$SYNOD" bench put --endpoints "$ENDPOINTS" --total 1 \
    --key-space-size 1 --val-size 256 --no-progress >/dev/null
  before=$(cpu_ticks)
  # shellcheck disable=SC2046  # bench_args is a word list
  timeout --kill-after=5 "$RUN_TIMEOUT_S" "$SYNOD" bench $(bench_args "$workload") \
    >"$dir/bench.json" 2>"$dir/bench.err" &
  BENCH_PID=$!
  wait "$BENCH_PID" || rc=$?
  BENCH_PID=""
  after=$(cpu_ticks)
  if [[ $rc -gt 1 || ! -s "$dir/bench.json" ]]; then
    tail -n 5 "$dir/bench.err" >&2
    note "--shards $shards $workload: bench failed (exit $rc)"
  else
    printf '{"shards":%s,"workload":"%s","round":%s,"cpu_ticks":%s,"clk_tck":%s,"bench":%s}\n' \
      "$shards" "$workload" "$round" "$((after - before))" "$(getconf CLK_TCK)" \
      "$(cat "$dir/bench.json")" >>"$RESULTS"
  fi
  stop_cluster
  [[ $KEEP -eq 1 ]] || rm -rf "$dir"
}

order=0
for round in $(seq "$ROUNDS"); do
  for workload in $WORKLOADS; do
    counts="$SHARD_COUNTS"
    [[ $((order % 2)) -eq 1 ]] && counts=$(echo "$SHARD_COUNTS" | tr ' ' '\n' | tac | tr '\n' ' ')
    order=$((order + 1))
    for s in $counts; do run_one "$s" "$workload" "$round"; done
  done
done

report() {
  python3 - "$RESULTS" "$SHARD_COUNTS" "$WORKLOADS" "$ROUNDS" "$TOTAL" "$CLIENTS" <<'EOF'
import json, statistics, sys
path, counts, workloads, rounds, total, clients = sys.argv[1:]
counts = [int(c) for c in counts.split()]
runs = [json.loads(l) for l in open(path) if l.strip()]
def med(xs):
    return statistics.median(xs) if xs else None
print(f"3 members, {clients} clients, {total} requests per run, medians of {rounds} rounds.\n")
print("| workload | shards | req/s | p50 ms | p99 ms | server CPU µs/req | req/s vs first | CPU/req vs first |")
print("|---|---|---|---|---|---|---|---|")
for w in workloads.split():
    first = None
    for c in counts:
        rs = [r for r in runs if r["workload"] == w and r["shards"] == c]
        if not rs:
            print(f"| {w} | {c or 'none'} | failed | | | | | |")
            continue
        rps = med([r["bench"]["throughput_rps"] for r in rs])
        p50 = med([r["bench"]["latency_ms"]["p50"] if "latency_ms" in r["bench"] else r["bench"].get("p50", 0) for r in rs])
        p99 = med([r["bench"]["latency_ms"]["p99"] if "latency_ms" in r["bench"] else r["bench"].get("p99", 0) for r in rs])
        cpu = med([r["cpu_ticks"] / r["clk_tck"] * 1e6 / max(1, r["bench"].get("ok", int(total))) for r in rs])
        if first is None:
            first = (rps, cpu)
        print(f"| {w} | {c or 'none'} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {cpu:.0f} | "
              f"{rps / first[0]:.2f} | {cpu / first[1]:.2f} |")
EOF
}
if [[ -n "$OUT" ]]; then report | tee "$OUT"; else report; fi
