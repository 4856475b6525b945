// The media app's dashboard pages: the titles list (#/titles), a title's page
// (#/titles/ID: its summary, the timeline of its tasks, its QC figures, how its
// per-title ladder was made and a player of its HLS master playlist), the Titles
// section of the overview and the title filter of the invocations page. The reelay
// server serves this file (the media plugin's `pages`) under /apps/media/ and the
// dashboard loads it at start; it draws with what the dashboard exports on
// `window.reelay` (web/static/app.js).
"use strict";

(() => {
  const { api, arrange, badge, barChart, clock, esc, figure, follow, main, num, onLeave, onLive, onResize, secs, setHTML, when } = window.reelay;
  const { COLORS, LiveTable, legend, script, searchBox, xyChart } = window.reelay;

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
    follow("title", id); // the live stream sends this title's detail, as data.title
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
          <h2>Quality and bitrate per rendition</h2><div class="grid" id="qc"></div>
          <div id="per-title"></div>`;
        shown = "title";
        tasks = new Map();
        const made = document.getElementById("per-title");
        onResize(() => made.draw && made.draw());
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
      ladderChart(document.getElementById("per-title"), report.per_title);
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
    return `<div class="panel"><h3>Fidelity VMAF (against the source at the rendition's size)</h3>${barChart(video, "fidelity_vmaf", (v) => num(v, 1))}</div>
      <div class="panel"><h3>Display VMAF (upscaled to the display size)</h3>${barChart(video, "display_vmaf", (v) => num(v, 1))}</div>
      <div class="panel"><h3>PSNR (Y, dB)</h3>${barChart(video, "psnr", (v) => num(v, 1))}</div>
      <div class="panel"><h3>Bitrate (kbit/s)</h3>${barChart(all, "bitrate_kbps", (v) => num(v, 0))}</div>`;
  }

  // How a per-title ladder was made (the report's `per_title`, the title's ladder.json):
  // each resolution's trial encodes as a line of (bitrate, display VMAF), their hull
  // (per codec; a second codec's lines dashed) and the rungs picked on it, over the
  // band of VMAF the rungs aim at. Drawn when it changes, and again (the container's
  // `draw`) when the window's size does; a title with no per-title ladder shows nothing.
  function ladderChart(container, made) {
    if (!made) {
      container.draw = null;
      return setHTML(container, "");
    }
    const codecs = Object.keys(made.curves || {});
    const heights = [...new Set(codecs.flatMap((c) => Object.keys(made.curves[c]).map(Number)))].sort((a, b) => a - b);
    const color = (h) => COLORS[heights.indexOf(Number(h)) % COLORS.length];
    const dash = (c) => (codecs.indexOf(c) ? "6 4" : null);
    const kbps = (v) => `${num(v, 0)} kbit/s`;
    const at = (p, what) => ({ x: p.bitrate_kbps, y: p.vmaf, tip: `${what} · CRF ${p.crf} · ${kbps(p.bitrate_kbps)} · VMAF ${num(p.vmaf, 1)}${p.measured ? "" : " (predicted)"}` });
    const lines = codecs.flatMap((c) => Object.entries(made.curves[c]).map(([h, ps]) => (
      { name: `${h}p ${c}`, color: color(h), dash: dash(c), dots: true, points: ps.map((p) => at(p, `${h}p ${c}`)) })));
    const hulls = codecs.filter((c) => made.hull[c]).map((c) => (
      { name: codecs.length > 1 ? `hull ${c}` : "hull", className: "hull", color: "#1d2330", width: 3.5, dash: dash(c), points: made.hull[c].map((p) => at(p, "hull")) }));
    const marks = codecs.flatMap((c) => (made.picks[c] || []).map((p) => {
      const rung = (made.ladder || []).find((r) => r.codec === p.codec && r.height === p.height && r.crf === p.crf);
      const name = rung ? rung.name : `${p.height}p`;
      return { ...at(p, `rung ${name}`), label: `${name} · ${kbps(p.bitrate_kbps)}`, short: name };
    }));
    const spec = made.spec || {}, targets = made.targets || [];
    const band = spec.targets && spec.targets.length ? [Math.min(...targets), Math.max(...targets)] : spec.vmaf;
    const aim = spec.targets && spec.targets.length
      ? `Rungs aimed at display VMAF ${targets.map(figure).join(", ")} (shaded)`
      : band ? `Target display VMAF ${figure(band[0])}–${figure(band[1])} (shaded): up to ${spec.max_rungs} rungs, at ${targets.map(figure).join(", ")}` : "";
    const sampled = made.sampled_share ? `, ${figure(100 * made.sampled_share)} % of the title` : "";
    const count = (n, what) => `${n} ${what}${n === 1 ? "" : "s"}`;
    const caption = `${aim}${aim ? "; each" : "Each"} rung is the cheapest point of the hull reaching its target. From ${count((made.trials || []).length, "trial encode")} of ${count((made.windows || []).length, "sample window")}${sampled}.`;
    const heading = "Display VMAF against bitrate, per resolution";
    const label = `Per-title ladder: display VMAF against bitrate of each resolution's trial encodes, their hull, and the ${marks.length} rungs picked on it`;
    const html = `<h2>Per-title ladder</h2><div class="panel chart plot"><h3>${esc(heading)}</h3>
      <svg role="img" aria-label="${esc(label)}"></svg>
      ${legend([...lines.map((l) => ({ name: l.name, color: l.color })), ...hulls.map((l) => ({ name: l.name, color: l.color, mark: "━" })), { name: "rung", color: "#1d2330", mark: "●" }])}
      <p class="caption">${esc(caption)}</p></div>`;
    if (container.shownHTML === html) return; // drawn, and drawn again on resize
    setHTML(container, html);
    const svg = container.querySelector("svg");
    container.draw = () => xyChart(svg, {
      x: { label: "bitrate (kbit/s, log scale)", log: true, format: (v) => (v >= 1000 ? `${figure(v / 1000)}k` : figure(v)) },
      y: { label: "display VMAF", format: (v) => num(v, 0), min: 0, max: 100 },
      lines: [...hulls, ...lines], marks, band, // the hull under the lines it is drawn over
    });
    container.draw();
  }

  // Plays a title's HLS master playlist in its page's player panel, with hls.js (loaded
  // the first time a title plays); returns what stops it (hls.js loading, the video
  // playing, the media it holds), whether or not hls.js has arrived yet.
  function play(id, master) {
    const panel = document.getElementById("player-panel");
    const src = `/api/titles/${encodeURIComponent(id)}/files/${master}`;
    setHTML(panel, `<video id="player" controls muted playsinline></video><div class="muted mono">${esc(master)}</div>`);
    const video = document.getElementById("player");
    let hls = null;
    let stopped = false;
    script("/vendor/hls.min.js").catch(() => {}).then(() => {
      if (stopped) return;
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
    });
    return () => {
      stopped = true;
      video.pause();
      if (hls) hls.destroy(); // stops its loading and detaches the video from its media
      else {
        video.removeAttribute("src");
        video.load();
      }
    };
  }

  window.reelay.nav("Titles", "#/titles");
  window.reelay.page("titles", (params, [id]) => (id ? titlePage(id) : titles(params)));
  window.reelay.overviewSection((section) => {
    section.innerHTML = `<h2>Titles</h2><div id="titles"></div>`;
    const table = titleTable(section.querySelector("#titles"));
    onLive((data) => table.update((data.titles || []).slice(0, 8)));
  });
  window.reelay.invocationFilter("title", "title id");
})();
