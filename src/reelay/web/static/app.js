// The reelay dashboard: one page, routed by the URL hash, fed by /api and by the
// server-sent events of /api/live (one point a second, no page reloads).
"use strict";

const main = document.getElementById("main");
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const badge = (s) => `<span class="badge ${esc(s)}">${esc(s)}</span>`;
const when = (t) => (t ? new Date(typeof t === "number" ? t * 1000 : t).toLocaleTimeString() : "");
const secs = (s) => (s == null ? "" : s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(s < 10 ? 2 : 1)} s`);
const num = (v, d = 1) => (v == null ? "" : Number(v).toFixed(d));

async function api(path, options = {}) {
  const response = await fetch(path, { headers: { "Content-Type": "application/json" }, ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

// -- live stream --------------------------------------------------------------------------

const live = { points: [], latest: null, listeners: new Set(), source: null, title: null };

function connect(title) {
  if (live.source && live.title === title) return;
  if (live.source) live.source.close();
  live.title = title;
  const url = title ? `/api/live?title=${encodeURIComponent(title)}` : "/api/live";
  const source = new EventSource(url);
  const status = document.getElementById("connection");
  source.onopen = () => { status.textContent = "live"; status.className = "connection live"; };
  source.onerror = () => { status.textContent = "reconnecting"; status.className = "connection"; };
  source.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.history) live.points = data.history;
    else if (data.point) live.points.push(data.point);
    if (live.points.length > 300) live.points.splice(0, live.points.length - 300);
    live.latest = data;
    const dlq = data.point ? data.point.dlq_depth : 0;
    document.getElementById("dlq-count").textContent = dlq ? dlq : "";
    document.getElementById("alert-count").textContent = data.alerts && data.alerts.length ? data.alerts.length : "";
    for (const listener of live.listeners) listener(data);
  };
  live.source = source;
}

function onLive(listener) {
  live.listeners.clear();
  live.listeners.add(listener);
  if (live.latest) listener(live.latest);
}

// -- charts -------------------------------------------------------------------------------

const COLORS = ["#2f6fde", "#d4413a", "#23945a", "#d98b12"];

function lineChart(title, series, format) {
  // series: [{name, key}] over live.points
  const points = live.points;
  const w = 600, h = 110, pad = 18;
  const values = series.flatMap((s) => points.map((p) => p[s.key] ?? 0));
  const max = Math.max(1e-9, ...values) * 1.1;
  const t0 = points.length ? points[0].time : 0, t1 = points.length ? points[points.length - 1].time : 1;
  const x = (t) => pad + ((t - t0) / Math.max(t1 - t0, 1)) * (w - pad * 2);
  const y = (v) => h - pad - (v / max) * (h - pad * 2);
  const paths = series.map((s, i) => {
    const d = points.map((p, j) => `${j ? "L" : "M"}${x(p.time).toFixed(1)},${y(p[s.key] ?? 0).toFixed(1)}`).join("");
    return `<path class="series" stroke="${COLORS[i]}" d="${d}"/>`;
  }).join("");
  const last = points.length ? points[points.length - 1] : {};
  const now = series.map((s) => format(last[s.key] ?? 0)).join(" / ");
  const legend = series.length > 1 ? `<div class="legend">${series.map((s, i) => `<span style="color:${COLORS[i]}">■</span> ${esc(s.name)}`).join(" &nbsp;")}</div>` : "";
  return `<div class="panel chart"><h3>${esc(title)}<span class="now">${esc(now)}</span></h3>
    <svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" role="img" aria-label="${esc(title)}">
      <line class="axis" x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}"/>
      <text class="label" x="${pad}" y="${pad - 6}">${esc(format(max / 1.1))}</text>
      <text class="label" x="${w - pad}" y="${h - 4}" text-anchor="end">${esc(when(t1))}</text>
      ${paths}</svg>${legend}</div>`;
}

function barChart(rows, key, format) {
  const max = Math.max(1e-9, ...rows.map((r) => r[key] ?? 0));
  return `<div class="bars">${rows.map((r) => `<span class="mono">${esc(r.name)}</span>
    <div><div class="bar" style="width:${(100 * (r[key] ?? 0)) / max}%"></div></div>
    <span>${esc(r[key] == null ? "–" : format(r[key]))}</span>`).join("")}</div>`;
}

// -- tables -------------------------------------------------------------------------------

function table(columns, rows, { onClick, empty = "Nothing yet." } = {}) {
  if (!rows.length) return `<div class="empty">${esc(empty)}</div>`;
  const head = columns.map((c) => `<th>${esc(c[0])}</th>`).join("");
  const body = rows.map((r, i) => `<tr data-row="${i}" class="${onClick ? "clickable" : ""}">${columns.map((c) => `<td>${c[1](r)}</td>`).join("")}</tr>`).join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function searchable(container, render) {
  // A search box that filters the rendered rows by their text, kept across refreshes.
  const box = container.querySelector("input[type=search]");
  const apply = () => {
    const q = box.value.trim().toLowerCase();
    for (const tr of container.querySelectorAll("tbody tr")) tr.hidden = q && !tr.textContent.toLowerCase().includes(q);
  };
  box.addEventListener("input", apply);
  return () => { render(); apply(); };
}

function bindRows(container, rows, onClick) {
  for (const tr of container.querySelectorAll("tbody tr[data-row]")) tr.addEventListener("click", () => onClick(rows[Number(tr.dataset.row)]));
}

// -- pages --------------------------------------------------------------------------------

function overview() {
  main.innerHTML = `<h1>Overview</h1><div class="grid" id="charts"></div>
    <h2>Alerts firing</h2><div id="alerts"></div>
    <h2>Titles</h2><div id="titles"></div>
    <h2>Latest failures</h2><div id="failures"></div>`;
  onLive((data) => {
    document.getElementById("charts").innerHTML = [
      lineChart("Invocations per second", [{ name: "invocations/s", key: "invocations_per_second" }], (v) => num(v, 2)),
      lineChart("Error rate", [{ name: "errors", key: "error_rate" }], (v) => `${num(100 * v, 1)} %`),
      lineChart("Duration", [{ name: "p50", key: "duration_p50_seconds" }, { name: "p99", key: "duration_p99_seconds" }], secs),
      lineChart("Queue depth", [{ name: "queued", key: "queue_depth" }, { name: "running", key: "running" }], (v) => num(v, 0)),
      lineChart("DLQ depth", [{ name: "failed", key: "dlq_depth" }], (v) => num(v, 0)),
      lineChart("Oldest pending event", [{ name: "age", key: "oldest_pending_age_seconds" }], secs),
    ].join("");
    document.getElementById("alerts").innerHTML = alertTable(data.alerts || []);
    document.getElementById("titles").innerHTML = titleTable((data.titles || []).slice(0, 8));
    bindRows(document.getElementById("titles"), (data.titles || []).slice(0, 8), (t) => (location.hash = `#/titles/${t.id}`));
    document.getElementById("failures").innerHTML = table([
      ["When", (f) => esc(when(f.started))],
      ["Function", (f) => `<span class="mono">${esc(f.function)}</span>`],
      ["Attempt", (f) => esc(f.attempt)],
      ["Error", (f) => `<span class="error-text">${esc(f.error_type)}: ${esc(f.error_message)}</span>`],
      ["Worker", (f) => `<span class="mono">${esc(f.worker)}</span>`],
    ], data.failures || [], { empty: "No failures." });
    if (data.error) document.getElementById("failures").insertAdjacentHTML("afterbegin", `<p class="error-text">${esc(data.error)}</p>`);
  });
}

