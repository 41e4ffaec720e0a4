// The dashboard page (dashboard.h).
#include "dojo/service/dashboard.h"

namespace dojo::service {

std::string_view dashboard_html() {
    static constexpr std::string_view kPage = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OpenDojo service</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin-top: 1.4em; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }
tr.job { cursor: pointer; } tr.job:hover { background: #f3f6fa; }
.slot { display: inline-block; width: 46px; height: 34px; margin: 2px; border: 1px solid #999; font-size: 11px;
        text-align: center; line-height: 34px; background: #f4f4f4; }
.slot.busy { background: #9cc3e8; } .slot.other { background: #d9d9d9; }
.state-running { color: #1a62b0; } .state-succeeded { color: #1f7a3a; } .state-failed { color: #b02a1a; }
.state-preempted { color: #a06a00; } .state-cancelled { color: #777; }
.tile { display: inline-block; width: 30px; height: 22px; margin: 1px; border: 1px solid #bbb; font-size: 9px;
        text-align: center; line-height: 22px; background: #f4f4f4; }
.tile.busy { background: #f2b36b; border-color: #b8752a; }
pre { background: #f6f6f6; padding: 8px; max-height: 14em; overflow: auto; }
#error { color: #b02a1a; }
</style></head>
<body>
<h1>OpenDojo service</h1>
<div id="login">Token: <input id="token" type="password" size="70"> <button id="use">Use</button></div>
<div id="error"></div>
<h2>Slots</h2><div id="slots"></div>
<h2>Utilization</h2><svg id="utilization" width="600" height="80"></svg><div id="idle"></div>
<h2>Jobs</h2>
<table><thead><tr><th>id</th><th>tenant</th><th>kind</th><th>model</th><th>priority</th><th>slots</th><th>state</th>
<th>attempts</th></tr></thead><tbody id="jobs"></tbody></table>
<h2 id="chosen">Job</h2>
<svg id="loss" width="600" height="180"></svg>
<div id="dojo"><h2 id="tiles-title"></h2><div id="tiles"></div></div>
<pre id="log"></pre>
<script>
"use strict";
let token = new URLSearchParams(location.hash.slice(1)).get("token") || localStorage.getItem("dojo-token") || "";
let chosen = null;
document.getElementById("token").value = token;
document.getElementById("use").onclick = () => {
  token = document.getElementById("token").value.trim();
  localStorage.setItem("dojo-token", token);
  refresh();
};
async function api(path) {
  const r = await fetch(path, {headers: {"Authorization": "Bearer " + token}});
  const text = await r.text();
  if (!r.ok) { throw new Error(path + ": " + text); }
  return path.endsWith("/logs") ? text : JSON.parse(text);
}
function polyline(svg, values, height, top) {
  const width = +svg.getAttribute("width");
  if (values.length < 1) { svg.innerHTML = ""; return; }
  const hi = top !== undefined ? top : Math.max(...values), lo = top !== undefined ? 0 : Math.min(...values);
  const span = hi - lo || 1;
  const points = values.map((v, i) => [(values.length === 1 ? 0 : i / (values.length - 1)) * (width - 10) + 5,
                                      height - 5 - (v - lo) / span * (height - 10)]);
  svg.innerHTML = '<polyline fill="none" stroke="#1a62b0" stroke-width="2" points="' +
                  points.map(p => p.join(",")).join(" ") + '"/>' +
                  '<text x="5" y="12" font-size="11">' + hi.toFixed(3) + '</text>' +
                  '<text x="5" y="' + (height - 2) + '" font-size="11">' + lo.toFixed(3) + '</text>';
  svg.dataset.points = values.length;
}
async function refresh() {
  if (!token) { return; }
  try {
    const cluster = await api("/v1/cluster");
    const slots = document.getElementById("slots");
    slots.innerHTML = "";
    for (const s of cluster.slots) {
      const d = document.createElement("div");
      d.className = "slot" + (s.job === null ? "" : s.job === "other" ? " busy other" : " busy");
      d.textContent = s.job === null ? "free" : s.job === "other" ? "other" : "#" + s.job;
      slots.appendChild(d);
    }
    polyline(document.getElementById("utilization"), cluster.utilization.map(u => u.busy), 80, 1);
    document.getElementById("idle").textContent =
      "idle fraction over the last " + cluster.utilization.length + " s: " + (100 * cluster.idle_fraction).toFixed(1) + "%";
    const jobs = (await api("/v1/jobs")).jobs;
    const body = document.getElementById("jobs");
    body.innerHTML = "";
    for (const j of jobs) {
      const tr = document.createElement("tr");
      tr.className = "job"; tr.id = "job-" + j.id;
      for (const v of [j.id, j.tenant, j.kind, j.args.model, j.priority, j.slots, j.state, j.attempts]) {
        const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
      }
      tr.children[6].className = "state state-" + j.state;
      tr.onclick = () => { chosen = j.id; refresh(); };
      body.appendChild(tr);
    }
    if (chosen === null && jobs.length > 0) { chosen = jobs[0].id; }
    if (chosen !== null) {
      const m = await api("/v1/jobs/" + chosen + "/metrics");
      document.getElementById("chosen").textContent = "Job " + chosen + " (" + m.state + "): loss";
      polyline(document.getElementById("loss"), m.progress.map(p => p.loss), 180);
      document.getElementById("log").textContent = await api("/v1/jobs/" + chosen + "/logs");
      await drawTiles(jobs.find(j => j.id === chosen));
    }
    document.getElementById("error").textContent = "";
  } catch (e) {
    document.getElementById("error").textContent = String(e);
  }
}
// A sim job of a Dojo machine: the machine's tiles, those its plan uses marked with their pipeline stages.
let tilesOf = null;
async function drawTiles(job) {
  const box = document.getElementById("tiles"), title = document.getElementById("tiles-title");
  if (!job || job.kind !== "sim" || job.state !== "succeeded") { box.innerHTML = ""; title.textContent = ""; return; }
  if (tilesOf === job.id) { return; }  // drawn already: a plan does not change
  let p = null;
  try { p = await api("/v1/jobs/" + job.id + "/placement"); } catch (e) { p = null; }
  tilesOf = job.id;
  box.innerHTML = "";
  if (!p) { title.textContent = ""; return; }
  title.textContent = p.machine + ": " + p.tiles + " tiles of " + p.devices_per_tile + " " + p.device_kind +
                      ", job " + job.id + " on " + p.tiles_used.length + " (dp=" + p.dp + ", tp=" + p.tp + ", pp=" + p.pp + ")";
  const used = new Map(p.tiles_used.map(t => [t.tile, t]));
  for (let i = 0; i < p.tiles; ++i) {
    const d = document.createElement("div");
    const t = used.get(i);
    d.className = "tile" + (t ? " busy" : "");
    d.textContent = t ? "S" + t.stages[0] + (t.stages.length > 1 ? "+" : "") : "";
    d.title = t ? "tile " + i + ": " + t.devices + " devices, stages " + t.stages.join(",") + ", replicas " +
                  t.replicas.join(",") : "tile " + i + ": idle";
    box.appendChild(d);
  }
}
refresh();
setInterval(refresh, 1000);
</script></body></html>
)HTML";
    return kPage;
}

}  // namespace dojo::service
