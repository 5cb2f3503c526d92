// The console: key, order form, live timelines, history and the stage chart, wired together.
// It talks to its own origin, or to the API origin its deployment configures (`apiUrl` in its
// own /console/config.json): never to one named in the page's URL, which anyone can link to.

import { Api, keyProblem } from "./api.js";
import { drawChart } from "./chart.js";
import { dateTime, el, short, token } from "./format.js";
import { OrderForm } from "./orderform.js";
import { Stream } from "./stream.js";
import { addFrame, describeRequest, timelineView } from "./timeline.js";

const KEY_STORAGE = "orders-console.api-key";
const FALLBACK_TERMINAL = ["confirmed", "failed", "expired", "cancelled"];
const FALLBACK_CANCELLABLE = ["pending", "watching"];
const HISTORY_PAGE = 20;
const CHART_ORDERS = 10;

const $ = (selector) => document.querySelector(selector);
const api = new Api(""); // the page's own origin until its config names the deployment's API
const state = {
  config: { wsUrl: null, statuses: [], terminal: FALLBACK_TERMINAL, cancellable: FALLBACK_CANCELLABLE },
  orders: new Map(), // orderId -> {id, request, status, frames: Map(seq -> frame), view}
  selected: null,
  cursor: null,
  keyStatusSeq: 0, // bumped by every key status written: an answer older than it is stale
  revokedKey: null, // a key the HTTP API has called revoked: no later check says it is accepted
};

// -- orders and their frames -----------------------------------------------------------------

function order(id) {
  let o = state.orders.get(id);
  if (!o) {
    o = { id, request: null, status: null, frames: new Map(), view: null, createdAt: null };
    state.orders.set(id, o);
  }
  return o;
}

/** The highest seq with every seq before it held: what a resubscribe asks to resume after. */
function lastSeq(o) {
  let seq = 0;
  while (o.frames.has(seq + 1)) seq += 1;
  return seq;
}

function isDone(o) {
  const last = o.frames.get(lastSeq(o));
  return Boolean(last && state.config.terminal.includes(last.status));
}

/** Take a status frame: drop it if already held (replay overlap), note a gap, show it. */
function takeFrame(frame) {
  const o = order(frame.orderId);
  if (o.frames.has(frame.seq)) return false;
  const gap = frame.seq > lastSeq(o) + 1;
  o.frames.set(frame.seq, frame);
  if (frame.request && !o.request) o.request = frame.request;
  const newest = Math.max(...o.frames.keys());
  o.status = o.frames.get(newest).status;
  addFrame(o, frame);
  if (gap) stream.replay(o.id); // ask for what is missing; what comes twice is dropped above
  if (state.selected === o.id) renderHead(o);
  updateHistoryRow(o);
  if (isDone(o)) {
    drawStageChart();
    if (frame.seq === newest) refreshHistorySoon();
  }
  return true;
}

// -- the live stream -------------------------------------------------------------------------

const stream = new Stream({
  onFrame: takeFrame,
  onError: (error) => setStream(`Live stream: ${error.message}`, "error"),
  onState: (s, detail) => {
    if (s === "live") setStream("Live stream: connected", "live");
    else if (s === "connecting") setStream("Live stream: connecting…", "");
    else if (s === "closed") setStream("Live stream: idle (nothing to follow)", "");
    else if (s === "reconnecting") {
      setStream("Live stream: reconnecting… (missed events are replayed)", "warn");
      // Explained once per run of refused upgrades: each retry asking again would overwrite
      // what the key's status line learnt since (an order refused as revoked, say).
      if (detail === "failed" && stream.failures === 1) explainRefusal();
    } else if (s === "refused") {
      setStream("Live stream: could not connect.", "error");
      explainRefusal();
    }
  },
  lastSeq: (id) => lastSeq(order(id)),
  isDone: (id) => isDone(order(id)),
});

function setStream(text, kind) {
  const node = $("#stream-state");
  node.textContent = text;
  node.dataset.state = kind;
}

