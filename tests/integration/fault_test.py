"""Faults on real processes under a write load; no acknowledged write may be lost and all
members must agree at the end.

    /usr/bin/python3 tests/integration/fault_test.py --kind etcd [--seed N]
    /usr/bin/python3 tests/integration/fault_test.py --kind synod --binary build/synod --seed N

Schedule (the seed picks the pauses, which follower is killed, which member is paused, which
original member is removed, and how the load clients move between endpoints; thread timing is
not replayed, the fault schedule is):
  1. a 3-member cluster; W writer threads (python etcd3), each putting unique keys
     load/<worker>/<seq>; every acknowledged put is recorded with its value
  2. SIGKILL the leader; wait for a new leader among the other two; restart it from its data dir
  3. SIGKILL a follower; restart it from its data dir
  3b. SIGKILL the leader, then a follower (quorum lost, writes stall); restart both
  4. SIGSTOP a member for ~2 s, then SIGCONT
  5. add a 4th member (etcdctl member add, start with --initial-cluster-state existing)
  6. remove one of the original three (possibly the leader)
  7. stop the load; wait until all members report the same revision (bounded); endpoint
     hashkv at that revision must be equal on all; every acknowledged key must be present with
     its value on every member
Bounded: each step has its own timeout, the whole run a --budget (default 120 s) after which
it fails. Closes with 'fault_test: N passed, N failed'.

With --server-arg=--snapshot-count=100 the members compact their logs every 100 entries, so
the restarted and the added members catch up from a snapshot rather than from the log;
--expect-snapshots (Synod only) then requires the members' logs to show that both happened.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
import time
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, ClusterError, add_common_args, log, wait_until  # noqa: E402

try:
    import etcd3  # noqa: E402
except ImportError as e:  # pragma: no cover
    print(f"FAIL: cannot import etcd3 ({e}); run with /usr/bin/python3", file=sys.stderr)
    sys.exit(2)


class Load:
    """W writer threads; each keeps one client to one endpoint and moves to another on error."""

    def __init__(self, seed: int, workers: int, endpoints: List[str], rate: float):
        self.seed = seed
        self.workers = workers
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked: Dict[str, str] = {}
        self.attempted = 0
        self.errors = 0
        self.error_kinds: Dict[str, int] = {}
        self._endpoints = list(endpoints)
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.threads = [threading.Thread(target=self._run, args=(w,), name=f"load-{w}",
                                         daemon=True) for w in range(workers)]
        self.deadline_hit = False

    def set_endpoints(self, eps: List[str]) -> None:
        with self.lock:
            self._endpoints = list(eps)

    def endpoints(self) -> List[str]:
        with self.lock:
            return list(self._endpoints)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _client(self, ep: str):
        host, port = ep.rsplit(":", 1)
        return etcd3.client(host=host, port=int(port), timeout=3)

    def _run(self, w: int) -> None:
        rng = random.Random(self.seed * 1000 + w)
        eps = self.endpoints()
        ep = eps[w % len(eps)]
        cl = self._client(ep)
        seq = 0
        max_ops = 100000           # a bound on the loop, far above what the budget allows
        try:
            while not self.stop.is_set() and seq < max_ops:
                key = f"load/{w}/{seq:06d}"
                value = f"v{w}.{seq}.{rng.randrange(1 << 30)}"
                seq += 1
                with self.lock:
                    self.attempted += 1
                try:
                    cl.put(key, value)
                    with self.lock:
                        self.acked[key] = value
                except Exception as e:  # noqa: BLE001 - outcome unknown; not recorded
                    kind = type(e).__name__
                    with self.lock:
                        self.errors += 1
                        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
                    try:
                        cl.close()
                    except Exception:  # noqa: BLE001
                        pass
                    eps = self.endpoints()
                    others = [x for x in eps if x != ep] or eps
                    ep = rng.choice(others)
                    cl = self._client(ep)
                    self.stop.wait(0.05)
                    continue
                if ep not in self.endpoints():      # its member was removed: move on
                    try:
                        cl.close()
                    except Exception:  # noqa: BLE001
                        pass
                    ep = rng.choice(self.endpoints())
                    cl = self._client(ep)
                if self.interval:
                    self.stop.wait(self.interval)
        finally:
            try:
                cl.close()
            except Exception:  # noqa: BLE001
                pass

    def finish(self, timeout: float = 15.0) -> None:
        self.stop.set()
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
        alive = [t.name for t in self.threads if t.is_alive()]
        if alive:
            raise ClusterError(f"load threads did not stop: {alive}")


class Run:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.t0 = time.monotonic()
        self.faults: List[str] = []
        self.failures: List[str] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def check_budget(self) -> None:
        if self.elapsed() > self.a.budget:
            raise ClusterError(f"over the time budget of {self.a.budget:.0f}s")

    def fault(self, what: str) -> None:
        msg = f"t={self.elapsed():5.1f}s {what}"
        self.faults.append(msg)
        log(f"FAULT {msg}")

    def pause(self, lo: float, hi: float) -> None:
        time.sleep(self.rng.uniform(lo, hi))
        self.check_budget()

    def progress(self, load: Load, within: float = 15.0, what: str = "") -> None:
        """Waits until the load acknowledges new writes (the cluster is available again)."""
        with load.lock:
            base = len(load.acked)
        wait_until(lambda: len(load.acked) > base + 5, within, 0.1,
                   f"the load to make progress{' ' + what if what else ''}")

    def main(self, c: Cluster) -> None:
        a = self.a
        load = Load(a.seed, a.workers, c.endpoints(), a.rate)
        load.start()
        try:
            self.pause(2, 3)
            self.progress(load, what="at start")
            # 1. kill -9 the leader
            lead = c.leader()
            c.kill(lead, signal.SIGKILL)
            self.fault(f"SIGKILL leader {lead}")
            newlead = wait_until(lambda: (lambda l: l if l != lead else None)(c.leader()), 20,
                                 0.3, "a new leader after killing the old one")
            log(f"new leader {newlead}")
            self.progress(load, what=f"after killing {lead}")
            self.pause(1, 3)
            c.restart(lead)
            self.fault(f"restart {lead} from its data dir")
            self.pause(1, 2)
            # 2. kill -9 a follower
            fol = self.rng.choice(sorted(c.followers()))
            c.kill(fol, signal.SIGKILL)
            self.fault(f"SIGKILL follower {fol}")
            self.pause(1, 3)
            self.progress(load, what=f"after killing {fol}")
            c.restart(fol)
            self.fault(f"restart {fol} from its data dir")
            # 2b. kill -9 the leader, then a follower: quorum is lost; restart both from disk
            time.sleep(1.0)
            lead2 = c.leader()
            fol2 = self.rng.choice(sorted(c.followers()))
            c.kill(lead2, signal.SIGKILL)
            self.fault(f"SIGKILL leader {lead2}")
            self.pause(0.3, 1.5)
            c.kill(fol2, signal.SIGKILL)
            self.fault(f"SIGKILL follower {fol2} (quorum lost)")
            self.pause(1, 2)
            first, second = self.rng.sample([lead2, fol2], 2)
            c.restart(first, wait=False)
            self.fault(f"restart {first} from its data dir")
            self.pause(0.2, 1.5)
            c.restart(second, wait=False)
            self.fault(f"restart {second} from its data dir")
            c.wait_healthy(timeout=30)
            self.progress(load, within=20, what="after the quorum came back")
            # 3. pause a member
            victim = self.rng.choice(sorted(c.members))
            c.kill(victim, signal.SIGSTOP)
            self.fault(f"SIGSTOP {victim}")
            self.pause(1.5, 2.5)
            c.kill(victim, signal.SIGCONT)
            self.fault(f"SIGCONT {victim}")
            c.wait_healthy(timeout=30)
            self.progress(load, what="after the pause")
            # 4. add a 4th member under load (etcd wants its peers connected for 5 s first)
            time.sleep(max(0.0, 5.5 - self.rng.uniform(0, 1.5)))
            self.check_budget()
            c.add_member("m4")
            self.fault("member add m4 (+ start with --initial-cluster-state existing)")
            load.set_endpoints(c.endpoints())
            self.pause(1, 2)
            self.progress(load, what="after adding m4")
            # 5. remove one of the original members
            gone = self.rng.choice(["m1", "m2", "m3"])
            was_leader = c.leader() == gone
            load.set_endpoints([e for e in c.endpoints() if e != c.members[gone].endpoint])
            time.sleep(0.5)
            c.remove_member(gone)
            self.fault(f"member remove {gone}{' (the leader)' if was_leader else ''}")
            self.pause(1, 2)
            self.progress(load, within=20, what=f"after removing {gone}")
            self.pause(1, 2)
        finally:
            load.finish()
        self.verify(c, load)

    def verify(self, c: Cluster, load: Load) -> None:
        log(f"load stopped: {len(load.acked)} acked of {load.attempted} attempted")
        rev = c.wait_converged(timeout=30)
        hk = c.hashkv(rev)
        hashes = {n: h["hash"] for n, h in hk.items()}
        running = sorted(m.name for m in c.members.values() if m.running() and not m.removed)
        if sorted(hashes) != running:
            self.failures.append(f"hashkv answered by {sorted(hashes)}, running {running}")
        if len(set(hashes.values())) != 1:
            self.failures.append(f"hashkv differs at revision {rev}: {hashes}")
        else:
            log(f"all {len(hashes)} members at revision {rev}, hashkv {hashes[running[0]]}")
        for name in running:
            m = c.members[name]
            cl = etcd3.client(host="127.0.0.1", port=m.client_port, timeout=20)
            try:
                have = {meta.key.decode(): v.decode()
                        for v, meta in cl.get_prefix("load/", serializable=True)}
            finally:
                cl.close()
            missing = [k for k in load.acked if k not in have]
            wrong = [k for k, v in load.acked.items() if k in have and have[k] != v]
            if missing or wrong:
                self.failures.append(
                    f"{name}: {len(missing)} acknowledged keys missing (e.g. {missing[:5]}), "
                    f"{len(wrong)} with another value (e.g. {wrong[:5]})")
            else:
                log(f"{name}: all {len(load.acked)} acknowledged writes present "
                    f"({len(have)} load keys in all; the rest were unacknowledged attempts)")
        self.summary = (load, rev, hashes)

    def check_snapshots(self, c: Cluster) -> None:
        """Counts, in every member's log, the log compactions and the snapshots installed."""
        compacted, installed = {}, {}
        for m in c.members.values():
            with open(m.log_path, "rb") as f:
                text = f.read().decode(errors="replace")
            compacted[m.name] = text.count("compacted the log up to index")
            installed[m.name] = text.count("installed the state at applied index")
        log(f"log compactions {compacted}, snapshots installed {installed}")
        if sum(compacted.values()) == 0:
            self.failures.append(f"no member compacted its log: {compacted}")
        if sum(installed.values()) == 0:
            self.failures.append(f"no member caught up from a snapshot: {installed}")


