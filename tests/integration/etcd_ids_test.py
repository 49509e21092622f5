"""Identity and the compacted-watch cancel, against etcd 3.4 started with the same flags.

    /usr/bin/python3 tests/integration/etcd_ids_test.py --kind synod --binary build/synod

etcd (the reference) and then the system under test each run as a 3-member cluster on the same
ports with the same --initial-cluster and --initial-cluster-token (one after the other, never
both at once). From each it records, with etcdctl:
  - `member list -w json`: the header's cluster_id and the members (ID, name, peer URLs) in the
    order etcdctl prints them;
  - `endpoint status -w json` of every member: member_id and cluster_id;
  - `watch foo --rev=<compacted> -w json`: the cancel response (its Header, CompactRevision,
    Canceled) and etcdctl's exit code;
  - `member add --learner` of an unstarted member: its ID, which must be the SHA-1 id of its
    peer URL and a Unix second within the command's run (as etcd computes it).
The two records must be equal, raft_term excepted (present and non-zero in both). The ids are
also checked against the derivation itself (SHA-1 of the sorted peer URLs and the token), so a
change of etcd's formula would show as well. Every wait is bounded; members are torn down on
every path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import time
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import (ETCDCTL, MAX_MEMBERS, Cluster, ClusterError, add_common_args,  # noqa: E402
                     log, report)

TOKEN = "synod-etcd-ids-test"


def sha1_id(data: str) -> int:
    return struct.unpack(">Q", hashlib.sha1(data.encode()).digest()[:8])[0]


def expected_member_id(peer_urls: List[str], token: str) -> int:
    return sha1_id("".join(sorted(peer_urls)) + token)


def expected_cluster_id(member_ids: List[int]) -> int:
    data = b"".join(struct.pack(">Q", i) for i in sorted(member_ids))
    return struct.unpack(">Q", hashlib.sha1(data).digest()[:8])[0]


def compacted_watch(c: Cluster) -> dict:
    """Three puts, a compaction, then a watch from below it: etcdctl prints the cancel."""
    ep = c.members["m1"].endpoint
    for i in range(3):
        c.etcdctl("put", "foo", f"v{i}", endpoints=[ep])
    rev = json.loads(c.etcdctl("get", "foo", "-w", "json", endpoints=[ep]).stdout)["header"][
        "revision"]
    c.etcdctl("compaction", str(rev), endpoints=[ep])
    argv = [ETCDCTL, f"--endpoints={ep}", "--dial-timeout=2s", "watch", "foo",
            f"--rev={rev - 1}", "-w", "json"]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10,
                           env=dict(os.environ, ETCDCTL_API="3"))
    except subprocess.TimeoutExpired:
        raise ClusterError("the watch of a compacted revision was not canceled within 10 s")
    lines = [x for x in r.stdout.splitlines() if x.strip().startswith("{")]
    if not lines:
        raise ClusterError(f"the compacted watch printed no response: {r.stdout!r} {r.stderr!r}")
    resp = json.loads(lines[0])
    return {"response": resp, "exit": r.returncode, "compacted_at": rev}


def added_member(c: Cluster) -> dict:
    """An unstarted learner: its ID and the seconds within which it was added. etcd refuses
    any add until its voters have been connected for 5 s ("unhealthy cluster"): retried."""
    peer_url = f"http://127.0.0.1:{c.base_port + 2 * MAX_MEMBERS - 1}"   # unused, in range
    deadline = time.monotonic() + 15
    for _ in range(30):
        t0 = math.floor(time.time())
        r = c.etcdctl("member", "add", "extra", "--learner", f"--peer-urls={peer_url}", "-w",
                      "json", timeout=20, check=False)
        t1 = math.ceil(time.time())
        if r.returncode == 0:
            return {"id": json.loads(r.stdout)["member"]["ID"], "peer_url": peer_url,
                    "seconds": range(t0, t1 + 1)}
        if "unhealthy cluster" not in r.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    raise ClusterError(f"member add --learner failed: {r.stderr.strip().splitlines()[-1:]}")


def record(kind: str, binary, base_port: int, keep: bool) -> Dict[str, object]:
    t0 = time.monotonic()
    with Cluster(kind, binary, 3, base_port, keep=keep, token=TOKEN, label=f"ids-{kind}") as c:
        log(f"{kind} cluster healthy in {time.monotonic() - t0:.1f}s")
        listed = json.loads(c.etcdctl("member", "list", "-w", "json").stdout)
        status = {name: (s["header"]["member_id"], s["header"]["cluster_id"])
                  for name, s in c.status().items()}
        peer_urls = {m.name: [m.peer_url] for m in c.members.values()}
        rec = {
            "cluster_id": listed["header"]["cluster_id"],
            "members": [(m["ID"], m.get("name"), m.get("peerURLs")) for m in listed["members"]],
            "status": status,
            "peer_urls": peer_urls,
            "watch": compacted_watch(c),
            "added": added_member(c),
        }
    log(f"{kind} recorded in {time.monotonic() - t0:.1f}s")
    return rec


def check_derivation(kind: str, rec: dict, failures: List[str]) -> None:
    """The ids are etcd's formula of the flags."""
    want = {name: expected_member_id(urls, TOKEN) for name, urls in rec["peer_urls"].items()}
    got = {name: mid for mid, name, _ in rec["members"]}
    if got != want:
        failures.append(f"{kind}: member ids {got} are not the SHA-1 ids {want}")
    if rec["cluster_id"] != expected_cluster_id(list(want.values())):
        failures.append(f"{kind}: cluster id {rec['cluster_id']} is not the SHA-1 of the ids")
    added = rec["added"]
    if not any(sha1_id(added["peer_url"] + str(t)) == added["id"] for t in added["seconds"]):
        failures.append(f"{kind}: added member id {added['id']:x} is not the SHA-1 of its peer "
                        f"URL and a second in {list(added['seconds'])}")


