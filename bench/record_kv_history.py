#!/usr/bin/python3
"""Records a history of the kv model (docs/check.md) from a 3-member cluster — etcd 3.4 or
`synod server` — while members are paused, in Porcupine's kv format (one EDN map per line) with
:time in nanoseconds:

  {:process 3, :type :invoke, :f :append, :key "1", :value "x 3 17 y", :time 1200345}

  /usr/bin/python3 bench/record_kv_history.py --kind etcd --out /tmp/etcd-kv.edn
  /usr/bin/python3 bench/record_kv_history.py --kind synod --binary build/synod --out /tmp/s.edn
  build/synod check --model kv --format edn /tmp/etcd-kv.edn

Clients: --processes workers (each bound to a member, moving to the next after an error) doing
get (45%), append (45%) and put (10%) on --keys keys, every call with --timeout seconds. Values
are unique tokens "x <worker> <n> y". An append is a read-modify-write that is atomic: a
linearizable get, then a txn that puts the value read plus the token only if the key's
mod_revision is still the one read (0 for an absent key); when the compare fails (another write
came in between) it starts again, at most 5 times, and is :fail if no attempt got through
(nothing was written). A write whose call timed out or failed is :info (it may or may not have
taken effect), and the worker continues as a new process, as Jepsen's do; a get that failed
is :fail (a get changes nothing).

With --bug serializable-gets, gets skip the quorum round (etcd's serializable reads): a member
that was paused answers from its old state until it catches up, and the history must fail.

Faults: every 0.5-2 s the nemesis pauses a member (the leader half of the time) with SIGSTOP
for 1-3 s, then SIGCONT. Everything is bounded: --seconds (at most 600) of load, at most one
pause per second of load, and every member is resumed before the cluster stops. Servers listen
on 127.0.0.1 only (tests/integration/cluster.py).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fault"))

import cluster  # noqa: E402
import workloads  # noqa: E402


class KvWorker(workloads.Worker):
    keys = 3
    attempts = 5  # of an append's read-modify-write, when its compare fails
    # planted bug (--bug serializable-gets): gets served by the member the client talks to
    # without a quorum round, so a member that fell behind (paused) answers with an old value
    serializable = False

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.tokens = 0

    def token(self) -> str:
        self.tokens += 1
        return f"x {self.wid} {self.tokens} y"

    def step(self) -> None:
        key = str(self.rng.randrange(self.keys))
        roll = self.rng.random()
        if roll < 0.45:
            self.get(key)
        elif roll < 0.9:
            self.append(key, self.token())
        else:
            self.put(key, self.token())

    def get(self, key: str) -> None:
        self.invoke("get", key)
        try:
            value, _ = self.connect().get(key, serializable=self.serializable)
        except Exception:  # noqa: BLE001
            self.done("fail", "get", key)
            self.drop_client()
            return
        self.done("ok", "get", key, "" if value is None else value.decode())

    def put(self, key: str, token: str) -> None:
        self.invoke("put", key, token)
        try:
            self.connect().put(key, token)
        except Exception:  # noqa: BLE001
            self.done("info", "put", key, token)
            self.drop_client()
            return
        self.done("ok", "put", key, token)

    def append(self, key: str, token: str) -> None:
        self.invoke("append", key, token)
        for _ in range(self.attempts):
            try:
                cl = self.connect()
                value, meta = cl.get(key)
            except Exception:  # noqa: BLE001
                # Nothing was written: every earlier attempt's compare failed.
                self.done("fail", "append", key, token)
                self.drop_client()
                return
            revision = 0 if value is None else meta.mod_revision
            current = b"" if value is None else value
            try:
                t = cl.transactions
                swapped, _ = cl.transaction(compare=[t.mod(key) == revision],
                                            success=[t.put(key, current + token.encode())],
                                            failure=[])
            except Exception:  # noqa: BLE001
                self.done("info", "append", key, token)
                self.drop_client()
                return
            if swapped:
                self.done("ok", "append", key, token)
                return
        self.done("fail", "append", key, token)


def edn(v) -> str:
    if v is None:
        return "nil"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_edn(h: workloads.History, path: str) -> None:
    with open(path, "w") as f:
        for e in sorted(h.events, key=lambda e: e["time"]):
            f.write(f"{{:process {e['process']}, :type :{e['type']}, :f :{e['f']}, "
                    f":key {edn(e['key'])}, :value {edn(e['value'])}, :time {e['time']}}}\n")


def nemesis(c: cluster.Cluster, rng: random.Random, stop: threading.Event, deadline: float,
            log: list) -> None:
    pauses = 0
    max_pauses = int(deadline - time.monotonic()) + 1
    while not stop.is_set() and time.monotonic() < deadline and pauses < max_pauses:
        stop.wait(rng.uniform(0.5, 2.0))
        if stop.is_set() or time.monotonic() >= deadline:
            break
        try:
            name = c.leader(timeout=2.0) if rng.random() < 0.5 else rng.choice(list(c.members))
        except Exception:  # noqa: BLE001 - no leader right now: any member
            name = rng.choice(list(c.members))
        pid = c.members[name].proc.pid
        length = rng.uniform(1.0, 3.0)
        t0 = workloads.now_ns()
        os.kill(pid, signal.SIGSTOP)
        try:
            stop.wait(length)
        finally:
            os.kill(pid, signal.SIGCONT)
        pauses += 1
        log.append((name, t0, workloads.now_ns()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", choices=cluster.KINDS, default="etcd")
    ap.add_argument("--binary", help="synod binary (--kind synod)")
    ap.add_argument("--out", required=True, help="the history, EDN lines")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--processes", type=int, default=30)
    ap.add_argument("--keys", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=0.5, help="seconds per client call")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--base-port", type=int, default=23710)
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--bug", choices=["serializable-gets"],
                    help="planted: gets without a quorum round (histories that must fail)")
    a = ap.parse_args()
    if not 0 < a.seconds <= 600 or not 1 <= a.processes <= 200:
        ap.error("--seconds must be in (0, 600] and --processes in [1, 200]")
    KvWorker.keys = a.keys
    KvWorker.serializable = a.bug == "serializable-gets"
    rng = random.Random(a.seed)
    h = workloads.History("kv")
    pauses: list = []
    with cluster.Cluster(a.kind, binary=a.binary, size=3, base_port=a.base_port,
                         label=f"kv-{a.kind}") as c:
        stop = threading.Event()
        deadline = time.monotonic() + a.seconds
        workers = [KvWorker(i, h, c.endpoints, a.timeout, a.seed, stop, deadline)
                   for i in range(a.processes)]
        for w in workers:
            w.start()
        nem = None
        if not a.no_faults:
            nem = threading.Thread(target=nemesis, args=(c, rng, stop, deadline, pauses),
                                   daemon=True)
            nem.start()
        try:
            while time.monotonic() < deadline and any(w.is_alive() for w in workers):
                time.sleep(0.2)
        finally:
            stop.set()
            if nem is not None:
                nem.join(timeout=10)
            for w in workers:
                w.join(timeout=2 * a.timeout * KvWorker.attempts + 5)
    write_edn(h, a.out)
    counts = h.counts()
    errors = [w.exc for w in workers if w.exc is not None]
    print(f"{a.out}: {sum(counts.values())} completions {counts}, {len(pauses)} pauses, "
          f"{a.processes} workers, {a.keys} keys; worker exceptions: {len(errors)}")
    for e in errors[:3]:
        print(f"  {type(e).__name__}: {e}")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
