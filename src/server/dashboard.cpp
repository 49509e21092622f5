#include "server/dashboard.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace synod::server {

namespace {

using nlohmann::json;

json histogram_json(const metrics::Histogram& h) {
  json bounds = json::array();
  for (double b : h.bounds()) bounds.push_back(b);
  return {{"bounds", bounds}, {"cumulative", h.cumulative()}, {"sum", h.sum()}};
}

std::string hex(uint64_t id) {
  return fmt::format("{:x}", id);
}

// This member's view: identity, role, indices, the members as it knows them, what it counted
// and timed (cumulative: the page turns two polls into rates and interval percentiles).
std::string status_json(const ServerContext& ctx) {
  const NodeStatus s = ctx.node->status();
  NodeMetrics& m = ctx.node->metrics();
  json members = json::array();
  for (const etcdserverpb::Member& member : ctx.members()) {
    json urls = json::array();
    for (const std::string& u : member.clienturls()) urls.push_back(u);
    members.push_back({{"id", hex(member.id())},
                       {"name", member.name()},
                       {"client_urls", urls},
                       {"learner", member.islearner()}});
  }
  json events = json::array();
  for (const NodeEvent& e : ctx.node->recent_events()) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(e.time.time_since_epoch()).count();
    events.push_back({{"time_ms", ms}, {"text", e.text}});
  }
  json out = {
      {"id", hex(ctx.self_id)},
      {"name", ctx.config.raw.name},
      {"engine", ctx.node->engine_name()},
      {"role", raft::to_string(s.role)},
      {"leader", s.leader == raft::kNoNode ? "" : hex(s.leader.value)},
      {"term", s.term.value},
      {"last_index", s.last_index},
      {"commit", s.committed},
      {"applied", s.applied},
      {"members", members},
      {"events", events},
      {"leader_changes", m.leader_changes.value()},
      {"writes", histogram_json(m.write_latency)},
      {"reads", histogram_json(m.read_latency)},
      {"wal_fsync", histogram_json(m.wal_fsync)},
  };
  return out.dump();
}

extern const char* const kPage;

}  // namespace

std::optional<HttpResponse> serve_dashboard(const ServerContext& ctx, const HttpRequest& req) {
  if (req.path != "/dashboard" && req.path != "/dashboard/" && req.path != "/dashboard/status") {
    return std::nullopt;
  }
  if (req.method != "GET" && req.method != "HEAD") {
    return HttpResponse{405, "text/plain; charset=utf-8", "405 method not allowed\n"};
  }
  if (req.path == "/dashboard/status") {
    return HttpResponse{200, "application/json", status_json(ctx)};
  }
  return HttpResponse{200, "text/html; charset=utf-8", kPage};
}

