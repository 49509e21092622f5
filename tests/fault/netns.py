"""Hosts for the fault campaign: one network namespace per node, joined by veth pairs to a bridge.

    root namespace: bridge <prefix>br at 198.18.<net>.254/24   (the harness and its clients)
    namespace <prefix>n<i>: eth0 at 198.18.<net>.<i+1>/24, lo up (node i's server)

198.18.0.0/15 is reserved for benchmarking networks (RFC 2544), so it clashes with no real one.

The harness reaches every node through the bridge; the faults act only between nodes, inside
their namespaces, so a client's connection to its node survives a partition (as in Jepsen, where
clients talk to their own node):

  - partitions: iptables DROP in each node's INPUT chain for the peers it must not hear, so
    traffic between two separated nodes is dropped both ways and silently (no RST, no ICMP);
  - link faults on a node's eth0: latency with tc netem where the kernel has it (sch_netem),
    else with fault_netdelay (tests/fault/netdelay.cpp), which holds the packets an iptables
    NFQUEUE rule hands it for the delay plus jitter, else a slow link (tc tbf rate limit:
    queueing delay, not a fixed one); random loss with iptables' statistic match; duplication
    with the TEE target, which sends a copy of a share of the node's outgoing packets to the
    same peer.

Everything made here is named with the prefix, and is removed by close() (also from atexit).
A prefix left behind by a harness that was killed is removed by sweep_stale() when the next one
starts. Every command has a timeout; a failed command raises NetError with its stderr.
"""

from __future__ import annotations

import atexit
import os
import re
import subprocess
from typing import Dict, Iterable, List, Optional, Sequence

TIMEOUT = 10


class NetError(RuntimeError):
    pass


