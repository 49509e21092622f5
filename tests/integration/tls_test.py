"""TLS between clients and members and between members, with etcd's flags, certificates made by
the openssl command, and etcdctl and python3-etcd3 as the clients.

    /usr/bin/python3 tests/integration/tls_test.py --kind synod --binary build/synod

  1. a CA, a member certificate (127.0.0.1, both server and client use), client certificates
     for the users root and alice, and a second CA with a client certificate of its own
  2. a 3-member cluster on https:// client and peer URLs with --client-cert-auth and
     --peer-client-cert-auth: it elects a leader and replicates (peers talk TLS), and etcdctl
     with --cacert/--cert/--key writes and reads
  3. refused: a client without a certificate, one whose certificate another CA signed, and a
     plaintext client; none of their writes lands
  4. the client certificate's common name is the user once authentication is on: alice's
     certificate writes where her role lets her and is denied elsewhere; root's manages users
  5. python3-etcd3 over TLS logs in with user and password and works (its call credentials need
     a secure channel)
  6. a member restarted after its certificate was reissued serves the new one
  7. /metrics, /health and /version answered over TLS on the client URL, to curl with a client
     certificate (offering HTTP/2 and HTTP/1.1, and HTTP/1.1 only); refused without one
Runs against etcd too (--kind etcd), the reference for every answer.
"""

from __future__ import annotations

import argparse
import os
import ssl
import subprocess
import sys
import tempfile
from typing import List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import (APP_AUTH_SETUP, ETCDCTL, HOST, Cluster, ClusterError,  # noqa: E402
                     add_common_args, log, report)


def openssl(*args: str, cwd: str) -> None:
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args)}: {r.stderr.strip()}")


class Pki:
    """A CA and certificates signed by it, in one directory."""

    def __init__(self, root: str):
        self.dir = root
        self.ca("ca")
        self.ca("rogue-ca")
        self.issue("member", "ca", "member", san="IP:127.0.0.1,DNS:localhost")
        self.issue("root", "ca", "root")
        self.issue("alice", "ca", "alice")
        self.issue("rogue", "rogue-ca", "root")

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def ca(self, name: str) -> None:
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.crt",
                cwd=self.dir)

    def issue(self, name: str, ca: str, cn: str, san: str = "") -> None:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=self.dir)
        ext = os.path.join(self.dir, f"{name}.ext")
        with open(ext, "w") as f:
            f.write("extendedKeyUsage=serverAuth,clientAuth\n")
            if san:
                f.write(f"subjectAltName={san}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", f"{name}.crt",
                cwd=self.dir)

    def serial(self, name: str) -> str:
        r = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", self.path(f"{name}.crt")],
                           capture_output=True, text=True, check=True)
        return r.stdout.strip()

    def client_flags(self, user: str) -> List[str]:
        return [f"--cacert={self.path('ca.crt')}", f"--cert={self.path(user + '.crt')}",
                f"--key={self.path(user + '.key')}"]


class TlsCluster(Cluster):
    def __init__(self, pki: Pki, *args, **kwargs):
        self.pki = pki
        member = pki.path("member")
        tls = [f"--cert-file={member}.crt", f"--key-file={member}.key",
               f"--trusted-ca-file={pki.path('ca.crt')}", "--client-cert-auth",
               f"--peer-cert-file={member}.crt", f"--peer-key-file={member}.key",
               f"--peer-trusted-ca-file={pki.path('ca.crt')}", "--peer-client-cert-auth"]
        super().__init__(*args, server_args=tls, **kwargs)

    def schemes(self):
        return "https", "https"

    def etcdctl_flags(self) -> List[str]:
        return self.pki.client_flags("root")


def served_serial(port: int) -> str:
    """The serial of the certificate a TLS server on 127.0.0.1:port shows."""
    pem = ssl.get_server_certificate((HOST, port))
    r = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem, capture_output=True,
                       text=True, check=True)
    return r.stdout.strip()


