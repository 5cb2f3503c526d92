"""The few Solana JSON-RPC reads the API side makes, with plain httpx: the functions without the
Solana layer never load solana-py (tests/integration/test_layers.py runs them without it).

- `current_slot(url)`: the cluster's `confirmed` slot (getSlot). A sniper order watches for pools
  created from this slot on, so it is read when the order is accepted.
"""

from __future__ import annotations

from typing import Any

from engine.errors import RpcUnavailable

TIMEOUT_SECONDS = 3.0  # inside API Gateway's 29 s with room for the rest of the request


def _call(url: str, method: str, params: list[Any]) -> Any:
    import httpx  # on first use: only sniper orders need it, and it costs ~60 ms of cold start

    try:
        reply = httpx.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            timeout=TIMEOUT_SECONDS,
        )
        body = reply.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise RpcUnavailable(
            f"the Solana RPC did not answer {method} ({type(exc).__name__}); retry shortly"
        ) from exc
    if not isinstance(body, dict) or "result" not in body:
        error = (body.get("error") or {}) if isinstance(body, dict) else {}
        message = str(error.get("message", "no result"))[:200]
        raise RpcUnavailable(f"the Solana RPC refused {method}: {message}; retry shortly")
    return body["result"]


def current_slot(url: str) -> int:
    """The cluster's confirmed slot; RpcUnavailable (503) when the RPC does not answer."""
    slot = _call(url, "getSlot", [{"commitment": "confirmed"}])
    if isinstance(slot, bool) or not isinstance(slot, int) or slot < 0:
        raise RpcUnavailable(f"the Solana RPC answered getSlot with {str(slot)[:40]!r}")
    return slot
