"""Quoting: JSON-RPC round trips and time to quote every venue against the local chain.

`execution.router.quote_all_venues` runs with the production client (solana-py AsyncClient) against
the seeded local chain, in-process (ASGI transport, no socket) and over loopback HTTP. Every
JSON-RPC request the chain's app receives is counted by method, so the figure is what the chain
saw, not what the router claims.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from decimal import Decimal
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.stats import percentiles


class CountingApp:
    """ASGI middleware: counts HTTP requests and JSON-RPC methods (batches count each call)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests = 0
        self.methods: Counter[str] = Counter()

    def reset(self) -> None:
        self.requests = 0
        self.methods.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests += 1
        chunks: list[bytes] = []

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    self._count(b"".join(chunks))
            return message

        await self.app(scope, counting_receive, send)

    def _count(self, body: bytes) -> None:
        try:
            payload = json.loads(body)
        except ValueError:
            return
        for call in payload if isinstance(payload, list) else [payload]:
            if isinstance(call, dict):
                self.methods[str(call.get("method"))] += 1


async def _quote_loop(chain_url: str, client: Any, counter: CountingApp, n: int) -> dict[str, Any]:
    from engine.config import parse_pools
    from engine.tokens import WSOL_MINT
    from execution import router
    from execution.chain import Chain
    from local.chain import USDC_MINT, seeded_venue_pools

    pools = parse_pools(seeded_venue_pools())
    chain = Chain(chain_url, client)
    router._dependents.clear()  # a cold container: nothing learnt yet

    async def quote() -> router.Decision:
        return await router.quote_all_venues(
            chain,
            pools,
            mint_in=WSOL_MINT,
            mint_out=str(USDC_MINT),
            amount_in=Decimal("0.01"),
            priority_fee=1_000,
        )

    counter.reset()
    started = time.perf_counter()
    decision = await quote()
    cold_ms = (time.perf_counter() - started) * 1000
    cold = {"requests": counter.requests, "methods": dict(counter.methods), "ms": cold_ms}
    times: list[float] = []
    counter.reset()
    for _ in range(n):
        started = time.perf_counter()
        await quote()
        times.append((time.perf_counter() - started) * 1000)
    warm = {
        "requests_per_quote": counter.requests / n,
        "methods": {k: v / n for k, v in counter.methods.items()},
        "ms": percentiles(times),
    }
    await chain.close()
    return {"venues": len(decision.quotes), "pools": len(pools), "cold": cold, "warm": warm}


def measure(n: int = 200) -> dict[str, Any]:
    from local.chain import LocalChain, client_for, serve_in_thread

    chain = LocalChain.seeded()
    counter = CountingApp(chain.app)
    chain.app = counter  # client_for and serve_in_thread serve chain.app
    out: dict[str, Any] = {}
    out["in_process"] = asyncio.run(
        _quote_loop("http://local-chain/", client_for(chain), counter, n)
    )
    url, stop = serve_in_thread(chain)
    try:
        out["loopback"] = asyncio.run(_quote_loop(url, None, counter, n))
    finally:
        stop()
        chain.stop()
    return out


if __name__ == "__main__":
    print(json.dumps(measure(), indent=1))
