"""JWT auth tokens (`--auth-token jwt,...`), with keys made by the openssl command, etcdctl and
python3-etcd3 as the clients and PyJWT as an outside reader of the tokens.

    /usr/bin/python3 tests/integration/jwt_test.py --kind synod --binary build/synod

  1. an RSA key pair; a 3-member cluster started with
     --auth-token jwt,pub-key=...,priv-key=...,sign-method=RS256,ttl=10m
  2. root and alice (readwrite on app/), auth enabled; etcdctl --user writes where the role lets
     it and is denied elsewhere
  3. python3-etcd3 logs in on m1; PyJWT decodes its token with the public key: RS256, claims
     username, revision and an exp ten minutes ahead
  4. the same token works on m2 (any member with the key verifies it) and on m1 after m1
     restarted (no state behind a signed token)
  5. after a permission change the old token is refused (etcd: revision of auth store is old)
     and a new login works; a token signed by another key is refused (invalid auth token)
Runs against etcd too (--kind etcd), the reference for every answer.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from typing import List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import (APP_AUTH_SETUP, HOST, Cluster, ClusterError, add_common_args,  # noqa: E402
                     log, report, wait_until)


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def rsa_pair(directory: str, name: str) -> tuple:
    key = os.path.join(directory, name + ".key")
    pub = os.path.join(directory, name + ".pub")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
    openssl("pkey", "-in", key, "-pubout", "-out", pub)
    return key, pub


def login(port: int, user: str, password: str):
    """A python3-etcd3 client logged in as user. Its token goes as plain call metadata: gRPC sends
    call credentials only over TLS, and this cluster's client URLs are http://."""
    import etcd3
    client = etcd3.client(host=HOST, port=port, user=user, password=password)
    client.call_credentials = None
    return client


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    a = p.parse_args()
    failures: List[str] = []

    def check(cond: bool, what: str) -> None:
        if not cond:
            failures.append(what)
            log(f"FAILED: {what}")

    import etcd3
    import jwt as pyjwt

    keys = tempfile.mkdtemp(prefix="synod-jwt-")
    try:
        log("1. an RSA key pair and a cluster signing RS256 tokens")
        key, pub = rsa_pair(keys, "jwt")
        flag = f"--auth-token=jwt,pub-key={pub},priv-key={key},sign-method=RS256,ttl=10m"
        with Cluster(a.kind, a.binary, 3, a.base_port, keep=a.keep, label="jwt",
                     server_args=[flag]) as c:
            m1, m2 = c.members["m1"], c.members["m2"]

            log("2. users, a role, auth enable; etcdctl --user")
            for argv in APP_AUTH_SETUP:
                r = c.etcdctl(*argv, check=False)
                check(r.returncode == 0, f"etcdctl {' '.join(argv)}: {r.stderr.strip()}")
            r = c.etcdctl("--user=alice:alicepw", "put", "app/x", "1", check=False)
            check(r.returncode == 0 and r.stdout.strip() == "OK", f"alice puts app/x: {r.stderr}")
            r = c.etcdctl("--user=alice:alicepw", "put", "other", "1", check=False)
            check(r.returncode != 0 and "permission denied" in r.stderr,
                  f"alice is denied 'other': {r.stderr.strip()}")

            log("3. a token PyJWT reads with the public key")
            alice = login(m1.client_port, "alice", "alicepw")
            token = dict(alice.metadata)["token"]
            with open(pub) as f:
                claims = pyjwt.decode(token, f.read(), algorithms=["RS256"])
            header = pyjwt.get_unverified_header(token)
            check(header.get("alg") == "RS256", f"header {header}")
            check(claims.get("username") == "alice" and isinstance(claims.get("revision"), int),
                  f"claims {claims}")
            check(abs(claims.get("exp", 0) - (time.time() + 600)) < 30,
                  f"exp ten minutes ahead: {claims.get('exp')} at {time.time():.0f}")

            log("4. the token on another member, and after a restart")
            on_m2 = etcd3.client(host=HOST, port=m2.client_port)
            on_m2.metadata = alice.metadata
            on_m2.put("app/y", "2")
            value, _ = on_m2.get("app/y")
            check(value == b"2", f"alice's token from m1 works on m2: {value!r}")
            c.stop_member(m1)
            # With auth on, etcdctl's health check needs a user: wait with root's.
            c.restart("m1", wait=False)
            wait_until(lambda: c.etcdctl("--user=root:rootpw", "endpoint", "health",
                                         endpoints=[m1.endpoint], check=False).returncode == 0,
                       timeout=30, what="m1 healthy again")
            again = etcd3.client(host=HOST, port=m1.client_port)
            again.metadata = alice.metadata
            # The first call may meet the channel still connecting: bounded retries.
            value, _ = wait_until(lambda: again.get("app/x"), timeout=10, what="a get on m1")
            check(value == b"1", f"alice's token works on m1 after its restart: {value!r}")

            log("5. an old token after a permission change, and a stranger's token")
            r = c.etcdctl("--user=root:rootpw", "role", "grant-permission", "app", "read", "ro/",
                          "--prefix=true", check=False)
            check(r.returncode == 0, f"grant read on ro/: {r.stderr.strip()}")
            try:
                again.get("app/x")
                check(False, "a token older than the permissions is refused")
            except Exception as e:  # noqa: BLE001
                check("revision of auth store is old" in str(e), f"old token: {e}")
            fresh = login(m1.client_port, "alice", "alicepw")
            value, _ = fresh.get("app/x")
            check(value == b"1", f"a new login reads: {value!r}")
            other_key, _ = rsa_pair(keys, "other")
            with open(other_key) as f:
                forged = pyjwt.encode({"username": "root", "revision": claims["revision"] + 10,
                                       "exp": int(time.time()) + 600}, f.read(), algorithm="RS256")
            stranger = etcd3.client(host=HOST, port=m1.client_port)
            stranger.metadata = (("token", forged),)
            try:
                stranger.put("app/z", "3")
                check(False, "a token of another key is refused")
            except Exception as e:  # noqa: BLE001
                check("invalid auth token" in str(e), f"forged token: {e}")
            r = c.etcdctl("--user=root:rootpw", "get", "app/z", check=False)
            check(r.returncode == 0 and r.stdout.strip() == "", f"no forged write: {r.stdout!r}")
            for client in (alice, on_m2, again, fresh, stranger):
                client.close()
    except ClusterError as e:
        failures.append(str(e))
    finally:
        if not a.keep:
            subprocess.run(["rm", "-rf", keys], check=False)
    return report("jwt", failures)


if __name__ == "__main__":
    sys.exit(main())
