"""Counting semaphores (synodpb.Semaphore) with real processes and `synod ctl semaphore`:

    /usr/bin/python3 tests/integration/semaphore_test.py --kind synod --binary build/synod

  1. a 3-member Synod cluster; three `synod ctl semaphore acquire work --permits 2 --ttl 3`
     holders started in order, each recording its token: the first two hold, the third waits
  2. `semaphore list` shows 2 held, 1 waiting, in order
  3. SIGKILL the first holder: its lease expires and the waiting third gets the permit
  4. a try-acquire (--timeout-ms 500) with both permits taken fails and leaves no waiter
  5. an acquire with another N is refused
  6. throughout, `semaphore list` never shows more than 2 holders
Synod only (etcd has no semaphore). Bounded waits; processes killed on every exit path.
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
from cluster import (Cluster, ClusterError, add_common_args,  # noqa: E402
                     kill_process_groups, log, report, wait_until)


def main() -> int:
    p = argparse.ArgumentParser(description="synodpb.Semaphore with real processes")
    add_common_args(p)
    a = p.parse_args()
    if a.kind != "synod":
        print("semaphore_test: Synod only (etcd has no semaphore); nothing to do")
        return 0
    synod = os.path.abspath(a.binary)
    work = tempfile.mkdtemp(prefix="synod-sem-")
    procs = {}
    failures = []
    max_holders = 0
    try:
        with Cluster(a.kind, a.binary, 3, a.base_port, keep=a.keep, label="sem") as c:
            eps = ",".join(c.endpoints())

            def ctl(*args, timeout=15):
                return subprocess.run([synod, "ctl", "--endpoints", eps, "semaphore", *args],
                                      capture_output=True, text=True, timeout=timeout)

            def listing():
                nonlocal max_holders
                r = ctl("list", "work")
                holders = [ln.split()[1] for ln in r.stdout.splitlines() if ln.startswith("holder")]
                waiters = [ln.split()[1] for ln in r.stdout.splitlines() if ln.startswith("waiter")]
                max_holders = max(max_holders, len(holders))
                return holders, waiters

            def holder(name: str) -> subprocess.Popen:
                out = os.path.join(work, name)
                argv = [synod, "ctl", "--endpoints", eps, "semaphore", "acquire", "work",
                        "--permits", "2", "--ttl", "3", "--", "sh", "-c",
                        f'echo "$SYNOD_SEMAPHORE_KEY $SYNOD_SEMAPHORE_TOKEN" > {out}; sleep 60']
                return subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)

            def held(name: str):
                path = os.path.join(work, name)
                if not os.path.exists(path):
                    return None
                parts = open(path).read().split()
                return (parts[0], int(parts[1])) if len(parts) == 2 else None

            for name in ("h1", "h2", "h3"):
                procs[name] = holder(name)
                if name != "h3":
                    wait_until(lambda n=name: held(n), 15, 0.05, f"{name} to hold a permit")
                else:
                    wait_until(lambda: len(listing()[1]) == 1, 15, 0.05, "h3 to wait in line")
            holders, waiters = listing()
            if len(holders) != 2 or len(waiters) != 1 or held("h3"):
                failures.append(f"want 2 holders and 1 waiter, got {holders} / {waiters}")
            if [held("h1")[0], held("h2")[0]] != holders:
                failures.append(f"holders {holders} are not h1, h2 in order")
            log(f"holders {holders}, waiting {waiters}; killing h1")
            os.killpg(procs["h1"].pid, signal.SIGKILL)
            t0 = time.monotonic()
            deadline = t0 + 15
            while time.monotonic() < deadline and not held("h3"):
                listing()
                time.sleep(0.1)
            if not held("h3"):
                failures.append("h3 never got the permit h1's lease held")
            else:
                log(f"h3 got the permit {time.monotonic() - t0:.1f}s after h1 died, token "
                    f"{held('h3')[1]} (h1 {held('h1')[1]}, h2 {held('h2')[1]})")
                if not held("h3")[1] > held("h2")[1] > held("h1")[1]:
                    failures.append("tokens do not increase in acquisition order")
            r = subprocess.run([synod, "ctl", "--endpoints", eps, "semaphore", "acquire", "work",
                                "--permits", "2", "--timeout-ms", "500", "--", "true"],
                               capture_output=True, text=True, timeout=20)
            if r.returncode != 1 or "not acquired within the timeout" not in r.stderr:
                failures.append(f"try-acquire: rc {r.returncode}, stderr {r.stderr!r}")
            time.sleep(0.3)
            if listing()[1]:
                failures.append(f"a timed-out try-acquire left a waiter: {listing()[1]}")
            r = subprocess.run([synod, "ctl", "--endpoints", eps, "semaphore", "acquire", "work",
                                "--permits", "3", "--timeout-ms", "500", "--", "true"],
                               capture_output=True, text=True, timeout=20)
            if r.returncode != 1 or "has 2 permits, not 3" not in r.stderr:
                failures.append(f"acquire with another N: rc {r.returncode}, {r.stderr!r}")
            if max_holders > 2:
                failures.append(f"saw {max_holders} holders of a 2-permit semaphore")
    except (ClusterError, subprocess.TimeoutExpired) as e:
        failures.append(f"harness: {e}")
    finally:
        kill_process_groups(procs.values())
    return report("semaphore_test", failures)


if __name__ == "__main__":
    sys.exit(main())
