"""Crash loop under a transactional write load: kill -9 members over and over (sometimes the
leader, sometimes two at once so the quorum is lost), restart them from their data dirs, and
check at the end that every member holds exactly what was acknowledged, nothing half-applied,
nothing invented, and the same HashKV.

    /usr/bin/python3 tests/integration/crash_test.py --kind etcd [--seed N]
    /usr/bin/python3 tests/integration/crash_test.py --kind synod --binary build/synod --seed N

Load: --clients threads (python etcd3, one client each, moving to another endpoint on any
error). Each operation is either a Txn (no compares) that puts TWO keys txn/<c>/<n>/a and
txn/<c>/<n>/b with the same unique value, or (--put-share of them) a plain put put/<c>/<n>.
Every key is written at most once. An op that returned is "acked"; one that raised (error or
timeout) is "indeterminate": it may or may not have been applied.

Crash loop: up to --cycles cycles, no new cycle after --budget seconds. The whole schedule is
drawn from the seed before the cluster starts (and printed): per cycle a pause of 0.2-2 s into
the cycle, the victim ("leader" = whoever endpoint status names at that moment, or a fixed
member), with --double-chance a second victim (quorum lost), the down time before the restart
and the restart order; with --rekill-chance (default 0) also a second kill -9 of the restarted
member 0.05-1 s after its restart, while it is still recovering. After each restart: the
member(s) healthy, an agreed leader, and the load acknowledging new ops again (all bounded).
Thread timing is not replayed; the fault schedule is.

Checks, after the load stopped, every member was restarted and all report one revision:
  1. every acknowledged op is present with its value, on every member (serializable reads
     against each endpoint; every member must be at the converged revision);
  2. nothing is half-applied: for every txn (acked or indeterminate) both keys are present
     with the same value and the same mod revision, or neither is;
  3. no key or value appears that was never attempted, and every key has version 1 (each op is
     applied at most once); the final revision is 1 + the number of applied ops;
  4. endpoint hashkv at the converged revision is equal on all members, and so is the content.
Closes with a summary and 'crash_test: N passed, N failed'. On failure the data root (member
data dirs and logs) is kept and its path printed, as with --keep.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, ClusterError, add_common_args, log, wait_until  # noqa: E402

try:
    import etcd3  # noqa: E402
except ImportError as e:  # pragma: no cover
    print(f"FAIL: cannot import etcd3 ({e}); run with /usr/bin/python3", file=sys.stderr)
    sys.exit(2)

NAMES = ["m1", "m2", "m3"]


# ---- load -------------------------------------------------------------------------------------
@dataclass
class Op:
    kind: str          # "txn" or "put"
    keys: Tuple[str, ...]
    value: str
    outcome: str = "pending"   # "acked" | "indeterminate"
    error: str = ""


class Load:
    """C client threads; each writes ops with keys of its own and records every outcome."""

    def __init__(self, seed: int, clients: int, endpoints: List[str], rate: float,
                 put_share: float, op_timeout: float):
        self.seed = seed
        self.endpoints = list(endpoints)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ops: List[Op] = []
        self.acked = 0
        self.indeterminate = 0
        self.error_kinds: Dict[str, int] = {}
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.put_share = put_share
        self.op_timeout = op_timeout
        self.threads = [threading.Thread(target=self._run, args=(c,), name=f"load-{c}",
                                         daemon=True) for c in range(clients)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _client(self, ep: str):
        host, port = ep.rsplit(":", 1)
        return etcd3.client(host=host, port=int(port), timeout=self.op_timeout)

    def _run(self, c: int) -> None:
        rng = random.Random(self.seed * 1000 + c)
        ep = self.endpoints[c % len(self.endpoints)]
        cl = self._client(ep)
        max_ops = 200000            # a bound on the loop, far above what any budget allows
        try:
            for n in range(max_ops):
                if self.stop.is_set():
                    break
                value = f"s{self.seed}.c{c}.n{n}.{rng.randrange(1 << 40):x}"
                if rng.random() < self.put_share:
                    op = Op("put", (f"put/{c}/{n:06d}",), value)
                else:
                    op = Op("txn", (f"txn/{c}/{n:06d}/a", f"txn/{c}/{n:06d}/b"), value)
                with self.lock:
                    self.ops.append(op)      # recorded as attempted before it is sent
                try:
                    if op.kind == "put":
                        cl.put(op.keys[0], value)
                    else:
                        ok, _ = cl.transaction(
                            compare=[],
                            success=[cl.transactions.put(k, value) for k in op.keys],
                            failure=[])
                        if not ok:
                            raise ClusterError("txn without compares did not succeed")
                    with self.lock:
                        op.outcome = "acked"
                        self.acked += 1
                except Exception as e:  # noqa: BLE001 - outcome unknown
                    kind = type(e).__name__
                    with self.lock:
                        op.outcome = "indeterminate"
                        op.error = kind
                        self.indeterminate += 1
                        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
                    try:
                        cl.close()
                    except Exception:  # noqa: BLE001
                        pass
                    ep = rng.choice([x for x in self.endpoints if x != ep])
                    cl = self._client(ep)
                    self.stop.wait(0.05)
                    continue
                if self.interval:
                    self.stop.wait(self.interval)
        finally:
            try:
                cl.close()
            except Exception:  # noqa: BLE001
                pass

    def finish(self, timeout: float = 20.0) -> None:
        self.stop.set()
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
        alive = [t.name for t in self.threads if t.is_alive()]
        if alive:
            raise ClusterError(f"load threads did not stop: {alive}")


# ---- schedule ---------------------------------------------------------------------------------
@dataclass
class Cycle:
    pause: float            # seconds into the cycle before the kill
    victims: List[str]      # "leader" or a member name; two entries = quorum lost
    down: float             # seconds between the kill(s) and the first restart
    gap: float              # seconds between the two restarts of a double kill
    rekill: Optional[float] = None   # kill the (first) restarted member again this soon

    def describe(self) -> str:
        v = " + ".join(self.victims)
        extra = f", restart gap {self.gap:.2f}s" if len(self.victims) > 1 else ""
        if self.rekill is not None:
            extra += f", kill -9 again {self.rekill:.2f}s after its restart (while recovering)"
        return f"after {self.pause:.2f}s kill -9 {v}, down {self.down:.2f}s{extra}"


def make_schedule(seed: int, cycles: int, leader_chance: float, double_chance: float,
                  rekill_chance: float = 0.0) -> List[Cycle]:
    """Every random choice of the fault schedule, drawn up front so --seed replays it exactly
    (the same number of draws per cycle whatever the branch). The re-kills come from a second
    generator, so that --rekill-chance leaves the rest of a seed's schedule as it was."""
    rng = random.Random(seed)
    rng2 = random.Random(seed * 7919 + 17)
    out = []
    for _ in range(cycles):
        pause = rng.uniform(0.2, 2.0)
        r_leader, r_double = rng.random(), rng.random()
        first = "leader" if r_leader < leader_chance else rng.choice(NAMES)
        second = rng.choice(NAMES)
        down = rng.uniform(0.1, 2.5)
        gap = rng.uniform(0.0, 1.0)
        victims = [first]
        if r_double < double_chance:
            if second == first:        # another member (resolve() does the same for "leader")
                second = NAMES[(NAMES.index(second) + 1) % len(NAMES)]
            victims.append(second)
        r_rekill, rekill = rng2.random(), rng2.uniform(0.05, 1.0)
        out.append(Cycle(pause, victims, down, gap,
                         rekill if r_rekill < rekill_chance else None))
    return out


