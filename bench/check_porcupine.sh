#!/usr/bin/env bash
# Runs `synod check` over Porcupine's published histories — the Jepsen etcd histories
# (test_data/jepsen, register model) and the key-value ones (test_data/kv, kv model) — and
# compares each verdict with the one Porcupine's own tests expect. Needs a local checkout of
# github.com/anishathalye/porcupine (nothing is downloaded here):
#   bench/check_porcupine.sh build/synod /path/to/porcupine
set -u
synod="$1"
repo="$2"
agree=0 disagree=0 unknown=0 slowest_ms=0

# check FILE WANT(true|false) ARGS...: one history against Porcupine's expected verdict.
check() {
  local f="$1" want="$2" start rc ms got
  shift 2
  start=$(date +%s%N)
  "$synod" check --time-limit 60 "$@" "$f" >/dev/null 2>&1
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  [ $ms -gt $slowest_ms ] && slowest_ms=$ms
  got=unknown
  [ $rc -eq 0 ] && got=true
  [ $rc -eq 1 ] && got=false
  if [ "$got" = unknown ]; then
    unknown=$((unknown + 1)); echo "unknown: $f (exit $rc)"
  elif [ "$got" = "$want" ]; then
    agree=$((agree + 1))
  else
    disagree=$((disagree + 1)); echo "DISAGREE: $f: Porcupine expects $want, synod check says $got"
  fi
}

while read -r n want; do
  check "$(printf "%s/test_data/jepsen/etcd_%03d.log" "$repo" "$n")" "$want" --format jepsen-log
done < <(grep -oE "checkJepsen\(t, [0-9]+, (true|false)\)" "$repo/porcupine_test.go" |
  sed -E 's/checkJepsen\(t, ([0-9]+), (true|false)\)/\1 \2/')

# Porcupine's tests check each kv history with and without partitioning by key; one verdict.
while read -r name want; do
  check "$repo/test_data/kv/$name.txt" "$want" --format edn --model kv
done < <(grep -oE "checkKv\(t, \"[^\"]+\", (true|false), true\)" "$repo/porcupine_test.go" |
  sed -E 's/checkKv\(t, "([^"]+)", (true|false), true\)/\1 \2/')

echo "agree=$agree disagree=$disagree unknown=$unknown slowest=${slowest_ms}ms"
[ $disagree -eq 0 ] && [ $unknown -eq 0 ]