/** A page cannot read why a WebSocket upgrade failed: ask the HTTP API about the key. */
async function explainRefusal() {
  const key = api.key;
  if (state.revokedKey === key) return; // already known: the HTTP API said so
  try {
    await api.orders({ limit: 1 });
    // The HTTP authorizer may answer from its cache after an order was refused as revoked:
    // what the API said last about this key stands.
    if (api.key !== key || state.revokedKey === key) return;
    setKeyStatus(
      "The HTTP API accepts this key but the live stream could not connect: the WebSocket API " +
        "refuses revoked keys at once (the HTTP API may still accept one for a few minutes), or it is unreachable.",
      "error",
    );
  } catch (error) {
    if (api.key === key) onApiError(error) || setKeyStatus(error.message, "error");
  }
}

function websocketUrl() {
  if (state.config.wsUrl) return state.config.wsUrl;
  const base = new URL(api.base || location.origin);
  base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
  base.pathname = "/api/orders/execute";
  return base.toString();
}

// -- the key ---------------------------------------------------------------------------------

function setKeyStatus(text, kind = "") {
  state.keyStatusSeq += 1;
  const node = $("#key-status");
  node.textContent = text;
  node.dataset.state = kind;
}

async function useKey(key) {
  api.key = key;
  stream.configure(websocketUrl(), key);
  if (!key) {
    setKeyStatus("Paste your API key to start (it begins with oek_).", "error");
    return false;
  }
  const seq = state.keyStatusSeq;
  try {
    await api.orders({ limit: 1 });
  } catch (error) {
    onApiError(error) || setKeyStatus(error.message, "error");
    return false;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  if (state.revokedKey === key) {
    // the HTTP authorizer's cache still lets a revoked key read for a while
    setKeyStatus(keyProblem({ status: 403, code: "api_key_revoked" }), "error");
  } else if (state.keyStatusSeq === seq) {
    // written only if nothing more specific was learnt meanwhile (the stream's refusal, say)
    setKeyStatus("Key accepted.", "ok");
  }
  await loadHistory(true);
  await loadRecentForChart();
  return true;
}

function onApiError(error) {
  if (error.status === 403 && error.code === "api_key_revoked") state.revokedKey = api.key;
  const problem = keyProblem(error);
  if (problem) setKeyStatus(problem, "error");
  return problem;
}

// -- the order form --------------------------------------------------------------------------

const form = new OrderForm($("#order-form"), showQuote);

/** Quote (limit orders): every pool's price for the form's pair and amount, the best shown. */
async function showQuote(values) {
  if (!api.key) {
    setKeyStatus("Paste your API key first.", "error");
    return;
  }
  form.showQuote("Quoting…");
  try {
    const quote = await api.quote(values);
    const route = quote.route && Array.isArray(quote.route.legs) && quote.route.legs.length > 1
      ? ` Split over ${quote.route.legs.map((leg) => `${leg.venue} (${leg.amountIn})`).join(" + ")}: ` +
        `${quote.route.amountOut} ${token(quote.tokenOut)}, +${quote.route.gainBps} bps.`
      : "";
    form.showQuote(`Now: ${quote.amountOut} ${token(quote.tokenOut)} for ${quote.amountIn} ${token(quote.tokenIn)} ` +
      `(${quote.price} per ${token(quote.tokenIn)}) on ${quote.venue}, slot ${quote.slot}.${route}`);
  } catch (error) {
    form.showQuote(onApiError(error) || `No quote: ${error.message}`);
  }
}

async function submitOrder(event) {
  event.preventDefault();
  form.clearErrors();
  if (!api.key) {
    setKeyStatus("Paste your API key first.", "error");
    $("#api-key").focus();
    return;
  }
  const button = $("#order-submit");
  button.disabled = true;
  const body = form.body();
  try {
    const accepted = await api.submit(body, crypto.randomUUID());
    const o = order(accepted.orderId);
    o.request = body;
    o.createdAt = new Date().toISOString();
    select(o.id);
    stream.follow(o.id);
    prependHistoryRow({ orderId: o.id, status: accepted.status, request: body, createdAt: o.createdAt });
  } catch (error) {
    if (!onApiError(error)) form.showError(error);
    else form.showError({ message: error.message });
  } finally {
    button.disabled = false;
  }
}

// -- the timeline panel ----------------------------------------------------------------------

function select(id) {
  state.selected = id;
  const o = order(id);
  renderHead(o);
  $("#timeline").replaceChildren(timelineView(o));
}

function renderHead(o) {
  const last = o.frames.get(Math.max(0, ...o.frames.keys()));
  const status = o.status || (last && last.status) || "pending";
  const type = (o.request && o.request.orderType) || "market";
  // Only a limit or sniper order that has not triggered can be cancelled (the API says 409
  // otherwise, e.g. when it triggered a moment ago).
  const cancellable = type !== "market" && state.config.cancellable.includes(status);
  const parts = [
    el("p", { class: "order-line" },
      el("span", { class: `badge status-${status}`, id: "timeline-status", text: status }), " ",
      el("strong", { text: o.request ? describeRequest(o.request) : "order" })),
    el("p", { class: "order-id" }, "Order ", el("code", { text: o.id })),
  ];
  if (cancellable) {
    parts.push(el("button", { type: "button", class: "secondary", id: "cancel-order", onclick: () => cancelOrder(o.id) }, "Cancel order"));
  }
  parts.push(el("p", { class: "form-error", id: "cancel-error", role: "alert" }));
  $("#timeline-head").replaceChildren(...parts);
}

async function cancelOrder(id) {
  const button = $("#cancel-order");
  if (button) button.disabled = true;
  try {
    await api.cancel(id); // the `cancelled` frame comes over the live stream
    stream.follow(id);
  } catch (error) {
    if (!onApiError(error)) $("#cancel-error").textContent = `Not cancelled: ${error.message}`;
    if (button) button.disabled = false;
  }
}

async function openOrder(id) {
  try {
    const detail = await api.order(id);
    const o = order(id);
    o.request = detail.request;
    o.createdAt = detail.createdAt;
    select(id);
    for (const frame of detail.events || []) takeFrame(frame);
    if (!isDone(o)) stream.follow(id);
    $("#timeline-title").scrollIntoView({ block: "start" });
  } catch (error) {
    if (mine === historyRequests) onApiError(error) || setHistoryState(error.message);
  }
}

// -- history ---------------------------------------------------------------------------------

function setHistoryState(text) {
  $("#history-state").textContent = text;
}

let historyRequests = 0; // the newest history request's number: only its answer is shown

async function loadHistory(reset) {
  if (!api.key) return;
  const status = $("#history-status").value;
  const mine = ++historyRequests;
  try {
    const page = await api.orders({ limit: HISTORY_PAGE, cursor: reset ? null : state.cursor, status });
    // A newer request (another filter, a refresh after an order ended) owns the list now: an
    // older answer arriving late would show rows the filter excludes.
    if (mine !== historyRequests) return;
    const rows = page.orders.map(historyRow);
    if (reset) $("#history-rows").replaceChildren(...rows);
    else $("#history-rows").append(...rows);
    state.cursor = page.nextCursor;
    $("#history-more").hidden = !page.nextCursor;
    const count = $("#history-rows").children.length;
    setHistoryState(count ? `${count} order${count === 1 ? "" : "s"}${status ? ` ${status}` : ""} shown.` : `No orders${status ? ` ${status}` : ""} yet.`);
  } catch (error) {
    if (mine === historyRequests) onApiError(error) || setHistoryState(error.message);
  }
}

let refreshTimer = null;
function refreshHistorySoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    if (!state.cursor || $("#history-rows").children.length <= HISTORY_PAGE) loadHistory(true);
  }, 300);
}

