// farside web console: one more client of the ground-station service (`farside gs serve`).
// Everything live comes over the service's /ws WebSocket; the page fetches the dictionary,
// the history and the archive once through the HTTP API. A `?token=` in the page's URL is
// passed on to both.

import { ArgError, allowedLabels, checkArg, fmtG } from "./units.js";
import { Series, drawTimePlot, drawTraverse } from "./plots.js";

const TOKEN = new URLSearchParams(location.search).get("token");
const BASE = new URL(".", location.href);
const CLIENT = "web console";
const TOPICS = ["telemetry", "events", "commands", "link"];
const MAX_EVENTS = 5000;
const MAX_COMMANDS = 200;
const DEFAULT_PLOTS = ["speed_mph", "battery_pct", "wheel1_current_a"];
const POSE = { x: "x_m", y: "y_m", heading: "heading_deg" };
const GOOD_STAGES = new Set(["QUEUED", "SENT", "ACCEPTED", "STARTED", "PROGRESS", "COMPLETED"]);

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
};
const PRETTY_UNITS = { degC: "°C", deg: "°", "deg/h": "°/h" };
const prettyUnit = (u) => PRETTY_UNITS[u] ?? u ?? "";

// --- the service's API --------------------------------------------------------------------

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function api(path, { method = "GET", body } = {}) {
  const headers = {};
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(new URL(path, BASE), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await r.json();
  } catch {
    data = null;
  }
  if (!r.ok) throw new ApiError((data && data.error) || `${method} ${path}: HTTP ${r.status}`, r.status);
  return data;
}

// --- state ----------------------------------------------------------------------------------

const state = {
  dict: null,
  commands: new Map(), // name -> command spec
  tmSpec: new Map(), // name -> telemetry spec
  tmRows: new Map(), // name -> <tr>
  series: new Map(), // name -> Series
  plots: loadPlots(),
  track: { x: [], y: [] },
  pose: null, // {x, y, heading} of the latest HK
  lastTm: null,
  hkPeriod: null, // seconds between HK packets (the longest of the last five gaps)
  hkGaps: [],
  lastEventSeq: -1,
  eventSeqs: new Set(), // the sequence numbers shown, of the service's current run
  instance: null, // which run of the service the page follows (its pid and archive)
  epoch: 0, // runs of the service seen: event numbers start again at each
  argText: new Map(), // "CMD.arg" -> text typed last
  stageCounts: new Map(), // command id -> stages shown
};

function loadPlots() {
  try {
    const saved = JSON.parse(localStorage.getItem("farside.plots"));
    if (Array.isArray(saved)) return saved;
  } catch {
    /* no saved choice */
  }
  return [...DEFAULT_PLOTS];
}

function savePlots() {
  try {
    localStorage.setItem("farside.plots", JSON.stringify(state.plots));
  } catch {
    /* private mode: the choice lasts this page only */
  }
}

// --- formatting -----------------------------------------------------------------------------

function fmtValue(v) {
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    return String(Number(v.toFixed(Math.abs(v) >= 1000 ? 1 : 3)));
  }
  if (v === null || v === undefined) return "-";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

// Ground times are UNIX seconds: shown as UTC clock time.
function fmtTime(t) {
  if (typeof t !== "number") return t ?? "";
  if (t > 1e9) return new Date(t * 1000).toISOString().slice(11, 23);
  return t.toFixed(3);
}

function fmtRoverTime(t) {
  if (typeof t === "number") return `${Number.isInteger(t) ? t : t.toFixed(3)} s`;
  return t ?? "-";
}

const fmtElapsed = (s) => (typeof s === "number" ? `+${s.toFixed(s < 10 ? 2 : 1)} s` : "");

function enumLabel(spec, v) {
  if (!spec || !spec.enum || typeof v !== "number") return null;
  for (const [name, value] of Object.entries(spec.enum)) if (value === v) return name;
  return null;
}

// --- link, COP-1 and queue --------------------------------------------------------------------

