// NetMind Power market dashboard: number and time formatting, and the two
// canvas charts (order-book depth, price candles). Colours come from the CSS
// custom properties in style.css, so both follow the theme.

/** A decimal string or number, digits grouped: "1234567" -> "1,234,567". */
export function num(v) {
  if (v === undefined || v === null || v === "") return "—";
  const s = String(v);
  return /^\d+$/.test(s) ? s.replace(/\B(?=(\d{3})+(?!\d))/g, ",") : s;
}


const pad = (n) => String(n).padStart(2, "0");

export function clock(ms) {
  const d = new Date(Number(ms));
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}


export function colors() {
  const cs = getComputedStyle(document.documentElement);
  const v = (n) => cs.getPropertyValue(n).trim();
  return { bid: v("--bid"), ask: v("--ask"), accent: v("--accent"), grid: v("--grid"), muted: v("--muted"), text: v("--text"), panel: v("--panel") };
}

/** Sizes a canvas to its box at the device's pixel ratio and clears it. */
function canvas2d(el) {
  const dpr = window.devicePixelRatio || 1;
  const r = el.getBoundingClientRect();
  const w = Math.max(1, Math.round(r.width));
  const ht = Math.max(1, Math.round(r.height));
  if (el.width !== Math.round(w * dpr) || el.height !== Math.round(ht * dpr)) {
    el.width = Math.round(w * dpr);
    el.height = Math.round(ht * dpr);
  }
  const ctx = el.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, ht);
  ctx.font = "11px system-ui, sans-serif";
  return { ctx, w, h: ht };
}

/** About `n` round tick values between lo and hi. */
function ticks(lo, hi, n) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) || 10 * mag;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

function label(v) {
  return Number.isInteger(v) ? num(String(v)) : v.toPrecision(4);
}

/** The room, in pixels, for the widest of `labels` beside the plot. */
function gutter(ctx, labels) {
  return Math.ceil(Math.max(24, ...labels.map((l) => ctx.measureText(l).width))) + 12;
}

function placeholder(ctx, w, ht, c, text) {
  ctx.fillStyle = c.muted;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(text, w / 2, ht / 2);
}

/** Draws the depth chart of `market` (GET /v1/market/{class}, or null while loading) on the canvas `el`. */
export function drawDepth(el, market) {
  const { ctx, w, h: ht } = canvas2d(el);
  const c = colors();
  const depth = market && market.depth;
  const bids = depth ? depth.bids.map((l) => ({ p: Number(l.price), q: Number(l.quantity) })) : [];
  const asks = depth ? depth.asks.map((l) => ({ p: Number(l.price), q: Number(l.quantity) })) : [];
  if (!bids.length && !asks.length) {
    el.setAttribute("aria-label", "depth chart: the book is empty");
    placeholder(ctx, w, ht, c, market ? "no orders in this class yet" : "loading…");
    return;
  }
  const R = 12, T = 12, B = 24;
  const prices = bids.concat(asks).map((l) => l.p);
  let lo = Math.min(...prices), hi = Math.max(...prices);
  const padding = hi > lo ? (hi - lo) * 0.12 : Math.max(1, hi * 0.2);
  lo = Math.max(0, lo - padding);
  hi += padding;
  const sum = (ls) => ls.reduce((a, l) => a + l.q, 0);
  const qmax = Math.max(sum(bids), sum(asks)) * 1.15 || 1;
  const qTicks = ticks(0, qmax, 3);
  const L = gutter(ctx, qTicks.map(label));
  const x = (p) => L + ((p - lo) / (hi - lo)) * (w - L - R);
  const y = (q) => ht - B - (q / qmax) * (ht - T - B);
  // grid and axes
  ctx.strokeStyle = c.grid;
  ctx.lineWidth = 1;
  ctx.fillStyle = c.muted;
  ctx.textBaseline = "top";
  ctx.textAlign = "center";
  for (const t of ticks(lo, hi, 5)) {
    ctx.beginPath();
    ctx.moveTo(Math.round(x(t)) + 0.5, T);
    ctx.lineTo(Math.round(x(t)) + 0.5, ht - B);
    ctx.stroke();
    ctx.fillText(label(t), x(t), ht - B + 6);
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of qTicks) {
    ctx.beginPath();
    ctx.moveTo(L, Math.round(y(t)) + 0.5);
    ctx.lineTo(w - R, Math.round(y(t)) + 0.5);
    ctx.stroke();
    ctx.fillText(label(t), L - 6, y(t));
  }
  // one side: a step curve of cumulative quantity, filled beneath
  const side = (levels, colour, edge) => {
    if (!levels.length) return;
    const pts = [[x(levels[0].p), y(0)]];
    let cum = 0;
    levels.forEach((l, i) => {
      cum += l.q;
      pts.push([x(l.p), y(cum)]);
      const next = levels[i + 1];
      pts.push([next ? x(next.p) : edge, y(cum)]);
    });
    ctx.beginPath();
    pts.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
    ctx.lineTo(edge, y(0));
    ctx.closePath();
    ctx.globalAlpha = 0.18;
    ctx.fillStyle = colour;
    ctx.fill();
    ctx.globalAlpha = 1;
    ctx.beginPath();
    pts.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2.5;
    ctx.stroke();
  };
  side(bids, c.bid, L);
  side(asks, c.ask, w - R);
  ctx.textBaseline = "top";
  ctx.font = "12px system-ui, sans-serif";
  ctx.textAlign = "left";
  ctx.fillStyle = c.bid;
  ctx.fillText(`bids ${num(String(sum(bids)))}`, L + 6, T);
  ctx.textAlign = "right";
  ctx.fillStyle = c.ask;
  ctx.fillText(`offers ${num(String(sum(asks)))} slots`, w - R - 4, T);
  el.setAttribute("aria-label",
    `depth chart: ${bids.length} bid levels${bids.length ? ` from ${bids[0].p}` : ""}, ${asks.length} offer levels${asks.length ? ` from ${asks[0].p}` : ""}`);
}