function titleTable(titles) {
  return table([
    ["Title", (t) => `<a href="#/titles/${esc(t.id)}">${esc(t.key.split("/").pop())}</a><div class="muted mono">${esc(t.id)}</div>`],
    ["State", (t) => badge(t.status)],
    ["Stage", (t) => esc(t.stage)],
    ["Progress", (t) => `<div class="progress" title="${esc(t.percent ?? 0)}%"><div style="width:${t.percent ?? 0}%"></div></div>
      <span class="muted">${t.chunks_total ? `${esc(t.chunks_done)}/${esc(t.chunks_total)} chunk encodes` : ""}</span>`],
    ["Started", (t) => esc(when(t.created))],
    ["Error", (t) => (t.error ? `<span class="error-text">${esc(t.error.code)}: ${esc(t.error.message)}</span>` : "")],
  ], titles, { onClick: true, empty: "No titles yet: upload a video to s3://media/ingest/ (reelay transcode, or PUT /api/titles)." });
}

function titles() {
  main.innerHTML = `<h1>Titles</h1><div class="toolbar"><input type="search" placeholder="Search titles"></div><div id="list"></div>`;
  let rows = [];
  const list = document.getElementById("list");
  const refresh = searchable(main, () => {
    list.innerHTML = titleTable(rows);
    bindRows(list, rows, (t) => (location.hash = `#/titles/${t.id}`));
  });
  onLive(async () => { rows = await api("/api/titles"); refresh(); });
}

