// polylab dashboard page: one EventSource on /events, tables and a plotly.js PnL chart.
// Money arrives in integer micros (1e6 = $1) and is shown with integer arithmetic.
"use strict";
const $ = (id) => document.getElementById(id);
const KEEP = 200; // rows kept per table
const pnl = { t: [], total: [], lastT: 0, byStrategy: new Map(), ledger: null, dirty: false };
let states = 0;
let session = null;
let lastId = ""; // the stream's cursor: a new EventSource resumes from it (?since=)

function usd(micros) {
  if (micros === undefined || micros === null) return "–";
  const neg = micros < 0, a = Math.abs(micros);
  const whole = Math.floor(a / 1e6), frac = String(a % 1e6).padStart(6, "0").slice(0, 2);
  return (neg ? "−" : "") + whole.toLocaleString("en-US") + "." + frac;
}
const px = (m) => (m / 1e6).toFixed(3);
const shares = (m) => (m / 1e6).toLocaleString("en-US", { maximumFractionDigits: 2 });
const short = (s) => (s && s.length > 14 ? s.slice(0, 6) + "…" + s.slice(-6) : s || "");
const clock = (ns) => new Date(ns / 1e6).toISOString().slice(11, 23);

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
function setRows(tableId, rows) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren(...rows.map((r) => {
    const tr = document.createElement("tr");
    tr.append(...r.map((c) => (Array.isArray(c) ? cell(c[0], c[1]) : cell(c))));
    return tr;
  }));
}
function prependRow(tableId, cells, key) {
  const body = $(tableId).tBodies[0];
  if (key && body.querySelector(`tr[data-key="${CSS.escape(key)}"]`)) return;
  const tr = document.createElement("tr");
  if (key) tr.dataset.key = key;
  tr.dataset.seen = String(Date.now()); // when the row appeared (ms since the epoch)
  tr.append(...cells.map((c) => (Array.isArray(c) ? cell(c[0], c[1]) : cell(c))));
  body.prepend(tr);
  while (body.rows.length > KEEP) body.deleteRow(-1);
}

function onState(s) {
  states += 1;
  if (s.config_id && s.config_id !== runningId) { runningId = s.config_id; loadConfig(); }
  $("states").textContent = String(states);
  $("last-state").textContent = clock(s.ts_ns);
  $("mode").textContent = s.mode;
  $("halted").hidden = !s.kill_switch;
  $("uptime").textContent = (s.uptime_ms / 1000).toFixed(1) + " s";
  $("stale").textContent = String(s.stale_books);
  $("latency").textContent = `${s.tick_to_order_p50_us} / ${s.tick_to_order_p99_us} µs`;
  $("cash").textContent = "$" + usd(s.cash_micros);
  $("pnl").textContent = `$${usd(s.realized_pnl_micros)} / $${usd(s.unrealized_pnl_micros)}`;
  $("daily").textContent = "$" + usd(s.daily_pnl_micros);
  $("headroom").textContent = "$" + usd(s.loss_headroom_micros);
  $("oo-headroom").textContent = String(s.open_orders_headroom);
  setRows("feeds", (s.feeds || []).map((f) => [f.shard, [f.connected ? "yes" : "NO", f.connected ? "" : "rejected"], f.last_msg_age_ms, f.reconnects, f.stale_books]));
  setRows("positions", (s.positions || []).map((p) => [short(p.token_id), shares(p.size_micros), usd(p.cost_micros), px(p.mark_price_micros), usd(p.unrealized_micros)]));
  setRows("orders", (s.open_orders || []).map((o) => [short(o.order_id), short(o.token_id), o.side, px(o.price_micros), shares(o.size_micros), shares(o.filled_micros)]));
  const t = s.ts_ns / 1e6;
  if (t - pnl.lastT >= 1000) { // one chart point a second
    pnl.lastT = t;
    pnl.t.push(new Date(t));
    pnl.total.push((s.realized_pnl_micros + s.unrealized_pnl_micros) / 1e6);
    if (pnl.t.length > 3600) { pnl.t.shift(); pnl.total.shift(); }
    pnl.dirty = true;
  }
}

