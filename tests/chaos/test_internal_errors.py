"""An unexpected exception (a bug) at any step of execution: no order waits on it.

Each case injects a RuntimeError at one step of the production Executor, on the local chain with
real Postgres, and checks the order ends terminal on that same delivery (not after three
visibility timeouts and the DLQ), with the reason a user can act on, and that exactly as many
swaps landed as the stored transaction allows: none before one was sent, one after.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from engine import config, keys
from engine.orders import Status, parse_order_request
from engine.store import Store
from execution import builder, router
from local.chain import LocalChain
from tests.integration import test_executor
from tests.integration.test_executor import Runner, landed_swaps, new_order, signatures

chain = test_executor.chain  # the executor tests' fixtures: a seeded local chain, settings
cfg = test_executor.cfg

pytestmark = pytest.mark.chaos

AsyncFn = Callable[..., Awaitable[Any]]


def failing_once(fn: AsyncFn, *, call: int = 1, after: bool = False) -> AsyncFn:
    """`fn`, raising a RuntimeError on its `call`-th call: before it runs, or after it ran."""
    calls = 0

    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == call and not after:
            raise RuntimeError("injected bug")
        result = await fn(*args, **kwargs)
        if calls == call:
            raise RuntimeError("injected bug")
        return result

    return wrapped


def inject(step: str, runner: Runner, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    if step == "routing":
        monkeypatch.setattr(router, "quote_all_venues", failing_once(router.quote_all_venues))
    elif step == "building":
        monkeypatch.setattr(builder, "build_swap", failing_once(builder.build_swap))
    elif step in ("recording", "recorded"):  # storing the signed transaction: before/after commit
        transition = store.transition

        def record(order_id: uuid.UUID, from_status: Status, to: Status, **kw: Any) -> Any:
            if to is Status.SUBMITTED and step == "recording":
                raise RuntimeError("injected bug")
            done = transition(order_id, from_status, to, **kw)
            if to is Status.SUBMITTED:
                raise RuntimeError("injected bug")
            return done

        monkeypatch.setattr(store, "transition", record)
    elif step == "after_send":
        runner.client.send = failing_once(runner.client.send, after=True)  # type: ignore[method-assign,assignment]
    elif step == "before_send":  # the first status lookup, before the first send
        runner.client.status = failing_once(runner.client.status)  # type: ignore[method-assign,assignment]
    elif step == "landing":  # a status lookup after the send
        runner.client.status = failing_once(runner.client.status, call=2)  # type: ignore[method-assign,assignment]


@pytest.mark.parametrize(
    ("step", "status", "swaps"),
    [
        ("routing", "failed", 0),
        ("building", "failed", 0),
        ("recording", "failed", 0),
        ("recorded", "failed", 0),  # stored but never sent: followed until its blockhash expired
        ("before_send", "failed", 0),
        ("after_send", "confirmed", 1),  # sent: followed to its end, which is a landed swap
        ("landing", "confirmed", 1),
    ],
)
async def test_a_bug_at_any_step_ends_the_order_on_that_delivery(
    store: Store,
    chain: LocalChain,
    cfg: config.Settings,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    status: str,
    swaps: int,
) -> None:
    runner = Runner(store, chain, cfg)
    oid = new_order(store)
    inject(step, runner, store, monkeypatch)

    outcome = await runner.run(oid, receive_count=1)

    assert outcome.status == status
    assert not outcome.retry
    order = store.get_order(oid)
    assert order is not None
    assert str(order.status) == status
    if status == "failed":
        assert order.failure_code == "internal_error"
        assert "unexpected error (RuntimeError)" in (order.failure_reason or "")
        assert "no swap was made" in (order.failure_reason or "")
    assert len(landed_swaps(chain, signatures(store, oid))) == swaps
    assert len(landed_swaps(chain)) == swaps
    published = [str(e.status) for e in runner.published]
    assert published[-1] == status  # subscribers saw the end


async def test_a_bug_frees_the_keys_in_flight_slot(
    store: Store,
    chain: LocalChain,
    cfg: config.Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A limit-1 key whose order hit a bug can place its next order at once (the probe: two
    hanging orders made a limit-2 key's next order a 429 for 36 minutes)."""
    key, _secret = keys.create_key("limit one", max_in_flight=1, pool=store.pool)
    request = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01", "slippage": 0.5}
    first, _ = store.create_order(parse_order_request(request), api_key_id=key.id)
    runner = Runner(store, chain, cfg)
    monkeypatch.setattr(router, "quote_all_venues", failing_once(router.quote_all_venues))
    assert (await runner.run(first.id)).status == "failed"

    second, _ = store.create_order(parse_order_request(request), api_key_id=key.id)
    assert (await runner.run(second.id)).status == "confirmed"
