"""Client workloads of the fault campaign, over the real etcd v3 gRPC API (python3-etcd3), each
recording a history in `synod check`'s JSON-lines format (docs/check.md).

  register  keys r/0..r/K-1: linearizable read, write of a unique value, compare-and-set
            (a txn comparing the value). `synod check --model register`.
  set       one set: add(x) puts s/<x>, read ranges over the prefix. `--model set`.
  lock      one lock guarding one register, the etcd recipe done by the client (as
            clientv3/concurrency does it): a lease with keep-alives, a key under the lock's
            prefix, the holder is the key with the lowest create revision, and that create
            revision is the fencing token. A fenced write is a txn that puts the guarded key only
            if the holder's own key still exists with that create revision, so a holder whose
            lease ran out (paused, partitioned) cannot write. `--model mutex`.

The same code runs against Synod and etcd. Outcomes: a reply is ok (or fail where the reply says
the operation did not happen: a cas or fenced write whose compare was false); an error or
timeout on a write is info (indeterminate), after which the worker continues as a new process,
as Jepsen's do; an error on a read is fail (a read changes nothing). Each worker is bound to one
node and moves to the next live one after an error.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from typing import Callable, Dict, List, Optional

import etcd3  # Debian's python3-etcd3: run under /usr/bin/python3

Endpoints = Callable[[], List[str]]


T0 = time.monotonic_ns()      # every history's times (ns) count from here


def now_ns() -> int:
    return time.monotonic_ns() - T0


class History:
    """Events in the order their times were taken (one lock orders both)."""

    def __init__(self, name: str):
        self.name = name
        self.events: List[dict] = []
        self._lock = threading.Lock()

    def add(self, process: int, type_: str, f: str, key, value,
            node: Optional[str] = None) -> None:
        event = {"process": process, "type": type_, "f": f, "key": key, "value": value}
        if node is not None:
            event["node"] = node  # the member that answered (completions only)
        with self._lock:
            event["time"] = now_ns()
            self.events.append(event)

    def counts(self) -> Dict[str, int]:
        out = {"ok": 0, "fail": 0, "info": 0}
        with self._lock:
            for e in self.events:
                if e["type"] in out:
                    out[e["type"]] += 1
        return out

    def ok_between(self, t0: int, t1: int) -> int:
        """ok completions with a time in [t0, t1)."""
        with self._lock:
            return sum(1 for e in self.events if e["type"] == "ok" and t0 <= e["time"] < t1)

    def write(self, path: str) -> None:
        with self._lock, open(path, "w") as f:
            for e in self.events:
                f.write(json.dumps(e) + "\n")


_process_ids = itertools.count()
_values = itertools.count(1)


class Worker(threading.Thread):
    """One client: runs step() until stop is set, bounded by the deadline too."""

    def __init__(self, wid: int, history: History, endpoints: Endpoints, op_timeout: float,
                 seed: int, stop: threading.Event, deadline: float, pace: float = 0.005):
        super().__init__(name=f"{history.name}-{wid}", daemon=True)
        self.wid = wid
        self.h = history
        self.endpoints = endpoints
        self.op_timeout = op_timeout
        self.rng = random.Random(seed * 1000 + wid)
        self.stop = stop
        self.deadline = deadline
        self.pace = pace
        self.process = next(_process_ids)
        self.client = None
        self.endpoint: Optional[str] = None  # the member the client talks to
        self.node = wid
        self.errors = 0
        self.exc: Optional[BaseException] = None

    # --- plumbing ------------------------------------------------------------------------
    def connect(self):
        if self.client is None:
            eps = self.endpoints()
            ep = eps[self.node % len(eps)]
            self.endpoint = ep
            host, port = ep.rsplit(":", 1)
            self.client = etcd3.client(host=host, port=int(port), timeout=self.op_timeout)
        return self.client

    def drop_client(self) -> None:
        """After an error: next time, connect to the next live node."""
        self.errors += 1
        if self.client is not None:
            try:
                self.client.close()
            except Exception:  # noqa: BLE001
                pass
        self.client = None
        self.node += 1

    def invoke(self, f: str, key, value=None) -> None:
        self.h.add(self.process, "invoke", f, key, value)

    def done(self, type_: str, f: str, key, value=None) -> None:
        self.h.add(self.process, type_, f, key, value, node=self.endpoint)
        if type_ == "info":
            self.process = next(_process_ids)

    def run(self) -> None:
        try:
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                self.step()
                time.sleep(self.rng.uniform(0, 2 * self.pace))
        except BaseException as e:  # noqa: BLE001 - reported by the campaign
            self.exc = e
        finally:
            self.finish()
            if self.client is not None:
                try:
                    self.client.close()
                except Exception:  # noqa: BLE001
                    pass

    def finish(self) -> None:
        pass

    def step(self) -> None:
        raise NotImplementedError


def _s(v) -> Optional[str]:
    return None if v is None else v.decode()


class RegisterWorker(Worker):
    keys = 8
    # planted bug (campaign --bug serializable-reads): reads served by the local member without
    # a quorum round, which a member cut off from the leader answers with an old value
    serializable = False

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.known: Dict[str, str] = {}

    def step(self) -> None:
        key = f"r/{self.rng.randrange(self.keys)}"
        roll = self.rng.random()
        if roll < 0.5:
            self.invoke("read", key)
            try:
                value, _ = self.connect().get(key, serializable=self.serializable)
            except Exception:  # noqa: BLE001
                self.done("fail", "read", key)
                self.drop_client()
                return
            value = _s(value)
            if value is not None:
                self.known[key] = value
            self.done("ok", "read", key, value)
        elif roll < 0.8 or key not in self.known:
            value = str(next(_values))
            self.invoke("write", key, value)
            try:
                self.connect().put(key, value)
            except Exception:  # noqa: BLE001
                self.done("info", "write", key, value)
                self.drop_client()
                return
            self.known[key] = value
            self.done("ok", "write", key, value)
        else:
            pair = [self.known[key], str(next(_values))]
            self.invoke("cas", key, pair)
            try:
                cl = self.connect()
                t = cl.transactions
                swapped, _ = cl.transaction(compare=[t.value(key) == pair[0]],
                                            success=[t.put(key, pair[1])], failure=[])
            except Exception:  # noqa: BLE001
                self.done("info", "cas", key, pair)
                self.drop_client()
                return
            if swapped:
                self.known[key] = pair[1]
            self.done("ok" if swapped else "fail", "cas", key, pair)


_elements = itertools.count()


class SetWorker(Worker):
    """Element x goes to set s<x // per_set> (key s/<set>/<x>), so that reads, the history and
    its check stay small however long the campaign runs."""
    per_set = 300

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.current = 0

    def step(self) -> None:
        if self.rng.random() < 0.1:
            self.read_all(self.current)
            return
        x = next(_elements)
        self.current = x // self.per_set
        key = f"s{self.current}"
        self.invoke("add", key, x)
        try:
            self.connect().put(f"s/{self.current}/{x}", "1")
        except Exception:  # noqa: BLE001
            self.done("info", "add", key, x)
            self.drop_client()
            return
        self.done("ok", "add", key, x)

    def read_all(self, s: int) -> Optional[List[int]]:
        key = f"s{s}"
        self.invoke("read", key)
        prefix = f"s/{s}/"
        try:
            got = sorted(int(meta.key.decode()[len(prefix):]) for _, meta in
                         self.connect().get_prefix(prefix, keys_only=True))
        except Exception:  # noqa: BLE001
            self.done("fail", "read", key)
            self.drop_client()
            return None
        self.done("ok", "read", key, got)
        return got


class LockWorker(Worker):
    """acquire -> fenced write -> (sometimes) read -> release, over and over.

    Now and then (at most once every `pause_every` seconds over all lock workers) a holder
    stalls after acquiring, as a process does in a long GC pause or when swapped out: it stops
    renewing its lease and sleeps past the TTL before writing. By then its lease has usually run
    out and another worker holds the lock and has written; the fence must refuse the stale
    write."""
    key = "lock"              # the history's key (--model mutex)
    prefix = "l/"             # the lock's waiters
    guarded = "lf"            # the register the lock guards
    ttl = 2
    wait = 6.0                # give up waiting for the lock after this long
    pause_every = 8.0
    # planted bug (campaign --bug unfenced-lock): the write is a plain put, without the fence
    unfenced = False
    _next_pause = [0.0]
    _pause_lock = threading.Lock()
    pauses = [0]

    def _stall(self) -> None:
        with self._pause_lock:
            now = time.monotonic()
            if now < self._next_pause[0] or self.rng.random() >= 0.3:
                return
            self._next_pause[0] = now + self.pause_every
            self.pauses[0] += 1
        self._renew_stop.set()
        time.sleep(self.ttl + self.rng.uniform(2.0, 3.0))

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.lease = None
        self.own: Optional[str] = None
        self._renew_stop = threading.Event()
        self._renewer: Optional[threading.Thread] = None

    def _renew(self, cl, lease_id: int, stop: threading.Event) -> None:
        while not stop.wait(self.ttl / 4):
            try:
                for _ in cl.refresh_lease(lease_id):
                    pass
            except Exception:  # noqa: BLE001 - the lease may expire; the fence handles it
                pass

    def _release_quietly(self) -> None:
        self._renew_stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        cl, lease, self.lease, self.own = self.client, self.lease, None, None
        if cl is not None and lease is not None:
            try:
                cl.revoke_lease(lease.id)
            except Exception:  # noqa: BLE001 - it expires by itself
                pass

    def acquire(self) -> Optional[int]:
        """The fencing token (own key's create revision), or None (recorded fail: this client
        does not hold the lock and will not write)."""
        self.invoke("acquire", self.key)
        try:
            cl = self.connect()
            self.lease = cl.lease(self.ttl)
            self.own = f"{self.prefix}{self.lease.id:x}"
            self._renew_stop = threading.Event()
            self._renewer = threading.Thread(target=self._renew, daemon=True,
                                             args=(cl, self.lease.id, self._renew_stop))
            self._renewer.start()
            t = cl.transactions
            cl.transaction(compare=[t.create(self.own) == 0],
                           success=[t.put(self.own, "", lease=self.lease)], failure=[])
            give_up = time.monotonic() + self.wait
            while time.monotonic() < give_up and not self.stop.is_set():
                waiters = list(cl.get_prefix(self.prefix, keys_only=True, sort_order="ascend",
                                             sort_target="create"))
                mine = [m.create_revision for _, m in waiters if m.key.decode() == self.own]
                if not mine:
                    break                       # the lease ran out while waiting
                if waiters[0][1].key.decode() == self.own:
                    self.done("ok", "acquire", self.key, mine[0])
                    return mine[0]
                time.sleep(0.02)
        except Exception:  # noqa: BLE001
            self.drop_client()
        self._release_quietly()
        self.done("fail", "acquire", self.key)
        return None

    def step(self) -> None:
        token = self.acquire()
        if token is None:
            return
        self._stall()
        value = str(next(_values))
        self.invoke("write", self.key, [value, token])
        try:
            cl = self.connect()
            t = cl.transactions
            if self.unfenced:
                cl.put(self.guarded, value)
                fenced = True
            else:
                fenced, _ = cl.transaction(compare=[t.create(self.own) == token],
                                           success=[t.put(self.guarded, value)], failure=[])
            self.done("ok" if fenced else "fail", "write", self.key, [value, token])
        except Exception:  # noqa: BLE001
            self.done("info", "write", self.key, [value, token])
            self.drop_client()
        if self.rng.random() < 0.5:
            self.invoke("read", self.key)
            try:
                v, _ = self.connect().get(self.guarded)
                self.done("ok", "read", self.key, _s(v))
            except Exception:  # noqa: BLE001
                self.done("fail", "read", self.key)
                self.drop_client()
        self.invoke("release", self.key)
        ok = self.lease is not None and self.client is not None
        try:
            if ok:
                self.client.revoke_lease(self.lease.id)
        except Exception:  # noqa: BLE001
            ok = False
        self._release_quietly()
        self.done("ok" if ok else "info", "release", self.key)

    def finish(self) -> None:
        self._release_quietly()


WORKLOADS = {"register": RegisterWorker, "set": SetWorker, "lock": LockWorker}
MODELS = {"register": "register", "set": "set", "lock": "mutex"}
