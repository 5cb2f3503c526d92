// The order form, described as data: each order type names its fields, so limit and sniper
// orders need only `available: true` (and the fields below) once the API accepts them.

import { el } from "./format.js";

export const FIELDS = {
  tokenIn: { label: "Token in", value: "SOL", list: "token-symbols", help: "SOL, USDC or a base58 mint address" },
  tokenOut: { label: "Token out", value: "USDC", list: "token-symbols", help: "SOL, USDC or a base58 mint address" },
  amountIn: { label: "Amount in", value: "0.01", inputmode: "decimal", help: "in units of token in, e.g. 0.01" },
  slippage: { label: "Slippage (%)", value: "0.5", inputmode: "decimal", help: "greater than 0, at most 50", optional: true },
  limitPrice: { label: "Limit price", inputmode: "decimal", help: "the least token out per 1 token in" },
  expiresAt: { label: "Expires at", type: "datetime-local", help: "local time", toApi: (v) => new Date(v).toISOString() },
  poolVenue: { label: "Pool venue", type: "select", options: ["raydium_cpmm", "meteora_damm_v2"] },
  maxPrice: { label: "Max price", inputmode: "decimal", help: "token in per 1 token out, at most" },
  minLiquidity: { label: "Min liquidity", inputmode: "decimal", help: "in units of token in", optional: true },
};

const BASE = ["tokenIn", "tokenOut", "amountIn", "slippage"];
export const ORDER_TYPES = [
  { value: "market", label: "Market", fields: BASE, available: true },
  { value: "limit", label: "Limit", fields: [...BASE, "limitPrice", "expiresAt"], available: false },
  { value: "sniper", label: "Sniper", fields: [...BASE, "expiresAt", "poolVenue", "maxPrice", "minLiquidity"], available: false },
];

export class OrderForm {
  constructor(form) {
    this.form = form;
    this.type = form.querySelector("[name=orderType]");
    this.container = form.querySelector("#order-fields");
    this.formError = form.querySelector("#order-error");
    for (const t of ORDER_TYPES) {
      this.type.append(el("option", { value: t.value, disabled: !t.available },
        t.available ? t.label : `${t.label} (not in the API yet)`));
    }
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
        spec.options.map((o) => el("option", { value: o, text: o })));
    } else {
      input = el("input", {
        id, name, type: spec.type || "text", inputmode: spec.inputmode, list: spec.list,
        autocomplete: "off", spellcheck: "false", "aria-describedby": described,
      });
    }
    input.value = kept ?? spec.value ?? "";
    return el("div", { class: "field", "data-field": name },
      el("label", { for: id }, spec.label, spec.optional ? el("span", { class: "optional", text: " (optional)" }) : ""),
      input,
      spec.help ? el("p", { class: "help", id: `${id}-help`, text: spec.help }) : null,
      el("p", { class: "field-error", id: `${id}-error` }));
  }

  values() {
    const out = {};
    for (const input of this.container.querySelectorAll("input, select")) out[input.name] = input.value;
    return out;
  }

  /** The request body: the type's fields, blanks left out (the API applies its defaults). */
  body() {
    const body = { orderType: this.orderType.value };
    for (const [name, raw] of Object.entries(this.values())) {
      const value = raw.trim();
      if (value === "") continue;
      body[name] = FIELDS[name].toApi ? FIELDS[name].toApi(value) : value;
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
    const input = error.field ? this.form.querySelector(`[name="${CSS.escape(error.field)}"]`) : null;
    if (!input) {
      this.formError.textContent = error.field ? `${error.field}: ${error.message}` : error.message;
      return;
    }
    input.setAttribute("aria-invalid", "true");
    this.form.querySelector(`#${CSS.escape(input.id)}-error`).textContent = error.message;
    input.focus();
  }
}
