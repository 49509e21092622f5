#!/usr/bin/env python3
# A linearizable history of reads and writes with distinct values on one key, for timing
# `synod check`: operation i is linearized at time 10*i by process i % 20 and stretched up to
# 95 time units either way, so about 19 operations overlap at any time.
#   bench/gen_unique_history.py 1000000 > h.jsonl && build/synod check h.jsonl
import json, random, sys
n = int(sys.argv[1]); procs = 20; random.seed(7)
events = []; cur = None
for i in range(n):
    p = i % procs; pt = 10 * i
    t0 = pt - random.randint(0, 95); t1 = pt + random.randint(1, 95)
    if random.random() < 0.5:
        v = "w%d" % i; cur = v
        events.append((t0, 1, {"process": p, "type": "invoke", "f": "write", "key": "k0", "value": v, "time": t0}))
        events.append((t1, 0, {"process": p, "type": "ok", "f": "write", "key": "k0", "value": v, "time": t1}))
    else:
        events.append((t0, 1, {"process": p, "type": "invoke", "f": "read", "key": "k0", "time": t0}))
        events.append((t1, 0, {"process": p, "type": "ok", "f": "read", "key": "k0", "value": cur, "time": t1}))
for t, o, e in sorted(events, key=lambda x: (x[0], x[1])):
    e["time"] = t + 1000
    print(json.dumps(e))