/** Draws `market`'s candles and last price on the canvas `el`. */
export function drawPrice(el, market) {
  const { ctx, w, h: ht } = canvas2d(el);
  const c = colors();
  const m = market;
  const candles = m ? m.candles.map((k) => ({ t: Number(k.start), o: Number(k.open), hi: Number(k.high), lo: Number(k.low), c: Number(k.close), n: k.deals })) : [];
  const last = m && m.last_price !== null && m.last_price !== undefined ? Number(m.last_price) : null;
  if (!candles.length && last === null) {
    el.setAttribute("aria-label", "price chart: no trades yet");
    placeholder(ctx, w, ht, c, m ? "no trades yet" : "loading…");
    return;
  }
  const interval = Number((m && m.interval) || 60000);
  const t1 = Math.max(Date.now(), ...candles.map((k) => k.t)) + interval;
  const t0 = Math.min(t1 - 41 * interval, ...candles.map((k) => k.t));
  const vals = candles.flatMap((k) => [k.hi, k.lo]).concat(last === null ? [] : [last]);
  let lo = Math.min(...vals), hi = Math.max(...vals);
  const padding = hi > lo ? (hi - lo) * 0.15 : Math.max(1, hi * 0.1);
  lo = Math.max(0, lo - padding);
  hi += padding;
  const yTicks = ticks(lo, hi, 4);
  const L = gutter(ctx, yTicks.map(label));
  const R = last === null ? 12 : gutter(ctx, [label(last)]) + 4;
  const T = 12, B = 24;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (w - L - R);
  const y = (p) => ht - B - ((p - lo) / (hi - lo)) * (ht - T - B);
  ctx.strokeStyle = c.grid;
  ctx.fillStyle = c.muted;
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const p of yTicks) {
    ctx.beginPath();
    ctx.moveTo(L, Math.round(y(p)) + 0.5);
    ctx.lineTo(w - R, Math.round(y(p)) + 0.5);
    ctx.stroke();
    ctx.fillText(label(p), L - 6, y(p));
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let i = 0; i <= 3; i++) {
    const t = t0 + ((t1 - t0) * i) / 3;
    ctx.fillText(clock(t).slice(0, interval >= 60000 ? 5 : 8), x(t), ht - B + 6);
  }
  // The last-price line goes under the candles and its label over them, so a
  // candle at the last price stays whole whatever the dash phase under it.
  if (last !== null) {
    ctx.strokeStyle = c.accent;
    ctx.lineWidth = 2;
    ctx.setLineDash([6, 4]);
    ctx.beginPath();
    ctx.moveTo(L, Math.round(y(last)) + 0.5);
    ctx.lineTo(w - R, Math.round(y(last)) + 0.5);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  const cw = Math.max(3, Math.min(14, ((w - L - R) * interval) / (t1 - t0) * 0.7));
  for (const k of candles) {
    const cx = x(k.t + interval / 2);
    const colour = k.c >= k.o ? c.bid : c.ask;
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(Math.round(cx) + 0.5, y(k.hi));
    ctx.lineTo(Math.round(cx) + 0.5, y(k.lo));
    ctx.stroke();
    // Bodies snap to whole pixels: crisp edges, at least 5 px tall.
    const top = Math.min(y(k.o), y(k.c));
    const body = Math.max(5, Math.round(Math.abs(y(k.o) - y(k.c))));
    const left = Math.round(cx - cw / 2);
    ctx.fillRect(left, Math.round(top - (body === 5 ? 2.5 : 0)), Math.round(cx + cw / 2) - left, body);
  }
  if (last !== null) {
    ctx.fillStyle = c.accent;
    ctx.fillRect(w - R + 2, y(last) - 9, R - 4, 18);
    ctx.fillStyle = c.panel;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(label(last), w - R / 2, y(last));
  }
  el.setAttribute("aria-label", `price chart: ${candles.length} candles, last price ${last === null ? "none" : last}`);
}
