"""WebSocket connections and their order subscriptions, in Postgres.

A connection row exists from `$connect` to `$disconnect` (or until a post to it answers 410);
deleting it removes its subscriptions (ON DELETE CASCADE). A subscription remembers the last
event seq delivered to that connection for that order (`delivered_seq`); `engine.notify.deliver`
is the only code that advances it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from psycopg.errors import ForeignKeyViolation

from engine.db import Pool
from engine.errors import OrderNotFound

_COLUMNS = "connection_id, connected_at, domain, stage, endpoint, idempotency_key, api_key_id"


@dataclass(frozen=True)
class Socket:
    """One row of `connections`: a WebSocket connection and the API key it acts for."""

    connection_id: str
    connected_at: datetime
    domain: str | None
    stage: str | None
    endpoint: str | None
    idempotency_key: str | None
    api_key_id: uuid.UUID | None


class Connections:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def add(
        self,
        connection_id: str,
        *,
        domain: str | None = None,
        stage: str | None = None,
        endpoint: str | None = None,
        idempotency_key: str | None = None,
        api_key_id: uuid.UUID | None = None,
    ) -> None:
        """Record a connection and the API key it acts for (idempotent: a retried `$connect`
        keeps the first row)."""
        with self.pool.connection() as conn:
            conn.execute(
                """INSERT INTO connections
                     (connection_id, domain, stage, endpoint, idempotency_key, api_key_id)
                   VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (connection_id) DO NOTHING""",
                (connection_id, domain, stage, endpoint, idempotency_key, api_key_id),
            )

    def get(self, connection_id: str) -> Socket | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM connections WHERE connection_id = %s", (connection_id,)
            ).fetchone()
        return Socket(**row) if row else None

    def of_key(self, api_key_id: uuid.UUID) -> list[Socket]:
        """The open connections acting for an API key."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM connections WHERE api_key_id = %s", (api_key_id,)
            ).fetchall()
        return [Socket(**row) for row in rows]

    def remove(self, connection_id: str) -> bool:
        """Forget a connection and (cascade) its subscriptions; True if it was there."""
        with self.pool.connection() as conn:
            cur = conn.execute("DELETE FROM connections WHERE connection_id = %s", (connection_id,))
            return cur.rowcount > 0

    def subscribe(
        self,
        connection_id: str,
        order_id: uuid.UUID,
        delivered_seq: int = 0,
        *,
        domain: str | None = None,
        stage: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        """Create or reset the subscription so that the next delivery starts after `delivered_seq`.

        The connection row is created if missing (a connection that predates this table, or a
        lost `$connect` write), so a valid subscribe never fails on the foreign key.
        Raises OrderNotFound for an order that does not exist.
        """
        try:
            with self.pool.connection() as conn, conn.transaction():
                conn.execute(
                    """INSERT INTO connections (connection_id, domain, stage, endpoint)
                       VALUES (%s, %s, %s, %s) ON CONFLICT (connection_id) DO NOTHING""",
                    (connection_id, domain, stage, endpoint),
                )
                conn.execute(
                    """INSERT INTO subscriptions (connection_id, order_id, delivered_seq)
                       VALUES (%s, %s, %s)
                       ON CONFLICT (connection_id, order_id)
                       DO UPDATE SET delivered_seq = EXCLUDED.delivered_seq""",
                    (connection_id, order_id, delivered_seq),
                )
        except ForeignKeyViolation:
            raise OrderNotFound(f"order {order_id} does not exist", field="orderId") from None

    def delivered_seq(self, connection_id: str, order_id: uuid.UUID) -> int | None:
        """The last seq delivered on this subscription; None when there is no subscription."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT delivered_seq FROM subscriptions"
                " WHERE connection_id = %s AND order_id = %s",
                (connection_id, order_id),
            ).fetchone()
        return int(row["delivered_seq"]) if row else None

    def orders_of(self, connection_id: str) -> list[uuid.UUID]:
        """The orders a connection follows."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT order_id FROM subscriptions WHERE connection_id = %s ORDER BY order_id",
                (connection_id,),
            ).fetchall()
        return [uuid.UUID(str(r["order_id"])) for r in rows]

    def subscribers(self, order_id: uuid.UUID) -> list[str]:
        """Connection ids subscribed to the order, oldest subscription first."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT connection_id FROM subscriptions WHERE order_id = %s"
                " ORDER BY created_at, connection_id",
                (order_id,),
            ).fetchall()
        return [str(r["connection_id"]) for r in rows]
