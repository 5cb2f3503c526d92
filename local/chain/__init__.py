"""A local Solana chain: LiteSVM behind a Solana JSON-RPC server and a PubSub WebSocket server,
with blocks, statuses, fees, history, the real DEX programs (Raydium CPMM and Meteora DAMM v2
mainnet binaries, `local.chain.binaries`) and injectable faults.

    chain = LocalChain.seeded()           # wallet, USDC, WSOL, SOL/USDC and T22/USDC pools
    client = client_for(chain)            # solana-py AsyncClient served in-process
    served = serve(chain)                 # RPC on LOCAL_CHAIN_PORT (8899), PubSub on 8900
    served = serve(chain, port=0)         # ... or on a free pair of ports (tests)
    url, stop = serve_in_thread(chain)    # the same on a free pair, as (RPC url, stop)
    env = local_env(served.rpc_url)       # what the engine needs to trade on it (pools: found
                                          # by discovery, as on devnet)
    chain.set_pool_price(POOLS["raydium_cpmm"], WSOL, 143)  # a real swap moves the price

Blocks only advance when told (`chain.advance(n)`) unless a ticker runs
(`chain.start_ticker(0.4)`); `create_app()` - the local stack's entry point - starts one.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx2
import uvicorn
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey
from starlette.types import ASGIApp

from local.chain import market, seed
from local.chain.admin import ADMIN_TOKEN_ENV, admin_token
from local.chain.ledger import Faults, Ledger
from local.chain.rpc import create_app as _create_rpc_app
from local.chain.seed import POOLS, T22_MINT, T22_POOLS, USDC_MINT, WALLET

__all__ = [
    "DEFAULT_PORT",
    "POOLS",
    "PORT_ENV",
    "T22_MINT",
    "T22_POOLS",
    "USDC_MINT",
    "WALLET",
    "LocalChain",
    "PortInUse",
    "Served",
    "chain_port",
    "client_for",
    "create_app",
    "local_env",
    "seeded_venue_pools",
    "serve",
    "serve_in_thread",
]

TICK_SECONDS = 0.4  # a block every 400 ms, like a real cluster's slot time
log = logging.getLogger("local.chain")

DEFAULT_PORT = 8899  # a validator's RPC port; its PubSub WebSocket is on the next one
PORT_ENV = "LOCAL_CHAIN_PORT"


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

    def confirm(self) -> int:
        """Produce the blocks after which what landed so far is `confirmed` (its own block and
        the confirmation lag's): reads at `confirmed` then see it. Returns the block height."""
        return self.ledger.advance(self.ledger.confirm_depth)

    def start_ticker(self, interval: float = TICK_SECONDS) -> None:
        self.ledger.start_ticker(interval)

    def stop(self) -> None:
        self.ledger.stop()

    def txlog(self) -> list[dict[str, Any]]:
        return self.ledger.txlog()

    def set_pool_price(
        self, pool: Pubkey, base_mint: Pubkey, price: Decimal | int, *, confirm: bool = True
    ) -> None:
        """Move `pool`'s price of `base_mint` to `price` whole units of the other mint (143: 143
        USDC per SOL) with a real swap from the market maker (local.chain.market), and (unless
        `confirm` is False) produce the blocks that confirm it: the engine reads pools at
        `confirmed`, so what a test moves is what the engine's next read sees."""
        with self.ledger.lock:
            found = market.read_pool(self.ledger, pool)
            quote = next(m for m in found.mints if m != base_mint)
            target = market.whole_price(self.ledger, base_mint, quote, Decimal(price))
            market.move_price(self.ledger, seed.MARKET_MAKER_KEYPAIR, pool, base_mint, target)
            if confirm:
                self.confirm()

    def sol_balance(self, owner: Pubkey) -> int:
        """Lamports held by `owner` itself (not its WSOL)."""
        return self.ledger.balance(owner)

    def token_balance(self, owner: Pubkey, mint: Pubkey) -> int:
        """Raw amount of `mint` in `owner`'s associated token account (0 if it has none), under
        whichever token program owns the mint (SPL Token or Token-2022)."""
        from spl.token.instructions import get_associated_token_address

        mint_account = self.ledger.get_account(mint)
        program = mint_account.owner if mint_account is not None else None
        ata = (
            get_associated_token_address(owner, mint, program)
            if program is not None
            else get_associated_token_address(owner, mint)
        )
        account = self.ledger.get_account(ata)
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


class PortInUse(RuntimeError):
    """A port the chain must serve on is taken (it never moves to another one by itself)."""


def chain_port() -> int:
    """LOCAL_CHAIN_PORT, else 8899: the RPC port (the PubSub WebSocket takes the next one)."""
    raw = os.environ.get(PORT_ENV, "")
    try:
        port = int(raw) if raw else DEFAULT_PORT
    except ValueError:
        raise ValueError(f"{PORT_ENV} must be a port number, not {raw!r}") from None
    if not 0 <= port <= 65534:
        raise ValueError(f"{PORT_ENV} must be between 0 and 65534 (it and the next port are used)")
    return port


@dataclass(frozen=True)
class Served:
    """A chain served over sockets: JSON-RPC at `rpc_url` (which also takes WebSocket upgrades)
    and the PubSub WebSocket at `ws_url`, on the next port, where web3.js looks for it."""

    rpc_url: str
    ws_url: str
    stop: Callable[[], None]


def _socket(host: str) -> socket.socket:
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets whose proto
    # says TCP, and without it every response waits ~40 ms (Nagle vs delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def _bind(host: str, port: int, what: str) -> socket.socket:
    sock = _socket(host)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUse(
                f"port {port} on {host} ({what}) is already in use: stop what is listening "
                f"there, or set {PORT_ENV} to another port (the chain serves JSON-RPC on "
                f"{PORT_ENV} and PubSub on {PORT_ENV} + 1)"
            ) from exc
        raise
    return sock


def _bind_pair(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """Sockets for the RPC port and the PubSub port right after it; port 0: any free pair."""
    if port != 0:
        rpc = _bind(host, port, f"{PORT_ENV}, the JSON-RPC port")
        try:
            return rpc, _bind(host, port + 1, f"{PORT_ENV} + 1, the PubSub WebSocket port")
        except BaseException:
            rpc.close()
            raise
    for _ in range(100):
        rpc = _bind(host, 0, "an ephemeral port")
        bound = rpc.getsockname()[1]
        if bound < 65535:
            pubsub = _socket(host)
            try:
                pubsub.bind((host, bound + 1))
                return rpc, pubsub
            except OSError:
                pubsub.close()
        rpc.close()
    raise PortInUse(f"found no two free consecutive ports on {host}")


def serve(chain: LocalChain, host: str = "127.0.0.1", port: int | None = None) -> Served:
    """Serve `chain.app` under uvicorn in a daemon thread: JSON-RPC (and WebSocket upgrades) on
    `port`, the PubSub WebSocket on `port` + 1. `port` None: LOCAL_CHAIN_PORT, else 8899, and a
    clear PortInUse error when either is taken; 0: a free pair (tests, so runs never collide)."""
    rpc_sock, pubsub_sock = _bind_pair(host, chain_port() if port is None else port)
    bound = rpc_sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(chain.app, lifespan="off", log_level="warning", ws_ping_interval=None)
    )
    thread = threading.Thread(
        target=server.run,
        kwargs={"sockets": [rpc_sock, pubsub_sock]},
        name=f"local-chain-{bound}",
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            rpc_sock.close()
            pubsub_sock.close()
            raise RuntimeError("the local chain's RPC server did not start")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        rpc_sock.close()
        pubsub_sock.close()

    rpc_url = f"http://{host}:{bound}"
    # What `make run` prints: the admin door (faults, advance, pool prices) takes this token.
    log.info(
        "local chain admin: %s/admin/* with 'Authorization: Bearer %s' (%s)",
        rpc_url,
        admin_token(),
        ADMIN_TOKEN_ENV,
    )
    return Served(rpc_url, f"ws://{host}:{bound + 1}", stop)


def serve_in_thread(
    chain: LocalChain, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, Callable[[], None]]:
    """`serve` on a free pair of ports (unless `port` says otherwise); returns (RPC url, stop)."""
    served = serve(chain, host, port)
    return served.rpc_url, served.stop


def seeded_venue_pools() -> str:
    """The seeded pools as a VENUE_POOLS value (JSON), for running with an allow-list."""
    return json.dumps(
        [
            {"venue": venue, "address": str(pool)}
            for pools in (POOLS, T22_POOLS)
            for venue, pool in pools.items()
        ]
    )


def local_env(rpc_url: str) -> dict[str, str]:
    """The environment the engine needs to trade on the seeded local chain at `rpc_url`. No
    VENUE_POOLS: the engine finds the chain's pools by discovery (getProgramAccounts), as a
    devnet user's engine does; `seeded_venue_pools()` is the allow-list of the seeded ones."""
    return {
        "SOLANA_RPC_URL": rpc_url,
        "SOLANA_CLUSTER": "custom",
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
