// One order's timeline: a list item per status frame, in seq order, with its time, the time
// since the previous status and what that status carries. Items are added, never rebuilt, so
// the live region announces each new status once.

import { clock, duration, el, epochMs, short, token } from "./format.js";

/** The list for `order`, created once and kept on it (`order.view`). */
export function timelineView(order) {
  if (!order.view) {
    order.view = { list: el("ol", { class: "timeline", "aria-label": `Status events of order ${order.id}` }), items: new Map() };
  }
  return order.view.list;
}

/** Add `frame` (already checked new) to the order's list, at its seq's place. */
export function addFrame(order, frame) {
  const list = timelineView(order);
  const item = eventItem(frame, order);
  const after = [...order.view.items.keys()].filter((seq) => seq > frame.seq).sort((a, b) => a - b);
  const before = after.length ? order.view.items.get(after[0]) : null;
  list.insertBefore(item, before);
  order.view.items.set(frame.seq, item);
  refreshDeltas(order);
}

function refreshDeltas(order) {
  const seqs = [...order.view.items.keys()].sort((a, b) => a - b);
  let previous = null;
  for (const seq of seqs) {
    const frame = order.frames.get(seq);
    const slot = order.view.items.get(seq).querySelector(".delta");
    const gap = previous && previous.seq !== seq - 1;
    if (previous && !gap) {
      const ms = epochMs(frame.at) - epochMs(previous.at);
      slot.textContent = `+${duration(ms)}`;
      slot.setAttribute("aria-label", `${duration(ms)} after ${previous.status}`);
    } else {
      slot.textContent = gap ? "(earlier events loading)" : "";
      slot.removeAttribute("aria-label");
    }
    previous = frame;
  }
}

function eventItem(frame, order) {
  return el(
    "li",
    { class: `event status-${frame.status}`, "data-seq": frame.seq, "data-status": frame.status },
    el(
      "div",
      { class: "event-head" },
      el("span", { class: `badge status-${frame.status}`, text: frame.status }),
      el("time", { datetime: frame.at, title: frame.at, text: clock(frame.at) }),
      el("span", { class: "delta" }),
      el("span", { class: "seq", "aria-label": `event ${frame.seq}`, text: `#${frame.seq}` }),
    ),
    details(frame, order),
  );
}

const SHOWN = new Set(["orderId", "seq", "status", "at"]);

function details(frame, order) {
  const body = el("div", { class: "event-body" });
  const request = order.request || frame.request || {};
  switch (frame.status) {
    case "pending":
      if (frame.request) body.append(el("p", { text: describeRequest(frame.request) }));
      break;
    case "routing":
      body.append(quotesTable(frame, request));
      if (frame.route && Array.isArray(frame.route.legs)) body.append(routeTable(frame.route, request));
      break;
    case "building":
      if (frame.minAmountOut) {
        const why = request.orderType === "limit" ? "your limit" : "slippage applied";
        body.append(el("p", {}, `Minimum out (${why}): `,
          el("strong", { class: "min-out", text: `${frame.minAmountOut} ${token(request.tokenOut)}` })));
      }
      break;
    case "watching":
      body.append(watchingLine(frame, request));
      if (frame.txHash) body.append(txLine(frame));
      break;
    case "triggered":
      body.append(triggerLine(frame, request));
      break;
    case "expired":
    case "cancelled":
      body.append(el("p", { class: "ended", text: frame.reason || frame.status }));
      break;
    case "submitted":
    case "confirmed":
      body.append(txLine(frame));
      if (frame.filled && typeof frame.filled === "object") body.append(filledList(frame.filled));
      break;
    case "failed":
      body.append(el("p", { class: "failure" },
        el("code", { text: frame.code || (frame.error && frame.error.code) || "failed" }), ": ",
        typeof frame.error === "object" && frame.error ? frame.error.message : frame.error || "no reason given"));
      if (frame.txHash) body.append(txLine(frame));
      break;
    default: {
      const extra = Object.entries(frame).filter(([k]) => !SHOWN.has(k));
      if (extra.length) body.append(keyValues(Object.fromEntries(extra)));
    }
  }
  return body;
}

