"""A PBFT cluster with real processes: keys, the BFT client, a member down and back.

    /usr/bin/python3 tests/integration/pbft_test.py --kind synod --binary build/synod

  1. a member without keys refuses to start, saying what to run; one without a peer's public
     key refuses too, naming the peer
  2. a 4-member cluster (keys from `synod keys new`); `synod ctl --bft` put, get, del: the
     answers, and etcdctl sees the BFT client's writes
  3. `synod bench --bft put`: every request answered
  4. SIGKILL one member (f = 1): the BFT client and etcdctl still work; while it is down the
     others write past their log compactions (states kept every 128 entries), so restarted, the
     member installs a snapshot with a state fetched from a peer and checked against f + 1
     members' digests; every member's hashkv agrees
  5. MACs both ways: with wrong public keys for 3 members the client gets no result (those
     members refuse its MACs, and it would refuse theirs); with 1 wrong it still gets one (f + 1
     others agree)
Synod only (etcd has no PBFT). Bounded waits; processes killed on every exit path.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, add_common_args, log, report, wait_until  # noqa: E402


def refuses_without_keys(synod: str, base_port: int, failures: list) -> None:
    work = tempfile.mkdtemp(prefix="synod-pbft-keys-")
    try:
        ic = ",".join(f"k{i}=http://127.0.0.1:{base_port + 2 * i + 1}" for i in range(4))

        def start(name: str, i: int) -> subprocess.CompletedProcess:
            argv = [synod, "server", "--engine=pbft", f"--name={name}",
                    f"--data-dir={work}/{name}",
                    f"--listen-client-urls=http://127.0.0.1:{base_port + 2 * i}",
                    f"--advertise-client-urls=http://127.0.0.1:{base_port + 2 * i}",
                    f"--listen-peer-urls=http://127.0.0.1:{base_port + 2 * i + 1}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{base_port + 2 * i + 1}",
                    f"--initial-cluster={ic}"]
            return subprocess.run(argv, capture_output=True, text=True, timeout=20)

        r = start("k0", 0)
        out = r.stdout + r.stderr
        if r.returncode == 0 or "has no keys" not in out or "synod keys new" not in out:
            failures.append(f"a member without keys: exit {r.returncode}, said {out[-300:]!r}")
        subprocess.run([synod, "keys", "new", f"--data-dir={work}/k1", "--name=k1"], check=True,
                       capture_output=True, timeout=20)
        r = start("k1", 1)
        out = r.stdout + r.stderr
        if r.returncode == 0 or "lacks the public keys of member 'k0'" not in out:
            failures.append(f"a member without k0.pub: exit {r.returncode}, said {out[-300:]!r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description="PBFT with real processes")
    add_common_args(p)
    a = p.parse_args()
    if a.kind != "synod":
        print("pbft_test: Synod only (etcd has no PBFT); nothing to do")
        return 0
    synod = os.path.abspath(a.binary)
    failures: list = []
    refuses_without_keys(synod, a.base_port + 30, failures)
    work = tempfile.mkdtemp(prefix="synod-pbft-client-")
    try:
        with Cluster(a.kind, a.binary, 4, a.base_port, keep=a.keep, label="pbft",
                     server_args=["--engine=pbft", "--pbft-state-interval=128",
                                  "--snapshot-count=200"]) as c:
            keys = os.path.join(c.members["m1"].data_dir, "pbft", "public")

            def ctl(*args, key_dir=keys, eps=None, timeout=30):
                eps = eps or ",".join(c.endpoints())
                return subprocess.run([synod, "ctl", "--endpoints", eps, "--command-timeout", "5",
                                       "--bft", "--bft-keys", key_dir, *args],
                                      capture_output=True, text=True, timeout=timeout)

            def expect(r, out: str, what: str) -> None:
                if r.returncode != 0 or r.stdout != out:
                    failures.append(f"{what}: exit {r.returncode}, out {r.stdout!r}, "
                                    f"err {r.stderr.strip()[-300:]!r} (want {out!r})")

            expect(ctl("put", "bft/a", "one"), "OK\n", "ctl --bft put")
            expect(ctl("put", "bft/b", "two"), "OK\n", "ctl --bft put")
            expect(ctl("get", "bft/a"), "bft/a\none\n", "ctl --bft get")
            expect(ctl("get", "bft/", "--prefix"), "bft/a\none\nbft/b\ntwo\n",
                   "ctl --bft get --prefix")
            expect(ctl("put", "bft/a", "uno", "--prev-kv"), "OK\nbft/a\none\n",
                   "ctl --bft put --prev-kv")
            expect(ctl("del", "bft/b"), "1\n", "ctl --bft del")
            r = c.etcdctl("get", "bft/", "--prefix")
            if r.stdout != "bft/a\nuno\n":
                failures.append(f"etcdctl does not see the BFT writes: {r.stdout!r}")

            r = subprocess.run([synod, "bench", "put", "--bft", "--bft-keys", keys, "--endpoints",
                                ",".join(c.endpoints()), "--clients", "8", "--total", "400",
                                "--key-space-size", "100", "--json", "--no-progress"],
                               capture_output=True, text=True, timeout=120)
            try:
                bench = json.loads(r.stdout)
                if bench.get("errors", 1) != 0 or bench.get("ok") != 400:
                    failures.append(f"bench --bft put: {r.stdout.strip()}")
            except json.JSONDecodeError:
                failures.append(f"bench --bft put: exit {r.returncode}, {r.stderr.strip()[-300:]}")

            log("SIGKILL m4")
            c.kill("m4", signal.SIGKILL)
            expect(ctl("put", "bft/down", "3 of 4"), "OK\n", "ctl --bft put with m4 down")
            expect(ctl("get", "bft/down"), "bft/down\n3 of 4\n", "ctl --bft get with m4 down")
            c.etcdctl("put", "etcd/down", "yes")
            r = subprocess.run([synod, "bench", "put", "--bft", "--bft-keys", keys, "--endpoints",
                                ",".join(c.endpoints()), "--clients", "8", "--total", "900",
                                "--key-space-size", "100", "--json", "--no-progress"],
                               capture_output=True, text=True, timeout=180)
            try:
                bench = json.loads(r.stdout)
                if bench.get("errors", 1) != 0 or bench.get("ok") != 900:
                    failures.append(f"bench --bft put with m4 down: {r.stdout.strip()}")
            except json.JSONDecodeError:
                failures.append(f"bench --bft put with m4 down: exit {r.returncode}, "
                                f"{r.stderr.strip()[-300:]}")
            states = os.path.join(c.members["m1"].data_dir, "member", "states")
            kept = sorted(os.listdir(states)) if os.path.isdir(states) else []
            if not kept or len(kept) > 4 or not all(n.endswith(".state") for n in kept):
                failures.append(f"m1's retained states: {kept}")
            c.restart("m4")

            def hashes_agree():
                r = c.etcdctl("endpoint", "hashkv", "-w", "json", check=False)
                if r.returncode != 0:
                    return False
                entries = json.loads(r.stdout)
                return len(entries) == 4 and len({e["HashKV"]["hash"] for e in entries}) == 1 \
                    and len({e["HashKV"]["header"]["revision"] for e in entries}) == 1
            try:
                wait_until(hashes_agree, 60, 1.0, "every member's hashkv to agree after m4's restart")
            except Exception as e:  # noqa: BLE001
                failures.append(str(e))
            with open(c.members["m4"].log_path, errors="replace") as f:
                m4_log = f.read()
            if "installed the state at applied index" not in m4_log:
                failures.append("m4 caught up without installing a fetched state")
            expect(ctl("get", "bft/down", eps=c.members["m4"].endpoint + "," +
                       c.members["m1"].endpoint + "," + c.members["m2"].endpoint),
                   "bft/down\n3 of 4\n", "ctl --bft get after m4's restart")
            # Wrong public keys: replies from those members fail their MACs. Last: a request only
            # one member can authenticate is one that member waits for alone (docs/pbft.md).
            def forged_dir(wrong: int) -> str:
                d = os.path.join(work, f"wrong{wrong}")
                shutil.copytree(keys, d)
                for name in ("m2", "m3", "m4")[:wrong]:
                    other = os.path.join(work, f"other-{name}-{wrong}")
                    subprocess.run([synod, "keys", "new", f"--data-dir={other}", f"--name={name}"],
                                   check=True, capture_output=True, timeout=20)
                    shutil.copy(os.path.join(other, "pbft", "public", f"{name}.pub"),
                                os.path.join(d, f"{name}.pub"))
                return d

            r = ctl("put", "bft/forged", "x", key_dir=forged_dir(3), timeout=40)
            # Both ways: those members cannot check the client's MACs either.
            if r.returncode == 0 or not ("failed their MACs" in r.stderr or
                                         "MAC for this member does not check" in r.stderr):
                failures.append(f"3 wrong keys: exit {r.returncode}, err {r.stderr.strip()!r}")
            expect(ctl("get", "bft/a", key_dir=forged_dir(1)), "bft/a\nuno\n",
                   "ctl --bft get with one member's key wrong")

    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report("pbft_test", failures)


if __name__ == "__main__":
    sys.exit(main())
