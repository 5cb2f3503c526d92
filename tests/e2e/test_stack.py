"""The whole local stack as `make run` starts it, driven only through its real sockets.

One stack per module: the gateway (HTTP API, WebSocket API, management API) on a free port,
LocalStack's SQS with the template's queues and its Secrets Manager holding the wallet key, the
execute and notify pollers, its own Postgres database and a local Solana chain with fast blocks.
Orders really execute: quotes from both venues, one signed swap landed on the chain, every status
streamed to the subscribers' sockets. The tests assert what a user of the API sees (frames,
replies) and, where it matters, what the chain and the database say about it.
"""

from __future__ import annotations

import functools
import json
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import boto3
import psycopg
import pytest
from solders.keypair import Keypair
from websockets.sync.client import connect

from engine import db, keys, limits
from engine.limits import MintLimit
from engine.orders import TERMINAL
from engine.tokens import USDC_DEVNET_MINT
from local.poller import wait_until
from tests.stack import (
    ORDER,
    VENUES,
    Running,
    after_terminal,
    assert_full_stream,
    follow,
    get_order,
    http_json,
    isolated_stack,
    open_ws,
    query,
    rpc,
    set_faults,
    submit_http,
)

pytestmark = pytest.mark.e2e
SOL_MINT = "So11111111111111111111111111111111111111112"


@pytest.fixture(scope="module")
def stack(pg_base_url: str, localstack: str) -> Iterator[Running]:
    with isolated_stack(
        pg_base_url, f"orders_e2e_{uuid.uuid4().hex[:10]}", aws=localstack
    ) as running:
        yield running


# -- the tests ------------------------------------------------------------------------------------


def test_http_submit_then_follow_with_order_id_to_a_landed_swap(stack: Running) -> None:
    accepted = submit_http(stack)
    order_id = accepted["orderId"]
    with open_ws(accepted["wsUrl"]) as ws:
        frames = follow(ws)
        assert after_terminal(ws) == []
    assert_full_stream(frames, order_id)

    routing = frames[1]
    assert {q["venue"] for q in routing["quotes"]} == VENUES
    assert routing["venue"] in VENUES
    assert [q["venue"] for q in routing["quotes"] if q["chosen"]] == [routing["venue"]]
    tx = frames[-1]["txHash"]

    # The chain itself knows the signature, landed without error.
    statuses = rpc(stack, "getSignatureStatuses", [[tx], {"searchTransactionHistory": True}])
    [status] = statuses["value"]
    assert status is not None
    assert status["err"] is None
    assert status["confirmationStatus"] in ("confirmed", "finalized")

    order = get_order(stack, order_id)
    assert order["status"] == "confirmed"
    assert order["txHash"] == tx
    assert order["venue"] == routing["venue"]
    assert {q["venue"] for q in order["quotes"]} == VENUES
    assert order["amountOut"] is not None
    assert Decimal(order["amountOut"]) > 0
    assert [(e["seq"], e["status"]) for e in order["events"]] == [
        (f["seq"], f["status"]) for f in frames
    ]


def test_the_stack_finds_its_pools_and_a_pinned_order_trades_on_its_pool(stack: Running) -> None:
    """The local stack is given no VENUE_POOLS, as a devnet user is not: its pools are found by
    discovery and cached in its database. An order pinned (`poolId`) to the CPMM pool is quoted
    and filled there only; one pinned to an account that is no pool fails `unknown_pool`, and
    the next such order is refused at submit."""
    from local.chain import POOLS, USDC_MINT

    cpmm = str(POOLS["raydium_cpmm"])
    with open_ws(submit_http(stack)["wsUrl"]) as ws:
        assert {q["pool"] for q in follow(ws)[1]["quotes"]} == {str(p) for p in POOLS.values()}
    pairs = query(stack, "SELECT mint_x, mint_y FROM pool_pairs")
    assert {"mint_x": str(USDC_MINT), "mint_y": SOL_MINT} in pairs  # in text order
    accepted = submit_http(stack, {**ORDER, "poolId": cpmm, "baseIn": True})
    with open_ws(accepted["wsUrl"]) as ws:
        frames = follow(ws)
    assert frames[-1]["status"] == "confirmed", frames[-1]
    assert [q["pool"] for q in frames[1]["quotes"]] == [cpmm]

    not_a_pool = {**ORDER, "poolId": str(USDC_MINT)}
    accepted = submit_http(stack, not_a_pool)
    with open_ws(accepted["wsUrl"]) as ws:
        failed = follow(ws)[-1]
    assert (failed["status"], failed["code"]) == ("failed", "unknown_pool")
    status, refused = http_json("POST", f"{stack.http}/api/orders/execute", not_a_pool)
    assert status == 400
    assert (refused["error"]["code"], refused["error"]["field"]) == ("unknown_pool", "poolId")


