"""The Debian package, installed on this machine: scripts/package's .deb (CPack) is installed
with dpkg, the synod service is started as its systemd unit says, etcdctl talks to it, and the
package is purged again.

    /usr/bin/python3 tests/package/package_test.py --build-dir build     # as root

Checks: `synod --version`; the synod system user and /var/lib/synod (0700, owned by it);
/etc/synod/synod.conf registered as a conffile; the unit passes `systemd-analyze verify`; the
unit's ExecStart, run as its User in its WorkingDirectory (systemd itself is not running in a
container, so the test starts the command the unit names), serves etcdctl put/get/member list
with the shipped configuration; SIGTERM stops it with exit 0 within TimeoutStopSec; the data
stays under /var/lib/synod; purging removes the binary, the unit, the config and the user.
Exit 77 (ctest: skipped) when not root or when a synod package is already installed.
"""

from __future__ import annotations

import argparse
import configparser
import glob
import os
import pwd
import shlex
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from typing import List

ETCDCTL = "/usr/bin/etcdctl"
UNIT = "/lib/systemd/system/synod.service"
CONF = "/etc/synod/synod.conf"
ENDPOINT = "127.0.0.1:2379"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(*argv: str, check: bool = True, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def etcdctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(ETCDCTL, f"--endpoints={ENDPOINT}", "--dial-timeout=2s", "--command-timeout=5s",
               *args, check=check, env=dict(os.environ, ETCDCTL_API="3"))


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build-dir", required=True, help="the configured and built build tree")
    a = p.parse_args()
    if os.geteuid() != 0:
        print("SKIP: installing a package needs root")
        return 77
    if run("dpkg-query", "-W", "-f=${Status}", "synod", check=False).stdout.startswith("install"):
        print("SKIP: a synod package is already installed here; not touching it")
        return 77
    for port in (2379, 2380):
        if not port_free(port):
            print(f"FAIL: port {port} (the shipped configuration's) is in use")
            return 1

    failures: List[str] = []

    def check(cond: bool, what: str) -> None:
        log(("ok: " if cond else "FAILED: ") + what)
        if not cond:
            failures.append(what)

    out = tempfile.mkdtemp(prefix="synod-package-")
    proc = None
    installed = False
    try:
        log("building the package (cpack)")
        run("cpack", "-G", "DEB", "-B", out, cwd=a.build_dir, timeout=600)
        debs = glob.glob(os.path.join(out, "synod_*.deb"))
        check(len(debs) == 1, f"one .deb made: {debs}")
        run("dpkg", "-i", debs[0])
        installed = True
        log(f"installed {os.path.basename(debs[0])}")

        version = run("/usr/bin/synod", "--version").stdout
        check(version.startswith("synod version "), f"synod --version: {version.splitlines()[0]}")
        user = pwd.getpwnam("synod")
        st = os.stat("/var/lib/synod")
        check(st.st_uid == user.pw_uid and stat.S_IMODE(st.st_mode) == 0o700,
              "/var/lib/synod is the synod user's, mode 0700")
        conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "synod").stdout
        check(CONF in conffiles, f"{CONF} is a conffile")
        verify = run("systemd-analyze", "verify", UNIT, check=False)
        problems = [x for x in (verify.stdout + verify.stderr).splitlines()
                    if "synod.service" in x]
        check(verify.returncode == 0 and not problems,
              f"systemd-analyze verify: {problems or verify.returncode}")

        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.optionxform = str
        unit.read(UNIT)
        service = unit["Service"]
        argv = shlex.split(service["ExecStart"])
        log(f"starting the unit's ExecStart as {service['User']}: {' '.join(argv)}")
        proc = subprocess.Popen(argv, user=service["User"], group=service["Group"],
                                extra_groups=[], cwd=service["WorkingDirectory"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        healthy = False
        while time.monotonic() < deadline and proc.poll() is None:
            if etcdctl("endpoint", "health", check=False).returncode == 0:
                healthy = True
                break
            time.sleep(0.3)
        check(healthy, "the service answers etcdctl endpoint health")
        r = etcdctl("put", "installed", "yes", check=False)
        check(r.stdout.strip() == "OK", f"etcdctl put: {r.stdout.strip()} {r.stderr.strip()}")
        r = etcdctl("get", "installed", "--print-value-only", check=False)
        check(r.stdout.strip() == "yes", f"etcdctl get: {r.stdout.strip()}")
        r = etcdctl("member", "list", check=False)
        check(", default, http://127.0.0.1:2380, http://127.0.0.1:2379" in r.stdout,
              f"member list names the configured member: {r.stdout.strip()}")

        stop_timeout = float(service.get("TimeoutStopSec", "30"))
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            code = None
        check(code == 0, f"SIGTERM stops the service with exit 0 (got {code})")
        data = "/var/lib/synod/default.synod"
        check(os.path.isdir(data) and os.stat(data).st_uid == user.pw_uid,
              "the data dir is under /var/lib/synod, owned by synod")
    except (RuntimeError, KeyError, subprocess.TimeoutExpired) as e:
        failures.append(str(e))
        log(f"FAILED: {e}")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc is not None and failures:
            log("service output:\n" + (proc.stdout.read() if proc.stdout else ""))
        if installed:
            r = run("dpkg", "--purge", "synod", check=False)
            check(r.returncode == 0, f"dpkg --purge synod: {r.stderr.strip()}")
            check(not os.path.exists("/usr/bin/synod") and not os.path.exists(UNIT) and
                  not os.path.exists(CONF), "purge removed the binary, the unit and the config")
            try:
                pwd.getpwnam("synod")
                check(False, "purge removed the synod user")
            except KeyError:
                check(True, "purge removed the synod user")
            # the data is the operator's: purge keeps it; the test removes its own
            run("rm", "-rf", "/var/lib/synod", check=False)
        run("rm", "-rf", out, check=False)
    print(f"package: {'FAIL' if failures else 'PASS'} ({len(failures)} failed)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
