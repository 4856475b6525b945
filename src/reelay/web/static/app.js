// The reelay dashboard: one page, routed by the URL hash, fed by /api and by the
// server-sent events of /api/live (one point a second, no page reloads).
//
// Live parts are updated in place: a table row, a timeline row or a summary is rewritten
// only when what it shows changed, so what a user selects or opens survives the updates.
"use strict";

const main = document.getElementById("main");
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const badge = (s) => `<span class="badge ${esc(s)}">${esc(s)}</span>`;
const when = (t) => (t ? new Date(typeof t === "number" ? t * 1000 : t).toLocaleTimeString() : "");
const clock = (t) => `<span class="nowrap">${esc(when(t))}</span>`; // a time in a table cell
const duration = (s) => (s == null ? "" : `<span class="nowrap">${esc(secs(s))}</span>`); // and a duration
const secs = (s) => (s == null ? "" : s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(s < 10 ? 2 : 1)} s`);
const num = (v, d = 1) => (v == null ? "" : Number(v).toFixed(d));
// A figure as people write it: a count without decimals ("2", not "2.000"), anything
// else to three significant digits.
const figure = (v) => (v == null ? "" : String(Number(Number(v).toPrecision(3))));
const PAGE_SIZE = 50;

async function api(path, options = {}) {
  const response = await fetch(path, { headers: { "Content-Type": "application/json" }, ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

// The values a GET operation's query parameter takes (invocation statuses, event kinds),
// as the served OpenAPI document declares them: the API keeps the one list, the
// dashboard keeps no copy.
let openapi = null;
async function choices(path, name) {
  openapi = openapi || api("/api/openapi.json");
  const doc = await openapi;
  const param = ((doc.paths[path] || {}).get || { parameters: [] }).parameters.find((p) => p.name === name);
  const found = [];
  const walk = (schema) => {
    if (!schema || typeof schema !== "object") return;
    if (schema.$ref) return walk(doc.components.schemas[schema.$ref.split("/").pop()]);
    if (Array.isArray(schema.enum)) found.push(...schema.enum.filter((v) => v !== null));
    for (const value of Object.values(schema)) if (typeof value === "object") walk(value);
  };
  walk(param && param.schema);
  return [...new Set(found)];
}

async function fillSelect(select, path, name, selected) {
  const values = await choices(path, name).catch(() => []);
  select.insertAdjacentHTML("beforeend", values.map((v) => `<option${v === selected ? " selected" : ""}>${esc(v)}</option>`).join(""));
}

// -- updating in place --------------------------------------------------------------------

function setHTML(element, html) {
  // Rewrite only on change: an unchanged part keeps its selection, focus and hover.
  if (element.shownHTML !== html) {
    element.innerHTML = html;
    element.shownHTML = html;
  }
}

function arrange(parent, nodes) {
  // Put `nodes` in this order under `parent`, moving only those out of place (a moved
  // node loses a selection inside it) and removing the rest.
  const keep = new Set(nodes);
  for (const child of [...parent.children]) if (!keep.has(child)) child.remove();
  let cursor = parent.firstElementChild;
  for (const node of nodes) {
    if (node === cursor) cursor = cursor.nextElementSibling;
    else parent.insertBefore(node, cursor);
  }
}

// A table kept in step with a list of rows by their key. `onClick` opens what a row is
// about; `detail` (row => HTML, maybe async) instead expands the row in place, showing
// the detail right under it.
class LiveTable {
  constructor(container, columns, { key, onClick, detail, empty = "Nothing yet." }) {
    Object.assign(this, { container, columns, key, onClick, detail, empty });
    this.rows = new Map(); // key -> <tr>
    this.open = new Map(); // key -> the <tr> of its detail
    this.query = "";
    this.body = null;
    container.addEventListener("click", (event) => this.click(event));
  }

  show(html) {
    // A message instead of rows (none, or an error): the next rows start a new table.
    this.body = null;
    this.rows.clear();
    this.open.clear();
    setHTML(this.container, html);
  }

  update(rows) {
    // An answer that comes after its page was left is dropped: the table is not shown.
    if (!this.container.isConnected) return;
    if (!rows.length) return this.show(`<div class="empty">${esc(this.empty)}</div>`);
    if (!this.body) {
      setHTML(this.container, `<table><thead><tr>${this.columns.map((c) => `<th>${esc(c[0])}</th>`).join("")}</tr></thead><tbody></tbody></table>`);
      this.body = this.container.querySelector("tbody");
    }
    const order = [];
    const seen = new Set();
    for (const row of rows) {
      const key = String(this.key(row));
      if (seen.has(key)) continue;
      seen.add(key);
      let tr = this.rows.get(key);
      if (!tr) {
        tr = document.createElement("tr");
        tr.dataset.key = key;
        if (this.onClick || this.detail) tr.className = "clickable";
        this.rows.set(key, tr);
      }
      setHTML(tr, this.columns.map((c) => `<td data-label="${esc(c[0])}">${c[1](row)}</td>`).join(""));
      tr.row = row;
      order.push(tr);
      if (this.open.has(key)) order.push(this.open.get(key));
    }
    for (const key of [...this.rows.keys()]) {
      if (!seen.has(key)) {
        this.rows.delete(key);
        this.open.delete(key);
      }
    }
    arrange(this.body, order);
    this.filter(this.query);
  }

  filter(query) {
    this.query = query.trim().toLowerCase();
    for (const [key, tr] of this.rows) {
      const hidden = Boolean(this.query) && !tr.textContent.toLowerCase().includes(this.query);
      if (tr.hidden !== hidden) tr.hidden = hidden;
      const detail = this.open.get(key);
      if (detail && detail.hidden !== hidden) detail.hidden = hidden;
    }
  }

  click(event) {
    const tr = event.target.closest("tr[data-key]");
    if (!tr || this.rows.get(tr.dataset.key) !== tr || event.target.closest("a, button, input, select")) return;
    if (String(window.getSelection())) return; // selecting a row's text is not a click on it
    if (this.onClick) this.onClick(tr.row);
    else if (this.detail) this.toggle(tr.dataset.key);
  }

  async toggle(key) {
    const tr = this.rows.get(key);
    if (this.open.has(key)) {
      this.open.get(key).remove();
      this.open.delete(key);
      tr.classList.remove("open");
      return;
    }
    const row = document.createElement("tr");
    row.className = "detail-row";
    row.innerHTML = `<td colspan="${this.columns.length}"><div class="detail"><span class="muted">Loading…</span></div></td>`;
    this.open.set(key, row);
    tr.classList.add("open");
    tr.after(row);
    const box = row.querySelector(".detail");
    try {
      box.innerHTML = await this.detail(tr.row);
    } catch (e) {
      box.innerHTML = `<p class="error-text">${esc(e.message)}</p>`;
    }
    box.scrollIntoView({ block: "nearest" });
  }
}

// Pages of a long list, newest first, read from the server a page at a time: the next
// page is the one `before` the last row shown (an event's seq, an invocation's id).
class Pager {
  constructor(container, table, { path, query, cursor, size }) {
    Object.assign(this, { container, table, path, query, cursor, size });
    this.before = null;
    this.previous = []; // the cursors of the newer pages, to go back
    this.last = null;
    this.full = false;
    this.ticket = 0;
    this.bars = [...container.querySelectorAll(".pager")];
    for (const bar of this.bars) {
      bar.innerHTML = `<button class="secondary" data-go="newest">Newest</button>
        <button class="secondary" data-go="newer">‹ Newer</button><span class="page muted"></span>
        <button class="secondary" data-go="older">Older ›</button>`;
      bar.addEventListener("click", (event) => {
        const button = event.target.closest("button");
        if (button) this.go(button.dataset.go);
      });
    }
  }

  async load() {
    const ticket = ++this.ticket; // a slow answer for a page left since is dropped
    const query = this.query();
    query.set("limit", String(this.size));
    if (this.before != null) query.set("before", String(this.before));
    let rows;
    try {
      rows = await api(`${this.path}?${query}`);
    } catch (e) {
      if (ticket === this.ticket) this.table.show(`<p class="error-text">${esc(e.message)}</p>`);
      return;
    }
    if (ticket !== this.ticket) return;
    this.last = rows.length ? rows[rows.length - 1] : null;
    this.full = rows.length >= this.size;
    this.table.update(rows);
    for (const bar of this.bars) {
      bar.querySelector("[data-go=newest]").disabled = this.before == null;
      bar.querySelector("[data-go=newer]").disabled = this.before == null;
      bar.querySelector("[data-go=older]").disabled = !this.full;
      bar.querySelector(".page").textContent = this.before == null ? "newest" : `page ${this.previous.length + 1}`;
    }
  }

  go(where) {
    if (where === "older" && this.last) {
      this.previous.push(this.before);
      this.before = this.cursor(this.last);
    } else if (where === "newer") {
      this.before = this.previous.pop() ?? null;
    } else {
      this.previous = [];
      this.before = null;
    }
    this.load();
    this.container.scrollIntoView({ block: "start" });
  }
}

function pageSize(params) {
  const size = Number(params.get("size"));
  return Number.isInteger(size) && size >= 1 && size <= 1000 ? size : PAGE_SIZE;
}

function searchBox(container, tables) {
  // A search box that filters the rows shown by their text, kept across updates.
  const box = container.querySelector("input[type=search]");
  box.addEventListener("input", () => { for (const t of tables) t.filter(box.value); });
}

// -- live stream --------------------------------------------------------------------------

const live = { points: [], latest: null, listeners: new Set(), source: null, title: null, received: null, retry: null };
let redraw = null; // what the page redraws when the window's size changes

function connect(title) {
  if (live.source && live.title === title) return;
  if (live.source) live.source.close();
  clearTimeout(live.retry);
  // What the newest message says of a title came from the stream being closed: the next
  // page must not draw that title as its own, so it waits for its own stream's message
  // (the rest of the message, the same on every stream, is still shown meanwhile).
  if (live.latest && live.title !== title) live.latest = { ...live.latest, title: undefined };
  live.title = title;
  const url = title ? `/api/live?title=${encodeURIComponent(title)}` : "/api/live";
  const source = new EventSource(url);
  source.onopen = () => connected(true);
  source.onerror = () => {
    connected(false);
    // EventSource retries a dropped connection itself, but gives up on an HTTP error
    // (a server that is starting again): keep trying.
    if (source.readyState === EventSource.CLOSED) {
      live.retry = setTimeout(() => {
        if (live.source === source) { live.source = null; connect(live.title); }
      }, 3000);
    }
  };
  source.onmessage = (message) => {
    if (live.source !== source) return; // a stream replaced since
    const data = JSON.parse(message.data);
    live.received = Date.now();
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

function connected(ok) {
  // Lost, the page says so plainly: its figures stop where the stream stopped.
  const status = document.getElementById("connection");
  status.textContent = ok ? "live" : "disconnected";
  status.className = ok ? "connection live" : "connection lost";
  document.body.classList.toggle("stale", !ok);
  const banner = document.getElementById("stale");
  banner.hidden = ok;
  if (!ok) {
    const since = live.received ? ` since ${new Date(live.received).toLocaleTimeString()}` : "";
    banner.innerHTML = `<b>Disconnected from the reelay server${esc(since)}.</b> What this page shows is stale; it updates again when the server is back (retrying).`;
  }
}

function onLive(listener) {
  live.listeners.add(listener);
  if (live.latest) listener(live.latest);
}

// -- the page on screen -------------------------------------------------------------------

// What a page started that outlives its markup (a player loading and playing, its live
// listener, its redraw on resize) is undone when another page is routed to: a replaced
// <video> would otherwise go on loading and playing, and a listener go on drawing.
const leaving = [];

function onLeave(undo) {
  leaving.push(undo);
}

function leave() {
  live.listeners.clear();
  redraw = null;
  for (const undo of leaving.splice(0)) undo();
}

// -- charts -------------------------------------------------------------------------------

const COLORS = ["#2f6fde", "#d4413a", "#23945a", "#d98b12"];

// A line chart over the live points (series: {name, key, color?}), drawn at the size its box has on screen (a
// stretched drawing would squash its text), again whenever that size changes.
function lineChart(title, series, format) {
  const color = (s, i) => s.color || COLORS[i];
  const panel = document.createElement("div");
  panel.className = "panel chart";
  const legend = series.length > 1 ? `<div class="legend">${series.map((s, i) => `<span style="color:${color(s, i)}">■</span> ${esc(s.name)}`).join(" &nbsp;")}</div>` : "";
  panel.innerHTML = `<h3>${esc(title)}<span class="now"></span></h3><svg role="img" aria-label="${esc(title)}"></svg>${legend}`;
  const svg = panel.querySelector("svg");
  const draw = () => {
    const points = live.points;
    const box = svg.getBoundingClientRect();
    const w = Math.max(Math.round(box.width), 100), h = Math.max(Math.round(box.height), 60), pad = 18;
    const values = series.flatMap((s) => points.map((p) => p[s.key] ?? 0));
    const max = Math.max(1e-9, ...values) * 1.1;
    const t0 = points.length ? points[0].time : 0, t1 = points.length ? points[points.length - 1].time : 1;
    const x = (t) => pad + ((t - t0) / Math.max(t1 - t0, 1)) * (w - pad * 2);
    const y = (v) => h - pad - (v / max) * (h - pad * 2);
    const paths = series.map((s, i) => {
      const d = points.map((p, j) => `${j ? "L" : "M"}${x(p.time).toFixed(1)},${y(p[s.key] ?? 0).toFixed(1)}`).join("");
      return `<path class="series" stroke="${color(s, i)}" d="${d}"/>`;
    }).join("");
    const last = points.length ? points[points.length - 1] : {};
    panel.querySelector(".now").textContent = series.map((s) => format(last[s.key] ?? 0)).join(" / ");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.innerHTML = `<line class="axis" x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}"/>
      <text class="label" x="${pad}" y="${pad - 6}">${esc(format(max / 1.1))}</text>
      <text class="label" x="${w - pad}" y="${h - 4}" text-anchor="end">${esc(when(t1))}</text>${paths}`;
  };
  return { panel, draw };
}

function barChart(rows, key, format) {
  const max = Math.max(1e-9, ...rows.map((r) => r[key] ?? 0));
  return `<div class="bars">${rows.map((r) => `<span class="mono">${esc(r.name)}</span>
    <div><div class="bar" style="width:${(100 * (r[key] ?? 0)) / max}%"></div></div>
    <span>${esc(r[key] == null ? "–" : format(r[key]))}</span>`).join("")}</div>`;
}

// -- pages --------------------------------------------------------------------------------

function overview() {
  main.innerHTML = `<h1>Overview</h1><div class="grid" id="charts"></div>
    <h2>Alerts firing</h2><div id="alerts"></div>
    <h2>Titles</h2><div id="titles"></div>
    <h2>Latest failures</h2><p id="observer-error" class="error-text" hidden></p><div id="failures"></div>`;
  const charts = [
    lineChart("Invocations per second", [{ name: "invocations/s", key: "invocations_per_second" }], (v) => num(v, 2)),
    lineChart("Error rate", [{ name: "errors", key: "error_rate" }], (v) => `${num(100 * v, 1)} %`),
    lineChart("Duration", [{ name: "p50", key: "duration_p50_seconds" }, { name: "p99", key: "duration_p99_seconds" }], secs),
    // Claimed: taken by the dispatcher, waiting for a worker; running: a handler started.
    lineChart("Queue depth", [{ name: "queued", key: "queue_depth", color: "#8a93a6" }, { name: "claimed", key: "claimed", color: "#d98b12" }, { name: "running", key: "running", color: "#2f6fde" }], (v) => num(v, 0)),
    lineChart("DLQ depth", [{ name: "failed", key: "dlq_depth" }], (v) => num(v, 0)),
    lineChart("Oldest pending event", [{ name: "age", key: "oldest_pending_age_seconds" }], secs),
  ];
  document.getElementById("charts").append(...charts.map((c) => c.panel));
  redraw = () => { for (const c of charts) c.draw(); };
  const alerts = alertTable(document.getElementById("alerts"));
  const titles = titleTable(document.getElementById("titles"));
  const failures = new LiveTable(document.getElementById("failures"), [
    ["When", (f) => clock(f.started)],
    ["Function", (f) => `<span class="mono">${esc(f.function)}</span>`],
    ["Attempt", (f) => esc(f.attempt)],
    ["Error", (f) => `<span class="error-text">${esc(f.error_type)}: ${esc(f.error_message)}</span>`],
    ["Worker", (f) => `<span class="mono">${esc(f.worker)}</span>`],
  ], { key: (f) => `${f.invocation_id}/${f.attempt}`, detail: (f) => invocationDetail({ id: f.invocation_id }), empty: "No failures." });
  onLive((data) => {
    redraw();
    alerts.update(data.alerts || []);
    titles.update((data.titles || []).slice(0, 8));
    failures.update(data.failures || []);
    const error = document.getElementById("observer-error");
    error.hidden = !data.error;
    error.textContent = data.error || "";
  });
}

function stageOf(t) {
  // The stage at work, while there is one: a published title is past every stage.
  return t.status !== "published" && t.stage ? `<span class="muted">${esc(t.stage)}</span>` : "";
}

function titleTable(container) {
  return new LiveTable(container, [
    ["Title", (t) => `<a href="#/titles/${esc(t.id)}">${esc(t.key.split("/").pop())}</a><div class="muted mono">${esc(t.id)}</div>`],
    ["State", (t) => `${badge(t.status)} ${stageOf(t)}`],
    ["Progress", (t) => `<div class="progress" title="${esc(t.percent ?? 0)}%"><div style="width:${t.percent ?? 0}%"></div></div>
      <span class="muted">${t.chunks_total ? `${esc(t.chunks_done)}/${esc(t.chunks_total)} chunk encodes` : ""}</span>`],
    ["Started", (t) => clock(t.created)],
    ["Error", (t) => (t.error ? `<span class="error-text">${esc(t.error.code)}: ${esc(t.error.message)}</span>` : "")],
  ], { key: (t) => t.id, onClick: (t) => (location.hash = `#/titles/${t.id}`), empty: "No titles yet: upload a video to s3://media/ingest/ (reelay transcode, or POST /api/titles)." });
}

