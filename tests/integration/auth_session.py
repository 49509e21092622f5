"""Authentication and authorization through etcdctl 3.4 and python3-etcd3: a scripted session
(users, roles, permissions, auth enable/disable, requests with and without the right to make
them) run on a fresh cluster and printed as a normalized transcript; with --compare-with, run
again on a second cluster (one after the other) and the two transcripts must be identical.

    /usr/bin/python3 tests/integration/auth_session.py --kind synod --binary build/synod \
        --compare-with etcd
    /usr/bin/python3 tests/integration/auth_session.py --kind synod --binary build/synod \
        --shards 4 --compare-with synod

With --shards, the first cluster is a sharded Synod cluster, compared with an unsharded one with
revision numbers aside, as etcdctl_session.py --shards does.

Besides the transcript, the script checks that no refused write changed anything: the keys a
user may not write are read back as root and must be missing.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import time
from typing import List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import ETCDCTL, HOST, Cluster, ClusterError, add_common_args, log  # noqa: E402
from etcdctl_session import Session, revisions_aside  # noqa: E402

ROOT = "--user=root:rootpw"
ALICE = "--user=alice:alicepw"
TXN = """value("config") = "on"

put app/t yes

put app/t no

"""


class AuthSession(Session):
    def _script(self) -> List[str]:
        self.n.learn()
        self.note("users and roles, authentication off")
        self.run("user", "add", "root:rootpw", "--interactive=false")
        self.run("user", "add", "alice:alicepw", "--interactive=false")
        self.run("user", "add", "alice:other", "--interactive=false")
        self.run("user", "list")
        self.run("role", "add", "app")
        self.run("role", "add", "app")
        self.run("role", "grant-permission", "app", "readwrite", "app/", "--prefix=true")
        self.run("role", "grant-permission", "app", "read", "config")
        self.run("role", "grant-permission", "app", "write", "logs/", "logs0")
        self.run("role", "grant-permission", "nosuchrole", "read", "x")
        self.run("role", "get", "app")
        self.run("role", "list")
        self.run("user", "grant-role", "alice", "app")
        self.run("user", "grant-role", "alice", "nosuchrole")
        self.run("user", "grant-role", "nobody", "app")
        self.run("user", "get", "alice")
        self.run("user", "get", "alice", "--detail")
        self.run("user", "get", "nobody")
        self.run("put", "config", "on")
        self.run("put", "secret", "s1")
        self.run("auth", "enable")
        self.run("role", "list", ROOT)
        self.run("user", "get", "root", ROOT)

        self.note("requests without a user or with a wrong password")
        self.run("get", "config")
        self.run("put", "foo", "bar")
        self.run("get", "config", "--user=root:wrong")
        self.run("get", "config", "--user=nobody:x")

        self.note("alice: what her role allows, and what it does not")
        self.run("put", "app/a", "1", ALICE)
        self.run("get", "app/", "--prefix", ALICE)
        self.run("get", "config", ALICE)
        self.run("get", "secret", ALICE)
        self.run("get", "", "--prefix", ALICE)
        self.run("get", "app/", "--from-key", ALICE)
        self.run("put", "config", "off", ALICE)
        self.run("put", "secret", "mine", ALICE)
        self.run("put", "logs/1", "line", ALICE)
        self.run("get", "logs/1", ALICE)
        self.run("del", "app/a", ALICE)
        self.run("del", "", "--prefix", ALICE)
        self.run("txn", ALICE, stdin=TXN)
        self.run("get", "app/t", ALICE)
        self.run("put", "app/b", "2", "--prev-kv", ALICE)
        self.run("user", "get", "alice", ALICE)
        self.run("role", "get", "app", ALICE)
        self.run("role", "get", "root", ALICE)
        self.run("user", "list", ALICE)
        self.run("role", "list", ALICE)
        self.run("user", "add", "mallory:x", "--interactive=false", ALICE)
        self.run("role", "grant-permission", "app", "readwrite", "", "--from-key", ALICE)
        self.run("auth", "disable", ALICE)
        self.run("lease", "grant", "60", ALICE)
        self.run("member", "list", ALICE, post=sorted)
        self.run("compaction", "2")
        self.run("alarm", "list", ALICE)
        self.run("defrag", ALICE)
        self.run("endpoint", "hashkv", ALICE)
        self.run("lock", "app/mutex1", "echo", "locked", ALICE)
        self.run("lock", "other-lock", "echo", "locked", ALICE)
        self.watch("secret", ALICE, lines=2)
        self.watch("config", "--rev=1", ALICE, lines=2)
        self.watch("app/", "--prefix", "--rev=1", ALICE, lines=4)

        self.note("root changes alice's rights")
        self.run("role", "revoke-permission", "app", "config", ROOT)
        self.run("role", "revoke-permission", "app", "config", ROOT)
        self.run("get", "config", ALICE)
        self.run("user", "revoke-role", "alice", "app", ROOT)
        self.run("user", "revoke-role", "alice", "app", ROOT)
        self.run("get", "app/", "--prefix", ALICE)
        self.run("user", "grant-role", "alice", "app", ROOT)
        self.run("get", "app/", "--prefix", "--keys-only", ALICE)

        self.note("root cannot be removed while authentication is on")
        self.run("user", "delete", "root", ROOT)
        self.run("role", "delete", "root", ROOT)
        self.run("user", "revoke-role", "root", "root", ROOT)

        self.note("passwords")
        self.run("user", "passwd", "alice", "--interactive=false", ROOT, stdin="newpw\n")
        self.run("get", "app/t", ALICE)
        self.run("get", "app/t", "--user=alice:newpw")

        self.note("what refused writes left behind (nothing)")
        self.run("get", "", "--prefix", ROOT)

        self.note("roles and users removed")
        self.run("role", "delete", "app", ROOT)
        self.run("user", "get", "alice", ROOT)
        self.run("get", "app/t", "--user=alice:newpw")
        self.run("user", "delete", "alice", ROOT)
        self.run("get", "app/t", "--user=alice:newpw")
        self.run("user", "list", ROOT)

        self.note("python3-etcd3")
        self.python_client()

        self.note("authentication off again")
        self.run("auth", "disable", ROOT)
        self.run("get", "secret")
        self.run("auth", "disable")
        self.run("user", "list")
        return self.lines

    def python_client(self) -> None:
        """python3-etcd3 logs in with user and password (Authenticate, then the token on every
        call); its results and errors go into the transcript."""
        import etcd3  # Debian's python3-etcd3, under /usr/bin/python3
        m1 = self.c.members["m1"]
        self.run("user", "add", "bob:bobpw", "--interactive=false", ROOT)
        self.run("role", "add", "bobs", ROOT)
        self.run("role", "grant-permission", "bobs", "readwrite", "bob/", "--prefix=true", ROOT)
        self.run("user", "grant-role", "bob", "bobs", ROOT)

        def attempt(what: str, fn) -> None:
            try:
                result = fn()
                self.lines.append(f"py| {what}: {result!r}")
            except Exception as e:  # noqa: BLE001 - the error is the result
                details = getattr(e, "details", None)
                text = details() if callable(details) else str(e)
                self.lines.append(f"py| {what}: {type(e).__name__}: {text}")

        attempt("login with a wrong password",
                lambda: etcd3.client(host=HOST, port=m1.client_port, user="bob",
                                     password="wrong").get("bob/x"))
        bob = etcd3.client(host=HOST, port=m1.client_port, user="bob", password="bobpw")
        attempt("put bob/x", lambda: bob.put("bob/x", "1") is not None)
        attempt("get bob/x", lambda: bob.get("bob/x")[0])
        attempt("put other", lambda: bob.put("other", "1") is not None)
        attempt("get secret", lambda: bob.get("secret")[0])
        attempt("delete bob/x", lambda: bob.delete("bob/x"))
        anonymous = etcd3.client(host=HOST, port=m1.client_port)
        attempt("get without a user", lambda: anonymous.get("bob/x")[0])
        bob.close()
        anonymous.close()


def run_once(kind: str, binary: Optional[str], base_port: int, keep: bool, raw: bool,
             label: str, shards: int = 0, sharded_compare: bool = False) -> List[str]:
    t0 = time.monotonic()
    with Cluster(kind, binary, 3, base_port, keep=keep, label=label,
                 server_args=[f"--shards={shards}"] if shards else None) as c:
        log(f"[{label}] {kind} cluster healthy in {time.monotonic() - t0:.1f}s"
            f"{' with %d shards' % shards if shards else ''}")
        lines = AuthSession(c, raw=raw, sharded_compare=sharded_compare).script()
    if sharded_compare:
        lines = revisions_aside(lines)
    log(f"[{label}] session done in {time.monotonic() - t0:.1f}s ({len(lines)} lines)")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--compare-with", choices=("etcd", "synod"), default=None)
    p.add_argument("--compare-binary", default=None)
    p.add_argument("--raw", action="store_true", help="print the transcript un-normalized")
    p.add_argument("--out", default=None, help="directory to write the transcripts to")
    p.add_argument("--quiet", action="store_true", help="do not print the transcript")
    p.add_argument("--shards", type=int, default=0,
                   help="the first cluster is a synod cluster of this many shards; the "
                        "transcripts are compared with revision numbers aside")
    a = p.parse_args()
    if not os.access(ETCDCTL, os.X_OK):
        print(f"FAIL: {ETCDCTL} not found", file=sys.stderr)
        return 2
    try:
        if a.shards and (a.kind != "synod" or a.compare_with not in (None, "synod")):
            print("FAIL: --shards takes --kind synod (and --compare-with synod)", file=sys.stderr)
            return 2
        sharded = a.shards > 0
        first = run_once(a.kind, a.binary, a.base_port, a.keep, a.raw, "a", a.shards, sharded)
        if not a.quiet:
            print("\n".join(first))
        if a.out:
            os.makedirs(a.out, exist_ok=True)
            with open(os.path.join(a.out, f"auth-a-{a.kind}.txt"), "w") as f:
                f.write("\n".join(first) + "\n")
        if not a.compare_with:
            return 0
        second = run_once(a.compare_with, a.compare_binary or (a.binary if sharded else None),
                          a.base_port + 20, a.keep, a.raw, "b", 0, sharded)
        if a.out:
            with open(os.path.join(a.out, f"auth-b-{a.compare_with}.txt"), "w") as f:
                f.write("\n".join(second) + "\n")
    except ClusterError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    if first == second:
        print(f"PASS: {a.kind} and {a.compare_with} auth transcripts identical "
              f"({len(first)} lines, {sum(1 for x in first if x.startswith('$'))} commands)")
        return 0
    diff = difflib.unified_diff(second, first, f"{a.compare_with} (reference)", a.kind,
                                lineterm="", n=3)
    print("\n".join(diff))
    print(f"FAIL: auth transcripts differ ({a.kind} vs {a.compare_with})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