def compare(kind: str, got: dict, ref: dict, failures: List[str]) -> None:
    if got["cluster_id"] != ref["cluster_id"]:
        failures.append(f"cluster id: {kind} {got['cluster_id']:x}, "
                        f"etcd {ref['cluster_id']:x}")
    if got["members"] != ref["members"]:
        failures.append(f"member list: {kind} {got['members']}, etcd {ref['members']}")
    if got["status"] != ref["status"]:
        failures.append(f"endpoint status ids: {kind} {got['status']}, etcd {ref['status']}")
    gw, rw = got["watch"], ref["watch"]
    g, r = dict(gw["response"]), dict(rw["response"])
    gh, rh = dict(g.pop("Header", {})), dict(r.pop("Header", {}))
    for name, h in ((kind, gh), ("etcd", rh)):
        if not h.pop("raft_term", 0):
            failures.append(f"{name}: the compacted watch's cancel has no raft_term: {h}")
    if gh != rh:
        failures.append(f"compacted watch cancel header (raft_term aside): {kind} {gh}, "
                        f"etcd {rh}")
    if g != r or gw["exit"] != rw["exit"]:
        failures.append(f"compacted watch cancel: {kind} {g} exit {gw['exit']}, "
                        f"etcd {r} exit {rw['exit']}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(p)
    a = p.parse_args()
    failures: List[str] = []
    try:
        ref = record("etcd", None, a.base_port, a.keep)
        got = record(a.kind, a.binary, a.base_port, a.keep)
    except ClusterError as e:
        return report("etcd_ids_test", [str(e)])
    check_derivation("etcd", ref, failures)
    check_derivation(a.kind, got, failures)
    compare(a.kind, got, ref, failures)
    if not failures:
        w = got["watch"]["response"]
        log(f"{a.kind} = etcd: cluster {got['cluster_id']:x}, members "
            f"{[f'{m[1]}={m[0]:x}' for m in got['members']]}, compacted-watch cancel header "
            f"{w.get('Header')}")
    return report("etcd_ids_test", failures)


if __name__ == "__main__":
    sys.exit(main())