// GET /api/status: the link with FOP-1, the queue, the rover's mode and clock.
function renderStatus(s) {
  if (!s) return;
  renderLink({ ...(s.link || {}), fop: s.fop || (s.link && s.link.fop), url: s.url });
  if (s.queue) renderQueue(s.queue);
  if (s.mode !== undefined && s.mode !== null) $("#rover-mode").textContent = s.mode;
  if (s.rover_time !== undefined && s.rover_time !== null) $("#rover-time").textContent = fmtRoverTime(s.rover_time);
}

// The WebSocket's "link" message (and the status's "link"): link statistics and FOP-1.
function renderLink(link) {
  const pill = $("#link-pill");
  const up = link.up;
  pill.textContent = up === undefined ? "link ?" : up ? "link up" : "link down";
  pill.className = `pill ${up === undefined ? "unknown" : up ? "ok" : "critical"}`;
  pill.dataset.up = String(up);
  pill.title = link.note || "";
  if (link.url) $("#link-url").textContent = link.url;
  const good = link.frames_good ?? "-";
  const bad = link.frames_bad ?? "-";
  $("#link-frames").textContent = `${good} / ${bad}` + (link.reconnects ? `  reconnects ${link.reconnects}` : "")
    + (typeof link.rtt_s === "number" ? `  rtt ${link.rtt_s.toFixed(2)} s` : "");
  const fop = link.fop || {};
  const fs = $("#fop-state");
  fs.textContent = fop.state ?? "-";
  fs.className = fop.alert ? "critical" : "";
  fs.title = fop.alert ? `alert: ${fop.alert}` : "";
  $("#fop-vs").textContent = fop.vs ?? "-";
  $("#fop-nnr").textContent = fop.nn_r ?? "-";
  const q = Array.isArray(fop.queue) ? fop.queue.length : fop.queue;
  $("#fop-queue").textContent = q ?? "-";
  $("#fop-sent").textContent = fop.transmitted ?? "-";
}

function renderQueue(q) {
  const held = Boolean(q.held);
  const qs = $("#queue-state");
  qs.textContent = `${held ? "HELD" : "open"}${q.depth !== undefined ? ` (${q.depth})` : ""}`;
  qs.className = held ? "warning" : "";
  qs.dataset.held = String(held);
  $("#queue-hold").disabled = held;
  $("#queue-release").disabled = !held;
}

async function queue(action) {
  try {
    const r = await api(`api/queue/${action}`, { method: "POST" });
    renderQueue({ ...r, depth: undefined });
  } catch (e) {
    showError(`queue ${action}: ${e.message}`);
  }
}

// --- telemetry --------------------------------------------------------------------------------

function tmRow(name) {
  let row = state.tmRows.get(name);
  if (row) return row;
  const spec = state.tmSpec.get(name) || { name };
  const box = el("input", { type: "checkbox", title: `plot ${name}` });
  box.checked = state.plots.includes(name);
  box.addEventListener("change", () => togglePlot(name, box.checked));
  row = el("tr", { "data-name": name },
    el("td", {}, box),
    el("td", { class: "name", text: name, title: spec.description || "" }),
    el("td", { class: "num value", text: "-" }),
    el("td", { class: "unit", text: prettyUnit(spec.unit) }));
  $("#tm-table tbody").append(row);
  state.tmRows.set(name, row);
  return row;
}