/** What a watching order waits for; or, back to watching, why its swap was refused. */
function watchingLine(frame, request) {
  if (frame.reason) {
    return el("p", { class: "rewatch" }, "Back to watching: ", el("code", { text: frame.code || "refused" }), ` ${frame.reason}`,
      frame.triggersLeft !== undefined ? ` (${frame.triggersLeft} trigger${frame.triggersLeft === 1 ? "" : "s"} left)` : "");
  }
  const until = frame.expiresAt ? ` until ${new Date(frame.expiresAt).toLocaleString()}` : "";
  if ((frame.orderType || request.orderType) === "sniper") {
    const guards = [
      frame.poolVenue ? `on ${frame.poolVenue}` : null,
      frame.maxPrice ? `at most ${frame.maxPrice} ${token(request.tokenIn)} per ${token(request.tokenOut)}` : null,
      frame.minLiquidity ? `holding at least ${frame.minLiquidity} ${token(request.tokenIn)}` : null,
    ].filter(Boolean);
    return el("p", { class: "waiting", text: `Waiting for a new ${token(request.tokenIn)}/${token(request.tokenOut)} pool${guards.length ? ` (${guards.join(", ")})` : ""}${frame.watchFromSlot !== undefined ? `, created from slot ${frame.watchFromSlot}` : ""}${until}.` });
  }
  return el("p", { class: "waiting", text: `Waiting for at least ${frame.limitPrice} ${token(request.tokenOut)} per ${token(request.tokenIn)}${until}.` });
}

/** Why the watcher triggered the order: the quote that met the limit, or the new pool. */
function triggerLine(frame, request) {
  if (frame.reason === "new_pool") {
    const opens = frame.opensAt ? `, open since ${new Date(frame.opensAt).toLocaleString()}` : "";
    return el("p", { class: "trigger" }, "New pool ", el("code", { title: frame.pool, text: short(frame.pool, 6, 6) }),
      ` on ${frame.venue}, created in slot ${frame.createdSlot}, seen in slot ${frame.seenSlot}${opens}: `,
      el("strong", { text: `${frame.amountOut} ${token(request.tokenOut)}` }), ` for ${frame.amountIn} (price ${frame.price}).`);
  }
  return el("p", { class: "trigger" }, `Limit reached on ${frame.venue}: `,
    el("strong", { text: `${frame.amountOut} ${token(request.tokenOut)}` }),
    ` for ${frame.amountIn}, at least ${frame.minAmountOut} wanted (price ${frame.price}, slot ${frame.slot}).`);
}

export function describeRequest(request) {
  const slippage = request.slippage !== undefined && request.slippage !== null ? `, slippage ${request.slippage} %` : "";
  const type = request.orderType && request.orderType !== "market" ? `${request.orderType} ` : "";
  const limit = request.limitPrice ? `, limit ${request.limitPrice}` : "";
  if (request.amountOut !== undefined && request.amountOut !== null) {
    return `${type}${token(request.tokenIn)} → exactly ${request.amountOut} ${token(request.tokenOut)}${slippage}${limit}`;
  }
  return `${type}${request.amountIn} ${token(request.tokenIn)} → ${token(request.tokenOut)}${slippage}${limit}`;
}

function quotesTable(frame, request) {
  const quotes = Array.isArray(frame.quotes) ? frame.quotes : [];
  if (!quotes.length) return el("p", { text: frame.venue ? `Venue: ${frame.venue}` : "No quotes in this frame." });
  const rows = quotes.map((q) => {
    const chosen = q.chosen === true;
    if (q.skipped) {
      return el("tr", { class: "skipped" },
        el("th", { scope: "row", text: q.venue || short(q.pool) }),
        el("td", { colspan: 5 }, "skipped: ", el("code", { text: q.skipped }), skipReason(q)));
    }
    return el("tr", { class: chosen ? "chosen" : "" },
      el("th", { scope: "row" }, q.venue || short(q.pool), chosen ? el("span", { class: "chosen-mark", text: " ✓ chosen" }) : ""),
      // exact out: every pool pays the amount asked; what differs is the input it takes
      el("td", { class: "num", text: q.exactOut ? `${q.amountOut} for ${q.quotedAmountIn} in` : q.amountOut ?? "" }),
      el("td", { class: "num", text: q.feeUnits ?? "" }),
      el("td", { class: "num", text: q.priceImpactPct !== undefined ? `${q.priceImpactPct} %` : "" }),
      el("td", { class: "num", text: q.txCostLamports ?? "" }),
      el("td", { class: "num", text: q.exactOut ? `${netIn(q)} in` : netOut(q) }));
  });
  return el("table", { class: "quotes" },
    el("caption", { text: `Quotes (${token(request.tokenIn)} → ${token(request.tokenOut)}); the chosen venue is marked` }),
    el("thead", {}, el("tr", {},
      el("th", { scope: "col", text: "Venue" }), el("th", { scope: "col", text: "Out" }),
      el("th", { scope: "col", text: "Fee (units)" }), el("th", { scope: "col", text: "Impact" }),
      el("th", { scope: "col", text: "Tx cost (lamports)" }), el("th", { scope: "col", text: "Net out" }))),
    el("tbody", {}, rows));
}

