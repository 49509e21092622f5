"""A fixed, scripted etcdctl (ETCDCTL_API=3) session, run against a fresh cluster, printed as a
normalized transcript; with --compare-with, run again against a second fresh cluster (one
after the other, never both at once) and the two transcripts must be identical.

    /usr/bin/python3 tests/integration/etcdctl_session.py --kind etcd --compare-with etcd
    /usr/bin/python3 tests/integration/etcdctl_session.py --kind synod --binary build/synod \
        --compare-with etcd
    /usr/bin/python3 tests/integration/etcdctl_session.py --kind synod --binary build/synod \
        --shards 4 --compare-with synod

With --shards, the first cluster is a sharded Synod cluster and the two transcripts are compared
with revision numbers aside (docs/sharding.md: revisions are global but not dense): every
revision number is replaced by <REV>, and since a request over several shards writes at one
revision per shard, the events of a run of deletes in a watch are compared in key order.

Normalization (see docs/testing.md): member IDs -> <ID:name>, cluster ID -> <CLUSTER_ID>,
127.0.0.1:<port> -> <name:client|peer>, raft term/index, db sizes, versions, hashes, "took"
durations and temp paths -> placeholders; etcdctl's own zap log lines keep only level, msg and
error. Revisions, keys, values, counts, error messages, exit codes and layout are kept. Output
whose order etcdctl does not define (member list rows, endpoint health lines, the entries of
ETCD_INITIAL_CLUSTER) is sorted after normalization.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import ETCDCTL, Cluster, ClusterError, add_common_args, log, wait_until  # noqa: E402

EXTRA = "extra"          # the member that is added (never started) and removed again


class Normalizer:
    def __init__(self, c: Cluster):
        self.c = c
        self.ids: Dict[int, str] = {}
        self.cluster_id: Optional[int] = None
        self.ports: Dict[int, str] = {}
        for m in c.members.values():
            self.ports[m.client_port] = f"{m.name}:client"
            self.ports[m.peer_port] = f"{m.name}:peer"
        self.extra_peer_port = c.base_port + 2 * 8 - 1   # inside the cluster's port range, unused
        self.ports[self.extra_peer_port] = f"{EXTRA}:peer"
        self.paths = [c.data_root]
        self.leases: Dict[str, str] = {}   # lease ID (hex, as etcdctl prints it) -> label

    def learn(self) -> None:
        """Learns member and cluster IDs from member list (run outside the transcript)."""
        r = self.c.etcdctl("member", "list", "-w", "json")
        j = json.loads(r.stdout)
        self.cluster_id = j["header"]["cluster_id"]
        for m in j.get("members", []):
            label = m.get("name") or ""
            if not label:
                label = EXTRA if any(u.endswith(f":{self.extra_peer_port}")
                                     for u in m.get("peerURLs", [])) else "unknown"
            self.ids[m["ID"]] = label

    def id_label(self, v) -> str:
        if isinstance(v, str):
            try:
                v = int(v, 16)
            except ValueError:
                return v
        if v == 0:
            return "0"
        if v == self.cluster_id:
            return "<CLUSTER_ID>"
        return f"<ID:{self.ids[v]}>" if v in self.ids else "<ID:?>"

    def text(self, s: str) -> str:
        for p in self.paths:
            s = s.replace(p, "<TMP>")
        # lease IDs are random: labelled in order of grant
        for lid in re.findall(r"lease ([0-9a-f]{16}) granted", s):
            self.leases.setdefault(lid, f"<LEASE:{len(self.leases) + 1}>")
        for lid, label in self.leases.items():
            s = s.replace(lid, label)
            s = s.replace(f"{int(lid, 16):x}", label)
        s = re.sub(r"remaining\(\d+s\)", "remaining(<N>s)", s)
        # etcd lists a lease's keys in Go map order: compare them as a set
        s = re.sub(r"attached keys\(\[([^\]]*)\]\)",
                   lambda mo: "attached keys([" + " ".join(sorted(mo.group(1).split())) + "])", s)
        # lock and election keys carry the lease ID in %x: 16 hex digits or fewer
        s = re.sub(r"\b(mutex\d|election\d)/[0-9a-f]{1,16}\b", r"\1/<LEASE>", s)
        s = re.sub(r"127\.0\.0\.1:(\d+)",
                   lambda mo: f"<{self.ports.get(int(mo.group(1)), 'port')}>", s)
        for i, label in self.ids.items():
            s = re.sub(rf"\b{i:x}\b", f"<ID:{label}>", s)
        if self.cluster_id is not None:
            s = re.sub(rf"\b{self.cluster_id:x}\b", "<CLUSTER_ID>", s)
        # member add/remove print IDs with %16x: an ID under 16 hex digits is space-padded
        s = re.sub(r"(?<=\S)  +(?=<ID:|<CLUSTER_ID>)", " ", s)
        s = re.sub(r"took = [0-9.]+[a-zµ]+", "took = <DURATION>", s)
        return s

    # -- JSON ---------------------------------------------------------------------------
    ID_KEYS = {"cluster_id", "member_id", "leader", "ID", "ClusterID", "MemberID"}
    OPAQUE_KEYS = {"raft_term", "raftTerm", "raftIndex", "raftAppliedIndex", "dbSize",
                   "dbSizeInUse", "hash", "totalSize", "totalKey", "RaftTerm"}

    def json_obj(self, o):
        if isinstance(o, dict):
            out = {}
            for k, v in o.items():
                if k in self.ID_KEYS and isinstance(v, int):
                    out[k] = self.id_label(v)
                elif k in self.OPAQUE_KEYS and not isinstance(v, (dict, list)):
                    out[k] = f"<{k}>"
                elif k == "version" and isinstance(v, str):   # server version, not a KV's
                    out[k] = "<version>"
                else:
                    out[k] = self.json_obj(v)
            return out
        if isinstance(o, list):
            return [self.json_obj(x) for x in o]
        if isinstance(o, str):
            return self.text(o)
        return o

    def log_line(self, line: str) -> Optional[str]:
        """etcdctl's zap log lines: keep level, msg and error only."""
        try:
            j = json.loads(line)
        except ValueError:
            return None
        if not isinstance(j, dict) or "level" not in j or "msg" not in j:
            return None
        parts = [f"[{j['level']}] {j['msg']}"]
        if "error" in j:
            parts.append(f"error={self.text(str(j['error']))}")
        return " ".join(parts)

    def output(self, s: str) -> List[str]:
        lines = []
        for line in s.splitlines():
            ll = self.log_line(line)
            if ll is not None:
                lines.append(ll)
                continue
            st = line.strip()
            if st.startswith("{") or st.startswith("["):
                try:
                    lines.append(json.dumps(self.json_obj(json.loads(st)), separators=(",", ":")))
                    continue
                except ValueError:
                    pass
            if line.startswith('"') and '" : ' in line:       # -w fields
                k, v = line.split(" : ", 1)
                key = k.strip('"')
                if key in ("ClusterID", "MemberID") and v.isdigit():
                    lines.append(f"{k} : {self.id_label(int(v))}")
                    continue
                if key in ("RaftTerm",):
                    lines.append(f"{k} : <{key}>")
                    continue
            lines.append(self.text(line))
        return lines


