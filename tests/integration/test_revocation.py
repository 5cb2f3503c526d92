"""Revoking a key ends what it started (issue 25 item 2), against real parts: Postgres, the
local chain through the production Watcher and Executor, the submit and ws_connect handlers,
and moto's WebSocket management API.

Before: a revoked key's limit order still triggered and traded the wallet, and after the
authorizer's cache nobody could cancel it; within the cache window HTTP DELETE worked for a
revoked key while the WebSocket cancel refused it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from engine import config, keys
from engine.connections import Connections
from engine.orders import Status, parse_order_request
from engine.store import Event, Store
from local.apigw import LambdaContext, ensure_event_loop, http_event
from local.chain import LocalChain
from local.handlers import fresh_handler, fresh_module
from tests.auth import as_key
from tests.inprocess import InProcessPublisher
from tests.integration.test_executor import Runner, landed_swaps
from tests.integration.test_submit_api import queued_ids
from tests.integration.test_watcher import (
    Watching,
    cfg,
    chain,
    key,
    limit_order,
    nothing_else_watching,
    price_sol,
    queue,
)
from tests.integration.test_ws_connect import cid, connect, env, send

__all__ = ["cfg", "chain", "env", "key", "nothing_else_watching", "queue"]  # fixtures

MARKET = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01", "slippage": 1}


def ended_by_revocation(store: Store, order_id: uuid.UUID) -> None:
    order = store.get_order(order_id)
    assert order is not None
    assert order.status is Status.CANCELLED
    assert order.failure_code == "api_key_revoked"
    last = store.events(order_id)[-1]
    assert last.status is Status.CANCELLED
    assert last.detail["code"] == "api_key_revoked"


async def test_revocation_cancels_open_and_unsent_orders_and_nothing_of_the_key_trades(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: Any
) -> None:
    watcher = Watching(store, chain, queue, cfg)
    triggered = limit_order(store, key, "149.5")  # the price is met: the tick triggers it
    assert (await watcher.tick()).triggered == 1
    # its message waits for an executor (the tick's sweep may queue earlier tests' stale ones)
    assert str(triggered) in queued_ids(queue.url)
    watching = limit_order(store, key, "149.5")  # met too, not ticked yet
    market, _ = store.create_order(parse_order_request(MARKET), None, key.id)  # not routed yet
    far = limit_order(store, key, "900")

    revoked = keys.revoke(key.id, pool=store.pool)

    assert revoked is not None
    assert {e.order_id for e in revoked.cancelled} == {triggered, watching, market.id, far}
    for order_id in (triggered, watching, market.id, far):
        ended_by_revocation(store, order_id)
    assert (await watcher.tick()).triggered == 0
    runner = Runner(store, chain, cfg)
    for order_id in (triggered, market.id):  # their queue messages reach an executor
        assert (await runner.run(order_id)).status == "cancelled"
    assert landed_swaps(chain) == []  # the wallet was not traded for the revoked key


async def test_an_order_submitted_before_the_revocation_is_followed_to_its_end(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey
) -> None:
    order, _ = store.create_order(parse_order_request(MARKET), None, key.id)
    cancelled: list[list[Event]] = []

    def revoke_once_sent(event: Event) -> None:
        if event.status is Status.SUBMITTED and not cancelled:
            revoked = keys.revoke(key.id, pool=store.pool)
            assert revoked is not None
            cancelled.append(revoked.cancelled)

    outcome = await Runner(store, chain, cfg, on_event=revoke_once_sent).run(order.id)
    assert cancelled == [[]]  # a submitted order is no unsent one
    assert outcome.status == "confirmed"
    [swap] = landed_swaps(chain)
    assert swap["signature"] == (store.get_order(order.id) or order).tx_signature


async def test_a_revoked_keys_limit_order_refused_for_price_is_not_watched_again(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: Any
) -> None:
    """Sent before the revocation, refused for price on chain (the price moved away): a live
    key's order would watch again; a revoked key's ends failed `api_key_revoked`, and nothing
    of it lands."""
    order_id = limit_order(store, key, "149.5")

    def move_away_and_revoke(event: Event) -> None:
        if event.status is Status.SUBMITTED and event.order_id == order_id:
            price_sol(chain, 140)
            keys.revoke(key.id, pool=store.pool)  # submitted: it is followed, not cancelled

    assert (await Watching(store, chain, queue, cfg).tick()).triggered == 1
    outcome = await Runner(store, chain, cfg, on_event=move_away_and_revoke).run(order_id)
    assert outcome.status == "failed"
    order = store.get_order(order_id)
    assert order is not None
    assert order.failure_code == "api_key_revoked"
    assert Status.WATCHING not in [e.status for e in store.events(order_id)[2:]]
    assert landed_swaps(chain) == []


@pytest.fixture
def ws(env: str, key: keys.ApiKey) -> Any:
    """The ws_connect handler for `key` (the authorizer let it in before its revocation)."""
    container = fresh_module("ws_connect")
    container.stream.publisher = InProcessPublisher(container.stream.fanout)
    return as_key(container.handler, key.id)


def test_http_and_websocket_cancel_judge_a_revoked_key_alike(
    store: Store, key: keys.ApiKey, ws: Any, orders_queue: str
) -> None:
    """Within the authorizer's cache window both routes still reach the handlers: both say
    403 api_key_revoked."""
    order_id = limit_order(store, key, "900")
    c = cid()
    assert connect(ws, c)["statusCode"] == 200
    keys.revoke(key.id, pool=store.pool)
    submit = as_key(fresh_handler("submit"), key.id)
    ensure_event_loop()
    reply = submit(http_event("DELETE", f"/api/orders/{order_id}"), LambdaContext("submit"))
    assert reply["statusCode"] == 403, reply["body"]
    assert json.loads(reply["body"])["error"]["code"] == "api_key_revoked"
    assert Connections(store.pool).get(c) is not None
    assert (
        send(ws, c, {"action": "cancel", "orderId": str(order_id)}, "cancel")["statusCode"] == 200
    )
    # refused as revoked: its error frame went out and the socket was closed (moto forgets a
    # deleted connection's frames, so the closing is what the test can see)
    assert Connections(store.pool).get(c) is None
    ended_by_revocation(store, order_id)  # by the revocation, not by either cancel
