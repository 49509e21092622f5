"""Side-by-side table of fault campaigns: one column per summary.json (campaign.py --out DIR).

    /usr/bin/python3 tests/fault/compare.py fault-runs/synod fault-runs/etcd [--markdown]
"""

from __future__ import annotations

import json
import os
import sys


def rows(s: dict):
    faults = s.get("faults", {})
    yield "profile, seed", f"{s['profile']}, {s['seed']}"
    yield "run time (s)", f"{s['seconds']:.0f} ({s.get('fault_seconds', 0):.0f} of faults)"
    yield "faults injected", str(sum(faults.values()))
    for k in sorted(faults):
        yield f"  {k}", str(faults[k])
    for w, r in s.get("workloads", {}).items():
        yield f"{w}: operations", f"{r['operations']} ({r['ok']} ok, {r['fail']} fail, " \
                                  f"{r['info']} info)"
        yield f"{w}: verdict", f"{r['verdict']} ({r['check_seconds']} s)"
    yield "lock holders stalled past their lease", str(s.get("lock_client_pauses", "?"))
    yield "  their fenced writes refused", str(s.get("fenced_writes_refused", "?"))
    yield "acknowledged set adds lost", str(s.get("set_lost_acknowledged", "?"))
    hk = s.get("hashkv") or {}
    if hk:
        distinct = len({v.get("hash") for v in hk["members"].values()})
        yield "HashKV at the end", f"{'equal' if distinct == 1 else 'DIFFERENT'} on " \
                                   f"{len(hk['members'])} members at revision {hk['revision']}"
    yield "ok ops in the healed final phase", ", ".join(
        f"{k} {v}" for k, v in (s.get("ok_after_heal") or {}).items())
    yield "ok ops/s, healed", str(s.get("ok_per_s_healed", "?"))
    for k, v in sorted((s.get("ok_per_s_during") or {}).items()):
        yield f"  ok ops/s during {k}", str(v)
    yield "violations", str(s.get("violations", "?"))


def main() -> int:
    args = [x for x in sys.argv[1:] if not x.startswith("--")]
    markdown = "--markdown" in sys.argv
    if not args:
        print(__doc__)
        return 2
    summaries = []
    for d in args:
        path = os.path.join(d, "summary.json") if os.path.isdir(d) else d
        try:
            with open(path) as f:
                summaries.append(json.load(f))
        except (OSError, ValueError) as e:
            print(f"compare: {path}: {e}")
            return 2
    cols = [dict(rows(s)) for s in summaries]
    keys = []
    for c in cols:
        keys += [k for k in c if k not in keys]
    head = [""] + [s["system"] for s in summaries]
    table = [head] + [[k] + [c.get(k, "") for c in cols] for k in keys]
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in table[1:]:
            # markdown drops leading spaces; sub-rows get a marker instead
            first = "· " + r[0].strip() if r[0].startswith("  ") else r[0]
            print("| " + " | ".join([first] + r[1:]) + " |")
    else:
        widths = [max(len(r[i]) for r in table) for i in range(len(head))]
        for r in table:
            print("  ".join(x.ljust(widths[i]) for i, x in enumerate(r)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
