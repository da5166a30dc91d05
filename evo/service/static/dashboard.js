/* evo dashboard: every data request goes to /api with the token of this tab (sessionStorage) as a bearer header. */
"use strict";

const TOKEN_KEY = "evo-token";
const ENDED = ["stopped", "succeeded", "failed", "cancelled"];
const $ = (selector) => document.querySelector(selector);

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function toLogin() {
  sessionStorage.removeItem(TOKEN_KEY);
  const next = encodeURIComponent(location.pathname + location.search);
  location.replace("/login?next=" + next);
}

async function api(path, options = {}) {
  const headers = { Authorization: "Bearer " + token(), ...(options.headers || {}) };
  if (options.json !== undefined) { headers["Content-Type"] = "application/json"; options.body = JSON.stringify(options.json); }
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401 || response.status === 403) { toLogin(); throw new Error("signed out"); }
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(body && body.error ? body.error : response.statusText);
  return body;
}

function showError(message) {
  const box = $("#error");
  box.textContent = message || "";
  box.hidden = !message;
}

/* Server-Sent Events read with fetch (EventSource cannot send the Authorization header); resumes after `after`. */
async function streamEvents(runId, after, onEvent, signal) {
  const headers = { Authorization: "Bearer " + token(), "Last-Event-ID": String(after), Accept: "text/event-stream" };
  const response = await fetch(`/api/runs/${encodeURIComponent(runId)}/stream`, { headers, signal });
  if (!response.ok) throw new Error((await response.json()).error);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const fields = {};
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const at = line.indexOf(":");
        const key = at < 0 ? line : line.slice(0, at);
        const text = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
        fields[key] = key in fields && key === "data" ? fields[key] + "\n" + text : text;
      }
      if (fields.data !== undefined && fields.id !== undefined) onEvent({ id: Number(fields.id), event: fields.event, data: JSON.parse(fields.data) });
    }
  }
}

