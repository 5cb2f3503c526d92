// The order form, described as data: each order type names its fields (market, limit and
// sniper, as the API takes them: a limit order has no slippage, its limit is its worst price).

import { el } from "./format.js";

/** A datetime-local input's value (local time, minutes) for `ms` since the epoch. */
export function localInput(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export const FIELDS = {
  tokenIn: { label: "Token in", value: "SOL", list: "token-symbols", help: "SOL, USDC or a base58 mint address" },
  tokenOut: { label: "Token out", value: "USDC", list: "token-symbols", help: "SOL, USDC or a base58 mint address" },
  amountIn: { label: "Amount", value: "0.01", inputmode: "decimal", help: "in units of token in, e.g. 0.01 (exact out: of token out)" },
  // Not a field of the API: whether the amount is sold (amountIn) or received exactly (amountOut).
  side: {
    label: "Amount is", type: "select", local: true,
    options: [["in", "what I sell (exact in)"], ["out", "what I receive, exactly (exact out)"]],
  },
  slippage: { label: "Slippage (%)", value: "0.5", inputmode: "decimal", help: "greater than 0, at most 50", optional: true },
  limitPrice: {
    label: "Limit price", inputmode: "decimal", quote: true,
    help: "the least token out per 1 token in, fees and price impact included (Quote shows the price now)",
  },
  expiresAt: {
    label: "Expires at", type: "datetime-local", value: () => localInput(Date.now() + DAY_MS),
    help: "local time; at most 30 days ahead", toApi: (v) => new Date(v).toISOString(),
  },
  poolVenue: { label: "Pool venue", type: "select", options: [["", "any venue"], "raydium_cpmm", "meteora_damm_v2"], optional: true },
  maxPrice: { label: "Max price", inputmode: "decimal", help: "token in per 1 token out, at most", optional: true },
  minLiquidity: { label: "Min liquidity", inputmode: "decimal", help: "the new pool's token in, at least", optional: true },
};

const BASE = ["tokenIn", "tokenOut", "amountIn"];
export const ORDER_TYPES = [
  { value: "market", label: "Market", fields: [...BASE, "side", "slippage"] },
  { value: "limit", label: "Limit", fields: [...BASE, "side", "limitPrice", "expiresAt"] },
  { value: "sniper", label: "Sniper", fields: [...BASE, "slippage", "expiresAt", "poolVenue", "maxPrice", "minLiquidity"] },
];

export class OrderForm {
  /** @param onQuote called with the form's values when Quote is pressed (limit orders) */
  constructor(form, onQuote = null) {
    this.form = form;
    this.onQuote = onQuote;
    this.type = form.querySelector("[name=orderType]");
    this.container = form.querySelector("#order-fields");
    this.formError = form.querySelector("#order-error");
    for (const t of ORDER_TYPES) this.type.append(el("option", { value: t.value, text: t.label }));
    this.type.addEventListener("change", () => this.render());
    this.render();
  }

  get orderType() {
    return ORDER_TYPES.find((t) => t.value === this.type.value) || ORDER_TYPES[0];
  }

  render() {
    const kept = this.values();
    this.container.replaceChildren(...this.orderType.fields.map((name) => this.field(name, kept[name])));
  }

  field(name, kept) {
    const spec = FIELDS[name];
    const id = `field-${name}`;
    const described = [spec.help ? `${id}-help` : null, `${id}-error`].filter(Boolean).join(" ");
    let input;
    if (spec.type === "select") {
      input = el("select", { id, name, "aria-describedby": described },
        spec.options.map((o) => (Array.isArray(o) ? el("option", { value: o[0], text: o[1] }) : el("option", { value: o, text: o }))));
    } else {
      input = el("input", {
        id, name, type: spec.type || "text", inputmode: spec.inputmode, list: spec.list,
        autocomplete: "off", spellcheck: "false", "aria-describedby": described,
      });
    }
    input.value = kept ?? (typeof spec.value === "function" ? spec.value() : spec.value) ?? "";
    const quote = spec.quote && this.onQuote
      ? el("div", { class: "quote-row" },
        el("button", { type: "button", class: "secondary", id: "quote-button", onclick: () => this.onQuote(this.values()) }, "Quote"),
        el("p", { class: "quote-line", id: "quote-line", role: "status" }))
      : null;
    return el("div", { class: "field", "data-field": name },
      el("label", { for: id }, spec.label, spec.optional ? el("span", { class: "optional", text: " (optional)" }) : ""),
      input,
      spec.help ? el("p", { class: "help", id: `${id}-help`, text: spec.help }) : null,
      quote,
      el("p", { class: "field-error", id: `${id}-error` }));
  }

  /** What the quote says (or why there is none), under the limit price. */
  showQuote(text) {
    const line = this.form.querySelector("#quote-line");
    if (line) line.textContent = text;
  }

  values() {
    const out = {};
    for (const input of this.container.querySelectorAll("input, select")) out[input.name] = input.value;
    return out;
  }

  /** The request body: the type's fields, blanks left out (the API applies its defaults). */
  body() {
    const body = { orderType: this.orderType.value };
    const values = this.values();
    for (const [name, raw] of Object.entries(values)) {
      const value = raw.trim();
      if (value === "" || FIELDS[name].local) continue;
      body[name] = FIELDS[name].toApi ? FIELDS[name].toApi(value) : value;
    }
    if (values.side === "out" && body.amountIn !== undefined) {
      body.amountOut = body.amountIn; // exact out: the amount is what the order receives
      delete body.amountIn;
    }
    return body;
  }

  clearErrors() {
    this.formError.textContent = "";
    for (const node of this.form.querySelectorAll(".field-error")) node.textContent = "";
    for (const node of this.form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  /** Show the API's error next to the field it names (focused), else above the button. */
  showError(error) {
    const field = error.field === "amountOut" ? "amountIn" : error.field; // one amount input
    const input = field ? this.form.querySelector(`[name="${CSS.escape(field)}"]`) : null;
    if (!input) {
      this.formError.textContent = error.field ? `${error.field}: ${error.message}` : error.message;
      return;
    }
    input.setAttribute("aria-invalid", "true");
    this.form.querySelector(`#${CSS.escape(input.id)}-error`).textContent = error.message;
    input.focus();
  }
}