def test_the_wallet_key_reaches_the_executor_through_secrets_manager(stack: Running) -> None:
    """As in the cloud: no WALLET_PRIVATE_KEY in the stack's environment; the execute function
    reads the key WALLET_SECRET_ARN names from LocalStack's Secrets Manager (which records the
    read), and the swap signed with it lands, paid by that key's wallet."""
    assert "WALLET_PRIVATE_KEY" not in os.environ
    arn = os.environ["WALLET_SECRET_ARN"]
    sm = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_ENDPOINT_URL"])
    accepted = submit_http(stack)
    with open_ws(accepted["wsUrl"]) as ws:
        frames = follow(ws)
    assert_full_stream(frames, accepted["orderId"])
    # Only the execute function reads the secret (this test reads it below, after looking).
    assert "LastAccessedDate" in sm.describe_secret(SecretId=arn)
    wallet = Keypair.from_json(sm.get_secret_value(SecretId=arn)["SecretString"]).pubkey()
    tx = rpc(
        stack,
        "getTransaction",
        [
            frames[-1]["txHash"],
            {"encoding": "json", "maxSupportedTransactionVersion": 0, "commitment": "confirmed"},
        ],
    )
    assert tx["transaction"]["message"]["accountKeys"][0] == str(wallet)  # the fee payer


def test_the_stack_wants_its_api_key(stack: Running) -> None:
    """`make run` guards every order route with the key it prints; /health stays public; a
    browser-style `?apiKey=` works on the WebSocket."""
    import urllib.parse

    from websockets.exceptions import InvalidStatus

    no_key = {"x-api-key": ""}
    status, reply = http_json("POST", f"{stack.http}/api/orders/execute", ORDER, no_key)
    assert (status, reply) == (401, {"message": "Unauthorized"})
    status, _ = http_json("GET", f"{stack.http}/health", headers=no_key)
    assert status == 200
    with pytest.raises(InvalidStatus) as refused:
        connect(stack.ws, open_timeout=30)
    assert refused.value.response.status_code == 401
    with connect(f"{stack.ws}?apiKey={urllib.parse.quote(stack.api_key)}", open_timeout=30) as ws:
        ws.send(json.dumps(ORDER))
        assert_full_stream(follow(ws))


def test_ws_submit_streams_every_status_in_order(stack: Running) -> None:
    with open_ws(stack.ws) as ws:
        ws.send(json.dumps(ORDER))
        frames = follow(ws)
        assert after_terminal(ws, 1.0) == []
    assert_full_stream(frames)
    assert frames[0]["request"]["tokenIn"] == "SOL"
    assert get_order(stack, frames[0]["orderId"])["status"] == "confirmed"


def test_late_subscriber_and_reconnect_replay_without_gap_or_duplicate(stack: Running) -> None:
    # A reconnect mid-stream: drop after routing (seq 2), come back with fromSeq 2.
    with open_ws(stack.ws) as first:
        first.send(json.dumps(ORDER))
        seen = [json.loads(first.recv(timeout=15)) for _ in range(2)]
    assert [(f["seq"], f["status"]) for f in seen] == [(1, "pending"), (2, "routing")]
    order_id = seen[0]["orderId"]
    with open_ws(stack.ws) as again:
        again.send(json.dumps({"action": "subscribe", "orderId": order_id, "fromSeq": 2}))
        rest = follow(again)
        assert after_terminal(again, 1.0) == []
    assert_full_stream(seen + rest, order_id)

    # A late subscriber: the order is long confirmed; `?orderId=` replays the whole history.
    with open_ws(f"{stack.ws}?orderId={order_id}") as late:
        replayed = follow(late)
        assert after_terminal(late, 1.0) == []
    assert_full_stream(replayed, order_id)
    assert replayed == seen + rest  # the very same frames, byte for byte in content

    # ... and a reconnect to the finished order with fromSeq asks only for what is missing.
    with open_ws(stack.ws) as again:
        again.send(json.dumps({"action": "subscribe", "orderId": order_id, "fromSeq": 2}))
        tail = follow(again)
        assert after_terminal(again, 1.0) == []
    assert tail == rest
    assert [f["seq"] for f in tail] == [3, 4, 5]


