"""Real-process clusters for integration tests: etcd 3.4 (the reference) or `synod server`.

Both kinds take exactly etcd's flags (--name, --data-dir, --listen-client-urls,
--advertise-client-urls, --listen-peer-urls, --initial-advertise-peer-urls, --initial-cluster,
--initial-cluster-state, --initial-cluster-token); for kind 'synod' the command line is
`<binary> server <flags>`. Everything listens on 127.0.0.1 only.

Ports: member with index i (0-based, in order of creation, added members included) gets
client port base_port + 2*i and peer port base_port + 2*i + 1. A cluster therefore uses at most
2 * MAX_MEMBERS ports from base_port on; give each test its own base port (the CMake file does).

Every wait is bounded in time and in number of tries. Processes are always torn down: stop_all()
runs from `with Cluster(...)`, from atexit, and from SIGINT/SIGTERM/SIGHUP handlers; on Linux the
children also get PR_SET_PDEATHSIG(SIGKILL), so a harness that is itself killed with -9 leaves no
member behind (only for processes started from the main thread, see _preexec).

Run `/usr/bin/python3 tests/integration/cluster.py --kind etcd` for a smoke test.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

ETCDCTL = os.environ.get("ETCDCTL", "/usr/bin/etcdctl")
ETCD = os.environ.get("ETCD", "/usr/bin/etcd")
HOST = "127.0.0.1"
MAX_MEMBERS = 8
KINDS = ("etcd", "synod")
# The etcdctl commands the auth tests start from: root (password rootpw) with the root role,
# alice (alicepw) with readwrite on the prefix app/, then authentication on.
APP_AUTH_SETUP = (("user", "add", "root:rootpw", "--interactive=false"),
                  ("user", "grant-role", "root", "root"),
                  ("user", "add", "alice:alicepw", "--interactive=false"),
                  ("role", "add", "app"),
                  ("role", "grant-permission", "app", "readwrite", "app/", "--prefix=true"),
                  ("user", "grant-role", "alice", "app"),
                  ("auth", "enable"))


class ClusterError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def kill_process_groups(procs) -> None:
    """SIGCONT then SIGKILL the process group of each Popen (started with
    start_new_session=True), and reap it; groups already gone are skipped."""
    for pr in procs:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.killpg(pr.pid, sig)
            except ProcessLookupError:
                pass
        pr.wait(timeout=10)


def report(name: str, failures) -> int:
    """Prints each failure and '<name>: 1 passed, 0 failed' (or the opposite); the exit code."""
    for f in failures:
        print(f"FAIL: {f}")
    print(f"{name}: {'1 passed, 0 failed' if not failures else '0 passed, 1 failed'}")
    return 0 if not failures else 1


def dir_bytes(path: str) -> int:
    """Bytes in the files under `path` (a member's data dir, say)."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def wait_until(pred: Callable[[], object], timeout: float, interval: float = 0.2,
               what: str = "condition", max_tries: Optional[int] = None):
    """Calls pred until it returns a truthy value; bounded by timeout seconds and max_tries.
    Returns the value; raises ClusterError naming `what` (and the last exception) otherwise."""
    deadline = time.monotonic() + timeout
    tries = 0
    last_exc: Optional[BaseException] = None
    limit = max_tries if max_tries is not None else max(1, int(timeout / max(interval, 0.01)) + 1)
    while tries < limit:
        tries += 1
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - the predicate may fail while a cluster settles
            last_exc = e
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    extra = f" (last error: {last_exc})" if last_exc else ""
    raise ClusterError(f"timed out after {timeout:.0f}s / {tries} tries waiting for {what}{extra}")


_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _libc = None


def _allow_core() -> None:
    # A member that crashes leaves a core file in the data root (its cwd), where the kernel's
    # core_pattern allows one.
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        pass


def _preexec_pdeathsig():
    # New session: a ^C in the terminal reaches the harness only, which then tears down in order.
    os.setsid()
    _allow_core()
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _preexec_plain():
    os.setsid()
    _allow_core()


def _preexec():
    # PDEATHSIG fires when the *thread* that forked dies, so only use it from the main thread.
    if threading.current_thread() is threading.main_thread():
        return _preexec_pdeathsig
    return _preexec_plain


