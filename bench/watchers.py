"""Watchers are cheap: CPU and memory of one member serving N watchers under steady writes,
etcd 3.4 and Synod side by side on this machine.

    /usr/bin/python3 bench/watchers.py --synod build/synod [--watchers 10000] [--rate 500]
        [--seconds 20] [--clients 10]

For each system (etcd first, then Synod; fresh 3-member clusters from
tests/integration/cluster.py): N watchers on N distinct keys ("00000000".."0000NNNN", the keys
`synod bench put --key-size 8` writes), spread over --clients python3-etcd3 clients (one
watch stream each), all on member m1; then `synod bench put` at --rate puts/s for --seconds
against m1, to random keys among the N, so every put is one event for one watcher. Measured
on m1 over the write phase: CPU seconds (utime+stime from /proc), CPU per 10,000 puts, RSS
before and after creating the watchers (VmRSS), and the events the clients received (must be
every put). The same write phase without watchers gives the baseline. Prints a markdown table.
Bounded: every phase has a deadline; clusters are torn down on every exit path.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from cluster import Cluster  # noqa: E402

import etcd3  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def write_phase(synod: str, endpoint: str, rate: int, seconds: int, keys: int) -> None:
    total = rate * seconds
    subprocess.run([synod, "bench", "put", "--endpoints", endpoint, "--clients", "16",
                    "--total", str(total), "--rate", str(rate), "--key-size", "8",
                    "--val-size", "64", "--key-space-size", str(keys), "--no-progress",
                    "--seed", str(random.randrange(1 << 30))],
                   check=True, capture_output=True, timeout=seconds * 3 + 60)


def measure(kind: str, binary: str, synod: str, a, base_port: int) -> dict:
    out = {}
    with Cluster(kind, binary, 3, base_port, label="watchers") as c:
        m1 = c.members["m1"]
        pid, ep = m1.proc.pid, m1.endpoint
        write_phase(synod, ep, a.rate, 2, a.watchers)        # warm-up: every key exists
        c0 = cpu_s(pid)
        write_phase(synod, ep, a.rate, a.seconds, a.watchers)
        out["cpu_base"] = cpu_s(pid) - c0
        out["rss_base"] = rss_mb(pid)
        clients = [etcd3.client(host="127.0.0.1", port=m1.client_port, timeout=60)
                   for _ in range(a.clients)]
        received = [0]
        lock = threading.Lock()

        def on_event(resp):
            n = len(getattr(resp, "events", []) or [])
            with lock:
                received[0] += n

        t0 = time.monotonic()
        for i in range(a.watchers):
            clients[i % a.clients].add_watch_callback(f"{i:08d}", on_event)
        out["create_s"] = time.monotonic() - t0
        time.sleep(1)
        out["rss_watching"] = rss_mb(pid)
        c0 = cpu_s(pid)
        write_phase(synod, ep, a.rate, a.seconds, a.watchers)
        deadline = time.monotonic() + 30
        want = a.rate * a.seconds
        while time.monotonic() < deadline and received[0] < want:
            time.sleep(0.1)
        out["cpu_watching"] = cpu_s(pid) - c0
        out["events"] = received[0]
        out["puts"] = want
        for cl in clients:
            cl.close()
    return out


def quiet_closed_channels(args) -> None:
    # python3-etcd3's watcher thread may try its stream once more after close(); not ours.
    if not (args.thread is not None and args.thread.name.startswith("etcd3_watch")
            and args.exc_type is ValueError):
        sys.__excepthook__(args.exc_type, args.exc_value, args.exc_traceback)


def main() -> int:
    threading.excepthook = quiet_closed_channels
    p = argparse.ArgumentParser(description="CPU and memory of N watchers, etcd and Synod")
    p.add_argument("--synod", default="build/synod")
    p.add_argument("--etcd", default="/usr/bin/etcd")
    p.add_argument("--watchers", type=int, default=10000)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--rate", type=int, default=500)
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--base-port", type=int, default=34379)
    a = p.parse_args()
    synod = os.path.abspath(a.synod)
    rows = {}
    for kind, binary in (("etcd", a.etcd), ("synod", synod)):
        print(f"watchers.py: {kind}: {a.watchers} watchers, {a.rate} puts/s for {a.seconds}s",
              file=sys.stderr, flush=True)
        rows[kind] = measure(kind, binary, synod, a, a.base_port)
    e, s = rows["etcd"], rows["synod"]
    per10k = lambda cpu, r: cpu / r["puts"] * 10000  # noqa: E731
    lines = [
        f"| metric (member m1; {a.watchers} watchers, {a.rate} puts/s, {a.seconds} s) "
        f"| etcd 3.4 | Synod | Synod/etcd |",
        "|---|---|---|---|",
    ]

    def row(name, fe, fs, fmt="{:.2f}"):
        ratio = fs / fe if fe else float("nan")
        lines.append(f"| {name} | {fmt.format(fe)} | {fmt.format(fs)} | {ratio:.2f} |")

    row("CPU s per 10k puts, no watchers", per10k(e["cpu_base"], e), per10k(s["cpu_base"], s))
    row("CPU s per 10k puts, with watchers", per10k(e["cpu_watching"], e),
        per10k(s["cpu_watching"], s))
    row("RSS MB, no watchers", e["rss_base"], s["rss_base"], "{:.1f}")
    row("RSS MB, with watchers", e["rss_watching"], s["rss_watching"], "{:.1f}")
    row("RSS MB per 1,000 watchers", (e["rss_watching"] - e["rss_base"]) / a.watchers * 1000,
        (s["rss_watching"] - s["rss_base"]) / a.watchers * 1000)
    row("seconds to create the watchers", e["create_s"], s["create_s"])
    lines.append(f"| events received / puts | {e['events']} / {e['puts']} | "
                 f"{s['events']} / {s['puts']} | |")
    print("\n".join(lines))
    ok = e["events"] >= e["puts"] and s["events"] >= s["puts"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
