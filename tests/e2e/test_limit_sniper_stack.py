"""Limit and sniper orders through the whole local stack (issue 12), over its real sockets only:
the quote endpoint (its own function, routed by the template), a limit order placed over
WebSocket that waits, a market order that moves the price, the limit order triggered by the
watcher the template schedules and filled; cancel over HTTP reaching a follower's socket; a
sniper order firing when a new token's pool is created by a real initialization transaction.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from websockets.sync.client import ClientConnection

from local.handlers import ROOT
from local.poller import wait_until
from tests.stack import Running, follow, get_order, http_json, isolated_stack, open_ws

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(pg_base_url: str, localstack: str) -> Iterator[Running]:
    with isolated_stack(
        pg_base_url, f"orders_e2e_lim_{uuid.uuid4().hex[:8]}", aws=localstack
    ) as running:
        yield running


def in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")


def quote(stack: Running, token_in: str, token_out: str, amount: str) -> dict[str, Any]:
    status, reply = http_json(
        "GET", f"{stack.http}/api/quote?tokenIn={token_in}&tokenOut={token_out}&amountIn={amount}"
    )
    assert status == 200, reply
    return dict(reply)


def frames_until(ws: ClientConnection, status: str, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    frames: list[dict[str, Any]] = []
    while not frames or frames[-1].get("status") != status:
        left = deadline - time.monotonic()
        assert left > 0, f"no {status} frame in {timeout}s: {frames}"
        frames.append(json.loads(ws.recv(timeout=left)))
    return frames


def test_quote_shows_every_pool_without_trading(stack: Running) -> None:
    before = http_json("GET", f"{stack.http}/api/orders")[1]["orders"]
    reply = quote(stack, "SOL", "USDC", "0.01")
    assert {q["venue"] for q in reply["quotes"]} == {"raydium_cpmm", "meteora_damm_v2"}
    [chosen] = [q for q in reply["quotes"] if q.get("chosen")]
    assert (chosen["pool"], chosen["amountOut"]) == (reply["pool"], reply["amountOut"])
    assert Decimal(reply["price"]) == Decimal(reply["amountOut"]) / Decimal("0.01")
    assert http_json("GET", f"{stack.http}/api/orders")[1]["orders"] == before  # no order
    status, error = http_json("GET", f"{stack.http}/api/quote?tokenIn=SOL&tokenOut=SOL&amountIn=1")
    assert (status, error["error"]["field"]) == (400, "tokenOut")
    status, error = http_json("GET", f"{stack.http}/api/quote?tokenIn=SOL&tokenOut=USDC")
    assert (status, error["error"]["field"]) == (400, "amountIn")
    status, denied = http_json(
        "GET",
        f"{stack.http}/api/quote?tokenIn=SOL&tokenOut=USDC&amountIn=1",
        headers={"x-api-key": ""},
    )
    assert (status, denied) == (401, {"message": "Unauthorized"})


def test_a_limit_order_waits_then_fills_after_a_market_order_moves_the_price(
    stack: Running,
) -> None:
    price = Decimal(quote(stack, "SOL", "USDC", "0.01")["price"])
    limit = (price * Decimal("1.02")).quantize(Decimal("0.01"))
    with open_ws(f"{stack.ws}") as ws:
        ws.send(
            json.dumps(
                {
                    "orderType": "limit",
                    "tokenIn": "SOL",
                    "tokenOut": "USDC",
                    "amountIn": "0.01",
                    "limitPrice": str(limit),
                    "expiresAt": in_an_hour(),
                }
            )
        )
        waiting = frames_until(ws, "watching")
        order_id = waiting[0]["orderId"]
        # The watcher's ticks since the order was watching, not a guess of time: its tick metrics
        # go out every 10 s, so the second batch after now holds only ticks that saw the order.
        for _ in range(2):
            seen = watch_ticks(stack)
            assert wait_until(lambda: watch_ticks(stack) > seen, timeout=60)  # noqa: B023
        assert get_order(stack, order_id)["status"] == "watching"
        # A market order buys SOL with 5,000 USDC: its pool's SOL price rises ~7 %.
        status, mover = http_json(
            "POST",
            f"{stack.http}/api/orders/execute",
            {"tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "5000", "slippage": 5},
        )
        assert status == 202, mover
        rest = follow(ws, timeout=60)
    statuses = [f["status"] for f in waiting + rest]
    assert statuses == [
        "pending", "watching", "triggered", "routing", "building", "submitted", "confirmed"
    ]  # fmt: skip
    trigger = rest[0]
    assert trigger["reason"] == "limit_reached"
    assert Decimal(trigger["amountOut"]) >= Decimal(trigger["minAmountOut"]) == limit / 100
    order = get_order(stack, order_id)
    assert order["status"] == "confirmed"
    assert Decimal(order["minAmountOut"]) == limit / 100
    assert order["triggers"] == 1
    assert order["orderType"] == "limit"
    assert get_order(stack, mover["orderId"])["status"] == "confirmed"


def test_cancel_over_http_reaches_the_orders_follower(stack: Running) -> None:
    body = {
        "orderType": "limit",
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amountIn": "0.01",
        "limitPrice": "100000",
        "expiresAt": in_an_hour(),
    }
    status, accepted = http_json("POST", f"{stack.http}/api/orders/execute", body)
    assert (status, accepted["status"]) == (202, "watching")
    order_id = accepted["orderId"]
    status, listed = http_json("GET", f"{stack.http}/api/orders?status=watching")
    assert order_id in [o["orderId"] for o in listed["orders"]]
    with open_ws(accepted["wsUrl"]) as ws:
        assert [f["status"] for f in frames_until(ws, "watching")] == ["pending", "watching"]
        status, done = http_json("DELETE", f"{stack.http}/api/orders/{order_id}")
        assert (status, done) == (200, {"orderId": order_id, "status": "cancelled"})
        [cancelled] = frames_until(ws, "cancelled")
    assert cancelled["seq"] == 3
    status, again = http_json("DELETE", f"{stack.http}/api/orders/{order_id}")
    assert (status, again["error"]["code"]) == (409, "not_cancellable")


def test_a_sniper_order_fires_when_a_new_tokens_pool_is_created(stack: Running) -> None:
    def pools(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "local.pools", *args, "--rpc", stack.rpc, "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    mint = pools("mint")["mint"]
    body = {
        "orderType": "sniper",
        "tokenIn": "USDC",
        "tokenOut": mint,
        "amountIn": "5",
        "maxPrice": "1",
        "expiresAt": in_an_hour(),
    }
    with open_ws(stack.ws) as ws:
        ws.send(json.dumps(body))
        waiting = frames_until(ws, "watching")
        order_id = waiting[0]["orderId"]
        created = pools("create", "--venue", "meteora_damm_v2", "--mint", mint, "--price", "0.5")
        rest = follow(ws, timeout=60)
    assert [f["status"] for f in rest] == [
        "triggered", "routing", "building", "submitted", "confirmed"
    ]  # fmt: skip
    trigger = rest[0]
    assert (trigger["reason"], trigger["pool"]) == ("new_pool", created["pool"])
    assert (trigger["createdSlot"], trigger["creationTx"]) == (
        created["slot"],
        created["signature"],
    )
    # The trigger states its price as the fill does: tokenOut per 1 tokenIn (about 2 tokens per
    # USDC here, fees aside); maxPrice (1) bounds its inverse, USDC per token.
    triggered_at, filled_at = Decimal(trigger["price"]), Decimal(rest[-1]["filled"]["price"])
    assert abs(triggered_at - filled_at) <= filled_at / 50
    assert triggered_at > 1
    order = get_order(stack, order_id)
    assert (order["pool"], order["status"]) == (created["pool"], "confirmed")


def watch_ticks(stack: Running) -> int:
    """How many watcher ticks the stack's metrics have seen so far."""
    metrics = http_json("GET", f"{stack.http}/_local/metrics")[1]["metrics"]
    found = [m for m in metrics if m.get("name") == "WatchTick"]
    return int(found[0]["count"]) if found else 0


