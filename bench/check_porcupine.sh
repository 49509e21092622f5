#!/usr/bin/env bash
# Runs `synod check` over Porcupine's published Jepsen etcd histories and compares each verdict
# with the one Porcupine's own tests expect. Needs a local checkout of
# github.com/anishathalye/porcupine (nothing is downloaded here):
#   bench/check_porcupine.sh build/synod /path/to/porcupine
set -u
synod="$1"
repo="$2"
expected=$(grep -oE "checkJepsen\(t, [0-9]+, (true|false)\)" "$repo/porcupine_test.go" |
  sed -E 's/checkJepsen\(t, ([0-9]+), (true|false)\)/\1 \2/')
agree=0 disagree=0 unknown=0 slowest_ms=0
while read -r n want; do
  f=$(printf "%s/test_data/jepsen/etcd_%03d.log" "$repo" "$n")
  start=$(date +%s%N)
  "$synod" check --format jepsen-log --time-limit 60 "$f" >/dev/null 2>&1
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
done <<<"$expected"
echo "agree=$agree disagree=$disagree unknown=$unknown slowest=${slowest_ms}ms"
[ $disagree -eq 0 ] && [ $unknown -eq 0 ]