function onTelemetry(msg) {
  if (!msg || !msg.values) return;
  if (state.lastTm && typeof msg.t === "number" && msg.t > state.lastTm.t) {
    state.hkGaps = [...state.hkGaps.slice(-4), msg.t - state.lastTm.t];
    state.hkPeriod = Math.max(...state.hkGaps); // an HK asked for now does not shorten it
  }
  state.lastTm = msg;
  const t = typeof msg.t === "number" ? msg.t : Date.now() / 1000;
  for (const [name, item] of Object.entries(msg.values)) {
    const v = item && typeof item === "object" && "value" in item ? item.value : item;
    const row = tmRow(name);
    const cell = row.querySelector(".value");
    const spec = state.tmSpec.get(name);
    cell.textContent = enumLabel(spec, v) ?? fmtValue(v);
    cell.dataset.value = JSON.stringify(v);
    const limit = (item && item.limit) || "ok";
    row.dataset.limit = limit;
    cell.className = `num value limit-${limit}`;
    if (item && item.unit !== undefined && !row.querySelector(".unit").textContent) {
      row.querySelector(".unit").textContent = prettyUnit(item.unit);
    }
    if (typeof v === "number") {
      if (!state.series.has(name)) state.series.set(name, new Series());
      state.series.get(name).push(t, v);
    }
  }
  const x = msg.values[POSE.x];
  const y = msg.values[POSE.y];
  const hd = msg.values[POSE.heading];
  if (x && y && typeof x.value === "number" && typeof y.value === "number") {
    addPose(x.value, y.value);
    state.pose = { x: x.value, y: y.value, heading: hd && typeof hd.value === "number" ? hd.value : 0 };
  }
  if (msg.values.mode) $("#rover-mode").textContent = fmtValue(msg.values.mode.value);
  if (msg.values.rover_time_s) $("#rover-time").textContent = fmtRoverTime(msg.values.rover_time_s.value);
  const table = $("#tm-table");
  table.dataset.t = String(msg.t);
  if (msg.values.uptime_s) table.dataset.uptime = JSON.stringify(msg.values.uptime_s.value);
  scheduleDraw();
}

function addPose(x, y) {
  const { x: xs, y: ys } = state.track;
  const n = xs.length;
  if (typeof x !== "number" || typeof y !== "number") return;
  if (n && Math.abs(xs[n - 1] - x) < 1e-3 && Math.abs(ys[n - 1] - y) < 1e-3) return;
  xs.push(x);
  ys.push(y);
  if (xs.length > 20000) {
    xs.splice(0, xs.length - 20000);
    ys.splice(0, ys.length - 20000);
  }
}

// How old the shown HK is: yellow past a few periods, red when the rover has gone quiet.
function updateAge() {
  const t = state.lastTm && state.lastTm.t;
  const age = typeof t === "number" && t > 1e9 ? Math.max(0, Date.now() / 1000 - t) : null;
  const e = $("#tm-age");
  e.textContent = age === null ? "" : `HK ${age.toFixed(age < 60 ? 1 : 0)} s ago`;
  const period = state.hkPeriod || 1;
  e.className = age === null || age < 2.5 * period + 2 ? "muted" : age < 10 * period + 5 ? "warning" : "critical";
}

// --- plots and map ----------------------------------------------------------------------------

function togglePlot(name, on) {
  state.plots = state.plots.filter((p) => p !== name);
  if (on) state.plots.push(name);
  savePlots();
  renderPlotList();
  scheduleDraw();
}

function renderPlotList() {
  const list = $("#plot-list");
  list.replaceChildren();
  for (const name of state.plots) {
    const spec = state.tmSpec.get(name) || {};
    const close = el("button", { type: "button", class: "link", text: "×", title: "stop plotting" });
    close.addEventListener("click", () => {
      togglePlot(name, false);
      const box = state.tmRows.get(name)?.querySelector("input");
      if (box) box.checked = false;
    });
    list.append(el("figure", { "data-name": name },
      el("figcaption", {}, el("span", { text: `${name}${spec.unit ? ` [${prettyUnit(spec.unit)}]` : ""}` }), close),
      el("canvas", { class: "plot" })));
  }
}

let drawPending = false;
function scheduleDraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    for (const fig of document.querySelectorAll("#plot-list figure")) {
      const name = fig.dataset.name;
      const spec = state.tmSpec.get(name) || {};
      drawTimePlot(fig.querySelector("canvas"), state.series.get(name) || new Series(),
        { unit: prettyUnit(spec.unit), limits: spec.limits || null });
    }
    const p = state.pose;
    drawTraverse($("#map-canvas"), state.track, p);
    $("#map-pose").textContent = p ? `x ${p.x.toFixed(3)} m  y ${p.y.toFixed(3)} m  heading ${fmtValue(p.heading)}°` : "";
  });
}

