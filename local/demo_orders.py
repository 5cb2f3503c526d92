"""`make demo-orders`: limit and sniper orders end to end, printed as a user sees them.

1. `GET /api/quote` shows every pool's price for 0.01 SOL;
2. a limit order 2 % above that price is placed over a WebSocket and waits (`watching`);
3. a market order buys SOL with 5,000 USDC, which moves its pool's price past the limit;
4. the watcher triggers the limit order and it fills (`triggered` ... `confirmed`);
5. a new token is minted, a sniper order for it waits, and a pool for it is created on the
   local chain by Meteora DAMM v2's real `initialize_pool` transaction: the order fires and fills.

By default it starts a stack of its own (`local.stack.Stack`: its own database `orders_demo_...`,
free ports, the local chain, the watcher on the template's schedule) and stops it at the end, so
it needs nothing running and leaves `make run`'s database alone. `--url http://127.0.0.1:3000`
uses a running `make run` stack instead (its key from .local-data/dev-api-key, its chain at
`--rpc`, default LOCAL_CHAIN_PORT or 8899); that stack keeps what the demo did.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from websockets.sync.client import connect

from engine.orders import TERMINAL, statuses
from local.demo import find_api_key

# What the demo prints goes to the terminal; a stack it starts logs to a file instead.
OUT = sys.__stdout__ or sys.stdout
ENDED = set(statuses(TERMINAL))


def say(text: str) -> None:
    OUT.write(text + "\n")
    OUT.flush()


def show(label: str, frame: dict[str, Any]) -> None:
    if "error" in frame and "status" not in frame:
        say(f"[{label}] error frame: {json.dumps(frame['error'])}")
        return
    extra = {k: v for k, v in frame.items() if k not in ("orderId", "seq", "status", "at")}
    detail = f" {json.dumps(extra, default=str)}" if extra else ""
    say(f"[{label}] #{frame['seq']} {frame['status']:<9}{detail}"[:400])


def follow(ws: Any, label: str, deadline: float) -> str:
    """Print frames until a terminal status; returns it. Raises TimeoutError at the deadline."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{label}: no terminal status in time")
        frame = json.loads(ws.recv(timeout=remaining))
        show(label, frame)
        if frame.get("status") in ENDED:
            return str(frame["status"])


def _http(method: str, url: str, key: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json", "x-api-key": key},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _expires() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")


def _until(ws: Any, label: str, status: str, deadline: float) -> str:
    """Print frames until `status` arrives; returns the order id."""
    while True:
        frame = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
        show(label, frame)
        if "error" in frame and "status" not in frame:
            raise RuntimeError(f"{label}: {frame['error']}")
        if frame.get("status") == status:
            return str(frame["orderId"])