function onSignal(m) {
  if (m.type === "config") { // a hot reload: the row says which config trades from here on
    prependRow("signals", [clock(m.ts_ns), "config", "swap", "", ["→ " + short(m.new_id), ""], m.by || ""], "config-" + m.ts_ns);
    loadConfig(); // and the Configuration panel shows it
    return;
  }
  prependRow("signals", [clock(m.ts_ns), m.strategy, m.kind, usd(m.edge_micros), [m.decision, m.decision], m.rule || ""], m.intent_id);
}
function onTrade(m) {
  if (m.type !== "fill") return;
  prependRow("fills", [clock(m.ts_ns), m.strategy, short(m.token_id), m.side, shares(m.size_micros), px(m.price_micros), usd(m.fee_micros)], m.fill_id);
  const s = pnl.byStrategy.get(m.strategy) || { t: [], y: [], sum: 0 };
  s.sum += m.realized_micros;
  s.t.push(new Date(m.ts_ns / 1e6)); s.y.push(s.sum / 1e6);
  pnl.byStrategy.set(m.strategy, s);
  pnl.dirty = true;
}
function onError(m, id) {
  const what = m.type === "rejection" ? `${m.by}: ${m.rule}` : m.error;
  prependRow("errors", [clock(m.ts_ns), m.source || m.strategy || "", what, m.message || m.reason || ""], id);
}

function drawChart() {
  if (!pnl.dirty || typeof Plotly === "undefined") return;
  pnl.dirty = false;
  const traces = [{ x: pnl.t, y: pnl.total, name: "total (state)", mode: "lines" }];
  if (pnl.ledger) traces.unshift({ x: pnl.ledger.t, y: pnl.ledger.y, name: "total (ledger)", mode: "lines", line: { dash: "dot" } });
  for (const [name, s] of pnl.byStrategy) traces.push({ x: s.t, y: s.y, name: name + " realized", mode: "lines+markers" });
  Plotly.react("pnl-chart", traces, {
    margin: { l: 50, r: 10, t: 10, b: 30 }, paper_bgcolor: "#161b22", plot_bgcolor: "#161b22",
    font: { color: "#e6e6e6", size: 11 }, yaxis: { title: { text: "$" } }, legend: { orientation: "h" },
  }, { displayModeBar: false, responsive: true });
}

function connect() {
  const es = new EventSource(lastId ? "/events?since=" + encodeURIComponent(lastId) : "/events");
  const parse = (fn) => (ev) => {
    if (ev.lastEventId) lastId = ev.lastEventId;
    try { fn(JSON.parse(ev.data), ev.lastEventId); } catch (e) { console.error(e); }
  };
  es.onopen = () => { $("conn").textContent = "live"; $("conn").className = "badge on"; };
  es.onerror = () => {
    $("conn").textContent = "reconnecting…"; $("conn").className = "badge off";
    if (es.readyState === EventSource.CLOSED) checkSession(); // refused: logged out or expired
  };
  es.addEventListener("state", parse(onState));
  es.addEventListener("signals", parse(onSignal));
  es.addEventListener("trades", parse(onTrade));
  es.addEventListener("errors", parse(onError));
  es.addEventListener("bye", () => { // session ended or renewed: reconnect with the new cookie
    es.close();
    $("conn").textContent = "reconnecting…"; $("conn").className = "badge off";
    checkSession();
  });
}

async function checkSession() {
  const r = await fetch("/api/session", { cache: "no-store" });
  if (r.status === 401) { window.location.assign("/"); return; }
  session = await r.json();
  if (!document.querySelector("#conn.on")) connect();
}

function freshLeft() {
  if (!session) return 0;
  return session.fresh_until - Math.floor(Date.now() / 1000);
}
function showFresh() {
  const left = freshLeft();
  $("kill").disabled = $("resume").disabled = $("rollback").disabled = left <= 0;
  $("fresh").textContent = left > 0 ? `controls open ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}` : "controls need a fresh login";
}

function confirmDialog(text) {
  return new Promise((resolve) => {
    const d = $("confirm");
    $("confirm-text").textContent = text;
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
    d.showModal();
  });
}
async function control(action, text) {
  if (!(await confirmDialog(text))) return;
  const r = await fetch("/api/control", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ action, confirm: true, reason: "dashboard button" }),
  });
  const body = await r.json().catch(() => ({}));
  $("fresh").textContent = r.ok ? `${action} sent` : `refused: ${body.error || r.status}`;
  setTimeout(loadControls, 500); // the runner records it in the ledger as it applies it
  setTimeout(loadConfig, 500);
}

async function loadHistory() { // the run and its PnL so far, from the ledger (if any)
  const r = await fetch("/api/history", { cache: "no-store" });
  if (!r.ok) return;
  const h = await r.json();
  if (!h.run) return;
  $("run").textContent = `${h.run.id} (${h.run.mode}, config ${h.run.config_id})`;
  pnl.ledger = {
    t: h.pnl.map((p) => new Date(p[0] / 1e6)),
    y: h.pnl.map((p) => (p[1] + p[2]) / 1e6), // realized + unrealized
  };
  pnl.dirty = true;
}