// The track so far and the plotted parameters' recent past, from the service's archive.
async function loadArchive() {
  const names = [...new Set([POSE.x, POSE.y, ...state.plots])];
  try {
    const hk = await api(`api/archive/hk?names=${encodeURIComponent(names.join(","))}`);
    if (!hk || !Array.isArray(hk.t)) return;
    const xs = hk.values[POSE.x] || [];
    const ys = hk.values[POSE.y] || [];
    const live = state.track;
    state.track = { x: [], y: [] };
    for (let i = 0; i < Math.min(xs.length, ys.length); i++) addPose(xs[i], ys[i]);
    for (let i = 0; i < live.x.length; i++) addPose(live.x[i], live.y[i]);
    for (const name of state.plots) {
      const vs = hk.values[name];
      if (!vs) continue;
      const live = state.series.get(name) || new Series();
      const s = new Series();
      const from = Math.max(0, hk.t.length - s.cap);
      for (let i = from; i < hk.t.length; i++) s.push(hk.t[i], vs[i]);
      for (let i = 0; i < live.t.length; i++) s.push(live.t[i], live.v[i]);
      state.series.set(name, s);
    }
    scheduleDraw();
  } catch (e) {
    console.warn("archive:", e.message);
  }
}

// --- events -----------------------------------------------------------------------------------

function eventMatches(row, filter) {
  return !filter || row.dataset.text.includes(filter);
}

function onEvent(ev) {
  if (!ev || typeof ev.seq !== "number" || state.eventSeqs.has(ev.seq)) return;
  state.eventSeqs.add(ev.seq);
  state.lastEventSeq = Math.max(state.lastEventSeq, ev.seq);
  const sev = String(ev.severity || "info").toLowerCase();
  const row = el("tr", { class: `sev-${sev}`, "data-seq": String(ev.seq), "data-epoch": String(state.epoch) },
    el("td", { class: "num", text: String(ev.seq) }),
    el("td", { text: fmtTime(ev.t) }),
    el("td", { class: "sev", text: sev }),
    el("td", { class: "name", text: ev.name || "" }),
    el("td", { text: ev.message || JSON.stringify(ev.args || {}) }));
  row.dataset.text = `${ev.name} ${sev} ${ev.message || ""}`.toLowerCase();
  row.title = JSON.stringify(ev.args || {});
  row.hidden = !eventMatches(row, $("#ev-filter").value.trim().toLowerCase());
  insertEvent(row, ev.seq);
}

// In sequence order within the service's run: a catch-up after a reconnect may deliver older
// events after newer ones.
function insertEvent(row, seq) {
  const body = $("#ev-table tbody");
  let after = body.lastElementChild;
  while (after && Number(after.dataset.epoch) === state.epoch && Number(after.dataset.seq) > seq) {
    after = after.previousElementSibling;
  }
  if (after) after.after(row);
  else body.prepend(row);
  while (body.rows.length > MAX_EVENTS) {
    const old = body.rows[0];
    if (Number(old.dataset.epoch) === state.epoch) state.eventSeqs.delete(Number(old.dataset.seq));
    old.remove();
  }
  eventsChanged();
}

// A new run of the service (restarted, or another one on the link): its events are numbered
// from 1 again, so the page starts a new epoch, marked in the list.
function newInstance(status) {
  const instance = `${status.pid} ${status.archive}`;
  if (state.instance === instance) return;
  const first = state.instance === null;
  state.instance = instance;
  if (first) return;
  state.epoch += 1;
  state.eventSeqs = new Set();
  state.lastEventSeq = -1;
  const row = el("tr", { class: "restart", "data-seq": "0", "data-epoch": String(state.epoch) },
    el("td", { colSpan: 5, text: `service restarted: pid ${status.pid}, archive ${status.archive || "-"}` }));
  row.dataset.text = "";
  insertEvent(row, 0);
}

