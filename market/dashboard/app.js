// NetMind Power market dashboard: plain JavaScript (an ES module), no build
// step, no dependencies. It reads the market's public API and follows
// /v1/events (server-sent events), polling when the stream is down. Every
// value from the API goes into the page as text (never as HTML).
import { clock, drawDepth, drawPrice, num } from "./charts.js";

const $ = (id) => document.getElementById(id);

// ---- state ---------------------------------------------------------------

const state = {
  info: null,
  classes: [],
  selected: null, // the class whose book, trades and charts are shown
  book: null,
  market: null,
  trades: [],
  hosts: [], // [Host]
  hostsMissing: false, // GET /v1/hosts answered 404: not served by this market yet
  jobs: new Map(), // id -> Job
  jobsMissing: false,
  detail: null, // {kind: "job" | "bid", id, bid?}
  explain: null, // {id, status, body}
  logs: new Map(), // deal id -> {text, next, len, complete, held}
  logFollow: null, // the token of the loop following the open job's logs
  sseOpen: false,
  jobEvents: false, // the stream carries `job` events: no need to reload jobs on trades
  hostEvents: false,
  lastRefresh: 0,
  failures: 0,
};

const ACTIVE = ["queued", "matched", "running", "verifying"];
const FINISHED = ["done", "failed", "cancelled", "expired"];

// ---- DOM and formatting helpers -------------------------------------------

/** An element with properties (class, title, dataset, on*) and children (text or nodes). */
function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

/** Text with `code` spans: "start one with `netmind host run`". */
function rich(text) {
  return text.split("`").map((part, i) => (i % 2 ? h("code", null, part) : part));
}