@dataclass
class Member:
    name: str
    index: int
    client_port: int
    peer_port: int
    data_dir: str
    log_path: str
    initial_cluster: str
    initial_state: str
    proc: Optional[subprocess.Popen] = None
    starts: int = 0
    removed: bool = False
    member_id: Optional[int] = None
    log_file: Optional[object] = field(default=None, repr=False)
    # Where the member listens, and the network namespace it runs in (tests/fault); by default
    # 127.0.0.1 in the harness's own namespace.
    host: str = HOST
    netns: Optional[str] = None
    # "https" for TLS (tests/integration/tls_test.py)
    client_scheme: str = "http"
    peer_scheme: str = "http"

    @property
    def client_url(self) -> str:
        return f"{self.client_scheme}://{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"{self.peer_scheme}://{self.host}:{self.peer_port}"

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.client_port}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


_LIVE: "List[Cluster]" = []
_HANDLERS_INSTALLED = False


_AFTER_TEARDOWN: List[Callable[[], None]] = []


def after_teardown(fn: Callable[[], None]) -> None:
    """Runs fn after the clusters were stopped on exit or on a signal (tests/fault removes its
    network namespaces so)."""
    _AFTER_TEARDOWN.append(fn)


def _teardown_all():
    for c in list(_LIVE):
        try:
            c.stop_all()
        except Exception as e:  # noqa: BLE001
            log(f"teardown error: {e}")
    for fn in list(_AFTER_TEARDOWN):
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            log(f"teardown error: {e}")


def _signal_handler(signum, frame):
    log(f"got signal {signum}; stopping all members")
    _teardown_all()
    # Re-raise as the default action so the exit status says what happened.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers():
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(_teardown_all)
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, _signal_handler)


