// Time per stage across recent orders, as an inline SVG: one row per order, one bar segment per
// stage (the time from one status frame's `at` to the next), on a shared time axis. A table of
// medians under it says the same in words (and is what a screen reader reads).

import { duration, el, epochMs, svg } from "./format.js";

const COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759", "#76b7b2", "#edc948", "#9c755f"];
const ROW = 22;
const LEFT = 84;
const RIGHT = 64; // room for the total after the longest bar
const WIDTH = 720;

/** Stages of one order: [{name: "routing → building", ms}], from its frames in seq order. */
export function stages(frames) {
  const out = [];
  for (let i = 1; i < frames.length; i += 1) {
    if (frames[i].seq !== frames[i - 1].seq + 1) break; // a gap: stop at what is known
    out.push({ name: `${frames[i - 1].status} → ${frames[i].status}`, ms: epochMs(frames[i].at) - epochMs(frames[i - 1].at) });
  }
  return out;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Draw into `container` for orders [{id, frames}] (newest first; at most 12 drawn). */
export function drawChart(container, orders) {
  const rows = orders.map((o) => ({ id: o.id, stages: stages(o.frames) })).filter((r) => r.stages.length).slice(0, 12);
  if (!rows.length) {
    container.replaceChildren(el("p", { class: "empty", text: "Orders you follow or open appear here." }));
    return;
  }
  const names = [];
  for (const row of rows) for (const s of row.stages) if (!names.includes(s.name)) names.push(s.name);
  const color = (name) => COLORS[names.indexOf(name) % COLORS.length];
  const longest = Math.max(...rows.map((r) => r.stages.reduce((t, s) => t + s.ms, 0)), 1);
  const scale = (WIDTH - LEFT - RIGHT) / longest;
  const height = rows.length * ROW + 40;

  const bars = rows.map((row, i) => {
    let x = LEFT;
    const y = 8 + i * ROW;
    const total = row.stages.reduce((t, s) => t + s.ms, 0);
    const segments = row.stages.map((s) => {
      const w = Math.max(s.ms * scale, 1);
      const rect = svg("rect", { x: x.toFixed(1), y, width: w.toFixed(1), height: ROW - 6, fill: color(s.name) },
        svg("title", {}, `${s.name}: ${duration(s.ms)}`));
      x += w;
      return rect;
    });
    return svg("g", { class: "bar" },
      svg("text", { x: LEFT - 6, y: y + ROW / 2 - 3, "text-anchor": "end", class: "label" }, row.id.slice(0, 8)),
      segments,
      svg("text", { x: x + 4, y: y + ROW / 2 - 3, class: "total" }, duration(total)));
  });

  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const x = LEFT + f * (WIDTH - LEFT - RIGHT);
    const y = rows.length * ROW + 12;
    return svg("g", { class: "tick" },
      svg("line", { x1: x, x2: x, y1: 4, y2: y - 4 }),
      svg("text", { x, y: y + 8, "text-anchor": "middle" }, f ? duration(f * longest) : "0"));
  });

  const medians = names.map((name) => {
    const values = rows.flatMap((r) => r.stages.filter((s) => s.name === name).map((s) => s.ms));
    return { name, ms: median(values), n: values.length };
  });
  const summary = medians.map((m) => `${m.name} ${duration(m.ms)}`).join("; ");

  const chart = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${height}`, width: WIDTH, height, role: "img",
    "aria-labelledby": "chart-svg-title chart-svg-desc", class: "stage-chart",
  },
  svg("title", { id: "chart-svg-title" }, `Time per stage for the last ${rows.length} orders`),
  svg("desc", { id: "chart-svg-desc" }, `Median per stage: ${summary}.`),
  ticks, bars);

  const legend = el("ul", { class: "legend", "aria-hidden": "true" },
    names.map((name) => el("li", {}, el("span", { class: "swatch", style: `background:${color(name)}` }), name)));

  const table = el("table", { class: "medians" },
    el("caption", { text: `Median time per stage over these ${rows.length} orders` }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Stage" }), el("th", { scope: "col", text: "Median" }), el("th", { scope: "col", text: "Orders" }))),
    el("tbody", {}, medians.map((m) => el("tr", {},
      el("th", { scope: "row" }, el("span", { class: "swatch", style: `background:${color(m.name)}`, "aria-hidden": "true" }), m.name),
      el("td", { class: "num", text: duration(m.ms) }), el("td", { class: "num", text: String(m.n) })))));

  container.replaceChildren(chart, legend, table);
}