function bytes(n) {
  if (!n && n !== 0) return "—";
  if (n === 0) return "0";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

function short(hex) {
  if (typeof hex !== "string" || hex.length < 14) return hex || "—";
  return `${hex.slice(0, 6)}…${hex.slice(-4)}`;
}

function mono(hex) {
  return h("span", { class: "mono", title: hex }, short(hex));
}

function ago(ms) {
  if (!ms) return "—";
  const diff = Date.now() - Number(ms);
  const abs = Math.abs(diff);
  const fmt = abs < 1000 ? "now"
    : abs < 60000 ? `${Math.round(abs / 1000)} s`
    : abs < 3600000 ? `${Math.round(abs / 60000)} min`
    : abs < 86400000 ? `${Math.round(abs / 3600000)} h`
    : `${Math.round(abs / 86400000)} d`;
  if (fmt === "now") return fmt;
  return diff >= 0 ? `${fmt} ago` : `in ${fmt}`;
}

function badge(s) {
  return h("span", { class: `badge s-${s}` }, s || "unknown");
}

function fill(tbodyParent, rows) {
  const tbody = tbodyParent.tBodies[0];
  tbody.replaceChildren(...rows);
}

/** Shows `message` (with `code`) in an empty-state paragraph, or hides it. */
function empty(id, message, note) {
  const el = $(id);
  if (!message) {
    el.hidden = true;
    return;
  }
  const kids = rich(message);
  if (note) kids.push(h("br"), h("span", { class: "small" }, ...rich(note)));
  el.replaceChildren(...kids);
  el.hidden = false;
}

// ---- the API --------------------------------------------------------------

/** GET a JSON route: {status, body}; body is null when the answer is not JSON. */
async function api(path) {
  const r = await fetch(path, { headers: { accept: "application/json" }, cache: "no-store" });
  let body = null;
  try {
    body = await r.json();
  } catch (_) {
    body = null;
  }
  return { status: r.status, body };
}

async function loadInfo() {
  const { status, body } = await api("/v1/info");
  if (status === 200) state.info = body;
  renderInfo();
}

async function loadClasses() {
  const { status, body } = await api("/v1/classes");
  if (status !== 200 || !Array.isArray(body)) throw new Error(`/v1/classes: ${status}`);
  state.classes = body;
  if (!state.selected || !body.some((c) => c.class === state.selected)) {
    const fromHash = new URLSearchParams(location.hash.slice(1)).get("class");
    const active = body.find((c) => c.deals > 0 || c.best_ask || c.best_bid);
    const pick = body.find((c) => c.class === fromHash) || active || body[0];
    state.selected = pick ? pick.class : null;
  }
  renderClasses();
}

async function loadClass() {
  const c = state.selected;
  if (!c) return;
  const interval = Number($("interval").value);
  const from = Date.now() - 60 * interval;
  const enc = encodeURIComponent(c);
  const [book, market, trades] = await Promise.all([
    api(`/v1/book/${enc}?limit=50`),
    api(`/v1/market/${enc}?interval=${interval}&from=${from}`),
    api(`/v1/trades/${enc}?limit=50`),
  ]);
  if (c !== state.selected) return; // the selection changed meanwhile
  state.book = book.status === 200 ? book.body : null;
  state.market = market.status === 200 ? market.body : null;
  state.trades = trades.status === 200 && Array.isArray(trades.body) ? trades.body : [];
  renderBook();
  renderTrades();
}

async function loadHosts() {
  const { status, body } = await api("/v1/hosts");
  state.hostsMissing = status === 404 || status === 405;
  state.hosts = status === 200 && body && Array.isArray(body.hosts) ? body.hosts : [];
  renderHosts();
}

async function loadJobs() {
  const { status, body } = await api("/v1/jobs?limit=100");
  state.jobsMissing = status === 404 || status === 405;
  if (status === 200 && body && Array.isArray(body.jobs)) {
    state.jobs = new Map(body.jobs.map((j) => [j.id, j]));
  } else {
    state.jobs = new Map();
  }
  renderJobs();
}

async function loadDetail() {
  const d = state.detail;
  if (!d) return;
  if (d.kind === "job" && !state.jobsMissing) {
    const { status, body } = await api(`/v1/jobs/${encodeURIComponent(d.id)}`);
    if (status === 200 && body) state.jobs.set(body.id, body);
  }
  const job = state.jobs.get(d.id);
  if (job && state.logFollow === null) followLogs(d.id);
  if (d.kind === "bid" || (job && job.state === "queued")) {
    const { status, body } = await api(`/v1/bids/${encodeURIComponent(d.id)}/explain`);
    state.explain = { id: d.id, status, body };
  } else {
    state.explain = null;
  }
  renderDetail();
}

// ---- refreshing -----------------------------------------------------------

const pending = new Set();
let timer = null;

/** Reloads parts of the page soon, coalescing bursts of events. */
function schedule(...parts) {
  parts.forEach((p) => pending.add(p));
  if (timer) return;
  timer = setTimeout(runPending, 150);
}

async function runPending() {
  timer = null;
  const parts = new Set(pending);
  pending.clear();
  const all = parts.has("all");
  const jobs = [];
  if (all || parts.has("info")) jobs.push(loadInfo());
  if (all || parts.has("classes")) jobs.push(loadClasses().then(loadClass));
  else if (parts.has("class")) jobs.push(loadClass());
  if (all || parts.has("hosts")) jobs.push(loadHosts());
  if (all || parts.has("jobs")) jobs.push(loadJobs());
  const results = await Promise.allSettled(jobs);
  const failed = results.filter((r) => r.status === "rejected");
  if (failed.length && failed.length === results.length) {
    state.failures++;
    setConn("offline", `cannot reach the market: ${failed[0].reason && failed[0].reason.message}`);
  } else {
    state.failures = 0;
    setConn(state.sseOpen ? "live" : "polling");
  }
  if (all) state.lastRefresh = Date.now();
  if (all || parts.has("detail")) loadDetail().catch(() => {});
}

function setConn(kind, why) {
  const el = $("conn");
  el.dataset.state = kind;
  el.textContent = { live: "live", polling: "polling", offline: "offline", connecting: "connecting…" }[kind];
  el.title = why || (kind === "live" ? "following /v1/events" : kind === "polling" ? "event stream down: polling every 5 s" : "");
}

function connect() {
  if (!window.EventSource) return;
  const es = new EventSource("/v1/events");
  const parse = (e) => {
    try {
      return JSON.parse(e.data);
    } catch (_) {
      return {};
    }
  };
  es.onopen = () => {
    state.sseOpen = true;
    setConn("live");
    schedule("all"); // what happened while the stream was down
  };
  es.onerror = () => {
    state.sseOpen = false;
    if (state.failures === 0) setConn("polling");
    if (es.readyState === EventSource.CLOSED) setTimeout(connect, 15000);
  };
  // Any book change can change the selected class, what a waiting bid could
  // take, and (on a market without `job`/`host` events) jobs and hosts.
  const bookChanged = () => {
    schedule("classes");
    if (state.detail) schedule("detail");
    if (!state.jobEvents) schedule("jobs");
    if (!state.hostEvents) schedule("hosts");
  };
  es.addEventListener("book", bookChanged);
  es.addEventListener("trade", bookChanged);
  es.addEventListener("job", (e) => {
    const job = parse(e);
    if (!job.id) return;
    state.jobEvents = true;
    state.jobsMissing = false;
    state.jobs.set(job.id, job);
    if (state.jobs.size > 500) {
      // keep the newest: a long-open page must not grow without bound
      const oldest = [...state.jobs.values()].sort((x, y) => (x.created || 0) - (y.created || 0));
      oldest.slice(0, state.jobs.size - 500).forEach((j) => state.jobs.delete(j.id));
    }
    renderJobs();
    if (state.detail && state.detail.id === job.id) schedule("detail");
  });
  es.addEventListener("host", (e) => {
    const host = parse(e);
    if (!host.address) return;
    state.hostEvents = true;
    state.hostsMissing = false;
    const i = state.hosts.findIndex((x) => x.address === host.address);
    if (i >= 0) state.hosts[i] = host;
    else state.hosts.push(host);
    renderHosts();
  });
  es.addEventListener("lagged", () => schedule("all"));
}

// Fallback poll: every 5 s while the stream is down, every 30 s while it is up.
setInterval(() => {
  const every = state.sseOpen ? 30000 : 5000;
  if (Date.now() - state.lastRefresh >= every) schedule("all");
  // relative times ("3 s ago") age
  renderHosts();
  renderJobs();
}, 2500);

// ---- rendering: header, classes -------------------------------------------

function renderInfo() {
  const i = state.info;
  if (!i) return;
  $("info").textContent = `chain ${i.domain.chainId} · journal ${num(i.journal_entries)} entries`;
}

/** The selection in the address: `#class=gpu-24g&bid=0x…` (or `&job=0x…`), so a link shows the same. */
function writeHash() {
  const q = new URLSearchParams();
  if (state.selected) q.set("class", state.selected);
  if (state.detail) q.set(state.detail.kind, state.detail.id);
  history.replaceState(null, "", `#${q}`);
}

function readHash() {
  const q = new URLSearchParams(location.hash.slice(1));
  select(q.get("class"));
  const job = q.get("job");
  const bid = q.get("bid");
  if (job && (!state.detail || state.detail.id !== job)) openDetail({ kind: "job", id: job });
  else if (bid && (!state.detail || state.detail.id !== bid)) openDetail({ kind: "bid", id: bid });
}

function select(cls) {
  if (!cls || cls === state.selected) return;
  state.selected = cls;
  state.book = null;
  state.market = null;
  state.trades = [];
  writeHash();
  renderClasses();
  renderBook();
  renderTrades();
  schedule("class");
}

function renderClasses() {
  const rows = state.classes.map((c) =>
    h("tr", { class: c.class === state.selected ? "selected" : null, dataset: { class: c.class }, onclick: () => select(c.class) },
      h("td", null, c.class),
      h("td", { class: "num bid" }, num(c.best_bid)),
      h("td", { class: "num ask" }, num(c.best_ask)),
      h("td", { class: "num" }, num(c.last_price)),
      h("td", { class: "num" }, num(c.deals))));
  fill($("classes"), rows);
  empty("classes-empty", rows.length ? null : "this market trades no classes");
}

// ---- rendering: the book and the depth chart ------------------------------

function needs(req) {
  if (!req) return "—";
  const parts = [];
  if (req.gpu) parts.push(req.min_vram ? `GPU ≥ ${bytes(req.min_vram)}` : "GPU");
  if (req.cores) parts.push(`${req.cores} cores`);
  if (req.encodings && req.encodings.length) parts.push(req.encodings.join("+"));
  return parts.join(", ") || "any host";
}

function renderBook() {
  $("book-class").textContent = state.selected || "";
  const b = state.book;
  const offers = b ? b.offers : [];
  const bids = b ? b.bids : [];
  fill($("offers"), offers.map((o) =>
    h("tr", null,
      h("td", { class: "num ask" }, num(o.price)),
      h("td", { class: "num" }, `${num(o.free_slots)}/${num(o.slots)}`),
      h("td", null, mono(o.host)),
      h("td", null, (o.capabilities && o.capabilities.gpu_model) || "CPU"),
      h("td", { class: "num" }, o.capabilities && o.capabilities.vram ? bytes(o.capabilities.vram) : "—"))));
  fill($("bids"), bids.map((x) =>
    h("tr", {
      class: state.detail && state.detail.id === x.id ? "selected" : null,
      title: "why does this bid wait?",
      onclick: () => openDetail({ kind: "bid", id: x.id, bid: x }),
    },
      h("td", { class: "num bid" }, num(x.max_price)),
      h("td", { class: "num" }, `${num(x.waiting_replicas)}/${num(x.replicas)}`),
      h("td", { class: "wrap" }, needs(x.requirements)),
      h("td", { class: "num" }, ago(x.deadline)))));
  empty("offers-empty", b && !offers.length ? "no offers yet — start a host with `netmind host run`" : null);
  empty("bids-empty", b && !bids.length ? "no bids waiting — submit a job with `netmind job submit`" : null);
  const m = state.market;
  const spread = m && m.best_ask && m.best_bid ? Number(m.best_ask) - Number(m.best_bid) : null;
  $("book-summary").textContent = b
    ? `${offers.length} offers · ${bids.length} bids${spread !== null ? ` · spread ${num(String(spread))}` : ""}`
    : "";
  drawDepth($("depth"), state.market);
}

// ---- rendering: trades and the price chart --------------------------------

function renderTrades() {
  $("trades-class").textContent = state.selected || "";
  fill($("trade-list"), state.trades.map((t) =>
    h("tr", null,
      h("td", { title: new Date(Number(t.at)).toISOString() }, clock(t.at)),
      h("td", { class: "num" }, num(t.price)),
      h("td", { class: "num" }, num(t.seconds)),
      h("td", null, mono(t.deal)))));
  empty("trades-empty", state.market && !state.trades.length ? "no trades yet — a bid trades when an offer is at or below its maximum" : null);
  const m = state.market;
  $("market-summary").textContent = m
    ? `last ${num(m.last_price)} · best bid ${num(m.best_bid)} · best ask ${num(m.best_ask)} · ${num(m.deals)} deals · notional ${num(m.notional)}`
    : "";
  drawPrice($("price"), state.market);
}

// ---- rendering: hosts ------------------------------------------------------

const HOST_ORDER = { busy: 0, idle: 1, paused: 2, offline: 3 };

function renderHosts() {
  const hosts = state.hosts.slice().sort((a, b) =>
    (HOST_ORDER[a.status] ?? 4) - (HOST_ORDER[b.status] ?? 4) || (b.last_seen || 0) - (a.last_seen || 0));
  fill($("hosts"), hosts.map((x) =>
    h("tr", null,
      h("td", null, mono(x.address)),
      h("td", null, badge(x.status)),
      h("td", null, x.gpu_model || "CPU only"),
      h("td", { class: "num" }, x.vram ? bytes(x.vram) : "—"),
      h("td", { class: "num" }, num(x.cores)),
      h("td", { class: "num", title: `${num(x.running)} running` }, `${num(x.slots_free)}/${num(x.slots_total)} free`),
      h("td", { class: "num" }, num(x.price)),
      h("td", { class: "num" }, ago(x.last_seen)))));
  const online = hosts.filter((x) => x.status !== "offline").length;
  $("hosts-summary").textContent = hosts.length ? `${online} online · ${hosts.filter((x) => x.status === "busy").length} busy` : "";
  empty("hosts-empty", hosts.length ? null : "no hosts online — start one with `netmind host run --market URL --key KEYSTORE`",
    state.hostsMissing ? "this market does not list hosts yet (`GET /v1/hosts`)" : null);
}

// ---- rendering: jobs and their details ------------------------------------

function renderJobs() {
  const filter = $("job-filter").value;
  const jobs = [...state.jobs.values()]
    .filter((j) => filter === "all" || (filter === "active" ? ACTIVE : FINISHED).includes(j.state))
    .sort((a, b) => (b.created || 0) - (a.created || 0));
  fill($("jobs"), jobs.map((j) => {
    const deals = j.deals || [];
    const accepted = deals.filter((d) => d.state === "accepted").length;
    return h("tr", { class: state.detail && state.detail.id === j.id ? "selected" : null, dataset: { job: j.id }, onclick: () => openDetail({ kind: "job", id: j.id }) },
      h("td", null, mono(j.id)),
      h("td", null, badge(j.state)),
      h("td", null, j.class || "—"),
      h("td", null, `${deals.length}/${num(j.replicas)}`, accepted ? ` · ${accepted} ok` : "",
        h("span", { class: "dots" }, deals.map((d) => h("span", { class: `dot s-${d.state}`, title: `replica ${d.replica}: ${d.state} on ${d.host}` })))),
      h("td", { class: "num" }, num(j.max_price)),
      h("td", null, j.result ? mono(j.result.output) : "—"),
      h("td", { class: "num" }, ago(j.updated)));
  }));
  let message = null;
  if (!jobs.length) {
    message = state.jobs.size ? `no ${filter} jobs` : "no jobs yet — submit one with `netmind job submit BUNDLE --input DIR`";
  }
  empty("jobs-empty", message, !state.jobs.size && state.jobsMissing ? "this market does not track jobs yet (`GET /v1/jobs`)" : null);
}

function openDetail(d) {
  state.detail = d;
  state.explain = null;
  state.logFollow = null;
  $("detail").hidden = false;
  writeHash();
  renderDetail();
  renderJobs();
  renderBook();
  schedule("detail");
  $("detail").scrollIntoView({ block: "nearest", behavior: "smooth" });
}

function closeDetail() {
  state.detail = null;
  state.explain = null;
  state.logFollow = null;
  $("detail").hidden = true;
  writeHash();
  renderJobs();
  renderBook();
}

function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.filter(([, v]) => v !== undefined).flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}