let eventsPending = false;
function eventsChanged() {
  if (eventsPending) return;
  eventsPending = true;
  requestAnimationFrame(() => {
    eventsPending = false;
    const rows = $("#ev-table tbody").rows;
    let shown = 0;
    for (const r of rows) if (!r.hidden) shown++;
    $("#ev-count").textContent = `${shown} of ${rows.length}`;
    if ($("#ev-follow").checked) {
      const sc = $("#ev-scroll");
      sc.scrollTop = sc.scrollHeight;
    }
  });
}

function applyFilter() {
  const f = $("#ev-filter").value.trim().toLowerCase();
  for (const r of $("#ev-table tbody").rows) r.hidden = !eventMatches(r, f);
  eventsChanged();
}

// --- commands: history and stages -------------------------------------------------------------

// `distance_m=0.4 speed_mph=200`, enum values by their labels (`fault=SLOPE_DEG`).
function argsText(name, args) {
  const specs = (state.commands.get(name) || {}).args || [];
  return Object.entries(args || {}).map(([k, v]) => {
    const spec = specs.find((a) => a.name === k);
    const label = spec && spec.enum ? Object.keys(spec.enum).find((l) => spec.enum[l] === v) : undefined;
    return `${k}=${label ?? (typeof v === "number" ? fmtG(v) : v)}`;
  }).join(" ");
}

function onCommand(c) {
  if (!c || c.id === undefined) return;
  // stages only grow: an older snapshot (the POST's answer after the WebSocket's news of a
  // quick command, a catch-up) must not undo a newer one
  const known = state.stageCounts.get(String(c.id)) || 0;
  if ((c.stages || []).length < known) return;
  state.stageCounts.set(String(c.id), (c.stages || []).length);
  const list = $("#cmd-history");
  let item = list.querySelector(`li[data-id="${CSS.escape(String(c.id))}"]`);
  const fresh = !item;
  if (fresh) item = el("li", { "data-id": String(c.id) });
  const outcome = c.outcome || c.state || "";
  item.dataset.state = outcome;
  item.title = c.text || "";
  const stages = el("div", { class: "stages" });
  for (const s of c.stages || []) {
    const name = s.stage || String(s);
    stages.append(el("span", {
      class: `stage ${GOOD_STAGES.has(name) ? "good" : "bad"}`, "data-stage": name, title: s.detail || "",
    }, name, s.detail ? el("span", { class: "detail", text: ` (${s.detail})` }) : "",
    el("i", { text: ` ${fmtElapsed(s.elapsed_s)}` })));
  }
  item.replaceChildren(
    el("div", { class: "head" },
      el("span", { class: "cid muted", text: `#${c.id}` }),
      el("b", { class: "cname", text: c.name }),
      el("span", { class: "cargs", text: argsText(c.name, c.args) }),
      el("span", { class: "client muted", text: c.client || "" }),
      c.at !== null && c.at !== undefined ? el("span", { class: "at muted", text: `at rover ${c.at} s` }) : "",
      el("span", { class: `outcome ${/FAIL|REJECT|TIMEOUT|UNKNOWN/.test(outcome) ? "bad" : "good"}`, text: outcome })),
    stages);
  if (fresh) { // newest first, by id: a catch-up may bring an older one after a newer
    const next = [...list.children].find((li) => Number(li.dataset.id) < Number(c.id));
    list.insertBefore(item, next || null);
    while (list.children.length > MAX_COMMANDS) list.lastElementChild.remove();
  }
}

// --- the command form -------------------------------------------------------------------------

function showError(text, fromServer = false) {
  const e = $("#cmd-error");
  e.textContent = text;
  e.dataset.source = text ? (fromServer ? "service" : "page") : "";
}

function buildForm() {
  const select = $("#cmd-name");
  select.replaceChildren();
  for (const c of state.commands.values()) select.append(el("option", { value: c.name, text: c.name }));
  select.addEventListener("change", renderArgs);
  renderArgs();
}