/** Net output in token units: netOutUnits scaled as amountOut is to amountOutUnits. */
function netOut(q) {
  const units = Number(q.amountOutUnits);
  const amount = Number(q.amountOut);
  const net = Number(q.netOutUnits);
  if (!units || !Number.isFinite(amount) || !Number.isFinite(net)) return q.netOutUnits ?? "";
  return String(Number(((net * amount) / units).toPrecision(10)));
}

/** An exact-out quote's input with the transaction's cost, in token units (as netOut). */
function netIn(q) {
  const units = Number(q.amountInUnits);
  const amount = Number(q.amountIn);
  const net = Number(q.netInUnits);
  if (!units || !Number.isFinite(amount) || !Number.isFinite(net)) return q.netInUnits ?? "";
  return String(Number(((net * amount) / units).toPrecision(10)));
}

function skipReason(q) {
  const extra = Object.entries(q).filter(([k]) => !["venue", "pool", "skipped", "chosen"].includes(k));
  if (!extra.length) return "";
  return ` (${extra.map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ")})`;
}

function txLine(frame) {
  const line = el("p", { class: "tx" }, "Transaction: ");
  if (frame.explorerUrl) {
    line.append(el("a", { href: frame.explorerUrl, target: "_blank", rel: "noopener noreferrer", class: "tx-link", title: frame.txHash },
      short(frame.txHash, 8, 8)));
  } else {
    line.append(el("code", { title: frame.txHash, text: short(frame.txHash, 8, 8) }));
  }
  if (frame.slot !== undefined) line.append(`, slot ${frame.slot}`);
  if (frame.attempt > 1) line.append(`, attempt ${frame.attempt}`);
  if (frame.replaces) line.append(el("span", {}, ", replaces ", el("code", { text: short(frame.replaces, 8, 8) })));
  return line;
}

/** The route the order executes: one leg, or a split over two pools in one transaction. */
function routeTable(route, request) {
  const split = route.legs.length > 1;
  const rows = route.legs.map((leg) => el("tr", { class: "leg" },
    el("th", { scope: "row", text: `${leg.venue} ${short(leg.pool)}` }),
    el("td", { class: "num", text: `${leg.amountIn} ${token(request.tokenIn)}` }),
    el("td", { class: "num", text: leg.quotedAmountOut ?? "" }),
    el("td", { class: "num", text: leg.minAmountOut ?? "" }),
    el("td", { class: "num", text: leg.priceImpactPct !== undefined ? `${leg.priceImpactPct} %` : "" })));
  const caption = split && route.exactOut
    ? `Split route: ${route.legs.length} legs in one transaction, exactly ${route.amountOut} ${token(request.tokenOut)} in total for ${route.quotedAmountIn} ${token(request.tokenIn)}, ${route.gainBps} bps less input than the best single pool`
    : split
    ? `Split route: ${route.legs.length} legs in one transaction, ${route.amountOut} ${token(request.tokenOut)} in total, +${route.gainBps} bps over the best single pool`
    : `Route: one pool, ${route.amountOut} ${token(request.tokenOut)}`;
  return el("table", { class: "route" },
    el("caption", { text: caption }),
    el("thead", {}, el("tr", {},
      el("th", { scope: "col", text: "Leg" }), el("th", { scope: "col", text: "In" }),
      el("th", { scope: "col", text: "Quoted out" }), el("th", { scope: "col", text: "Min out" }),
      el("th", { scope: "col", text: "Impact" }))),
    el("tbody", {}, rows));
}

function filledList(filled) {
  const { legs, ...totals } = filled;
  const box = el("div", { class: "filled" }, el("p", { class: "filled-title", text: "Filled" }), keyValues(totals));
  if (Array.isArray(legs) && legs.length) {
    const list = el("ul", { class: "filled-legs" });
    for (const leg of legs) list.append(el("li", { text: `${leg.venue} ${short(leg.pool)}: ${leg.amountIn} in, ${leg.amountOut} out` }));
    box.append(el("p", { class: "filled-title", text: "Per leg" }), list);
  }
  return box;
}

function keyValues(object) {
  const list = el("dl", { class: "kv" });
  for (const [key, value] of Object.entries(object)) {
    list.append(el("dt", { text: key }), el("dd", { text: typeof value === "object" ? JSON.stringify(value) : String(value) }));
  }
  return list;
}
