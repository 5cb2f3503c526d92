"""Pool-creating transactions of the venue programs as they land, from the RPC's PubSub
WebSocket: one `logsSubscribe {"mentions": [program]}` per venue program (commitment
`confirmed`), kept open by the watch container.

Each notification carries the transaction's signature, its error and its log lines; Anchor
programs log the instruction they run first thing (`Program log: Instruction: Initialize`,
right after `Program <id> invoke [n]`), so a pool-creating transaction is told from a swap
without reading it. `execution.launches` then calls getTransaction for those alone: a tick's RPC
calls no longer grow with the programs' swap activity.

A subscription only sees what lands after it is made, so each (re)subscription starts a new
`epoch`; the watcher reads the programs' signatures since its cursor once per epoch (the gap
before it), and only the feed afterwards. Where the RPC has no WebSocket, or refuses
logsSubscribe, the feed is never `live` and the watcher reads signatures every tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aws_lambda_powertools import Logger
from solders.pubkey import Pubkey
from solders.signature import Signature

logger = Logger(child=True)
RECONNECT_SECONDS = (0.5, 30.0)  # backoff, first and longest
SUBSCRIBE_TIMEOUT_SECONDS = 5.0
_INSTRUCTION = re.compile(r"^Program log: Instruction: (\w+)$")


def ws_url(rpc_url: str) -> str:
    """The PubSub endpoint of an RPC URL: the same host, port and path over ws/wss (as RPC
    providers serve it, and the local chain on its RPC port)."""
    parts = urlsplit(rpc_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))


def created_by(logs: Sequence[str], program: str, instructions: Collection[str]) -> bool:
    """True when `program` itself (at any depth) ran one of `instructions` (their names as
    Anchor logs them, e.g. `InitializePool`)."""
    invoked = f"Program {program} invoke ["
    for line, following in itertools.pairwise(logs):
        if line.startswith(invoked):
            named = _INSTRUCTION.match(following)
            if named and named.group(1) in instructions:
                return True
    return False


@dataclass
class _Program:
    address: Pubkey
    instructions: frozenset[str]
    creating: list[tuple[Signature, int]] = field(default_factory=list)
    newest: tuple[Signature, int] | None = None


class CreationFeed:
    """Per container: the signatures of landed, successful pool-creating transactions of each
    program since the last `take`, while subscribed (`live`)."""

    def __init__(self, url: str, programs: Mapping[Pubkey, Collection[str]]) -> None:
        self.url = url
        self._programs = {
            str(address): _Program(address, frozenset(names)) for address, names in programs.items()
        }
        self.epoch = 0  # a new one at each subscription of every program
        self.live = False
        self.refused = False  # the RPC refuses logsSubscribe: no point asking again
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Subscribe in the background (in the running loop), unless already running."""
        if (self._task is None or self._task.done()) and not self.refused:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self.live = False

    def take(
        self, program: Pubkey
    ) -> tuple[list[tuple[Signature, int]], tuple[Signature, int] | None]:
        """The pool-creating transactions seen since the last take (oldest first), and the
        newest transaction of the program seen at all (the cursor to keep)."""
        state = self._programs[str(program)]
        creating, state.creating = state.creating, []
        newest, state.newest = state.newest, None
        return creating, newest

    async def _run(self) -> None:
        import websockets

        pause = RECONNECT_SECONDS[0]
        while True:
            try:
                async with websockets.connect(self.url, max_size=None, ping_interval=20) as ws:
                    subscriptions = await self._subscribe(ws)
                    if subscriptions is None:
                        return
                    self.epoch += 1
                    self.live = True
                    pause = RECONNECT_SECONDS[0]
                    logger.info(
                        "pool creations followed over logsSubscribe",
                        extra={"url_epoch": self.epoch},
                    )
                    async for raw in ws:
                        self._notified(json.loads(raw), subscriptions)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: not live until subscribed again
                logger.info("logsSubscribe feed down", extra={"error": type(exc).__name__})
            self.live = False
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECONNECT_SECONDS[1])

    async def _subscribe(self, ws: Any) -> dict[int, _Program] | None:
        """Subscribe to every program; the subscription ids, or None when the RPC refuses the
        method (then `refused`)."""
        for i, state in enumerate(self._programs.values()):
            await ws.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": i,
                        "method": "logsSubscribe",
                        "params": [{"mentions": [str(state.address)]}, {"commitment": "confirmed"}],
                    }
                )
            )
        pending = dict(enumerate(self._programs.values()))
        subscriptions: dict[int, _Program] = {}
        early: list[dict[str, Any]] = []  # one program's notifications before another's reply
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT_SECONDS):
            while pending:
                reply = json.loads(await ws.recv())
                if "id" not in reply:
                    early.append(reply)
                    continue
                if reply["id"] not in pending:
                    continue
                state = pending.pop(reply["id"])
                if "result" not in reply:
                    self.refused = True
                    logger.warning(
                        "the RPC refuses logsSubscribe: pool creations are read from signatures",
                        extra={"error": str(reply.get("error"))[:200]},
                    )
                    return None
                subscriptions[int(reply["result"])] = state
        for message in early:
            self._notified(message, subscriptions)
        return subscriptions

    def _notified(self, message: dict[str, Any], subscriptions: dict[int, _Program]) -> None:
        if message.get("method") != "logsNotification":
            return
        params = message["params"]
        state = subscriptions.get(params["subscription"])
        if state is None:
            return
        value, slot = params["result"]["value"], int(params["result"]["context"]["slot"])
        signature = Signature.from_string(value["signature"])
        state.newest = (signature, slot)
        if value.get("err") is None and created_by(
            value.get("logs") or [], str(state.address), state.instructions
        ):
            state.creating.append((signature, slot))