function renderArgs() {
  const name = $("#cmd-name").value;
  const cmd = state.commands.get(name);
  showError("");
  $("#cmd-desc").textContent = cmd ? cmd.description || "" : "";
  const box = $("#cmd-args");
  box.replaceChildren();
  if (!cmd) return;
  for (const a of cmd.args || []) {
    const key = `${name}.${a.name}`;
    const range = a.min !== undefined && a.min !== null && a.max !== undefined && a.max !== null
      ? `${fmtG(a.min)}..${fmtG(a.max)}` : "";
    let input;
    if (a.type === "tc") {
      box.append(el("div", { class: "arg" }, el("label", { text: a.name }),
        el("span", { class: "muted", text: "a packet: time-tag the command instead" })));
      continue;
    }
    if (a.enum && Object.keys(a.enum).length) {
      input = el("select", { name: a.name });
      for (const label of allowedLabels(a)) input.append(el("option", { value: label, text: `${label} (${a.enum[label]})` }));
    } else {
      const hint = a.type === "bytes" ? `${a.length || ""} octets, hex` : range || a.type;
      input = el("input", { name: a.name, placeholder: hint, inputMode: "decimal" });
      input.addEventListener("input", () => {
        state.argText.set(key, input.value);
        validateOne(name, a, input);
      });
    }
    if (state.argText.has(key)) input.value = state.argText.get(key);
    input.id = `arg-${a.name}`;
    input.dataset.arg = a.name;
    input.title = a.description || "";
    box.append(el("div", { class: "arg" },
      el("label", { htmlFor: input.id, text: a.name, title: a.description || "" }),
      input,
      el("span", { class: "unit", text: a.unit ? `[${a.unit}]` : "" }),
      el("span", { class: "muted range", text: a.enum ? "" : range })));
  }
}

function validateOne(cmd, arg, input) {
  if (!input.value.trim()) {
    input.classList.remove("invalid");
    return null;
  }
  try {
    checkArg(cmd, arg, input.value.trim());
    input.classList.remove("invalid");
    return null;
  } catch (e) {
    input.classList.add("invalid");
    return e;
  }
}

// The form's arguments checked as the CLI checks them; the text is sent as typed (the service
// parses it again, units and all), so page and service cannot disagree on a conversion.
function collectArgs(cmd) {
  const args = {};
  const missing = [];
  for (const a of cmd.args || []) {
    if (a.type === "tc") continue;
    const input = document.getElementById(`arg-${a.name}`);
    const text = input.value.trim();
    if (!text) {
      missing.push(a.name);
      continue;
    }
    try {
      checkArg(cmd.name, a, text);
    } catch (e) {
      input.classList.add("invalid");
      input.focus();
      throw e;
    }
    args[a.name] = text;
  }
  if (missing.length) throw new ArgError(`${cmd.name}: missing argument(s) ${missing.join(", ")}`);
  return args;
}

// The header's STOP: one click, no form (it takes no arguments).
async function stopNow() {
  try {
    onCommand(await api("api/commands", { method: "POST", body: { name: "STOP", args: {}, client: CLIENT } }));
  } catch (e) {
    showError(`STOP: ${e.message}`, true);
  }
}

async function submit(ev) {
  ev.preventDefault();
  const cmd = state.commands.get($("#cmd-name").value);
  if (!cmd) return;
  let args;
  try {
    args = collectArgs(cmd);
  } catch (e) {
    if (!(e instanceof ArgError)) throw e;
    showError(e.message);
    return;
  }
  showError("");
  const body = { name: cmd.name, args, client: CLIENT };
  const at = $("#cmd-at").value.trim();
  if (at) body.at = at;
  const button = $("#cmd-send");
  button.disabled = true;
  try {
    onCommand(await api("api/commands", { method: "POST", body }));
  } catch (e) {
    showError(e.message, true);
  } finally {
    button.disabled = false;
  }
}

// --- the WebSocket ----------------------------------------------------------------------------