function titles() {
  main.innerHTML = `<h1>Titles</h1><div class="toolbar"><input type="search" placeholder="Search titles"></div><div id="list"></div>`;
  const table = titleTable(document.getElementById("list"));
  searchBox(main, [table]);
  onLive(async () => table.update(await api("/api/titles")));
}

function titlePage(id) {
  main.innerHTML = `<h1>Title</h1><p class="muted">Loading…</p>`;
  let shown = null; // "title" or "missing": what the page is drawn for
  let player = null; // the player on the page: the master playlist it plays, and its stop
  let tasks = null;
  const stopPlayer = () => {
    if (player) player.stop();
    player = null;
  };
  onLeave(stopPlayer);
  onLive((data) => {
    const detail = data.title;
    if (detail === undefined) return;
    if (detail === null) {
      if (shown !== "missing") {
        stopPlayer();
        main.innerHTML = `<h1>No such title</h1><div class="panel notice">
          <p>There is no title <span class="mono">${esc(id)}</span> in this reelay home.</p>
          <p><a href="#/titles">See every title</a></p></div>`;
        shown = "missing";
      }
      return;
    }
    if (shown !== "title") {
      stopPlayer();
      main.innerHTML = `<h1 id="title-name"></h1>
        <div class="title-head"><div class="panel" id="summary"></div><div class="panel" id="player-panel"></div></div>
        <h2>Timeline <span class="legend"><span style="color:var(--wait)">■</span> waiting (queued, claimed) &nbsp;<span style="color:var(--ok)">■</span> ran &nbsp;<span style="color:var(--bad)">■</span> failed attempt &nbsp;<span style="color:var(--accent)">■</span> running</span></h2>
        <div class="panel"><div class="timeline" id="timeline"></div></div>
        <h2>Quality and bitrate per rendition</h2><div class="grid" id="qc"></div>`;
      shown = "title";
      tasks = new Map();
    }
    const t = detail.title, report = detail.report || {};
    setHTML(document.getElementById("title-name"), esc(t.key.split("/").pop()));
    setHTML(document.getElementById("summary"), `<dl class="kv">
      <dt>State</dt><dd>${badge(t.status)} ${stageOf(t)}</dd>
      <dt>Progress</dt><dd><div class="progress"><div style="width:${t.percent ?? 0}%"></div></div></dd>
      <dt>Id</dt><dd class="mono">${esc(t.id)}</dd>
      <dt>Source</dt><dd class="mono">s3://${esc(t.bucket)}/${esc(t.key)}</dd>
      ${report.source ? `<dt>Source media</dt><dd>${esc(describeSource(report.source))}</dd>` : ""}
      ${report.ladder ? `<dt>Ladder</dt><dd>${esc(report.ladder)} · ${esc(report.chunks)} ${report.chunks === 1 ? "chunk" : "chunks"}</dd>` : ""}
      ${report.timings && report.timings.total ? `<dt>Total</dt><dd>${secs(report.timings.total)}</dd>` : ""}
      ${t.error ? `<dt>Error</dt><dd class="error-text">${esc(t.error.code)}: ${esc(t.error.message)}</dd>` : ""}
    </dl>`);
    timeline(document.getElementById("timeline"), tasks, detail.tasks);
    setHTML(document.getElementById("qc"), qcCharts(report.renditions || [], t.status));
    const hls = report.outputs && report.outputs.hls;
    if (t.status === "published" && hls) {
      if (!player || player.master !== hls) {
        stopPlayer();
        player = { master: hls, stop: play(t.id, hls.split(`/published/${t.id}/`)[1]) };
      }
    } else {
      stopPlayer();
      setHTML(document.getElementById("player-panel"), `<div class="empty">${esc(nothingToPlay(t.status))}</div>`);
    }
  });
}