def run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(list(argv), capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise NetError(f"{' '.join(argv)}: no answer in {TIMEOUT}s") from e
    except FileNotFoundError as e:
        raise NetError(f"{argv[0]} is not installed (scripts/bootstrap installs iproute2 and "
                       f"iptables)") from e
    if check and r.returncode != 0:
        raise NetError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def _random(share: float) -> List[str]:
    """iptables match: a random share of the packets."""
    return ["-m", "statistic", "--mode", "random", "--probability", f"{share:.3f}"]


def sweep_stale(family: str = "sf") -> List[str]:
    """Removes namespaces and bridges named <family><pid>... whose pid no longer runs."""
    removed = []
    r = run(["ip", "netns", "list"], check=False)
    names = [line.split()[0] for line in r.stdout.splitlines() if line.strip()]
    r = run(["ip", "-o", "link", "show", "type", "bridge"], check=False)
    bridges = [m.group(1) for m in re.finditer(r"^\d+: ([^:@]+)", r.stdout, re.M)]
    for name in names + bridges:
        m = re.fullmatch(rf"{family}(\d+)(n\d+|br)", name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or os.path.exists(f"/proc/{pid}"):
            continue
        if m.group(2) == "br":
            run(["ip", "link", "del", name], check=False)
        else:
            run(["ip", "netns", "del", name], check=False)
        removed.append(name)
    return removed


class Network:
    def __init__(self, size: int, net: int, family: str = "sf", netdelay: Optional[str] = None):
        if not 0 <= net <= 255:
            raise NetError(f"subnet index {net} not in 0..255")
        if os.geteuid() != 0:
            raise NetError("network namespaces need root")
        self.size = size
        self.prefix = f"{family}{os.getpid()}"
        self.subnet = f"198.18.{net}"
        self.bridge = f"{self.prefix}br"
        self.names = [f"{self.prefix}n{i}" for i in range(size)]
        self.cut: Dict[int, set] = {i: set() for i in range(size)}
        self.link: Dict[int, str] = {}
        self.netdelay = netdelay
        self.delayers: Dict[int, subprocess.Popen] = {}
        self._netem: Optional[bool] = None
        self._closed = False
        sweep_stale(family)
        atexit.register(self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def host(self, i: int) -> str:
        return f"{self.subnet}.{i + 1}"

    @property
    def gateway(self) -> str:
        return f"{self.subnet}.254"

    def _build(self) -> None:
        run(["ip", "link", "add", self.bridge, "type", "bridge"])
        run(["ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])
        for i, ns in enumerate(self.names):
            veth = f"{self.prefix}v{i}"
            run(["ip", "netns", "add", ns])
            run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
            run(["ip", "link", "set", veth, "master", self.bridge, "up"])
            run(["ip", "-n", ns, "addr", "add", f"{self.host(i)}/24", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            self._ipt(i, "-P", "INPUT", "ACCEPT")  # fails early if iptables cannot work here

    def _ipt(self, i: int, *args: str, table: str = "filter") -> None:
        run(["ip", "netns", "exec", self.names[i], "iptables", "-w", "5", "-t", table] +
            list(args))

    def _to_peers(self, i: int, rule, table: str = "filter") -> None:
        """Appends to node i's OUTPUT chain, for each peer j, the rule `rule(peer address)`
        (match and target arguments after `-d <peer>`)."""
        for j in range(self.size):
            if j != i:
                self._ipt(i, "-A", "OUTPUT", "-d", self.host(j), *rule(self.host(j)),
                          table=table)

    def _tc(self, i: int, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run(["ip", "netns", "exec", self.names[i], "tc"] + list(args), check=check)

    # ---- partitions ---------------------------------------------------------------------
    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        """Each node hears only the nodes of its own groups (a node may be in several groups,
        as the bridge node is). Replaces any earlier partition."""
        groups = [set(g) for g in groups]
        hears = {i: set() for i in range(self.size)}
        for g in groups:
            for i in g:
                hears[i] |= g
        self.heal_partition()
        for i in range(self.size):
            if not hears[i]:
                hears[i] = {i}
            for j in range(self.size):
                if j not in hears[i]:
                    self._ipt(i, "-A", "INPUT", "-s", self.host(j), "-j", "DROP")
                    self.cut[i].add(j)

    def packets(self, chain: str, table: str = "filter") -> int:
        """Packets matched by the rules of a chain, summed over the nodes: what a fault did."""
        total = 0
        for i in range(self.size):
            r = run(["ip", "netns", "exec", self.names[i], "iptables", "-w", "5", "-t", table,
                     "-L", chain, "-v", "-n", "-x"], check=False)
            for line in r.stdout.splitlines()[2:]:
                fields = line.split()
                if fields and fields[0].isdigit():
                    total += int(fields[0])
        return total

    def heal_partition(self) -> None:
        for i in range(self.size):
            if self.cut[i]:
                self._ipt(i, "-F", "INPUT")
                self.cut[i].clear()

    # ---- link faults --------------------------------------------------------------------
    def has_netem(self) -> bool:
        if self._netem is None:
            r = self._tc(0, "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "1ms",
                         check=False)
            self._netem = r.returncode == 0
            if self._netem:
                self._tc(0, "qdisc", "del", "dev", "eth0", "root", check=False)
        return self._netem

    def slow(self, i: int, delay_ms: int, jitter_ms: int) -> str:
        """Latency on node i's outgoing packets; returns what was applied."""
        if self.has_netem():
            self._tc(i, "qdisc", "replace", "dev", "eth0", "root", "netem", "delay",
                     f"{delay_ms}ms", f"{jitter_ms}ms")
            what = f"netem delay {delay_ms}ms +-{jitter_ms}ms"
        elif self.netdelay:
            # the queue number is the node's index: each namespace has its own queues anyway
            self.delayers[i] = subprocess.Popen(
                ["ip", "netns", "exec", self.names[i], self.netdelay, "--queue", str(i),
                 "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms), "--seconds", "300"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self._to_peers(i, lambda _: ["-j", "NFQUEUE", "--queue-num", str(i),
                                         "--queue-bypass"])
            what = f"delay {delay_ms}ms +-{jitter_ms}ms (NFQUEUE)"
        else:
            # no sch_netem in this kernel: a 1 Mbit/s link, which queues what exceeds it
            self._tc(i, "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", "1mbit",
                     "burst", "16kb", "latency", f"{max(50, delay_ms * 4)}ms")
            what = "tbf rate 1mbit (no sch_netem here)"
        self.link[i] = what
        return what

    def lossy(self, i: int, loss: float) -> str:
        self._to_peers(i, lambda _: [*_random(loss), "-j", "DROP"])
        self.link[i] = f"loss {loss:.0%}"
        return self.link[i]

    def duplicating(self, i: int, share: float) -> str:
        self._to_peers(i, lambda peer: [*_random(share), "-j", "TEE", "--gateway", peer],
                       table="mangle")
        self.link[i] = f"duplicate {share:.0%}"
        return self.link[i]

    def heal_links(self) -> None:
        for i, pr in list(self.delayers.items()):
            pr.terminate()
            try:
                pr.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pr.kill()
                pr.wait(timeout=5)
            del self.delayers[i]
        for i in list(self.link):
            self._tc(i, "qdisc", "del", "dev", "eth0", "root", check=False)
            self._ipt(i, "-F", "OUTPUT")
            self._ipt(i, "-F", "OUTPUT", table="mangle")
            del self.link[i]

    def heal(self) -> None:
        self.heal_partition()
        self.heal_links()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for pr in self.delayers.values():
            pr.kill()
        for ns in self.names:
            run(["ip", "netns", "del", ns], check=False)
        run(["ip", "link", "del", self.bridge], check=False)
