// The HTTP API as the console calls it: the key in x-api-key, errors as {status, code, message, field}.

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status; // 0: the API could not be reached
    this.code = code;
    this.field = field || null;
  }
}

export class Api {
  /** @param {string} base "" for the page's own origin, else e.g. "https://abc.execute-api…" */
  constructor(base = "") {
    this.base = base.replace(/\/$/, "");
    this.key = "";
  }

  async request(method, path, { body, headers = {}, auth = true } = {}) {
    const sent = { ...headers };
    if (auth) sent["x-api-key"] = this.key;
    if (body !== undefined) sent["content-type"] = "application/json";
    let reply;
    try {
      reply = await fetch(this.base + path, {
        method,
        headers: sent,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (exc) {
      throw new ApiError(0, "unreachable", `the API could not be reached (${exc.message})`);
    }
    let data = null;
    try {
      data = await reply.json();
    } catch {
      data = null;
    }
    if (!reply.ok) {
      // The API's own errors are {"error": {code, message, field?}}; API Gateway's authorizer
      // answers {"message": "Unauthorized" | "Forbidden"} before the function runs.
      const error = (data && data.error) || {};
      const code = error.code || { 401: "unauthorized", 403: "forbidden" }[reply.status] || "http_error";
      const message = error.message || (data && data.message) || reply.statusText || "request failed";
      throw new ApiError(reply.status, code, message, error.field);
    }
    return { data, headers: reply.headers };
  }

  config() {
    return this.request("GET", "/console/config.json", { auth: false }).then((r) => r.data);
  }

  submit(order, idempotencyKey) {
    return this.request("POST", "/api/orders/execute", {
      body: order,
      headers: { "idempotency-key": idempotencyKey },
    }).then((r) => r.data);
  }

  order(orderId) {
    return this.request("GET", `/api/orders/${encodeURIComponent(orderId)}`).then((r) => r.data);
  }

  cancel(orderId) {
    return this.request("DELETE", `/api/orders/${encodeURIComponent(orderId)}`).then((r) => r.data);
  }

  quote({ tokenIn, tokenOut, amountIn, side }) {
    // exact out (the form's "Amount is" choice): the input each pool needs for that output
    const query = new URLSearchParams({ tokenIn, tokenOut, [side === "out" ? "amountOut" : "amountIn"]: amountIn });
    return this.request("GET", `/api/quote?${query}`).then((r) => r.data);
  }

  orders({ limit = 20, cursor = null, status = "" } = {}) {
    const query = new URLSearchParams({ limit: String(limit) });
    if (cursor) query.set("cursor", cursor);
    if (status) query.set("status", status);
    return this.request("GET", `/api/orders?${query}`).then((r) => r.data);
  }
}

/** What to tell a person about a key the API refused (or could not check). */
export function keyProblem(error) {
  if (error.status === 401) {
    return "No API key reached the API (401 Unauthorized): paste your key above.";
  }
  if (error.status === 403 && error.code === "api_key_revoked") {
    return "This key was revoked (403): it can no longer create orders. Ask for a new one.";
  }
  if (error.status === 403) {
    return "This key is wrong or revoked (403 Forbidden). Check it, or create one with `make key NAME=you`.";
  }
  if (error.status === 0) return `Cannot reach the API: ${error.message}.`;
  return null;
}