namespace {

// The page: plain HTML, CSS and JavaScript. Every second it fetches /dashboard/status from this
// member and from every member with a client URL of the page's own scheme, and shows the members
// (role, term, commit and applied indices, lag behind the leader's log), the cluster's request
// rates and latencies over the last second (from the difference of two polls), a minute of write
// rates, and the recent leader and membership changes. Elements carry ids and data-* attributes
// that tests/integration/dashboard_test.py reads.
const char* const kPage = R"PAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Synod dashboard</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; background: #f6f7f9; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .sub { color: #5b6475; margin-bottom: 16px; }
  .cards { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 16px; }
  .card { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 10px 14px; min-width: 150px; }
  .card .label { color: #5b6475; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .card .value { font-size: 22px; font-variant-numeric: tabular-nums; }
  table { border-collapse: collapse; background: #fff; border: 1px solid #dde1e7; margin-bottom: 16px; }
  th, td { padding: 6px 12px; border-bottom: 1px solid #eceff3; text-align: right; font-variant-numeric: tabular-nums; }
  th:first-child, td:first-child, td.role, th.role { text-align: left; }
  tr.leader td { font-weight: 600; }
  .role-leader { color: #0a7a3d; }
  .role-down { color: #b42318; }
  canvas { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; }
  ul#events { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 8px 28px; max-width: 720px; }
  .muted { color: #8a93a3; }
</style>
</head>
<body>
<h1>Synod</h1>
<div class="sub">served by <span id="self">?</span> &middot; engine <span id="engine">?</span> &middot; updated <span id="updated">never</span></div>
<div class="cards">
  <div class="card"><div class="label">leader</div><div class="value" id="leader">none</div></div>
  <div class="card"><div class="label">term</div><div class="value" id="term">0</div></div>
  <div class="card"><div class="label">writes/s</div><div class="value" id="write-rate" data-value="0">0</div></div>
  <div class="card"><div class="label">reads/s</div><div class="value" id="read-rate" data-value="0">0</div></div>
  <div class="card"><div class="label">write p50 / p99</div><div class="value" id="write-latency">&ndash;</div></div>
  <div class="card"><div class="label">read p99</div><div class="value" id="read-latency">&ndash;</div></div>
  <div class="card"><div class="label">writes answered</div><div class="value" id="writes-total" data-value="0">0</div></div>
</div>
<table id="members">
  <thead><tr><th>member</th><th>id</th><th class="role">role</th><th>term</th><th>last index</th><th>commit</th><th>applied</th><th>lag</th><th>writes/s</th><th>reads/s</th></tr></thead>
  <tbody></tbody>
</table>
<div class="label muted">writes/s, last minute</div>
<canvas id="history" width="720" height="120"></canvas>
<h2 style="font-size:16px">Recent elections and membership changes</h2>
<ul id="events"><li class="muted">none yet</li></ul>
<script>
"use strict";
const POLL_MS = 1000;
const previous = {};        // by member name: {t, status}
const writeHistory = [];    // cluster writes/s, one per poll
let names = {};             // member id -> name

function hist(h) { return h ? h.cumulative[h.cumulative.length - 1] : 0; }

// The q-quantile (seconds) of the observations between two cumulative bucket snapshots.
function quantile(now, before, q) {
  if (!now) return null;
  const b = now.bounds, c = now.cumulative, p = before ? before.cumulative : c.map(() => 0);
  const total = c[c.length - 1] - p[p.length - 1];
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < c.length; i++) {
    if (c[i] - p[i] >= rank) return i < b.length ? b[i] : b[b.length - 1];
  }
  return b[b.length - 1];
}

function ms(seconds) {
  if (seconds === null) return "\u2013";
  const v = seconds * 1000;
  return v < 1 ? v.toFixed(2) + " ms" : v < 10 ? v.toFixed(1) + " ms" : Math.round(v) + " ms";
}

async function fetchStatus(base) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), 800);
  try {
    const r = await fetch(base + "/dashboard/status", {cache: "no-store", signal: ctrl.signal});
    return r.ok ? await r.json() : null;
  } catch (e) {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

function rates(name, st, t) {
  const prev = previous[name];
  previous[name] = {t: t, status: st};
  if (!prev || !st) return null;
  const dt = (t - prev.t) / 1000;
  if (dt <= 0) return null;
  return {
    writes: (hist(st.writes) - hist(prev.status.writes)) / dt,
    reads: (hist(st.reads) - hist(prev.status.reads)) / dt,
    writeP50: quantile(st.writes, prev.status.writes, 0.5),
    writeP99: quantile(st.writes, prev.status.writes, 0.99),
    readP99: quantile(st.reads, prev.status.reads, 0.99),
  };
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function drawHistory() {
  const canvas = document.getElementById("history");
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  if (writeHistory.length < 2) return;
  const max = Math.max(1, ...writeHistory);
  g.strokeStyle = "#2f6fde";
  g.lineWidth = 2;
  g.beginPath();
  writeHistory.forEach((v, i) => {
    const x = (i / 59) * (canvas.width - 10) + 5;
    const y = canvas.height - 8 - (v / max) * (canvas.height - 20);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
  g.fillStyle = "#5b6475";
  g.fillText(Math.round(max) + "/s", 6, 12);
}

async function poll() {
  const self = await fetchStatus("");
  const t = Date.now();
  if (self) {
    document.getElementById("self").textContent = self.name + " (" + self.id + ")";
    document.getElementById("engine").textContent = self.engine;
    names = {};
    for (const m of self.members) names[m.id] = m.name || m.id;
    const others = await Promise.all(self.members.map(m => {
      if (m.id === self.id) return Promise.resolve(self);
      const url = (m.client_urls || []).find(u => u.startsWith(location.protocol + "//"));
      return url ? fetchStatus(url) : Promise.resolve(null);
    }));
    render(self, others, t);
  }
  document.getElementById("updated").textContent = new Date(t).toLocaleTimeString();
  setTimeout(poll, POLL_MS);
}

function render(self, statuses, t) {
  const leaderId = self.leader;
  const leaderStatus = statuses.find(s => s && s.id === leaderId);
  document.getElementById("leader").textContent = leaderId ? (names[leaderId] || leaderId) : "none";
  document.getElementById("leader").dataset.id = leaderId;
  document.getElementById("term").textContent = self.term;
  const body = document.querySelector("#members tbody");
  body.textContent = "";
  let writes = 0, reads = 0, all = [];
  self.members.forEach((m, i) => {
    const st = statuses[i];
    const r = rates(m.name || m.id, st, t);
    const tr = document.createElement("tr");
    tr.dataset.member = m.name || m.id;
    const role = !st ? "unreachable" : m.learner ? "learner" : st.role;
    tr.dataset.role = role;
    if (st && st.id === leaderId) tr.className = "leader";
    tr.appendChild(cell(m.name || "(not started)"));
    tr.appendChild(cell(m.id));
    tr.appendChild(cell(role, "role " + (role === "leader" ? "role-leader" : !st ? "role-down" : "")));
    tr.appendChild(cell(st ? st.term : "\u2013"));
    tr.appendChild(cell(st ? st.last_index : "\u2013"));
    tr.appendChild(cell(st ? st.commit : "\u2013"));
    tr.appendChild(cell(st ? st.applied : "\u2013"));
    const lag = st && leaderStatus ? Math.max(0, leaderStatus.last_index - st.applied) : null;
    tr.appendChild(cell(lag === null ? "\u2013" : lag));
    tr.appendChild(cell(r ? r.writes.toFixed(0) : "\u2013"));
    tr.appendChild(cell(r ? r.reads.toFixed(0) : "\u2013"));
    body.appendChild(tr);
    if (r) { writes += r.writes; reads += r.reads; all.push(r); }
    if (st) all.total = (all.total || 0) + hist(st.writes);
  });
  const set = (id, v, text) => {
    const el = document.getElementById(id);
    el.dataset.value = v;
    el.textContent = text;
  };
  set("write-rate", writes, writes.toFixed(0));
  set("read-rate", reads, reads.toFixed(0));
  set("writes-total", all.total || 0, String(all.total || 0));
  const worst = (k) => all.reduce((acc, r) => r[k] === null ? acc : Math.max(acc === null ? 0 : acc, r[k]), null);
  document.getElementById("write-latency").textContent = ms(worst("writeP50")) + " / " + ms(worst("writeP99"));
  document.getElementById("read-latency").textContent = ms(worst("readP99"));
  writeHistory.push(writes);
  while (writeHistory.length > 60) writeHistory.shift();
  drawHistory();
  const list = document.getElementById("events");
  list.textContent = "";
  const events = self.events.slice(-10).reverse();
  for (const e of events) {
    const li = document.createElement("li");
    let text = e.text;
    for (const [id, name] of Object.entries(names)) text = text.split(id).join(name);
    li.textContent = new Date(e.time_ms).toLocaleTimeString() + "  " + text;
    list.appendChild(li);
  }
  if (events.length === 0) list.innerHTML = '<li class="muted">none yet</li>';
}

poll();
</script>
</body>
</html>
)PAGE";

}  // namespace

}  // namespace synod::server
