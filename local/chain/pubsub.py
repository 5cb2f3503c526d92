"""The local chain's PubSub WebSocket server, as a validator serves it (on the RPC port + 1, and
on the RPC port itself through a WebSocket upgrade).

Subscriptions: accountSubscribe, programSubscribe (memcmp / dataSize filters), logsSubscribe
(`all`, `allWithVotes`, `{"mentions": [address]}`), signatureSubscribe (fires once, then ends;
at once when the transaction already reached the level; `enableReceivedNotification`),
slotSubscribe, rootSubscribe and slotsUpdatesSubscribe (frozen, createdBank,
optimisticConfirmation and root updates), each with its *Unsubscribe. Notifications have the node's
shapes ({"jsonrpc", "method": "<kind>Notification", "params": {"result", "subscription"}}).

Commitment (default `finalized`, as a node's): `processed` notifications go out as a transaction
lands or an account is written, with the state right after it; `confirmed` ones when the slot is
confirmed (the next block) and `finalized` ones when it is rooted (32 blocks later), with the
state at the end of that slot.

The ledger calls the hub with its lock held (see `LedgerListener`); the hub hands each message to
its connection's event loop, which writes it to the socket. A subscription is made while holding
the ledger lock too, so its reply always goes out before its first notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from local.chain.ledger import Block, Ledger, TxRecord
from local.chain.wire import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    AccountFilter,
    DataSlice,
    Json,
    RpcError,
    account_encoding,
    account_filters,
    config,
    data_slice,
    encode_account,
    error_response,
    error_to_json,
    matches_all,
    pubkey,
)

log = logging.getLogger("local.chain.pubsub")

LEVELS = {"processed": 0, "confirmed": 1, "finalized": 2}
# Older commitment names a node still accepts.
ALIASES = {
    "recent": "processed",
    "single": "confirmed",
    "singleGossip": "confirmed",
    "root": "finalized",
    "max": "finalized",
}
NOTIFICATIONS = {
    "accountSubscribe": "accountNotification",
    "programSubscribe": "programNotification",
    "logsSubscribe": "logsNotification",
    "signatureSubscribe": "signatureNotification",
    "slotSubscribe": "slotNotification",
    "rootSubscribe": "rootNotification",
    "slotsUpdatesSubscribe": "slotsUpdatesNotification",
}
UNSUBSCRIBE = {name.replace("Subscribe", "Unsubscribe") for name in NOTIFICATIONS}
TOO_LARGE_FOR_BASE58 = "error: data too large for bs58 encoding"  # what a node sends instead


class Connection:
    """One WebSocket client: messages for it are queued on its event loop, from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    def push(self, message: Any) -> None:
        text = json.dumps(message)
        with contextlib.suppress(RuntimeError):  # the loop is gone: the client left
            self.loop.call_soon_threadsafe(self.queue.put_nowait, text)


@dataclass
class Subscription:
    id: int
    method: str
    conn: Connection
    level: int = LEVELS["finalized"]
    key: Pubkey | None = None  # account, program, or the address logs must mention
    signature: Signature | None = None
    received: bool = False  # signatureSubscribe's enableReceivedNotification
    encoding: str = "binary"
    slice_: DataSlice | None = None
    filters: list[AccountFilter] = field(default_factory=list)

    def notify(self, result: Any) -> None:
        self.conn.push(
            {
                "jsonrpc": "2.0",
                "method": NOTIFICATIONS[self.method],
                "params": {"result": result, "subscription": self.id},
            }
        )


def _level(cfg: Json) -> int:
    name = str(cfg.get("commitment") or "finalized")
    name = ALIASES.get(name, name)
    if name not in LEVELS:
        raise RpcError(INVALID_PARAMS, f"Invalid params: unknown variant `{name}`")
    return LEVELS[name]


def _closed_account() -> Account:
    # What a node notifies for an account that was closed (or never existed).
    return Account(0, b"", SYSTEM_PROGRAM_ID, False, 0)