function table(head, rows) {
  return h("table", { class: "data" },
    h("thead", null, h("tr", null, head.map(([t, n]) => h("th", { class: n ? "num" : null }, t)))),
    h("tbody", null, rows));
}

function mismatch(m) {
  const k = m.kind;
  if (k === "price") return `price ${num(m.ask)} above the maximum ${num(m.max)}`;
  if (k === "vram") return `GPU memory ${bytes(m.have)} < ${bytes(m.need)}`;
  if (k === "memory") return `memory ${bytes(m.have)} < ${bytes(m.need)}`;
  if ("missing" in m) return `${k.replace(/-/g, " ")}: lacks ${m.missing}`;
  if ("have" in m) return `${k.replace(/-/g, " ")}: ${m.have} < ${m.need}`;
  return k.replace(/-/g, " ");
}

function renderExplain() {
  const e = state.explain;
  if (!e) return h("p", { class: "muted" }, "asking the market why it waits…");
  if (e.status === 404) return h("p", { class: "empty" }, "this bid is not waiting in the book any more (filled, cancelled or lapsed)");
  if (e.status !== 200 || !e.body) return h("p", { class: "empty" }, `the market could not explain this bid (${e.status})`);
  const x = e.body;
  const total = (x.by_reason || []).reduce((a, [, n]) => Math.max(a, n), 0) || 1;
  return h("div", { class: "explain" },
    h("div", { class: "callout" },
      x.match_price !== null && x.match_price !== undefined
        ? `It would match now at a maximum of ${num(x.match_price)} /s.`
        : `Too few compatible hosts at any price for ${x.waiting_replicas} waiting replica${x.waiting_replicas === 1 ? "" : "s"} on distinct hosts.`),
    kv([["waiting replicas", num(x.waiting_replicas)], ["offers it can take", num((x.matching || []).length)], ["offers ruled out", num((x.eliminated || []).length)]]),
    (x.by_reason || []).length ? h("h3", null, "Why offers were ruled out") : null,
    (x.by_reason || []).length ? h("div", { class: "bars" }, x.by_reason.flatMap(([reason, n]) => {
      const bar = h("div", { class: "bar" });
      bar.style.width = `${Math.max(4, (100 * n) / total)}%`;
      return [h("span", null, reason), h("div", null, bar), h("span", { class: "num" }, num(n))];
    })) : null,
    (x.nearest || []).length ? h("h3", null, "Nearest offers (priced out)") : null,
    (x.nearest || []).length ? table([["offer"], ["host"], ["price /s", 1], ["free", 1]], x.nearest.map((o) =>
      h("tr", null, h("td", null, mono(o.id)), h("td", null, mono(o.host)), h("td", { class: "num ask" }, num(o.price)), h("td", { class: "num" }, num(o.slots))))) : null,
    (x.eliminated || []).length ? h("details", null, h("summary", { class: "small muted" }, `every ruled-out offer (${x.eliminated.length})`),
      table([["host"], ["price /s", 1], ["reasons"]], x.eliminated.map(([o, why]) =>
        h("tr", null, h("td", null, mono(o.host)), h("td", { class: "num" }, num(o.price)), h("td", null, why.map(mismatch).join("; ")))))) : null);
}