def test_the_watcher_runs_on_the_templates_schedule(stack: Running) -> None:
    def ticks() -> int:
        return watch_ticks(stack)

    # The watch function's metrics go out every 10 s of its minute-long invocation.
    assert wait_until(lambda: ticks() > 0, timeout=25)
    seen = ticks()
    assert wait_until(lambda: ticks() > seen, timeout=25)


def test_an_exact_out_order_confirms_with_exactly_the_amount_asked(stack: Running) -> None:
    """Exact out through the whole stack: the quote endpoint gives the input each pool needs
    for 1.5 USDC, and a market order with `amountOut` 1.5 (over WebSocket) confirms with
    exactly 1.5 USDC more in the wallet (the landed transaction's own token balances), having
    spent the quoted input, within its maxAmountIn."""
    from local.chain import USDC_MINT, WALLET

    status, quoted = http_json(
        "GET", f"{stack.http}/api/quote?tokenIn=SOL&tokenOut=USDC&amountOut=1.5"
    )
    assert status == 200, quoted
    assert quoted["exactOut"] is True
    assert quoted["amountOut"] == "1.5"
    [chosen] = [q for q in quoted["quotes"] if q.get("chosen")]
    assert Decimal(quoted["amountIn"]) == Decimal(chosen["quotedAmountIn"])
    status, both = http_json(
        "GET", f"{stack.http}/api/quote?tokenIn=SOL&tokenOut=USDC&amountIn=1&amountOut=1.5"
    )
    assert (status, both["error"]["field"]) == (400, "amountOut")
    with open_ws(stack.ws) as ws:
        ws.send(json.dumps({"tokenIn": "SOL", "tokenOut": "USDC", "amountOut": "1.5"}))
        frames = follow(ws)
    assert [f["status"] for f in frames] == [
        "pending",
        "routing",
        "building",
        "submitted",
        "confirmed",
    ]
    routing = frames[1]
    assert Decimal(routing["quotedAmountIn"]) <= Decimal(routing["maxAmountIn"])
    assert len(routing["route"]["legs"]) == 1  # a small order stays on one pool
    order = get_order(stack, frames[0]["orderId"])
    filled = order["filled"]
    assert filled["amountOut"] == "1.5"
    assert Decimal(filled["amountIn"]) <= Decimal(routing["maxAmountIn"])
    assert order["amountIn"] == routing["maxAmountIn"]
    status, landed = http_json(
        "POST",
        stack.rpc,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "getTransaction",
            "params": [
                order["txHash"],
                {
                    "encoding": "json",
                    "maxSupportedTransactionVersion": 0,
                    "commitment": "confirmed",
                },
            ],
        },
    )
    assert status == 200, landed
    meta = landed["result"]["meta"]

    def usdc(balances: list[dict[str, Any]]) -> int:
        return sum(
            int(b["uiTokenAmount"]["amount"])
            for b in balances
            if b["owner"] == str(WALLET) and b["mint"] == str(USDC_MINT)
        )

    assert usdc(meta["postTokenBalances"]) - usdc(meta["preTokenBalances"]) == 1_500_000