function titlePage(id) {
  main.innerHTML = `<h1 id="title-name">Title</h1>
    <div class="title-head"><div class="panel" id="summary"></div><div class="panel" id="player-panel"><div class="empty">The player appears when the title is published.</div></div></div>
    <h2>Timeline <span class="legend"><span style="color:var(--wait)">■</span> queued &nbsp;<span style="color:var(--ok)">■</span> ran &nbsp;<span style="color:var(--bad)">■</span> failed attempt &nbsp;<span style="color:var(--accent)">■</span> running</span></h2>
    <div class="panel"><div class="timeline" id="timeline"></div></div>
    <h2>Quality and bitrate per rendition</h2><div class="grid" id="qc"></div>`;
  let playing = null;
  onLive((data) => {
    const detail = data.title;
    if (detail === undefined) return;
    if (detail === null) { document.getElementById("summary").innerHTML = `<p class="error-text">No title ${esc(id)}.</p>`; return; }
    const t = detail.title, report = detail.report || {};
    document.getElementById("title-name").textContent = t.key.split("/").pop();
    document.getElementById("summary").innerHTML = `<dl class="kv">
      <dt>State</dt><dd>${badge(t.status)} <span class="muted">${esc(t.stage)}</span></dd>
      <dt>Progress</dt><dd><div class="progress"><div style="width:${t.percent ?? 0}%"></div></div></dd>
      <dt>Id</dt><dd class="mono">${esc(t.id)}</dd>
      <dt>Source</dt><dd class="mono">s3://${esc(t.bucket)}/${esc(t.key)}</dd>
      ${report.source ? `<dt>Source media</dt><dd>${esc(describeSource(report.source))}</dd>` : ""}
      ${report.ladder ? `<dt>Ladder</dt><dd>${esc(report.ladder)} · ${esc(report.chunks)} ${report.chunks === 1 ? "chunk" : "chunks"}</dd>` : ""}
      ${report.timings && report.timings.total ? `<dt>Total</dt><dd>${secs(report.timings.total)}</dd>` : ""}
      ${t.error ? `<dt>Error</dt><dd class="error-text">${esc(t.error.code)}: ${esc(t.error.message)}</dd>` : ""}
    </dl>`;
    document.getElementById("timeline").innerHTML = timeline(detail.tasks);
    document.getElementById("qc").innerHTML = qcCharts(report.renditions || []);
    const hls = report.outputs && report.outputs.hls;
    if (t.status === "published" && hls && playing !== hls) {
      playing = hls;
      play(t.id, hls.split(`/published/${t.id}/`)[1]);
    }
  });
}

function describeSource(s) {
  const parts = [`${s.width}×${s.height} ${s.video_codec || ""} ${s.fps} fps`, `${s.duration_s} s`];
  if (s.audio && s.audio.length) parts.push(`audio ${s.audio.join(", ")}`);
  if (s.subtitles && s.subtitles.length) parts.push(`subtitles ${s.subtitles.join(", ")}`);
  return parts.join(" · ");
}