function renderDetail() {
  const d = state.detail;
  const body = $("detail-body");
  if (!d) {
    body.replaceChildren();
    return;
  }
  const job = state.jobs.get(d.id);
  const parts = [];
  if (job) {
    $("detail-h").textContent = "Job";
    parts.push(kv([
      ["id", h("span", { class: "mono" }, job.id)], ["state", badge(job.state)], ["owner", mono(job.owner)], ["class", job.class],
      ["replicas", num(job.replicas)], ["max price /s", num(job.max_price)], ["bundle", mono(job.bundle)], ["input", mono(job.input)],
      ["created", job.created ? `${clock(job.created)} (${ago(job.created)})` : "—"], ["updated", ago(job.updated)],
    ]));
    if (job.result) {
      parts.push(h("div", { class: "callout" }, "Result accepted: output ", h("span", { class: "mono" }, job.result.output),
        ` agreed by ${(job.result.hosts || []).length} host${(job.result.hosts || []).length === 1 ? "" : "s"}`));
    }
    const deals = job.deals || [];
    parts.push(h("h3", null, "Replicas"));
    parts.push(deals.length
      ? table([["#", 1], ["host"], ["state"], ["price /s", 1], ["exit", 1], ["runtime", 1], ["output"]], deals.map((x) =>
        h("tr", null, h("td", { class: "num" }, num(x.replica)), h("td", null, mono(x.host)), h("td", null, badge(x.state)),
          h("td", { class: "num" }, num(x.price)), h("td", { class: "num" }, x.exit ?? "—"),
          h("td", { class: "num" }, x.runtime_ms !== undefined && x.runtime_ms !== null ? `${num(x.runtime_ms)} ms` : "—"),
          h("td", null, x.output ? mono(x.output) : "—"))))
      : h("p", { class: "empty" }, "no replica matched yet"));
    if (deals.length) parts.push(h("h3", null, "Logs"), h("div", { id: "job-logs" }, logBlocks(job)));
    if (job.state === "queued") {
      parts.push(h("h3", null, "Why it waits"), renderExplain());
    }
  } else {
    $("detail-h").textContent = "Waiting bid";
    const b = d.bid || (state.book && state.book.bids.find((x) => x.id === d.id));
    if (b) {
      parts.push(kv([
        ["id", h("span", { class: "mono" }, b.id)], ["owner", mono(b.owner)], ["max price /s", num(b.max_price)],
        ["waiting", `${num(b.waiting_replicas)} of ${num(b.replicas)} replicas`], ["needs", needs(b.requirements)], ["deadline", ago(b.deadline)],
      ]));
    }
    parts.push(h("h3", null, "Why it waits"), renderExplain());
  }
  body.replaceChildren(...parts);
  for (const p of body.querySelectorAll("pre.log")) p.scrollTop = p.scrollHeight;
}

