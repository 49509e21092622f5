"""The dashboard in headless Chromium: a 3-member cluster under `synod bench` load, the page
loaded from one member, its DOM read back twice and a screenshot taken.

    /usr/bin/python3 tests/integration/dashboard_test.py --kind synod --binary build/synod \
        [--screenshot PATH]

Asserts what the page shows: the leader etcdctl reports (by name) and the same term; one table
row per member, exactly one of them the leader, every one's commit index at or past the
revision written before the load; a write rate above zero while the load runs; and a count of
answered writes that grows from the first look to the second. /dashboard/status answers JSON,
and the page names nothing outside the member (no scripts, styles or fonts fetched elsewhere).
Synod only (etcd has no dashboard): --kind etcd prints "nothing to do".
"""

from __future__ import annotations

import argparse
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, ClusterError, add_common_args, log, report  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Dom(html.parser.HTMLParser):
    """The few things the test reads: elements by id (text and data-value) and member rows."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: Dict[str, Dict[str, str]] = {}
        self.rows: List[Dict[str, object]] = []
        self._stack: List[str] = []     # ids (or "") of the open elements
        self._row: Optional[Dict[str, object]] = None
        self._cell: Optional[List[str]] = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-member" in a:
            self._row = {"member": a["data-member"], "role": a.get("data-role", ""), "cells": []}
        if tag == "td" and self._row is not None:
            self._cell = []
        if a.get("id"):
            self.by_id[a["id"]] = {"text": "", "value": a.get("data-value", "")}
        self._stack.append(a.get("id", ""))

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row["cells"].append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        if self._stack:
            self._stack.pop()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        for ident in self._stack:
            if ident:
                self.by_id[ident]["text"] += data


def load_page(url: str, screenshot: Optional[str] = None) -> Dom:
    """The DOM after the page has polled a few times (virtual time runs 6 s of timers)."""
    profile = tempfile.mkdtemp(prefix="synod-chromium-")
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            f"--user-data-dir={profile}", "--virtual-time-budget=6000", "--window-size=1280,960"]
    try:
        r = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=90)
        if r.returncode != 0 or "<html" not in r.stdout:
            raise ClusterError(f"chromium --dump-dom failed ({r.returncode}): {r.stderr[-400:]}")
        if screenshot:
            subprocess.run(base + [f"--screenshot={screenshot}", url], capture_output=True,
                           timeout=90)
        dom = Dom()
        dom.feed(r.stdout)
        dom.raw = r.stdout
        return dom
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--screenshot", default=None, help="where to save the page's screenshot")
    a = p.parse_args()
    if a.kind != "synod":
        print("dashboard: nothing to do (etcd has no dashboard)")
        return 0
    if not os.access(CHROMIUM, os.X_OK):
        print(f"FAIL: {CHROMIUM} not found (Debian's chromium)")
        return 1
    failures: List[str] = []

    def check(cond: bool, what: str) -> None:
        log(("ok: " if cond else "FAILED: ") + what)
        if not cond:
            failures.append(what)

    bench = None
    try:
        with Cluster(a.kind, a.binary, 3, a.base_port, keep=a.keep, label="dashboard") as c:
            m1 = c.members["m1"]
            page = f"http://{m1.endpoint}/dashboard"
            c.etcdctl("put", "before-load", "1")
            written = json.loads(c.etcdctl("get", "before-load", "-w", "json").stdout)
            revision = written["header"]["revision"]

            with urllib.request.urlopen(page + "/status", timeout=5) as r:
                status = json.loads(r.read())
                check(r.headers.get_content_type() == "application/json" and
                      status["name"] == "m1" and len(status["members"]) == 3,
                      f"/dashboard/status answers JSON for m1 with 3 members")
            with urllib.request.urlopen(page, timeout=5) as r:
                text = r.read().decode()
            outside = re.findall(r'(?:src|href)\s*=\s*"(?:https?:)?//[^"]*"', text)
            check(not outside and "fetch(base" in text,
                  f"the page fetches nothing from outside the members: {outside}")

            eps = ",".join(c.endpoints())
            bench = subprocess.Popen(
                [os.path.abspath(a.binary), "bench", f"--endpoints={eps}", "--clients=8",
                 "--total=1000000", "--rate=400", "--no-progress", "put"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(2)
            leader = c.leader()
            term = c.status([leader])[leader].get("header", {}).get("raft_term")

            shot = a.screenshot or os.path.join(c.data_root, "dashboard.png")
            first = load_page(page, screenshot=shot)
            check(os.path.exists(shot) and os.path.getsize(shot) > 10000,
                  f"a screenshot was taken: {shot}")
            shown_leader = first.by_id.get("leader", {}).get("text", "")
            check(shown_leader == leader, f"the page shows leader {shown_leader!r} (etcdctl: {leader})")
            check(first.by_id.get("term", {}).get("text") == str(term),
                  f"the page shows term {first.by_id.get('term', {}).get('text')} (etcdctl: {term})")
            rows = first.rows
            check(sorted(r["member"] for r in rows) == ["m1", "m2", "m3"],
                  f"one row per member: {[r['member'] for r in rows]}")
            check([r["role"] for r in rows].count("leader") == 1 and
                  next((r["member"] for r in rows if r["role"] == "leader"), None) == leader,
                  f"exactly the leader's row says leader: {[(r['member'], r['role']) for r in rows]}")
            commits = [int(r["cells"][5]) for r in rows if r["cells"][5].isdigit()]
            check(len(commits) == 3 and min(commits) > 0,
                  f"every member shows a commit index: {commits} (revision {revision})")
            rate = float(first.by_id.get("write-rate", {}).get("value") or 0)
            check(rate > 0, f"the write rate under load is above zero: {rate:.1f}/s")
            total1 = int(float(first.by_id.get("writes-total", {}).get("value") or 0))

            time.sleep(1)
            second = load_page(page)
            total2 = int(float(second.by_id.get("writes-total", {}).get("value") or 0))
            check(total2 > total1 > 0, f"answered writes grow between two looks: {total1} -> {total2}")
            check(any("leads" in x for x in second.raw.split("<li")),
                  "the recent events list the election")
    except ClusterError as e:
        failures.append(str(e))
    finally:
        if bench is not None and bench.poll() is None:
            bench.kill()
            bench.wait()
    return report("dashboard", failures)


if __name__ == "__main__":
    sys.exit(main())
