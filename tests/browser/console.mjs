// The console in a real browser: headless Debian chromium driven by playwright-core, against a
// running local stack. Run by tests/browser/test_console.py, which starts the stack and passes:
//   BASE_URL      the stack's HTTP URL          API_KEY      its key
//   REVOKED_KEY   a key revoked in its database  SCREENSHOT   where to save the page (PNG)
//   REVOKE_LATER_KEY  a key the test revokes while the page uses it: the script prints
//                     {"check":"revoke now"} and waits for a line "revoked" on stdin
// Every request to anything but the stack is aborted and counted: the console and /docs must
// work offline (no CDN). Prints one JSON line per check, then {"ok": true|false, ...}.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const BASE = process.env.BASE_URL;
const KEY = process.env.API_KEY;
const REVOKED = process.env.REVOKED_KEY;
const SCREENSHOT = process.env.SCREENSHOT;
const REVOKE_LATER = process.env.REVOKE_LATER_KEY;
const stdin = createInterface({ input: process.stdin });
const stdinLines = stdin[Symbol.asyncIterator]();
const EXECUTABLE = process.env.CHROMIUM || "/usr/bin/chromium";
const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const started = Date.now();
const log = (check, detail = {}) =>
  console.log(JSON.stringify({ check, ms: Date.now() - started, ...detail }));

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function main() {
  const profile = mkdtempSync(join(tmpdir(), "console-chromium-"));
  // A fresh profile each run: launchPersistentContext is how playwright takes --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: EXECUTABLE,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 1000 },
    serviceWorkers: "block",
  });
  const offsite = [];
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1" || url.hostname === "localhost") return route.continue();
    offsite.push(url.href);
    return route.abort();
  });
  const errors = [];
  const page = context.pages()[0] || (await context.newPage());
  page.on("pageerror", (error) => errors.push(String(error)));
  page.setDefaultTimeout(30_000);
  try {
    await run(page);
    expect(errors.length === 0, `errors in the page: ${errors.join("; ")}`);
    expect(offsite.length === 0, `requests off this machine: ${offsite.join(", ")}`);
    log("offline", { offsite: offsite.length });
    console.log(JSON.stringify({ ok: true, ms: Date.now() - started }));
  } catch (error) {
    if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, ".failed.png"), fullPage: true }).catch(() => {});
    console.log(JSON.stringify({ ok: false, error: String(error.stack || error), errors, offsite }));
    process.exitCode = 1;
  } finally {
    stdin.close();
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

async function useKey(page, key) {
  await page.fill("#api-key", key);
  await page.click("#key-form button[type=submit]");
}

async function keyStatus(page, pattern) {
  try {
    await page.waitForFunction(
      (source) => new RegExp(source).test(document.querySelector("#key-status").textContent),
      pattern.source,
    );
  } catch (error) {
    const key = await page.textContent("#key-status");
    const stream = await page.textContent("#stream-state");
    throw new Error(`key status never matched ${pattern}: it says "${key}"; stream "${stream}" (${error.message})`);
  }
  return page.textContent("#key-status");
}

/** The timeline's events as [[seq, status]], once the order reached `until`. */
async function timeline(page, until = "confirmed") {
  await page.waitForSelector(`#timeline li[data-status="${until}"]`, { timeout: 60_000 });
  return page.$$eval("#timeline li.event", (items) => items.map((li) => [Number(li.dataset.seq), li.dataset.status]));
}

async function run(page) {
  await page.goto(`${BASE}/`);
  await page.waitForSelector("body[data-ready=true]");
  log("page loaded", { title: await page.title() });

  // Keyboard: the key field, then its button, in that order.
  await page.focus("#api-key");
  await page.keyboard.press("Tab");
  expect(await page.evaluate(() => document.activeElement.textContent) === "Use key", "Tab from the key goes to its button");

  // The key: missing, wrong, revoked, then right.
  await useKey(page, "");
  log("missing key", { status: await keyStatus(page, /Paste your API key/) });
  await useKey(page, "oek_" + "z".repeat(43));
  log("wrong key", { status: await keyStatus(page, /wrong or revoked \(403/) });
  if (REVOKED) {
    await useKey(page, REVOKED);
    log("revoked key", { status: await keyStatus(page, /wrong or revoked \(403/) });
  }
  await useKey(page, KEY);
  log("key accepted", { status: await keyStatus(page, /Key accepted/) });
  expect(await page.evaluate(() => sessionStorage.length) === 1, "the key is kept in sessionStorage");

  // A market order, followed live to confirmed.
  await page.click("#order-submit");
  const events = await timeline(page);
  expect(JSON.stringify(events) === JSON.stringify([[1, "pending"], [2, "routing"], [3, "building"], [4, "submitted"], [5, "confirmed"]]),
    `the timeline shows each status once, in order: ${JSON.stringify(events)}`);
  const orderId = await page.textContent("#timeline-head .order-id code");
  const chosen = await page.$$eval("#timeline li[data-status=routing] tr.chosen", (rows) => rows.length);
  const quotes = await page.$$eval("#timeline li[data-status=routing] tbody tr", (rows) => rows.length);
  expect(chosen === 1 && quotes >= 2, `routing shows every quote with one chosen (${quotes}, ${chosen})`);
  const minOut = await page.textContent("#timeline li[data-status=building] .min-out");
  const link = await page.getAttribute("#timeline li[data-status=confirmed] a.tx-link", "href");
  expect(link && link.startsWith("https://explorer.solana.com/tx/"), `the confirmed event links the transaction: ${link}`);
  const deltas = await page.$$eval("#timeline .delta", (spans) => spans.map((s) => s.textContent));
  expect(deltas[0] === "" && deltas.slice(1).every((d) => d.startsWith("+")), `time since the previous status: ${deltas}`);
  log("order confirmed", { orderId, events, quotes, minOut, link, deltas });

  // The socket drops mid-order: the reconnect resumes from the last seq, no gap, no duplicate.
  await page.click("#order-submit");
  await page.waitForFunction((first) => {
    const code = document.querySelector("#timeline-head .order-id code");
    return code && code.textContent !== first && document.querySelectorAll("#timeline li.event").length >= 1;
  }, orderId);
  const before = await page.evaluate(() => {
    const { stream } = window.ordersConsole;
    const seen = document.querySelectorAll("#timeline li.event").length;
    stream.drop();
    return { seen, opens: stream.opens };
  });
  const resumed = await timeline(page);
  const opens = await page.evaluate(() => window.ordersConsole.stream.opens);
  const seqs = resumed.map(([seq]) => seq);
  expect(before.seen < 5 && opens === before.opens + 1, `dropped mid-order and reconnected once (${JSON.stringify(before)}, ${opens})`);
  expect(JSON.stringify(seqs) === "[1,2,3,4,5]", `after a reconnect, seq 1..5 once each: ${JSON.stringify(resumed)}`);
  log("reconnect resumed", { seenBeforeDrop: before.seen, events: resumed });

  // Exact out: "Amount is" what the order receives sends amountOut; it confirms, and its quotes
  // show the input each pool takes for that amount.
  const previous = await page.textContent("#timeline-head .order-id code");
  await page.selectOption("#field-side", "out");
  await page.fill("#field-amountIn", "1.5");
  await page.click("#order-submit");
  await page.waitForFunction((prev) => {
    const code = document.querySelector("#timeline-head .order-id code");
    return code && code.textContent !== prev;
  }, previous);
  const exactEvents = await timeline(page);
  const pending = await page.textContent("#timeline li[data-status=pending]");
  const exactChosen = await page.textContent("#timeline li[data-status=routing] tr.chosen");
  expect(exactEvents.at(-1)[1] === "confirmed" && /exactly 1\.5 USDC/.test(pending) && /1\.5 for [0-9.]+ in/.test(exactChosen),
    `an exact-out order confirms, asked and quoted as exact out (${pending}, ${exactChosen})`);
  log("exact out confirmed", { events: exactEvents, pending, chosen: exactChosen });
  await page.selectOption("#field-side", "in");
  await page.fill("#field-amountIn", "0.01");

  // History: the order is listed, the status filter keeps or drops it, and it opens.
  await page.waitForSelector(`#history-rows tr[data-order="${orderId}"]`);
  await page.selectOption("#history-status", "failed");
  await page.waitForFunction(() => /failed/.test(document.querySelector("#history-state").textContent));
  expect(!(await page.$(`#history-rows tr[data-order="${orderId}"]`)), "the failed filter hides a confirmed order");
  await page.selectOption("#history-status", "confirmed");
  await page.waitForSelector(`#history-rows tr[data-order="${orderId}"]`);
  const badges = await page.$$eval("#history-rows .badge", (b) => [...new Set(b.map((x) => x.textContent))]);
  expect(JSON.stringify(badges) === '["confirmed"]', `the confirmed filter lists only confirmed orders: ${badges}`);
  await page.click(`#history-rows tr[data-order="${orderId}"] button[data-open]`);
  await page.waitForFunction((id) => document.querySelector("#timeline-head .order-id code")?.textContent === id, orderId);
  expect((await timeline(page)).length === 5, "an order opened from the history shows its whole timeline");
  log("history", { orderId, badges });

  // The chart: one bar per finished order, one segment per stage.
  await page.waitForSelector("#chart svg.stage-chart rect");
  const bars = await page.$$eval("#chart svg.stage-chart g.bar", (g) => g.length);
  const medians = await page.$$eval("#chart table.medians tbody tr", (rows) => rows.map((r) => r.textContent));
  expect(bars >= 2 && medians.length === 4, `the chart has a bar per order and a median per stage (${bars}, ${medians})`);
  log("chart", { bars, medians });

  // A bad amount: the API's 400 is shown next to the amount field, which gets the focus.
  await page.fill("#field-amountIn", "-1");
  await page.click("#order-submit");
  await page.waitForFunction(() => document.querySelector("#field-amountIn-error").textContent.length > 0);
  const fieldError = await page.textContent("#field-amountIn-error");
  const invalid = await page.getAttribute("#field-amountIn", "aria-invalid");
  const focused = await page.evaluate(() => document.activeElement.id);
  expect(invalid === "true" && focused === "field-amountIn", `the field is marked and focused (${invalid}, ${focused})`);
  log("field error", { fieldError });

  // A limit order far above the price: Quote shows the price now, the order waits (watching),
  // and Cancel ends it; the history's filter finds it cancelled.
  await page.selectOption("#field-orderType", "limit");
  expect(!(await page.$("#field-slippage")), "a limit order has no slippage field");
  await page.fill("#field-amountIn", "0.01");
  await page.fill("#field-limitPrice", "100000");
  const expires = await page.inputValue("#field-expiresAt");
  expect(/^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(expires), `the expiry defaults to a day ahead: ${expires}`);
  await page.click("#quote-button");
  await page.waitForFunction(() => /^Now: /.test(document.querySelector("#quote-line").textContent));
  const quoteLine = await page.textContent("#quote-line");
  await page.click("#order-submit");
  await page.waitForSelector("#timeline li[data-status=watching]");
  const limitId = await page.textContent("#timeline-head .order-id code");
  expect(limitId !== orderId, "the limit order is the one shown");
  const waiting = await page.textContent("#timeline li[data-status=watching] .waiting");
  expect(/Waiting for at least 100000 USDC per SOL/.test(waiting), `the watching event says what it waits for: ${waiting}`);
  await page.click("#cancel-order");
  const limitEvents = await timeline(page, "cancelled");
  expect(JSON.stringify(limitEvents) === JSON.stringify([[1, "pending"], [2, "watching"], [3, "cancelled"]]),
    `pending, watching, cancelled: ${JSON.stringify(limitEvents)}`);
  await page.waitForFunction(() => !document.querySelector("#cancel-order"));
  expect((await page.textContent("#timeline-status")) === "cancelled", "the head shows it cancelled");
  const head = await page.textContent("#timeline-head");
  expect(!/null|undefined/.test(head), `the head shows nothing unset: ${head}`);
  await page.selectOption("#history-status", "cancelled");
  await page.waitForSelector(`#history-rows tr[data-order="${limitId}"]`);
  log("limit cancelled", { limitId, quoteLine, waiting, events: limitEvents });

  // Accessibility: axe-core's WCAG 2.1 A/AA rules over the filled page (evaluated through the
  // devtools protocol, which the page's CSP does not apply to).
  const axeSource = readFileSync(join(dirname(fileURLToPath(import.meta.url)), "node_modules/axe-core/axe.min.js"), "utf8");
  await page.evaluate(axeSource);
  const audit = await page.evaluate(async () => {
    const result = await window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] });
    return {
      passed: result.passes.length,
      violations: result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help })),
    };
  });
  expect(audit.passed > 10 && audit.violations.length === 0, `axe-core WCAG 2.1 AA: ${JSON.stringify(audit)}`);
  log("accessibility", audit);

  if (SCREENSHOT) {
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    log("screenshot", { path: SCREENSHOT });
  }
  await page.selectOption("#field-orderType", "market");

  // A key revoked while in use: the HTTP authorizer's cached answer still lets it read for a
  // while, but the WebSocket upgrade is refused at once and no order can be created.
  if (REVOKE_LATER) {
    // The status still says "Key accepted." for the key before: wait for this key's own answer
    // (with the functions in worker processes it can come after a moment).
    const answered = page.waitForResponse(
      (r) => r.url().includes("/api/orders") && r.request().headers()["x-api-key"] === REVOKE_LATER,
    );
    await useKey(page, REVOKE_LATER);
    expect((await answered).status() === 200, "the key to revoke is accepted before it is revoked");
    await keyStatus(page, /Key accepted/);
    await page.waitForFunction(() => document.querySelector("#stream-state").dataset.state === "live");
    log("revoke now");
    const { value } = await stdinLines.next();
    expect(value && value.trim() === "revoked", `the test revoked the key (${value})`);
    await useKey(page, REVOKE_LATER); // reconnects the stream: its upgrade is refused now
    const refused = await keyStatus(page, /live stream could not connect/);
    await page.fill("#field-amountIn", "0.01");
    await page.click("#order-submit");
    const revokedStatus = await keyStatus(page, /was revoked \(403\)/);
    log("revoked while in use", { refused, revokedStatus, stream: await page.textContent("#stream-state") });
  }

  // A link naming another API (`?api=`) in a tab that holds the key: the console talks only to
  // its own origin (and the deployment's), so not one request leaves for the named host.
  await useKey(page, KEY);
  await keyStatus(page, /Key accepted/);
  const elsewhere = [];
  const watch = (request) => {
    if (new URL(request.url()).hostname === "elsewhere.invalid") elsewhere.push(request.url());
  };
  page.on("request", watch);
  await page.goto(`${BASE}/?api=http://elsewhere.invalid:9`);
  await page.waitForFunction(() => document.body.dataset.ready === "true");
  // the saved key was checked against the API the page talks to: its own origin accepted it
  const ownStatus = await keyStatus(page, /Key accepted/).catch(() => null);
  page.off("request", watch);
  expect(elsewhere.length === 0, `requests to the host named in ?api=: ${elsewhere.join(", ")}`);
  expect(ownStatus, "the page's own API accepted the saved key");
  log("api from the url ignored", { elsewhere: elsewhere.length, status: ownStatus });

  // /docs renders Swagger UI from the stack's own files.
  await page.goto(`${BASE}/docs`);
  await page.waitForSelector("#swagger-ui .swagger-ui .info .title");
  const docsTitle = await page.textContent("#swagger-ui .info .title");
  const operations = await page.$$eval("#swagger-ui .opblock", (ops) => ops.length);
  expect(/Solana order execution engine/.test(docsTitle) && operations >= 4, `Swagger UI rendered (${docsTitle}, ${operations})`);
  log("docs", { title: docsTitle, operations });
}

await main();
