// Small helpers: DOM building without innerHTML (every value from the API is text), times.

/** An element with attributes and children; strings become text nodes, never HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An SVG element (the chart). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/**
 * Milliseconds since the epoch, with the microseconds Postgres gives (`at` is ISO 8601 with up
 * to 6 decimals; Date.parse keeps 3).
 */
export function epochMs(iso) {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(iso || "");
  if (!match) return Date.parse(iso);
  const fraction = (match[2] || "").padEnd(6, "0").slice(0, 6);
  const whole = Date.parse(match[1] + (match[3] || "Z"));
  return whole + Number(fraction) / 1000;
}

/** 16:04:05.123, local time. */
export function clock(iso) {
  const ms = epochMs(iso);
  if (Number.isNaN(ms)) return iso || "";
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** A duration: 850 µs, 42 ms, 1.25 s, 3 min 5 s. */
export function duration(ms) {
  if (!Number.isFinite(ms)) return "";
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Date and time for a table cell. */
export function dateTime(iso) {
  const ms = epochMs(iso);
  if (Number.isNaN(ms)) return iso || "";
  return new Date(ms).toLocaleString(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

/** The first and last characters of a long id or signature. */
export function short(text, head = 6, tail = 4) {
  if (!text || text.length <= head + tail + 1) return text || "";
  return `${text.slice(0, head)}…${text.slice(-tail)}`;
}

/** "SOL" for a registry symbol, "So11…1112" for a mint address. */
export function token(value) {
  return value && value.length > 12 ? short(value, 4, 4) : value || "?";
}