// -- configuration (ledger: promoted config, provenance, promotion history) and controls ----
const when = (ns) => (ns ? new Date(ns / 1e6).toISOString().replace("T", " ").slice(0, 19) : "–");
let runningId = null; // the config id poly:state names (null: not told)

function metricText(key, v) {
  if (typeof v === "number" && key.endsWith("_micros")) return "$" + usd(v);
  if (typeof v === "number" && !Number.isInteger(v)) return v.toFixed(4);
  return String(v);
}
function flatMetrics(obj, prefix, out) { // nested metric blocks → dotted rows (lists summarized)
  for (const [k, v] of Object.entries(obj || {})) {
    const key = prefix ? prefix + "." + k : k;
    if (Array.isArray(v)) out.push([key, `${v.length} entries`]);
    else if (v && typeof v === "object") flatMetrics(v, key, out);
    else if (v !== null && v !== undefined) out.push([key, metricText(k, v)]);
  }
  return out;
}
function gateRows(gates) { // {name: {metric, op, limit, value, passed, reason}} (pipeline.gates)
  return Object.entries(gates || {}).map(([name, g]) => {
    if (g && typeof g === "object") {
      const ok = g.passed === true;
      const detail = "value" in g ? `${g.value ?? "missing"} ${g.op || ""} ${g.limit ?? ""}` : JSON.stringify(g);
      return [name, [ok ? "pass" : "FAIL", ok ? "pass" : "fail"], detail + (g.reason ? ` (${g.reason})` : "")];
    }
    return [name, [g === true ? "pass" : "FAIL", g === true ? "pass" : "fail"], String(g)];
  });
}
function showConfig(c) {
  const a = c.active;
  $("cfg-id").textContent = a ? a.id : "none promoted";
  $("cfg-id").className = "mono";
  const r = c.running;
  const rid = runningId || (r && r.id);
  $("cfg-running").textContent = !rid ? "–" : (a && rid === a.id ? "the promoted config" : rid + (r && !r.known ? " (not in the ledger)" : ""));
  $("cfg-running").className = rid && a && rid !== a.id ? "mono warn" : "mono";
  const shown = a || (r && r.config); // what the panel details: the promoted, else the running one
  $("cfg-when").textContent = a ? when(a.promoted_ns) : "–";
  $("cfg-strategies").textContent = shown ? shown.strategies.join(", ") : "–";
  $("cfg-git").textContent = shown ? shown.git_sha : "–";
  setRows("cfg-thresholds", shown ? shown.thresholds.map((t) => [t.name, t.value, t.unit]) : []);
  setRows("cfg-gates", shown ? gateRows(shown.gates) : []);
  setRows("cfg-metrics", shown ? flatMetrics(shown.metrics, "", []).slice(0, 40) : []);
  setRows("cfg-data", shown ? Object.entries(shown.data_hashes).map(([f, h]) => [f, [h, "mono"]]) : []);
  setRows("promotions", c.history.map((p) => [when(p.ts_ns), [p.action, p.action === "rollback" ? "fail" : "pass"],
    `${p.previous_id ? p.previous_id.slice(0, 12) : "–"} → ${p.config_id.slice(0, 12)}`, p.by, p.reason]));
}
async function loadConfig() {
  const r = await fetch("/api/config", { cache: "no-store" });
  if (r.ok) showConfig(await r.json());
}
async function loadControls() { // kill switch / resume presses the runner recorded (ledger)
  const r = await fetch("/api/controls", { cache: "no-store" });
  if (!r.ok) return;
  setRows("controls", (await r.json()).map((c) => [when(c.ts_ns), c.action, c.by, c.reason, c.run_id]));
}

async function refresh() {
  const r = await fetch("/refresh", { method: "POST" });
  if (r.status === 401) window.location.assign("/");
  else session = await (await fetch("/api/session")).json();
}

document.addEventListener("DOMContentLoaded", async () => {
  $("kill").addEventListener("click", () => control("kill_switch", "Halt all new intents now?"));
  $("resume").addEventListener("click", () => control("resume", "Resume trading?"));
  $("rollback").addEventListener("click", () => control("rollback_config", "Roll back to the previously promoted configuration? The runner reloads it."));
  await checkSession();
  loadHistory();
  loadConfig();
  loadControls();
  setInterval(loadConfig, 10000);
  setInterval(loadControls, 5000);
  showFresh();
  setInterval(showFresh, 1000);
  setInterval(drawChart, 1000);
  setInterval(refresh, 10 * 60 * 1000); // tokens live 15 min
});