function nothingToPlay(status) {
  // Only a title on its way is promised a player: a rejected, failed or held one has
  // nothing published (a failed one goes on if redriven, and says so again).
  if (status === "rejected") return "Nothing to play: the title was rejected.";
  if (status === "failed") return "Nothing to play: the title failed.";
  if (status === "held") return "Nothing to play: the title is held, not published.";
  return "The player appears when the title is published.";
}

function describeSource(s) {
  const parts = [`${s.width}×${s.height} ${s.video_codec || ""} ${s.fps} fps`, `${s.duration_s} s`];
  if (s.audio && s.audio.length) parts.push(`audio ${s.audio.join(", ")}`);
  if (s.subtitles && s.subtitles.length) parts.push(`subtitles ${s.subtitles.join(", ")}`);
  return parts.join(" · ");
}

function timeline(container, rows, tasks) {
  // One row per task, keyed by its invocation: rows of finished tasks stay as they are.
  if (!tasks.length) {
    rows.clear();
    setHTML(container, `<div class="empty">No tasks yet.</div>`);
    return;
  }
  container.querySelector(".empty")?.remove();
  const now = Date.now() / 1000;
  const active = (task) => task.finished == null;
  const ends = tasks.flatMap((t) => t.attempts.map((a) => a.started + a.duration_s));
  const t0 = Math.min(...tasks.map((t) => t.queued));
  const t1 = Math.max(t0 + 1, ...ends, ...tasks.filter(active).map(() => now));
  const pct = (t) => `${((100 * (t - t0)) / (t1 - t0)).toFixed(3)}%`;
  const width = (a, b) => `${Math.max((100 * (b - a)) / (t1 - t0), 0.15).toFixed(3)}%`;
  const order = tasks.map((task) => {
    const running = task.status === "running" && task.started != null;
    const first = task.attempts.length ? task.attempts[0].started : running ? task.started : active(task) ? now : task.finished || task.queued;
    const bars = [`<div class="tl-bar wait" style="left:${pct(task.queued)};width:${width(task.queued, first)}" title="${esc(task.status === "queued" ? "queued" : `queued, then ${task.status}`)} ${esc(when(task.queued))}"></div>`];
    for (const a of task.attempts) {
      bars.push(`<div class="tl-bar ${a.ok ? "ok" : "bad"}" style="left:${pct(a.started)};width:${width(a.started, a.started + a.duration_s)}"
        title="${esc(task.function)} ${esc(task.label)} · attempt ${esc(a.attempt)} · ${esc(secs(a.duration_s))} on ${esc(a.worker)}${a.cold_start ? " (cold start)" : ""}${a.error ? ` · ${esc(a.error)}` : ""}"></div>`);
    }
    if (active(task) && !running && task.attempts.length) {
      const last = task.attempts[task.attempts.length - 1];
      const end = last.started + last.duration_s;
      bars.push(`<div class="tl-bar wait" style="left:${pct(end)};width:${width(end, now)}" title="${esc(task.status)}: waiting to run again"></div>`);
    }
    if (running) {
      bars.push(`<div class="tl-bar run" style="left:${pct(task.started)};width:${width(task.started, now)}" title="running since ${esc(when(task.started))}"></div>`);
    }
    const retries = task.attempts.length > 1 ? `<span class="badge failed" title="${esc(task.attempts.length)} attempts">×${task.attempts.length}</span>` : "";
    const workers = [...new Set(task.attempts.map((a) => a.worker).concat(running ? [task.worker] : []))].filter(Boolean);
    let row = rows.get(task.id);
    if (!row) {
      row = document.createElement("div");
      row.className = "tl-row";
      row.dataset.task = task.id;
      rows.set(task.id, row);
    }
    row.dataset.status = task.status;
    // The name and label give way (cut short) before the retries do: those are the news.
    setHTML(row, `<div class="tl-name" title="${esc(task.function)} ${esc(task.label)}"><span class="mono">${esc(task.function)}</span><span class="muted">${esc(task.label)}</span>${retries}</div><div class="tl-lane">${bars.join("")}</div><div class="tl-worker mono muted">${esc(workers.join(" → "))}</div>`);
    return row;
  });
  let axis = container.querySelector(".tl-axis");
  if (!axis) {
    axis = document.createElement("div");
    axis.className = "tl-axis";
  }
  setHTML(axis, `<div></div><div><span>${esc(when(t0))}</span><span>${esc(secs(t1 - t0))}</span></div><div>worker</div>`);
  const ids = new Set(tasks.map((t) => t.id));
  for (const key of [...rows.keys()]) if (!ids.has(key)) rows.delete(key);
  arrange(container, [...order, axis]);
}

