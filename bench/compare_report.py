#!/usr/bin/env python3
"""Markdown report of bench/compare.sh: etcd and Synod side by side, with Synod/etcd ratios.

Input: one JSON object per line, one per run, as compare.sh writes them:
  {"system": "etcd"|"baseline"|"synod"|"synod-multipaxos", "workload": ..., "clients": N,
   "round": R,
   "cpu_ticks": T, "clk_tck": HZ, "hwm_kb": [n1, n2, n3], "rss_kb": [...], "command": "...",
   "bench": {synod bench --json}}
With several rounds, each figure is the median over the runs of its system and workload.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from typing import Optional

WORKLOAD_TITLES = {
    "put": "put (random keys)",
    "range-l": "range, linearizable",
    "range-s": "range, serializable",
    "txn-put": "txn-put (1 put per txn)",
}
TITLES = {"etcd": "etcd 3.4", "baseline": "baseline", "synod": "Synod",
          "synod-multipaxos": "Synod Multi-Paxos", "synod-pbft": "Synod PBFT"}
SHORT = {"etcd": "etcd", "baseline": "baseline", "synod": "raft",
         "synod-multipaxos": "multipaxos", "synod-pbft": "pbft"}  # in the ratios' column titles
MEMBERS = 3  # main() sets it
SYSTEMS = ("etcd", "synod")  # (the reference, then Synod's engines); main() sets them


def exited(run: dict) -> bool:
    return bool(run.get("member_exited")) or not run["hwm_kb"]


def cpu_s_per_10k(run: dict) -> Optional[float]:
    requests = run["bench"]["requests"]
    if requests == 0 or exited(run):
        return None
    return run["cpu_ticks"] / run["clk_tck"] * 10000.0 / requests


def metrics(run: dict) -> dict[str, Optional[float]]:
    b = run["bench"]
    lat = b["latency_ms"]
    return {
        "throughput (req/s)": b["throughput_rps"],
        "p50 (ms)": lat["p50"],
        "p99 (ms)": lat["p99"],
        "p99.9 (ms)": lat["p99.9"],
        "server CPU s / 10k req": cpu_s_per_10k(run),
        "peak RSS MB, max node": None if exited(run) else max(run["hwm_kb"]) / 1024.0,
        "errors": float(b["errors"]),
    }


def median_metrics(runs: list[dict]) -> dict[str, Optional[float]]:
    """Each metric's median over the runs that have it."""
    per_run = [metrics(r) for r in runs]
    out: dict[str, Optional[float]] = {}
    for name in per_run[0]:
        values = [m[name] for m in per_run if m[name] is not None]
        out[name] = statistics.median(values) if values else None
    return out


def fmt(value: Optional[float], name: str) -> str:
    if value is None:
        return "—"
    if name == "errors":
        return str(int(value))
    if name.startswith("throughput"):
        return f"{value:,.0f}"
    if name.startswith("peak RSS"):
        return f"{value:,.1f}"
    return f"{value:.3f}"


def ratio(ref: Optional[float], synod: Optional[float], name: str) -> str:
    if ref is None or synod is None or name == "errors" or ref == 0:
        return "—"
    return f"{synod / ref:.2f}"


def main_table(runs: list[dict]) -> list[str]:
    by_key: dict[tuple, dict] = {}
    order: list[tuple] = []
    for run in runs:
        if run["workload"] == "memory":
            continue
        key = (run["workload"], run["clients"])
        if key not in by_key:
            by_key[key] = {}
            order.append(key)
        by_key[key].setdefault(run["system"], []).append(run)
    ref = SYSTEMS[0]
    engines = SYSTEMS[1:]
    if engines == ("synod",):
        titles = ["Synod"]
        ratios = [("synod", ref, f"Synod/{SHORT[ref]}")]
    else:  # several engines: each against the reference, and the others against Raft
        titles = [("Synod " + SHORT[e]) for e in engines]
        ratios = [(e, ref, f"{SHORT[e]}/{SHORT[ref]}") for e in engines]
        for other in ("synod-multipaxos", "synod-pbft"):
            if "synod" in engines and other in engines:
                ratios.append((other, "synod", f"{SHORT[other]}/raft"))
    columns = [TITLES[ref]] + titles + [title for _, _, title in ratios]
    lines = ["| workload | clients | metric | " + " | ".join(columns) + " |",
             "|---|---|---|" + "---|" * len(columns)]
    blank = " |" * len(columns)
    for key in order:
        group = by_key[key]
        for system, system_runs in group.items():
            for run in system_runs:
                if exited(run):
                    lines.append(f"| {WORKLOAD_TITLES[key[0]]} | {key[1]} | **{system}: a member "
                                 f"exited during round {run.get('round', 1)}; its CPU and memory "
                                 f"figures are left out** |{blank}")
        got = {s: median_metrics(group[s]) if s in group else None for s in SYSTEMS}
        names = list(next(g for g in got.values() if g).keys())
        for name in names:
            if name == "errors" and all((got[s] or {}).get("errors", 0) == 0 for s in SYSTEMS):
                continue
            value = {s: (got[s][name] if got[s] else None) for s in SYSTEMS}
            cells = [fmt(value[s], name) for s in SYSTEMS]
            cells += [ratio(value[b], value[a], name) for a, b, _ in ratios]
            lines.append(f"| {WORKLOAD_TITLES[key[0]]} | {key[1]} | {name} | " + " | ".join(cells) +
                         " |")
    return lines


