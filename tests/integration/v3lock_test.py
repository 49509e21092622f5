"""etcd's v3lock service (v3lockpb.Lock) against a real cluster, through python3-grpcio with
the messages encoded by hand (python3-etcd3 has no v3lock client):

    /usr/bin/python3 tests/integration/v3lock_test.py --kind synod --binary build/synod
    /usr/bin/python3 tests/integration/v3lock_test.py --kind etcd

Checks: Lock answers the key name/<lease hex> and a header; a second contender waits until the
first Unlocks, then gets the lock; waiters are served in the order they asked; a holder whose
lease is revoked loses the lock to the next waiter; a lease that does not exist is refused with
etcd's error; with authentication on, Lock locks only where its caller may write (the token in
the call's metadata) and refuses a call without one. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, ClusterError, add_common_args, log  # noqa: E402

import etcd3  # noqa: E402
import grpc  # noqa: E402


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(num: int, data: bytes) -> bytes:
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_int(num: int, v: int) -> bytes:
    return varint(num << 3) + varint(v)


def read_varint(data: bytes, i: int):
    """The varint at data[i:]: (value, index after it)."""
    v, shift = 0, 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def parse(data: bytes) -> dict:
    """Top-level fields of a protobuf message: number -> value (bytes or int)."""
    out, i = {}, 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            out[num], i = read_varint(data, i)
        elif wt == 2:
            n, i = read_varint(data, i)
            out[num] = data[i:i + n]
            i += n
        else:
            raise ValueError(f"wire type {wt}")
    return out


class LockClient:
    def __init__(self, port: int):
        self.ch = grpc.insecure_channel(f"127.0.0.1:{port}")
        ident = lambda b: b  # noqa: E731
        self._lock = self.ch.unary_unary("/v3lockpb.Lock/Lock", request_serializer=ident,
                                         response_deserializer=ident)
        self._unlock = self.ch.unary_unary("/v3lockpb.Lock/Unlock", request_serializer=ident,
                                           response_deserializer=ident)

    def lock(self, name: str, lease: int, timeout: float = 20.0, token: str = "") -> bytes:
        metadata = [("token", token)] if token else None
        resp = parse(self._lock(field_bytes(1, name.encode()) + field_int(2, lease),
                                timeout=timeout, metadata=metadata))
        if 1 not in resp:
            raise AssertionError("LockResponse without a header")
        return resp.get(2, b"")

    def unlock(self, key: bytes) -> None:
        resp = parse(self._unlock(field_bytes(1, key), timeout=10))
        if 1 not in resp:
            raise AssertionError("UnlockResponse without a header")


def eq(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def run_checks(c: Cluster) -> None:
    ports = [m.client_port for m in c.members.values()]
    kv = etcd3.client(host="127.0.0.1", port=ports[0], timeout=10)
    leases = [kv.lease(60) for _ in range(4)]
    clients = [LockClient(ports[i % len(ports)]) for i in range(4)]
    key0 = clients[0].lock("vl", leases[0].id)
    eq(key0, f"vl/{leases[0].id:x}".encode(), "the lock key")
    got = {}
    order = []

    def contend(i: int):
        got[i] = clients[i].lock("vl", leases[i].id)
        order.append(i)

    threads = []
    for i in (1, 2):           # 1 asks before 2
        t = threading.Thread(target=contend, args=(i,), daemon=True)
        t.start()
        threads.append(t)
        time.sleep(0.4)
    eq(order, [], "contenders wait while the lock is held")
    clients[0].unlock(key0)
    deadline = time.monotonic() + 10
    while not order and time.monotonic() < deadline:
        time.sleep(0.05)
    eq(order, [1], "the first waiter gets the lock after Unlock")
    leases[1].revoke()         # the holder's lease ends: the next waiter gets the lock
    deadline = time.monotonic() + 10
    while len(order) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    eq(order, [1, 2], "then the second, after the holder's lease is revoked")
    eq(got[2], f"vl/{leases[2].id:x}".encode(), "second holder's key")
    clients[2].unlock(got[2])
    try:
        clients[3].lock("vl", 0x123456, timeout=10)
        raise AssertionError("Lock with an unknown lease succeeded")
    except grpc.RpcError as e:
        # etcd's lock server calls its own client: the KV error arrives as UNKNOWN
        eq((e.code(), e.details()), (grpc.StatusCode.UNKNOWN,
                                     "etcdserver: requested lease not found"), "unknown lease")
    for t in threads:
        t.join(5)
    check_auth(c, ports[0])


def check_auth(c: Cluster, port: int) -> None:
    """With authentication on, Lock runs with its caller's rights: a user with readwrite on
    locks/ locks there, and is refused elsewhere; a call without a token is refused."""
    for argv in (("user", "add", "root:rootpw", "--interactive=false"),
                 ("user", "grant-role", "root", "root"),
                 ("user", "add", "locker:lockpw", "--interactive=false"),
                 ("role", "add", "lockers"),
                 ("role", "grant-permission", "lockers", "readwrite", "locks/", "--prefix=true"),
                 ("user", "grant-role", "locker", "lockers"),
                 ("auth", "enable")):
        c.etcdctl(*argv, endpoints=[f"127.0.0.1:{port}"])
    lease_out = c.etcdctl("lease", "grant", "60", "--user=locker:lockpw",
                          endpoints=[f"127.0.0.1:{port}"]).stdout
    lease = int(lease_out.split()[1], 16)
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    authenticate = ch.unary_unary("/etcdserverpb.Auth/Authenticate",
                                  request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)
    token = parse(authenticate(field_bytes(1, b"locker") + field_bytes(2, b"lockpw"),
                               timeout=10))[2].decode()
    client = LockClient(port)
    key = client.lock("locks/a", lease, timeout=10, token=token)
    eq(key, f"locks/a/{lease:x}".encode(), "the lock key under auth")
    # As etcd's lock server, which runs the recipe through its own client: the KV error arrives
    # as UNKNOWN with etcd's text.
    for name, tok, want in (("other", token, "etcdserver: permission denied"),
                            ("locks/b", "", "etcdserver: user name is empty")):
        try:
            client.lock(name, lease, timeout=10, token=tok)
            raise AssertionError(f"Lock {name} {'with' if tok else 'without'} a token succeeded")
        except grpc.RpcError as e:
            if (e.code(), e.details()) != (grpc.StatusCode.UNKNOWN, want):
                raise AssertionError(f"Lock {name}: {e.code()} {e.details()!r}, want {want!r}")
            log(f"Lock {name}: refused with {e.code()} {e.details()!r}")
    c.etcdctl("auth", "disable", "--user=root:rootpw", endpoints=[f"127.0.0.1:{port}"])


def main_for(name: str, label: str, checks) -> int:
    """Runs checks(cluster) on a fresh 3-member cluster; prints '<name>: 1 passed, 0 failed'."""
    p = argparse.ArgumentParser(description=f"{name} against a real cluster")
    add_common_args(p)
    a = p.parse_args()
    ok = True
    try:
        with Cluster(a.kind, a.binary, 3, a.base_port, keep=a.keep, label=label) as c:
            checks(c)
    except (AssertionError, ClusterError, grpc.RpcError) as e:
        print(f"FAIL: {type(e).__name__}: {e}")
        ok = False
    print(f"{name}: {'1 passed, 0 failed' if ok else '0 passed, 1 failed'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main_for("v3lock_test", "v3lock", run_checks))
