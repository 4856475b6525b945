// The reelay dashboard: one page, routed by the URL hash, fed by /api and by the
// server-sent events of /api/live (one point a second, no page reloads).
//
// Live parts are updated in place: a table row or a summary is rewritten only when what
// it shows changed, so what a user selects or opens survives the updates.
//
// The installed apps add their own pages: the server serves each app's page files under
// /apps/NAME/ and loads them after this script, and they register their pages, nav
// links and overview sections on `window.reelay` (see the end of this file), drawing
// with the helpers it exports. Routing starts once every script has run.
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

// `follow`: the app entity the stream follows ({param, id}: the stream's ?param=id, whose
// detail each message carries under `param`), or null.
const live = { points: [], latest: null, listeners: new Set(), source: null, follow: null, received: null, retry: null };
let redraw = null; // what the page redraws when the window's size changes
let following = null; // what the page being drawn follows (see `follow`)

function connect(follow) {
  const query = follow ? `?${new URLSearchParams({ [follow.param]: follow.id })}` : "";
  const was = live.follow;
  if (live.source && (was ? `?${new URLSearchParams({ [was.param]: was.id })}` : "") === query) return;
  if (live.source) live.source.close();
  clearTimeout(live.retry);
  // What the newest message says of the entity followed came from the stream being
  // closed: the next page must not draw it as its own, so it waits for its own stream's
  // message (the rest of the message, the same on every stream, is still shown meanwhile).
  if (live.latest && was) live.latest = { ...live.latest, [was.param]: undefined };
  live.follow = follow;
  const source = new EventSource(`/api/live${query}`);
  source.onopen = () => connected(true);
  source.onerror = () => {
    connected(false);
    // EventSource retries a dropped connection itself, but gives up on an HTTP error
    // (a server that is starting again): keep trying.
    if (source.readyState === EventSource.CLOSED) {
      live.retry = setTimeout(() => {
        if (live.source === source) { live.source = null; connect(live.follow); }
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

// The page being drawn follows one of an app's entities (follow(param, id)): the live
// stream is opened with ?param=id, and each message carries the entity's
// detail under `param` (undefined until that stream's first message; null: no such one).
function follow(param, id) {
  following = { param, id };
  connect(following);
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

function onResize(draw) {
  redraw = draw;
}

// -- charts -------------------------------------------------------------------------------

// The series' colours, in order (a chart with more series than these starts again).
const COLORS = ["#2f6fde", "#d4413a", "#23945a", "#d98b12", "#8a4fd0", "#1a9bb0", "#c2478f", "#6b7385"];

// A chart's legend: each item ({name, color, mark?}) a coloured mark ("■" unless given)
// and its name.
const legend = (items) => `<div class="legend">${items.map((i) => `<span class="nowrap"><span style="color:${i.color}">${i.mark || "■"}</span> ${esc(i.name)}</span>`).join(" &nbsp;")}</div>`;

// A line chart over the live points (series: {name, key, color?}), drawn at the size its box has on screen (a
// stretched drawing would squash its text), again whenever that size changes.
function lineChart(heading, series, format) {
  const color = (s, i) => s.color || COLORS[i];
  const panel = document.createElement("div");
  panel.className = "panel chart";
  const names = series.length > 1 ? legend(series.map((s, i) => ({ name: s.name, color: color(s, i) }))) : "";
  panel.innerHTML = `<h3>${esc(heading)}<span class="now"></span></h3><svg role="img" aria-label="${esc(heading)}"></svg>${names}`;
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

// Ticks for an axis from `lo` to `hi`: about `count` round values (1, 2 or 5 times a
// power of ten apart); on a log axis (`lo`, `hi` and the ticks are values, not their
// logarithms) 1, 2 and 5 of each decade, fewer where they would crowd, more where a
// range within one decade would get fewer than two.
function ticks(lo, hi, count, log = false) {
  if (log) {
    for (const steps of [[1, 2, 5], [1, 3], [1]]) {
      const found = [];
      for (let decade = 10 ** Math.floor(Math.log10(lo)); decade <= hi; decade *= 10) {
        found.push(...steps.map((s) => s * decade).filter((v) => v >= lo && v <= hi));
      }
      if (found.length <= count) return found.length >= 2 ? found : ticks(lo, hi, Math.min(count, 4));
    }
  }
  const raw = (hi - lo) / Math.max(count, 1), power = 10 ** Math.floor(Math.log10(raw));
  const step = power * ([1, 2, 5, 10].find((m) => power * m >= raw) || 10);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

// An x-y chart drawn into `svg` at the size it has on screen (draw it again when that
// changes: a stretched drawing would squash its text). `lines`: {name, color, points:
// [{x, y, tip?}], width?, dash?, dots?, className?}, each a polyline (its points dots
// where `dots`, with their `tip` as tooltip). `marks`: {x, y, label, short?, tip?},
// larger points with their labels, placed clear of one another (see below). `band`:
// [low, high] of y, shaded. `x`, `y`: the axes, {label, format, log?, min?, max?}
// (min and max bound the range shown).
function xyChart(svg, { x, y, lines = [], marks = [], band = null }) {
  const box = svg.getBoundingClientRect();
  const w = Math.max(Math.round(box.width), 200), h = Math.max(Math.round(box.height), 120);
  const left = 46, right = 14, top = 10, bottom = 40;
  const points = [...lines.flatMap((l) => l.points), ...marks];
  if (!points.length) {
    svg.innerHTML = "";
    return;
  }
  const range = (axis, values) => {
    const lo = Math.min(...values), hi = Math.max(...values);
    if (axis.log) return [lo / 1.3, hi * 1.3];
    const pad = Math.max((hi - lo) * 0.08, 1);
    return [Math.max(lo - pad, axis.min ?? -Infinity), Math.min(hi + pad, axis.max ?? Infinity)];
  };
  const [x0, x1] = range(x, points.map((p) => p.x));
  const [y0, y1] = range(y, [...points.map((p) => p.y), ...(band || [])]);
  const f = (v, a, b) => (x.log ? Math.log(v / a) / Math.log(b / a) : (v - a) / (b - a));
  const px = (v) => left + f(v, x0, x1) * (w - left - right);
  const py = (v) => h - bottom - ((v - y0) / (y1 - y0)) * (h - top - bottom);
  const at = (p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`;
  const tip = (p) => (p.tip ? `<title>${esc(p.tip)}</title>` : "");
  const xTicks = ticks(x0, x1, Math.floor((w - left - right) / 60), x.log);
  const yTicks = ticks(y0, y1, Math.floor((h - top - bottom) / 32));
  const grid = [
    ...xTicks.map((v) => `<line class="grid-line" x1="${px(v)}" x2="${px(v)}" y1="${top}" y2="${h - bottom}"/>
      <text class="label" x="${px(v)}" y="${h - bottom + 13}" text-anchor="middle">${esc(x.format(v))}</text>`),
    ...yTicks.map((v) => `<line class="grid-line" x1="${left}" x2="${w - right}" y1="${py(v)}" y2="${py(v)}"/>
      <text class="label" x="${left - 5}" y="${py(v) + 3.5}" text-anchor="end">${esc(y.format(v))}</text>`),
  ];
  const shade = band ? `<rect class="band" x="${left}" width="${w - left - right}" y="${py(Math.min(band[1], y1))}" height="${Math.max(0, py(Math.max(band[0], y0)) - py(Math.min(band[1], y1)))}"/>` : "";
  const drawn = lines.map((l) => `<g class="series ${esc(l.className || "")}" data-name="${esc(l.name)}">
    <polyline points="${l.points.map(at).join(" ")}" stroke="${l.color}" stroke-width="${l.width || 1.8}"${l.dash ? ` stroke-dasharray="${l.dash}"` : ""}/>
    ${l.dots ? l.points.map((p) => `<circle class="dot" cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3.5" fill="${l.color}">${tip(p)}</circle>`).join("") : ""}</g>`);
  // Each label at the first of these places (dx, dy, anchor) that covers the least: it
  // must stay inside the plot and off the other labels and marks, then keeps off the
  // dots and lines (the lines sampled every few pixels) where it can. A label with no
  // such place is shortened (its `short`), else left out: its mark's tooltip says it.
  // A label put further off is tied to its mark by a thin line.
  const places = [[-9, -7, "end"], [9, 13, "start"], [-10, 4, "end"], [10, 4, "start"], [9, -7, "start"], [-9, 15, "end"],
    [0, -11, "middle"], [0, 19, "middle"], [-9, -21, "end"], [9, 27, "start"], [-9, -35, "end"], [9, 41, "start"]];
  const taken = marks.map((m) => ({ x0: px(m.x) - 6, x1: px(m.x) + 6, y0: py(m.y) - 6, y1: py(m.y) + 6 }));
  const ink = lines.flatMap((l) => l.points.map((p) => [px(p.x), py(p.y), l.dots ? 20 : 1]).flatMap((a, i, all) => {
    if (!i) return [a];
    const b = all[i - 1], n = Math.ceil(Math.hypot(a[0] - b[0], a[1] - b[1]) / 4);
    return [...Array.from({ length: n }, (_, k) => [b[0] + ((a[0] - b[0]) * k) / n, b[1] + ((a[1] - b[1]) * k) / n, 1]), a];
  }));
  const texts = marks.flatMap((m) => [m.label, m.short || m.label]);
  svg.innerHTML = texts.map((t) => `<text class="mark-label">${esc(t)}</text>`).join(""); // to measure them
  const widths = new Map([...svg.querySelectorAll("text")].map((t, i) => [texts[i], t.getComputedTextLength()]));
  const labels = marks.map((m) => {
    const mx = px(m.x), my = py(m.y);
    for (const text of new Set([m.label, m.short || m.label])) {
      const width = widths.get(text);
      const boxOf = ([dx, dy, anchor]) => {
        const x0 = mx + dx - (anchor === "end" ? width : anchor === "middle" ? width / 2 : 0);
        return { x0, x1: x0 + width, y0: my + dy - 10, y1: my + dy + 3 };
      };
      const cost = (b) => (b.x0 < left || b.x1 > w - right || b.y0 < top || b.y1 > h - bottom ? 100 : 0)
        + 10 * taken.filter((t) => t.x0 < b.x1 && b.x0 < t.x1 && t.y0 < b.y1 && b.y0 < t.y1).length
        + Math.min(9, ink.reduce((sum, [ix, iy, weight]) => sum + (ix > b.x0 - 2 && ix < b.x1 + 2 && iy > b.y0 - 2 && iy < b.y1 + 2 ? weight : 0), 0) / 10);
      const place = places.reduce((best, p) => (cost(boxOf(p)) < cost(boxOf(best)) ? p : best));
      if (cost(boxOf(place)) >= 10) continue;
      taken.push(boxOf(place));
      const lead = Math.abs(place[1]) > 20 ? `<line class="leader" x1="${mx.toFixed(1)}" y1="${my.toFixed(1)}" x2="${(mx + place[0]).toFixed(1)}" y2="${(my + place[1] - 4).toFixed(1)}"/>` : "";
      return `${lead}<text class="mark-label" x="${(mx + place[0]).toFixed(1)}" y="${(my + place[1]).toFixed(1)}" text-anchor="${place[2]}">${esc(text)}</text>`;
    }
    return "";
  });
  const marked = marks.map((m, i) => `<g class="mark">${labels[i]}<circle cx="${px(m.x).toFixed(1)}" cy="${py(m.y).toFixed(1)}" r="5.5">${tip(m)}</circle></g>`);
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.innerHTML = `${shade}${grid.join("")}
    <line class="axis" x1="${left}" y1="${h - bottom}" x2="${w - right}" y2="${h - bottom}"/>
    <line class="axis" x1="${left}" y1="${top}" x2="${left}" y2="${h - bottom}"/>
    <text class="axis-label" x="${(left + w - right) / 2}" y="${h - 6}" text-anchor="middle">${esc(x.label)}</text>
    <text class="axis-label" transform="rotate(-90)" x="${-(top + h - bottom) / 2}" y="12" text-anchor="middle">${esc(y.label)}</text>
    ${drawn.join("")}${marked.join("")}`;
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
    <h2>Alerts firing</h2><div id="alerts"></div><div id="sections"></div>
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
  onResize(() => { for (const c of charts) c.draw(); });
  const alerts = alertTable(document.getElementById("alerts"));
  for (const draw of sections) { // the apps' own sections
    const section = document.createElement("div");
    document.getElementById("sections").append(section);
    draw(section);
  }
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
    failures.update(data.failures || []);
    const error = document.getElementById("observer-error");
    error.hidden = !data.error;
    error.textContent = data.error || "";
  });
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
    ${filters.map((f) => `<input id="${esc(f.param)}" type="search" class="narrow" placeholder="${esc(f.placeholder)}" value="${esc(params.get(f.param) || "")}">`).join("")}
    <div class="pager"></div></div><div id="list"></div><div class="pager bottom"></div>`;
  const names = ["status", "function", ...filters.map((f) => f.param)];
  const table = new LiveTable(document.getElementById("list"), invocationColumns(), { key: (i) => i.id, detail: invocationDetail });
  const pager = new Pager(main, table, {
    size: pageSize(params),
    cursor: (i) => i.id,
    path: "/api/invocations",
    query: () => {
      const q = new URLSearchParams();
      for (const name of names) { const v = document.getElementById(name).value.trim(); if (v) q.set(name, v); }
      return q;
    },
  });
  searchBox(main, [table]);
  fillSelect(document.getElementById("status"), "/api/invocations", "status", params.get("status"));
  for (const name of names) document.getElementById(name).addEventListener("change", () => pager.go("newest"));
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

// A dispatcher says it is alive every 5 s while it serves (NODE_BEAT_S in
// runtime/dispatcher.py); one not seen for three beats is stale. A worker is seen when it
// starts an attempt, at most once a beat, so an idle worker goes stale too.
const NODE_STALE_S = 15;

// How long ago a time was, as people say it ("3 s ago", "2 min ago").
function agoText(s) {
  s = Math.max(0, s);
  const [n, unit] = s < 60 ? [Math.round(s), "s"] : s < 3600 ? [Math.floor(s / 60), "min"] : s < 86400 ? [Math.floor(s / 3600), "h"] : [Math.floor(s / 86400), "d"];
  return `${n} ${unit} ago`;
}

// A time shown as how long ago it was, its date and time in the tooltip. `tick` keeps its
// text current in place, so the row is not rewritten every second (an open tooltip
// stays open).
const ago = (t) => `<span class="ago nowrap" data-at="${esc(t)}" title="${esc(new Date(t * 1000).toLocaleString())}"></span>`;

function tick(container, now) {
  for (const span of container.querySelectorAll(".ago[data-at]")) {
    const text = agoText(now - Number(span.dataset.at));
    if (span.textContent !== text) span.textContent = text;
  }
}

function nodes() {
  main.innerHTML = `<h1>Nodes</h1><div class="toolbar"><input type="search" placeholder="Search nodes"></div>
    <div id="list"></div><p class="muted note">A dispatcher is seen every 5 s while it serves; a worker when it starts an
    attempt, so an idle worker shows as stale too. Nodes seen in the last day are listed.</p>`;
  const list = document.getElementById("list");
  const table = new LiveTable(list, [
    ["Role", (n) => esc(n.kind)],
    ["Host", (n) => `<span class="mono">${esc(n.host)}</span>`],
    ["PID", (n) => `<span class="mono">${esc(n.pid)}</span>`],
    ["Version", (n) => `<span class="mono">${esc(n.version)}</span>`],
    ["Status", (n) => (n.stale ? `<span class="badge stale" title="not seen for over ${NODE_STALE_S} s">stale</span>` : badge("alive"))],
    ["Last seen", (n) => ago(n.seen)],
    ["First seen", (n) => ago(n.started)],
  ], { key: (n) => n.name, empty: "No dispatcher or worker has been seen in the last day." });
  searchBox(main, [table]);
  // Dispatchers first, then by host and pid: a row stays where it is as its node is seen.
  const rank = (n) => (n.kind === "dispatcher" ? 0 : 1);
  const order = (a, b) => rank(a) - rank(b) || a.kind.localeCompare(b.kind) || a.host.localeCompare(b.host)
    || (a.pid ?? 0) - (b.pid ?? 0) || a.name.localeCompare(b.name);
  onLive(async (data) => {
    const now = data.point.time; // the server's clock, as the times it records
    let found;
    try {
      found = await api("/api/nodes");
    } catch (e) {
      return table.show(`<p class="error-text">${esc(e.message)}</p>`);
    }
    table.update(found.map((n) => ({ ...n, stale: now - n.seen > NODE_STALE_S })).sort(order));
    tick(list, now);
  });
}

// -- routing ------------------------------------------------------------------------------

const pages = { "": overview, functions, invocations, events, dlq, alerts, nodes }; // and the apps'
const sections = []; // the apps' sections of the overview
const filters = []; // the apps' filters of the invocations ({param, placeholder})

function decode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part; // not percent-encoded as it should be: taken as it is
  }
}

function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const parts = (path || "/").split("/").filter(Boolean);
  const params = new URLSearchParams(query || "");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === `#/${parts[0] || ""}`);
  leave();
  following = null;
  const page = Object.hasOwn(pages, parts[0] || "") ? pages[parts[0] || ""] : overview;
  page(params, parts.slice(1).map(decode));
  connect(following); // the page followed an entity, or none
}

// -- what the apps' page files use ----------------------------------------------------------

// Scripts loaded on demand (an app's library), each once: a promise of its loading.
const scripts = new Map();

function script(src) {
  if (!scripts.has(src)) {
    scripts.set(src, new Promise((resolve, reject) => {
      const element = document.createElement("script");
      element.src = src;
      element.onload = resolve;
      element.onerror = () => reject(new Error(`could not load ${src}`));
      document.head.append(element);
    }));
  }
  return scripts.get(src);
}

let navAfter = document.querySelector("nav a"); // the apps' links follow the overview's

window.reelay = Object.freeze({
  // Registering: a page at #/NAME (render(params, parts): the URL's query, and the
  // decoded path parts after NAME), a link in the nav, a section of the overview
  // (render(element): an empty element of its own, between the firing alerts and the
  // latest failures), and a filter of the invocations page (a query parameter that
  // /api/invocations takes, such as an app entity's).
  page(name, render) {
    if (Object.hasOwn(pages, name)) throw new Error(`the dashboard page ${JSON.stringify(name)} is registered twice`);
    pages[name] = render;
  },
  nav(label, hash) {
    const link = document.createElement("a");
    link.href = hash;
    link.textContent = label;
    navAfter.after(link);
    navAfter = link;
  },
  overviewSection(render) {
    sections.push(render);
  },
  invocationFilter(param, placeholder) {
    filters.push({ param, placeholder });
  },
  // Drawing: the page's <main>, the API, the live stream, and what the core's pages use.
  main, api, choices, fillSelect, onLive, follow, onLeave, onResize, script,
  esc, badge, when, clock, duration, secs, num, figure,
  setHTML, arrange, LiveTable, Pager, pageSize, searchBox,
  lineChart, barChart, xyChart, legend, COLORS,
});

window.addEventListener("hashchange", route);
window.addEventListener("resize", () => redraw && redraw());
// The apps' page files are deferred scripts after this one: every one has run (and
// registered its pages) by the time the document is loaded.
document.addEventListener("DOMContentLoaded", route);
