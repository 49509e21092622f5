"""python3-etcd3 (the Debian package, importable only under /usr/bin/python3) against a real
3-member cluster: asserts behaviour, not a comparison.

    /usr/bin/python3 tests/integration/python_client_test.py --kind etcd
    /usr/bin/python3 tests/integration/python_client_test.py --kind synod --binary build/synod

Closes with the line 'python_client: N passed, N failed'; exit code 0 only when none failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, ClusterError, add_common_args, log, wait_until  # noqa: E402

try:
    import etcd3  # noqa: E402
    import grpc  # noqa: E402
except ImportError as e:  # pragma: no cover
    print(f"FAIL: cannot import etcd3/grpc ({e}); run with /usr/bin/python3", file=sys.stderr)
    sys.exit(2)

TESTS = []


def test(f):
    TESTS.append(f)
    return f


def eq(got, want, what=""):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def rpc_error(fn):
    """Runs fn, expecting a grpc.RpcError; returns it."""
    try:
        fn()
    except grpc.RpcError as e:
        return e
    raise AssertionError("expected a gRPC error, got success")


def range_raw(cl, key, range_end=None, **fields):
    """A RangeRequest through python-etcd3's own stub: its get_prefix/get_range (0.12) drop
    limit, revision and count_only."""
    req = etcd3.etcdrpc.RangeRequest(key=key.encode(), **fields)
    if range_end is not None:
        req.range_end = range_end.encode()
    return cl.kvstub.Range(req, cl.timeout)


def prefix_end(p: str) -> str:
    return p[:-1] + chr(ord(p[-1]) + 1)


class Ctx:
    def __init__(self, c: Cluster, shards: int = 0):
        self.c = c
        self.shards = shards
        self.clients = {}
        for m in c.members.values():
            self.clients[m.name] = etcd3.client(host="127.0.0.1", port=m.client_port, timeout=10)
        self.cl = self.clients["m1"]

    def close(self):
        # python-etcd3's watcher thread may try to re-open its stream on a closed channel;
        # that noise at shutdown is not a finding.
        prev = threading.excepthook

        def hook(args):
            if not (args.thread is not None and args.thread.name.startswith("etcd3_watch")
                    and "Channel closed" in str(args.exc_value)):
                prev(args)
        threading.excepthook = hook
        for cl in self.clients.values():
            cl.close()


@test
def put_get(x: Ctx):
    cl = x.cl
    cl.put("pc/a", "1")
    v, meta = cl.get("pc/a")
    eq(v, b"1", "value")
    eq(meta.key, b"pc/a", "key")
    eq(meta.version, 1, "version")
    eq(meta.create_revision, meta.mod_revision, "create == mod revision on first put")
    cl.put("pc/a", "2")
    v, meta2 = cl.get("pc/a")
    eq(v, b"2", "value after overwrite")
    eq(meta2.version, 2, "version after overwrite")
    eq(meta2.create_revision, meta.create_revision, "create revision kept")
    eq(meta2.mod_revision, meta.mod_revision + 1, "mod revision")
    eq(cl.get("pc/missing"), (None, None), "missing key")
    # binary values and an empty value
    cl.put("pc/bin", b"\x00\xff\x10")
    eq(cl.get("pc/bin")[0], b"\x00\xff\x10", "binary value")
    cl.put("pc/empty", "")
    v, meta = cl.get("pc/empty")
    eq(v, b"", "empty value")
    if meta is None:
        raise AssertionError("empty value must still be a key")


@test
def put_prev_kv(x: Ctx):
    cl = x.cl
    cl.put("pc/prev", "old")
    r = cl.put("pc/prev", "new", prev_kv=True)
    eq(r.prev_kv.value, b"old", "prev_kv value")
    eq(r.prev_kv.key, b"pc/prev", "prev_kv key")


@test
def linearizable_read_from_every_member(x: Ctx):
    x.cl.put("pc/lin", "v-lin")
    for name, cl in x.clients.items():
        eq(cl.get("pc/lin")[0], b"v-lin", f"linearizable read on {name}")


@test
def serializable_read_converges(x: Ctx):
    x.cl.put("pc/ser", "v-ser")
    for name, cl in x.clients.items():
        wait_until(lambda: cl.get("pc/ser", serializable=True)[0] == b"v-ser", 10, 0.1,
                   f"serializable read of pc/ser on {name}")


@test
def get_prefix_and_range(x: Ctx):
    cl = x.cl
    for k, v in (("r/a", "1"), ("r/b", "2"), ("r/c", "3"), ("r/d", "4"), ("s/a", "x")):
        cl.put(k, v)
    got = [(m.key, v) for v, m in cl.get_prefix("r/")]
    eq(got, [(b"r/a", b"1"), (b"r/b", b"2"), (b"r/c", b"3"), (b"r/d", b"4")], "get_prefix")
    got = [m.key for _, m in cl.get_prefix("r/", sort_order="descend", sort_target="key")]
    eq(got, [b"r/d", b"r/c", b"r/b", b"r/a"], "get_prefix descending")
    resp = range_raw(cl, "r/", prefix_end("r/"), limit=2)
    eq([kv.key for kv in resp.kvs], [b"r/a", b"r/b"], "limit 2")
    got = [m.key for _, m in cl.get_range("r/b", "r/d")]
    eq(got, [b"r/b", b"r/c"], "get_range [r/b, r/d)")
    got = [v for v, _ in cl.get_prefix("r/", keys_only=True)]
    eq(got, [b"", b"", b"", b""], "keys_only leaves values empty")
    eq((resp.count, resp.more), (4, True), "count ignores limit; more")
    resp = range_raw(cl, "r/", prefix_end("r/"), limit=4)
    eq((resp.count, resp.more, len(resp.kvs)), (4, False, 4), "limit == count: no more")
    resp = range_raw(cl, "r/", prefix_end("r/"), count_only=True)
    eq((resp.count, len(resp.kvs)), (4, 0), "count_only")
    eq(list(cl.get_prefix("nothing/")), [], "empty prefix")


@test
def get_at_revision(x: Ctx):
    cl = x.cl
    r1 = cl.put("rev/k", "one").header.revision
    r2 = cl.put("rev/k", "two").header.revision
    eq(r2, r1 + 1, "each put is one revision")
    eq([kv.value for kv in range_raw(cl, "rev/k", revision=r1).kvs], [b"one"], "value at r1")
    eq([kv.value for kv in range_raw(cl, "rev/k", revision=r2).kvs], [b"two"], "value at r2")
    eq(range_raw(cl, "rev/k", revision=r1 - 1).count, 0, "absent before its first put")
    e = rpc_error(lambda: range_raw(cl, "rev/k", revision=r2 + 1000))
    eq(e.code(), grpc.StatusCode.OUT_OF_RANGE, "future revision code")
    eq(e.details(), "etcdserver: mvcc: required revision is a future revision", "details")


@test
def delete(x: Ctx):
    cl = x.cl
    cl.put("del/a", "1")
    eq(cl.delete("del/a"), True, "delete existing")
    eq(cl.delete("del/a"), False, "delete missing")
    cl.put("del/b", "bv")
    r = cl.delete("del/b", prev_kv=True, return_response=True)
    eq((r.deleted, r.prev_kvs[0].value), (1, b"bv"), "delete prev_kv")
    for i in range(3):
        cl.put(f"del/p/{i}", str(i))
    r = cl.delete_prefix("del/p/")
    eq(r.deleted, 3, "delete_prefix count")
    eq(list(cl.get_prefix("del/")), [], "nothing left")


@test
def transactions(x: Ctx):
    cl = x.cl
    t = cl.transactions
    cl.put("tx/k", "v1")
    ok, resps = cl.transaction(compare=[t.value("tx/k") == "v1", t.version("tx/k") > 0],
                               success=[t.put("tx/k", "v2"), t.get("tx/k")],
                               failure=[t.put("tx/k", "never")])
    eq(ok, True, "succeeded")
    eq(len(resps), 2, "two responses")
    eq(cl.get("tx/k")[0], b"v2", "success branch applied")
    ok, resps = cl.transaction(compare=[t.value("tx/k") == "v1"],
                               success=[t.put("tx/k", "never")],
                               failure=[t.get("tx/k"), t.put("tx/other", "f")])
    eq(ok, False, "failed compare")
    eq(cl.get("tx/k")[0], b"v2", "success branch not applied")
    eq(cl.get("tx/other")[0], b"f", "failure branch applied")
    # create revision 0 == key absent
    ok, _ = cl.transaction(compare=[t.create("tx/absent") == 0],
                           success=[t.put("tx/absent", "now")], failure=[])
    eq(ok, True, "create == 0 for an absent key")
    ok, _ = cl.transaction(compare=[t.create("tx/absent") == 0],
                           success=[t.put("tx/absent", "twice")], failure=[])
    eq(ok, False, "second create-if-absent fails")
    mod = cl.get("tx/absent")[1].mod_revision
    ok, _ = cl.transaction(compare=[t.mod("tx/absent") == mod], success=[t.delete("tx/absent")],
                           failure=[])
    eq((ok, cl.get("tx/absent")), (True, (None, None)), "mod compare then delete")
    # a txn is one revision, however many puts
    before = cl.put("tx/r", "0").header.revision
    cl.transaction(compare=[], success=[t.put("tx/r1", "a"), t.put("tx/r2", "b")], failure=[])
    eq(cl.get("tx/r2")[1].mod_revision, before + 1, "one revision per txn")
    eq(cl.get("tx/r1")[1].mod_revision, before + 1, "same revision for both puts")
    # a txn may not put the same key twice
    e = rpc_error(lambda: cl.transaction(compare=[], success=[t.put("tx/d", "1"),
                                                               t.put("tx/d", "2")], failure=[]))
    eq(e.code(), grpc.StatusCode.INVALID_ARGUMENT, "duplicate key in txn")
    eq(e.details(), "etcdserver: duplicate key given in txn request", "duplicate key text")


@test
def replace_and_put_if_not_exists(x: Ctx):
    cl = x.cl
    cl.put("rp/k", "a")
    eq(cl.replace("rp/k", "a", "b"), True, "replace matching")
    eq(cl.replace("rp/k", "a", "c"), False, "replace stale")
    eq(cl.get("rp/k")[0], b"b", "value after replace")
    eq(cl.put_if_not_exists("rp/new", "x"), True, "put_if_not_exists new")
    eq(cl.put_if_not_exists("rp/new", "y"), False, "put_if_not_exists existing")
    eq(cl.get("rp/new")[0], b"x", "kept first value")


@test
def status_all_members(x: Ctx):
    leaders = set()
    for name, cl in x.clients.items():
        st = cl.status()
        if not isinstance(st.version, str) or not st.version:
            raise AssertionError(f"{name}: version {st.version!r}")
        if st.db_size <= 0 or st.raft_index <= 0 or st.raft_term <= 0:
            raise AssertionError(f"{name}: db_size/raft_index/raft_term {st.__dict__}")
        if st.leader is None:
            raise AssertionError(f"{name}: status names no leader among the members")
        leaders.add(st.leader.id)
    eq(len(leaders), 1, "all members agree on the leader")


@test
def members(x: Ctx):
    ms = sorted(x.cl.members, key=lambda m: m.name)
    eq([m.name for m in ms], ["m1", "m2", "m3"], "member names")
    for m in ms:
        me = x.c.members[m.name]
        eq(list(m.peer_urls), [me.peer_url], f"{m.name} peer urls")
        eq(list(m.client_urls), [me.client_url], f"{m.name} client urls")
        if not m.id:
            raise AssertionError(f"{m.name} has ID 0")
    eq(len({m.id for m in ms}), 3, "distinct IDs")


@test
def compaction_errors(x: Ctx):
    cl = x.cl
    r1 = cl.put("cmp/k", "1").header.revision
    cl.put("cmp/k", "2")
    r3 = cl.put("cmp/k", "3").header.revision
    cl.compact(r3, physical=True)
    e = rpc_error(lambda: range_raw(cl, "cmp/k", revision=r1))
    eq(e.code(), grpc.StatusCode.OUT_OF_RANGE, "compacted revision code")
    eq(e.details(), "etcdserver: mvcc: required revision has been compacted", "details")
    eq([kv.value for kv in range_raw(cl, "cmp/k", revision=r3).kvs], [b"3"],
       "read at the compact revision itself")
    e = rpc_error(lambda: cl.compact(r1))
    eq(e.code(), grpc.StatusCode.OUT_OF_RANGE, "compacting again")
    eq(e.details(), "etcdserver: mvcc: required revision has been compacted", "details")


@test
def watch_from_compacted_revision(x: Ctx):
    # a watch from a compacted revision is cancelled with the compact revision
    cl = x.cl
    r1 = cl.put("wcmp/k", "1").header.revision
    cl.put("wcmp/k", "2")
    r3 = cl.put("wcmp/k", "3").header.revision
    cl.compact(r3, physical=True)
    events, cancel = cl.watch("wcmp/k", start_revision=r1)
    try:
        got = None
        try:
            for ev in events:
                got = ev
                break
        except etcd3.exceptions.RevisionCompactedError as err:
            eq(err.compacted_revision, r3, "watch: compacted_revision")
            got = "compacted"
        eq(got, "compacted", "watch from a compacted revision")
    finally:
        cancel()


@test
def hash_(x: Ctx):
    c = x.c
    x.cl.put("hash/k", "v")      # HashKV at exactly the compact revision is refused
    rev = c.wait_converged(15)
    hk = c.hashkv(rev)
    eq(len({h["hash"] for h in hk.values()}), 1, f"hashkv equal at revision {rev}: {hk}")
    h1 = x.cl.hash()
    if not isinstance(h1, int):
        raise AssertionError(f"hash() returned {h1!r}")
    eq(x.cl.hash(), h1, "Hash stable while nothing changes")


@test
def watch_sees_put(x: Ctx):
    cl = x.cl
    events, cancel = cl.watch("w/k")
    got = []

    def consume():
        for ev in events:
            got.append(ev)
            break

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    time.sleep(0.3)
    x.clients["m2"].put("w/k", "seen")
    t.join(10)
    cancel()
    eq(len(got), 1, "one event")
    eq((got[0].key, got[0].value), (b"w/k", b"seen"), "event key/value")


def collect(events, n: int, timeout: float = 10.0):
    """The first n events of a watch iterator, read on a thread (bounded by timeout)."""
    got = []

    def consume():
        for ev in events:
            got.append(ev)
            if len(got) >= n:
                break

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    t.join(timeout)
    return got


@test
def watch_prefix_history_with_prev_kv(x: Ctx):
    # a prefix watch from a past revision replays puts and deletes in order, with prev_kv
    cl = x.cl
    r1 = cl.put("wp/a", "1").header.revision
    cl.put("wp/b", "1")
    cl.put("wp/a", "2")
    cl.put("wq/other", "x")           # outside the prefix
    cl.delete("wp/b")
    events, cancel = cl.watch_prefix("wp/", start_revision=r1, prev_kv=True)
    try:
        got = collect(events, 4)
    finally:
        cancel()
    eq([(type(e).__name__, e.key, e.mod_revision) for e in got],
       [("PutEvent", b"wp/a", r1), ("PutEvent", b"wp/b", r1 + 1), ("PutEvent", b"wp/a", r1 + 2),
        ("DeleteEvent", b"wp/b", r1 + 4)], "events in revision order")
    eq(got[2].prev_value, b"1", "prev_kv of an overwrite")
    eq(got[3].prev_value, b"1", "prev_kv of a delete")


@test
def watch_resumes_without_gap_or_duplicate(x: Ctx):
    # a client that reconnects from its last revision + 1 sees each event exactly once
    cl = x.cl

    def put_later(*values):
        time.sleep(0.3)                 # the watch is open well before the writes
        for v in values:
            cl.put("wr/k", v)

    events, cancel = cl.watch("wr/k")
    try:
        threading.Thread(target=put_later, args=("1", "2"), daemon=True).start()
        first = collect(events, 2)
    finally:
        cancel()
    eq(len(first), 2, "events before the break")
    cl.put("wr/k", "3")                # written while no watch is open
    last = first[-1].mod_revision
    events, cancel = x.clients["m3"].watch("wr/k", start_revision=last + 1)
    try:
        threading.Thread(target=put_later, args=("4",), daemon=True).start()
        second = collect(events, 2)
    finally:
        cancel()
    eq([e.value for e in first + second], [b"1", b"2", b"3", b"4"], "no gap, no duplicate")


@test
def lease_grant_keepalive_ttl_revoke(x: Ctx):
    cl = x.cl
    lease = cl.lease(30)
    cl.put("ls/a", "1", lease=lease)
    cl.put("ls/b", "2", lease=lease)
    eq(lease.granted_ttl, 30, "granted TTL")
    if not 0 < lease.remaining_ttl <= 30:
        raise AssertionError(f"remaining TTL {lease.remaining_ttl}")
    eq(sorted(lease.keys), [b"ls/a", b"ls/b"], "attached keys")
    for name, client in x.clients.items():       # followers forward keep-alives to the leader
        r = list(client.refresh_lease(lease.id))
        eq([resp.TTL for resp in r], [30], f"keep-alive through {name}")
        eq(client.get_lease_info(lease.id).grantedTTL, 30, f"time-to-live through {name}")
    events, cancel = cl.watch_prefix("ls/")
    try:
        t = threading.Thread(target=lambda: time.sleep(0.3) or lease.revoke(), daemon=True)
        t.start()
        got = collect(events, 2)
    finally:
        cancel()
    if x.shards:
        # A sharded cluster deletes each shard's keys at a revision of its own
        # (docs/sharding.md), so the events come in the order of those revisions.
        got.sort(key=lambda e: e.key)
    eq([(type(e).__name__, e.key) for e in got],
       [("DeleteEvent", b"ls/a"), ("DeleteEvent", b"ls/b")], "revoke deletes the keys")
    if not x.shards:
        eq(got[0].mod_revision, got[1].mod_revision, "in one revision")
    eq(cl.get("ls/a")[0], None, "key gone")
    eq(cl.get_lease_info(lease.id).TTL, -1, "a revoked lease has TTL -1")
    eq([resp.TTL for resp in cl.refresh_lease(lease.id)], [0], "keep-alive of a revoked lease")
    e = rpc_error(lambda: cl.put("ls/c", "3", lease=lease.id))
    eq(e.code(), grpc.StatusCode.NOT_FOUND, "put with a revoked lease")


@test
def lease_expires_and_its_keys_go(x: Ctx):
    cl = x.cl
    lease = cl.lease(1)                     # raised to the minimum, 2 s with etcd's timings
    eq(lease.granted_ttl, 2, "minimum TTL")
    cl.put("lx/k", "v", lease=lease)
    events, cancel = cl.watch("lx/k")
    t0 = time.monotonic()
    try:
        got = collect(events, 1, timeout=10)
    finally:
        cancel()
    waited = time.monotonic() - t0
    eq([type(e).__name__ for e in got], ["DeleteEvent"], "expiry deletes the key")
    if waited < 1.0:
        raise AssertionError(f"expired after {waited:.1f}s, before its TTL")
    eq(cl.get("lx/k")[0], None, "key gone after expiry")


@test
def lease_outlives_a_leader_failover(x: Ctx):
    # A renewal the old leader saw and the followers did not must not be lost: the new leader
    # gives every lease its full TTL (plus an election timeout) from its election.
    c = x.c
    leader = c.leader()
    survivor = next(n for n in c.members if n != leader)
    lease = x.clients[leader].lease(3)
    t0 = time.monotonic()
    x.clients[leader].put("lf/k", "v", lease=lease)
    time.sleep(1.5)
    eq([r.TTL for r in x.clients[leader].refresh_lease(lease.id)], [3], "renewed on the leader")
    renewed = time.monotonic()
    c.kill(leader)
    try:
        deadline = time.monotonic() + 20
        gone_at = None
        while time.monotonic() < deadline:
            try:
                ttl = x.clients[survivor].get_lease_info(lease.id).TTL
            except Exception:  # noqa: BLE001  no leader yet
                ttl = None
            if ttl == -1:
                gone_at = time.monotonic()
                break
            time.sleep(0.1)
        if gone_at is None:
            raise AssertionError("the lease never expired after the failover")
        if gone_at < renewed + 3:
            raise AssertionError(f"expired {gone_at - renewed:.1f}s after its renewal, before its"
                                 f" 3s TTL (granted {renewed - t0:.1f}s before the renewal)")
        eq(x.clients[survivor].get("lf/k")[0], None, "its key went with it")
    finally:
        c.restart(leader)
        c.wait_healthy(timeout=30)


def main() -> int:
    p = argparse.ArgumentParser(description="python3-etcd3 against a real cluster")
    add_common_args(p)
    p.add_argument("-k", dest="only", default=None, help="run only tests whose name contains this")
    p.add_argument("--shards", type=int, default=0,
                   help="a sharded synod cluster of this many shards")
    a = p.parse_args()
    passed, failed = [], []
    t0 = time.monotonic()
    try:
        with Cluster(a.kind, a.binary, 3, a.base_port, keep=a.keep, label="pyclient",
                     server_args=[f"--shards={a.shards}"] if a.shards else None) as c:
            log(f"{a.kind} cluster healthy in {time.monotonic() - t0:.1f}s")
            x = Ctx(c, a.shards)
            try:
                for f in TESTS:
                    if a.only and a.only not in f.__name__:
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
    except ClusterError as e:
        print(f"FAIL: {e}")
        failed.append("cluster")
    print(f"took {time.monotonic() - t0:.1f}s")
    print(f"python_client: {len(passed)} passed, {len(failed)} failed")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
