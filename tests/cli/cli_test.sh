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

expect_error "not in range" sim --nodes 9
expect_error "unknown fault 'bogus'" sim --faults partition,bogus
expect_error "wants A..B" sim --seeds 9..3
expect_error "unknown bug" sim --bug nope
expect_error "subcommand" 

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

[ $fail -eq 0 ] && echo "cli tests passed"
exit $fail