const fmt = {
  num(v, digits = 4) { return v === null || v === undefined ? "–" : typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(digits)) : String(v); },
  when(iso) { return iso ? new Date(iso).toLocaleString() : "–"; },
  duration(start, end) {
    if (!start) return "–";
    let s = Math.max(0, ((end ? new Date(end) : new Date()) - new Date(start)) / 1000);
    if (s < 60) return s.toFixed(1) + " s";
    const m = Math.floor(s / 60); s = Math.round(s % 60);
    return m < 60 ? `${m} min ${s} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
  },
};

function cell(row, text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; row.appendChild(td); return td; }

function chartWidth(element) { return Math.max(280, element.clientWidth - 4); }

function makeChart(element, series, data) {
  const options = {
    width: chartWidth(element), height: 320,
    scales: { x: { time: false } },
    axes: [{ label: "generation" }, { label: "fitness" }],
    series: [{ label: "generation" }, ...series],
  };
  const chart = new uPlot(options, data, element);
  new ResizeObserver(() => chart.setSize({ width: chartWidth(element), height: 320 })).observe(element);
  return chart;
}

const COLOURS = ["#0b57d0", "#b3261e", "#1b5e20", "#7b1fa2", "#e65100", "#006064", "#5d4037", "#37474f"];

/* ------------------------------------------------------------------ pages */
const pages = {
  login() {
    $("#signout").hidden = true;
    $("#login-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = $("#token").value.trim();
      const response = await fetch("/api/runs?limit=1", { headers: { Authorization: "Bearer " + value } });
      if (!response.ok) { showError((await response.json()).error); return; }
      sessionStorage.setItem(TOKEN_KEY, value);
      const next = new URLSearchParams(location.search).get("next");
      location.assign(next && next.startsWith("/") && !next.startsWith("//") ? next : "/");
    });
  },

  async runs() {
    const body = $("#runs-table tbody");
    const selected = new Set();
    async function refresh() {
      const status = $("#status-filter").value;
      try {
        const page = await api("/api/runs?limit=200" + (status ? "&status=" + status : ""));
        showError("");
        body.replaceChildren(...page.runs.map((run) => {
          const tr = document.createElement("tr");
          tr.dataset.id = run.id;
          const pick = document.createElement("input");
          pick.type = "checkbox"; pick.checked = selected.has(run.id);
          pick.setAttribute("aria-label", "select " + run.name + " (" + run.id + ")");
          pick.addEventListener("change", () => { pick.checked ? selected.add(run.id) : selected.delete(run.id); });
          cell(tr, "").appendChild(pick);
          const link = document.createElement("a");
          link.href = "/runs/" + encodeURIComponent(run.id); link.textContent = run.name;
          cell(tr, "").appendChild(link);
          cell(tr, run.strategy || "–");
          cell(tr, run.kind === "study" ? "ask/tell" : run.task || "–");
          const status = cell(tr, ""); const badge = document.createElement("span");
          badge.className = "badge " + run.status; badge.textContent = run.status; status.appendChild(badge);
          cell(tr, `${run.generation} / ${run.generations}`, "num");
          cell(tr, fmt.num(run.best_fitness), "num");
          cell(tr, fmt.when(run.started_at));
          cell(tr, fmt.duration(run.started_at, run.finished_at), "num");
          return tr;
        }));
        $("#runs-count").textContent = `${page.total} in all`;
      } catch (error) { showError(error.message); }
    }
    $("#status-filter").addEventListener("change", refresh);
    $("#compare-selected").addEventListener("click", () => { if (selected.size) location.assign("/compare?ids=" + [...selected].map(encodeURIComponent).join(",")); });
    await refresh();
    setInterval(refresh, 2000);
  },

  async run() {
    const runId = document.body.dataset.runId;
    const rows = new Map();
    let chart = null, controller = null, drawPending = false, total = 0;
    const data = () => {
      const gens = [...rows.keys()].sort((a, b) => a - b);
      const pick = (f) => gens.map((g) => f(rows.get(g)));
      return [gens, pick((r) => r.best), pick((r) => r.mean),
        pick((r) => (r.mean === null || r.std === null ? null : r.mean + r.std)),
        pick((r) => (r.mean === null || r.std === null ? null : r.mean - r.std))];
    };
    function draw() {
      if (drawPending) return;
      drawPending = true;
      requestAnimationFrame(() => {
        drawPending = false;
        if (!chart) chart = makeChart($("#chart"), [
          { label: "best", stroke: COLOURS[0], width: 2 },
          { label: "mean", stroke: COLOURS[1], width: 2 },
          { label: "mean + std", stroke: "#e39a97", dash: [4, 4] },
          { label: "mean − std", stroke: "#e39a97", dash: [4, 4] },
        ], data());
        else chart.setData(data());
        $("#chart").dataset.points = String(rows.size);
      });
    }
    function progress(generation, best) {
      $("#progress").textContent = `generation ${generation} / ${total}` + (best !== null && best !== undefined ? `, best so far ${fmt.num(best)}` : "");
    }
    function showStatus(run) {
      const badge = $("#run-status");
      badge.textContent = run.status; badge.className = "badge " + run.status;
      $("#stop").disabled = !["running", "queued"].includes(run.status);
      $("#cancel").disabled = ENDED.includes(run.status);
      $("#resume").disabled = !ENDED.includes(run.status);
      total = run.generations;
      progress(run.generation, run.best_fitness);
    }
    async function showDetails() {
      const run = await api("/api/runs/" + encodeURIComponent(runId));
      $("#run-name").textContent = run.name + (run.kind === "study" ? " (ask/tell study)" : "");
      showStatus(run);
      $("#config").textContent = JSON.stringify(run.config, null, 2);
      const summary = $("#summary tbody");
      if (run.summary) {
        summary.replaceChildren(...Object.entries(run.summary).filter(([, v]) => v === null || typeof v !== "object").map(([k, v]) => {
          const tr = document.createElement("tr"); const th = document.createElement("th"); th.scope = "row"; th.textContent = k; tr.appendChild(th);
          cell(tr, fmt.num(v, 6), typeof v === "number" ? "num" : ""); return tr;
        }));
      }
      if (run.error) showError(run.error);
      const files = await api(`/api/runs/${encodeURIComponent(runId)}/files`);
      const pngs = files.files.filter((f) => f.path.endsWith(".png"));
      if (pngs.length) {
        const figures = await Promise.all(pngs.map(async (f) => {
          const response = await fetch(`/api/runs/${encodeURIComponent(runId)}/files/${f.path}`, { headers: { Authorization: "Bearer " + token() } });
          const figure = document.createElement("figure"); const img = document.createElement("img");
          img.src = URL.createObjectURL(await response.blob()); img.alt = f.path; figure.appendChild(img);
          const caption = document.createElement("figcaption"); caption.textContent = f.path; figure.appendChild(caption);
          return figure;
        }));
        $("#plots").replaceChildren(...figures);
      }
      return run;
    }
    async function follow(after) {
      if (controller) controller.abort();
      controller = new AbortController();
      try {
        await streamEvents(runId, after, async (event) => {
          if (event.event === "generation") { rows.set(event.data.generation, event.data); progress(event.data.generation, event.data.best_so_far); draw(); }
          else if (event.event === "status" || event.event === "summary") { await showDetails(); }
        }, controller.signal);
      } catch (error) { if (error.name !== "AbortError") showError(error.message); }
    }
    async function act(action, json) {
      try { showError(""); await api(`/api/runs/${encodeURIComponent(runId)}/${action}`, { method: "POST", json }); const run = await showDetails(); if (action === "resume") follow(run.last_event_id); }
      catch (error) { showError(error.message); }
    }
    $("#stop").addEventListener("click", () => act("stop"));
    $("#cancel").addEventListener("click", () => act("cancel"));
    $("#resume").addEventListener("click", () => {
      const generations = $("#resume-generations").value;
      act("resume", generations ? { generations: Number(generations) } : {});
    });
    try {
      const run = await showDetails();
      for (const row of (await api(`/api/runs/${encodeURIComponent(runId)}/metrics`)).rows) rows.set(row.generation, row);
      draw();
      follow(run.last_event_id);
    } catch (error) { showError(error.message); }
  },

  async compare() {
    const params = new URLSearchParams(location.search);
    const ids = (params.get("ids") || "").split(",").map((s) => s.trim()).filter(Boolean);
    $("#compare-ids").value = ids.join(",");
    $("#compare-form").addEventListener("submit", (event) => { event.preventDefault(); location.assign("/compare?ids=" + encodeURIComponent($("#compare-ids").value)); });
    try {
      const all = await api("/api/runs?limit=200");
      $("#pick-list").replaceChildren(...all.runs.map((run) => {
        const label = document.createElement("label"); const box = document.createElement("input");
        box.type = "checkbox"; box.value = run.id; box.checked = ids.includes(run.id);
        box.addEventListener("change", () => {
          const now = [...document.querySelectorAll("#pick-list input:checked")].map((b) => b.value);
          location.assign("/compare?ids=" + now.map(encodeURIComponent).join(","));
        });
        label.append(box, `${run.name} · ${run.strategy || ""} · ${run.id}`); return label;
      }));
      if (!ids.length) return;
      const runs = await Promise.all(ids.map((id) => api("/api/runs/" + encodeURIComponent(id))));
      const metrics = await Promise.all(ids.map((id) => api(`/api/runs/${encodeURIComponent(id)}/metrics`)));
      const gens = [...new Set(metrics.flatMap((m) => m.rows.map((r) => r.generation)))].sort((a, b) => a - b);
      const series = metrics.map((m) => { const by = new Map(m.rows.map((r) => [r.generation, r.best_so_far])); return gens.map((g) => (by.has(g) ? by.get(g) : null)); });
      makeChart($("#compare-chart"), runs.map((run, i) => ({ label: `${run.name} (${run.id})`, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true })), [gens, ...series]);
      $("#compare-chart").dataset.series = String(runs.length);
      const keys = [...new Set(runs.flatMap((run) => Object.entries(run.summary || {}).filter(([, v]) => v === null || typeof v !== "object").map(([k]) => k)))];
      const head = document.createElement("tr"); const corner = document.createElement("th"); corner.textContent = "figure"; head.appendChild(corner);
      for (const run of runs) { const th = document.createElement("th"); th.scope = "col"; th.textContent = `${run.name} (${run.id})`; head.appendChild(th); }
      $("#compare-table thead").replaceChildren(head);
      $("#compare-table tbody").replaceChildren(...["strategy", "status", ...keys].map((key) => {
        const tr = document.createElement("tr"); const th = document.createElement("th"); th.scope = "row"; th.textContent = key; tr.appendChild(th);
        for (const run of runs) {
          const v = key === "strategy" ? (run.config.strategy || {}).type : key === "status" ? run.status : (run.summary || {})[key];
          cell(tr, fmt.num(v, 6), typeof v === "number" ? "num" : "");
        }
        return tr;
      }));
    } catch (error) { showError(error.message); }
  },

  async submit() {
    try {
      const shipped = (await api("/api/configs")).configs;
      for (const c of shipped) { const option = document.createElement("option"); option.value = c.name; option.textContent = c.name; $("#shipped").appendChild(option); }
      $("#shipped").addEventListener("change", () => { const c = shipped.find((x) => x.name === $("#shipped").value); if (c) $("#config-text").value = c.text; });
    } catch (error) { showError(error.message); }
    $("#submit-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { config: $("#config-text").value };
      const runId = $("#run-id").value.trim();
      if (runId) body.run_id = runId;
      const overrides = {};
      if ($("#generations").value) overrides.generations = Number($("#generations").value);
      if ($("#seed").value) overrides.seed = Number($("#seed").value);
      if (Object.keys(overrides).length) body.overrides = overrides;
      try { const run = await api("/api/runs", { method: "POST", json: body }); location.assign("/runs/" + encodeURIComponent(run.id)); }
      catch (error) { showError(error.message); }
    });
  },
};

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page !== "login" && !token()) { toLogin(); return; }
  $("#signout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); location.assign("/login"); });
  pages[page]();
});