function historyRow(summary) {
  const o = order(summary.orderId);
  if (!o.request) o.request = summary.request;
  if (!o.createdAt) o.createdAt = summary.createdAt;
  const request = summary.request || {};
  return el("tr", { "data-order": summary.orderId },
    el("td", {}, el("time", { datetime: summary.createdAt, text: dateTime(summary.createdAt) })),
    el("td", { text: `${request.orderType && request.orderType !== "market" ? `${request.orderType} ` : ""}${request.amountOut !== undefined ? `${token(request.tokenIn)} → exactly ${request.amountOut} ${token(request.tokenOut)}` : `${request.amountIn ?? "?"} ${token(request.tokenIn)} → ${token(request.tokenOut)}`}` }),
    el("td", {}, el("span", { class: `badge status-${summary.status}`, text: summary.status })),
    el("td", { text: summary.venue || "" }),
    // What it got once confirmed (the fill), else the quote it is working towards.
    el("td", { class: "num", text: (summary.filled && summary.filled.amountOut) || summary.amountOut || "" }),
    el("td", {}, el("button", {
      type: "button", class: "link", "data-open": summary.orderId,
      "aria-label": `Open the timeline of order ${short(summary.orderId, 8, 4)}`, text: "Timeline",
    })));
}

function prependHistoryRow(summary) {
  const filter = $("#history-status").value;
  if (filter && filter !== summary.status) return;
  $("#history-rows").prepend(historyRow(summary));
}