class Hub:
    """Every subscription of one chain, fed by its ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.lock = threading.Lock()
        self.subscriptions: dict[int, Subscription] = {}
        self._ids = itertools.count(0)
        self._last_root = ledger.root_slot
        self._last_slots_root = ledger.root_slot
        self._pending_immediate: list[Subscription] = []
        ledger.listeners.append(self)

    # ------------------------------------------------------------------------------ requests
    def handle(self, conn: Connection, text: str) -> None:
        """One WebSocket frame: a request or a batch; replies go to `conn`."""
        try:
            body = json.loads(text)
        except ValueError:
            conn.push(error_response(None, PARSE_ERROR, "Parse error"))
            return
        with self.ledger.lock:  # replies are queued before any notification they lead to
            if isinstance(body, list):
                replies = [r for r in (self._call(conn, item) for item in body) if r is not None]
                if replies:
                    conn.push(replies)
            else:
                reply = self._call(conn, body)
                if reply is not None:
                    conn.push(reply)
            self._flush_immediate()

    def _call(self, conn: Connection, request: Any) -> Json | None:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return error_response(None, INVALID_REQUEST, "Invalid request")
        if "id" not in request:
            return None  # a notification (web3.js sends {"method": "ping"}): no reply
        request_id = request["id"]
        method = request["method"]
        params = request.get("params") or []
        if not isinstance(params, list):
            return error_response(request_id, INVALID_PARAMS, "Invalid params: expected an array")
        try:
            if method in NOTIFICATIONS:
                result: Any = self._subscribe(conn, method, params)
            elif method in UNSUBSCRIBE:
                result = self._unsubscribe(conn, params)
            else:
                return error_response(request_id, METHOD_NOT_FOUND, "Method not found")
        except RpcError as exc:
            return error_response(request_id, exc.code, exc.message, exc.data)
        except (ValueError, IndexError, TypeError, KeyError) as exc:
            return error_response(request_id, INVALID_PARAMS, f"Invalid params: {exc}")
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    def _subscribe(self, conn: Connection, method: str, params: list[Any]) -> int:
        sub = Subscription(next(self._ids), method, conn)
        if method == "accountSubscribe":
            cfg = config(params, 1)
            sub.key = pubkey(params[0])
            sub.level = _level(cfg)
            sub.encoding = account_encoding(cfg)
            sub.slice_ = data_slice(cfg)
        elif method == "programSubscribe":
            cfg = config(params, 1)
            sub.key = pubkey(params[0])
            sub.level = _level(cfg)
            sub.encoding = account_encoding(cfg)
            sub.slice_ = data_slice(cfg)
            sub.filters = account_filters(cfg.get("filters"))
        elif method == "logsSubscribe":
            sub.level = _level(config(params, 1))
            target = params[0] if params else None
            if isinstance(target, dict) and isinstance(target.get("mentions"), list):
                if len(target["mentions"]) != 1:
                    raise RpcError(INVALID_PARAMS, "Invalid Request: Only 1 address supported")
                sub.key = pubkey(target["mentions"][0])
            elif target not in ("all", "allWithVotes"):
                raise RpcError(INVALID_PARAMS, "Invalid params: unknown logs filter")
        elif method == "signatureSubscribe":
            cfg = config(params, 1)
            try:
                sub.signature = Signature.from_string(str(params[0]))
            except ValueError:
                raise RpcError(INVALID_PARAMS, "Invalid Request: Invalid signature") from None
            sub.level = _level(cfg)
            sub.received = bool(cfg.get("enableReceivedNotification", False))
        with self.lock:
            self.subscriptions[sub.id] = sub
        if method == "signatureSubscribe":
            self._pending_immediate.append(sub)
        return sub.id

    def _flush_immediate(self) -> None:
        """A signature that already reached the level is notified right after the reply."""
        pending, self._pending_immediate = self._pending_immediate, []
        for sub in pending:
            assert sub.signature is not None
            found = self.ledger.status(sub.signature)
            if found is None:
                continue
            record, _confirmations, level = found
            if LEVELS[level] >= sub.level:
                self._signature_done(sub, record)

    def _unsubscribe(self, conn: Connection, params: list[Any]) -> bool:
        with self.lock:
            sub = self.subscriptions.get(int(params[0])) if params else None
            if sub is None or sub.conn is not conn:
                raise RpcError(INVALID_PARAMS, "Invalid subscription id.")
            del self.subscriptions[sub.id]
        return True

    def drop(self, conn: Connection) -> None:
        """The client left: its subscriptions end."""
        with self.lock:
            for sub_id in [i for i, s in self.subscriptions.items() if s.conn is conn]:
                del self.subscriptions[sub_id]

    def _subs(self, method: str) -> list[Subscription]:
        with self.lock:
            return [s for s in self.subscriptions.values() if s.method == method]

    # ------------------------------------------------------------------------------ ledger events
    def transaction_received(self, signature: Signature) -> None:
        for sub in self._subs("signatureSubscribe"):
            if sub.received and sub.signature == signature:
                sub.notify({"context": {"slot": self.ledger.slot}, "value": "receivedSignature"})

    def transaction_landed(self, record: TxRecord) -> None:
        self._transactions([record], LEVELS["processed"], record.slot)
        self._accounts(record.post_accounts, LEVELS["processed"], record.slot)

    def accounts_written(self, slot: int, writes: Mapping[Pubkey, Account | None]) -> None:
        self._accounts(writes, LEVELS["processed"], slot)

    def slot_advanced(
        self, block: Block, confirmed: Block | None, finalized: Block | None, root: int
    ) -> None:
        for sub in self._subs("slotSubscribe"):
            sub.notify({"parent": block.parent_slot, "root": root, "slot": block.slot})
        self._slots_updates(block, confirmed, root)
        if root != self._last_root:
            self._last_root = root
            for sub in self._subs("rootSubscribe"):
                sub.notify(root)
        for reached, level in ((confirmed, "confirmed"), (finalized, "finalized")):
            if reached is not None:
                self._transactions(reached.records, LEVELS[level], reached.slot)
                self._accounts(reached.writes, LEVELS[level], reached.slot)

    def _slots_updates(self, block: Block, confirmed: Block | None, root: int) -> None:
        """slotsUpdatesSubscribe: the produced block is frozen, the new one's bank created, the
        confirmed one optimistically confirmed, and a new root (agave's SlotUpdate)."""
        subs = self._subs("slotsUpdatesSubscribe")
        if not subs:
            return
        now = int(time.time() * 1000)
        frozen = self.ledger.blocks.get(block.parent_slot)
        updates: list[Json] = []
        if frozen is not None:
            failed = sum(1 for r in frozen.records if r.err is not None)
            updates.append(
                {
                    "type": "frozen",
                    "slot": frozen.slot,
                    "timestamp": now,
                    "stats": {
                        "numTransactionEntries": len(frozen.records),
                        "numSuccessfulTransactions": len(frozen.records) - failed,
                        "numFailedTransactions": failed,
                        "maxTransactionsPerEntry": 1 if frozen.records else 0,
                    },
                }
            )
        updates.append(
            {
                "type": "createdBank",
                "parent": block.parent_slot,
                "slot": block.slot,
                "timestamp": now,
            }
        )
        if confirmed is not None:
            updates.append(
                {"type": "optimisticConfirmation", "slot": confirmed.slot, "timestamp": now}
            )
        if root != self._last_slots_root:
            self._last_slots_root = root
            updates.append({"type": "root", "slot": root, "timestamp": now})
        for sub in subs:
            for update in updates:
                sub.notify(update)

    # ------------------------------------------------------------------------------ notifying
    def _transactions(self, records: list[TxRecord], level: int, slot: int) -> None:
        if not records:
            return
        context = {"slot": slot}
        for sub in self._subs("signatureSubscribe"):
            if sub.level != level:
                continue
            for record in records:
                if record.signature == sub.signature:
                    self._signature_done(sub, record)
        for sub in self._subs("logsSubscribe"):
            if sub.level != level:
                continue
            for record in records:
                if sub.key is not None and sub.key not in record.account_keys:
                    continue
                sub.notify(
                    {
                        "context": context,
                        "value": {
                            "err": error_to_json(record.err),
                            "logs": list(record.logs),
                            "signature": str(record.signature),
                        },
                    }
                )

    def _signature_done(self, sub: Subscription, record: TxRecord) -> None:
        with self.lock:
            if self.subscriptions.pop(sub.id, None) is None:
                return  # already notified (it fires once)
        sub.notify({"context": {"slot": record.slot}, "value": {"err": error_to_json(record.err)}})

    def _encode(self, sub: Subscription, account: Account) -> Json:
        try:
            return encode_account(
                account, sub.encoding, slice_=sub.slice_, lookup=self.ledger.get_account
            )
        except RpcError:  # base58 of more than 128 bytes: a node sends a marker instead
            encoded = encode_account(account, "base64", lookup=self.ledger.get_account)
            marker: Any = TOO_LARGE_FOR_BASE58
            encoded["data"] = marker if sub.encoding == "binary" else [marker, "base58"]
            return encoded

    def _accounts(self, writes: Mapping[Pubkey, Account | None], level: int, slot: int) -> None:
        if not writes:
            return
        context = {"slot": slot}
        for sub in self._subs("accountSubscribe"):
            if sub.level == level and sub.key is not None and sub.key in writes:
                written = writes[sub.key] or _closed_account()
                sub.notify({"context": context, "value": self._encode(sub, written)})
        for sub in self._subs("programSubscribe"):
            if sub.level != level:
                continue
            for key, state in writes.items():
                if state is None or state.owner != sub.key:
                    continue
                if not matches_all(sub.filters, bytes(state.data)):
                    continue
                sub.notify(
                    {
                        "context": context,
                        "value": {"account": self._encode(sub, state), "pubkey": str(key)},
                    }
                )


def create_endpoint(hub: Hub) -> ASGIApp:
    """The ASGI WebSocket endpoint serving `hub` (any path)."""

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive, send)
        await ws.accept()
        conn = Connection(asyncio.get_running_loop())

        async def writer() -> None:
            while True:
                text = await conn.queue.get()
                await ws.send_text(text)

        sending = asyncio.create_task(writer())
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None and message.get("bytes") is not None:
                    text = message["bytes"].decode(errors="replace")
                if text is not None:
                    hub.handle(conn, text)
        except WebSocketDisconnect:
            pass
        finally:
            hub.drop(conn)
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sending

    return endpoint
