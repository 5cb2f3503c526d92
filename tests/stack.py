"""The local stack as the end-to-end and chaos tests drive it: started isolated (its own port,
database, queues, wallet secret, chain and environment; the session's LocalStack, the
`localstack` fixture, shared) and spoken to only through its real sockets."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from engine.orders import TERMINAL
from local import postgres
from local.chain.admin import admin_headers
from local.iam import AccessChecker
from local.ports import free_port
from local.stack import Stack
from local.workers import Functions

T = TypeVar("T")
PREWARMED = ["authorizer", "submit", "ws_connect", "execute", "notify", "quote"]
ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01", "slippage": 0.5}
STATUSES = ["pending", "routing", "building", "submitted", "confirmed"]
VENUES = {"raydium_cpmm", "meteora_damm_v2"}
BLOCK_SECONDS = 0.03
# What the stack sets or reads; other fixtures of the session (tests/conftest.py) set some of
# them, and the stack must not pick those up (e.g. it would trade on their chain).
ENGINE_ENV = (
    "DATABASE_URL",
    "ORDERS_QUEUE_URL",
    "ORDERS_DLQ_ARN",
    "STATUS_QUEUE_URL",
    "SQS_ENDPOINT_URL",
    "SECRETS_ENDPOINT_URL",
    "WALLET_SECRET_ARN",
    "WS_URL",
    "WS_MANAGEMENT_ENDPOINT",
    "SOLANA_RPC_URL",
    "SOLANA_CLUSTER",
    "VENUE_POOLS",
    "POOL_REFRESH_SECONDS",
    "MIN_POOL_LIQUIDITY",
    "POOL_DENY_LIST",
    "MAX_POOLS_PER_PAIR",
    "WALLET_PRIVATE_KEY",
    "WATCH_TICK_SECONDS",
    "WATCH_RUN_SECONDS",
    "MAX_TRIGGERS",
)


@dataclass(frozen=True)
class Running:
    http: str
    ws: str
    rpc: str
    database_url: str
    api_key: str = ""  # the stack's key (Stack.api_key); the clients below send it
    access: AccessChecker | None = None  # the IAM check of its functions' AWS calls
    functions: Functions | None = None  # its functions' worker pools (None: in-process)

    def __post_init__(self) -> None:
        KEY["x-api-key"] = self.api_key


KEY: dict[str, str] = {}  # {"x-api-key": the running stack's key}, for http_json and open_ws


def _forget_process_state() -> None:
    """Forget the functions' containers of earlier stacks: each container built its objects from
    the environment it first saw, and this pytest session brings several stacks (each with its
    own database and chain) before and after other tests' environments. In Lambda one container
    sees one environment."""
    for name in [m for m in sys.modules if m.startswith("functions_") and "_app" in m]:
        del sys.modules[name]


@contextmanager
def isolated_stack(
    base_url: str, name: str, *, aws: str, drop: bool = True, **options: Any
) -> Iterator[Running]:
    """A Stack on a free port with database `name` on the server at `base_url`, SQS and Secrets
    Manager at `aws` (the session's LocalStack), in an environment of its own: what other
    fixtures of the session set is hidden from it, and restored after."""
    saved = dict(os.environ)
    _forget_process_state()
    for key in ENGINE_ENV:
        os.environ.pop(key, None)
    os.environ["DATABASE_URL"] = base_url  # the server the stack creates its database on
    database_url = str(psycopg.conninfo.make_conninfo(base_url, dbname=name))
    options.setdefault("chain_tick_seconds", BLOCK_SECONDS)
    options.setdefault("chain_port", 0)  # never the fixed 8899: stacks run side by side
    # The functions in worker processes, as Lambda runs them (local/workers.py), as `make run`
    # does; LOCAL_LAMBDA_WORKERS=0 runs the handlers in this process instead.
    options.setdefault("workers", os.environ.get("LOCAL_LAMBDA_WORKERS", "1") == "1")
    stack = Stack(free_port(), database=name, api_key_file=None, aws_endpoint_url=aws, **options)
    try:
        urls = stack.start()
        if stack.functions is not None:
            # One environment of each function up before the test speaks (provisioned
            # concurrency): an init is seconds of CPU, and a loaded machine stretches it.
            stack.functions.prewarm(PREWARMED)
        yield Running(
            urls["http"],
            urls["ws"],
            os.environ["SOLANA_RPC_URL"],
            database_url,
            stack.api_key,
            stack.access,
            stack.functions,
        )
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        _forget_process_state()
        if drop:
            postgres.drop_database(base_url, database_url)


# -- clients --------------------------------------------------------------------------------------


def http_json(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    # The chain's /admin door takes its admin token (this process's: the stack's chain runs here).
    admin = admin_headers() if "/admin/" in url else {}
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"content-type": "application/json", **KEY, **admin, **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


# A client's patience with throttling (429: the functions' or the account's concurrency, as
# Lambda's; a burst of orders beyond it on two cores): it retries, backing off, as AWS SDKs do.
THROTTLED_RETRY_SECONDS = 120.0


def retry_throttled(call: Callable[[], T], throttled: Callable[[T], bool]) -> T:
    """`call()` again while its answer is a throttle, backing off up to 2 s between tries."""
    deadline = time.monotonic() + THROTTLED_RETRY_SECONDS
    delay = 0.1
    while True:
        answer = call()
        if not throttled(answer) or time.monotonic() + delay > deadline:
            return answer
        time.sleep(delay)  # a client's backoff, not a wait for a condition
        delay = min(delay * 2, 2.0)


def submit_http(stack: Running, order: dict[str, Any] | None = None) -> dict[str, Any]:
    status, accepted = retry_throttled(
        lambda: http_json("POST", f"{stack.http}/api/orders/execute", order or ORDER),
        lambda reply: reply[0] == 429,
    )
    assert status == 202, accepted
    assert accepted["status"] == "pending"
    assert accepted["wsUrl"] == f"{stack.ws}?orderId={accepted['orderId']}"
    return dict(accepted)


def get_order(stack: Running, order_id: str) -> dict[str, Any]:
    status, order = http_json("GET", f"{stack.http}/api/orders/{order_id}")
    assert status == 200, order
    return dict(order)


def rpc(stack: Running, method: str, params: list[Any]) -> Any:
    status, reply = http_json(
        "POST", stack.rpc, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    )
    assert status == 200, reply
    assert "error" not in reply, reply
    return reply["result"]


def set_faults(stack: Running, **faults: int) -> None:
    status, reply = http_json("POST", f"{stack.rpc}/admin/faults", faults)
    assert status == 200, reply


def open_ws(url: str) -> ClientConnection:
    """A socket to `url` with the stack's key (retried while the handshake is throttled)."""

    def attempt() -> ClientConnection | None:
        try:
            return connect(url, open_timeout=30, close_timeout=2, additional_headers=KEY)
        except InvalidStatus as exc:
            if exc.response.status_code == 429:
                return None
            raise

    ws = retry_throttled(attempt, lambda answer: answer is None)
    if ws is None:
        raise AssertionError(f"{url}: still throttled after {THROTTLED_RETRY_SECONDS} s")
    return ws


def follow(ws: ClientConnection, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every frame up to and including the first terminal status."""
    deadline = time.monotonic() + timeout
    frames: list[dict[str, Any]] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no terminal status within {timeout}s; got {frames}")
        frame = json.loads(ws.recv(timeout=remaining))
        frames.append(frame)
        if frame.get("status") in TERMINAL:
            return frames


def after_terminal(ws: ClientConnection, wait: float = 1.5) -> list[dict[str, Any]]:
    """Frames arriving within `wait` seconds (none expected once an order is terminal: notify
    may still run for it, e.g. the `?orderId=` backlog, and must not repeat anything)."""
    extra: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            extra.append(json.loads(ws.recv(timeout=remaining)))
        except TimeoutError:
            break
    return extra


def assert_full_stream(frames: list[dict[str, Any]], order_id: str | None = None) -> None:
    """pending .. confirmed, seq 1..5, each once, all of one order."""
    assert [f.get("status") for f in frames] == STATUSES, frames
    assert [f["seq"] for f in frames] == [1, 2, 3, 4, 5]
    assert len({f["orderId"] for f in frames}) == 1
    if order_id is not None:
        assert frames[0]["orderId"] == order_id
    assert frames[-1]["txHash"]
    assert frames[-1]["txHash"] == frames[-2]["txHash"]


def query(stack: Running, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(stack.database_url, row_factory=dict_row, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()