function timeline(tasks) {
  if (!tasks.length) return `<div class="empty">No tasks yet.</div>`;
  const now = Date.now() / 1000;
  const ends = tasks.flatMap((t) => t.attempts.map((a) => a.started + a.duration_s));
  const t0 = Math.min(...tasks.map((t) => t.queued));
  const t1 = Math.max(t0 + 1, ...ends, ...tasks.filter((t) => t.status === "running" || t.status === "queued").map(() => now));
  const pct = (t) => `${(100 * (t - t0)) / (t1 - t0)}%`;
  const width = (a, b) => `${Math.max((100 * (b - a)) / (t1 - t0), 0.15)}%`;
  const rows = tasks.map((task) => {
    const active = task.status === "running" || task.status === "queued";
    const first = task.attempts.length ? task.attempts[0].started : task.status === "running" ? task.started : active ? now : task.finished || task.queued;
    const bars = [`<div class="tl-bar wait" style="left:${pct(task.queued)};width:${width(task.queued, first)}" title="queued ${esc(when(task.queued))}"></div>`];
    for (const a of task.attempts) {
      bars.push(`<div class="tl-bar ${a.ok ? "ok" : "bad"}" style="left:${pct(a.started)};width:${width(a.started, a.started + a.duration_s)}"
        title="${esc(task.function)} ${esc(task.label)} · attempt ${esc(a.attempt)} · ${esc(secs(a.duration_s))} on ${esc(a.worker)}${a.cold_start ? " (cold start)" : ""}${a.error ? ` · ${esc(a.error)}` : ""}"></div>`);
    }
    if (task.status === "running") {
      bars.push(`<div class="tl-bar run" style="left:${pct(task.started)};width:${width(task.started, now)}" title="running since ${esc(when(task.started))}"></div>`);
    }
    const retries = task.attempts.length > 1 ? ` <span class="badge failed">×${task.attempts.length}</span>` : "";
    const workers = [...new Set(task.attempts.map((a) => a.worker).concat(task.status === "running" ? [task.worker] : []))].filter(Boolean);
    return `<div class="tl-row" data-task="${esc(task.id)}" data-status="${esc(task.status)}"><div class="tl-name" title="${esc(task.function)} ${esc(task.label)}"><span class="mono">${esc(task.function)}</span> <span class="muted">${esc(task.label)}</span>${retries}</div><div class="tl-lane">${bars.join("")}</div><div class="tl-worker mono muted">${esc(workers.join(" → "))}</div></div>`;
  });
  return rows.join("") + `<div class="tl-axis"><div></div><div><span>${esc(when(t0))}</span><span>${esc(secs(t1 - t0))}</span></div><div>worker</div></div>`;
}

function qcCharts(renditions) {
  const video = renditions.filter((r) => r.kind === "video");
  const all = renditions.filter((r) => r.bitrate_kbps != null);
  if (!renditions.length) return `<div class="empty">QC figures appear when the title is checked.</div>`;
  return `<div class="panel"><h3>VMAF</h3>${barChart(video, "vmaf", (v) => num(v, 1))}</div>
    <div class="panel"><h3>PSNR (Y, dB)</h3>${barChart(video, "psnr", (v) => num(v, 1))}</div>
    <div class="panel"><h3>Bitrate (kbit/s)</h3>${barChart(all, "bitrate_kbps", (v) => num(v, 0))}</div>`;
}

function play(id, master) {
  const panel = document.getElementById("player-panel");
  const src = `/api/titles/${encodeURIComponent(id)}/files/${master}`;
  panel.innerHTML = `<video id="player" controls muted playsinline></video><div class="muted mono">${esc(master)}</div>`;
  const video = document.getElementById("player");
  if (window.Hls && window.Hls.isSupported()) {
    const hls = new window.Hls();
    hls.on(window.Hls.Events.ERROR, (_, data) => { if (data.fatal) panel.insertAdjacentHTML("beforeend", `<p class="error-text">player: ${esc(data.details)}</p>`); });
    hls.loadSource(src);
    hls.attachMedia(video);
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = src;
  } else {
    panel.insertAdjacentHTML("beforeend", `<p class="error-text">The player needs hls.js (installed by the project's setup from npm), or a browser that plays HLS.</p>`);
  }
}