# ---- run --------------------------------------------------------------------------------------
class Run:
    def __init__(self, a):
        self.a = a
        self.t0 = time.monotonic()
        self.schedule = make_schedule(a.seed, a.cycles, a.leader_chance, a.double_chance,
                                      a.rekill_chance)
        self.rekills = 0
        self.events: List[str] = []
        self.failures: List[str] = []
        self.cycles_done = 0
        self.kills = 0
        self.leader_kills = 0
        self.quorum_losses = 0
        self.recovery: List[float] = []
        self.summary: Optional[dict] = None

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def event(self, what: str) -> None:
        msg = f"t={self.elapsed():5.1f}s {what}"
        self.events.append(msg)
        log(msg)

    def wait_for(self) -> float:
        """The bound for one recovery wait: --recover-timeout, cut to what is left of --limit
        (so that a stuck cluster fails here, with a summary, before ctest's TIMEOUT)."""
        left = self.a.limit - self.elapsed()
        if left <= 0:
            raise ClusterError(f"over the hard limit of {self.a.limit:.0f}s")
        return max(1.0, min(self.a.recover_timeout, left))

    def progress(self, load: Load, within: float, what: str) -> None:
        """Waits until the load acknowledges new ops (the cluster is available again)."""
        with load.lock:
            base = load.acked
        wait_until(lambda: load.acked > base + 3, within, 0.1,
                   f"the load to make progress {what}")

    def resolve(self, victims: List[str], leader: str) -> List[str]:
        names: List[str] = []
        for v in victims:
            if v == "leader":
                v = leader
            if v in names:        # the second victim must be another member: take the next one
                v = NAMES[(NAMES.index(v) + 1) % len(NAMES)]
            names.append(v)
        return names

    def crash_loop(self, c: Cluster, load: Load) -> None:
        a = self.a
        for i, cy in enumerate(self.schedule):
            if self.elapsed() > a.budget:
                self.event(f"time budget of {a.budget:.0f}s used up after {i} cycles")
                break
            time.sleep(cy.pause)
            cur = c.leader(timeout=self.wait_for())     # via endpoint status
            names = self.resolve(cy.victims, cur)
            lead_note = f" (leader {cur})"
            for n in names:
                c.kill(n, signal.SIGKILL)
                self.kills += 1
                self.leader_kills += n == cur
            if len(names) > 1:
                self.quorum_losses += 1
            self.event(f"cycle {i + 1}: kill -9 {' + '.join(names)}{lead_note}"
                       f"{' -- quorum lost' if len(names) > 1 else ''}")
            time.sleep(cy.down)
            t_restart = time.monotonic()
            for j, n in enumerate(names):
                if j:
                    time.sleep(cy.gap)
                c.restart(n, wait=False)
            self.event(f"cycle {i + 1}: restarted {' + '.join(names)} from their data dirs")
            if cy.rekill is not None:
                time.sleep(cy.rekill)
                again = names[0]
                if c.members[again].running():       # it may have failed to start at all
                    c.kill(again, signal.SIGKILL)
                    self.kills += 1
                    self.rekills += 1
                    self.event(f"cycle {i + 1}: kill -9 {again} again {cy.rekill:.2f}s after "
                               f"its restart")
                    time.sleep(0.2)
                    c.restart(again, wait=False)
                    self.event(f"cycle {i + 1}: restarted {again} from its data dir")
            c.wait_healthy(timeout=self.wait_for())
            lead = c.leader(timeout=self.wait_for())
            self.progress(load, self.wait_for(), f"after cycle {i + 1}")
            took = time.monotonic() - t_restart
            self.recovery.append(took)
            self.event(f"cycle {i + 1}: back, leader {lead}, load progressing "
                       f"({took:.1f}s after the restart)")
            self.cycles_done += 1

    def main(self, c: Cluster) -> None:
        a = self.a
        load = Load(a.seed, a.clients, c.endpoints(running_only=False), a.rate, a.put_share,
                    a.op_timeout)
        load.start()
        try:
            self.progress(load, 20, "at start")
            self.crash_loop(c, load)
            time.sleep(1.0)
        finally:
            load.finish()
        self.event(f"load stopped: {load.acked} acked, {load.indeterminate} indeterminate "
                   f"of {len(load.ops)} ops")
        # heal: all members are running after the last cycle; one that has exited since did so
        # by itself -- a failure, but restart it so that its data can still be checked
        for m in c.members.values():
            if not m.running():
                self.fail(f"{m.name} exited by itself (code {m.proc.returncode}) after the "
                          f"last cycle; see {m.log_path}")
                c.restart(m.name, wait=False)
        c.wait_healthy(timeout=self.wait_for())
        rev = c.wait_converged(timeout=self.wait_for())
        self.event(f"all members at revision {rev}")
        self.verify(c, load, rev)

    # ---- checks -----------------------------------------------------------------------------
    def fail(self, msg: str) -> None:
        self.failures.append(msg)
        log(f"FAIL: {msg}")

    def read_member(self, c: Cluster, name: str) -> Tuple[int, Dict[str, Tuple[str, int, int]]]:
        """All keys of one member (serializable): key -> (value, version, mod_revision), and
        the header revision the member answered at."""
        m = c.members[name]
        cl = etcd3.client(host="127.0.0.1", port=m.client_port, timeout=30)
        try:
            # the whole keyspace, through python-etcd3's own stub (its get_all sorts and
            # drops the header)
            req = etcd3.etcdrpc.RangeRequest(key=b"\0", range_end=b"\0", serializable=True)
            resp = cl.kvstub.Range(req, cl.timeout)
            kvs = {kv.key.decode(): (kv.value.decode(), kv.version, kv.mod_revision)
                   for kv in resp.kvs}
            return resp.header.revision, kvs
        finally:
            cl.close()

    def verify(self, c: Cluster, load: Load, rev: int) -> None:
        ops = load.ops
        attempted: Dict[str, str] = {}
        for op in ops:
            for k in op.keys:
                attempted[k] = op.value
        contents: Dict[str, Dict[str, Tuple[str, int, int]]] = {}
        applied_ops: Dict[str, int] = {}
        indet_applied: Dict[str, int] = {}
        for name in NAMES:
            hrev, kvs = self.read_member(c, name)
            contents[name] = kvs
            if hrev != rev:
                self.fail(f"{name}: answered at revision {hrev}, converged revision was {rev}")
            lost, wrong, half, foreign, multi = [], [], [], [], []
            applied = 0
            ind_applied = 0
            for op in ops:
                present = [k in kvs for k in op.keys]
                if op.outcome == "acked" and not all(present):
                    lost.append(op.keys[0])
                if any(present):
                    applied += 1
                    if op.outcome != "acked":
                        ind_applied += 1
                    if op.kind == "txn":
                        got = [kvs.get(k) for k in op.keys]
                        if not all(present) or got[0][0] != got[1][0] or got[0][2] != got[1][2]:
                            half.append(f"{op.keys[0]}: a={got[0]} b={got[1]}")
                for k in op.keys:
                    if k in kvs and kvs[k][0] != op.value:
                        wrong.append(f"{k}={kvs[k][0]!r} (wrote {op.value!r})")
            for k, (v, ver, _mod) in kvs.items():
                if k not in attempted:
                    foreign.append(f"{k}={v!r}")
                elif ver != 1:
                    multi.append(f"{k} version {ver}")
            applied_ops[name] = applied
            indet_applied[name] = ind_applied
            for what, lst in (("acknowledged ops lost", lost), ("keys with another value", wrong),
                              ("half-applied txns", half), ("keys never attempted", foreign),
                              ("keys written more than once", multi)):
                if lst:
                    self.fail(f"{name}: {len(lst)} {what}, e.g. {lst[:5]}")
            if rev != 1 + applied:
                self.fail(f"{name}: revision {rev} but {applied} ops applied "
                          f"(each op is one revision from 1 on: want {1 + applied})")
            if not (lost or wrong or half or foreign or multi):
                log(f"{name}: {len(kvs)} keys; all {load.acked} acked ops present, "
                    f"{ind_applied} of {load.indeterminate} indeterminate ones applied, "
                    f"no half-applied txn, nothing foreign, every key version 1")
        ref = contents[NAMES[0]]
        for name in NAMES[1:]:
            if contents[name] != ref:
                diff = sorted(set(contents[name].items()) ^ set(ref.items()))
                self.fail(f"{name}: content differs from {NAMES[0]} at revision {rev} "
                          f"({len(diff)} entries, e.g. {diff[:4]})")
        hk = c.hashkv(rev)
        hashes = {n: h["hash"] for n, h in hk.items()}
        if sorted(hashes) != NAMES:
            self.fail(f"hashkv answered by {sorted(hashes)}, want {NAMES}")
        if len(set(hashes.values())) != 1:
            self.fail(f"hashkv differs at revision {rev}: {hashes}")
        applied_counts = set(applied_ops.values())
        self.summary = dict(rev=rev, hashes=hashes, ops=len(ops), acked=load.acked,
                            indeterminate=load.indeterminate,
                            indet_applied=max(indet_applied.values()),
                            applied=max(applied_counts),
                            txns=sum(1 for o in ops if o.kind == "txn"),
                            errors=dict(sorted(load.error_kinds.items())))


