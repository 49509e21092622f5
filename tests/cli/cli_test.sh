#!/usr/bin/env bash
# The synod command line: bad arguments get a one-line error and exit code 2; a run prints
# its summary; a planted bug makes the run fail with exit code 1 and a replay command.
set -u
synod="$1"
fail=0

expect_error() {
  local out rc
  out=$("$synod" "${@:2}" 2>&1 >/dev/null)
  rc=$?
  if [ "$rc" -ne 2 ] || [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ] || ! grep -q -- "$1" <<<"$out"; then
    echo "FAIL: synod ${*:2}: rc=$rc stderr='$out' (wanted exit 2 and one line with '$1')"
    fail=1
  fi
}

expect_error "not in range" sim --nodes 200
expect_error "--nodes above 7 needs --shards" sim --nodes 9
expect_error "--workload bank needs --shards" sim --workload bank
expect_error "--faults rebalance needs --shards" sim --faults rebalance
expect_error "unknown fault 'bogus'" sim --faults partition,bogus
expect_error "wants A..B" sim --seeds 9..3
expect_error "unknown bug" sim --bug nope
expect_error "unknown workload 'nope'" sim --workload nope
expect_error "subcommand" 
expect_error "needs --cert-file and --key-file" server --data-dir /nonexistent/synod \
  --listen-client-urls https://127.0.0.1:45999 --advertise-client-urls https://127.0.0.1:45999
expect_error "--auth-token must be 'simple' or 'jwt," server --data-dir /nonexistent/synod --auth-token bogus
expect_error "jwt needs sign-method" server --data-dir /nonexistent/synod --auth-token jwt
expect_error "unknown jwt option 'colour'" server --data-dir /nonexistent/synod \
  --auth-token jwt,pub-key=k.pub,sign-method=RS256,colour=red
expect_error "--max-txn-ops must be at least 1" server --data-dir /nonexistent/synod --max-txn-ops 0

version=$("$synod" --version)
if [ $? -ne 0 ] || ! grep -q "^synod version " <<<"$version"; then
  echo "FAIL: synod --version: '$version'"
  fail=1
fi
histories="$(dirname "$0")/../check/histories"
expect_error "line 2: unknown f \"increment\"" check "$histories/malformed.jsonl"
expect_error "cannot open" check "$histories/no-such-file.jsonl"

out=$("$synod" sim --seed 3 --nodes 3 --faults partition --ops 50)
rc=$?
if [ $rc -ne 0 ] || ! grep -q "verdict      PASS" <<<"$out"; then
  echo "FAIL: a clean run should pass (rc=$rc)"; fail=1
fi

out=$("$synod" sim --seeds 1..3 --nodes 5 --faults partition,crash,pause --ops 300 --bug vote-without-log-check 2>/dev/null)
rc=$?
if [ $rc -ne 1 ] || ! grep -q "replay with:  synod sim --seed" <<<"$out"; then
  echo "FAIL: a planted bug should fail the sweep with a replay command (rc=$rc)"; fail=1
fi

# synod check on handmade histories with known verdicts: exit 0 linearizable, 1 not, and on
# failure the smallest failing window names the operations that cannot be ordered.
expect_check() {  # expect_check FILE RC TEXT... (MODEL in the environment, default register)
  local file="$1" want="$2" out rc
  shift 2
  out=$("$synod" check --model "${MODEL:-register}" "$histories/$file" 2>&1)
  rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL: synod check $file: rc=$rc, wanted $want"; fail=1; return
  fi
  for text in "$@"; do
    if ! grep -qF -- "$text" <<<"$out"; then
      echo "FAIL: synod check $file: no '$text' in:"; echo "$out"; fail=1
    fi
  done
}
expect_check concurrent_ok.jsonl 0 "verdict   linearizable" "6 operations (4 ok, 1 fail, 1 info)"
expect_check stale_read.jsonl 1 "not linearizable" "c0 [20, 30] put x = 2 ok" "c1 [40, 50] get x -> 1 ok"
expect_check lost_update_cas.jsonl 1 "not linearizable" "cas x 0 -> 1 (swapped)" "cas x 0 -> 2 (swapped)"
expect_check failed_write_seen.jsonl 1 "not linearizable" "get x -> 1 ok"
# The other models: two lock holders acting at once, a lost add, a list read out of order.
MODEL=mutex expect_check two_holders.mutex.jsonl 1 "fenced-put jobs = from-1 with token 12 ok"
MODEL=mutex expect_check fenced.mutex.jsonl 0 "verdict   linearizable"
MODEL=set expect_check lost_add.set.jsonl 1 "read  -> [2] ok"
MODEL=list expect_check reordered.list.jsonl 1 "read  -> [b a] ok"
MODEL=list expect_check ok.list.jsonl 0 "verdict   linearizable"
expect_error "unknown f \"acquire\" for the register model" check "$histories/fenced.mutex.jsonl"
expect_error "unknown model 'queue'" check --model queue "$histories/ok.list.jsonl"
# The importers: Jepsen's text log (Porcupine's etcd histories) and history.edn.
expect_error "unknown format 'xml'" check --format xml "$histories/ok.edn"
out=$("$synod" check --format jepsen-log "$histories/stale_read.jepsen.log"); rc=$?
[ $rc -eq 1 ] && grep -qF "4 operations (3 ok, 0 fail, 1 info), 4 processes" <<<"$out" ||
  { echo "FAIL: jepsen-log stale read (rc=$rc): $out"; fail=1; }
out=$("$synod" check --format edn "$histories/lost_update.edn"); rc=$?
[ $rc -eq 1 ] || { echo "FAIL: edn lost update should not check (rc=$rc): $out"; fail=1; }
"$synod" check --format edn "$histories/ok.edn" >/dev/null || { echo "FAIL: ok.edn"; fail=1; }
# Independent keys ([key value] tuples): key 0 is fine, key 1 read a value nobody wrote.
out=$("$synod" check --format edn --independent "$histories/independent.edn"); rc=$?
[ $rc -eq 1 ] && grep -qF "2 keys" <<<"$out" && grep -qF "key 1:" <<<"$out" ||
  { echo "FAIL: independent.edn (rc=$rc): $out"; fail=1; }

# A simulator history round-trips through the file format with its verdict.
tmp=$(mktemp -d)
"$synod" sim --seed 5 --faults all --ops 300 --history-out "$tmp/ok.jsonl" >/dev/null
"$synod" check "$tmp/ok.jsonl" >/dev/null || { echo "FAIL: sim seed 5's history should check"; fail=1; }
"$synod" sim --seed 21 --nodes 3 --faults partition,crash,pause --ops 300 \
  --bug read-index-without-quorum --history-out "$tmp/stale.jsonl" >/dev/null
"$synod" check "$tmp/stale.jsonl" >/dev/null
rc=$?
[ $rc -eq 1 ] || { echo "FAIL: the planted stale read's history should not check (rc=$rc)"; fail=1; }
rm -rf "$tmp"

[ $fail -eq 0 ] && echo "cli tests passed"
exit $fail
