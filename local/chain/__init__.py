"""A local Solana chain: LiteSVM behind a Solana JSON-RPC server, with blocks, statuses, fees,
simulated DEX programs (Raydium CPMM, Meteora DAMM v2) and injectable faults.

    chain = LocalChain.seeded()           # wallet, USDC, WSOL, SOL/USDC and T22/USDC pools
    client = client_for(chain)            # solana-py AsyncClient served in-process
    url, stop = serve_in_thread(chain)    # or over a real socket (uvicorn)
    env = local_env(url)                  # what the engine needs to trade on it

Blocks only advance when told (`chain.advance(n)`) unless a ticker runs
(`chain.start_ticker(0.4)`); `create_app()` - the local stack's entry point - starts one.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx2
import uvicorn
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey
from starlette.types import ASGIApp

from local.chain import seed
from local.chain.ledger import Faults, Ledger
from local.chain.rpc import create_app as _create_rpc_app
from local.chain.seed import POOLS, T22_MINT, T22_POOLS, USDC_MINT, WALLET

__all__ = [
    "POOLS",
    "T22_MINT",
    "T22_POOLS",
    "USDC_MINT",
    "WALLET",
    "LocalChain",
    "client_for",
    "create_app",
    "local_env",
    "serve_in_thread",
]

TICK_SECONDS = 0.4  # a block every 400 ms, like a real cluster's slot time


class LocalChain:
    """One ledger and its JSON-RPC app."""

    def __init__(self, ledger: Ledger | None = None) -> None:
        self.ledger = ledger or Ledger()
        self.app: ASGIApp = _create_rpc_app(self.ledger)

    @classmethod
    def seeded(cls) -> LocalChain:
        chain = cls()
        seed.apply(chain.ledger)
        return chain

    @property
    def faults(self) -> Faults:
        return self.ledger.faults

    @property
    def height(self) -> int:
        return self.ledger.height

    def advance(self, blocks: int = 1) -> int:
        return self.ledger.advance(blocks)

    def start_ticker(self, interval: float = TICK_SECONDS) -> None:
        self.ledger.start_ticker(interval)

    def stop(self) -> None:
        self.ledger.stop()

    def txlog(self) -> list[dict[str, Any]]:
        return self.ledger.txlog()

    def set_pool_reserves(self, pool: Pubkey, reserves: dict[Pubkey, int]) -> None:
        from local.chain import programs

        with self.ledger.lock:
            programs.set_pool_reserves(self.ledger.view(), pool, reserves)

    def sol_balance(self, owner: Pubkey) -> int:
        """Lamports held by `owner` itself (not its WSOL)."""
        return self.ledger.balance(owner)

    def token_balance(self, owner: Pubkey, mint: Pubkey) -> int:
        """Raw amount of `mint` in `owner`'s associated token account (0 if it has none)."""
        from spl.token.instructions import get_associated_token_address

        account = self.ledger.get_account(get_associated_token_address(owner, mint))
        return seed.token_amount(bytes(account.data)) if account is not None else 0


class _ASGITransportWithTimeouts(httpx2.ASGITransport):
    """httpx2's ASGITransport ignores timeouts (they live in the network layer it skips); apply
    the request's read timeout here so a hanging fault raises httpx2.ReadTimeout as a socket
    would."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeout = (request.extensions.get("timeout") or {}).get("read")
        try:
            return await asyncio.wait_for(super().handle_async_request(request), timeout)
        except TimeoutError as exc:
            raise httpx2.ReadTimeout(
                "timed out waiting for the local chain", request=request
            ) from exc


def client_for(chain: LocalChain, timeout: float = 10) -> AsyncClient:
    """A real solana-py AsyncClient whose HTTP goes to `chain.app` in-process (no socket)."""
    client = AsyncClient("http://local-chain/", commitment=Confirmed, timeout=timeout)
    client._provider.session = httpx2.AsyncClient(
        transport=_ASGITransportWithTimeouts(app=chain.app),
        base_url="http://local-chain",
        timeout=httpx2.Timeout(timeout),
    )
    return client


def serve_in_thread(
    chain: LocalChain, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, Callable[[], None]]:
    """Serve `chain.app` under uvicorn in a daemon thread; returns (url, stop)."""
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets whose proto
    # says TCP, and without it every response waits ~40 ms (Nagle vs delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(chain.app, lifespan="off", log_level="warning"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"local-chain-{bound}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the local chain's RPC server did not start")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return f"http://{host}:{bound}", stop


def local_env(rpc_url: str) -> dict[str, str]:
    """The environment the engine needs to trade on the seeded local chain at `rpc_url`."""
    return {
        "SOLANA_RPC_URL": rpc_url,
        "SOLANA_CLUSTER": "custom",
        "VENUE_POOLS": json.dumps(
            [
                {"venue": venue, "address": str(pool)}
                for pools in (POOLS, T22_POOLS)
                for venue, pool in pools.items()
            ]
        ),
        # A throwaway key from a fixed public seed (local/chain/seed.py), valid only on this
        # machine's local chain: fine to have in code, never a real wallet.
        "WALLET_PRIVATE_KEY": json.dumps(list(bytes(seed.WALLET_KEYPAIR))),
    }


def create_app() -> ASGIApp:
    """A seeded chain's RPC app producing a block every 400 ms (the local stack's entry point;
    its server runs with lifespan off, so the ticker starts here, in a daemon thread)."""
    chain = LocalChain.seeded()
    chain.start_ticker(TICK_SECONDS)
    return chain.app
