"""Fencing with real processes: a lock holder paused past its lease loses the lock, and its
fenced write is refused when it resumes.

    /usr/bin/python3 tests/integration/fencing_test.py --kind synod --binary build/synod

  1. a 3-member Synod cluster
  2. holder A: `etcdctl lock --ttl=2 fence-demo A.sh`; A.sh takes its fencing token
     (`synod ctl lock-token $ETCD_LOCK_KEY`) and waits for a go signal
  3. SIGSTOP A's whole process group (etcdctl stops renewing the session lease)
  4. holder B: `etcdctl lock --ttl=2 fence-demo B.sh` gets the lock once A's lease expired;
     B's fenced put with its token succeeds; B keeps holding
  5. SIGCONT A, signal go: A's fenced put with its old token must be refused with
     "fencing token <A> is older than the lock holder's (<B>)", and the data stays B's
Synod only: etcd has no fenced write (synodpb.Fence). Every wait is bounded; the processes are
killed on every exit path.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import (ETCDCTL, Cluster, ClusterError, add_common_args,  # noqa: E402
                     kill_process_groups, log, report, wait_until)

HOLDER = """#!/bin/sh
# $1: this holder's name; $2: the work dir; $3: synod binary; $4: endpoints
tok=$("$3" ctl --endpoints "$4" lock-token "$ETCD_LOCK_KEY") || exit 3
echo "$tok" > "$2/$1.token"
while [ ! -f "$2/$1.go" ]; do sleep 0.05; done
"$3" ctl --endpoints "$4" fenced-put fence-demo "$tok" fence-demo-data "from-$1" \\
    > "$2/$1.out" 2> "$2/$1.err"
echo $? > "$2/$1.rc"
while [ ! -f "$2/$1.release" ]; do sleep 0.05; done
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(p)
    p.add_argument("--shards", type=int, default=0,
                   help="run on a sharded cluster of this many shards (the lock's waiters and "
                        "the data in different shards)")
    a = p.parse_args()
    if a.kind != "synod":
        print("fencing_test: Synod only (etcd has no fenced write); nothing to do")
        return 0
    work = tempfile.mkdtemp(prefix="synod-fence-")
    script = os.path.join(work, "holder.sh")
    with open(script, "w") as f:
        f.write(HOLDER)
    os.chmod(script, 0o755)
    procs = {}
    failures = []
    try:
        server_args = [f"--shards={a.shards}"] if a.shards else []
        with Cluster(a.kind, a.binary, 3, a.base_port, keep=a.keep, label="fence",
                     server_args=server_args) as c:
            eps = ",".join(c.endpoints())
            env = dict(os.environ, ETCDCTL_API="3")

            def holder(name: str) -> subprocess.Popen:
                argv = [ETCDCTL, f"--endpoints={eps}", "lock", "--ttl=2", "fence-demo",
                        script, name, work, os.path.abspath(a.binary), eps]
                return subprocess.Popen(argv, env=env, start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

            def read(name: str):
                path = os.path.join(work, name)
                return open(path).read().strip() if os.path.exists(path) else None

            def touch(name: str):
                open(os.path.join(work, name), "w").close()

            procs["A"] = holder("A")
            wait_until(lambda: read("A.token"), 15, 0.05, "A to hold the lock")
            token_a = int(read("A.token"))
            log(f"A holds the lock, token {token_a}; pausing A's process group")
            os.killpg(procs["A"].pid, signal.SIGSTOP)
            paused_at = time.monotonic()
            procs["B"] = holder("B")
            touch("B.go")
            wait_until(lambda: read("B.rc"), 20, 0.05, "B to acquire the lock and write")
            waited = time.monotonic() - paused_at
            token_b = int(read("B.token"))
            log(f"B got the lock {waited:.1f}s after A paused, token {token_b}; "
                f"B's fenced put: rc {read('B.rc')} {read('B.out')!r}")
            if read("B.rc") != "0":
                failures.append(f"B's fenced put failed: {read('B.err')}")
            if not token_b > token_a:
                failures.append(f"tokens do not increase: A {token_a}, B {token_b}")
            log("resuming A; it writes with its old token")
            os.killpg(procs["A"].pid, signal.SIGCONT)
            touch("A.go")
            wait_until(lambda: read("A.rc"), 15, 0.05, "A's fenced put to return")
            want = f"fencing token {token_a} is older than the lock holder's ({token_b})"
            if read("A.rc") != "1" or want not in (read("A.err") or ""):
                failures.append(f"A's stale write was not refused as expected: rc {read('A.rc')}"
                                f", stderr {read('A.err')!r}, want {want!r}")
            else:
                log(f"A refused: {read('A.err')}")
            r = c.etcdctl("get", "fence-demo-data", "--print-value-only")
            if r.stdout.strip() != "from-B":
                failures.append(f"the data is {r.stdout.strip()!r}, want 'from-B'")
            touch("B.release")
            touch("A.release")
    except ClusterError as e:
        failures.append(f"harness: {e}")
    finally:
        kill_process_groups(procs.values())
    return report("fencing_test", failures)


if __name__ == "__main__":
    sys.exit(main())
