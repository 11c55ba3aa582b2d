// Live plots and the traverse map, drawn on <canvas> (no library: the console works offline).

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

// A canvas sized to its box at the screen's pixel ratio; returns its 2D context and size in CSS px.
function fit(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

// Round steps (1, 2, 5 x 10^n) for grid lines about `px` pixels apart.
function niceStep(span, pixels, px = 50) {
  const raw = span / Math.max(1, pixels / px);
  const p = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

const label = (v, step) => {
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  return v.toFixed(Math.min(digits, 6));
};

// A bounded series: the last `cap` samples of one parameter.
export class Series {
  constructor(cap = 900) {
    this.cap = cap;
    this.t = [];
    this.v = [];
  }

  push(t, v) {
    if (typeof v !== "number" || !Number.isFinite(v)) return;
    if (this.t.length && t < this.t[this.t.length - 1]) return; // out of order: already drawn
    this.t.push(t);
    this.v.push(v);
    if (this.t.length > this.cap) {
      this.t.splice(0, this.t.length - this.cap);
      this.v.splice(0, this.v.length - this.cap);
    }
  }
}

// One parameter against time, the last `windowS` seconds.
export function drawTimePlot(canvas, series, { unit = "", windowS = 300, limits = null } = {}) {
  const { ctx, w, h } = fit(canvas);
  const pad = { l: 52, r: 8, t: 6, b: 18 };
  const pw = w - pad.l - pad.r;
  const ph = h - pad.t - pad.b;
  ctx.font = `11px ${css("--mono")}`;
  ctx.fillStyle = css("--muted");
  if (!series.t.length) {
    ctx.fillText("no data yet", pad.l + 8, pad.t + ph / 2);
    return;
  }
  const tEnd = series.t[series.t.length - 1];
  const tStart = tEnd - windowS;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < series.t.length; i++) {
    if (series.t[i] < tStart) continue;
    lo = Math.min(lo, series.v[i]);
    hi = Math.max(hi, series.v[i]);
  }
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const margin = (hi - lo) * 0.08;
  lo -= margin;
  hi += margin;
  const x = (t) => pad.l + ((t - tStart) / windowS) * pw;
  const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * ph;

  // limit bands inside the view: outside the critical range red, outside the warning range yellow
  if (limits) {
    for (const [keys, colour] of [[["critical", "red"], "--critical-bg"], [["warning", "yellow"], "--warning-bg"]]) {
      const band = limits[keys[0]] || limits[keys[1]];
      if (!band) continue;
      ctx.fillStyle = css(colour);
      if (band[1] < hi) ctx.fillRect(pad.l, pad.t, pw, Math.max(0, y(band[1]) - pad.t));
      if (band[0] > lo) ctx.fillRect(pad.l, y(band[0]), pw, Math.max(0, pad.t + ph - y(band[0])));
    }
  }
  // grid and labels
  const step = niceStep(hi - lo, ph, 22);
  ctx.strokeStyle = css("--grid");
  ctx.lineWidth = 1;
  ctx.fillStyle = css("--muted");
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
    ctx.beginPath();
    ctx.moveTo(pad.l, Math.round(y(v)) + 0.5);
    ctx.lineTo(pad.l + pw, Math.round(y(v)) + 0.5);
    ctx.stroke();
    ctx.fillText(label(v, step), pad.l - 4, y(v));
  }
  ctx.textAlign = "left";
  ctx.textBaseline = "alphabetic";
  ctx.fillText(`-${windowS} s`, pad.l, h - 4);
  ctx.textAlign = "right";
  ctx.fillText(unit ? `now  [${unit}]` : "now", pad.l + pw, h - 4);
  // the trace
  ctx.strokeStyle = css("--trace");
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  let started = false;
  for (let i = 0; i < series.t.length; i++) {
    if (series.t[i] < tStart) continue;
    const px = x(series.t[i]);
    const py = y(series.v[i]);
    if (started) ctx.lineTo(px, py);
    else ctx.moveTo(px, py);
    started = true;
  }
  ctx.stroke();
}

// The rover's track in the plane (x east, y north, metres), equal scales, with the rover
// drawn at its pose ({x, y, heading}: heading in degrees counter-clockwise from east).
export function drawTraverse(canvas, track, pose) {
  const { ctx, w, h } = fit(canvas);
  const pad = 28;
  ctx.font = `11px ${css("--mono")}`;
  const n = track.x.length;
  // the track's extent with a margin, at least 1 m across
  let [x0, x1, y0, y1] = n ? [track.x[0], track.x[0], track.y[0], track.y[0]] : [-0.5, 0.5, -0.5, 0.5];
  for (let i = 0; i < n; i++) {
    x0 = Math.min(x0, track.x[i]);
    x1 = Math.max(x1, track.x[i]);
    y0 = Math.min(y0, track.y[i]);
    y1 = Math.max(y1, track.y[i]);
  }
  const span = Math.max(x1 - x0, y1 - y0, 1) * 1.2;
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const scale = Math.min(w - 2 * pad, h - 2 * pad) / span;
  const X = (x) => w / 2 + (x - cx) * scale;
  const Y = (y) => h / 2 - (y - cy) * scale;

  const step = niceStep(span, Math.min(w, h) - 2 * pad, 60);
  ctx.strokeStyle = css("--grid");
  ctx.fillStyle = css("--muted");
  ctx.lineWidth = 1;
  const xs = Math.floor((cx - w / 2 / scale) / step) * step;
  const ys = Math.floor((cy - h / 2 / scale) / step) * step;
  ctx.textAlign = "center";
  for (let x = xs; X(x) <= w; x += step) {
    ctx.beginPath();
    ctx.moveTo(Math.round(X(x)) + 0.5, 0);
    ctx.lineTo(Math.round(X(x)) + 0.5, h);
    ctx.stroke();
    if (X(x) > 24 && X(x) < w - 24) ctx.fillText(label(x, step), X(x), h - 4);
  }
  ctx.textAlign = "left";
  for (let y = ys; Y(y) >= 0; y += step) {
    ctx.beginPath();
    ctx.moveTo(0, Math.round(Y(y)) + 0.5);
    ctx.lineTo(w, Math.round(Y(y)) + 0.5);
    ctx.stroke();
    if (Y(y) > 24 && Y(y) < h - 16) ctx.fillText(label(y, step), 4, Y(y) - 3);
  }
  ctx.textAlign = "right";
  ctx.fillText("x east, y north [m]", w - 6, 14);

  // start, track, rover
  ctx.fillStyle = css("--muted");
  ctx.beginPath();
  ctx.arc(X(n ? track.x[0] : 0), Y(n ? track.y[0] : 0), 3, 0, 2 * Math.PI);
  ctx.fill();
  if (n > 1) {
    ctx.strokeStyle = css("--trace");
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(X(track.x[0]), Y(track.y[0]));
    for (let i = 1; i < n; i++) ctx.lineTo(X(track.x[i]), Y(track.y[i]));
    ctx.stroke();
  }
  if (pose) {
    const a = (pose.heading * Math.PI) / 180;
    const px = X(pose.x);
    const py = Y(pose.y);
    const r = 9;
    ctx.fillStyle = css("--accent");
    ctx.beginPath();
    ctx.moveTo(px + r * Math.cos(a), py - r * Math.sin(a));
    ctx.lineTo(px + r * Math.cos(a + 2.5), py - r * Math.sin(a + 2.5));
    ctx.lineTo(px + r * Math.cos(a - 2.5), py - r * Math.sin(a - 2.5));
    ctx.closePath();
    ctx.fill();
  }
}
