"""The current quote of a limit order's pair at submit, for the limit-price guard
(`limits.check_limit_price`): HTTP and WebSocket submit alike (`Intake`).

The quoting is the router's own, which lives in the Solana layer (`execution.spot`): it is
imported on the first limit order a container takes, so market orders and the container's cold
start never load solders. The RPC client is async and the submit paths are not (or run inside
FastAPI's loop), so the quote runs on this container's own event loop in a thread of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any

from engine.config import Settings
from engine.db import Pool
from engine.errors import RpcUnavailable, TransientChainError
from engine.orders import OrderRequest
from engine.pools import PoolCache

TIMEOUT_SECONDS = 3.0  # per RPC call; the whole read stays well inside API Gateway's 29 s


class SpotQuotes:
    """The pair's current price (tokenOut per tokenIn) for a limit order being accepted."""

    def __init__(self, cfg: Settings, pool: Pool) -> None:
        self.cfg = cfg
        self.cache = PoolCache(pool)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._chain: Any = None
        self._start = threading.Lock()

    def price(self, request: OrderRequest) -> Decimal | None:
        """None when the engine knows no pool of the pair (or none can be quoted now): the
        order is checked when it is routed. RpcUnavailable (503) when the RPC does not answer:
        an unchecked limit is not accepted."""
        from execution import spot

        if request.amount_in is None:  # exact out: a limit order's amountIn is set at submit
            return None
        try:
            price: Decimal | None = self._run(
                spot.current_price(
                    self._client(),
                    self.cache,
                    self.cfg,
                    mint_in=request.token_in.mint,
                    mint_out=request.token_out.mint,
                    amount_in=request.amount_in,
                    pool_id=request.pool_id,
                )
            )
        except TransientChainError as exc:
            raise RpcUnavailable(
                f"the Solana RPC did not answer the quote a limitPrice is checked against"
                f" ({exc.message}); nothing was stored, retry shortly"
            ) from exc
        return price

    def _client(self) -> Any:
        with self._start:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="spot-quotes", daemon=True).start()
                self._loop = loop
                self._chain = self._run(_new_chain(self.cfg.solana_rpc_url))
            return self._chain

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()


async def _new_chain(url: str) -> Any:
    """The chain client, made inside the loop that uses it (as `execution.chain` asks)."""
    from solana.rpc.async_api import AsyncClient
    from solana.rpc.commitment import Confirmed

    from execution.chain import Chain

    return Chain(url, AsyncClient(url, commitment=Confirmed, timeout=TIMEOUT_SECONDS))