def test_subscribe_twice_on_one_socket_does_not_duplicate(stack: Running) -> None:
    """Asking again for the same order on the same socket (a client that lost track) resets the
    replay point; frames already delivered after it come again once, never twice each."""
    accepted = submit_http(stack)
    order_id = accepted["orderId"]
    assert wait_until(lambda: get_order(stack, order_id)["status"] == "confirmed", 30)
    with open_ws(stack.ws) as ws:
        ws.send(json.dumps({"action": "subscribe", "orderId": order_id, "fromSeq": 0}))
        first = follow(ws)
        ws.send(json.dumps({"action": "subscribe", "orderId": order_id, "fromSeq": 4}))
        second = follow(ws)
        assert after_terminal(ws, 1.0) == []
    assert_full_stream(first, order_id)
    assert [f["seq"] for f in second] == [5]


BAD_FRAMES = [
    ("not json", "invalid_request", None),
    ("[1, 2, 3]", "invalid_request", None),
    ('{"action": "dance"}', "unknown_action", "action"),
    (json.dumps({**ORDER, "amountIn": "lots"}), "invalid_request", "amountIn"),
    (json.dumps({**ORDER, "amountIn": "-1"}), "invalid_request", "amountIn"),
    (json.dumps({**ORDER, "slippage": 0}), "invalid_request", "slippage"),
    (json.dumps({**ORDER, "tokenOut": "SOL"}), "invalid_request", "tokenOut"),
    ('{"action": "subscribe", "orderId": "nope"}', "invalid_request", "orderId"),
    (json.dumps({"action": "subscribe", "orderId": str(uuid.uuid4())}), "order_not_found", None),
]


def test_malformed_frames_get_error_frames_and_the_socket_stays_usable(stack: Running) -> None:
    [before] = query(stack, "SELECT count(*) AS n FROM orders")
    with open_ws(stack.ws) as ws:
        for text, code, field in BAD_FRAMES:
            ws.send(text)
            frame = json.loads(ws.recv(timeout=30))
            assert set(frame) == {"error"}, (text, frame)
            assert frame["error"]["code"] == code, (text, frame)
            assert frame["error"]["message"], (text, frame)
            if field is not None:
                assert frame["error"].get("field") == field, (text, frame)
        [after] = query(stack, "SELECT count(*) AS n FROM orders")
        assert after["n"] == before["n"]  # bad input stored nothing

        ws.send(json.dumps(ORDER))  # the same socket still takes an order
        frames = follow(ws)
        assert after_terminal(ws, 1.0) == []
    assert_full_stream(frames)


def test_a_closed_connection_is_removed_by_the_next_notify(stack: Running) -> None:
    # The easy case: a socket that closes tells the gateway ($disconnect removes its row).
    with open_ws(stack.ws) as ws:
        ws.send(json.dumps(ORDER))
        pending = json.loads(ws.recv(timeout=30))
        [row] = query(
            stack,
            "SELECT connection_id FROM subscriptions WHERE order_id = %s",
            (pending["orderId"],),
        )
    assert wait_until(
        lambda: (
            not query(
                stack, "SELECT 1 FROM connections WHERE connection_id = %s", (row["connection_id"],)
            )
        ),
        5,
    )

    # The hard case: a connection whose $disconnect never arrived (its row stays). Hold the
    # next order's swap for a while so its later events are still to come, subscribe the lost
    # connection to it; the next post answers 410 GoneException and notify forgets it.
    set_faults(stack, landing_delay_blocks=40)
    try:
        accepted = submit_http(stack)
        order_id = accepted["orderId"]
        lost = "lost" + uuid.uuid4().hex[:8]
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO connections (connection_id, endpoint, connected_at)"
                " VALUES (%s, %s, now() - interval '1 minute')",
                (lost, os.environ["WS_MANAGEMENT_ENDPOINT"]),
            )
            conn.execute(
                "INSERT INTO subscriptions (connection_id, order_id) VALUES (%s, %s)",
                (lost, order_id),
            )
        # A live subscriber of the same order is not held up by the dead one.
        with open_ws(accepted["wsUrl"]) as live:
            frames = follow(live)
            assert after_terminal(live, 1.0) == []
        assert_full_stream(frames, order_id)
    finally:
        set_faults(stack, landing_delay_blocks=0)
    assert wait_until(
        lambda: not query(stack, "SELECT 1 FROM connections WHERE connection_id = %s", (lost,)),
        10,
    )
    assert not query(stack, "SELECT 1 FROM subscriptions WHERE connection_id = %s", (lost,))


N_ORDERS = 50


def _http_then_follow(stack: Running) -> list[dict[str, Any]]:
    accepted = submit_http(stack)
    with open_ws(accepted["wsUrl"]) as ws:
        frames = follow(ws, timeout=150)
        frames += after_terminal(ws, 1.5)
    assert frames[0]["orderId"] == accepted["orderId"]
    return frames


