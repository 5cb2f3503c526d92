"""The local chain's admin door, `/admin/*`: fault knobs, the transaction log, forced blocks and
pool prices (a real swap from the market maker), for tests, demos and the bench.

It moves prices, drops sends and produces blocks, so no web page may use it: every request must
carry the chain's admin token (`Authorization: Bearer <token>`), bodies are JSON only (a
`text/plain` POST, which a page can send without a preflight, is refused), and there is no CORS
(the RPC keeps its CORS for the explorer). The token is LOCAL_CHAIN_ADMIN_TOKEN when set, else a
random one made once per process; `make run` prints it.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from decimal import Decimal
from typing import Any

from solders.pubkey import Pubkey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from local.chain.ledger import Ledger

ADMIN_TOKEN_ENV = "LOCAL_CHAIN_ADMIN_TOKEN"
MAX_ADVANCE_BLOCKS = 1_000  # one /admin/advance call; more would hold the chain's lock for long
MAX_ADMIN_BODY_BYTES = 64 * 1024

_token_lock = threading.Lock()
_token: str | None = None


def admin_token() -> str:
    """LOCAL_CHAIN_ADMIN_TOKEN, else a random token made once for this process."""
    global _token
    configured = os.environ.get(ADMIN_TOKEN_ENV, "")
    if configured:
        return configured
    with _token_lock:
        if _token is None:
            _token = secrets.token_urlsafe(24)
        return _token


def admin_headers() -> dict[str, str]:
    """What an admin request carries (tests, the bench, the demo)."""
    return {"Authorization": f"Bearer {admin_token()}", "Content-Type": "application/json"}


class AdminRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Admin:
    """The `/admin/*` endpoints over one ledger, each behind the token."""

    def __init__(self, ledger: Ledger, token: str | None = None) -> None:
        self.ledger = ledger
        self.faults = ledger.faults
        self._token = token

    @property
    def token(self) -> str:
        return self._token or admin_token()

    async def _body(self, request: Request, *, required: bool = True) -> dict[str, Any]:
        """The request's JSON object, after the token and content-type checks."""
        sent = request.headers.get("authorization", "")
        if not secrets.compare_digest(sent.encode(), f"Bearer {self.token}".encode()):
            raise AdminRefused(401, "the admin token is missing or wrong (Authorization: Bearer)")
        if request.method == "GET":
            return {}
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw = await request.body()
        if len(raw) > MAX_ADMIN_BODY_BYTES:
            raise AdminRefused(413, f"admin bodies are at most {MAX_ADMIN_BODY_BYTES} bytes")
        if not raw and not required:
            return {}
        if media != "application/json":
            raise AdminRefused(415, "admin bodies are JSON (Content-Type: application/json)")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise AdminRefused(400, "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise AdminRefused(400, "the body is a JSON object")
        return body

    async def get_faults(self, request: Request) -> Response:
        await self._body(request)
        return JSONResponse(self.faults.snapshot())

    async def set_faults(self, request: Request) -> Response:
        body = await self._body(request)
        try:
            self.faults.update(**body)
        except (ValueError, TypeError) as exc:
            raise AdminRefused(400, str(exc)) from None
        return JSONResponse(self.faults.snapshot())

    async def txlog(self, request: Request) -> Response:
        await self._body(request)
        return JSONResponse(self.ledger.txlog())

    async def advance(self, request: Request) -> Response:
        body = await self._body(request, required=False)
        blocks = body.get("blocks", 1)
        if isinstance(blocks, bool) or not isinstance(blocks, int):
            raise AdminRefused(400, "blocks is a whole number")
        if not 1 <= blocks <= MAX_ADVANCE_BLOCKS:
            raise AdminRefused(400, f"blocks is between 1 and {MAX_ADVANCE_BLOCKS}")
        height = self.ledger.advance(blocks)
        return JSONResponse({"blockHeight": height, "slot": self.ledger.slot})

    async def pool_price(self, request: Request) -> Response:
        """Move a pool's price with a real swap from the market maker: {"pool", "baseMint",
        "price"} (whole units of the other mint per whole base token)."""
        from local.chain import market, seed

        body = await self._body(request)
        try:
            pool = Pubkey.from_string(str(body["pool"]))
            base = Pubkey.from_string(str(body["baseMint"]))
            price = Decimal(str(body["price"]))
            with self.ledger.lock:
                found = market.read_pool(self.ledger, pool)
                quote = next(m for m in found.mints if m != base)
                target = market.whole_price(self.ledger, base, quote, price)
                record = market.move_price(
                    self.ledger, seed.MARKET_MAKER_KEYPAIR, pool, base, target
                )
        except (KeyError, ValueError, ArithmeticError, StopIteration, market.MarketError) as exc:
            raise AdminRefused(400, str(exc)) from None
        signature = str(record.signature) if record is not None else None
        return JSONResponse({"ok": True, "signature": signature})

    def app(self) -> ASGIApp:
        async def refused(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, AdminRefused)
            return JSONResponse({"error": exc.message}, status_code=exc.status)

        return Starlette(
            routes=[
                Route("/admin/faults", self.get_faults, methods=["GET"]),
                Route("/admin/faults", self.set_faults, methods=["POST"]),
                Route("/admin/txlog", self.txlog, methods=["GET"]),
                Route("/admin/advance", self.advance, methods=["POST"]),
                Route("/admin/pool_price", self.pool_price, methods=["POST"]),
            ],
            exception_handlers={AdminRefused: refused},
        )