SECTIONS = ("members", "move-leader")   # sections --skip can leave out


REVISION_PATTERNS = [
    (re.compile(r'"(revision|mod_revision|create_revision|compact_revision)":\d+'),
     r'"\1":<REV>'),
    (re.compile(r'"(Revision|ModRevision|CreateRevision)" : \d+'), r'"\1" : <REV>'),
    (re.compile(r"--rev=\d+"), "--rev=<REV>"),
    (re.compile(r"^(\$ etcdctl compaction) \d+"), r"\1 <REV>"),
    (re.compile(r"^# current revision \d+"), "# current revision <REV>"),
    (re.compile(r"^compacted revision \d+$"), "compacted revision <REV>"),
]


def revisions_aside(lines: List[str]) -> List[str]:
    out = []
    for line in lines:
        for pattern, repl in REVISION_PATTERNS:
            line = pattern.sub(repl, line)
        out.append(line)
    return out


def deletes_in_key_order(lines: List[str]) -> List[str]:
    """A watch's simple output with each run of consecutive DELETE events sorted by key."""
    events: List[List[str]] = []
    head: List[str] = []
    for line in lines:
        if line in ("PUT", "DELETE"):
            events.append([line])
        elif events:
            events[-1].append(line)
        else:
            head.append(line)
    out = list(head)
    run: List[List[str]] = []
    for ev in events + [["END"]]:
        if ev[0] == "DELETE":
            run.append(ev)
            continue
        for d in sorted(run, key=lambda e: e[1] if len(e) > 1 else ""):
            out += d
        run = []
        if ev[0] != "END":
            out += ev
    return out