def memory_table(runs: list[dict], keys: int) -> list[str]:
    # The reference and Synod's first engine.
    mem = {r["system"]: r for r in runs if r["workload"] == "memory" and r["system"] in SYSTEMS[:2]}
    if not mem:
        return []
    lines = ["", f"Memory after loading {keys:,} keys of 256-byte values (MB per node n1/n2/n3):", "",
             f"| metric | {TITLES[SYSTEMS[0]]} | Synod | Synod/{SHORT[SYSTEMS[0]]} (max node) |",
             "|---|---|---|---|"]
    for field, title in (("rss_kb", "RSS after the load"), ("hwm_kb", "peak RSS (VmHWM)")):
        cells, peaks = [], []
        for system in SYSTEMS[:2]:
            run = mem.get(system)
            if run is None or exited(run):
                cells.append("—")
                peaks.append(None)
                continue
            cells.append(" / ".join(f"{kb / 1024.0:,.0f}" for kb in run[field]))
            peaks.append(max(run[field]) / 1024.0)
        lines.append(f"| {title} | {cells[0]} | {cells[1]} | {ratio(peaks[0], peaks[1], title)} |")
    tput = [mem[s]["bench"]["throughput_rps"] if s in mem and not exited(mem[s]) else None
            for s in SYSTEMS[:2]]
    for system, run in mem.items():
        if exited(run):
            lines.append(f"| **{system}: a member exited during the load** | | | |")
    lines.append(f"| load throughput (req/s) | {fmt(tput[0], 'throughput')} | "
                 f"{fmt(tput[1], 'throughput')} | {ratio(tput[0], tput[1], 'throughput')} |")
    cpu = [cpu_s_per_10k(mem[s]) if s in mem else None for s in SYSTEMS[:2]]
    lines.append(f"| server CPU s / 10k req | {fmt(cpu[0], 'cpu')} | {fmt(cpu[1], 'cpu')} | "
                 f"{ratio(cpu[0], cpu[1], 'cpu')} |")
    errors = [float(mem[s]["bench"]["errors"]) if s in mem else None for s in SYSTEMS[:2]]
    lines.append(f"| errors | {fmt(errors[0], 'errors')} | {fmt(errors[1], 'errors')} | — |")
    return lines


def header(runs: list[dict], total: int, synod_skipped: str) -> list[str]:
    reference = "a baseline Synod build"
    if SYSTEMS[0] == "etcd":
        etcd_version = "?"
        try:
            out = subprocess.run(["etcd", "--version"], capture_output=True, text=True, timeout=10)
            etcd_version = out.stdout.split("\n")[0].replace("etcd Version: ", "")
        except (OSError, subprocess.SubprocessError):
            pass
        reference = f"etcd {etcd_version}"
    rounds = max(r.get("round", 1) for r in runs)
    medians = f"; {rounds} rounds, each figure the median of its runs" if rounds > 1 else ""
    lines = [f"Machine: {os.cpu_count()} cores, {platform.machine()}, {platform.release()}; "
             f"{reference}; {total} requests per run; every run on a fresh {MEMBERS}-node cluster, "
             f"systems alternating{medians}.", ""]
    if synod_skipped:
        lines += [f"Synod not measured: {synod_skipped}.", ""]
    commands = []
    for r in runs:
        endpoints = ",".join(r["bench"]["config"]["endpoints"])
        names = ",".join(f"E{i + 1}" for i in range(len(r["bench"]["config"]["endpoints"])))
        command = r["command"].replace(endpoints, names)
        if command not in commands:
            commands.append(command)
    lines += [f"Bench commands (E1.. = the {MEMBERS} client endpoints):", "", "```"]
    lines += commands + ["```", ""]
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", required=True)
    p.add_argument("--total", type=int, required=True)
    p.add_argument("--synod-skipped", default="")
    p.add_argument("--memory-keys", type=int, default=1000000)
    p.add_argument("--reference", choices=("etcd", "baseline"), default="etcd")
    p.add_argument("--engines", default="synod",
                   help="Synod's systems, space-separated: synod (Raft), synod-multipaxos, "
                        "synod-pbft")
    p.add_argument("--members", type=int, default=3)
    args = p.parse_args()
    global SYSTEMS, MEMBERS
    SYSTEMS = (args.reference, *args.engines.split())
    MEMBERS = args.members
    with open(args.results, encoding="utf-8") as f:
        runs = [json.loads(line) for line in f if line.strip()]
    if not runs:
        print("compare_report.py: no runs in " + args.results, file=sys.stderr)
        return 1
    failed = [r for r in runs if "bench_failed" in r]
    runs = [r for r in runs if "bench_failed" not in r]
    lines = header(runs, args.total, args.synod_skipped)
    if any(r["workload"] != "memory" for r in runs):
        lines += main_table(runs)
    lines += memory_table(runs, args.memory_keys)
    if failed:
        lines += ["", "Runs without figures (bench exit 124: --run-timeout passed):", ""]
        lines += [f"- {r['system']} {r['workload']} --clients {r['clients']}: "
                  f"bench exit {r['bench_failed']}" for r in failed]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