async function functions() {
  main.innerHTML = `<h1>Functions</h1><div class="toolbar"><input type="search" placeholder="Search functions"></div><div id="list"></div>`;
  let rows = [];
  const list = document.getElementById("list");
  const refresh = searchable(main, () => {
    list.innerHTML = table([
      ["Function", (f) => `<span class="mono">${esc(f.name)}</span><div class="muted mono">${esc(f.handler)}</div>`],
      ["Invocations", (f) => esc(f.invocations)],
      ["Errors", (f) => (f.errors ? `<span class="error-text">${esc(f.errors)}</span>` : "0")],
      ["Avg", (f) => esc(f.avg_ms == null ? "" : secs(f.avg_ms / 1000))],
      ["Max", (f) => esc(f.max_ms == null ? "" : secs(f.max_ms / 1000))],
      ["DLQ", (f) => esc(f.dlq)],
      ["Timeout", (f) => esc(f.timeout_s == null ? "" : `${f.timeout_s} s`)],
      ["Memory", (f) => esc(f.memory_mb == null ? "" : `${f.memory_mb} MB`)],
      ["Concurrency", (f) => esc(f.reserved_concurrency ?? "")],
    ], rows, { onClick: true });
    bindRows(list, rows, (f) => (location.hash = `#/invocations?function=${encodeURIComponent(f.name)}`));
  });
  onLive(async () => { rows = await api("/api/functions"); refresh(); });
}

function invocationColumns() {
  return [
    ["Created", (i) => esc(when(i.created))],
    ["Function", (i) => `<span class="mono">${esc(i.function)}</span>`],
    ["Status", (i) => badge(i.status)],
    ["Attempts", (i) => `${esc(i.attempts)}/${esc(i.max_attempts)}${i.redrives ? ` <span class="muted">(redriven ${esc(i.redrives)})</span>` : ""}`],
    ["Duration", (i) => esc(i.started && i.finished ? secs(i.finished - i.started) : "")],
    ["Worker", (i) => `<span class="mono">${esc(i.worker)}</span>`],
    ["Error", (i) => (i.error ? `<span class="error-text">${esc(i.error.errorType)}: ${esc(i.error.errorMessage)}</span>` : "")],
    ["Request id", (i) => `<span class="mono muted">${esc(i.id)}</span>`],
  ];
}

function invocations(params) {
  main.innerHTML = `<h1>Invocations</h1><div class="toolbar">
    <input type="search" placeholder="Search invocations">
    <select id="status"><option value="">any status</option><option>queued</option><option>running</option><option>succeeded</option><option>failed</option></select>
    <input id="function" type="search" placeholder="function" style="min-width:10rem" value="${esc(params.get("function") || "")}">
    <input id="title" type="search" placeholder="title id" style="min-width:12rem" value="${esc(params.get("title") || "")}">
    </div><div id="list"></div><div id="detail"></div>`;
  let rows = [];
  const list = document.getElementById("list");
  const refresh = searchable(main, () => {
    list.innerHTML = table(invocationColumns(), rows, { onClick: true });
    bindRows(list, rows, showInvocation);
  });
  const load = async () => {
    const q = new URLSearchParams({ limit: "200" });
    for (const name of ["status", "function", "title"]) { const v = document.getElementById(name).value.trim(); if (v) q.set(name, v); }
    try { rows = await api(`/api/invocations?${q}`); } catch (e) { rows = []; list.innerHTML = `<p class="error-text">${esc(e.message)}</p>`; return; }
    refresh();
  };
  for (const name of ["status", "function", "title"]) document.getElementById(name).addEventListener("change", load);
  onLive(load);
}

async function showInvocation(inv) {
  const detail = await api(`/api/invocations/${encodeURIComponent(inv.id)}`);
  document.getElementById("detail").innerHTML = `<h2>Invocation ${esc(inv.id)}</h2>
    ${detail.attempt_log.map((a) => `<h2>Attempt ${esc(a.attempt)} · ${a.ok ? badge("success") : badge("error")} · ${esc(secs(a.duration_ms / 1000))} on <span class="mono">${esc(a.worker)}</span></h2><pre>${esc(a.logs || "(no output)")}</pre>`).join("")}
    <h2>Event</h2><pre>${esc(JSON.stringify(detail.event.event, null, 2))}</pre>`;
  document.getElementById("detail").scrollIntoView({ behavior: "smooth" });
}

