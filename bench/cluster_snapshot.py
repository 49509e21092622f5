#!/usr/bin/python3
"""A sharded Synod cluster's consistent cut: how long `synod ctl snapshot save --cluster` takes
and what it costs the writes going on meanwhile, and how long a restore takes.

A 3-member cluster with --shards S is loaded with N keys of V bytes (`synod bench put`); then,
while `synod bench put` writes at a fixed rate, cuts are taken through each member in turn.
Reported: each save's wall time and the snapshot's bytes, the writer's throughput, p99 and errors
over the run, and the time to restore the last cut into a fresh one-member cluster.

    /usr/bin/python3 bench/cluster_snapshot.py --synod build/synod --shards 16 --keys 100000 --value-size 256

Ports: 37379 and up (127.0.0.1 only). Uses tests/integration/cluster.py.
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--synod", default="build/synod")
    p.add_argument("--shards", type=int, default=16)
    p.add_argument("--keys", type=int, default=100000)
    p.add_argument("--value-size", type=int, default=256)
    p.add_argument("--write-rate", type=int, default=500, help="puts/s during the cuts")
    p.add_argument("--cuts", type=int, default=3)
    p.add_argument("--base-port", type=int, default=37379)
    p.add_argument("--keep", action="store_true")
    a = p.parse_args()
    synod = os.path.abspath(a.synod)
    with Cluster("synod", synod, 3, a.base_port, keep=a.keep, label="cut",
                 server_args=[f"--shards={a.shards}", "--replication=3"]) as c:
        eps = ",".join(c.endpoints())
        t = time.monotonic()
        subprocess.run([synod, "bench", "--endpoints", eps, "--clients", "32", "--conns", "4",
                        "--total", str(a.keys), "--no-progress", "put", "--key-space-size",
                        str(a.keys), "--sequential-keys", "--key-size", "16", "--val-size",
                        str(a.value_size)], check=True, capture_output=True)
        log(f"loaded {a.keys} keys of {a.value_size} B in {time.monotonic() - t:.1f}s")
        duration = 10 + 8 * a.cuts
        writer = subprocess.Popen(
            [synod, "bench", "--endpoints", eps, "--clients", "4", "--total",
             str(a.write_rate * duration), "--rate", str(a.write_rate), "--json",
             "--no-progress", "put", "--key-space-size", str(a.keys), "--key-size", "16",
             "--val-size", str(a.value_size)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        saves = []
        for i in range(a.cuts):
            member = list(c.members.values())[i % 3]
            d = os.path.join(c.data_root, f"cut{i}")
            t = time.monotonic()
            r = subprocess.run([synod, "ctl", "--endpoints", member.endpoint, "snapshot", "save",
                                "--cluster", d], capture_output=True, text=True, timeout=600)
            took = time.monotonic() - t
            if r.returncode != 0:
                raise SystemExit(f"save through {member.name}: {r.stderr.strip()}")
            saves.append((took, dir_bytes(d), r.stdout.strip()))
            log(f"cut {i} through {member.name}: {took:.2f}s, {dir_bytes(d) / 1e6:.1f} MB")
            time.sleep(3)
        out, _ = writer.communicate(timeout=duration + 120)
        report = json.loads(out) if out.strip() else {}
        last = os.path.join(c.data_root, f"cut{a.cuts - 1}")
        fresh = Cluster("synod", synod, 1, a.base_port + 20, keep=a.keep, label="cut-restore")
        with fresh:
            t = time.monotonic()
            r = subprocess.run([synod, "ctl", "--endpoints", fresh.members["m1"].endpoint,
                                "snapshot", "restore", last], capture_output=True, text=True,
                               timeout=1800)
            restore_s = time.monotonic() - t
            if r.returncode != 0:
                raise SystemExit(f"restore: {r.stderr.strip()}")
        print("| shards | keys x value | save (s), each cut | snapshot size | writes during "
              "the cuts (req/s, p99 ms, errors) | restore into one member |")
        print("|---|---|---|---|---|---|")
        print(f"| {a.shards} | {a.keys} x {a.value_size} B | "
              f"{', '.join(f'{s[0]:.2f}' for s in saves)} | {saves[-1][1] / 1e6:.0f} MB | "
              f"{report.get('throughput_rps', 0):.0f}, "
              f"{report.get('latency_ms', {}).get('p99', 0)}, {report.get('errors', '?')} | "
              f"{restore_s:.1f} s |")
        print(saves[-1][2])
        print(r.stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
