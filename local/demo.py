"""Demo client: submit orders and print their status stream.

    python -m local.demo --url http://127.0.0.1:3000

1. submits an order over the WebSocket and follows it on the same connection;
2. submits one over HTTP and follows it with `?orderId=` (the history is replayed first).
Exits 0 once both reach `confirmed` or `failed`, 1 on a timeout or a connection error.
A gap in `seq` is repaired by asking for a replay (`subscribe` with `fromSeq`).

The API key: `--api-key`, else LOCAL_API_KEY, else the one `make run` saved in
`.local-data/dev-api-key`. It goes in the `x-api-key` header (HTTP, and the first WebSocket) and
as `?apiKey=` (the second WebSocket, as a browser would send it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from engine.orders import TERMINAL as TERMINAL_STATUSES
from engine.orders import statuses

TERMINAL = tuple(statuses(TERMINAL_STATUSES))
KEY_FILE = Path(__file__).resolve().parents[1] / ".local-data" / "dev-api-key"


def find_api_key(given: str | None) -> str | None:
    if given:
        return given
    if os.environ.get("LOCAL_API_KEY"):
        return os.environ["LOCAL_API_KEY"]
    return KEY_FILE.read_text().strip() if KEY_FILE.is_file() else None


def show(label: str, frame: dict[str, Any]) -> None:
    if "error" in frame and "status" not in frame:
        print(f"[{label}] error frame: {json.dumps(frame['error'])}", flush=True)
        return
    extra = {k: v for k, v in frame.items() if k not in ("orderId", "seq", "status", "at")}
    detail = f" {json.dumps(extra, default=str)}" if extra else ""
    print(f"[{label}] #{frame['seq']} {frame['status']:<9} {frame['at']}{detail}", flush=True)


def follow(ws: ClientConnection, label: str, deadline: float, last_seq: int = 0) -> str:
    """Print frames until a terminal status; returns it. Raises TimeoutError at the deadline."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{label}: no terminal status in time")
        frame = json.loads(ws.recv(timeout=remaining))
        if "seq" not in frame:
            show(label, frame)
            continue
        if frame["seq"] <= last_seq:
            continue  # a replay overlap: already shown
        if frame["seq"] > last_seq + 1:
            print(f"[{label}] gap after #{last_seq}; asking for a replay", flush=True)
            ws.send(
                json.dumps(
                    {"action": "subscribe", "orderId": frame["orderId"], "fromSeq": last_seq}
                )
            )
            continue
        show(label, frame)
        last_seq = frame["seq"]
        if frame["status"] in TERMINAL:
            return str(frame["status"])


def over_websocket(ws_base: str, key: str, order: dict[str, Any], deadline: float) -> str:
    url = f"{ws_base}/api/orders/execute"
    with connect(url, open_timeout=10, additional_headers={"x-api-key": key}) as ws:
        print(f"[ws]   submit {json.dumps(order)}", flush=True)
        ws.send(json.dumps(order))
        return follow(ws, "ws", deadline)


def over_http(base: str, ws_base: str, key: str, order: dict[str, Any], deadline: float) -> str:
    request = urllib.request.Request(
        f"{base}/api/orders/execute",
        data=json.dumps(order).encode(),
        headers={"content-type": "application/json", "x-api-key": key},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        accepted = json.loads(reply.read())
    print(f"[http] {reply.status} {json.dumps(accepted)}", flush=True)
    url = accepted.get("wsUrl") or f"{ws_base}/api/orders/execute?orderId={accepted['orderId']}"
    url += "&apiKey=" + urllib.parse.quote(key, safe="")
    with connect(url, open_timeout=10) as ws:
        return follow(ws, "http", deadline)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000", help="the local stack's URL")
    parser.add_argument("--amount", default="0.01", help="SOL to sell for USDC")
    parser.add_argument("--slippage", type=float, default=0.5, help="percent")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per order")
    parser.add_argument("--only", choices=("ws", "http"), help="run one of the two flows")
    parser.add_argument("--api-key", help="default: LOCAL_API_KEY, else .local-data/dev-api-key")
    args = parser.parse_args(argv)
    key = find_api_key(args.api_key)
    if not key:
        print("no API key: start the stack (make run) or pass --api-key", file=sys.stderr)
        return 1
    base = args.url.rstrip("/")
    ws_base = "ws" + base.removeprefix("http")
    order = {
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amountIn": args.amount,
        "slippage": args.slippage,
    }
    outcomes: dict[str, str] = {}
    try:
        if args.only in (None, "ws"):
            outcomes["ws"] = over_websocket(ws_base, key, order, time.monotonic() + args.timeout)
        if args.only in (None, "http"):
            deadline = time.monotonic() + args.timeout
            outcomes["http"] = over_http(base, ws_base, key, order, deadline)
    except (TimeoutError, OSError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    print("done: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