function qcCharts(renditions, status) {
  const video = renditions.filter((r) => r.kind === "video");
  const all = renditions.filter((r) => r.bitrate_kbps != null);
  if (!renditions.length) {
    // A rejected or failed title is not checked (a failed one is, if it is redriven):
    // promise figures only to a title still on its way.
    if (status === "rejected") return `<div class="empty">Not checked: the title was rejected.</div>`;
    if (status === "failed") return `<div class="empty">Not checked: the title failed before its QC.</div>`;
    return `<div class="empty">QC figures appear when the title is checked.</div>`;
  }
  return `<div class="panel"><h3>VMAF</h3>${barChart(video, "vmaf", (v) => num(v, 1))}</div>
    <div class="panel"><h3>PSNR (Y, dB)</h3>${barChart(video, "psnr", (v) => num(v, 1))}</div>
    <div class="panel"><h3>Bitrate (kbit/s)</h3>${barChart(all, "bitrate_kbps", (v) => num(v, 0))}</div>`;
}

// Plays a title's HLS master playlist in its page's player panel; returns what stops it
// (hls.js loading, the video playing, the media it holds).
function play(id, master) {
  const panel = document.getElementById("player-panel");
  const src = `/api/titles/${encodeURIComponent(id)}/files/${master}`;
  setHTML(panel, `<video id="player" controls muted playsinline></video><div class="muted mono">${esc(master)}</div>`);
  const video = document.getElementById("player");
  let hls = null;
  if (window.Hls && window.Hls.isSupported()) {
    hls = new window.Hls();
    hls.on(window.Hls.Events.ERROR, (_, data) => { if (data.fatal) panel.insertAdjacentHTML("beforeend", `<p class="error-text">player: ${esc(data.details)}</p>`); });
    hls.loadSource(src);
    hls.attachMedia(video);
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = src;
  } else {
    panel.insertAdjacentHTML("beforeend", `<p class="error-text">The player needs hls.js (installed by the project's setup from npm), or a browser that plays HLS.</p>`);
  }
  return () => {
    video.pause();
    if (hls) hls.destroy(); // stops its loading and detaches the video from its media
    else {
      video.removeAttribute("src");
      video.load();
    }
  };
}