def _ws_submit(stack: Running) -> list[dict[str, Any]]:
    with open_ws(stack.ws) as ws:
        ws.send(json.dumps(ORDER))
        first = json.loads(ws.recv(timeout=150))
        delay = 0.1
        while first.get("message") == "Too Many Requests":  # throttled: the client resends
            time.sleep(delay)  # a client's backoff, not a wait for a condition
            delay = min(delay * 2, 2.0)
            ws.send(json.dumps(ORDER))
            first = json.loads(ws.recv(timeout=150))
        frames = [first] if first.get("status") in TERMINAL else [first, *follow(ws, timeout=150)]
        frames += after_terminal(ws, 1.5)
    return frames


@pytest.mark.timeout(300)
def test_fifty_orders_at_once_all_confirm_and_every_frame_arrives_once(stack: Running) -> None:
    jobs = [_http_then_follow if i % 3 else _ws_submit for i in range(N_ORDERS)]
    started = time.monotonic()
    with ThreadPoolExecutor(N_ORDERS) as pool:
        futures = [pool.submit(job, stack) for job in jobs]
        streams = [f.result(timeout=200) for f in futures]
    elapsed = time.monotonic() - started

    for frames in streams:
        assert_full_stream(frames)  # also: nothing after confirmed (no duplicate, no stray)
    order_ids = {frames[0]["orderId"] for frames in streams}
    assert len(order_ids) == N_ORDERS
    signatures = {frames[-1]["txHash"] for frames in streams}
    assert len(signatures) == N_ORDERS

    # Each swap landed on the chain exactly once, without error.
    status, txlog = http_json("GET", f"{stack.rpc}/admin/txlog")
    assert status == 200
    landed = [t["signature"] for t in txlog if t["signature"] in signatures]
    assert sorted(landed) == sorted(signatures)
    assert all(t["err"] is None for t in txlog if t["signature"] in signatures)

    rows = query(
        stack,
        "SELECT status, count(*) AS n FROM orders WHERE id = ANY(%s) GROUP BY status",
        ([uuid.UUID(o) for o in order_ids],),
    )
    assert [(r["status"], r["n"]) for r in rows] == [("confirmed", N_ORDERS)]
    print(f"{N_ORDERS} orders confirmed in {elapsed:.1f}s")


def test_the_functions_metrics_are_served_as_cloudwatch_would_read_them(stack: Running) -> None:
    """Every function prints EMF lines as in Lambda; the stack reads them off stdout and serves
    them: an order's path shows up as the operator's dashboard would show it."""

    def metrics() -> dict[str, dict[str, Any]]:
        status, page = http_json("GET", f"{stack.http}/_local/metrics")
        assert status == 200
        # One process runs every function locally, so `service` is not theirs: key by the
        # other dimensions only.
        return {
            m["name"]
            + "".join(f"/{k}={v}" for k, v in sorted(m["dimensions"].items()) if k != "service"): m
            for m in page["metrics"]
        }

    before = metrics()
    accepted = submit_http(stack)
    with open_ws(accepted["wsUrl"]) as ws:
        assert follow(ws)[-1]["status"] == "confirmed"
    bad = {**ORDER, "tokenOut": "So11111111111111111111111111111111111111112", "amountIn": "0.01"}
    # More USDC than the wallet holds, to fail on chain: past the default per-key limits
    # (20,000 per order), so this key gets its own.
    pool = db.pool(stack.database_url)
    stack_key = keys.verify(stack.api_key, pool=pool)
    assert stack_key is not None
    big = MintLimit(Decimal(10**8), Decimal(10**9))
    limits.set_limits(pool, stack_key.id, {USDC_DEVNET_MINT: big})
    failed = submit_http(stack, {**bad, "tokenIn": "USDC", "amountIn": "99999999"})
    with open_ws(failed["wsUrl"]) as ws:
        assert follow(ws)[-1]["status"] == "failed"

    def grew(key: str) -> bool:
        return bool(metrics().get(key, {}).get("count", 0) > before.get(key, {}).get("count", 0))

    for key in (
        "OrderConfirmed",
        "RoutingTime",
        "BuildingTime",
        "LandTime",
        "OrderTime",
        "OrderFailed",
        "OrderFailedByCode/code=insufficient_funds",
        "FramesPosted",
        "NotifyLag",
    ):
        assert wait_until(functools.partial(grew, key), timeout=30), (key, sorted(metrics()))
    land = metrics()["LandTime"]
    assert land["unit"] == "Milliseconds"
    assert 0 < land["p50"] < 10_000