// ---- job logs ----------------------------------------------------------------

/** The most of one log the page keeps; older text is dropped from the view. */
const LOG_KEEP = 256 * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Reads deal `id`'s log past what the page has, waiting up to `wait` ms for
 * more; true when anything changed.
 */
async function readLog(id, wait) {
  const had = state.logs.get(id) || { text: "", next: 0, len: 0, complete: false, held: false };
  const { status, body } = await api(`/v1/deals/${encodeURIComponent(id)}/logs?from=${had.next}&wait=${wait}`);
  if (status !== 200 || !body) throw new Error(`logs of ${id}: ${status}`);
  let text = had.text + (body.text || "");
  if (text.length > LOG_KEEP) text = `…\n${text.slice(text.length - LOG_KEEP)}`;
  const log = { text, next: body.next, len: body.len, complete: body.complete, held: body.held };
  state.logs.set(id, log);
  return Boolean(body.text) || log.complete !== had.complete || log.held !== had.held;
}

/**
 * Follows the logs of the replicas of job `id` while its view is open: reads
 * each replica's new text, then long-polls a running one (the market answers
 * as soon as its host sends more), until every log is complete.
 */
async function followLogs(id) {
  const token = {};
  state.logFollow = token;
  const open = () => state.logFollow === token && state.detail && state.detail.id === id;
  while (open()) {
    const job = state.jobs.get(id);
    const deals = ((job && job.deals) || []).filter((d) => !(state.logs.get(d.id) || {}).complete);
    if (!deals.length && job && FINISHED.includes(job.state)) break;
    try {
      let changed = false;
      for (const d of deals) changed = (await readLog(d.id, 0)) || changed;
      if (changed && open()) renderLogs();
      if (changed) continue;
      const live = deals.find((d) => (d.state === "assigned" || d.state === "running") && !state.logs.get(d.id).held);
      if (live) {
        if ((await readLog(live.id, 20000)) && open()) renderLogs();
      } else {
        await sleep(1000);
      }
    } catch (_) {
      await sleep(2000);
    }
  }
  if (state.logFollow === token) state.logFollow = undefined;
}

