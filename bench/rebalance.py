#!/usr/bin/python3
"""Rebalancing a sharded Synod cluster: how long adding a member takes and how much it moves.

A 3-member cluster with --shards S is loaded with N keys of V bytes (`synod bench put`); then a
fourth member joins (etcdctl member add, started with --initial-cluster-state existing) and the
shard mover moves onto it the replicas the ring names. While it does, `synod bench put` keeps
writing at a fixed rate. Reported: the time from the member add to `synod ctl rebalance status`
saying balanced, the groups and bytes the new member received (its groups/ directory), the
data each founder held before, and the writer's throughput, p99 and errors during the move.

    /usr/bin/python3 bench/rebalance.py --synod build/synod --shards 16 --keys 100000 --value-size 1024

Ports: 36379 and up (127.0.0.1 only). Uses tests/integration/cluster.py.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from cluster import Cluster, dir_bytes, log  # noqa: E402


def status(synod: str, endpoint: str) -> str:
    r = subprocess.run([synod, "ctl", "--endpoints", endpoint, "rebalance", "status"],
                       capture_output=True, text=True, timeout=15)
    return r.stdout + r.stderr


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--synod", default="build/synod")
    p.add_argument("--shards", type=int, default=16)
    p.add_argument("--keys", type=int, default=100000)
    p.add_argument("--value-size", type=int, default=1024)
    p.add_argument("--write-rate", type=int, default=500, help="puts/s during the move")
    p.add_argument("--base-port", type=int, default=36379)
    p.add_argument("--keep", action="store_true")
    a = p.parse_args()
    synod = os.path.abspath(a.synod)
    with Cluster("synod", synod, 3, a.base_port, keep=a.keep, label="rebalance",
                 server_args=[f"--shards={a.shards}", "--replication=3"]) as c:
        eps = ",".join(c.endpoints())
        t = time.monotonic()
        subprocess.run([synod, "bench", "--endpoints", eps, "--clients", "32", "--conns", "4",
                        "--total", str(a.keys), "--no-progress", "put", "--key-space-size",
                        str(a.keys), "--sequential-keys", "--key-size", "16", "--val-size",
                        str(a.value_size)], check=True, capture_output=True)
        load_s = time.monotonic() - t
        before = {n: dir_bytes(os.path.join(m.data_dir, "groups")) for n, m in c.members.items()}
        log(f"loaded {a.keys} keys of {a.value_size} B in {load_s:.1f}s; groups/ per member: "
            + ", ".join(f"{n} {b / 1e6:.0f} MB" for n, b in before.items()))
        writer = subprocess.Popen(
            [synod, "bench", "--endpoints", eps, "--clients", "4", "--total",
             str(a.write_rate * 30), "--rate", str(a.write_rate), "--json", "--no-progress",
             "put", "--key-space-size", str(a.keys), "--key-size", "16", "--val-size",
             str(a.value_size)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        t0 = time.monotonic()
        m4 = c.add_member("m4")
        last = ""
        while time.monotonic() - t0 < 600:
            last = status(synod, c.members["m2"].endpoint)
            if "ring over 4 members" in last and "balanced: no move under way" in last:
                break
            time.sleep(0.2)
        else:
            print(last)
            raise SystemExit("not balanced within 600 s")
        took = time.monotonic() - t0
        moved = dir_bytes(os.path.join(m4.data_dir, "groups"))
        groups = len([d for d in os.listdir(os.path.join(m4.data_dir, "groups"))])
        out, err = writer.communicate(timeout=120)
        report = json.loads(out) if out.strip() else {}
        print(f"| shards | keys x value | member add to balanced | groups moved | bytes on the "
              f"new member | writes over the 30 s around it (req/s, p99 ms, errors) |")
        print("|---|---|---|---|---|---|")
        print(f"| {a.shards} | {a.keys} x {a.value_size} B | {took:.1f} s | {groups} | "
              f"{moved / 1e6:.0f} MB | {report.get('throughput_rps', 0):.0f}, "
              f"{report.get('latency_ms', {}).get('p99', 0)}, {report.get('errors', '?')} |")
        if report.get("error_counts"):
            print("writer errors: " + "; ".join(f"{n} x {t}"
                                               for t, n in report["error_counts"].items()))
        print(f"founders' groups/ before: " +
              ", ".join(f"{n} {b / 1e6:.0f} MB" for n, b in before.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