function functions() {
  main.innerHTML = `<h1>Functions</h1><div class="toolbar"><input type="search" placeholder="Search functions"></div><div id="list"></div>`;
  const table = new LiveTable(document.getElementById("list"), [
    ["Function", (f) => `<span class="mono">${esc(f.name)}</span><div class="muted mono">${esc(f.handler)}</div>`],
    // A function with no trigger of its own runs when invoked, or as another function's
    // destination (the media app's `fail`, its stages' onFailure).
    ["Triggers", (f) => (f.triggers && f.triggers.length ? f.triggers.map((t) => `<div class="mono">${esc(t)}</div>`).join("") : f.handler == null ? "" : `<span class="muted">none (invoked directly)</span>`)],
    ["Invocations", (f) => esc(f.invocations)],
    ["Errors", (f) => (f.errors ? `<span class="error-text">${esc(f.errors)}</span>` : "0")],
    ["Avg", (f) => duration(f.avg_ms == null ? null : f.avg_ms / 1000)],
    ["Max", (f) => duration(f.max_ms == null ? null : f.max_ms / 1000)],
    ["DLQ", (f) => esc(f.dlq)],
    ["Timeout", (f) => esc(f.timeout_s == null ? "" : `${f.timeout_s} s`)],
    ["Memory", (f) => esc(f.memory_mb == null ? "" : `${f.memory_mb} MB`)],
    // No reserved concurrency: as many at once as there are workers (a function the
    // served app does not declare has no settings at all).
    ["Concurrency", (f) => esc(f.reserved_concurrency ?? (f.handler == null ? "" : "unlimited"))],
  ], { key: (f) => f.name, onClick: (f) => (location.hash = `#/invocations?function=${encodeURIComponent(f.name)}`) });
  searchBox(main, [table]);
  onLive(async () => table.update(await api("/api/functions")));
}