function events() {
  main.innerHTML = `<h1>Events</h1><div class="toolbar"><input type="search" placeholder="Search events">
    <select id="kind"><option value="">any kind</option><option>s3</option><option>event</option><option>invoke</option><option>schedule</option></select></div><div id="list"></div><div id="detail"></div>`;
  let rows = [];
  const list = document.getElementById("list");
  const refresh = searchable(main, () => {
    list.innerHTML = table([
      ["Seq", (e) => esc(e.seq)],
      ["Time", (e) => esc(when(e.time))],
      ["Kind", (e) => esc(e.kind)],
      ["Source", (e) => `<span class="mono">${esc(e.source)}</span>`],
      ["Type", (e) => esc(e.detail_type)],
      ["Summary", (e) => `<span class="mono muted">${esc(JSON.stringify(e.event.detail ?? e.event.Records ?? e.event).slice(0, 140))}</span>`],
    ], rows, { onClick: true });
    bindRows(list, rows, (e) => { document.getElementById("detail").innerHTML = `<h2>Event ${esc(e.seq)}</h2><pre>${esc(JSON.stringify(e.event, null, 2))}</pre>`; });
  });
  const load = async () => {
    const kind = document.getElementById("kind").value;
    rows = await api(`/api/events?limit=300${kind ? `&kind=${kind}` : ""}`);
    refresh();
  };
  document.getElementById("kind").addEventListener("change", load);
  onLive(load);
}

function dlq() {
  main.innerHTML = `<h1>Dead-letter queue</h1><div class="toolbar"><input type="search" placeholder="Search the DLQ">
    <button id="redrive-all">Redrive all</button><span id="redrive-result" class="muted"></span></div><div id="list"></div>`;
  let rows = [];
  const list = document.getElementById("list");
  const result = document.getElementById("redrive-result");
  const redrive = async (body) => {
    try {
      const out = await api("/api/dlq/redrive", { method: "POST", body: JSON.stringify(body) });
      result.textContent = `redriven: ${out.redriven}`;
    } catch (e) { result.textContent = e.message; }
    await load();
  };
  const refresh = searchable(main, () => {
    list.innerHTML = table([
      ...invocationColumns(),
      ["", (i) => `<button class="secondary redrive" data-id="${esc(i.id)}">Redrive</button>`],
    ], rows, { empty: "The DLQ is empty." });
    for (const b of list.querySelectorAll("button.redrive")) b.addEventListener("click", () => { b.disabled = true; redrive({ ids: [b.dataset.id] }); });
    document.getElementById("redrive-all").disabled = !rows.length;
  });
  const load = async () => { rows = await api("/api/dlq?limit=500"); refresh(); };
  document.getElementById("redrive-all").addEventListener("click", () => redrive({}));
  onLive(load);
}

function alertTable(alerts) {
  return table([
    ["Alert", (a) => `<b>${esc(a.name)}</b>${a.key ? ` <span class="mono muted">${esc(a.key)}</span>` : ""}`],
    ["Severity", (a) => badge(a.severity)],
    ["Since", (a) => esc(when(a.since))],
    ["Value", (a) => esc(a.value == null ? "" : num(a.value, 3))],
    ["Summary", (a) => esc(a.summary)],
  ], alerts, { empty: "No alert is firing." });
}

function alerts() {
  main.innerHTML = `<h1>Alerts</h1><h2>Firing</h2><div id="firing"></div><h2>Rules</h2><div id="rules"></div>`;
  onLive(async () => {
    const data = await api("/api/alerts");
    document.getElementById("firing").innerHTML = alertTable(data.firing);
    document.getElementById("rules").innerHTML = table([
      ["Rule", (r) => `<b>${esc(r.name)}</b>`],
      ["Severity", (r) => badge(r.severity)],
      ["Condition", (r) => `<span class="mono">${esc(r.condition)}</span>`],
      ["Webhook", (r) => `<span class="mono">${esc(r.webhook || "")}</span>`],
    ], data.rules, { empty: "No alert rules." });
  });
}

// -- routing ------------------------------------------------------------------------------

function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const parts = (path || "/").split("/").filter(Boolean);
  const params = new URLSearchParams(query || "");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === `#/${parts[0] || ""}`);
  const title = parts[0] === "titles" && parts[1] ? decodeURIComponent(parts[1]) : null;
  connect(title);
  if (title) return titlePage(title);
  const pages = { "": overview, titles, functions, invocations, events, dlq, alerts };
  (pages[parts[0] || ""] || overview)(params);
}

window.addEventListener("hashchange", route);
route();