function updateHistoryRow(o) {
  const row = document.querySelector(`#history-rows tr[data-order="${CSS.escape(o.id)}"]`);
  const badge = row && row.querySelector(".badge");
  if (badge && o.status) {
    badge.textContent = o.status;
    badge.className = `badge status-${o.status}`;
  }
}

// -- the chart -------------------------------------------------------------------------------

function drawStageChart() {
  const orders = [...state.orders.values()]
    .filter((o) => o.frames.size > 1)
    .sort((a, b) => String(b.createdAt || "").localeCompare(String(a.createdAt || "")))
    .map((o) => ({ id: o.id, frames: [...o.frames.values()].sort((a, b) => a.seq - b.seq) }));
  drawChart($("#chart"), orders);
}

/** The chart wants the frames of recent orders: read the last few finished ones once. */
async function loadRecentForChart() {
  try {
    const page = await api.orders({ limit: CHART_ORDERS });
    const wanted = page.orders.filter((s) => order(s.orderId).frames.size === 0);
    const details = await Promise.all(wanted.map((s) => api.order(s.orderId).catch(() => null)));
    for (const detail of details) {
      if (!detail) continue;
      const o = order(detail.orderId);
      o.request = detail.request;
      o.createdAt = detail.createdAt;
      for (const frame of detail.events || []) takeFrame(frame);
    }
  } catch (error) {
    onApiError(error);
  }
  drawStageChart();
}

// -- start -----------------------------------------------------------------------------------

async function start() {
  try {
    const config = await api.config(); // always from the page's own origin
    if (typeof config.apiUrl === "string" && config.apiUrl) api.base = config.apiUrl.replace(/\/$/, "");
    state.config = {
      ...state.config,
      ...config,
      terminal: config.terminal || FALLBACK_TERMINAL,
      cancellable: config.cancellable || FALLBACK_CANCELLABLE,
    };
  } catch {
    // An API without /console/config.json: same-origin WebSocket, the default statuses.
  }
  for (const status of state.config.statuses || []) {
    $("#history-status").append(el("option", { value: status, text: status }));
  }
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    useKey($("#api-key").value.trim()).then((ok) => ok && stream.retry());
  });
  $("#key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    $("#api-key").value = "";
    api.key = "";
    stream.configure(websocketUrl(), "");
    setKeyStatus("Key forgotten in this tab.");
    setStream("Live stream: not connected", "");
  });
  $("#order-form").addEventListener("submit", submitOrder);
  $("#history-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadHistory(true);
  });
  $("#history-status").addEventListener("change", () => loadHistory(true));
  $("#history-more").addEventListener("click", () => loadHistory(false));
  $("#history-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-open]");
    if (button) openOrder(button.dataset.open);
  });
  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) {
    $("#api-key").value = saved;
    await useKey(saved);
  } else {
    setKeyStatus("Paste your API key to start (it begins with oek_).");
  }
  document.body.dataset.ready = "true";
}

// For the browser test and the curious: break the socket as a network would.
window.ordersConsole = { state, stream };
start();