class Cluster:
    def __init__(self, kind: str, binary: Optional[str] = None, size: int = 3,
                 base_port: int = 21000, data_root: Optional[str] = None, keep: bool = False,
                 token: Optional[str] = None, start_timeout: float = 30.0, label: str = "",
                 server_args: Optional[List[str]] = None):
        if kind not in KINDS:
            raise ClusterError(f"unknown kind {kind!r} (want one of {KINDS})")
        if kind == "synod" and not binary:
            raise ClusterError("kind 'synod' needs --binary <path to synod>")
        if kind == "etcd" and not binary:
            binary = ETCD
        # members run with cwd = data root: a relative path must not be resolved there
        binary = os.path.abspath(binary)
        if not os.access(binary, os.X_OK):
            raise ClusterError(f"{binary} is not an executable file")
        if not (1 <= size <= MAX_MEMBERS):
            raise ClusterError(f"size {size} not in 1..{MAX_MEMBERS}")
        self.kind = kind
        self.binary = binary
        self.server_args = list(server_args or [])  # after the cluster flags, on every start
        self.base_port = base_port
        self.keep = keep
        self.start_timeout = start_timeout
        self.own_root = data_root is None
        self.data_root = data_root or tempfile.mkdtemp(prefix=f"synod-it-{label or kind}-")
        os.makedirs(self.data_root, exist_ok=True)
        self.token = token or f"synod-it-{kind}-{base_port}-{os.getpid()}-{int(time.time() * 1000)}"
        self.members: Dict[str, Member] = {}
        self._next_index = 0
        self._stopped = False
        # Exit code of each member the last time SIGTERM stopped it (None: it ignored SIGTERM
        # and was killed).
        self.term_exits: Dict[str, Optional[int]] = {}
        self.last_health = ""  # what the last health probe printed (for a failure's message)
        names = [f"m{i + 1}" for i in range(size)]
        planned = [self._new_member(n, "", "new") for n in names]
        ic = ",".join(f"{m.name}={m.peer_url}" for m in planned)
        for m in planned:
            m.initial_cluster = ic
        _install_handlers()
        _LIVE.append(self)

    # ---- construction -------------------------------------------------------------------
    def placement(self, index: int):
        """(host, network namespace) of the member with this index; subclasses place members
        elsewhere (tests/fault/campaign.py puts each in a namespace of its own)."""
        return HOST, None

    def schemes(self):
        """(client, peer) URL schemes of the members; a TLS cluster says https."""
        return "http", "http"

    def etcdctl_flags(self) -> List[str]:
        """Extra etcdctl flags on every call (a TLS cluster's certificates)."""
        return []

    def _new_member(self, name: str, initial_cluster: str, state: str) -> Member:
        if name in self.members:
            raise ClusterError(f"member name {name} already used")
        i = self._next_index
        if i >= MAX_MEMBERS:
            raise ClusterError(f"at most {MAX_MEMBERS} members per cluster (port range)")
        self._next_index += 1
        m = Member(name=name, index=i, client_port=self.base_port + 2 * i,
                   peer_port=self.base_port + 2 * i + 1,
                   data_dir=os.path.join(self.data_root, f"{name}.data"),
                   log_path=os.path.join(self.data_root, f"{name}.log"),
                   initial_cluster=initial_cluster, initial_state=state)
        m.host, m.netns = self.placement(i)
        m.client_scheme, m.peer_scheme = self.schemes()
        self.members[name] = m
        return m

    def _argv(self, m: Member, state: str) -> List[str]:
        flags = [
            f"--name={m.name}",
            f"--data-dir={m.data_dir}",
            f"--listen-client-urls={m.client_url}",
            f"--advertise-client-urls={m.client_url}",
            f"--listen-peer-urls={m.peer_url}",
            f"--initial-advertise-peer-urls={m.peer_url}",
            f"--initial-cluster={m.initial_cluster}",
            f"--initial-cluster-state={state}",
            f"--initial-cluster-token={self.token}",
        ] + self.server_args
        if self.kind == "synod":
            # SYNOD_ENGINE runs every script against a cluster of that consensus engine.
            engine = os.environ.get("SYNOD_ENGINE")
            if engine:
                flags.append(f"--engine={engine}")
            # SYNOD_SERVER_ARGS adds flags to every member (a sharded cluster: --shards=4).
            flags += os.environ.get("SYNOD_SERVER_ARGS", "").split()
            return [self.binary, "server"] + flags
        return [self.binary] + flags

    def _spawn(self, m: Member, state: str) -> None:
        if m.running():
            raise ClusterError(f"{m.name} is already running (pid {m.proc.pid})")
        argv = self._argv(m, state)
        if m.netns:
            # `ip netns exec` execs the server, so the child's pid is the server's own
            argv = ["ip", "netns", "exec", m.netns] + argv
        if m.log_file is None:
            m.log_file = open(m.log_path, "ab", buffering=0)
        m.starts += 1
        m.log_file.write(f"\n===== start #{m.starts} at {time.strftime('%H:%M:%S')}: "
                         f"{' '.join(argv)}\n".encode())
        try:
            m.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=m.log_file,
                                      stderr=subprocess.STDOUT, preexec_fn=_preexec(),
                                      cwd=self.data_root)
        except OSError as e:        # e.g. the binary is being rebuilt right now
            raise ClusterError(f"cannot start {m.name}: {argv[0]}: {e}") from None

    # ---- lifecycle ----------------------------------------------------------------------
    def engine(self) -> str:
        """The consensus engine of a synod cluster (SYNOD_ENGINE or --engine in server_args)."""
        for a in self.server_args:
            if a.startswith("--engine="):
                return a.split("=", 1)[1]
        return os.environ.get("SYNOD_ENGINE", "raft")

    def make_pbft_keys(self) -> None:
        """PBFT members start only with keys: each member's made in its data dir by `synod keys
        new`, and every member's public file copied into every other's, as an operator does."""
        for m in self.members.values():
            if os.path.exists(os.path.join(m.data_dir, "pbft", "secret.key")):
                continue
            r = subprocess.run([self.binary, "keys", "new", f"--data-dir={m.data_dir}",
                                f"--name={m.name}"], capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise ClusterError(f"synod keys new for {m.name}: {r.stderr.strip()}")
        for m in self.members.values():
            for other in self.members.values():
                if other is m:
                    continue
                shutil.copy(os.path.join(other.data_dir, "pbft", "public", f"{other.name}.pub"),
                            os.path.join(m.data_dir, "pbft", "public", f"{other.name}.pub"))

    def start(self, timeout: Optional[float] = None) -> "Cluster":
        if self.kind == "synod" and self.engine() == "pbft":
            self.make_pbft_keys()
        for m in self.members.values():
            self._spawn(m, m.initial_state)
        self.wait_healthy(timeout=timeout or self.start_timeout)
        self.refresh_ids()
        return self

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop_all()

    def stop_member(self, m: Member, sig: int = signal.SIGTERM, wait: float = 10.0) -> None:
        if not m.running():
            return
        try:
            if sig == signal.SIGTERM:
                # A stopped process cannot act on SIGTERM.
                os.kill(m.proc.pid, signal.SIGCONT)
            os.kill(m.proc.pid, sig)
            code = m.proc.wait(timeout=wait)
            if sig == signal.SIGTERM:
                self.term_exits[m.name] = code
        except subprocess.TimeoutExpired:
            if sig == signal.SIGTERM:
                self.term_exits[m.name] = None
            log(f"{m.name} (pid {m.proc.pid}) ignored signal {sig}; SIGKILL")
            m.proc.kill()
            m.proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for m in self.members.values():
            try:
                self.stop_member(m, signal.SIGTERM, wait=8.0)
            except Exception as e:  # noqa: BLE001
                log(f"stopping {m.name}: {e}")
                if m.proc is not None and m.proc.poll() is None:
                    m.proc.kill()
        for m in self.members.values():
            if m.log_file is not None:
                m.log_file.close()
                m.log_file = None
        if self in _LIVE:
            _LIVE.remove(self)
        if self.own_root and not self.keep:
            shutil.rmtree(self.data_root, ignore_errors=True)
        elif self.keep:
            log(f"kept data and logs under {self.data_root}")

    # ---- faults -------------------------------------------------------------------------
    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Sends a signal to a member: SIGKILL / SIGTERM wait until the process has exited;
        SIGSTOP / SIGCONT return at once."""
        m = self.members[name]
        if not m.running():
            raise ClusterError(f"kill {name}: not running")
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.stop_member(m, sig, wait=10.0)
        else:
            os.kill(m.proc.pid, sig)

    def restart(self, name: str, wait: bool = True, timeout: Optional[float] = None) -> None:
        """Starts a stopped member again from its data dir (--initial-cluster-state existing;
        etcd ignores the initial-cluster flags once its data dir holds a WAL)."""
        m = self.members[name]
        if m.removed:
            raise ClusterError(f"restart {name}: it was removed from the cluster")
        if m.running():
            raise ClusterError(f"restart {name}: still running")
        self._spawn(m, "existing")
        if wait:
            self.wait_healthy([name], timeout=timeout or self.start_timeout)

    # ---- etcdctl ------------------------------------------------------------------------
    def etcdctl(self, *args: str, endpoints: Optional[List[str]] = None, timeout: float = 15.0,
                stdin: Optional[str] = None, check: bool = True,
                command_timeout: str = "5s") -> subprocess.CompletedProcess:
        eps = endpoints or self.endpoints()
        argv = [ETCDCTL, f"--endpoints={','.join(eps)}", f"--command-timeout={command_timeout}",
                "--dial-timeout=2s"] + self.etcdctl_flags() + list(args)
        env = dict(os.environ, ETCDCTL_API="3")
        try:
            r = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                               timeout=timeout, env=env)
        except subprocess.TimeoutExpired as e:
            raise ClusterError(f"etcdctl {' '.join(args)} did not return within {timeout}s") from e
        if check and r.returncode != 0:
            raise ClusterError(f"etcdctl {' '.join(args)} failed ({r.returncode}): "
                               f"{r.stderr.strip()}")
        return r

    def endpoints(self, names: Optional[List[str]] = None, running_only: bool = True) -> List[str]:
        out = []
        for m in self.members.values():
            if names is not None and m.name not in names:
                continue
            if m.removed or (running_only and not m.running()):
                continue
            out.append(m.endpoint)
        return out

    def member_by_endpoint(self, ep: str) -> Member:
        for m in self.members.values():
            if ep == m.endpoint or ep.endswith(f"//{m.endpoint}"):
                return m
        raise ClusterError(f"no member serves {ep}")

    def member_list(self) -> List[dict]:
        r = self.etcdctl("member", "list", "-w", "json")
        return json.loads(r.stdout).get("members", [])

    def refresh_ids(self) -> None:
        for entry in self.member_list():
            for m in self.members.values():
                if m.peer_url in entry.get("peerURLs", []):
                    m.member_id = entry["ID"]

    def name_of_id(self, member_id: int) -> Optional[str]:
        for m in self.members.values():
            if m.member_id == member_id:
                return m.name
        return None

    def status(self, names: Optional[List[str]] = None) -> Dict[str, dict]:
        """endpoint status per running member: name -> the JSON object etcdctl prints
        ({"Endpoint":..., "Status": {"header": {...}, "leader": ..., "raftIndex": ...}})."""
        eps = self.endpoints(names)
        r = self.etcdctl("endpoint", "status", "-w", "json", endpoints=eps, check=False)
        out = {}
        if r.stdout.strip():
            for entry in json.loads(r.stdout):
                out[self.member_by_endpoint(entry["Endpoint"]).name] = entry["Status"]
        return out

    def leader(self, timeout: float = 15.0) -> str:
        """Name of the member that the running members agree is leader."""
        def probe():
            st = self.status()
            leaders = {s.get("leader") for s in st.values()}
            if len(st) == 0 or len(leaders) != 1:
                return None
            lid = leaders.pop()
            if not lid:
                return None
            name = self.name_of_id(lid)
            if name is None:
                self.refresh_ids()
                name = self.name_of_id(lid)
            return name if name and self.members[name].running() else None
        return wait_until(probe, timeout, 0.3, "an agreed leader")

    def followers(self) -> List[str]:
        lead = self.leader()
        return [m.name for m in self.members.values()
                if m.running() and not m.removed and m.name != lead]

    # ---- health -------------------------------------------------------------------------
    def healthy(self, names: Optional[List[str]] = None) -> bool:
        targets = names or [m.name for m in self.members.values() if not m.removed]
        for n in targets:
            m = self.members[n]
            if not m.running():
                raise ClusterError(f"{n} exited with code {m.proc.returncode if m.proc else '?'}")
        eps = self.endpoints(targets)
        r = self.etcdctl("endpoint", "health", endpoints=eps, check=False, timeout=10,
                         command_timeout="3s")
        # etcdctl 3.4 prints the health lines on stderr.
        self.last_health = (r.stdout + r.stderr).strip()
        return r.returncode == 0 and (r.stdout + r.stderr).count(" is healthy") == len(eps)

    def wait_healthy(self, names: Optional[List[str]] = None, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        tries = 0
        while True:
            tries += 1
            try:
                if self.healthy(names):
                    return
                err = None
            except ClusterError as e:
                err = e
                if "exited" in str(e):
                    raise ClusterError(f"{e}\n{self.log_tails()}") from None
            if time.monotonic() >= deadline or tries > 400:
                said = self.last_health
                raise ClusterError(f"cluster ({self.kind}) not healthy after {timeout:.0f}s "
                                   f"({tries} probes){': ' + str(err) if err else ''}\n"
                                   f"{'the last probe said: ' + said[-1500:] if said else ''}\n"
                                   f"{self.log_tails()}")
            time.sleep(0.3)

    def log_tails(self, lines: int = 15) -> str:
        parts = []
        for m in self.members.values():
            try:
                with open(m.log_path, "rb") as f:
                    tail = f.read().decode(errors="replace").splitlines()[-lines:]
            except OSError:
                tail = ["(no log)"]
            parts.append(f"--- {m.name} ({m.log_path}), last {lines} lines:\n" + "\n".join(tail))
        return "\n".join(parts)

    # ---- membership ---------------------------------------------------------------------
    def add_member(self, name: str, wait: bool = True, timeout: Optional[float] = None) -> Member:
        """etcdctl member add, then starts the new process with --initial-cluster-state
        existing and the ETCD_INITIAL_CLUSTER that member add printed."""
        m = self._new_member(name, "", "existing")
        ic = None
        deadline = time.monotonic() + 30
        for attempt in range(30):
            r = self.etcdctl("member", "add", name, f"--peer-urls={m.peer_url}", timeout=20,
                             check=False)
            if r.returncode == 0:
                for line in r.stdout.splitlines():
                    if line.startswith("ETCD_INITIAL_CLUSTER="):
                        ic = line.split("=", 1)[1].strip().strip('"')
                break
            err = r.stderr.strip().splitlines()[-1:] or [""]
            if "already exists" in err[0] and attempt > 0:
                # an earlier attempt timed out on our side but was applied
                ic = ",".join(f"{e.get('name') or name}={e['peerURLs'][0]}"
                              for e in self.member_list())
                break
            # etcd refuses a new voter until its peers have been connected for 5 s
            # ("unhealthy cluster"); a slow apply may time out. Both are worth a retry.
            if time.monotonic() > deadline:
                raise ClusterError(f"member add {name}: {err[0]}")
            log(f"member add {name}: {err[0]}; retrying")
            time.sleep(1.0)
        if not ic:
            raise ClusterError(f"member add printed no ETCD_INITIAL_CLUSTER:\n{r.stdout}")
        m.initial_cluster = ic
        self._spawn(m, "existing")
        if wait:
            self.wait_healthy([name], timeout=timeout or self.start_timeout + 15)
            self.refresh_ids()
        return m

    def remove_member(self, name: str, timeout: float = 20.0) -> None:
        """etcdctl member remove through the other members, then stops the removed process
        (etcd exits by itself once it learns it was removed)."""
        m = self.members[name]
        if m.member_id is None:
            self.refresh_ids()
        if m.member_id is None:
            raise ClusterError(f"remove {name}: its ID is not in member list")
        others = [x for x in self.endpoints() if x != m.endpoint]
        deadline = time.monotonic() + timeout
        for attempt in range(30):
            r = self.etcdctl("member", "remove", f"{m.member_id:x}", endpoints=others,
                             timeout=20, check=False)
            if r.returncode == 0:
                break
            err = (r.stderr.strip().splitlines() or [""])[-1]
            if "member not found" in err and attempt > 0:
                break            # an earlier attempt timed out on our side but was applied
            # like member add, etcd refuses while the remaining voters have not all been
            # connected for 5 s ("unhealthy cluster")
            if time.monotonic() > deadline:
                raise ClusterError(f"member remove {name}: {err}")
            log(f"member remove {name}: {err}; retrying")
            time.sleep(1.0)
        m.removed = True
        if m.proc is not None:
            try:
                m.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.stop_member(m, signal.SIGTERM, wait=5)

    # ---- agreement ----------------------------------------------------------------------
    def wait_converged(self, timeout: float = 30.0) -> int:
        """Waits until every running member reports the same KV revision and raft applied
        index; returns that revision."""
        def probe():
            st = self.status()
            want = len(self.endpoints())
            if len(st) != want:
                return None
            revs = {s["header"]["revision"] for s in st.values()}
            if len(revs) == 1:
                return revs.pop() or None
            return None
        return wait_until(probe, timeout, 0.3, "all members at the same revision")

    def hashkv(self, rev: int) -> Dict[str, dict]:
        r = self.etcdctl("endpoint", "hashkv", f"--rev={rev}", "-w", "json")
        return {self.member_by_endpoint(e["Endpoint"]).name: e["HashKV"] for e in json.loads(r.stdout)}


def add_common_args(p) -> None:
    p.add_argument("--kind", choices=KINDS, default="etcd", help="system under test")
    p.add_argument("--binary", default=None,
                   help="server binary (synod: path to the synod executable; etcd: /usr/bin/etcd)")
    p.add_argument("--base-port", type=int, default=21000,
                   help="first port; a cluster uses 2*%d ports from here" % MAX_MEMBERS)
    p.add_argument("--keep", action="store_true", help="keep data dirs and logs")


def _main() -> int:
    import argparse
    p = argparse.ArgumentParser(description="start a cluster, print its status, stop it")
    add_common_args(p)
    p.add_argument("--size", type=int, default=3)
    a = p.parse_args()
    t0 = time.monotonic()
    with Cluster(a.kind, a.binary, a.size, a.base_port, keep=a.keep) as c:
        log(f"healthy in {time.monotonic() - t0:.1f}s: {c.endpoints()} leader={c.leader()}")
        c.etcdctl("put", "smoke", "1")
    # A clean shutdown: every member stopped by SIGTERM exits by itself, with code 0.
    unclean = {n: code for n, code in c.term_exits.items() if code != 0}
    if unclean or len(c.term_exits) != a.size:
        log(f"FAIL: exit codes after SIGTERM: {c.term_exits}")
        return 1
    log(f"every member exited 0 on SIGTERM: {sorted(c.term_exits)}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