def curl(tls: List[str], *args: str) -> subprocess.CompletedProcess:
    """curl with these TLS flags (etcdctl's spelling, as Pki.client_flags gives them)."""
    flags = [f.replace("--cacert=", "--cacert\0").replace("--cert=", "--cert\0")
             .replace("--key=", "--key\0") for f in tls]
    argv = [part for f in flags for part in f.split("\0")]
    return subprocess.run(["curl", "-sS", "--max-time", "10"] + argv + list(args),
                          capture_output=True, text=True, timeout=30)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    a = p.parse_args()
    failures: List[str] = []

    def check(cond: bool, what: str) -> None:
        if not cond:
            failures.append(what)
            log(f"FAILED: {what}")

    pki_dir = tempfile.mkdtemp(prefix="synod-tls-")
    try:
        pki = Pki(pki_dir)
        with TlsCluster(pki, a.kind, a.binary, 3, a.base_port, keep=a.keep, label="tls") as c:
            m1 = c.members["m1"]
            ep = [m1.endpoint]

            def ctl(*args: str, flags: List[str]) -> subprocess.CompletedProcess:
                """etcdctl on m1 with these TLS flags instead of root's certificate."""
                return subprocess.run(
                    [ETCDCTL, f"--endpoints={m1.endpoint}", "--dial-timeout=2s",
                     "--command-timeout=5s"] + flags + list(args),
                    capture_output=True, text=True, timeout=30,
                    env=dict(os.environ, ETCDCTL_API="3"))

            log("2. TLS clients and peers")
            r = c.etcdctl("put", "k", "v1", endpoints=ep, check=False)
            check(r.returncode == 0 and r.stdout.strip() == "OK", f"put over TLS: {r.stderr.strip()}")
            r = c.etcdctl("get", "k", "--print-value-only", endpoints=[c.members["m3"].endpoint],
                          check=False)
            check(r.stdout.strip() == "v1", f"read on m3 after replication: {r.stdout!r}")
            r = c.etcdctl("endpoint", "health", endpoints=c.endpoints(), check=False)
            check(r.returncode == 0, f"endpoint health over TLS: {r.stderr.strip()}")

            log("3. clients without a valid certificate")
            ca_only = [f"--cacert={pki.path('ca.crt')}"]
            for what, flags in (("no client certificate", ca_only),
                                ("a certificate of another CA", pki.client_flags("rogue")),
                                ("plaintext", [])):
                r = ctl("put", "refused", what, flags=flags)
                check(r.returncode != 0, f"a client with {what} is refused (exit {r.returncode})")
            r = c.etcdctl("get", "refused", endpoints=ep, check=False)
            check(r.returncode == 0 and r.stdout.strip() == "",
                  f"no refused write landed: {r.stdout!r}")

            log("4. the certificate's common name is the user")
            for argv in APP_AUTH_SETUP:
                r = c.etcdctl(*argv, endpoints=ep, check=False)
                check(r.returncode == 0, f"etcdctl {' '.join(argv)}: {r.stderr.strip()}")
            alice = pki.client_flags("alice")
            r = ctl("put", "app/x", "1", flags=alice)
            check(r.returncode == 0, f"alice's certificate writes app/x: {r.stderr.strip()}")
            r = ctl("put", "other", "1", flags=alice)
            check(r.returncode != 0 and "permission denied" in r.stderr,
                  f"alice's certificate is denied 'other': {r.stderr.strip()}")
            r = ctl("user", "list", flags=alice)
            check(r.returncode != 0 and "permission denied" in r.stderr,
                  f"alice's certificate cannot list users: {r.stderr.strip()}")
            r = c.etcdctl("user", "list", endpoints=ep, check=False)
            check(r.returncode == 0 and r.stdout.split() == ["alice", "root"],
                  f"root's certificate lists users: {r.stdout!r} {r.stderr.strip()}")
            r = c.etcdctl("get", "other", endpoints=ep, check=False)
            check(r.returncode == 0 and r.stdout.strip() == "", f"'other' unwritten: {r.stdout!r}")

            log("5. python3-etcd3 over TLS with user and password")
            import etcd3
            py = etcd3.client(host=HOST, port=m1.client_port, ca_cert=pki.path("ca.crt"),
                              cert_key=pki.path("alice.key"), cert_cert=pki.path("alice.crt"),
                              user="alice", password="alicepw")
            try:
                py.put("app/py", "2")
                value, _ = py.get("app/py")
                check(value == b"2", f"python3-etcd3 reads its write: {value!r}")
                try:
                    py.put("other", "3")
                    check(False, "python3-etcd3 put to 'other' is denied")
                except Exception as e:  # noqa: BLE001
                    check("permission denied" in str(e), f"python3-etcd3 denial: {e}")
            finally:
                py.close()
            r = c.etcdctl("auth", "disable", endpoints=ep, check=False)
            check(r.returncode == 0, f"auth disable: {r.stderr.strip()}")

            log("6. a reissued certificate is served after a restart")
            before = served_serial(m1.client_port)
            pki.issue("member", "ca", "member", san="IP:127.0.0.1,DNS:localhost")
            c.stop_member(m1)
            c.restart("m1")
            after = served_serial(m1.client_port)
            check(after == pki.serial("member") and after != before,
                  f"m1 serves the new certificate ({before} -> {after}, file {pki.serial('member')})")
            r = c.etcdctl("put", "k", "v2", endpoints=ep, check=False)
            check(r.returncode == 0, f"put after the restart: {r.stderr.strip()}")

            log("7. the HTTP endpoints on the https:// client URL")
            url = f"https://{HOST}:{m1.client_port}"
            for version in ("--http2", "--http1.1"):
                r = curl(pki.client_flags("root"), version, f"{url}/metrics")
                check(r.returncode == 0 and "\netcd_server_has_leader 1\n" in r.stdout,
                      f"curl {version} /metrics over TLS: {r.returncode} {r.stderr.strip()}")
            r = curl(pki.client_flags("root"), f"{url}/health")
            check(r.returncode == 0 and '"health":"true"' in r.stdout.replace(" ", ""),
                  f"curl /health over TLS: {r.stdout!r} {r.stderr.strip()}")
            r = curl(pki.client_flags("root"), f"{url}/version")
            check(r.returncode == 0 and '"etcdserver":"3.4' in r.stdout.replace(" ", ""),
                  f"curl /version over TLS: {r.stdout!r} {r.stderr.strip()}")
            r = curl([f"--cacert={pki.path('ca.crt')}"], f"{url}/metrics")
            check(r.returncode != 0 and "etcd_server" not in r.stdout,
                  f"curl /metrics without a client certificate is refused: {r.returncode}")
            r = curl([], f"http://{HOST}:{m1.client_port}/metrics")
            check("etcd_server" not in r.stdout,
                  f"plain HTTP at the TLS port is refused: {r.stdout[:80]!r}")
    except ClusterError as e:
        failures.append(str(e))
    finally:
        if not a.keep:
            subprocess.run(["rm", "-rf", pki_dir], check=False)
    return report("tls", failures)


if __name__ == "__main__":
    sys.exit(main())