/** One block per replica: its host, state and log. */
function logBlocks(job) {
  return (job.deals || []).map((d) => {
    const log = state.logs.get(d.id);
    const what = !log ? "reading…"
      : log.held ? "held until the replicas agree"
      : !log.text ? (log.complete ? "wrote nothing" : "no output yet") : null;
    return h("div", { class: "log-block", dataset: { deal: d.id } },
      h("div", { class: "small muted" }, `replica ${d.replica} on `, mono(d.host), " ", badge(d.state),
        log && log.len > LOG_KEEP ? ` · last ${bytes(LOG_KEEP)} of ${bytes(log.len)}` : ""),
      what ? h("p", { class: "empty" }, what) : h("pre", { class: "log" }, log.text));
  });
}

/** Redraws the open job's logs in place: a log read at its end stays there. */
function renderLogs() {
  const el = $("job-logs");
  const job = state.detail && state.jobs.get(state.detail.id);
  if (!el || !job) return;
  const was = new Map([...el.querySelectorAll("pre.log")].map((p) =>
    [p.parentElement.dataset.deal, p.scrollTop + p.clientHeight >= p.scrollHeight - 4 ? null : p.scrollTop]));
  el.replaceChildren(...logBlocks(job));
  for (const p of el.querySelectorAll("pre.log")) {
    const top = was.get(p.parentElement.dataset.deal);
    p.scrollTop = top === undefined || top === null ? p.scrollHeight : top;
  }
}