function invocationColumns() {
  return [
    ["Created", (i) => clock(i.created)],
    ["Function", (i) => `<span class="mono">${esc(i.function)}</span>`],
    ["Status", (i) => badge(i.status)],
    // Attempts of this round (a redrive starts a new one) against the budget; the whole
    // history, lost attempts and earlier rounds included, is in the row's detail.
    ["Attempts", (i) => `${esc(i.charged_attempts)}/${esc(i.max_attempts)}${i.attempts !== i.charged_attempts ? ` <span class="muted">(${esc(i.attempts)} in all)</span>` : ""}${i.redrives ? ` <span class="muted">(redriven ${esc(i.redrives)})</span>` : ""}`],
    ["Duration", (i) => duration(i.started && i.finished ? i.finished - i.started : null)],
    ["Worker", (i) => `<span class="mono">${esc(i.worker)}</span>`],
    ["Error", (i) => (i.error ? `<span class="error-text">${esc(i.error.errorType)}: ${esc(i.error.errorMessage)}</span>` : "")],
    ["Request id", (i) => `<span class="mono muted nowrap">${esc(i.id)}</span>`],
  ];
}

async function invocationDetail(inv) {
  const detail = await api(`/api/invocations/${encodeURIComponent(inv.id)}`);
  const attempts = detail.attempt_log.map((a) => `<h3>Attempt ${esc(a.attempt)} ${a.ok ? badge("success") : badge("error")}
      <span class="muted">${esc(secs(a.duration_ms / 1000))} on <span class="mono">${esc(a.worker)}</span></span></h3>
    ${a.error_type ? `<p class="error-text">${esc(a.error_type)}: ${esc(a.error_message)}</p>` : ""}
    <pre>${esc(a.logs || "(no output)")}</pre>`).join("");
  return `<div class="mono muted">request id ${esc(inv.id)}</div>
    ${attempts || `<p class="muted">No attempt has started yet.</p>`}
    ${detail.result != null ? `<h3>Result</h3><pre>${esc(JSON.stringify(detail.result, null, 2))}</pre>` : ""}
    <h3>Event <span class="muted">${esc(detail.event.seq)}</span></h3><pre>${esc(JSON.stringify(detail.event.event, null, 2))}</pre>`;
}

