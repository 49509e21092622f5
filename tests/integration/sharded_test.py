"""A sharded Synod cluster (`synod server --shards S --replication R`) on real processes, driven
by python3-etcd3 and etcdctl: the etcd API unchanged over many Raft groups.

    /usr/bin/python3 tests/integration/sharded_test.py --binary build/synod

Checks: keys spread over the shards and ranges merged in key order (limits, counts, sorting);
revisions global and increasing across shards; past-revision reads as snapshots; cross-shard
transactions (both branches, responses in order) and a bank of accounts on every shard whose
total never changes in any read while transfers run; leases whose keys live in several shards;
a prefix watch over every shard, in revision order; a member killed and restarted under load;
a data dir refused with another shard layout; consistent cuts of every shard taken while
transfers run (`synod ctl snapshot save --cluster`), each restored into a fresh cluster with the
bank's total; five members with three replicas per shard, where
a member forwards what it does not replicate and cross-shard transactions commit by three-phase
commit (the bank again, and the members' metrics count 3pc commits); a read at a past revision
that waits for a write stamped below it but not yet committed. Synod only (etcd has no shards).
Closes with 'sharded: N passed, N failed'.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import (ETCDCTL, Cluster, ClusterError, add_common_args, dir_bytes, log,  # noqa: E402
                     wait_until)

try:
    import etcd3  # noqa: E402
    import grpc  # noqa: E402
except ImportError as e:  # pragma: no cover
    print(f"FAIL: cannot import etcd3/grpc ({e}); run with /usr/bin/python3", file=sys.stderr)
    sys.exit(2)

SHARDS = 8
TESTS = []


def test(f):
    TESTS.append(f)
    return f


def eq(got, want, what=""):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def prefix_end(p: str) -> bytes:
    b = bytearray(p.encode())
    b[-1] += 1
    return bytes(b)


def range_raw(cl, key, range_end=None, **fields):
    req = etcd3.etcdrpc.RangeRequest(key=key.encode(), **fields)
    if range_end is not None:
        req.range_end = range_end
    return cl.kvstub.Range(req, cl.timeout)


def unavailable(e: Exception) -> bool:
    """A retryable refusal (a key held by a cross-shard transaction in flight, a leader being
    elected): gRPC UNAVAILABLE, which python-etcd3 raises as ConnectionFailedError."""
    if isinstance(e, etcd3.exceptions.ConnectionFailedError):
        return True
    return isinstance(e, grpc.RpcError) and e.code() == grpc.StatusCode.UNAVAILABLE


def retrying(fn, what, tries=50, seconds=60.0):
    """Runs fn, again while it is refused for now (unavailable()); bounded in tries and time."""
    deadline = time.monotonic() + seconds
    for i in range(tries):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001
            if not unavailable(e) or i + 1 == tries or time.monotonic() > deadline:
                raise AssertionError(f"{what}: {type(e).__name__}: {e}") from e
            time.sleep(0.02)
    raise AssertionError(f"{what}: still unavailable")


class Ctx:
    def __init__(self, c: Cluster):
        self.c = c
        self.clients = {m.name: etcd3.client(host="127.0.0.1", port=m.client_port, timeout=10)
                        for m in c.members.values()}
        self.cl = self.clients["m1"]

    def close(self):
        prev = threading.excepthook

        def hook(args):
            if not (args.thread is not None and args.thread.name.startswith("etcd3_watch")
                    and "Channel closed" in str(args.exc_value)):
                prev(args)
        threading.excepthook = hook
        for cl in self.clients.values():
            cl.close()


@test
def ranges_merge_every_shard(x: Ctx):
    cl = x.cl
    keys = [f"r/{i:03d}" for i in range(120)]
    for i, k in enumerate(keys):
        cl.put(k, str(i % 7))
    got = [m.key.decode() for _, m in cl.get_prefix("r/")]
    eq(got, keys, "prefix in key order")
    r = range_raw(cl, "r/", prefix_end("r/"), limit=10)
    eq([kv.key.decode() for kv in r.kvs], keys[:10], "limit: the first keys")
    eq((r.more, r.count), (True, 120), "more and count")
    r = range_raw(cl, "r/", prefix_end("r/"), count_only=True)
    eq((len(r.kvs), r.count), (0, 120), "count only")
    r = range_raw(cl, "r/", prefix_end("r/"), limit=5,
                  sort_order=etcd3.etcdrpc.RangeRequest.DESCEND,
                  sort_target=etcd3.etcdrpc.RangeRequest.KEY)
    eq([kv.key.decode() for kv in r.kvs], keys[::-1][:5], "descending by key")
    r = range_raw(cl, "r/", prefix_end("r/"), sort_order=etcd3.etcdrpc.RangeRequest.ASCEND,
                  sort_target=etcd3.etcdrpc.RangeRequest.MOD)
    mods = [kv.mod_revision for kv in r.kvs]
    eq(mods, sorted(mods), "ascending by mod revision")
    eq([kv.key.decode() for kv in r.kvs], keys, "puts made in key order: mod order is key order")
    # Every shard holds some: the keys' groups are spread (jump hash of xxHash64).
    r = range_raw(cl, "r/", prefix_end("r/"), serializable=True)
    eq(r.count, 120, "serializable count")


@test
def revisions_are_global_and_increasing(x: Ctx):
    cl = x.cl
    last = 0
    for i in range(40):
        r = cl.put(f"rev/{i}", "v")
        rev = r.header.revision
        if rev <= last:
            raise AssertionError(f"put {i} at revision {rev}, after one at {last}")
        last = rev
    # The header of a read is at least the newest write's revision, on every member.
    for name, other in x.clients.items():
        got = other.get("rev/39")[1].mod_revision
        eq(got, last, f"mod revision seen on {name}")


@test
def past_revision_reads_are_snapshots(x: Ctx):
    cl = x.cl
    for i in range(16):
        cl.put(f"snap/{i:02d}", "old")
    at = range_raw(cl, "snap/", prefix_end("snap/")).header.revision
    for i in range(16):
        cl.put(f"snap/{i:02d}", "new")
    cl.delete("snap/00")
    r = range_raw(cl, "snap/", prefix_end("snap/"), revision=at)
    eq([(kv.key.decode(), kv.value.decode()) for kv in r.kvs],
       [(f"snap/{i:02d}", "old") for i in range(16)], "as of the earlier revision")
    future = range_raw(cl, "snap/", prefix_end("snap/")).header.revision + 1_000_000
    try:
        range_raw(cl, "snap/", prefix_end("snap/"), revision=future)
        raise AssertionError("a future revision was served")
    except grpc.RpcError as e:
        eq(e.code(), grpc.StatusCode.OUT_OF_RANGE, "future revision")


@test
def cross_shard_transactions(x: Ctx):
    cl = x.cl
    keys = [f"tx/{i}" for i in range(6)]  # in several shards
    for k in keys:
        cl.put(k, "0")
    ok, resp = cl.transaction(
        compare=[cl.transactions.value(k) == "0" for k in keys],
        success=[cl.transactions.put(k, "1") for k in keys] + [cl.transactions.get(keys[3])],
        failure=[cl.transactions.get(keys[0])])
    eq(ok, True, "every compare held")
    eq([v.decode() for v, _ in resp[-1]], ["1"], "a read after the writes sees them")
    eq([cl.get(k)[0].decode() for k in keys], ["1"] * 6, "all written")
    ok, resp = cl.transaction(
        compare=[cl.transactions.value(keys[0]) == "1", cl.transactions.value(keys[5]) == "0"],
        success=[cl.transactions.put(k, "2") for k in keys],
        failure=[cl.transactions.get(keys[5]), cl.transactions.get(keys[1])])
    eq(ok, False, "one compare failed")
    eq([[v.decode() for v, _ in r] for r in resp], [["1"], ["1"]], "failure branch, in order")
    eq([cl.get(k)[0].decode() for k in keys], ["1"] * 6, "nothing written")
    # One transaction, one revision: every part wrote at it, in every shard.
    mods = {cl.get(k)[1].mod_revision for k in keys}
    eq(len(mods), 1, f"the transaction's writes at one revision ({sorted(mods)})")
    txn = etcd3.etcdrpc.TxnRequest(success=[etcd3.etcdrpc.RequestOp(
        request_put=etcd3.etcdrpc.PutRequest(key=k.encode(), value=b"1")) for k in keys])
    at = cl.kvstub.Txn(txn, cl.timeout).header.revision
    eq({cl.get(k)[1].mod_revision for k in keys}, {at}, "its header's revision")
    # A range read in a transaction across shards: every shard's keys, merged in key order.
    ok, resp = cl.transaction(
        compare=[cl.transactions.value(keys[0]) == "1"],
        success=[cl.transactions.put("tx/new", "n"),
                 cl.transactions.get("tx/", range_end=prefix_end("tx/").decode())],
        failure=[])
    eq(ok, True, "compare held")
    eq([m.key.decode() for _, m in resp[1]], sorted(keys + ["tx/new"]),
       "a prefix read in the transaction sees every shard's keys, its own put included")
    # A DeleteRange over several shards is one transaction: all of it, in one answer.
    deleted = cl.delete_prefix("tx/")
    eq(deleted.deleted, 7, "deleted across shards")
    eq(list(cl.get_prefix("tx/")), [], "every shard's keys gone")
    # m1 coordinated these; their decisions go from their groups once every part resolved.
    port = x.c.members["m1"].client_port

    def forgotten() -> float:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        for line in text.decode().splitlines():
            if line.startswith("synod_server_cross_shard_decisions_forgotten_total "):
                return float(line.split()[1])
        return 0.0
    wait_until(lambda: forgotten() >= 4, 15, 0.2, "four decisions forgotten")


@test
def etcdctl_lock_excludes_across_shards(x: Ctx):
    """etcdctl lock's recipe reads the lock's prefix in its acquiring transaction (a range over
    every shard): three contending clients' read-modify-writes of a counter lose nothing."""
    c = x.c
    c.etcdctl("put", "ctr", "0")
    ep = c.members["m1"].endpoint
    inner = (f"v=$({ETCDCTL} --endpoints={ep} get ctr --print-value-only) && "
             f"{ETCDCTL} --endpoints={ep} put ctr $((v+1)) >/dev/null")
    failures = []

    def contender(name):
        for _ in range(4):
            r = c.etcdctl("lock", "ctr-lock", "--", "sh", "-c", inner, check=False, timeout=30,
                          endpoints=[c.members[name].endpoint])
            if r.returncode != 0:
                failures.append(f"{name}: exit {r.returncode}: {r.stderr.strip()[-300:]}")

    threads = [threading.Thread(target=contender, args=(n,)) for n in ("m1", "m2", "m3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    eq(failures, [], "every lock taken and its command run")
    eq(x.cl.get("ctr")[0], b"12", "no increment lost")
    eq(list(x.cl.get_prefix("ctr-lock/")), [], "every lock released")


@test
def fenced_writes_across_shards(x: Ctx):
    """A fenced put checks the token against the lock's waiters in every shard: the holder is the
    waiter with the lowest create revision, wherever its key lives."""
    c = x.c

    def fenced_put(token: int, key: str, value: str):
        return subprocess.run([c.binary, "ctl", "--endpoints", c.members["m2"].endpoint,
                               "fenced-put", "fl", str(token), key, value],
                              capture_output=True, text=True, timeout=30)

    waiters = [x.cl.put(f"fl/{w}", "").header.revision for w in ("w0", "w1", "w2")]
    holder = waiters[0]
    for i in range(8):  # data keys in several shards, the waiters in others
        r = fenced_put(holder, f"fd/{i}", f"v{i}")
        eq(r.returncode, 0, f"the holder's fenced put fd/{i}: {r.stderr.strip()}")
    r = fenced_put(waiters[1], "fd/0", "stale")
    eq(r.returncode != 0 and f"fencing token {waiters[1]} is not the lock holder's "
       f"({holder})" in r.stderr, True, f"a waiter's token refused: {r.stderr.strip()}")
    x.cl.delete("fl/w0")  # the holder lets go; the next waiter holds the lock
    r = fenced_put(holder, "fd/0", "late")
    eq(r.returncode != 0 and "is older than the lock holder's" in r.stderr, True,
       f"the old holder's token refused: {r.stderr.strip()}")
    eq(fenced_put(waiters[1], "fd/0", "next").returncode, 0, "the next holder writes")
    x.cl.delete_prefix("fl/")
    r = fenced_put(waiters[1], "fd/0", "gone")
    eq(r.returncode != 0 and "lock fl is not held" in r.stderr, True,
       f"no holder: refused: {r.stderr.strip()}")
    eq([v for v, _ in x.cl.get_prefix("fd/")],
       [b"next"] + [f"v{i}".encode() for i in range(1, 8)], "only the holders' writes")


def transfer_once(cl, accounts, rnd) -> bool:
    """Moves 1..10 between two accounts read just before, if neither changed meanwhile (one Txn,
    across shards when they live in two); True if it committed."""
    a, b = rnd.sample(accounts, 2)
    (va, ma), (vb, mb) = cl.get(a), cl.get(b)
    amount = rnd.randint(1, 10)
    ok, _ = cl.transaction(compare=[cl.transactions.mod(a) == ma.mod_revision,
                                    cl.transactions.mod(b) == mb.mod_revision],
                           success=[cl.transactions.put(a, str(int(va) - amount)),
                                    cl.transactions.put(b, str(int(vb) + amount))],
                           failure=[])
    return ok


@test
def bank_total_never_changes(x: Ctx):
    accounts = [f"bank/{i:02d}" for i in range(16)]
    for a in accounts:
        x.cl.put(a, "100")
    total = 100 * len(accounts)
    start = time.monotonic()
    errors = []
    transfers = [0]
    audits = [0]

    def running():
        # Six seconds, longer (up to 30) until five audits completed: on a loaded machine an
        # audit across shards often meets a key a transfer holds and starts over.
        elapsed = time.monotonic() - start
        return not errors and (elapsed < 6 or (audits[0] < 5 and elapsed < 30))

    def transfer(name):
        cl = x.clients[name]
        rnd = random.Random(hash(name))
        while running():
            try:
                if transfer_once(cl, accounts, rnd):
                    transfers[0] += 1
            except Exception as e:  # noqa: BLE001
                if not unavailable(e):
                    errors.append(f"transfer: {type(e).__name__}: {e}")

    def audit():
        cl = x.clients["m2"]
        while running():
            try:
                got = sum(int(v) for v, _ in cl.get_prefix("bank/"))
            except Exception as e:  # noqa: BLE001
                if unavailable(e):
                    continue  # a key held by a transfer between its prepare and resolve
                errors.append(f"audit: {type(e).__name__}: {e}")
                return
            audits[0] += 1
            if got != total:
                errors.append(f"audit {audits[0]} saw a total of {got}, want {total}")

    first = range_raw(x.cl, "bank/", prefix_end("bank/")).header.revision
    past_audits = [0]

    def past_audit():
        # At a recent past revision: a transfer's parts are at one revision, so either both or
        # neither are below it.
        cl = x.clients["m3"]
        rnd = random.Random(7)
        while running():
            try:
                now = range_raw(cl, "bank/", prefix_end("bank/"), serializable=True).header.revision
                at = max(first, now - rnd.randint(0, 40))
                r = range_raw(cl, "bank/", prefix_end("bank/"), revision=at)
            except Exception as e:  # noqa: BLE001
                if unavailable(e):
                    continue
                errors.append(f"past audit: {type(e).__name__}: {e}")
                return
            past_audits[0] += 1
            got = sum(int(kv.value) for kv in r.kvs)
            if got != total:
                errors.append(f"past audit at revision {at} saw a total of {got}, want {total}")

    # A watch of the accounts from before the transfers: replayed revision by revision, the
    # total holds after each (a transfer's two events come at one revision, in one answer).
    events, cancel_watch = x.clients["m1"].watch_prefix("bank/", start_revision=first + 1)
    seen = []

    def watch():
        for e in events:
            seen.append((e.mod_revision, e.key.decode(), int(e.value)))

    # And watches from now, opened one after another while transfers run: the accounts read at
    # a watch's created revision, then its events, hold the total revision by revision (a
    # transfer is in the state at that revision or in the events, never half in each).
    requests = queue.Queue()

    def request_stream():
        while True:
            r = requests.get()
            if r is None:
                return
            yield r

    now_watches = {}  # watch ID -> {"created": revision, "events": [...]}
    now_call = {}

    def watch_from_now():
        stub = etcd3.etcdrpc.WatchStub(x.clients["m3"].channel)
        responses = stub.Watch(request_stream(), timeout=120)
        now_call["call"] = responses
        try:
            for resp in responses:
                w = now_watches.setdefault(resp.watch_id, {"created": None, "events": []})
                if resp.created:
                    w["created"] = resp.header.revision
                for e in resp.events:
                    w["events"].append((e.kv.mod_revision, e.kv.key.decode(), int(e.kv.value)))
        except grpc.RpcError:
            pass  # cancelled at the end

    def open_watches_from_now():
        time.sleep(0.5)  # transfers under way
        for _ in range(20):
            if not running():
                break
            requests.put(etcd3.etcdrpc.WatchRequest(
                create_request=etcd3.etcdrpc.WatchCreateRequest(
                    key=b"bank/", range_end=prefix_end("bank/"))))
            time.sleep(0.2)

    threads = [threading.Thread(target=transfer, args=(n,)) for n in ("m1", "m2", "m3", "m1")]
    threads.append(threading.Thread(target=audit))
    threads.append(threading.Thread(target=past_audit))
    threads.append(threading.Thread(target=open_watches_from_now))
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    now_watcher = threading.Thread(target=watch_from_now, daemon=True)
    now_watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise AssertionError(errors[0])
    last = max(m.mod_revision for _, m in retrying(lambda: list(x.cl.get_prefix("bank/")),
                                                   "accounts"))
    wait_until(lambda: seen and seen[-1][0] >= last, 20, 0.1, "the watch reached the last transfer")
    cancel_watch()
    def caught_up():
        return now_watches and all(w["created"] is not None and (
            last <= w["created"] or (w["events"] and w["events"][-1][0] >= last))
            for w in now_watches.values())
    wait_until(caught_up, 20, 0.1, "the watches from now reached the last transfer")
    requests.put(None)
    now_call["call"].cancel()

    def replay(events, balances, what):
        revs = [r for r, _, _ in events]
        eq(revs, sorted(revs), f"{what}: events in revision order")
        for i, (rev, key, value) in enumerate(events):
            balances[key] = value
            if (i + 1 == len(events) or events[i + 1][0] != rev) and \
                    sum(balances.values()) != total:
                raise AssertionError(f"{what}: the events through revision {rev} make a total "
                                     f"of {sum(balances.values())}, want {total}; around it: "
                                     f"{events[max(0, i - 4):i + 5]}")

    replay(seen, {a: 100 for a in accounts}, "the watch from before the transfers")
    for watch_id, w in sorted(now_watches.items()):
        created = w["created"]
        at_created = retrying(
            lambda: range_raw(x.cl, "bank/", prefix_end("bank/"), revision=created),
            "the accounts at a watch's created revision")
        replay(w["events"], {kv.key.decode(): int(kv.value) for kv in at_created.kvs},
               f"watch {watch_id} from now (created at revision {created})")
    if transfers[0] < 10 or audits[0] < 5:
        raise AssertionError(f"only {transfers[0]} transfers and {audits[0]} audits completed")
    log(f"{transfers[0]} transfers committed, {audits[0]} audits, {past_audits[0]} at past "
        "revisions")
    final = retrying(lambda: sum(int(v) for v, _ in x.cl.get_prefix("bank/")), "final audit")
    eq(final, total, "final total")


@test
def a_cluster_snapshot_keeps_the_bank_total(x: Ctx):
    """`synod ctl snapshot save --cluster` while transfers run: each cut, restored into a fresh
    cluster with its messages in flight delivered, holds the bank's total. (Restoring without
    them is the planted bug ClusterCutTest and the simulator catch; here it is only counted.)"""
    c = x.c
    accounts = [f"cut/{i:02d}" for i in range(16)]
    for a in accounts:
        x.cl.put(a, "100")
    total = 100 * len(accounts)
    stop = threading.Event()
    errors = []

    def transfer(name, seed):
        cl = x.clients[name]
        rnd = random.Random(seed)
        while not stop.is_set() and not errors:
            try:
                transfer_once(cl, accounts, rnd)
            except Exception as e:  # noqa: BLE001
                if not unavailable(e):
                    errors.append(f"transfer: {type(e).__name__}: {e}")

    def ctl(*args, eps):
        return subprocess.run([c.binary, "ctl", "--endpoints", eps, "snapshot", *args],
                              capture_output=True, text=True, timeout=120)

    threads = [threading.Thread(target=transfer, args=(n, i)) for i, n in
               enumerate(("m1", "m2", "m3", "m1", "m2"))]
    for t in threads:
        t.start()
    saved = []
    try:
        time.sleep(1)
        for i, name in enumerate(("m1", "m2", "m3", "m1")):
            d = os.path.join(c.data_root, f"cut{i}")
            r = ctl("save", "--cluster", d, eps=c.members[name].endpoint)
            if r.returncode != 0:
                raise AssertionError(f"snapshot save through {name}: {r.stderr.strip()}")
            log(r.stdout.strip())
            saved.append(d)
            time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    if errors:
        raise AssertionError(errors[0])
    fresh = Cluster("synod", c.binary, 1, c.base_port + 60, keep=c.keep, label="restored")
    with fresh:
        cl = etcd3.client(host="127.0.0.1", port=fresh.members["m1"].client_port, timeout=10)
        try:
            ep = fresh.members["m1"].endpoint
            r = ctl("save", "--cluster", os.path.join(c.data_root, "unsharded"), eps=ep)
            if r.returncode == 0 or "needs a sharded cluster" not in r.stderr:
                raise AssertionError(f"save on an unsharded cluster: {r.returncode} {r.stderr!r}")
            in_flight_seen = 0
            for d in saved:
                with open(os.path.join(d, "manifest.json")) as f:
                    in_flight = len(json.load(f)["channel_state"])
                for bug in ([], ["--bug", "ignore-in-flight"]):
                    r = ctl("restore", d, *bug, eps=ep)
                    if r.returncode != 0:
                        raise AssertionError(f"restore {d} {bug}: {r.stderr.strip()}")
                    got = sum(int(v) for v, _ in cl.get_prefix("cut/"))
                    if not bug:
                        eq(got, total, f"the bank's total in {os.path.basename(d)} "
                                       f"({in_flight} messages in flight)")
                        restored = int(r.stdout.split(": ")[1].split(" keys")[0])
                        eq(sum(1 for _ in cl.get_all()), restored, "every key restored")
                        r = ctl("restore", d, eps=ep)
                        if r.returncode == 0 or "keys; a snapshot is restored into an empty " \
                                "cluster" not in r.stderr:
                            raise AssertionError(f"restore into a cluster with keys: {r.stderr!r}")
                        if not in_flight_seen and d == saved[0]:
                            # No keys but a lease: refused too (the cut's leases keep their IDs).
                            fresh.etcdctl("del", "", "--from-key")
                            for lid in fresh.etcdctl("lease", "list").stdout.split()[3:]:
                                fresh.etcdctl("lease", "revoke", lid)
                            extra = cl.lease(60)
                            r = ctl("restore", d, eps=ep)
                            if r.returncode == 0 or "1 leases; a snapshot is restored" not in \
                                    r.stderr:
                                raise AssertionError(f"restore into a cluster with a lease: "
                                                     f"{r.stderr!r}")
                            extra.revoke()
                    elif got != total:
                        # Dropping a decision in flight to one part of a transfer whose other part
                        # had resolved loses or makes money (both parts in flight: no change).
                        in_flight_seen += 1
                    fresh.etcdctl("del", "", "--from-key")
                    # empty again for the next restore: the cut's leases go too
                    for lid in fresh.etcdctl("lease", "list").stdout.split()[3:]:
                        fresh.etcdctl("lease", "revoke", lid)
            log(f"{len(saved)} cuts restored with the bank's total; without their channel "
                f"state (the planted bug) {in_flight_seen} of them did not hold it")
        finally:
            cl.close()


@test
def etcdctl_snapshot_is_the_whole_cluster_and_restores_in_etcd(x: Ctx):
    """`etcdctl snapshot save` through one member holds every shard's keys (a consistent cut as
    one etcd backend): etcd 3.4 starts on `etcdctl snapshot restore` of it with the same keys."""
    c = x.c
    for i in range(40):
        x.cl.put(f"snap/{i:02d}", f"v{i}")
    x.cl.delete_prefix("snap/1")
    want = sorted(m.key.decode() for _, m in x.cl.get_prefix("snap/"))
    eq(len(want), 30, "keys before the snapshot")
    d = os.path.join(c.data_root, "etcd-snapshot")
    os.makedirs(d, exist_ok=True)
    c.etcdctl("snapshot", "save", f"{d}/s.db", endpoints=[c.members["m2"].endpoint])
    env = dict(os.environ, ETCDCTL_API="3")
    r = subprocess.run([ETCDCTL, "snapshot", "restore", f"{d}/s.db", "--data-dir", f"{d}/etcd"],
                       env=env, capture_output=True, text=True, timeout=60)
    eq(r.returncode, 0, f"etcdctl snapshot restore: {r.stderr[-300:]}")
    port = c.base_port + 80
    etcd = subprocess.Popen(
        ["/usr/bin/etcd", "--data-dir", f"{d}/etcd",
         "--listen-client-urls", f"http://127.0.0.1:{port}",
         "--advertise-client-urls", f"http://127.0.0.1:{port}",
         "--listen-peer-urls", f"http://127.0.0.1:{port + 1}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{port + 1}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def keys():
            r = subprocess.run([ETCDCTL, f"--endpoints=127.0.0.1:{port}", "get", "snap/",
                                "--prefix", "--keys-only"], env=env, capture_output=True,
                               text=True, timeout=10)
            return sorted(k for k in r.stdout.split() if k) if r.returncode == 0 else None
        wait_until(lambda: keys() is not None, 30, 0.3, "etcd on the restored snapshot")
        eq(keys(), want, "etcd restored from the snapshot holds every shard's keys")
    finally:
        etcd.terminate()
        etcd.wait(10)


@test
def leases_span_shards(x: Ctx):
    cl = x.cl
    lease = cl.lease(60)
    keys = [f"ls/{i}" for i in range(8)]
    for k in keys:
        cl.put(k, "v", lease=lease)
    info = cl.get_lease_info(lease.id)
    eq(sorted(k.decode() for k in info.keys), keys, "every shard's keys on the lease")
    lease.revoke()
    eq([k for k in keys if cl.get(k)[0] is not None], [], "revoke deleted them all")
    short = cl.lease(2)
    cl.put("ls/short-a", "v", lease=short)
    cl.put("ls/short-b", "v", lease=short)
    wait_until(lambda: cl.get_lease_info(short.id).TTL == -1, 20, what="the short lease expired")
    eq([cl.get(k)[0] for k in ("ls/short-a", "ls/short-b")], [None, None], "its keys went")


def check_prefix_watch(cl, prefix: str, what: str) -> None:
    """24 writes to 6 keys (on several shards), then a watch of the prefix from before them:
    every event, in write order, at increasing revisions."""
    start = cl.put(f"{prefix}start", "0").header.revision + 1
    for i in range(24):
        cl.put(f"{prefix}{i % 6}", str(i))
    events, cancel = cl.watch_prefix(prefix, start_revision=start)
    got = []
    deadline = time.monotonic() + 20
    for e in events:
        got.append((e.key.decode(), e.mod_revision))
        if len(got) == 24 or time.monotonic() > deadline:
            break
    cancel()
    eq([k for k, _ in got], [f"{prefix}{i % 6}" for i in range(24)],
       f"{what}: every event, in write order")
    revs = [r for _, r in got]
    eq(revs, sorted(revs), f"{what}: increasing revisions")


@test
def prefix_watch_in_revision_order(x: Ctx):
    check_prefix_watch(x.cl, "w/", "m1")


@test
def the_metadata_leader_killed_under_load(x: Ctx):
    # The member leading the metadata group runs the timestamp oracle: its successor takes over
    # from the durable limit, and writes go on with higher revisions.
    c = x.c
    victim = c.leader()
    survivor = next(n for n in x.clients if n != victim)
    before = x.clients[survivor].put("kill/before", "v").header.revision
    stop = time.monotonic() + 4
    written = []

    def load():
        cl = x.clients[survivor]
        i = 0
        while time.monotonic() < stop:
            try:
                cl.put(f"load/{i}", str(i))
                written.append(i)
            except (grpc.RpcError, etcd3.exceptions.Etcd3Exception):
                pass  # unknown outcome: not counted as acknowledged
            i += 1

    t = threading.Thread(target=load)
    t.start()
    time.sleep(1)
    c.kill(victim)
    t.join()
    missing = [i for i in written if x.clients[survivor].get(f"load/{i}")[0] is None]
    eq(missing, [], "acknowledged writes readable from a survivor")
    after = retrying(lambda: x.clients[survivor].put("kill/after", "v"), "a put after").header.revision
    if after <= before:
        raise AssertionError(f"revision {after} after the failover, {before} before it")
    c.restart(victim)
    c.wait_healthy(timeout=30)
    x.clients[victim].close()
    x.clients[victim] = etcd3.client(host="127.0.0.1", port=c.members[victim].client_port,
                                     timeout=10)
    last = written[-1]
    wait_until(lambda: x.clients[victim].get(f"load/{last}", serializable=True)[0] is not None,
               30, what="the restarted member caught up")
    h = c.etcdctl("endpoint", "hashkv", "-w", "json")
    if h.returncode != 0:
        raise AssertionError(f"hashkv: {h.stderr}")


@test
def a_data_dir_keeps_its_layout(x: Ctx):
    c = x.c
    m = c.members["m2"]
    c.kill("m2")
    argv = c._argv(m, "new")
    argv = [a for a in argv if not a.startswith("--shards")] + ["--shards=3"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=c.data_root)
    c.restart("m2")
    c.wait_healthy(timeout=30)
    if r.returncode == 0 or "shard layout cannot change" not in (r.stdout + r.stderr):
        raise AssertionError(f"started with another --shards: exit {r.returncode}: "
                             f"{(r.stdout + r.stderr)[-300:]}")


@test
def restarted_founders_still_lead(x: Ctx):
    # Every restart here passes --initial-cluster-state existing. A founding member still knows
    # its groups' founding configuration then (the groups' logs hold no membership change): with
    # the other two members restarted and group 1's leader killed, the two elect a leader in
    # every group it led and take writes there.
    c = x.c
    c.refresh_ids()

    def leaders(member: str) -> dict:
        out = subprocess.run([c.binary, "ctl", "--endpoints", c.members[member].endpoint, "ring"],
                             capture_output=True, text=True, timeout=15).stdout
        found = {}
        for line in out.splitlines()[2:]:
            f = line.split()
            if len(f) >= 3 and f[0].isdigit():
                found[int(f[0])] = None if f[2] == "none" else c.name_of_id(int(f[2], 16))
        return found

    victim = wait_until(lambda: leaders("m1").get(1), 15, what="group 1's leader")
    others = [n for n in x.clients if n != victim]
    for n in others:
        c.kill(n)
        c.restart(n)
    c.wait_healthy(timeout=30)
    led = sorted(g for g, name in leaders(others[0]).items() if name == victim)
    if not led:
        raise AssertionError(f"{victim} leads no group after the others restarted: no test")
    c.kill(victim)
    try:
        wait_until(lambda: all(leaders(others[0]).get(g) in others for g in led), 20,
                   what=f"leaders in groups {led} after {victim} was killed")
        cl = etcd3.client(host="127.0.0.1", port=c.members[others[0]].client_port, timeout=10)
        try:
            for i in range(64):
                retrying(lambda: cl.put(f"restarted/{i}", "v"), f"put restarted/{i}")
        finally:
            cl.close()
    finally:
        c.restart(victim)
        c.wait_healthy(timeout=30)
        for n in x.clients:
            x.clients[n].close()
            x.clients[n] = etcd3.client(host="127.0.0.1", port=c.members[n].client_port,
                                        timeout=10)
        x.cl = x.clients["m1"]


def five_members_three_replicas(binary: str, base_port: int, keep: bool) -> None:
    """Five members, three replicas per shard: each member replicates only some shards and
    forwards the rest. Cross-shard transactions commit by three-phase commit here: the bank
    keeps its total, and the members' metrics count them under 3pc."""
    with Cluster("synod", binary, 5, base_port, keep=keep, label="sharded5",
                 server_args=["--shards=6", "--replication=3", "--commit-protocol=3pc"]) as c:
        x = Ctx(c)
        try:
            clients = list(x.clients.values())
            # A fresh cluster's first writes, one after another over every shard: each at a
            # revision of its own, increasing (every store starts at 1; the oracle above it).
            revs = [clients[i % 5].put(f"f/{i:02d}", str(i)).header.revision for i in range(60)]
            eq(all(a < b for a, b in zip(revs, revs[1:])), True, f"increasing revisions {revs}")
            for j, cl in enumerate(clients):
                for i in range(0, 60, 7):
                    eq(cl.get(f"f/{i:02d}")[0], str(i).encode(), f"member {j + 1} reads f/{i:02d}")
                # Every shard, hosted by this member or not: a linearizable range over all.
                got = [int(v) for v, _ in cl.get_prefix("f/")]
                eq(got, list(range(60)), f"member {j + 1} ranges over every shard")
            # A range delete across shards from a member, then a txn across shards from each.
            eq(clients[3].delete_prefix("f/").deleted, 60, "deleted across shards")
            eq(list(clients[4].get_prefix("f/")), [], "nothing left")
            for j, cl in enumerate(clients):
                ok, _ = cl.transaction(compare=[], success=[
                    cl.transactions.put(f"t/{j}/{k}", str(k)) for k in range(6)], failure=[])
                eq(ok, True, f"member {j + 1}'s cross-shard txn")
            eq(len(list(clients[0].get_prefix("t/"))), 30, "every txn's puts")
            # A lease's keys in every shard, listed through every member (the shards a member
            # does not replicate are read through members that do).
            lease = clients[0].lease(60)
            leased = [f"lk/{i:02d}" for i in range(12)]
            for k in leased:
                clients[0].put(k, "v", lease=lease)
            for j, cl in enumerate(clients):
                eq(sorted(k.decode() for k in cl.get_lease_info(lease.id).keys), leased,
                   f"member {j + 1} lists the lease's keys of every shard")
            lease.revoke()
            # A watch over every shard from every member: the shards it does not replicate
            # are watched through members that do (peer RPC GroupWatch).
            for j, cl in enumerate(clients):
                check_prefix_watch(cl, f"wt{j}/", f"member {j + 1}'s watch")
            # Compaction from every member reaches every shard: after it, a read below the
            # revision is refused on any member, and so is compacting there again.
            first = clients[0].put("c/k", "1").header.revision
            clients[0].put("c/k", "2")
            for j, cl in enumerate(clients):
                rev = cl.put(f"c/{j}", "x").header.revision
                cl.compact(rev)
                for other in clients:
                    refused = ""
                    try:
                        range_raw(other, "c/k", revision=first)
                    except Exception as e:  # noqa: BLE001 (grpc's error, as the stub raises it)
                        refused = str(e)
                    if "required revision has been compacted" not in refused:
                        raise AssertionError(f"a read at {first} after member {j + 1} compacted "
                                             f"at {rev}: {refused or 'answered'}")
                refused = ""
                try:
                    cl.compact(rev)
                except Exception as e:  # noqa: BLE001
                    refused = str(e) + repr(getattr(e, "__cause__", None))
                if "compacted" not in refused:
                    raise AssertionError(f"member {j + 1} compacted at {rev} twice: {refused}")
                first = rev
            bank_total_never_changes(x)
            # Each member replicates only some shards, yet all report the cluster's revision
            # and hash it the same (the shards it lacks asked of members that replicate them).
            rev = c.wait_converged(timeout=30)
            hashes = {name: h["hash"] for name, h in c.hashkv(rev).items()}
            eq(len(hashes), 5, "every member answers hashkv")
            if len(set(hashes.values())) != 1:
                raise AssertionError(f"hashkv at {rev} differs between members: {hashes}")
            log(f"five members agree: revision {rev}, hash {hashes['m1']}")
            counts = {"2pc": 0, "3pc": 0}
            for m in c.members.values():
                text = urllib.request.urlopen(
                    f"http://127.0.0.1:{m.client_port}/metrics", timeout=10).read().decode()
                for line in text.splitlines():
                    if line.startswith("synod_server_cross_shard_txns_total{") and \
                            'outcome="committed"' in line:
                        protocol = "3pc" if 'protocol="3pc"' in line else "2pc"
                        counts[protocol] += int(float(line.rsplit(" ", 1)[1]))
            log(f"cross-shard commits by protocol: {counts}")
            if counts["3pc"] == 0 or counts["2pc"] != 0:
                raise AssertionError(f"want 3pc commits only, got {counts}")
            # With a member down, the others still agree: a shard's revision is asked of its
            # next replica when the first cannot be reached.
            c.kill("m5")
            for i in range(12):
                retrying(lambda i=i: clients[0].put(f"after/{i}", "x"), f"put after/{i}",
                         tries=1000)
            rev = c.wait_converged(timeout=30)
            for attempt in range(10):  # the metadata group may still be electing (--rev asks it)
                try:
                    hashes = {name: h["hash"] for name, h in c.hashkv(rev).items()}
                    break
                except ClusterError:
                    if attempt == 9:
                        raise
                    time.sleep(1)
            if len(hashes) != 4 or len(set(hashes.values())) != 1:
                raise AssertionError(f"with m5 down, hashkv at {rev}: {hashes}")
            # Members stopped together, each with a client's watch open over every shard (the
            # shards it does not replicate watched through the others): all exit promptly.
            running = [m for m in c.members.values() if m.running()]
            for j, m in enumerate(running):
                check_prefix_watch(x.clients[m.name], f"sd{j}/", f"{m.name}'s watch")
                x.clients[m.name].watch_prefix(f"sd{j}/")
            for m in running:
                os.kill(m.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            for m in running:
                try:
                    m.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    raise AssertionError(f"{m.name} still running 10 s after SIGTERM") from None
        finally:
            x.close()


def rebalance_status(binary: str, endpoint: str) -> str:
    r = subprocess.run([binary, "ctl", "--endpoints", endpoint, "rebalance", "status"],
                       capture_output=True, text=True, timeout=15)
    return r.stdout + r.stderr


def wait_balanced(binary: str, endpoint: str, what: str, members: int,
                  timeout: float = 120) -> float:
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 < timeout:
        last = rebalance_status(binary, endpoint)
        if f"ring over {members} members" in last and "balanced: no move under way" in last:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise AssertionError(f"{what}: not balanced after {timeout:.0f}s:\n{last}")


def members_come_and_go(binary: str, base_port: int, keep: bool) -> None:
    """Three members, 8 shards of 3 replicas. A fourth joins (etcdctl member add): the ring
    names it in some shards, and each moves a replica onto it (learner, caught up, promoted,
    the old replica removed) while a client keeps writing; then a founder is removed and its
    replicas move to the others. `synod ctl rebalance status` shows the moves; no
    acknowledged write is lost, and every member reads every key."""
    # A short log (--snapshot-count): a new replica catches up from its leader's state image.
    with Cluster("synod", binary, 3, base_port, keep=keep, label="sharded_moves",
                 server_args=["--shards=8", "--replication=3", "--snapshot-count=20"]) as c:
        x = Ctx(c)
        extra = []
        try:
            value = "v" * 1000
            for i in range(300):
                x.cl.put(f"pre/{i:03d}", value)
            wait_balanced(binary, c.members["m1"].endpoint, "the founders' map", 3)
            acked = []
            stop = threading.Event()
            errors = []

            def writer():
                cl = x.clients["m2"]
                n = 0
                while not stop.is_set():
                    key = f"w/{n:05d}"
                    try:
                        cl.put(key, str(n))
                        acked.append(key)
                        n += 1
                    except Exception as e:  # noqa: BLE001
                        if not unavailable(e):
                            errors.append(f"{type(e).__name__}: {e}")
                            return
                        time.sleep(0.05)

            t = threading.Thread(target=writer)
            t.start()
            try:
                m4 = c.add_member("m4")
                took = wait_balanced(binary, c.members["m2"].endpoint, "after m4 joined", 4)
                moved = dir_bytes(os.path.join(m4.data_dir, "groups"))
                ring = subprocess.run([binary, "ctl", "--endpoints", m4.endpoint, "ring"],
                                      capture_output=True, text=True, timeout=15).stdout
                hosted = sum(1 for line in ring.splitlines()[2:]
                             if line.strip() and "not replicated here" not in line)
                log(f"m4 joined: balanced in {took:.1f}s, hosts {hosted} of 8 groups, "
                    f"{moved / 1e6:.1f} MB in its groups")
                if hosted == 0:
                    raise AssertionError(f"m4 hosts no group:\n{ring}")
                cl4 = etcd3.client(host="127.0.0.1", port=m4.client_port, timeout=10)
                extra.append(cl4)
                check_prefix_watch(cl4, "wm4/", "a watch on the new member")
                got = retrying(lambda: [k.key.decode() for _, k in cl4.get_prefix("pre/")],
                               "m4 reads pre/")
                eq(len(got), 300, "pre/ keys read from m4")
                c.remove_member("m1")
                took = wait_balanced(binary, c.members["m2"].endpoint, "after m1 left", 3)
                log(f"m1 removed: balanced again in {took:.1f}s")
            finally:
                stop.set()
                t.join()
            if errors:
                raise AssertionError(errors[0])
            for name, cl in (("m2", x.clients["m2"]), ("m4", extra[0])):
                keys = retrying(lambda: {k.key.decode() for _, k in cl.get_prefix("w/")},
                                f"{name} reads w/")
                lost = [k for k in acked if k not in keys]
                if lost:
                    raise AssertionError(f"{len(lost)} acknowledged writes lost, e.g. {lost[:3]}")
                eq(len(retrying(lambda: list(cl.get_prefix("pre/")), f"{name} pre/")), 300,
                   f"pre/ keys read from {name}")
            log(f"{len(acked)} writes acknowledged during the moves, none lost")
        finally:
            for cl in extra:
                cl.close()
            x.close()


def past_reads_wait_for_writes_stamped_below(binary: str, base_port: int, keep: bool) -> None:
    """A write takes its revision (a timestamp) before its group commits it. Here group 1's
    stamps are held 600 ms before use (SYNOD_TEST_STAMP_DELAY), so a put there is stamped long
    before it applies, and a put in group 2 meanwhile gets a higher revision r and applies at
    once. A read at revision r of group 1's key must show the slow put (its revision is below
    r): it waits for it rather than answer what a later read at r would contradict."""
    os.environ["SYNOD_TEST_STAMP_DELAY"] = "1:600"
    try:
        c = Cluster("synod", binary, 3, base_port, keep=keep, label="sharded_stamps",
                    server_args=["--shards=2"])
        c.__enter__()
    finally:
        del os.environ["SYNOD_TEST_STAMP_DELAY"]
    try:
        cl = etcd3.client(host="127.0.0.1", port=c.members["m1"].client_port, timeout=10)
        def took(key):
            t = time.monotonic()
            cl.put(key, "v")
            return time.monotonic() - t

        slow = fast = None
        for i in range(64):  # a key of each group: group 1's puts take the delay (twice)
            key = f"probe/{i}"
            t = took(key)
            if t > 0.55 and slow is None and took(key) > 0.55:
                slow = key
            elif t < 0.3 and fast is None:
                fast = key
            if slow and fast:
                break
        if not (slow and fast):
            raise AssertionError(f"no key found in each group (slow {slow}, fast {fast})")
        for round_ in range(3):
            done = {}
            writer = threading.Thread(
                target=lambda: done.update(rev=cl.put(slow, f"new{round_}").header.revision))
            writer.start()
            time.sleep(0.1)  # its stamp is drawn, its entry held back
            r = cl.put(fast, str(round_)).header.revision
            got = range_raw(cl, slow, revision=r)
            writer.join()
            if done.get("rev", r) >= r:
                raise AssertionError(f"round {round_}: the slow put's revision {done.get('rev')} "
                                     f"is not below the fast one's {r}: no race was set up")
            eq([kv.value.decode() for kv in got.kvs], [f"new{round_}"],
               f"round {round_}: the slow key read at revision {r}")
    finally:
        c.__exit__(None, None, None)


def main() -> int:
    p = argparse.ArgumentParser(description="a sharded synod cluster under python3-etcd3")
    add_common_args(p)
    p.add_argument("-k", dest="only", default=None,
                   help="run only tests whose name contains one of these (comma-separated)")
    a = p.parse_args()
    if a.kind != "synod":
        print("sharded: Synod only (etcd has no shards): skipped")
        return 0
    # Where every thread stands if a run outlasts its time (ctest stops it at 240 s).
    faulthandler.dump_traceback_later(220, repeat=False)
    def selected(name: str) -> bool:
        return not a.only or any(part in name for part in a.only.split(","))

    passed, failed = [], []
    t0 = time.monotonic()
    try:
        with Cluster("synod", a.binary, 3, a.base_port, keep=a.keep, label="sharded",
                     server_args=[f"--shards={SHARDS}"]) as c:
            log(f"sharded cluster healthy in {time.monotonic() - t0:.1f}s")
            x = Ctx(c)
            try:
                for f in TESTS:
                    if not selected(f.__name__):
                        continue
                    t1 = time.monotonic()
                    try:
                        f(x)
                        passed.append(f.__name__)
                        print(f"ok   {f.__name__} ({time.monotonic() - t1:.2f}s)", flush=True)
                    except Exception as e:  # noqa: BLE001
                        failed.append(f.__name__)
                        print(f"FAIL {f.__name__}: {type(e).__name__}: {e}", flush=True)
                        traceback.print_exc(limit=3, file=sys.stdout)
            finally:
                x.close()
        for offset, own in ((20, five_members_three_replicas), (40, members_come_and_go),
                            (60, past_reads_wait_for_writes_stamped_below)):
            name = own.__name__
            if not selected(name):
                continue
            t1 = time.monotonic()
            try:
                own(a.binary, a.base_port + offset, a.keep)
                passed.append(name)
                print(f"ok   {name} ({time.monotonic() - t1:.2f}s)")
            except Exception as e:  # noqa: BLE001
                failed.append(name)
                print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
                traceback.print_exc(limit=3, file=sys.stdout)
    except ClusterError as e:
        print(f"FAIL: {e}")
        failed.append("cluster")
    print(f"took {time.monotonic() - t0:.1f}s")
    print(f"sharded: {len(passed)} passed, {len(failed)} failed")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
