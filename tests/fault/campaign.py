"""A Jepsen-style fault campaign on real processes: a 5-node cluster (Synod or etcd 3.4), each
node a separate process in a network namespace of its own, clients on the real gRPC API recording
histories while a nemesis injects faults; at the end everything is healed, progress is required,
every history is checked by `synod check`, and the members must agree (HashKV at one revision).

    sudo /usr/bin/python3 tests/fault/campaign.py --kind synod --binary build/synod --profile short
    sudo /usr/bin/python3 tests/fault/campaign.py --kind etcd --synod build/synod --profile short
    scripts/fault-campaign            # the long profile, both systems, side by side

Profiles: `short` (CI: every nemesis once, about 100 s of faults), `long` (--duration seconds of
random faults, 600 by default). The run's directory (--out, else a temporary one) gets the
histories (<workload>.jsonl), the nemesis log (faults.jsonl), each node's log and summary.json.
Exit 0 when every check held, 1 when one did not, 2 when the harness could not run.

Every loop is bounded in count and time; a fault is always healed before the next one; the
nodes, namespaces and the bridge are removed on every exit path (see netns.py and cluster.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from cluster import Cluster, ClusterError, after_teardown, log  # noqa: E402
from netns import Network, NetError  # noqa: E402
import workloads  # noqa: E402

NEMESES = ["partition-halves", "partition-ring", "partition-bridge", "partition-leader",
           "partition-leader-minority",
           "kill", "kill-leader", "pause", "pause-leader", "latency", "loss", "duplicate",
           "member"]

# planted bugs (--bug) and the workload whose history must show each
BUGS = {"serializable-reads": "register", "unfenced-lock": "lock"}

PROFILES = {
    # workers per workload, fault hold and quiet times (s)
    "short": dict(register=4, set=2, lock=3, hold=4.0, quiet=2.0, duration=None, final=10.0),
    "long": dict(register=6, set=2, lock=3, hold=6.0, quiet=3.0, duration=600.0, final=15.0),
}


class FaultCluster(Cluster):
    """Members placed in the network's namespaces; a re-added member takes the slot (host and
    namespace) of the one it replaces."""

    def __init__(self, net: Network, byzantine: Optional[tuple] = None, **kw):
        self.net = net
        self.next_slot: Optional[int] = None
        self.slot_of: Dict[int, int] = {}
        # (member name, binary, modes): that member runs a Byzantine build (PBFT only). Clients,
        # hashes and convergence then look at the honest members only.
        self.byzantine = byzantine
        super().__init__(**kw)

    def _argv(self, m, state: str) -> List[str]:
        argv = super()._argv(m, state)
        if self.byzantine and m.name == self.byzantine[0]:
            argv = [os.path.abspath(self.byzantine[1])] + argv[1:] + \
                [f"--byzantine-test={self.byzantine[2]}"]
        return argv

    def endpoints(self, names=None, running_only: bool = True) -> List[str]:
        eps = super().endpoints(names, running_only)
        if self.byzantine:
            liar = self.members[self.byzantine[0]].endpoint
            eps = [e for e in eps if e != liar]
        return eps

    def placement(self, index: int):
        slot = self.next_slot if self.next_slot is not None else index
        self.next_slot = None
        self.slot_of[index] = slot
        return self.net.host(slot), self.net.names[slot]

    def slot(self, name: str) -> int:
        return self.slot_of[self.members[name].index]


class Nemesis:
    def __init__(self, c: FaultCluster, net: Network, rng: random.Random, out: str,
                 eps: List[List[str]]):
        self.c = c
        self.net = net
        self.rng = rng
        self.log_path = os.path.join(out, "faults.jsonl")
        self.faults: List[dict] = []
        self.eps = eps                      # eps[0]: the live endpoints the workers read
        self.killed: List[str] = []
        self.paused: List[str] = []
        self.removed: Optional[str] = None
        self.generation = 0

    def refresh(self) -> None:
        self.eps[0] = self.c.endpoints()

    def live(self) -> List[str]:
        return [m.name for m in self.c.members.values() if m.running() and not m.removed]

    def leader_or_any(self) -> str:
        try:
            return self.c.leader(timeout=8)
        except ClusterError:
            return self.rng.choice(self.live())

    def slots(self) -> List[int]:
        return list(range(self.net.size))

    def inject(self, kind: str) -> dict:
        rec = {"kind": kind, "start": time.time(), "t0_ns": workloads.now_ns()}
        s = self.slots()
        self.rng.shuffle(s)
        if kind == "partition-halves":
            groups = [s[:2], s[2:]]
            self.net.partition(groups)
            rec["groups"] = groups
        elif kind == "partition-ring":
            # each node hears its two ring neighbours: every node sees a majority, no two the
            # same one
            groups = [[s[i], s[(i + 1) % len(s)]] for i in range(len(s))]
            self.net.partition(groups)
            rec["ring"] = s
        elif kind == "partition-bridge":
            # two halves that only the bridge node hears both of
            groups = [s[:3], s[2:]]
            self.net.partition(groups)
            rec["groups"] = groups
        elif kind == "partition-leader":
            lead = self.c.slot(self.leader_or_any())
            self.net.partition([[lead], [x for x in s if x != lead]])
            rec["isolated"] = lead
        elif kind == "partition-leader-minority":
            # the leader and one follower cut off from the other three, which elect a new
            # leader while the old one may still believe it leads
            lead = self.c.slot(self.leader_or_any())
            rest = [x for x in s if x != lead]
            groups = [[lead, rest[0]], rest[1:]]
            self.net.partition(groups)
            rec["groups"] = groups
        elif kind in ("kill", "kill-leader"):
            name = self.leader_or_any() if kind == "kill-leader" else self.rng.choice(self.live())
            self.c.kill(name, signal.SIGKILL)
            self.killed.append(name)
            self.refresh()
            rec["node"] = name
        elif kind in ("pause", "pause-leader"):
            name = self.leader_or_any() if kind == "pause-leader" else self.rng.choice(self.live())
            self.c.kill(name, signal.SIGSTOP)
            self.paused.append(name)
            rec["node"] = name
        elif kind == "latency":
            rec["links"] = {i: self.net.slow(i, 100, 50) for i in s[:3]}
        elif kind == "loss":
            rec["links"] = {i: self.net.lossy(i, 0.2) for i in s[:3]}
        elif kind == "duplicate":
            rec["links"] = {i: self.net.duplicating(i, 0.3) for i in s}
        elif kind == "member":
            lead = self.leader_or_any()
            name = self.rng.choice([n for n in self.live() if n != lead])
            self.c.remove_member(name)
            self.removed = name
            self.refresh()
            rec["removed"] = name
        else:
            raise ValueError(f"unknown nemesis {kind}")
        return rec

    def heal(self, rec: Optional[dict]) -> None:
        if rec is not None:
            rec["t1_ns"] = workloads.now_ns()
            # what the fault did, from the rules' counters: packets dropped or copied
            if rec["kind"].startswith("partition"):
                rec["packets_dropped"] = self.net.packets("INPUT")
            elif rec["kind"] == "loss":
                rec["packets_dropped"] = self.net.packets("OUTPUT")
            elif rec["kind"] == "duplicate":
                rec["packets_copied"] = self.net.packets("OUTPUT", table="mangle")
        self.net.heal()
        for name in self.paused:
            os.kill(self.c.members[name].proc.pid, signal.SIGCONT)
        self.paused.clear()
        for name in self.killed:
            self.c.restart(name, wait=False)
        self.killed.clear()
        if self.removed is not None:
            old = self.removed
            self.removed = None
            self.generation += 1
            self.c.next_slot = self.c.slot(old)
            m = self.c.add_member(f"{old}g{self.generation}", wait=True, timeout=60)
            if rec is not None:
                rec["added"] = m.name
        self.refresh()
        if rec is not None:
            rec["end"] = time.time()
            self.faults.append(rec)
            with open(self.log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")


def check_history(synod: str, path: str, model: str, time_limit: int) -> dict:
    t0 = time.monotonic()
    r = subprocess.run([synod, "check", "--model", model, "--time-limit", str(time_limit), path],
                       capture_output=True, text=True, timeout=time_limit + 60)
    verdict = {0: "linearizable", 1: "NOT linearizable", 3: "unknown"}.get(r.returncode,
                                                                          f"error {r.returncode}")
    return {"verdict": verdict, "exit": r.returncode, "seconds": round(time.monotonic() - t0, 2),
            "output": (r.stdout + r.stderr).strip().splitlines()[:40]}


def final_reads(eps: List[str], hist: Dict[str, workloads.History], timeout: float) -> dict:
    """After healing: one linearizable read of every register key and of the set, recorded in
    the histories, so a lost acknowledged write shows as a violation. Returns every element
    the final reads of the sets returned, or None if they did not all succeed."""
    stop = threading.Event()
    reg = workloads.RegisterWorker(99, hist["register"], lambda: eps, timeout, 0, stop, 0)
    st = workloads.SetWorker(98, hist["set"], lambda: eps, timeout, 0, stop, 0)
    out = {"set": None}
    added = [e["value"] for e in hist["set"].events if e["f"] == "add"]
    sets = max(added, default=0) // workloads.SetWorker.per_set + 1
    for _ in range(10):
        ok = True
        for k in range(workloads.RegisterWorker.keys):
            key = f"r/{k}"
            reg.invoke("read", key)
            try:
                v, _ = reg.connect().get(key)
                reg.done("ok", "read", key, None if v is None else v.decode())
            except Exception:  # noqa: BLE001
                reg.done("fail", "read", key)
                reg.drop_client()
                ok = False
        got = []
        for s in range(sets):
            r = st.read_all(s)
            if r is None:
                ok = False
                break
            got += r
        if ok:
            out["set"] = got
            break
        time.sleep(1)
    return out


def run(a) -> int:
    prof = dict(PROFILES[a.profile])
    if a.set_clients is not None:
        prof["set"] = a.set_clients
    if a.lock_clients is not None:
        prof["lock"] = a.lock_clients
    duration = a.duration if a.duration is not None else prof["duration"]
    rng = random.Random(a.seed)
    out = a.out or tempfile.mkdtemp(prefix=f"synod-fault-{a.kind}-")
    os.makedirs(out, exist_ok=True)
    # a reused directory starts empty: old data dirs would be taken for this cluster's
    shutil.rmtree(os.path.join(out, "nodes"), ignore_errors=True)
    for name in ["faults.jsonl", "summary.json"] + [f"{w}.jsonl" for w in workloads.WORKLOADS]:
        if os.path.exists(os.path.join(out, name)):
            os.remove(os.path.join(out, name))
    synod = os.path.abspath(a.synod or a.binary or "")
    if not os.access(synod, os.X_OK):
        print(f"campaign: need the synod binary for `synod check` (--synod); got {synod!r}")
        return 2
    nemeses = a.nemeses.split(",") if a.nemeses else list(NEMESES)
    for n in nemeses:
        if n not in NEMESES:
            print(f"campaign: unknown nemesis {n!r}; known: {', '.join(NEMESES)}")
            return 2
    bugs = a.bug.split(",") if a.bug else []
    for b in bugs:
        if b not in BUGS:
            print(f"campaign: unknown planted bug {b!r}; known: {', '.join(BUGS)}")
            return 2
    workloads.RegisterWorker.serializable = "serializable-reads" in bugs
    workloads.LockWorker.unfenced = "unfenced-lock" in bugs
    print(f"campaign: {a.kind}, profile {a.profile}, seed {a.seed}, out {out}"
          f"{', planted bug ' + a.bug if a.bug else ''}", flush=True)
    summary = {"system": a.kind, "profile": a.profile, "seed": a.seed, "nodes": a.size,
               "out": out, "bug": a.bug}
    failures: List[str] = []
    net = Network(a.size, a.net, netdelay=os.path.abspath(a.netdelay) if a.netdelay else None)
    after_teardown(net.close)
    summary["link_faults"] = ("netem" if net.has_netem() else
                              "NFQUEUE delay + iptables (no sch_netem)" if net.netdelay else
                              "tbf + iptables (no sch_netem)")
    binary = a.binary if a.kind == "synod" else (a.binary or "/usr/bin/etcd")
    t_start = time.monotonic()
    try:
        byzantine = None
        if a.byzantine:
            byzantine = (f"m{a.size}", a.byzantine, a.byzantine_modes)
            summary["byzantine"] = {"member": byzantine[0], "modes": a.byzantine_modes}
            log(f"{byzantine[0]} is Byzantine ({a.byzantine_modes}); clients use the others")
        # PBFT: states kept (and logs compacted) often, so that a member killed for a while
        # installs a snapshot with a state fetched from a peer, maybe the Byzantine one.
        pbft_args = (["--pbft-state-interval=128", "--snapshot-count=128"]
                     if a.kind == "synod" and os.environ.get("SYNOD_ENGINE") == "pbft" else [])
        with FaultCluster(net, byzantine=byzantine, kind=a.kind, binary=binary, size=a.size,
                          base_port=a.base_port, server_args=pbft_args,
                          data_root=os.path.join(out, "nodes"), keep=True, start_timeout=60,
                          label="fault") as c:
            eps = [c.endpoints()]
            hist = {w: workloads.History(w) for w in workloads.WORKLOADS}
            stop = threading.Event()
            hard_end = time.monotonic() + (duration or 1200) + 600
            workers = []
            for w, cls in workloads.WORKLOADS.items():
                for i in range(prof[w]):
                    workers.append(cls(len(workers), hist[w], lambda: eps[0], a.op_timeout,
                                       a.seed, stop, hard_end))
            for wk in workers:
                wk.start()
            nem = Nemesis(c, net, rng, out, eps)
            if a.profile == "short" and duration is None:
                schedule = list(nemeses)
                rng.shuffle(schedule)
            else:
                schedule = []
            t_faults = time.monotonic()
            i = 0
            while i < 10000:
                if schedule:
                    if i >= len(schedule):
                        break
                    kind = schedule[i]
                else:
                    if time.monotonic() - t_faults >= duration:
                        break
                    kind = rng.choice(nemeses)
                i += 1
                time.sleep(prof["quiet"])
                rec = None
                try:
                    # each fault starts from a recovered cluster (etcd refuses membership
                    # changes otherwise); not recovering in time is itself a failure
                    c.wait_healthy(timeout=60)
                    rec = nem.inject(kind)
                    what = {k: v for k, v in rec.items() if k not in ("kind", "start", "t0_ns")}
                    log(f"fault {i}: {kind} {json.dumps(what)}")
                    time.sleep(prof["hold"] * rng.uniform(0.75, 1.25))
                except (ClusterError, NetError) as e:
                    log(f"fault {i}: {kind} could not be injected: {e}")
                    failures.append(f"nemesis {kind}: {e}")
                nem.heal(rec)
            summary["fault_seconds"] = round(time.monotonic() - t_faults, 1)
            # Final phase: all healed; every node must be back and every workload must progress.
            log("healed; waiting for all members")
            c.wait_healthy(timeout=90)
            nem.refresh()
            before = {w: h.counts()["ok"] for w, h in hist.items()}
            t_final = workloads.now_ns()
            time.sleep(prof["final"])
            t_final_end = workloads.now_ns()
            progress = {w: h.counts()["ok"] - before[w] for w, h in hist.items()}
            summary["ok_after_heal"] = progress
            for w, n in progress.items():
                if n < 3 and prof[w] > 0:
                    failures.append(f"no progress after healing: {w} had {n} ok operations in "
                                    f"{prof['final']:.0f} s")
            stop.set()
            for wk in workers:
                wk.join(timeout=30)
                if wk.is_alive():
                    failures.append(f"worker {wk.name} did not stop")
                if wk.exc is not None:
                    failures.append(f"worker {wk.name} crashed: {wk.exc!r}")
            fin = final_reads(nem.eps[0], hist, a.op_timeout * 3)
            # Agreement: one revision everywhere, and one HashKV at it.
            rev = c.wait_converged(timeout=60)
            hk = c.hashkv(rev)
            summary["hashkv"] = {"revision": rev, "members": hk}
            hashes = {v.get("hash") for v in hk.values()}
            if len(hk) != len(c.endpoints()) or len(hashes) != 1:
                failures.append(f"members disagree at revision {rev}: {hk}")
            summary["faults"] = {}
            for f in nem.faults:
                summary["faults"][f["kind"]] = summary["faults"].get(f["kind"], 0) + 1
            # Availability: ok operations per second (all workloads) while each kind of fault
            # was in place, against the healed final phase.
            def rate(t0: int, t1: int) -> float:
                oks = sum(h.ok_between(t0, t1) for h in hist.values())
                return oks / max(1e-9, (t1 - t0) / 1e9)
            summary["ok_per_s_healed"] = round(rate(t_final, t_final_end))
            during: Dict[str, List[float]] = {}
            for f in nem.faults:
                during.setdefault(f["kind"], []).append(rate(f["t0_ns"], f["t1_ns"]))
            summary["ok_per_s_during"] = {k: round(sum(v) / len(v)) for k, v in during.items()}
    except (ClusterError, NetError) as e:
        print(f"campaign: harness error: {e}")
        net.close()
        return 2
    finally:
        net.close()
    summary["seconds"] = round(time.monotonic() - t_start, 1)
    # Every acknowledged add is in the final read of the set.
    acked = {e["value"] for e in hist["set"].events if e["type"] == "ok" and e["f"] == "add"}
    if fin["set"] is None:
        failures.append("the final read of the set never succeeded")
    else:
        lost = sorted(acked - set(fin["set"]))
        summary["set_lost_acknowledged"] = len(lost)
        if lost:
            failures.append(f"{len(lost)} acknowledged adds missing from the final read: "
                            f"{lost[:10]}")
    summary["workloads"] = {}
    for w, h in hist.items():
        path = os.path.join(out, f"{w}.jsonl")
        h.write(path)
        res = check_history(synod, path, workloads.MODELS[w], a.check_time_limit)
        ops = h.counts()
        summary["workloads"][w] = dict(ops, operations=sum(ops.values()),
                                       verdict=res["verdict"], check_seconds=res["seconds"])
        log(f"{w}: {ops} -> {res['verdict']} ({res['seconds']} s)")
        if res["exit"] != 0:
            failures.append(f"{w} history ({path}): {res['verdict']}\n  " +
                            "\n  ".join(res["output"]))
    lock_ops = [e for e in hist["lock"].events if e["f"] == "write" and e["type"] != "invoke"]
    summary["lock_client_pauses"] = workloads.LockWorker.pauses[0]
    summary["fenced_writes_refused"] = sum(1 for e in lock_ops if e["type"] == "fail")
    if a.byzantine:
        # The liar must have lied: its last report counts what it did.
        path = os.path.join(out, "nodes", f"m{a.size}.log")
        try:
            with open(path, "rb") as f:
                lines = [ln for ln in f.read().decode(errors="replace").splitlines()
                         if "byzantine member:" in ln]
        except OSError:
            lines = []
        acts = {}
        if lines:
            for part in lines[-1].split("byzantine member:")[1].split('"')[0].split():
                k, _, v = part.partition("=")
                if v.isdigit():
                    acts[k] = int(v)
        summary["byzantine"]["acts"] = acts
        log(f"the Byzantine member did: {acts}")
        if not any(acts.values()):
            failures.append(f"the Byzantine member reported nothing it did ({path})")
        # State transfers on the honest members: installed ones, and states refused (a made-up
        # one the Byzantine member served, say).
        installed = refused = 0
        for i in range(1, a.size):
            try:
                with open(os.path.join(out, "nodes", f"m{i}.log"), "rb") as f:
                    text = f.read().decode(errors="replace")
            except OSError:
                continue
            installed += text.count("installed the state at applied index")
            refused += text.count("no certified digest matches")
        summary["byzantine"]["states_installed"] = installed
        summary["byzantine"]["states_refused"] = refused
        log(f"honest members installed {installed} fetched states and refused {refused}")
    summary["violations"] = len(failures)
    summary["failures"] = failures
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print_summary(summary)
    if bugs:
        # Each planted bug must be caught in its workload's history, and nothing else may fail.
        others = [f for f in failures
                  if not any(f.startswith(f"{BUGS[b]} history") for b in bugs)]
        caught = True
        for b in bugs:
            hit = summary["workloads"][BUGS[b]]["verdict"].startswith("NOT")
            caught = caught and hit
            print(f"planted bug {b}: {'caught' if hit else 'NOT caught'} in the {BUGS[b]} "
                  f"history")
        if others:
            print(f"and {len(others)} other failures")
        ok = caught and not others
    else:
        ok = not failures
    return finish(ok, out)


def finish(ok: bool, out: str) -> int:
    """The last line (ctest's verdict) and the exit code."""
    print(f"campaign: {'1 passed, 0 failed' if ok else '0 passed, 1 failed'} (details in {out})")
    return 0 if ok else 1


def print_summary(s: dict) -> None:
    print(f"\n{s['system']} ({s['profile']}, seed {s['seed']}): {s['seconds']} s, "
          f"link faults by {s['link_faults']}")
    faults = s.get("faults", {})
    print(f"  faults injected: {sum(faults.values())} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(faults.items()))})")
    for w, r in s.get("workloads", {}).items():
        print(f"  {w:9} {r['operations']:6} operations: {r['ok']} ok, {r['fail']} fail, "
              f"{r['info']} info -> {r['verdict']} in {r['check_seconds']} s")
    print(f"  lock holders stalled past their lease: {s.get('lock_client_pauses')}; "
          f"fenced writes refused: {s.get('fenced_writes_refused')}")
    hk = s.get("hashkv")
    if hk:
        print(f"  HashKV at revision {hk['revision']}: "
              f"{len({v.get('hash') for v in hk['members'].values()})} distinct over "
              f"{len(hk['members'])} members")
    print(f"  ok operations in the final healed phase: {s.get('ok_after_heal')}")
    print(f"  ok operations/s healed: {s.get('ok_per_s_healed')}; while faulted: "
          f"{', '.join(f'{k} {v}' for k, v in sorted((s.get('ok_per_s_during') or {}).items()))}")
    for f in s["failures"]:
        print(f"{'found' if s.get('bug') else 'FAIL'}: {f}")


def recheck(out: str, synod: str, time_limit: int) -> int:
    """Judges a finished run's histories again (e.g. with a newer `synod check`) and rewrites
    its summary.json: the verdicts, and the failures that came from them."""
    path = os.path.join(out, "summary.json")
    with open(path) as f:
        summary = json.load(f)
    failures = [f for f in summary["failures"]
                if not any(f.startswith(f"{w} history") for w in workloads.WORKLOADS)]
    for w, r in summary["workloads"].items():
        hist = os.path.join(out, f"{w}.jsonl")
        res = check_history(synod, hist, workloads.MODELS[w], time_limit)
        r["verdict"], r["check_seconds"] = res["verdict"], res["seconds"]
        if res["exit"] != 0:
            failures.append(f"{w} history ({hist}): {res['verdict']}\n  " +
                            "\n  ".join(res["output"]))
    summary["failures"] = failures
    summary["violations"] = len(failures)
    summary["rechecked_with"] = synod
    with open(path, "w") as f:
        json.dump(summary, f, indent=1)
    print_summary(summary)
    return finish(not failures, out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", choices=("synod", "etcd"), default="synod")
    p.add_argument("--binary", help="server binary (synod: build/synod; etcd: /usr/bin/etcd)")
    p.add_argument("--synod", help="synod binary for `synod check` (default: --binary)")
    p.add_argument("--profile", choices=sorted(PROFILES), default="short")
    p.add_argument("--duration", type=float, help="seconds of faults (long profile: 600)")
    p.add_argument("--set-clients", type=int, default=None,
                   help="clients of the set workload (the profile's, 2, by default); fewer "
                        "keep a history with many unknown adds checkable in time")
    p.add_argument("--lock-clients", type=int, default=None,
                   help="lock workers (the profile's by default); 0 on a sharded cluster, where "
                        "the client-side lock recipe and fenced writes are not available")
    p.add_argument("--nemeses", help=f"comma-separated subset of {','.join(NEMESES)}")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--size", type=int, default=5)
    p.add_argument("--byzantine", default=None,
                   help="PBFT (SYNOD_ENGINE=pbft): the last member runs this Byzantine build "
                        "(synod_byzantine); the checks cover the honest members")
    p.add_argument("--byzantine-modes", default="all",
                   help="its behaviours: equivocate, lie, alter, replay, silent, all")
    p.add_argument("--net", type=int, default=None, help="use subnet 198.18.<net>.0/24")
    p.add_argument("--bug", help="planted bugs, comma-separated: serializable-reads (the "
                   "register's reads are local, no quorum), unfenced-lock (the lock's write is a "
                   "plain put); each must be caught in its workload's history")
    p.add_argument("--base-port", type=int, default=2379)
    p.add_argument("--netdelay", help="the fault_netdelay binary (build/tests/fault/), for "
                   "latency where the kernel has no sch_netem")
    p.add_argument("--op-timeout", type=float, default=1.5)
    p.add_argument("--check-time-limit", type=int, default=60)
    p.add_argument("--out", help="directory for histories, logs and summary.json")
    p.add_argument("--recheck", metavar="DIR", help="only judge the histories of the finished "
                   "run in DIR again (with --synod) and rewrite its summary.json")
    a = p.parse_args()
    if a.recheck:
        return recheck(a.recheck, os.path.abspath(a.synod or a.binary or "build/synod"),
                       a.check_time_limit)
    if a.seed is None:
        a.seed = int(time.time()) % 100000
    if a.net is None:
        a.net = os.getpid() % 256
    if a.kind == "synod" and not a.binary:
        p.error("--kind synod needs --binary <path to synod>")
    try:
        return run(a)
    except NetError as e:
        print(f"campaign: cannot build the network: {e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