def ports_in_use(base: int, count: int) -> List[int]:
    """Ports of base..base+count-1 that something already listens on. gRPC servers (synod) set
    SO_REUSEPORT, so a second cluster on the same ports would start and share them with the
    first, each refusing the other's peer frames; find that before starting, not after."""
    busy = []
    for port in range(base, base + count):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sk:
            # SO_REUSEADDR: TIME_WAIT leftovers of an earlier run do not count; a listener does
            sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sk.bind(("127.0.0.1", port))
            except OSError:
                busy.append(port)
    return busy


def main() -> int:
    p = argparse.ArgumentParser(description="kill -9 crash loop under a transactional load")
    add_common_args(p)
    p.add_argument("--seed", type=int, default=None, help="replay a fault schedule")
    p.add_argument("--cycles", type=int, default=8, help="crash cycles (at most)")
    p.add_argument("--budget", type=float, default=90.0,
                   help="no new crash cycle after this many seconds")
    p.add_argument("--clients", type=int, default=4, help="concurrent load clients")
    p.add_argument("--rate", type=float, default=25.0, help="ops per second per client (max)")
    p.add_argument("--put-share", type=float, default=0.25, help="share of plain puts")
    p.add_argument("--op-timeout", type=float, default=3.0, help="client timeout per op (s)")
    p.add_argument("--leader-chance", type=float, default=0.4,
                   help="chance that a cycle's (first) victim is the current leader")
    p.add_argument("--double-chance", type=float, default=0.2,
                   help="chance that a cycle kills two members (quorum lost)")
    p.add_argument("--rekill-chance", type=float, default=0.0,
                   help="chance that a cycle kills its restarted member again 0.05-1 s after "
                        "the restart, before it has recovered (off by default)")
    p.add_argument("--recover-timeout", type=float, default=30.0,
                   help="bound on each wait for recovery / convergence (s)")
    p.add_argument("--limit", type=float, default=200.0,
                   help="hard limit: fail once the run is this old (s; ctest's TIMEOUT is 240)")
    a = p.parse_args()
    if a.seed is None:
        a.seed = int.from_bytes(os.urandom(4), "little") % 1000000
    if a.cycles < 0 or a.clients < 1:
        p.error("--cycles >= 0 and --clients >= 1")
    # the same command line (every option that shapes the schedule or the load) plus the seed
    args = [x for x in sys.argv[1:] if not x.startswith("--seed=")]
    if "--seed" in args:
        i = args.index("--seed")
        del args[i:i + 2]
    replay = " ".join(["/usr/bin/python3", os.path.relpath(__file__)] + args
                      + ["--seed", str(a.seed)])
    print(f"seed {a.seed}  (replay: {replay})", flush=True)
    r = Run(a)
    print("schedule:")
    for i, cy in enumerate(r.schedule):
        print(f"  cycle {i + 1}: {cy.describe()}")
    err: Optional[str] = None
    # The data root is ours (Cluster leaves a root it was given alone): it also holds a copy of
    # the server binary, so that every (re)start in this run execs the same build even if the
    # tree is rebuilt meanwhile, and a failed run keeps the exact binary next to its data.
    data_root = tempfile.mkdtemp(prefix="synod-it-crash-")
    binary = a.binary
    try:
        busy = ports_in_use(a.base_port, 2 * len(NAMES))
        if busy:
            raise ClusterError(f"ports {busy} are in use (another run on --base-port "
                               f"{a.base_port}?); pick another base port")
        if binary:
            binary = os.path.join(data_root, os.path.basename(a.binary))
            shutil.copy2(a.binary, binary)
            with open(binary, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()[:16]
            print(f"binary {a.binary} (sha256 {digest}), running the copy {binary}", flush=True)
        with Cluster(a.kind, binary, 3, a.base_port, data_root=data_root, keep=a.keep,
                     label="crash") as c:
            r.event(f"{a.kind} cluster healthy")
            try:
                r.main(c)
            except Exception as e:  # noqa: BLE001 - report it, keep the data, tear down
                err = f"{type(e).__name__}: {e}\n{c.log_tails(10)}"
    except (ClusterError, OSError) as e:
        err = f"{type(e).__name__}: {e}"
    finally:
        if not (a.keep or err or r.failures):
            shutil.rmtree(data_root, ignore_errors=True)
    if err:
        r.failures.append(err)
    print("---- summary ----")
    print(f"seed            {a.seed}")
    print(f"kind            {a.kind}")
    print(f"duration        {r.elapsed():.1f}s")
    print(f"cycles          {r.cycles_done} of {len(r.schedule)} scheduled")
    print(f"kills           {r.kills} ({r.leader_kills} of the leader, "
          f"{r.quorum_losses} double kills with quorum lost, "
          f"{r.rekills} re-kills while recovering)")
    if r.recovery:
        print(f"recovery        {min(r.recovery):.1f}-{max(r.recovery):.1f}s after restart "
              f"(mean {sum(r.recovery) / len(r.recovery):.1f}s)")
    s = r.summary
    if s:
        print(f"ops attempted   {s['ops']} ({s['txns']} txns of 2 keys, "
              f"{s['ops'] - s['txns']} puts)")
        print(f"ops acked       {s['acked']}")
        print(f"indeterminate   {s['indeterminate']} ({s['indet_applied']} applied, "
              f"{s['indeterminate'] - s['indet_applied']} failed = not applied) "
              f"{s['errors']}")
        print(f"final revision  {s['rev']} (ops applied {s['applied']})")
        print(f"hashkv          {s['hashes']}")
    print("events:")
    for e in r.events:
        print(f"  {e}")
    for f in r.failures:
        print(f"FAIL: {f}")
    if r.failures or a.keep:
        print(f"member data dirs, logs and the binary copy kept under {data_root}")
    if r.failures:
        print(f"replay: {replay}")
    print(f"crash_test: {0 if r.failures else 1} passed, {1 if r.failures else 0} failed")
    return 1 if r.failures else 0


if __name__ == "__main__":
    sys.exit(main())