// ---- theme and wiring -----------------------------------------------------

const THEMES = ["auto", "light", "dark"];

function applyTheme(t) {
  if (t === "auto") document.documentElement.removeAttribute("data-theme");
  else document.documentElement.dataset.theme = t;
  $("theme").textContent = `theme: ${t}`;
  try {
    localStorage.setItem("netmind-theme", t);
  } catch (_) { /* storage may be off */ }
  drawDepth($("depth"), state.market);
  drawPrice($("price"), state.market);
}

function start() {
  let theme = "auto";
  try {
    theme = localStorage.getItem("netmind-theme") || "auto";
  } catch (_) { /* storage may be off */ }
  applyTheme(THEMES.includes(theme) ? theme : "auto");
  $("theme").addEventListener("click", () => {
    const cur = document.documentElement.dataset.theme || "auto";
    applyTheme(THEMES[(THEMES.indexOf(cur) + 1) % THEMES.length]);
  });
  $("interval").addEventListener("change", () => schedule("class"));
  $("job-filter").addEventListener("change", renderJobs);
  $("detail-close").addEventListener("click", closeDetail);
  window.addEventListener("hashchange", readHash);
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    drawDepth($("depth"), state.market);
    drawPrice($("price"), state.market);
  });
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      drawDepth($("depth"), state.market);
      drawPrice($("price"), state.market);
    }, 100);
  });
  renderBook();
  renderTrades();
  renderHosts();
  renderJobs();
  readHash();
  schedule("all");
  connect();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