def test_a_large_exact_out_order_splits_and_receives_exactly_the_amount(stack: Running) -> None:
    """7,000 USDC out (about 47 SOL: enough to move both SOL/USDC pools) through the whole
    stack: the quote endpoint's `split` shares the output between both venues and is the
    route; the order over WebSocket routes on it (each leg an exact-out swap with its own
    maxAmountIn, summing to the order's), lands in one transaction with exactly 7,000 USDC
    more in the wallet (the landed transaction's own token balances), and GET /api/orders/{id}
    shows the route and each leg's realized input and output."""
    from local.chain import USDC_MINT, WALLET

    status, quoted = http_json(
        "GET", f"{stack.http}/api/quote?tokenIn=SOL&tokenOut=USDC&amountOut=7000"
    )
    assert status == 200, quoted
    split = quoted["split"]
    assert {leg["venue"] for leg in split["legs"]} == {"raydium_cpmm", "meteora_damm_v2"}
    assert sum(int(leg["quotedAmountOutUnits"]) for leg in split["legs"]) == 7000 * 10**6
    assert Decimal(split["quotedAmountIn"]) < Decimal(quoted["amountIn"])  # the best pool's
    assert quoted["route"] == split
    with open_ws(stack.ws) as ws:
        ws.send(json.dumps({"tokenIn": "SOL", "tokenOut": "USDC", "amountOut": "7000"}))
        frames = follow(ws)
    assert [f["status"] for f in frames][-1] == "confirmed", frames
    route = frames[1]["route"]
    assert len(route["legs"]) == 2
    assert sum(Decimal(leg["maxAmountIn"]) for leg in route["legs"]) == Decimal(
        frames[1]["maxAmountIn"]
    )
    order = get_order(stack, frames[0]["orderId"])
    assert order["route"]["legs"] == route["legs"]
    filled = order["filled"]
    assert filled["amountOut"] == "7000"
    assert [leg["pool"] for leg in filled["legs"]] == [leg["pool"] for leg in route["legs"]]
    assert sum(int(leg["amountOutUnits"]) for leg in filled["legs"]) == 7000 * 10**6
    assert sum(Decimal(leg["amountIn"]) for leg in filled["legs"]) == Decimal(filled["amountIn"])
    assert Decimal(filled["amountIn"]) <= Decimal(frames[1]["maxAmountIn"])
    status, landed = http_json(
        "POST",
        stack.rpc,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "getTransaction",
            "params": [
                order["txHash"],
                {
                    "encoding": "json",
                    "maxSupportedTransactionVersion": 0,
                    "commitment": "confirmed",
                },
            ],
        },
    )
    assert status == 200, landed
    meta = landed["result"]["meta"]

    def usdc(balances: list[dict[str, Any]]) -> int:
        return sum(
            int(b["uiTokenAmount"]["amount"])
            for b in balances
            if b["owner"] == str(WALLET) and b["mint"] == str(USDC_MINT)
        )

    assert usdc(meta["postTokenBalances"]) - usdc(meta["preTokenBalances"]) == 7000 * 10**6
