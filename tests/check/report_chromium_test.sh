#!/usr/bin/env bash
# synod check --report in a real browser: headless Chromium (Debian chromium) loads the report
# of a history that is not linearizable; the rendered page must show the verdict, the failing
# operations on the time line (the window outlined, the unreachable one marked) and the window
# table; and it must render to an image.
set -u
synod="$1"
histories="$(dirname "$0")/histories"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
browser=$(command -v chromium || command -v chromium-browser)
if [ -z "$browser" ]; then
  echo "FAIL: chromium is not installed (scripts/bootstrap installs it)"; exit 1
fi
run_browser() {  # headless, no profile or network of its own
  timeout 90 "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
    --user-data-dir="$tmp/profile" "$@" 2>/dev/null
}

check_report() {  # check_report MODEL FILE TEXT...
  local model="$1" file="$2"
  shift 2
  "$synod" check --model "$model" --report "$tmp/report.html" "$histories/$file" >/dev/null
  [ $? -eq 1 ] || { echo "FAIL: $file should not be linearizable"; fail=1; return; }
  local dom
  dom=$(run_browser --dump-dom "file://$tmp/report.html")
  for text in 'id="verdict">not linearizable' 'class="op window failed"' \
              'no linearization reaches here' 'id="window"' "$@"; do
    grep -qF -- "$text" <<<"$dom" || { echo "FAIL: $file: the rendered page lacks '$text'"; fail=1; }
  done
  run_browser --screenshot="$tmp/report.png" --window-size=1200,700 "file://$tmp/report.html" \
    >/dev/null
  [ -s "$tmp/report.png" ] || { echo "FAIL: $file: no screenshot"; fail=1; }
  rm -f "$tmp/report.png"
}

check_report register stale_read.jsonl "get x -&gt; 1 ok" "put x = 2 ok"
check_report mutex two_holders.mutex.jsonl "fenced-put jobs = from-1 with token 12 ok"

[ $fail -eq 0 ] && echo "report renders in chromium"
exit $fail