class Session:
    def __init__(self, c: Cluster, raw: bool = False, skip: Optional[List[str]] = None,
                 sharded_compare: bool = False):
        self.c = c
        self.sharded_compare = sharded_compare
        self.skip = set(skip or [])
        self.n = Normalizer(c)
        self.raw = raw
        self.lines: List[str] = []
        self.m1 = [c.members["m1"].endpoint]
        self.started = time.monotonic()
        self.hung = 0

    # one transcript entry
    def run(self, *args: str, stdin: Optional[str] = None, all_eps: bool = False,
            eps: Optional[List[str]] = None, sort: bool = False,
            post=None, show_stdin: bool = True) -> subprocess.CompletedProcess:
        endpoints = eps or (self.c.endpoints() if all_eps else self.m1)
        try:
            r = self.c.etcdctl(*args, endpoints=endpoints, stdin=stdin, check=False, timeout=20)
        except ClusterError:
            # etcdctl itself hung (its own --command-timeout is 5 s): record it, go on, and give
            # up after a few, so a stuck server fails the test in bounded time
            self.hung += 1
            self.lines.append(f"$ etcdctl {self.n.text(' '.join(args))}")
            self.lines.append("[no answer within 20 s]")
            if self.hung >= 3:
                raise ClusterError("3 etcdctl commands hung; the server is stuck")
            return subprocess.CompletedProcess(args, 124, "", "")
        where = "all" if all_eps else ",".join(self.c.member_by_endpoint(e).name for e in endpoints)
        shown = " ".join(a if re.fullmatch(r"[\w./=:<>\-\"]+", a) else repr(a) for a in args)
        if self.raw:
            self.lines.append(f"$ etcdctl {' '.join(args)}   [@{where}]")
            out, err = r.stdout.splitlines(), r.stderr.splitlines()
        else:
            self.lines.append(f"$ etcdctl {self.n.text(shown)}   [@{where}]")
            out, err = self.n.output(r.stdout), self.n.output(r.stderr)
            if post:
                out = post(out)
            if sort:
                out, err = sorted(out), sorted(err)
        if stdin is not None and show_stdin:
            self.lines += [f"stdin| {x}" for x in stdin.splitlines()]
        elif stdin is not None:
            self.lines.append(f"stdin| <{len(stdin)} bytes>")
        self.lines += out
        self.lines += [f"stderr| {x}" for x in err]
        self.lines.append(f"[exit {r.returncode}]")
        return r

    def watch(self, *args: str, lines: int, during=None) -> None:
        self.streaming("watch", *args, lines=lines, during=during)

    def streaming(self, *args: str, lines: int, during=None) -> None:
        """A long-running etcdctl command (watch, elect, lock without a command) until it has
        printed `lines` lines (or 8 s passed), then ended with SIGTERM; `during` runs (its
        etcdctl commands in the transcript) once the command is up. A command that ends by
        itself (a watch of a compacted revision) records its exit code."""
        argv = [ETCDCTL, f"--endpoints={','.join(self.m1)}", "--dial-timeout=2s"] + list(args)
        env = dict(os.environ, ETCDCTL_API="3")
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
        out: List[str] = []
        reader = threading.Thread(target=lambda: out.extend(iter(p.stdout.readline, "")),
                                  daemon=True)
        reader.start()
        shown = " ".join(a if re.fullmatch(r"[\w./=:<>\-\"]+", a) else repr(a) for a in args)
        self.lines.append(f"$ etcdctl {self.n.text(shown)}   [@m1]")
        mark = len(self.lines)
        if during is not None:
            time.sleep(0.5)     # the watch is open well before the writes it must see
            during()
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and len(out) < lines and p.poll() is None:
            time.sleep(0.05)
        time.sleep(0.3)          # anything beyond the expected lines shows up too
        ended_itself = p.poll() is not None
        if not ended_itself:
            p.terminate()
        try:
            _, err = p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        reader.join(2)
        watched = self.n.output("".join(out))
        if self.sharded_compare:
            watched = deletes_in_key_order(watched)
        self.lines[mark:mark] = watched      # the watch's output before the commands' entries
        self.lines += [f"stderr| {x}" for x in self.n.output(err)]
        self.lines.append(f"[exit {p.returncode}]" if ended_itself else "[stopped]")

    def note(self, s: str) -> None:
        self.lines.append(f"# {s}")

    def revision(self) -> int:
        r = self.c.etcdctl("get", "foo", "-w", "json", endpoints=self.m1)
        return json.loads(r.stdout)["header"]["revision"]

    def sync(self, timeout: float = 15.0) -> None:
        """Out of the transcript: waits until every member has applied the same revision."""
        self.c.wait_converged(timeout)

    def script(self) -> List[str]:
        """The session; a harness failure midway (e.g. a member died) ends it with a note, so
        the partial transcript can still be diffed."""
        try:
            return self._script()
        except ClusterError as e:
            self.note(f"harness error, session stopped: {self.n.text(str(e).splitlines()[0])}")
            return self.lines

    def ensure_leader(self, name: str, timeout: float = 20.0) -> None:
        """Out of the transcript: makes `name` the leader (move-leader if needed)."""
        def probe():
            lead = self.c.leader()
            if lead == name:
                return True
            self.c.etcdctl("move-leader", f"{self.c.members[name].member_id:x}",
                           endpoints=self.c.endpoints(), check=False)
            return self.c.leader() == name
        wait_until(probe, timeout, 0.5, f"{name} to be leader")

    def _script(self) -> List[str]:
        n = self.n
        n.learn()
        # ---- put / get ----
        self.run("put", "foo", "bar")
        self.run("put", "foo", "baz", "--prev-kv")
        for k, v in (("k1", "cherry"), ("k2", "apple"), ("k3", "banana"), ("k4", "date"),
                     ("k5", "elder"), ("other/x", "1"), ("other/y", "2")):
            self.run("put", k, v)
        self.run("put", "k2", "apricot")            # k2: version 2, newest mod revision
        self.run("get", "foo")
        self.run("get", "foo", "-w", "json")
        self.run("get", "nosuchkey")
        self.run("get", "k", "--prefix")
        self.run("get", "k2", "k4")                  # range [k2, k4)
        self.run("get", "k3", "--from-key")
        self.run("get", "k", "--prefix", "--limit=2")
        self.run("get", "k", "--prefix", "--limit=2", "-w", "fields")
        self.run("get", "k", "--prefix", "--sort-by=MODIFY", "--order=DESCEND")
        self.run("get", "k", "--prefix", "--sort-by=VALUE", "--order=ASCEND")
        self.run("get", "k", "--prefix", "--sort-by=KEY", "--order=DESCEND")
        self.run("get", "k", "--prefix", "--sort-by=VERSION", "--order=DESCEND", "--limit=1")
        self.run("get", "k", "--prefix", "--sort-by=CREATE", "--order=ASCEND", "--keys-only")
        self.run("get", "foo", "--rev=2")
        self.run("get", "k", "--prefix", "--keys-only")
        self.run("get", "k", "--prefix", "--print-value-only")
        self.run("get", "foo", "--consistency=s")
        self.sync()     # a serializable read on a follower must see the same revision
        self.run("get", "k", "--prefix", "--consistency=s", "-w", "json", eps=[
            self.c.members["m2"].endpoint])
        # ---- delete ----
        self.run("del", "k5")
        self.run("del", "nosuchkey")
        self.run("del", "other/", "--prefix")
        self.run("del", "k4", "--prev-kv")
        self.run("del", "k", "kz", "--prev-kv", "-w", "json")  # range [k, kz): k1..k3
        self.run("put", "k1", "cherry")
        self.run("put", "k2", "apricot")
        # ---- txn ----
        self.run("txn", "--interactive",
                 stdin='value("foo") = "baz"\n\nput foo qux\nget foo\n\nput foo nope\n\n')
        self.run("txn", "--interactive",
                 stdin='value("foo") = "zzz"\n\nput foo never\n\nget foo\ndel nosuchkey\n\n')
        self.run("txn", "--interactive",
                 stdin='version("k1") = "1"\nmod("k2") > "0"\ncreate("nosuchkey") = "0"\n\n'
                       'put t1 yes\n\nput t1 no\n\n')
        self.run("txn", "-w", "json", stdin='value("foo") > "a"\n\nget t1\n\n\n')
        self.run("get", "t1")
        # ---- limits: refused, and nothing written ----
        self.run("put", "big", stdin="v" * (1536 * 1024 + 1), show_stdin=False)
        self.run("put", "big", stdin="v" * (1536 * 1024 - 64), show_stdin=False)
        self.run("get", "big", "--keys-only")
        self.run("del", "big")
        self.run("txn", stdin="\n" + "".join(f"put many{i} x\n" for i in range(129)) + "\n\n",
                 show_stdin=False)
        self.run("txn", stdin="\n" + "".join(f"put many{i} x\n" for i in range(128)) + "\n\n",
                 show_stdin=False)
        self.run("get", "many", "--prefix", "--keys-only", "--limit=1", "-w", "json")
        self.run("del", "many", "--prefix")
        # ---- watch ----
        self.watch("foo", "--rev=1", lines=9)                     # foo's history: 3 puts
        self.watch("k", "--prefix", "--rev=1", "--prev-kv", lines=51)
        self.watch("t1", "--rev=1", "-w", "json", lines=1)
        self.watch("w/", "--prefix", lines=9, during=lambda: (
            self.run("put", "w/1", "one"), self.run("put", "w/2", "two"), self.run("del", "w/1")))
        # ---- lease ----
        r = self.run("lease", "grant", "600")
        m = re.search(r"lease ([0-9a-f]+) granted", r.stdout)
        lid = m.group(1) if m else "0"
        self.run("put", f"--lease={lid}", "lk1", "v1")
        self.run("put", f"--lease={lid}", "lk2", "v2")
        self.run("lease", "timetolive", lid, "--keys")
        self.run("lease", "keep-alive", "--once", lid)
        self.run("lease", "list", sort=True)
        self.run("get", "lk", "--prefix")
        self.watch("lk", "--prefix", lines=6, during=lambda: self.run("lease", "revoke", lid))
        self.run("get", "lk", "--prefix")
        self.run("lease", "timetolive", lid)
        self.run("lease", "revoke", lid)
        self.run("put", "--lease=1234", "x", "y")
        self.run("lease", "keep-alive", "--once", "1234")
        self.run("lease", "timetolive", "1234")
        self.run("lease", "grant", "1")                      # raised to the minimum TTL
        # ---- lock and elect (client-side recipes over Txn, Range, Watch and leases) ----
        self.run("lock", "mutex1", "echo", "ran while holding mutex1")
        self.streaming("lock", "mutex2", lines=1, during=lambda: (
            self.run("get", "mutex2/", "--prefix", "--keys-only"),
            self.run("lock", "mutex3", "echo", "another lock is free")))
        self.run("get", "mutex", "--prefix", "--keys-only")    # released on exit: nothing
        self.streaming("elect", "election1", "alice", lines=1, during=lambda: (
            self.streaming("elect", "-l", "election1", lines=2),
            self.run("get", "election1/", "--prefix", "--print-value-only")))
        self.run("get", "election1/", "--prefix")
        # ---- compaction ----
        rev = self.revision()
        self.note(f"current revision {rev}")
        self.run("put", "foo", "after-compact-1")
        self.run("compaction", str(rev))
        self.run("get", "foo", f"--rev={rev - 1}")           # compacted
        self.run("get", "foo", f"--rev={rev}")               # the compaction revision itself
        # Future: far ahead, since a sharded cluster's revisions are not dense (docs/sharding.md).
        self.run("get", "foo", f"--rev={rev + 10**9}")
        self.run("compaction", str(rev - 2))                 # already compacted
        self.run("compaction", str(rev + 10**9))             # future
        self.watch("foo", f"--rev={rev - 1}", lines=1)       # compacted: the watch is canceled
        self.watch("foo", f"--rev={rev + 1}", lines=3)       # above the compaction point
        # ---- members ----
        self.run("member", "list", sort=True)
        self.run("member", "list", "-w", "json", post=self.sort_members_json)
        if "members" not in self.skip:
            self.membership_changes()
        # ---- move-leader (leader made m1 first, out of the transcript) ----
        if "move-leader" not in self.skip:
            self.move_leader()
        # ---- endpoint ----
        self.sync()
        if "move-leader" in self.skip:
            # no leader was chosen for the transcript: which member leads is the election's
            self.run("endpoint", "status", all_eps=True,
                     post=lambda ls: self.any_leader(self.status_table(ls)))
            self.run("endpoint", "status", "-w", "json", all_eps=True, post=self.any_leader)
        else:
            self.run("endpoint", "status", all_eps=True, post=self.status_table)
            self.run("endpoint", "status", "-w", "json", all_eps=True)
        self.run("endpoint", "health", all_eps=True, sort=True)
        r = self.c.etcdctl("endpoint", "hashkv", "-w", "json", endpoints=self.c.endpoints())
        hashes = {e["HashKV"]["hash"] for e in json.loads(r.stdout)}
        self.run("endpoint", "hashkv", all_eps=True, post=self.hash_table)
        self.note(f"hashkv equal on all endpoints: {len(hashes) == 1}")
        self.run("endpoint", "hashkv", f"--rev={rev + 1}", "-w", "json", all_eps=True)
        # ---- maintenance ----
        snap = os.path.join(self.c.data_root, "snap.db")
        self.run("snapshot", "save", snap)
        self.run("snapshot", "status", snap, "-w", "json")
        self.run("defrag", all_eps=True)
        self.run("defrag")
        self.run("alarm", "list")
        self.run("alarm", "list", "-w", "json")
        # ---- final state ----
        self.run("get", "", "--from-key")
        self.run("get", "", "--from-key", "--keys-only", "-w", "json")
        return self.lines

    def membership_changes(self) -> None:
        n = self.n
        # etcd refuses to add a voter until its peers have been connected for 5 s
        wait_s = 6.0 - (time.monotonic() - self.started)
        if wait_s > 0:
            time.sleep(wait_s)
        extra_url = f"http://127.0.0.1:{n.extra_peer_port}"
        r = self.run_member_add(extra_url)
        n.learn()
        if r.returncode == 0:
            # member add output names IDs learnt only now: redo its normalization
            pass
        self.run("member", "list", sort=True)
        extra_id = next((i for i, lab in n.ids.items() if lab == EXTRA), None)
        if extra_id is None:
            self.note("the added member is not in member list")
        else:
            self.run("member", "remove", f"{extra_id:x}")
        self.run("member", "remove", "ffff")
        self.run("member", "list", sort=True)

    def move_leader(self) -> None:
        self.ensure_leader("m1")
        self.note("leader is m1")
        self.run("move-leader", f"{self.c.members['m2'].member_id:x}", all_eps=True)
        wait_until(lambda: self.c.leader() == "m2", 15, 0.3, "m2 to become leader")
        self.run("move-leader", f"{self.c.members['m2'].member_id:x}", all_eps=True)
        self.run("move-leader", f"{self.c.members['m3'].member_id:x}",
                 eps=[self.c.members["m1"].endpoint])   # no leader among the endpoints
        self.run("move-leader", "ffff", all_eps=True)

    def run_member_add(self, url: str):
        for _ in range(20):
            r = self.c.etcdctl("member", "add", EXTRA, f"--peer-urls={url}", endpoints=self.m1,
                               check=False, timeout=20)
            if "unhealthy cluster" in r.stderr:     # etcd's 5-second peer-connectivity rule
                log("member add: unhealthy cluster; retrying in 1 s")
                time.sleep(1)
                continue
            break
        # print it now that the new ID is known
        self.n.learn()
        self.lines.append(f"$ etcdctl member add {EXTRA} --peer-urls={self.n.text(url)}   [@m1]")
        out = self.n.output(r.stdout)
        out = [self.sort_initial_cluster(x) for x in out]
        self.lines += out + [f"stderr| {x}" for x in self.n.output(r.stderr)]
        self.lines.append(f"[exit {r.returncode}]")
        return r

    @staticmethod
    def sort_initial_cluster(line: str) -> str:
        m = re.fullmatch(r'ETCD_INITIAL_CLUSTER="(.*)"', line)
        if not m:
            return line
        return 'ETCD_INITIAL_CLUSTER="' + ",".join(sorted(m.group(1).split(","))) + '"'

    @staticmethod
    def sort_members_json(lines: List[str]) -> List[str]:
        out = []
        for line in lines:
            try:
                j = json.loads(line)
                j["members"] = sorted(j.get("members", []), key=lambda x: str(x.get("ID")))
                out.append(json.dumps(j, separators=(",", ":")))
            except (ValueError, AttributeError, TypeError):
                out.append(line)
        return out

    @staticmethod
    def status_table(lines: List[str]) -> List[str]:
        # endpoint, ID, version, db size, is leader, is learner, raft term, raft index,
        # raft applied index, errors
        out = []
        for line in lines:
            f = line.split(", ")
            if len(f) >= 9:
                f[2], f[3] = "<VERSION>", "<DB_SIZE>"
                f[6], f[7], f[8] = "<TERM>", "<INDEX>", "<APPLIED>"
                line = ", ".join(f)
            out.append(line)
        return out

    @staticmethod
    def any_leader(lines: List[str]) -> List[str]:
        """The leader's identity left out: the is-leader column, and "leader" in JSON."""
        out = []
        for line in lines:
            f = line.split(", ")
            if len(f) >= 9 and f[4] in ("true", "false"):
                f[4] = "<IS_LEADER>"
                line = ", ".join(f)
            out.append(re.sub(r'"leader":"<ID:m\d+>"', '"leader":"<LEADER>"', line))
        return out

    @staticmethod
    def hash_table(lines: List[str]) -> List[str]:
        return [re.sub(r", \d+$", ", <HASH>", x) for x in lines]


