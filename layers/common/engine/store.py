"""Order storage on Postgres: orders, their append-only events, idempotency keys.

Every status change is one guarded UPDATE (it matches only from the expected status) that returns
the updated row, and writes its event in the same transaction, so the order row and its history
can never disagree, and a caller never needs to read the order again after changing it.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import Connection
from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from engine import limits, payloads
from engine.db import Pool
from engine.errors import (
    ApiKeyRevoked,
    IdempotencyConflict,
    InternalError,
    InvalidRequest,
    NotCancellable,
    OrderNotFound,
    TooManyOpenOrders,
    TooManyOrdersInFlight,
)
from engine.observability import traced
from engine.orders import (
    CANCELLABLE,
    ENDED_BY_REVOCATION,
    IN_FLIGHT,
    OPEN,
    REVOKED_CODE,
    OrderRequest,
    Status,
    check_idempotency_key,
    check_transition,
    iso_z,
    statuses,
)

MAX_PAGE = 100
# Columns an executor may set alongside a status change; anything else is a programming error.
SETTABLE = frozenset(
    {
        "venue",
        "pool",
        "quotes",
        "route",
        "amount_out",
        "decimals_out",
        "min_amount_out",
        "tx_signature",
        "last_valid_block_height",
        "signed_tx",
        "landed_slot",
        "compute_unit_limit",
        "priority_fee_micro_lamports",
        "sent_slot",
        "sends",
        "fee_lamports",
        "filled",
        "attempts",
        "failure_code",
        "failure_reason",
        # limit and sniper orders: the watcher's trigger (and a sniper's new pool), and the
        # executor's return to watching
        "triggers",
        "pinned_pool",
        "enqueued_at",
    }
)
JSON_COLUMNS = frozenset({"quotes", "route", "filled"})


# Moves into these need the order's key unrevoked (Store.transition's guard).
_UNSENT = frozenset({Status.TRIGGERED, Status.ROUTING, Status.BUILDING})


@dataclass(frozen=True, slots=True)
class Order:
    """One row of `orders`, as stored (amounts out are base units of token_out)."""

    id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    request: dict[str, Any]
    token_in: str
    token_out: str
    mint_in: str
    mint_out: str
    # Exact in: what it sells. Exact out: the most it may sell (None on a market order until
    # it is routed: its quote plus slippage).
    amount_in: Decimal | None
    slippage: Decimal | None  # None on a limit order (its limit price is its worst price)
    order_type: str
    status: Status
    seq: int
    request_hash: str
    idempotency_key: str | None = None
    enqueued_at: datetime | None = None
    venue: str | None = None
    pool: str | None = None
    quotes: list[dict[str, Any]] = field(default_factory=list)
    # The route it executes (migration 028): `{legs: [...], amountOut, ...}`; None before
    # routing (and on orders routed before split routes, which used `pool` alone).
    route: dict[str, Any] | None = None
    decimals_out: int | None = None
    amount_out: Decimal | None = None
    min_amount_out: Decimal | None = None
    tx_signature: str | None = None
    last_valid_block_height: int | None = None
    signed_tx: bytes | None = None
    landed_slot: int | None = None
    max_priority_fee_lamports: int | None = None
    compute_unit_limit: int | None = None
    priority_fee_micro_lamports: int | None = None
    sent_slot: int | None = None
    sends: int = 0
    fee_lamports: int | None = None
    filled: dict[str, Any] | None = None
    attempts: int = 0
    failure_code: str | None = None
    failure_reason: str | None = None
    api_key_id: uuid.UUID | None = None
    pinned_pool: str | None = None  # `poolId` (or a sniper's new pool): the one pool routed
    # limit and sniper orders (migration 020)
    limit_price: Decimal | None = None
    expires_at: datetime | None = None
    pool_venue: str | None = None
    max_price: Decimal | None = None
    min_liquidity: Decimal | None = None
    watch_from_slot: int | None = None
    triggers: int = 0
    amount_out_exact: Decimal | None = None  # exact out: what it buys (token units, migration 029)

    @classmethod
    def from_row(cls, row: DictRow | dict[str, Any]) -> Order:
        values = {f.name: row[f.name] for f in fields(cls) if f.name in row}
        values["status"] = Status(values["status"])
        values["quotes"] = values.get("quotes") or []
        if values.get("signed_tx") is not None:
            values["signed_tx"] = bytes(values["signed_tx"])
        return cls(**values)


@dataclass(frozen=True)
class Event:
    order_id: uuid.UUID
    seq: int
    status: Status
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)

    def frame(self) -> dict[str, Any]:
        """The WebSocket/status frame: `{orderId, seq, status, at, ...details}`."""
        return {
            **self.detail,
            "orderId": str(self.order_id),
            "seq": self.seq,
            "status": str(self.status),
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_row(cls, row: DictRow) -> Event:
        return cls(row["order_id"], row["seq"], Status(row["status"]), row["at"], row["detail"])


@dataclass(frozen=True)
class Transition:
    """A committed status change: the order as it now is, and the event that records it."""

    order: Order
    event: Event


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _check_settable(fields_: dict[str, Any]) -> dict[str, Any]:
    bad = set(fields_) - SETTABLE
    if bad:
        raise InvalidRequest(f"not settable on an order: {sorted(bad)}")
    return {name: Jsonb(v) if name in JSON_COLUMNS else v for name, v in fields_.items()}


class Store:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def migrate(self) -> list[str]:
        from engine import db

        with self.pool.connection() as conn:
            return db.migrate(conn)

    def ping(self) -> None:
        with self.pool.connection(timeout=3) as conn:
            conn.execute("SELECT 1")

    # -- creating -------------------------------------------------------------------------------

    @traced("postgres create_order")
    def create_order(
        self,
        request: OrderRequest,
        idempotency_key: str | None = None,
        api_key_id: uuid.UUID | None = None,
        watch_from_slot: int | None = None,
    ) -> tuple[Order, bool]:
        """Store a new `pending` order with its first event; returns (order, created). A limit
        or sniper order is moved to `watching` in the same transaction (two events, pending
        then watching), so none ever waits in `pending` for a step that will not come; a
        sniper's `watch_from_slot` is the chain slot it watches new pools from.

        With an idempotency key already used (by the same API key) for the same request, returns
        that order (created=False); for another request raises IdempotencyConflict. Racing
        callers with one key get one order: the unique index decides, the loser reads the
        winner's row.

        With an `api_key_id` the order belongs to that key, and the key's row is locked for the
        transaction: its creates serialise, so the in-flight count cannot be raced past
        `max_in_flight` (TooManyOrdersInFlight), nor the open count past `max_open_orders`
        (TooManyOpenOrders, for limit and sniper orders), nor its risk limits
        (engine.limits: KeyLimitExceeded, MintNotAllowed). An idempotent replay is answered
        before the limits apply: it creates nothing.
        """
        check_idempotency_key(idempotency_key)
        fingerprint = request.fingerprint()
        try:
            with self.pool.connection() as conn, conn.transaction():
                if api_key_id is not None:
                    existing = self._admit(conn, api_key_id, idempotency_key, request.watched)
                    if existing is not None:
                        return self._replay(existing, fingerprint), False
                    # Under the key's row lock: the row inserted below reserves its amount.
                    limits.check(
                        conn,
                        api_key_id,
                        request.token_in.mint,
                        request.amount_in or Decimal(0),  # exact-out market: at routing
                        request.slippage,
                    )
                    if request.order_type == "sniper":
                        limits.check_sniper_pairs(
                            conn, api_key_id, request.token_in.mint, request.token_out.mint
                        )
                order = self._insert(conn, request, idempotency_key, api_key_id, watch_from_slot)
        except UniqueViolation:
            replayed = self._by_idempotency_key(idempotency_key, api_key_id)
            if replayed is None:  # the winner released the key in between (enqueue failed)
                return self.create_order(request, idempotency_key, api_key_id)
            return self._replay(replayed, fingerprint), False
        return order, True

    @staticmethod
    def _insert(
        conn: Connection[DictRow],
        request: OrderRequest,
        idempotency_key: str | None,
        api_key_id: uuid.UUID | None,
        watch_from_slot: int | None,
    ) -> Order:
        """The order row and its first event(s), in the caller's transaction."""
        body = request.to_json()
        watched = request.watched
        row = conn.execute(
            """INSERT INTO orders (id, request, token_in, token_out, mint_in, mint_out,
                 amount_in, slippage, order_type, status, seq, idempotency_key,
                 request_hash, api_key_id, pinned_pool, limit_price, expires_at, pool_venue,
                 max_price, min_liquidity, watch_from_slot, max_priority_fee_lamports,
                 amount_out_exact)
               VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)
               RETURNING *""",
            (
                uuid.uuid4(),
                Jsonb(body),
                request.token_in.symbol,
                request.token_out.symbol,
                request.token_in.mint,
                request.token_out.mint,
                request.amount_in,
                request.slippage,
                request.order_type,
                str(Status.WATCHING if watched else Status.PENDING),
                2 if watched else 1,
                idempotency_key,
                request.fingerprint(),
                api_key_id,
                request.pool_id,
                request.limit_price,
                request.expires_at,
                request.pool_venue,
                request.max_price,
                request.min_liquidity,
                watch_from_slot,
                request.max_priority_fee_lamports,
                request.amount_out,
            ),
        ).fetchone()
        if row is None:  # INSERT ... RETURNING always returns the row
            raise InternalError("Postgres did not return the new order")
        order = Order.from_row(row)
        conn.execute(
            "INSERT INTO order_events (order_id, seq, status, detail)"
            " VALUES (%s, 1, 'pending', %s)",
            (order.id, Jsonb({"request": body})),
        )
        if watched:
            conn.execute(
                "INSERT INTO order_events (order_id, seq, status, detail)"
                " VALUES (%s, 2, 'watching', %s)",
                (order.id, Jsonb(watching_detail(order))),
            )
        return order

    @staticmethod
    def _admit(
        conn: Connection[DictRow],
        api_key_id: uuid.UUID,
        idempotency_key: str | None,
        watched: bool = False,
    ) -> Order | None:
        """Under the key's row lock: the order an idempotency key already names, else None once
        the key may create one more order (of a watched type: `watched`)."""
        key = conn.execute(
            "SELECT max_in_flight, max_open_orders, revoked_at FROM api_keys"
            " WHERE id = %s FOR UPDATE",
            (api_key_id,),
        ).fetchone()
        if key is None or key["revoked_at"] is not None:
            raise ApiKeyRevoked("this API key is revoked")
        if idempotency_key is not None:
            row = conn.execute(
                "SELECT * FROM orders WHERE api_key_id = %s AND idempotency_key = %s",
                (api_key_id, idempotency_key),
            ).fetchone()
            if row is not None:
                return Order.from_row(row)
        if watched:
            open_now = _count(conn, api_key_id, OPEN)
            if open_now >= key["max_open_orders"]:
                raise TooManyOpenOrders(
                    f"this API key has {open_now} open (watching) orders, its limit is "
                    f"{key['max_open_orders']}; cancel one or wait for one to trigger or expire"
                )
            return None
        in_flight = _count(conn, api_key_id, IN_FLIGHT)
        if in_flight >= key["max_in_flight"]:
            raise TooManyOrdersInFlight(
                f"this API key has {in_flight} orders in flight, its limit is "
                f"{key['max_in_flight']}; wait for one to confirm or fail"
            )
        return None

    @staticmethod
    def _replay(existing: Order, fingerprint: str) -> Order:
        if existing.request_hash != fingerprint:
            raise IdempotencyConflict(
                "this Idempotency-Key was used for a different order", field="Idempotency-Key"
            )
        return existing

    def order_by_idempotency_key(self, key: str, api_key_id: uuid.UUID | None) -> Order | None:
        """The order this API key created with this Idempotency-Key, if any."""
        return self._by_idempotency_key(key, api_key_id)

    def _by_idempotency_key(self, key: str | None, api_key_id: uuid.UUID | None) -> Order | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT * FROM orders WHERE idempotency_key = %s"
                " AND api_key_id IS NOT DISTINCT FROM %s",
                (key, api_key_id),
            ).fetchone()
        return Order.from_row(row) if row else None

    @traced("postgres mark_enqueued")
    def mark_enqueued(self, order_id: uuid.UUID) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE orders SET enqueued_at = now() WHERE id = %s AND enqueued_at IS NULL",
                (order_id,),
            )

    def fail_unqueued(self, order_id: uuid.UUID, reason: str) -> Transition | None:
        """The queue refused the order: fail it, and free its idempotency key for a retry."""
        done = self.transition(
            order_id,
            Status.PENDING,
            Status.FAILED,
            detail={"error": reason, "code": "queue_unavailable"},
            fields={"failure_code": "queue_unavailable", "failure_reason": reason},
        )
        with self.pool.connection() as conn:
            conn.execute("UPDATE orders SET idempotency_key = NULL WHERE id = %s", (order_id,))
        return done

    # -- changing status ------------------------------------------------------------------------

    @traced("postgres transition")
    def transition(
        self,
        order_id: uuid.UUID,
        expected: Status,
        new: Status,
        *,
        detail: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
        where_signature: str | None = None,
    ) -> Transition | None:
        """Move the order from `expected` to `new` and append the event, atomically, in one
        round trip; returns the order as updated and the event.

        Returns None when the order was not in `expected` (somebody else moved it): of two
        racing transitions from one status exactly one wins. `where_signature` also requires the
        stored signature, so two executors cannot both replace one transaction.
        """
        check_transition(expected, new)
        params = _check_settable(fields or {})
        assignments = "".join(f", {name} = %({name})s" for name in params)
        params.update(
            id=order_id,
            expected=str(expected),
            new=str(new),
            sig=where_signature,
            detail=Jsonb({k: _json_value(v) for k, v in (detail or {}).items()}),
        )
        guard = " AND tx_signature = %(sig)s" if where_signature is not None else ""
        if new in _UNSENT or (new, expected) == (Status.SUBMITTED, Status.BUILDING):
            # Nothing of a revoked key is triggered or sent (revocation cancelled these
            # statuses already; this also holds for a key revoked another way).
            guard += (
                " AND NOT EXISTS (SELECT 1 FROM api_keys k"
                " WHERE k.id = orders.api_key_id AND k.revoked_at IS NOT NULL)"
            )
        # One statement: the UPDATE's RETURNING feeds the event INSERT, and both rows come back.
        with self.pool.connection() as conn:
            row = conn.execute(
                f"""WITH moved AS (
                      UPDATE orders SET status = %(new)s, seq = seq + 1, updated_at = now()
                        {assignments}
                      WHERE id = %(id)s AND status = %(expected)s{guard}
                      RETURNING *),
                    logged AS (
                      INSERT INTO order_events (order_id, seq, status, detail)
                      SELECT id, seq, status, %(detail)s FROM moved
                      RETURNING seq AS event_seq, at AS event_at, detail AS event_detail)
                    SELECT moved.*, logged.* FROM moved, logged""",
                params,
            ).fetchone()
        if row is None:
            return None
        order = Order.from_row(row)
        event = Event(order.id, row["event_seq"], new, row["event_at"], row["event_detail"])
        return Transition(order, event)

    @traced("postgres cancel")
    def cancel(self, order_id: uuid.UUID, api_key_id: uuid.UUID) -> Transition:
        """Cancel an order of this key that has not triggered (orders.CANCELLABLE): the
        guarded transition to `cancelled`. A trigger racing it is a guarded transition from the
        same status: exactly one of them wins. Raises OrderNotFound (unknown, or another key's)
        or NotCancellable (a market order; or triggered, or over, before the cancel won)."""
        order = self.get_owned_order(order_id, api_key_id)
        if order is None:
            raise OrderNotFound(f"order {order_id} does not exist", field="orderId")
        if self.key_revoked(api_key_id):  # as the WebSocket's cancel judges it
            raise ApiKeyRevoked("this API key is revoked")
        if order.order_type == "market":
            raise NotCancellable(
                "a market order cannot be cancelled: it is routed as soon as it is accepted"
            )
        if order.status in CANCELLABLE:
            done = self.transition(
                order.id, order.status, Status.CANCELLED, detail={"reason": "cancelled by its key"}
            )
            if done is not None:
                return done
            order = self.get_order(order.id) or order
        raise NotCancellable(
            f"order {order_id} is {order.status}: only an order that has not triggered"
            " (pending or watching) can be cancelled"
        )

    def revoke_key(self, api_key_id: uuid.UUID) -> list[Event] | None:
        """Revoke the key and, in the same transaction, cancel each of its orders that is
        open or not sent yet (orders.ENDED_BY_REVOCATION; code `api_key_revoked`): the
        cancellation events, for their followers. None when there is no such key. Idempotent.

        The key's row lock orders it with order creation (which locks the key and refuses a
        revoked one) and the UPDATE of the orders with every guarded transition: an executor or
        watcher that moves an order first has its move re-read here (still unsent: cancelled;
        `submitted`: followed to its end), one that comes after finds the order cancelled."""
        detail = {"reason": "its API key was revoked", "code": REVOKED_CODE}
        with self.pool.connection() as conn, conn.transaction():
            found = conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
                " WHERE id = %s RETURNING id",
                (api_key_id,),
            ).fetchone()
            if found is None:
                return None
            rows = conn.execute(
                """WITH moved AS (
                      UPDATE orders SET status = %(cancelled)s, seq = seq + 1, updated_at = now(),
                             failure_code = %(code)s, failure_reason = %(reason)s
                       WHERE api_key_id = %(key)s AND status = ANY(%(ended)s)
                      RETURNING id, seq, status)
                    INSERT INTO order_events (order_id, seq, status, detail)
                    SELECT id, seq, status, %(detail)s FROM moved
                    RETURNING order_id, seq, status, at, detail""",
                {
                    "cancelled": str(Status.CANCELLED),
                    "code": REVOKED_CODE,
                    "reason": detail["reason"],
                    "key": api_key_id,
                    "ended": statuses(ENDED_BY_REVOCATION),
                    "detail": Jsonb(detail),
                },
            ).fetchall()
        return [
            Event(r["order_id"], r["seq"], Status(r["status"]), r["at"], r["detail"]) for r in rows
        ]

    @traced("postgres watched_orders")
    def watched_orders(self) -> list[Order]:
        """Every order `watching` now and not yet past its expiry, oldest first; never one of a
        revoked key (revocation cancels them; this holds even for a row it has not reached)."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT o.* FROM orders o LEFT JOIN api_keys k ON k.id = o.api_key_id"
                " WHERE o.status = %s AND o.expires_at > now() AND k.revoked_at IS NULL"
                " ORDER BY o.created_at, o.id",
                (str(Status.WATCHING),),
            ).fetchall()
        return [Order.from_row(r) for r in rows]

    @traced("postgres expired_orders")
    def due_to_expire(self, limit: int = 1000) -> list[Order]:
        """Orders still `watching` (or `pending`) whose expiry has passed."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM orders WHERE status = ANY(%s) AND expires_at <= now()"
                " ORDER BY expires_at LIMIT %s",
                (statuses(CANCELLABLE), limit),
            ).fetchall()
        return [Order.from_row(r) for r in rows]

    @traced("postgres unqueued_triggers")
    def unqueued_triggers(self, older_than_seconds: float) -> list[Order]:
        """Triggered orders whose queue message is not known to have gone out (`enqueued_at`
        unset) for longer than `older_than_seconds`: the trigger committed and then its sender
        stopped. Sending the message again is harmless (the executor's transitions are
        guarded)."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM orders WHERE status = %s AND enqueued_at IS NULL"
                " AND updated_at < now() - make_interval(secs => %s) ORDER BY updated_at",
                (str(Status.TRIGGERED), older_than_seconds),
            ).fetchall()
        return [Order.from_row(r) for r in rows]

    # -- reading --------------------------------------------------------------------------------

    @traced("postgres get_order")
    def get_order(self, order_id: uuid.UUID) -> Order | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT * FROM orders WHERE id = %s", (order_id,)).fetchone()
        return Order.from_row(row) if row else None

    @traced("postgres get_owned_order")
    def get_owned_order(self, order_id: uuid.UUID, api_key_id: uuid.UUID) -> Order | None:
        """The order if this API key created it; None otherwise (unknown or another key's: the
        caller cannot tell which, so ids of other keys' orders leak nothing)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT * FROM orders WHERE id = %s AND api_key_id = %s", (order_id, api_key_id)
            ).fetchone()
        return Order.from_row(row) if row else None

    def check_key_limits(self, order: Order) -> None:
        """The order's key's risk limits again, as they are now (before it is routed; an
        exact-out market order's amount at routing: `reserve_input`): KeyLimitExceeded /
        MintNotAllowed. An order without a key has none."""
        if order.api_key_id is None:
            return
        with self.pool.connection() as conn:
            limits.check(
                conn,
                order.api_key_id,
                order.mint_in,
                order.amount_in or Decimal(0),
                order.slippage,
                order.id,
            )

    def reserve_input(self, order: Order, amount_in: Decimal) -> None:
        """An exact-out market order's maxAmountIn (tokenIn units), known once it is routed:
        checked against its key's limits and stored as its `amount_in` in one transaction
        under the key's row lock, as create_order checks and stores an order, so orders that
        are accepted or routed at the same time cannot pass a limit together.
        KeyLimitExceeded / MintNotAllowed."""
        with self.pool.connection() as conn, conn.transaction():
            if order.api_key_id is not None:
                conn.execute(
                    "SELECT id FROM api_keys WHERE id = %s FOR UPDATE", (order.api_key_id,)
                )
                limits.check(
                    conn, order.api_key_id, order.mint_in, amount_in, order.slippage, order.id
                )
            conn.execute("UPDATE orders SET amount_in = %s WHERE id = %s", (amount_in, order.id))

    def lookup_table(self, wallet: str) -> tuple[str, int | None] | None:
        """The wallet's address lookup table and the slot of its last extension (None until
        its creation landed); None when the engine has not created one."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT address, last_extended_slot FROM lookup_tables WHERE wallet = %s",
                (wallet,),
            ).fetchone()
        return None if row is None else (str(row["address"]), row["last_extended_slot"])

    def claim_lookup_table(self, wallet: str, address: str) -> str:
        """Record `address` as the wallet's table unless one is recorded already (another
        container created it first); the wallet's table, either way."""
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO lookup_tables (wallet, address) VALUES (%s, %s)"
                " ON CONFLICT (wallet) DO NOTHING",
                (wallet, address),
            )
            row = conn.execute(
                "SELECT address FROM lookup_tables WHERE wallet = %s", (wallet,)
            ).fetchone()
        assert row is not None
        return str(row["address"])

    def lookup_table_extended(self, wallet: str, slot: int) -> None:
        """The wallet's table changed in `slot` (created or extended): its latest change."""
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE lookup_tables SET updated_at = now(),"
                " last_extended_slot = GREATEST(COALESCE(last_extended_slot, 0), %s)"
                " WHERE wallet = %s",
                (slot, wallet),
            )

    def limit_price_guard(self, api_key_id: uuid.UUID | None) -> Decimal:
        """How far (percent) below the quote the key's limit orders may set their limitPrice."""
        if api_key_id is None:
            return limits.DEFAULT_LIMIT_PRICE_GUARD
        with self.pool.connection() as conn:
            return limits.load(conn, api_key_id).limit_price_guard

    def key_revoked(self, api_key_id: uuid.UUID) -> bool:
        """True if the API key is revoked (or unknown)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT revoked_at FROM api_keys WHERE id = %s", (api_key_id,)
            ).fetchone()
        return row is None or row["revoked_at"] is not None

    @traced("postgres events")
    def events(self, order_id: uuid.UUID, after_seq: int = 0) -> list[Event]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM order_events WHERE order_id = %s AND seq > %s ORDER BY seq",
                (order_id, after_seq),
            ).fetchall()
        return [Event.from_row(r) for r in rows]

    @traced("postgres latest_event")
    def latest_event(self, order_id: uuid.UUID) -> Event | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT * FROM order_events WHERE order_id = %s ORDER BY seq DESC LIMIT 1",
                (order_id,),
            ).fetchone()
        return Event.from_row(row) if row else None

    @traced("postgres list_orders")
    def list_orders(
        self,
        limit: int = 20,
        cursor: str | None = None,
        api_key_id: uuid.UUID | None = None,
        status: str | None = None,
    ) -> tuple[list[Order], str | None]:
        """Newest first; the cursor is opaque to clients (created_at and id of the last row).
        With `api_key_id`, only that key's orders (what a client may see); without, all. With
        `status` (one of `Status`; anything else is InvalidRequest on `status`), only orders in
        that status now. A cursor carries no filter: pass the same `status` with it."""
        if not (1 <= limit <= MAX_PAGE):
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", field="limit")
        conditions: list[str] = []
        params: list[Any] = []
        if api_key_id is not None:
            conditions.append("api_key_id = %s")
            params.append(api_key_id)
        if status is not None:
            conditions.append("status = %s")
            params.append(parse_status(status))
        if cursor:
            after = decode_cursor(cursor)
            conditions.append("(created_at, id) < (%s, %s)")
            params += [after[0], after[1]]
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT * FROM orders{where} ORDER BY created_at DESC, id DESC LIMIT %s",
                (*params, limit + 1),
            ).fetchall()
        page = [Order.from_row(r) for r in rows[:limit]]
        next_cursor = encode_cursor(page[-1]) if len(rows) > limit else None
        return page, next_cursor


def _count(conn: Connection[DictRow], api_key_id: uuid.UUID, group: frozenset[Status]) -> int:
    counted = conn.execute(
        "SELECT count(*) AS n FROM orders WHERE api_key_id = %s AND status = ANY(%s)",
        (api_key_id, statuses(group)),
    ).fetchone()
    return int(counted["n"]) if counted else 0


def watching_detail(order: Order) -> dict[str, Any]:
    """The `watching` event's detail: what the order waits for, and until when."""
    detail: dict[str, Any] = {"orderType": order.order_type}
    if order.expires_at is not None:
        detail["expiresAt"] = iso_z(order.expires_at)
    for key, value in (
        ("limitPrice", order.limit_price),
        ("maxPrice", order.max_price),
        ("minLiquidity", order.min_liquidity),
    ):
        if value is not None:
            detail[key] = _json_value(value)
    if order.pool_venue is not None:
        detail["poolVenue"] = order.pool_venue
    if order.watch_from_slot is not None:
        detail["watchFromSlot"] = order.watch_from_slot
    return detail


def parse_status(value: str) -> Status:
    """A status a client names (a filter), or InvalidRequest on `status` listing the known ones."""
    try:
        return Status(value)
    except ValueError:
        known = ", ".join(s.value for s in Status)
        raise InvalidRequest(f"status must be one of: {known}", field="status") from None


def encode_cursor(order: Order) -> str:
    raw = json.dumps([order.created_at.isoformat(), str(order.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, ident = payloads.loads(raw, "cursor")
        if not isinstance(created, str) or not isinstance(ident, str):
            raise TypeError("a cursor is two strings")
        return datetime.fromisoformat(created), uuid.UUID(ident)
    except (ValueError, TypeError, InvalidRequest) as exc:  # any cursor we did not make
        raise InvalidRequest("cursor is not valid", field="cursor") from exc
