"""/version, /health and /metrics over plain HTTP on the client URLs (and --listen-metrics-urls),
as etcd 3.4 serves them, with gRPC clients on the same port.

    /usr/bin/python3 tests/integration/http_test.py --kind synod --binary build/synod

  1. a 3-member cluster started with --metrics extensive (the gRPC counters), each member
     also given --listen-metrics-urls
  2. on every member's client URL: GET /version (JSON with etcdserver and etcdcluster), GET
     /health ({"health":"true"}), GET /metrics (the text format: every sample under a HELP and
     a TYPE; etcd's names for leader, proposals, fsync and backend commit histograms and db size;
     exactly one member leads); a wrong path is 404 and POST /health is 405; the round trip
     to each peer (etcd_network_peer_round_trip_time_seconds{To=...})
  3. 50 puts through etcdctl (gRPC on the same port): every member's committed proposals and
     WAL fsync count grow, the members' grpc_server_handled_total for Put with code OK grows by
     50, and the metrics URL answers /metrics and /health
  4. two members stopped: the last one's /health is 503 {"health":"false"}, and its
     etcd_server_has_leader drops to 0
Runs against etcd too (--kind etcd), which is the reference for every answer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import (HOST, MAX_MEMBERS, Cluster, ClusterError, add_common_args,  # noqa: E402
                     log, report, wait_until)

REQUIRED = (
    "etcd_server_has_leader",
    "etcd_server_is_leader",
    "etcd_server_leader_changes_seen_total",
    "etcd_server_proposals_committed_total",
    "etcd_server_proposals_applied_total",
    "etcd_server_proposals_failed_total",
    "etcd_disk_wal_fsync_duration_seconds_bucket",
    "etcd_disk_wal_fsync_duration_seconds_sum",
    "etcd_disk_wal_fsync_duration_seconds_count",
    "etcd_disk_backend_commit_duration_seconds_count",
    "etcd_mvcc_db_total_size_in_bytes",
    "etcd_server_health_success",
    "grpc_server_started_total",
    "grpc_server_handled_total",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
)
PUTS_OK = ('grpc_server_handled_total{grpc_code="OK",grpc_method="Put",'
           'grpc_service="etcdserverpb.KV",grpc_type="unary"}')
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


class MetricsCluster(Cluster):
    """Each member also serves /metrics and /health on a metrics URL of its own."""

    def metrics_url(self, name: str) -> str:
        m = self.members[name]
        return f"http://{HOST}:{self.base_port + 2 * MAX_MEMBERS + m.index}"

    def _argv(self, m, state):
        return super()._argv(m, state) + [f"--listen-metrics-urls={self.metrics_url(m.name)}"]


def get(url: str, method: str = "GET", timeout: float = 5.0) -> Tuple[int, str, str]:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def parse_metrics(text: str, failures: List[str], where: str) -> Dict[str, float]:
    """Sample name (with labels) -> value; checks the format as a scraper would."""
    typed = {}
    samples: Dict[str, float] = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            typed[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            failures.append(f"{where}: not a sample line: {line!r}")
            continue
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in typed else name
        if family not in typed:
            failures.append(f"{where}: {name} has no TYPE line")
        samples[name + (m.group(2) or "")] = float(m.group(3))
    return samples


def eventually(pred, timeout: float) -> bool:
    try:
        return bool(wait_until(pred, timeout=timeout))
    except ClusterError:
        return False


def value(samples: Dict[str, float], name: str) -> Optional[float]:
    return samples.get(name)


def check_member(c: MetricsCluster, name: str, failures: List[str]) -> Dict[str, float]:
    url = c.members[name].client_url
    status, ctype, body = get(url + "/version")
    try:
        v = json.loads(body)
        ok = status == 200 and set(v) == {"etcdserver", "etcdcluster"} and "json" in ctype
    except ValueError:
        ok = False
    if not ok:
        failures.append(f"{name} /version: {status} {ctype!r} {body!r}")
    status, _, body = get(url + "/health")
    if status != 200 or json.loads(body) != {"health": "true"}:
        failures.append(f"{name} /health: {status} {body!r}")
    status, _, _ = get(url + "/no-such-page")
    if status != 404:
        failures.append(f"{name} /no-such-page: {status}, want 404")
    status, _, _ = get(url + "/health", method="POST")
    if status != 405:
        failures.append(f"{name} POST /health: {status}, want 405")
    status, ctype, body = get(url + "/metrics")
    if status != 200 or not ctype.startswith("text/plain"):
        failures.append(f"{name} /metrics: {status} {ctype!r}")
        return {}
    samples = parse_metrics(body, failures, f"{name} /metrics")
    for r in REQUIRED:
        if r not in samples and not any(k.startswith(r + "{") for k in samples):
            failures.append(f"{name} /metrics: no {r}")
    if value(samples, "etcd_server_has_leader") != 1:
        failures.append(f"{name}: etcd_server_has_leader is {value(samples, 'etcd_server_has_leader')}")
    return samples


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(p)
    a = p.parse_args()
    failures: List[str] = []
    with MetricsCluster(a.kind, a.binary, 3, a.base_port, keep=a.keep, label="http",
                        server_args=["--metrics=extensive"]) as c:
        names = sorted(c.members)
        before = {n: check_member(c, n, failures) for n in names}
        leaders = [n for n in names if value(before[n], "etcd_server_is_leader") == 1]
        if len(leaders) != 1:
            failures.append(f"etcd_server_is_leader is 1 on {leaders}, want exactly one member")
        log(f"/version, /health, /metrics answered on {names}; leader {leaders}")

        for i in range(50):
            c.etcdctl("put", f"http-test-{i}", "v" * 64)
        after = {}
        for n in names:
            def grown(n=n):
                s = parse_metrics(get(c.members[n].client_url + "/metrics")[2], [], n)
                after[n] = s
                return (s.get("etcd_server_proposals_committed_total", 0) >=
                        before[n].get("etcd_server_proposals_committed_total", 0) + 50)
            if not eventually(grown, timeout=10):
                failures.append(f"{n}: proposals_committed_total did not grow by 50: "
                                f"{before[n].get('etcd_server_proposals_committed_total')} -> "
                                f"{after[n].get('etcd_server_proposals_committed_total')}")
            fs = "etcd_disk_wal_fsync_duration_seconds_count"
            if after[n].get(fs, 0) <= before[n].get(fs, 0):
                failures.append(f"{n}: {fs} did not grow: {before[n].get(fs)} -> {after[n].get(fs)}")
            status, ctype, body = get(c.metrics_url(n) + "/metrics")
            on_metrics_url = parse_metrics(body, failures, f"{n} metrics URL")
            if status != 200 or "etcd_server_has_leader" not in on_metrics_url:
                failures.append(f"{n} --listen-metrics-urls /metrics: {status}")
            status, _, body = get(c.metrics_url(n) + "/health")
            if status != 200:
                failures.append(f"{n} --listen-metrics-urls /health: {status} {body!r}")
        puts = sum(after[n].get(PUTS_OK, 0) - before[n].get(PUTS_OK, 0) for n in names)
        if puts < 50:
            failures.append(f"grpc_server_handled_total for Put/OK grew by {puts} over the "
                            "members, want >= 50")
        log("50 puts: committed proposals, fsyncs and gRPC counters grew; metrics URLs answer")

        # The peers' round trips: one series per peer (label To, the peer's ID in hex), each
        # with probes counted (etcd probes every 4 s).
        for n in names:
            def probed(n=n):
                s = parse_metrics(get(c.members[n].client_url + "/metrics")[2], [], n)
                counts = [v for k, v in s.items()
                          if k.startswith('etcd_network_peer_round_trip_time_seconds_count{To="')]
                return len(counts) == len(names) - 1 and min(counts) > 0
            if not eventually(probed, timeout=20):
                failures.append(f"{n}: no etcd_network_peer_round_trip_time_seconds per peer")
        log("every member measured its round trips to both peers")

        last = names[-1]
        for n in names[:-1]:
            c.stop_member(c.members[n])
        url = c.members[last].client_url

        def unhealthy():
            status, _, body = get(url + "/health", timeout=10)
            return status == 503 and json.loads(body) == {"health": "false"}
        if not eventually(unhealthy, timeout=30):
            failures.append(f"{last} /health with no quorum: {get(url + '/health', timeout=10)}")

        def leaderless():
            s = parse_metrics(get(url + "/metrics")[2], [], last)
            return s.get("etcd_server_has_leader") == 0
        if not eventually(leaderless, timeout=30):
            failures.append(f"{last}: etcd_server_has_leader stays 1 without a quorum")
        log(f"{last} alone: /health is 503 false and has_leader 0")
    return report("http", failures)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ClusterError as e:
        log(f"FAIL: {e}")
        sys.exit(1)