def run_once(kind: str, binary: Optional[str], base_port: int, keep: bool, raw: bool,
             label: str, size: int = 3, skip: Optional[List[str]] = None,
             shards: int = 0, sharded_compare: bool = False) -> List[str]:
    t0 = time.monotonic()
    server_args = [f"--shards={shards}"] if shards else None
    with Cluster(kind, binary, size, base_port, keep=keep, label=label,
                 server_args=server_args) as c:
        log(f"[{label}] {kind} cluster healthy in {time.monotonic() - t0:.1f}s on ports "
            f"{base_port}..{' with %d shards' % shards if shards else ''}")
        s = Session(c, raw=raw, skip=skip, sharded_compare=sharded_compare)
        lines = s.script()
    if sharded_compare:
        lines = revisions_aside(lines)
    log(f"[{label}] session done in {time.monotonic() - t0:.1f}s ({len(lines)} lines)")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--compare-with", choices=("etcd", "synod"), default=None,
                   help="run the session on a second cluster of this kind and diff")
    p.add_argument("--compare-binary", default=None, help="binary for the second cluster")
    p.add_argument("--raw", action="store_true", help="print the transcript un-normalized")
    p.add_argument("--out", default=None, help="directory to write the transcripts to")
    p.add_argument("--quiet", action="store_true", help="do not print the transcript")
    p.add_argument("--size", type=int, default=3, help="members in each cluster (3)")
    p.add_argument("--shards", type=int, default=0,
                   help="the first cluster is a synod cluster of this many shards; the "
                        "transcripts are compared with revision numbers aside")
    p.add_argument("--skip", default="",
                   help=f"comma list of sections to leave out: {', '.join(SECTIONS)} (a PBFT "
                        "cluster has a fixed membership and no leadership transfer)")
    a = p.parse_args()
    if not os.access(ETCDCTL, os.X_OK):
        print(f"FAIL: {ETCDCTL} not found", file=sys.stderr)
        return 2
    try:
        skip = [x for x in a.skip.split(",") if x]
        unknown = set(skip) - set(SECTIONS)
        if unknown:
            print(f"FAIL: unknown --skip sections {sorted(unknown)}", file=sys.stderr)
            return 2
        if a.shards and (a.kind != "synod" or a.compare_with not in (None, "synod")):
            print("FAIL: --shards takes --kind synod (and --compare-with synod)", file=sys.stderr)
            return 2
        sharded = a.shards > 0
        first = run_once(a.kind, a.binary, a.base_port, a.keep, a.raw, "a", a.size, skip,
                         a.shards, sharded)
        if not a.quiet:
            print("\n".join(first))
        if a.out:
            os.makedirs(a.out, exist_ok=True)
            with open(os.path.join(a.out, f"transcript-a-{a.kind}.txt"), "w") as f:
                f.write("\n".join(first) + "\n")
        if not a.compare_with:
            return 0
        second = run_once(a.compare_with, a.compare_binary or (a.binary if sharded else None),
                          a.base_port + 20, a.keep, a.raw, "b", a.size, skip, 0, sharded)
        if a.out:
            with open(os.path.join(a.out, f"transcript-b-{a.compare_with}.txt"), "w") as f:
                f.write("\n".join(second) + "\n")
    except ClusterError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    if first == second:
        print(f"PASS: {a.kind} and {a.compare_with} transcripts identical "
              f"({len(first)} lines, {sum(1 for x in first if x.startswith('$'))} commands)")
        return 0
    diff = difflib.unified_diff(second, first, f"{a.compare_with} (reference)", a.kind,
                                lineterm="", n=3)
    print("\n".join(diff))
    print(f"FAIL: transcripts differ ({a.kind} vs {a.compare_with})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
