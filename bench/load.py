"""The load generator: submit orders over HTTP and follow each one over a WebSocket.

Runs in the bench's own process, against a stack in another process (`bench.serve`), so the
client's CPU is not charged to the engine's interpreter (both share the machine's cores).
Each order is followed by sending `{"action": "subscribe", "orderId", "fromSeq": 0}` on one of
a few shared WebSocket connections; every frame is recorded with the time it arrived.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from engine.orders import TERMINAL as TERMINAL_STATUSES
from engine.orders import statuses

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.001", "slippage": 5}
STATUSES = ("pending", "routing", "building", "submitted", "confirmed")  # a market order's path
TERMINAL = tuple(statuses(TERMINAL_STATUSES))


@dataclass
class Tracked:
    order_id: str
    t_submit: float  # client wall clock before the POST
    t_accepted: float = 0.0  # 202 received
    frames: list[tuple[int, str, float]] = field(default_factory=list)  # (seq, status, arrived)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def terminal(self) -> tuple[str, float] | None:
        for _seq, status, arrived in self.frames:
            if status in TERMINAL:
                return status, arrived
        return None


@dataclass
class RunResult:
    orders: dict[str, Tracked]
    started: float
    finished: float
    error_frames: int
    submit_errors: int
    throttled: int = 0  # submits answered 429 and retried

    def lost_orders(self) -> dict[str, str]:
        """Orders whose frames never reached a terminal status or skipped a seq, with the last
        status the client saw for each ("none" when no frame arrived)."""
        lost: dict[str, str] = {}
        for t in self.orders.values():
            seqs = [s for s, _, _ in t.frames]
            if t.terminal is None or sorted(set(seqs)) != list(range(1, max(seqs) + 1)):
                last = max(t.frames)[1] if t.frames else "none"
                lost[t.order_id] = last
        return lost

    def check(self) -> dict[str, Any]:
        """Lost: an order whose frames never reached `confirmed` or skipped a seq.
        Duplicated: a (order, seq) frame received more than once."""
        dup = failed = 0
        lost = self.lost_orders()
        for t in self.orders.values():
            seqs = [s for s, _, _ in t.frames]
            dup += len(seqs) - len(set(seqs))
            terminal = t.terminal
            if t.order_id not in lost and terminal is not None and terminal[0] == "failed":
                failed += 1
        last_statuses: dict[str, int] = {}
        for status in lost.values():
            last_statuses[status] = last_statuses.get(status, 0) + 1
        return {
            "lost": len(lost),
            "duplicated": dup,
            "failed": failed,
            "lost_last_status": last_statuses,
        }


class Follower:
    """One WebSocket connection following many orders."""

    def __init__(self, ws: ClientConnection, orders: dict[str, Tracked]) -> None:
        self.ws = ws
        self.orders = orders
        self.error_frames = 0
        self.throttled = 0  # subscriptions answered "Too Many Requests"
        self.following: list[str] = []
        self.resubscribed: set[str] = set()  # their replays may repeat a frame: not counted
        self._again: asyncio.Task[None] | None = None
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            arrived = time.time()
            frame = json.loads(raw)
            if frame.get("message") == "Too Many Requests":  # a subscribe was throttled
                self.throttled += 1
                if self._again is None or self._again.done():
                    self._again = asyncio.create_task(self._subscribe_again())
                continue
            tracked = self.orders.get(str(frame.get("orderId")))
            if "seq" not in frame or tracked is None:
                self.error_frames += 1
                continue
            if tracked.order_id in self.resubscribed and any(
                seq == frame["seq"] for seq, _, _ in tracked.frames
            ):
                continue  # the replay our second subscribe asked for, not a duplicate
            tracked.frames.append((int(frame["seq"]), str(frame["status"]), arrived))
            if frame["status"] in TERMINAL:
                tracked.done.set()

    async def follow(self, order_id: str) -> None:
        self.following.append(order_id)
        await self.ws.send(json.dumps({"action": "subscribe", "orderId": order_id, "fromSeq": 0}))

    async def _subscribe_again(self) -> None:
        """After a moment, subscribe again to every order of this socket with no frame yet
        (a throttled subscribe says not which it was; one twice is answered once)."""
        await asyncio.sleep(0.2)
        for order_id in self.following:
            if not self.orders[order_id].frames:
                self.resubscribed.add(order_id)
                await self.ws.send(
                    json.dumps({"action": "subscribe", "orderId": order_id, "fromSeq": 0})
                )

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()


async def run(
    base: str,
    orders: int,
    *,
    api_key: str,
    in_flight: int,
    connections: int = 16,
    sequential: bool = False,
    timeout: float = 300.0,
) -> RunResult:
    """Submit `orders` orders with at most `in_flight` submissions outstanding (with
    `sequential`, one order at a time: the next is submitted once the previous is terminal),
    then wait for every order's terminal frame."""
    ws_base = "ws" + base.removeprefix("http")
    tracked: dict[str, Tracked] = {}
    followers = [
        Follower(
            await connect(
                f"{ws_base}/api/orders/execute",
                max_queue=None,
                additional_headers={"x-api-key": api_key},
                # No keepalive pings: a burst at concurrency 40 oversubscribes both cores (the
                # chain alone takes ~2), and a pong starved past the client's 20 s timeout
                # closed followers, so orders the engine confirmed were counted lost.
                ping_interval=None,
            ),
            tracked,
        )
        for _ in range(connections)
    ]
    pick = itertools.cycle(followers)
    submit_errors = 0
    throttled = 0  # 429s retried
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    headers = {"x-api-key": api_key}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30, headers=headers) as http:
        todo = iter(range(orders))

        async def submit_one() -> Tracked | None:
            nonlocal submit_errors, throttled
            t0 = time.time()
            delay = 0.05
            try:
                reply = await http.post("/api/orders/execute", json=ORDER)
                while reply.status_code == 429 and time.time() - t0 < timeout:
                    # Throttled (the functions' or the account's concurrency): a client backs
                    # off and retries, as AWS SDKs do; the order's time counts from the first.
                    throttled += 1
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    reply = await http.post("/api/orders/execute", json=ORDER)
            except httpx.HTTPError:
                submit_errors += 1
                return None
            if reply.status_code != 202:
                submit_errors += 1
                return None
            t = Tracked(reply.json()["orderId"], t0, time.time())
            tracked[t.order_id] = t
            await next(pick).follow(t.order_id)
            return t

        async def worker() -> None:
            for _ in todo:
                t = await submit_one()
                if sequential and t is not None:
                    # A stuck order is a finding, not a crash: it is counted as lost (with its
                    # last status) and the run goes on with the next one.
                    await _wait_terminal([t], min(30.0, timeout / 10))

        started = time.time()
        await asyncio.gather(*(worker() for _ in range(1 if sequential else in_flight)))
        await _wait_terminal(list(tracked.values()), timeout)
        # Frames that would be duplicates arrive after the terminal one: give them a moment.
        await asyncio.sleep(0.5)
        ends = [term[1] for t in tracked.values() if (term := t.terminal)]
        finished = max(ends) if ends else time.time()
    errors = sum(f.error_frames for f in followers)
    for f in followers:
        await f.close()
    return RunResult(tracked, started, finished, errors, submit_errors, throttled)


async def _wait_terminal(orders: list[Tracked], timeout: float) -> bool:
    """Wait up to `timeout` seconds in all for every order's terminal frame; False if some
    order is still without one."""
    deadline = time.monotonic() + timeout
    for t in orders:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            await asyncio.wait_for(t.done.wait(), remaining)
        except TimeoutError:
            return False
    return True


def summary(result: RunResult) -> dict[str, Any]:
    checked = result.check()
    span = result.finished - result.started
    confirmed = sum(1 for t in result.orders.values() if (t.terminal or ("",))[0] == "confirmed")
    return {
        "submitted": len(result.orders),
        "confirmed": confirmed,
        "seconds": span,
        "orders_per_second": confirmed / span if span > 0 else 0.0,
        "submit_errors": result.submit_errors,
        "throttled": result.throttled,
        "error_frames": result.error_frames,
        **checked,
    }