function dispatch(msg) {
  switch (msg.type) {
    case "telemetry":
      onTelemetry(msg);
      break;
    case "event":
      onEvent(msg.event || msg);
      break;
    case "command":
      onCommand(msg.command || msg);
      break;
    case "link":
      renderLink(msg);
      break;
    default:
      break;
  }
}

let backoff = 500;
function connect() {
  const url = new URL("ws", BASE);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (TOKEN) url.searchParams.set("token", TOKEN);
  url.searchParams.set("subscribe", TOPICS.join(","));
  const ws = new WebSocket(url);
  const pill = $("#ws-state");
  let pending = []; // what arrives while the page catches up, handled after it
  ws.addEventListener("open", async () => {
    backoff = 500;
    ws.send(JSON.stringify({ subscribe: TOPICS }));
    await catchUp();
    for (const msg of pending) dispatch(msg);
    pending = null;
    pill.textContent = "live";
    pill.className = "pill ok";
    pill.dataset.state = "open";
  });
  ws.addEventListener("message", (m) => {
    let msg;
    try {
      msg = JSON.parse(m.data);
    } catch {
      return;
    }
    if (pending) pending.push(msg);
    else dispatch(msg);
  });
  ws.addEventListener("close", () => {
    pill.textContent = "reconnecting";
    pill.className = "pill critical";
    pill.dataset.state = "closed";
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  });
}

// What happened while the socket was away: events after the last seen, commands' latest stages.
async function catchUp() {
  try {
    const st = await api("api/status");
    newInstance(st);
    renderStatus(st);
    const [ev, cmds] = await Promise.all([
      api(state.lastEventSeq < 0 ? `api/events?limit=${MAX_EVENTS}` : `api/events?after=${state.lastEventSeq}&limit=${MAX_EVENTS}`),
      api("api/commands?limit=100"),
    ]);
    for (const e of ev.events || []) onEvent(e);
    for (const c of cmds.commands || []) onCommand(c);
  } catch (e) {
    console.warn("catch-up:", e.message);
  }
}

// --- start ------------------------------------------------------------------------------------

async function start() {
  $("#cmd-form").addEventListener("submit", submit);
  $("#queue-hold").addEventListener("click", () => queue("hold"));
  $("#queue-release").addEventListener("click", () => queue("release"));
  $("#stop").addEventListener("click", stopNow);
  $("#ev-filter").addEventListener("input", applyFilter);
  // scrolling up by hand stops following the newest events; back at the bottom, it follows again
  const sc = $("#ev-scroll");
  let byHand = 0;
  for (const kind of ["wheel", "touchmove", "keydown", "mousedown"]) {
    sc.addEventListener(kind, () => { byHand = Date.now(); }, { passive: true });
  }
  sc.addEventListener("scroll", () => {
    if (Date.now() - byHand > 1000) return; // the page's own scrolling
    $("#ev-follow").checked = sc.scrollTop + sc.clientHeight >= sc.scrollHeight - 4;
  });
  // the service may be starting or restarting: ask again until it answers
  for (let wait = 1000; state.dict === null; wait = Math.min(wait * 2, 10000)) {
    try {
      state.dict = await api("api/dictionary");
      showError("");
    } catch (e) {
      showError(`dictionary: ${e.message} (trying again)`, true);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
  for (const c of state.dict.commands || []) state.commands.set(c.name, c);
  for (const p of state.dict.telemetry || []) {
    state.tmSpec.set(p.name, p);
    tmRow(p.name);
  }
  state.plots = state.plots.filter((p) => state.tmSpec.has(p));
  buildForm();
  renderPlotList();
  try {
    onTelemetry(await api("api/telemetry"));
  } catch (e) {
    console.warn("telemetry:", e.message);
  }
  await loadArchive();
  connect();
  setInterval(updateAge, 1000);
  // the queue may be held or released by another client: the status says so
  setInterval(() => api("api/status").then(renderStatus, () => {}), 3000);
  window.addEventListener("resize", scheduleDraw);
  document.body.dataset.ready = "1";
}

start();