def main() -> int:
    p = argparse.ArgumentParser(description="kill/pause/membership faults under a write load")
    add_common_args(p)
    p.add_argument("--seed", type=int, default=None, help="replay a fault schedule")
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--rate", type=float, default=40.0, help="puts per second per worker (max)")
    p.add_argument("--budget", type=float, default=120.0, help="fail after this many seconds")
    p.add_argument("--server-arg", action="append", default=[], metavar="FLAG",
                   help="one more flag for every member, e.g. --server-arg=--snapshot-count=100 "
                        "(repeatable)")
    p.add_argument("--expect-snapshots", action="store_true",
                   help="Synod: fail unless some member compacted its log and some member "
                        "installed a snapshot (with a small --snapshot-count)")
    a = p.parse_args()
    if a.seed is None:
        a.seed = int.from_bytes(os.urandom(4), "little") % 1000000
    replay = (f"/usr/bin/python3 {os.path.relpath(__file__)} --kind {a.kind}"
              f"{' --binary ' + a.binary if a.binary else ''} --seed {a.seed}"
              + "".join(f" --server-arg={x}" for x in a.server_arg)
              + (" --expect-snapshots" if a.expect_snapshots else ""))
    print(f"seed {a.seed}  (replay: {replay})", flush=True)
    r = Run(a)
    err: Optional[str] = None
    try:
        with Cluster(a.kind, a.binary, 3, a.base_port, keep=a.keep, label="fault",
                     server_args=a.server_arg) as c:
            log(f"{a.kind} cluster healthy in {r.elapsed():.1f}s")
            try:
                r.main(c)
                if a.expect_snapshots and a.kind == "synod":
                    r.check_snapshots(c)
            except ClusterError as e:
                err = f"{e}\n{c.log_tails(8)}"
    except ClusterError as e:
        err = str(e)
    print("---- summary ----")
    print(f"seed            {a.seed}")
    print(f"kind            {a.kind}")
    print(f"duration        {r.elapsed():.1f}s")
    s = getattr(r, "summary", None)
    if s:
        load, rev, hashes = s
        print(f"ops attempted   {load.attempted}")
        print(f"ops acked       {len(load.acked)}")
        print(f"ops failed      {load.errors} {dict(sorted(load.error_kinds.items()))}")
        print(f"final revision  {rev}")
        print(f"hashkv          {hashes}")
    print(f"faults injected {len(r.faults)}")
    for f in r.faults:
        print(f"  {f}")
    if err:
        r.failures.append(err)
    for f in r.failures:
        print(f"FAIL: {f}")
    if r.failures:
        print(f"replay: {replay}")
    print(f"fault_test: {0 if r.failures else 1} passed, {1 if r.failures else 0} failed")
    return 1 if r.failures else 0


if __name__ == "__main__":
    sys.exit(main())