function invocations(params) {
  main.innerHTML = `<h1>Invocations</h1><div class="toolbar">
    <input type="search" placeholder="Filter this page">
    <select id="status"><option value="">any status</option></select>
    <input id="function" type="search" class="narrow" placeholder="function" value="${esc(params.get("function") || "")}">
    <input id="title" type="search" class="narrow" placeholder="title id" value="${esc(params.get("title") || "")}">
    <div class="pager"></div></div><div id="list"></div><div class="pager bottom"></div>`;
  const table = new LiveTable(document.getElementById("list"), invocationColumns(), { key: (i) => i.id, detail: invocationDetail });
  const pager = new Pager(main, table, {
    size: pageSize(params),
    cursor: (i) => i.id,
    path: "/api/invocations",
    query: () => {
      const q = new URLSearchParams();
      for (const name of ["status", "function", "title"]) { const v = document.getElementById(name).value.trim(); if (v) q.set(name, v); }
      return q;
    },
  });
  searchBox(main, [table]);
  fillSelect(document.getElementById("status"), "/api/invocations", "status", params.get("status"));
  for (const name of ["status", "function", "title"]) document.getElementById(name).addEventListener("change", () => pager.go("newest"));
  onLive(() => pager.load());
}

function eventDetail(e) {
  return `<dl class="kv"><dt>Id</dt><dd class="mono">${esc(e.id)}</dd>
    ${e.target ? `<dt>Target</dt><dd class="mono">${esc(e.target)}</dd>` : ""}</dl>
    <pre>${esc(JSON.stringify(e.event, null, 2))}</pre>`;
}

