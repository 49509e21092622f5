#!/usr/bin/env bash
# synod check --model kv on histories in Porcupine's kv format: a handmade stale get, and
# histories recorded from 3-member etcd 3.4 and Synod clusters while members were paused
# (bench/record_kv_history.py: 30 processes, 3 keys, get/put/append with 0.5 s timeouts, so many
# appends time out). The clean recordings are linearizable; the one recorded with the planted
# bug (gets served without a quorum round) is not, and its failing window names the stale get.
set -u
synod="$1"
dir="$(dirname "$0")/histories"
fail=0

expect() {  # expect FILE RC TEXT...
  local file="$1" want="$2" out rc
  shift 2
  out=$("$synod" check --model kv --format edn --time-limit 60 "$dir/$file" 2>&1)
  rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL: synod check --model kv $file: rc=$rc, wanted $want"; echo "$out"; fail=1; return
  fi
  for text in "$@"; do
    if ! grep -qF -- "$text" <<<"$out"; then
      echo "FAIL: synod check --model kv $file: no '$text' in:"; echo "$out"; fail=1
    fi
  done
}

expect stale_get.kv.edn 1 "7 operations (6 ok, 0 fail, 1 info), 5 processes, 2 keys" \
  "smallest failing window (key k):" "#4 c0 [9, 10] append k x 0 1 y ok" \
  "#5 c1 [11, 12] get k -> x 0 0 yx 1 0 y ok"
expect etcd_paused.kv.edn 0 "4958 operations (4170 ok, 733 fail, 55 info), 85 processes, 3 keys" \
  "verdict   linearizable"
expect synod_paused.kv.edn 0 "4238 operations (3726 ok, 482 fail, 30 info), 60 processes, 3 keys" \
  "verdict   linearizable"
expect etcd_serializable_gets.kv.edn 1 "verdict   not linearizable" "smallest failing window (key 0):" \
  "#248 c"

# The kv model knows get, put and append only.
out=$("$synod" check --model kv "$dir/stale_read.jsonl" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -qF 'line 1: unknown f "write" for the kv model (known: get, put, append)' <<<"$out" ||
  { echo "FAIL: --model kv on a register history (rc=$rc): $out"; fail=1; }

[ $fail -eq 0 ] && echo "kv history tests passed"
exit $fail