def limit_order(base: str, key: str, timeout: float) -> str:
    ws_url = "ws" + base.removeprefix("http") + "/api/orders/execute"
    status, quote = _http("GET", f"{base}/api/quote?tokenIn=SOL&tokenOut=USDC&amountIn=0.01", key)
    if status != 200:
        raise RuntimeError(f"quote: {status} {quote}")
    for q in quote["quotes"]:
        best = " (best)" if q.get("chosen") else ""
        say(f"[quote] {q['venue']:<16} {q.get('amountOut', q.get('skipped'))} USDC{best}")
    limit = (Decimal(quote["price"]) * Decimal("1.02")).quantize(Decimal("0.01"))
    say(f"[quote] price now {quote['price']} USDC per SOL; the limit order asks for {limit}")
    deadline = time.monotonic() + timeout
    with connect(ws_url, open_timeout=10, additional_headers={"x-api-key": key}) as ws:
        body = {
            "orderType": "limit",
            "tokenIn": "SOL",
            "tokenOut": "USDC",
            "amountIn": "0.01",
            "limitPrice": str(limit),
            "expiresAt": _expires(),
        }
        say(f"[limit] submit {json.dumps(body)}")
        ws.send(json.dumps(body))
        order_id = _until(ws, "limit", "watching", deadline)
        time.sleep(2)
        say("[limit] still watching after 2 s: the pools pay less than the limit")
        market = {"tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "5000", "slippage": 5}
        say(f"[market] a large buy moves the price: {json.dumps(market)}")
        status, accepted = _http("POST", f"{base}/api/orders/execute", key, market)
        if status != 202:
            raise RuntimeError(f"market order: {status} {accepted}")
        say(f"[market] {status} {accepted['orderId']}")
        outcome = follow(ws, "limit", deadline)
    say(f"[limit] {order_id}: {outcome}")
    return outcome


def sniper_order(base: str, rpc: str, key: str, timeout: float) -> str:
    from solana.rpc.async_api import AsyncClient
    from solana.rpc.commitment import Confirmed

    from local import pools
    from local.chain.seed import WALLET_KEYPAIR

    async def mint() -> str:
        async with AsyncClient(rpc, commitment=Confirmed, timeout=30) as client:
            made, _ = await pools.mint_new_token(client, WALLET_KEYPAIR, 6, 10**12)
            return str(made)

    async def pool(mint: str) -> pools.Created:
        request = pools.PoolRequest(
            "meteora_damm_v2", price=Decimal("0.5"), liquidity=Decimal(2_000), mint=mint
        )
        async with AsyncClient(rpc, commitment=Confirmed, timeout=30) as client:
            return await pools.create_pool(client, request, WALLET_KEYPAIR)

    token = asyncio.run(mint())
    say(f"[sniper] a new token, no pool yet: {token}")
    ws_url = "ws" + base.removeprefix("http") + "/api/orders/execute"
    deadline = time.monotonic() + timeout
    with connect(ws_url, open_timeout=10, additional_headers={"x-api-key": key}) as ws:
        body = {
            "orderType": "sniper",
            "tokenIn": "USDC",
            "tokenOut": token,
            "amountIn": "10",
            "maxPrice": "1",
            "expiresAt": _expires(),
        }
        say(f"[sniper] submit {json.dumps(body)}")
        ws.send(json.dumps(body))
        order_id = _until(ws, "sniper", "watching", deadline)
        created = asyncio.run(pool(token))
        say(
            f"[chain] DAMM v2 initialize_pool landed: pool {created.pool}, slot {created.slot},"
            f" tx {created.signature}"
        )
        outcome = follow(ws, "sniper", deadline)
    say(f"[sniper] {order_id}: {outcome}")
    return outcome


@contextlib.contextmanager
def own_stack(log_path: str) -> Iterator[tuple[str, str, str]]:
    """A stack of the demo's own: (HTTP URL, chain RPC URL, API key). Its functions' log lines
    go to `log_path`; its database is dropped and the environment restored afterwards."""
    import logging
    import os

    from local import postgres
    from local.ports import free_port
    from local.stack import Stack

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
    base = postgres.server_url()
    name = f"orders_demo_{uuid.uuid4().hex[:8]}"
    saved = dict(os.environ)
    stack = Stack(free_port(), database=name, api_key_file=None, chain_port=0)
    with open(log_path, "w") as log, contextlib.redirect_stdout(log):
        try:
            urls = stack.start()
            say(f"[stack] {urls['http']}, database {name}, chain {urls['solana_rpc']}")
            say(f"[stack] its log: {log_path}")
            yield urls["http"], urls["solana_rpc"], stack.api_key
        finally:
            stack.stop()
            os.environ.clear()
            os.environ.update(saved)
            postgres.drop_database(base, str(psycopg.conninfo.make_conninfo(base, dbname=name)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a running stack (make run); default: start one here")
    parser.add_argument("--rpc", help="its chain's RPC (default: LOCAL_CHAIN_PORT or 8899)")
    parser.add_argument("--api-key", help="default: LOCAL_API_KEY, else .local-data/dev-api-key")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per order")
    parser.add_argument(
        "--log",
        default=os.path.join(tempfile.gettempdir(), "demo-orders-stack.log"),
        help="where a stack the demo starts logs",
    )
    args = parser.parse_args(argv)
    try:
        if args.url:
            from local.chain import chain_port

            key = find_api_key(args.api_key)
            if not key:
                print("no API key: start the stack (make run) or pass --api-key", file=sys.stderr)
                return 1
            rpc = args.rpc or f"http://127.0.0.1:{chain_port()}"
            outcomes = run(args.url.rstrip("/"), rpc, key, args.timeout)
        else:
            with own_stack(args.log) as (base, rpc, key):
                outcomes = run(base, rpc, key, args.timeout)
    except (TimeoutError, OSError, RuntimeError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    say("done: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()))
    return 0 if set(outcomes.values()) == {"confirmed"} else 1


def run(base: str, rpc: str, key: str, timeout: float) -> dict[str, str]:
    return {
        "limit": limit_order(base, key, timeout),
        "sniper": sniper_order(base, rpc, key, timeout),
    }


if __name__ == "__main__":
    sys.exit(main())
