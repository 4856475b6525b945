// The analytics app's dashboard page (#/analytics): each aggregate's newest windows,
// drawn live from the server-sent events stream (each message carries every aggregate
// under `aggregates`: its top groups per metric, window by window), the newest window's
// groups as bars, the aggregate's watermark and counters; and a SQL console over
// POST /api/analytics/query. Also a section of the overview. The reelay server serves
// this file (the analytics plugin's `pages`) under /apps/analytics/; it draws with what
// the dashboard exports on `window.reelay` (web/static/app.js).
"use strict";

(() => {
  const { api, barChart, esc, figure, legend, main, onLive, onResize, setHTML, xyChart, COLORS, LiveTable } = window.reelay;

  // Big figures short (45.9M), small ones as they are.
  const si = (v) => {
    if (v == null) return "–";
    const a = Math.abs(v);
    for (const [size, unit] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) if (a >= size) return `${figure(v / size)}${unit}`;
    return figure(v);
  };
  const pad = (n) => String(n).padStart(2, "0");
  const clockOf = (t, seconds) => {
    const d = new Date(t * 1000);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}${seconds ? `:${pad(d.getSeconds())}` : ""}`;
  };
  const windowText = (a) => {
    const { size, hop } = a.window;
    const span = (s) => (s % 3600 === 0 ? `${s / 3600} h` : s % 60 === 0 ? `${s / 60} min` : `${s} s`);
    return size === hop ? `${span(size)} tumbling` : `${span(size)} every ${span(hop)}`;
  };
  const byText = (a) => (a.dimensions.length ? a.dimensions.join(" → ") : "all rows");

  // One aggregate's section: made once, then updated with each message.
  function section(a) {
    const element = document.createElement("section");
    element.className = "aggregate";
    element.dataset.name = a.name;
    element.innerHTML = `<h2><span class="mono">${esc(a.name)}</span> <span class="muted about"></span></h2>
      <div class="aggregate-grid">
        <div class="panel chart plot"><h3><span class="heading"></span>
          <select aria-label="metric">${a.metrics.map((m) => `<option value="${esc(m.name)}">${esc(m.name)}</option>`).join("")}</select></h3>
          <svg role="img"></svg><div class="legend-box"></div></div>
        <div class="side">
          <div class="panel"><h3>Newest window <span class="newest muted"></span></h3><div class="bars-box"></div></div>
          <div class="panel"><dl class="kv facts"></dl></div>
        </div>
      </div>`;
    const select = element.querySelector("select");
    const svg = element.querySelector("svg");
    let latest = a;
    const draw = () => {
      const agg = latest;
      const metric = select.value;
      const spec = agg.metrics.find((m) => m.name === metric) || agg.metrics[0];
      const series = (agg.series[metric] || []);
      const windows = agg.windows;
      const few = windows.length <= 3;
      // A window the watermark has not passed is still open: its segment is dashed.
      const open = (w) => agg.watermark == null || w + agg.window.size > agg.watermark;
      const lines = series.flatMap((s, i) => {
        const color = COLORS[i % COLORS.length];
        // x: the window's start counted in hops, so that the axis's round ticks fall on windows
        const points = s.values.map((v, j) => (v == null ? null : { x: windows[j] / agg.window.hop, y: v, start: windows[j], tip: `${s.group} · ${clockOf(windows[j])} · ${si(v)}${open(windows[j]) ? " (open)" : ""}` })).filter(Boolean);
        const closed = points.filter((p) => !open(p.start));
        const rest = points.filter((p) => open(p.start));
        const drawn = [{ name: s.group, color, dots: few, points: closed }];
        if (rest.length) drawn.push({ name: s.group, color, dots: few, dash: "5 4", className: "open", points: [...closed.slice(-1), ...rest] });
        return drawn.filter((l) => l.points.length);
      });
      const what = spec.kind === "quantile" ? `p${figure(100 * spec.q)} of ${spec.field}` : spec.kind === "count" ? (spec.field ? `count of ${spec.field}` : "count") : `${spec.kind} of ${spec.field}`;
      element.querySelector(".heading").textContent = `${metric} (${what}) per window, by ${byText(agg)}`;
      svg.setAttribute("aria-label", `${agg.name}: ${metric} per ${windowText(agg)} window, top ${lines.length} groups`);
      const named = [...new Map(lines.map((l) => [l.name, l.color])).entries()];
      const dashed = lines.some((l) => l.className === "open") ? `<div class="legend">╌ &nbsp;open windows: the watermark has not passed their end</div>` : "";
      setHTML(element.querySelector(".legend-box"), named.length ? legend(named.map(([name, color]) => ({ name, color }))) + dashed : "");
      if (!lines.length) {
        svg.innerHTML = `<text class="label" x="12" y="24">No windows yet: put records on ${esc(agg.stream)}.</text>`;
      } else {
        const hop = agg.window.hop;
        // Ticks fall where the axis puts them: only those on a window's start are named.
        const onWindow = (v) => Math.abs(v - Math.round(v)) < 1e-6;
        xyChart(svg, {
          x: { label: `window start (${windowText(agg)})`, format: (v) => (onWindow(v) ? clockOf(Math.round(v) * hop, hop % 60 !== 0) : "") },
          y: { label: "", format: si, min: 0 }, // (the heading names it: wide ticks leave no room)
          band: [0, 0], // (nothing shaded: the y axis starts at zero)
          lines,
        });
      }
      const newest = windows.length ? windows[windows.length - 1] : null;
      const index = agg.metrics.findIndex((m) => m.name === metric);
      const rows = agg.latest.map((r) => ({ name: r.group.map((g) => g ?? "–").join(" → ") || "all", value: r.values[index] }))
        .sort((x, y) => (y.value ?? -Infinity) - (x.value ?? -Infinity)).slice(0, 10);
      setHTML(element.querySelector(".newest"), newest == null ? "" : `${esc(clockOf(newest))}–${esc(clockOf(newest + agg.window.size))}`);
      setHTML(element.querySelector(".bars-box"), rows.length ? barChart(rows, "value", si) : `<div class="empty">Nothing yet.</div>`);
    };
    select.addEventListener("change", draw);
    element.update = (agg) => {
      latest = agg;
      setHTML(element.querySelector(".about"), esc(agg.description || ""));
      const watermark = agg.watermark == null ? "–" : new Date(agg.watermark * 1000).toLocaleTimeString();
      setHTML(element.querySelector(".facts"), `
        <dt>Stream</dt><dd class="mono">${esc(agg.stream)} <span class="muted">(${esc(agg.format)}, ${agg.shards} ${agg.shards === 1 ? "shard" : "shards"})</span></dd>
        <dt>Windows</dt><dd>${esc(windowText(agg))}, lateness ${esc(figure(agg.lateness))} s</dd>
        <dt>Watermark</dt><dd>${esc(watermark)}</dd>
        <dt>Rows</dt><dd>${esc(si(agg.rows))} <span class="muted">of ${esc(si(agg.records))} records</span></dd>
        <dt>Late</dt><dd class="${agg.late ? "warn-text" : ""}">${esc(si(agg.late))} <span class="muted">→ <span class="mono">${esc(agg.deadLetter)}</span></span></dd>
        <dt>Unreadable</dt><dd class="${agg.unreadable ? "error-text" : ""}">${esc(si(agg.unreadable))}</dd>`);
    };
    element.draw = draw;
    element.update(a);
    return element;
  }

  function sqlConsole(container) {
    container.innerHTML = `<div class="panel sql">
        <textarea spellcheck="false" aria-label="SQL"></textarea>
        <div class="toolbar"><button>Run</button><span class="muted">Ctrl+Enter runs it · each aggregate is a table: window_start, window_end (UTC), its dimensions, its metrics</span></div>
        <div class="answer"></div></div>`;
    const text = container.querySelector("textarea");
    const answer = container.querySelector(".answer");
    const run = async () => {
      setHTML(answer, `<p class="muted">Running…</p>`);
      try {
        const found = await api("/api/analytics/query", { method: "POST", body: JSON.stringify({ sql: text.value, limit: 500 }) });
        const cell = (v) => (v == null ? "" : typeof v === "number" ? esc(Number.isInteger(v) ? v : figure(v)) : esc(typeof v === "object" ? JSON.stringify(v) : v));
        setHTML(answer, found.rows.length
          ? `<table><thead><tr>${found.columns.map((c, i) => `<th title="${esc(found.types[i])}">${esc(c)}</th>`).join("")}</tr></thead>
             <tbody>${found.rows.map((r) => `<tr>${r.map((v, i) => `<td data-label="${esc(found.columns[i])}">${cell(v)}</td>`).join("")}</tr>`).join("")}</tbody></table>
             <p class="muted">${found.rows.length} ${found.rows.length === 1 ? "row" : "rows"}${found.truncated ? " (more left out)" : ""}</p>`
          : `<div class="empty">No rows.</div>`);
      } catch (e) {
        setHTML(answer, `<pre class="error-text query-error">${esc(e.message)}</pre>`);
      }
    };
    container.querySelector("button").addEventListener("click", run);
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) run();
    });
    return (aggregates) => {
      if (text.value || !aggregates.length) return;
      const a = aggregates.find((x) => x.name === "flows_by_app") || aggregates[0];
      const first = a.metrics.length ? a.metrics[0].name : "window_start";
      text.value = `SELECT *\nFROM ${a.name}\nORDER BY window_start DESC, ${first} DESC\nLIMIT 20`;
    };
  }

  function page() {
    main.innerHTML = `<h1>Analytics</h1>
      <p class="muted lead">Aggregates over streams, each batch folded in as it arrives; the charts follow the newest windows live. Query them with SQL below, or with <span class="mono">reelay query</span>.</p>
      <div id="aggregates"><div class="empty">Loading…</div></div>
      <h2>SQL</h2><div id="sql"></div>`;
    const box = document.getElementById("aggregates");
    const sections = new Map();
    const suggest = sqlConsole(document.getElementById("sql"));
    onResize(() => { for (const s of sections.values()) s.draw(); });
    onLive((data) => {
      const aggregates = data.aggregates || [];
      if (!aggregates.length) {
        sections.clear();
        setHTML(box, `<div class="panel empty">No aggregate has results yet. Run <span class="mono">reelay analytics demo</span>, or serve an app whose function is <span class="mono">reelay.analytics.handler.aggregate</span> and put records on its streams.</div>`);
        return;
      }
      const order = aggregates.map((a) => {
        let s = sections.get(a.name);
        if (!s) {
          s = section(a);
          sections.set(a.name, s);
        } else {
          s.update(a);
        }
        return s;
      });
      if (!box.querySelector("section")) box.innerHTML = "";
      window.reelay.arrange(box, order);
      for (const s of order) s.draw(); // drawn at the size it has, now it is on the page
      suggest(aggregates);
    });
  }

  window.reelay.nav("Analytics", "#/analytics");
  window.reelay.page("analytics", page);
  window.reelay.overviewSection((element) => {
    element.innerHTML = `<div id="analytics-overview"></div>`;
    const table = new LiveTable(element.querySelector("#analytics-overview"), [
      ["Aggregate", (a) => `<a class="mono" href="#/analytics">${esc(a.name)}</a>`],
      ["Stream", (a) => `<span class="mono">${esc(a.stream)}</span>`],
      ["Windows", (a) => esc(windowText(a))],
      ["Watermark", (a) => esc(a.watermark == null ? "–" : new Date(a.watermark * 1000).toLocaleTimeString())],
      ["Rows", (a) => esc(si(a.rows))],
      ["Late", (a) => esc(si(a.late))],
    ], { key: (a) => a.name, empty: "" });
    onLive((data) => {
      const aggregates = data.aggregates || [];
      if (aggregates.length && !element.querySelector("h2")) element.insertAdjacentHTML("afterbegin", "<h2>Analytics</h2>");
      if (aggregates.length) table.update(aggregates);
    });
  });
})();
