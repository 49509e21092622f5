#!/usr/bin/python3
"""Plants one stale get near the end of a kv history (Porcupine's kv EDN format with :time, as
bench/record_kv_history.py writes): the last ok get of KEY that can be made stale reads instead
the value an earlier get of KEY read, one that completed at least GAP seconds before it, where
a write of KEY was invoked after that earlier get completed and completed before this get was
invoked. With unique tokens the key never holds that value again after such a write, so the
history is then not linearizable, with the violation at its end.

  /usr/bin/python3 bench/plant_stale_get.py IN OUT [--key 0] [--gap 1.0]
"""

import argparse
import re
import sys

LINE = re.compile(r'^\{:process (\d+), :type :(\w+), :f :(\w+), :key "([^"]*)", '
                  r':value (nil|"[^"]*"), :time (\d+)\}$')


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--key", default="0")
    ap.add_argument("--gap", type=float, default=1.0, help="seconds")
    a = ap.parse_args()
    lines = open(a.input).read().splitlines()
    parsed = [LINE.match(line) for line in lines]
    gets = []    # (line index, invocation, completion, value) of ok gets of the key
    writes = []  # (invocation, completion) of ok writes of the key
    invoked = {}  # process -> invocation time
    for i, m in enumerate(parsed):
        if m is None or m.group(4) != a.key:
            continue
        process, type_, time_ns = m.group(1), m.group(2), int(m.group(6))
        if type_ == "invoke":
            invoked[process] = time_ns
            continue
        start = invoked.pop(process)
        if type_ != "ok":
            continue
        if m.group(3) == "get":
            gets.append((i, start, time_ns, m.group(5)))
        else:
            writes.append((start, time_ns))
    gap_ns = int(a.gap * 1e9)
    for i, start, end, value in reversed(gets):
        stale = None
        for _, _, old_end, old in gets:
            if old_end > end - gap_ns:
                break
            if old != value and any(old_end < w0 and w1 < start for w0, w1 in writes):
                stale = old
        if stale is not None:
            lines[i] = lines[i].replace(f":value {value}", f":value {stale}")
            open(a.output, "w").write("\n".join(lines) + "\n")
            print(f"line {i + 1}: the get of key {a.key} now reads {stale[:60]}...")
            return 0
    print("no get to make stale", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
