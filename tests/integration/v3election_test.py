"""etcd's v3election service (v3electionpb.Election) against a real cluster, through
python3-grpcio with hand-encoded messages (the encoding helpers are v3lock_test's):

    /usr/bin/python3 tests/integration/v3election_test.py --kind synod --binary build/synod
    /usr/bin/python3 tests/integration/v3election_test.py --kind etcd

Checks: Campaign wins an empty election and answers the leader key; Leader reads it; a second
campaign waits; Proclaim changes the value; Observe reports the leader and every change;
Resign hands leadership to the waiting campaign; a resigned leader's Proclaim is refused
("election: not leader"); an election nobody campaigns in has no leader. Bounded waits.
"""

from __future__ import annotations

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster  # noqa: E402
from v3lock_test import eq, field_bytes, field_int, main_for, parse  # noqa: E402

import etcd3  # noqa: E402
import grpc  # noqa: E402


class ElectionClient:
    def __init__(self, port: int):
        self.ch = grpc.insecure_channel(f"127.0.0.1:{port}")
        ident = lambda b: b  # noqa: E731
        m = lambda name: self.ch.unary_unary(f"/v3electionpb.Election/{name}",  # noqa: E731
                                             request_serializer=ident,
                                             response_deserializer=ident)
        self._campaign, self._proclaim = m("Campaign"), m("Proclaim")
        self._leader, self._resign = m("Leader"), m("Resign")
        self._observe = self.ch.unary_stream("/v3electionpb.Election/Observe",
                                             request_serializer=ident,
                                             response_deserializer=ident)

    def campaign(self, name: str, lease: int, value: str) -> bytes:
        resp = parse(self._campaign(field_bytes(1, name.encode()) + field_int(2, lease) +
                                    field_bytes(3, value.encode()), timeout=20))
        return resp[2]                      # the LeaderKey, encoded

    def proclaim(self, leader: bytes, value: str) -> None:
        self._proclaim(field_bytes(1, leader) + field_bytes(2, value.encode()), timeout=10)

    def leader(self, name: str) -> str:
        kv = parse(parse(self._leader(field_bytes(1, name.encode()), timeout=10))[2])
        return kv.get(5, b"").decode()

    def resign(self, leader: bytes) -> None:
        self._resign(field_bytes(1, leader), timeout=10)

    def observe(self, name: str, out: list, n: int) -> None:
        call = self._observe(field_bytes(1, name.encode()), timeout=20)
        try:
            for resp in call:
                out.append(parse(parse(resp)[2]).get(5, b"").decode())
                if len(out) >= n:
                    break
        finally:
            call.cancel()


def wait_for(pred, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run_checks(c: Cluster) -> None:
    ports = [m.client_port for m in c.members.values()]
    kv = etcd3.client(host="127.0.0.1", port=ports[0], timeout=10)
    la, lb = kv.lease(60), kv.lease(60)
    e1, e2, e3 = (ElectionClient(p) for p in ports)
    key_a = e1.campaign("ve", la.id, "alice")
    eq(parse(key_a)[2], f"ve/{la.id:x}".encode(), "leader key")
    eq(e2.leader("ve"), "alice", "Leader")
    seen: list = []
    obs = threading.Thread(target=e3.observe, args=("ve", seen, 3), daemon=True)
    obs.start()
    wait_for(lambda: seen == ["alice"], "Observe to report the leader")
    won = {}
    bob = threading.Thread(target=lambda: won.setdefault("b", e2.campaign("ve", lb.id, "bob")),
                           daemon=True)
    bob.start()
    time.sleep(0.5)
    eq(won, {}, "a second campaign waits")
    e1.proclaim(key_a, "alice-2")
    eq(e3.leader("ve"), "alice-2", "Leader after Proclaim")
    wait_for(lambda: seen == ["alice", "alice-2"], "Observe to report the new value")
    e1.resign(key_a)
    wait_for(lambda: "b" in won, "the waiting campaign to win after Resign")
    eq(e1.leader("ve"), "bob", "Leader after Resign")
    wait_for(lambda: seen == ["alice", "alice-2", "bob"], "Observe to report the new leader")
    try:
        e1.proclaim(key_a, "stale")
        raise AssertionError("a resigned leader's Proclaim succeeded")
    except grpc.RpcError as err:
        eq((err.code(), err.details()), (grpc.StatusCode.UNKNOWN, "election: not leader"),
           "stale Proclaim")
    try:
        e1.leader("nobody-campaigns")
        raise AssertionError("Leader of an empty election succeeded")
    except grpc.RpcError as err:
        eq((err.code(), err.details()), (grpc.StatusCode.UNKNOWN, "election: no leader"),
           "empty election")
    obs.join(5)
    bob.join(5)


if __name__ == "__main__":
    sys.exit(main_for("v3election_test", "v3election", run_checks))