function events(params) {
  main.innerHTML = `<h1>Events</h1><div class="toolbar"><input type="search" placeholder="Filter this page">
    <select id="kind"><option value="">any kind</option></select><div class="pager"></div></div>
    <div id="list"></div><div class="pager bottom"></div>`;
  const table = new LiveTable(document.getElementById("list"), [
    ["Seq", (e) => esc(e.seq)],
    ["Time", (e) => clock(e.time)],
    ["Kind", (e) => esc(e.kind)],
    ["Source", (e) => `<span class="mono">${esc(e.source)}</span>`],
    ["Type", (e) => esc(e.detail_type)],
    ["Summary", (e) => `<span class="mono muted summary">${esc(JSON.stringify(e.event.detail ?? e.event.Records ?? e.event).slice(0, 140))}</span>`],
  ], { key: (e) => e.seq, detail: eventDetail });
  const pager = new Pager(main, table, {
    size: pageSize(params),
    cursor: (e) => e.seq,
    path: "/api/events",
    query: () => {
      const kind = document.getElementById("kind").value;
      return new URLSearchParams(kind ? { kind } : {});
    },
  });
  searchBox(main, [table]);
  fillSelect(document.getElementById("kind"), "/api/events", "kind", params.get("kind"));
  document.getElementById("kind").addEventListener("change", () => pager.go("newest"));
  onLive(() => pager.load());
}

function dlq() {
  main.innerHTML = `<h1>Dead-letter queue</h1><div class="toolbar"><input type="search" placeholder="Search the DLQ">
    <button id="redrive-all">Redrive all</button><span id="redrive-result" class="muted"></span></div><div id="list"></div>`;
  const list = document.getElementById("list");
  const result = document.getElementById("redrive-result");
  const all = document.getElementById("redrive-all");
  const table = new LiveTable(list, [
    ...invocationColumns(),
    ["", (i) => `<button class="secondary redrive" data-id="${esc(i.id)}">Redrive</button>`],
  ], { key: (i) => i.id, detail: invocationDetail, empty: "The DLQ is empty." });
  const load = async () => {
    const rows = await api("/api/dlq?limit=500");
    table.update(rows);
    all.disabled = !rows.length;
  };
  const redrive = async (body) => {
    try {
      const out = await api("/api/dlq/redrive", { method: "POST", body: JSON.stringify(body) });
      result.textContent = `redriven: ${out.redriven}`;
    } catch (e) { result.textContent = e.message; }
    await load();
  };
  list.addEventListener("click", (event) => {
    const button = event.target.closest("button.redrive");
    if (button) { button.disabled = true; redrive({ ids: [button.dataset.id] }); }
  });
  searchBox(main, [table]);
  all.addEventListener("click", () => redrive({}));
  onLive(load);
}

function alertTable(container) {
  return new LiveTable(container, [
    ["Alert", (a) => `<b>${esc(a.name)}</b>${a.key ? ` <span class="mono muted">${esc(a.key)}</span>` : ""}`],
    ["Severity", (a) => badge(a.severity)],
    ["Since", (a) => clock(a.since)],
    ["Value", (a) => esc(figure(a.value))],
    ["Summary", (a) => esc(a.summary)],
  ], { key: (a) => `${a.name}/${a.key}`, empty: "No alert is firing." });
}

function alerts() {
  main.innerHTML = `<h1>Alerts</h1><h2>Firing</h2><div id="firing"></div><h2>Rules</h2><div id="rules"></div>`;
  const firing = alertTable(document.getElementById("firing"));
  const rules = new LiveTable(document.getElementById("rules"), [
    ["Rule", (r) => `<b>${esc(r.name)}</b>`],
    ["Severity", (r) => badge(r.severity)],
    ["Condition", (r) => `<span class="mono">${esc(r.condition)}</span>`],
    ["Webhook", (r) => `<span class="mono">${esc(r.webhook || "")}</span>`],
  ], { key: (r) => r.name, empty: "No alert rules." });
  onLive(async () => {
    const data = await api("/api/alerts");
    firing.update(data.firing);
    rules.update(data.rules);
  });
}

// -- routing ------------------------------------------------------------------------------

function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const parts = (path || "/").split("/").filter(Boolean);
  const params = new URLSearchParams(query || "");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === `#/${parts[0] || ""}`);
  const title = parts[0] === "titles" && parts[1] ? decodeURIComponent(parts[1]) : null;
  leave();
  connect(title);
  if (title) return titlePage(title);
  const pages = { "": overview, titles, functions, invocations, events, dlq, alerts };
  (pages[parts[0] || ""] || overview)(params);
}

window.addEventListener("hashchange", route);
window.addEventListener("resize", () => redraw && redraw());
route();
