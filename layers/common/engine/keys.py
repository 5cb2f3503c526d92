"""API keys: who may trade. Create, verify, revoke and list them; `python -m engine.keys` manages
them from a shell.

A key is `oek_` + 32 random bytes, shown once by `create_key`; only its SHA-256 is stored (see
migrations/003_api_keys.sql for why a fast hash is right for a 256-bit random secret). Neither a
key nor its hash is ever logged: `ApiKey` carries the id, name and display prefix only.
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg.rows import DictRow

from engine import db, limits
from engine.config import Settings
from engine.db import Pool
from engine.errors import InternalError, InvalidRequest
from engine.store import Event, Store

SECRET_PREFIX = "oek_"
PREFIX_CHARS = len(SECRET_PREFIX) + 6  # "oek_AbC123": tells keys apart, useless to an attacker
DEFAULT_MAX_IN_FLIGHT = 20
DEFAULT_MAX_OPEN_ORDERS = 100  # watching limit and sniper orders (migration 020's default)
# What `verify` will hash: longer inputs are refused before any work (a header can be 10 KB).
MIN_SECRET_CHARS, MAX_SECRET_CHARS = 16, 256


@dataclass(frozen=True)
class ApiKey:
    id: uuid.UUID
    name: str
    prefix: str
    max_in_flight: int
    created_at: datetime
    revoked_at: datetime | None = None
    max_open_orders: int = DEFAULT_MAX_OPEN_ORDERS

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @classmethod
    def from_row(cls, row: DictRow | dict[str, Any]) -> ApiKey:
        return cls(
            row["id"],
            row["name"],
            row["prefix"],
            row["max_in_flight"],
            row["created_at"],
            row["revoked_at"],
            row["max_open_orders"],
        )


def key_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _plausible(secret: Any) -> bool:
    return isinstance(secret, str) and MIN_SECRET_CHARS <= len(secret) <= MAX_SECRET_CHARS


_COLUMNS = "id, name, prefix, max_in_flight, created_at, revoked_at, max_open_orders"


def _insert(
    pool: Pool,
    secret: str,
    name: str,
    max_in_flight: int,
    max_open_orders: int = DEFAULT_MAX_OPEN_ORDERS,
) -> ApiKey | None:
    if not (0 < len(name) <= 200):
        raise InvalidRequest("name must be 1 to 200 characters", field="name")
    if max_in_flight < 1:
        raise InvalidRequest("max_in_flight must be at least 1", field="max_in_flight")
    if max_open_orders < 1:
        raise InvalidRequest("max_open_orders must be at least 1", field="max_open_orders")
    with pool.connection() as conn:
        row = conn.execute(
            f"""INSERT INTO api_keys (id, name, prefix, key_hash, max_in_flight, max_open_orders)
                VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (key_hash) DO NOTHING
                RETURNING {_COLUMNS}""",
            (
                uuid.uuid4(),
                name,
                secret[:PREFIX_CHARS],
                key_hash(secret),
                max_in_flight,
                max_open_orders,
            ),
        ).fetchone()
    return ApiKey.from_row(row) if row else None


def create_key(
    name: str,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    *,
    pool: Pool,
    max_open_orders: int = DEFAULT_MAX_OPEN_ORDERS,
) -> tuple[ApiKey, str]:
    """A new key; returns it and its secret, which exists nowhere else from now on. It may have
    `max_in_flight` orders in flight and `max_open_orders` watching at once."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    created = _insert(pool, secret, name, max_in_flight, max_open_orders)
    if created is None:  # 256 random bits do not collide
        raise InternalError("a new API key collided with an existing one")
    return created, secret


def ensure_key(
    secret: str,
    name: str,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    *,
    pool: Pool,
) -> ApiKey:
    """The key with this secret, created if new (e.g. a developer's LOCAL_API_KEY)."""
    if not _plausible(secret):
        raise InvalidRequest(
            f"an API key is {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} characters", field="key"
        )
    created = _insert(pool, secret, name, max_in_flight)
    if created is not None:
        return created
    with pool.connection() as conn:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = %s", (key_hash(secret),)
        ).fetchone()
    if row is None:  # the insert conflicted on this hash, so the row exists
        raise InternalError("an API key that conflicted on insert cannot be read")
    return ApiKey.from_row(row)


def verify(secret: Any, *, pool: Pool) -> ApiKey | None:
    """The key whose secret this is; None when it is unknown, revoked or not a key at all.

    The lookup is by hash, so response timing says nothing about how close a guess was.
    """
    if not _plausible(secret):
        return None
    with pool.connection() as conn:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
            (key_hash(secret),),
        ).fetchone()
    return ApiKey.from_row(row) if row else None


@dataclass(frozen=True)
class Revoked:
    """A revocation: the cancellations it made (their followers are owed these frames)."""

    key_id: uuid.UUID
    cancelled: list[Event]


def revoke(key_id: uuid.UUID, *, pool: Pool) -> Revoked | None:
    """Revoke a key (idempotent); None if there is no such key. In the same transaction every
    order of the key that is open or not sent yet is cancelled (`api_key_revoked`); a
    submitted one is followed to its end. Nothing of the key is triggered or sent afterwards,
    and every route refuses it at once (the HTTP authorizer's cached answers expire within its
    TTL, but the handlers check the key)."""
    cancelled = Store(pool).revoke_key(key_id)
    return None if cancelled is None else Revoked(key_id, cancelled)


def list_keys(*, pool: Pool) -> list[ApiKey]:
    with pool.connection() as conn:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id").fetchall()
    return [ApiKey.from_row(r) for r in rows]


# -- the management command -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.keys",
        description="Manage API keys (DATABASE_URL, or DB_HOST + DB_SECRET_ARN as the functions).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("--name", required=True)
    create.add_argument("--max-in-flight", type=int, default=DEFAULT_MAX_IN_FLIGHT)
    create.add_argument("--max-open-orders", type=int, default=DEFAULT_MAX_OPEN_ORDERS)
    _limit_options(create)
    commands.add_parser("list", help="list keys (id, prefix, name, limit, state)")
    limits_cmd = commands.add_parser(
        "limits", help="show a key's risk limits (and set those given) and what remains of them"
    )
    limits_cmd.add_argument("id", type=uuid.UUID)
    _limit_options(limits_cmd)
    revoke_cmd = commands.add_parser("revoke", help="revoke a key by id")
    revoke_cmd.add_argument("id", type=uuid.UUID)
    args = parser.parse_args(argv)

    pool = db.open_pool(Settings.from_env())
    with pool.connection() as conn:  # a fresh database works too: migrations are idempotent
        db.migrate(conn)
    if args.command == "create":
        try:
            key, secret = create_key(
                args.name, args.max_in_flight, pool=pool, max_open_orders=args.max_open_orders
            )
        except InvalidRequest as exc:
            parser.error(str(exc))
        print(f"id            {key.id}")
        print(f"name          {key.name}")
        print(f"max in flight {key.max_in_flight}")
        print(f"max open      {key.max_open_orders}")
        _set_limits(parser, key.id, args, pool)
        print(f"key           {secret}")
        _print_limits(key.id, pool)
        print("Store the key now: it is not kept and cannot be shown again.", file=sys.stderr)
    elif args.command == "limits":
        if not any(k.id == args.id for k in list_keys(pool=pool)):
            print(f"no key {args.id}", file=sys.stderr)
            return 1
        _set_limits(parser, args.id, args, pool)
        _print_limits(args.id, pool)
    elif args.command == "list":
        for key in list_keys(pool=pool):
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            print(
                f"{key.id}  {key.prefix}…  {key.name!r}  max_in_flight={key.max_in_flight}"
                f"  max_open_orders={key.max_open_orders}"
                f"  created {key.created_at:%Y-%m-%d %H:%M}  {state}"
            )
    else:
        revoked = revoke(args.id, pool=pool)
        if revoked is None:
            print(f"no key {args.id}", file=sys.stderr)
            return 1
        print(f"revoked {args.id}; cancelled {len(revoked.cancelled)} open or unsent order(s)")
        closed, failed = close_sockets(args.id, pool=pool)
        print(f"WebSocket connections of the key: {closed} closed, {failed} failed to close")
    return 0


def _limit_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="TOKEN=MAX_IN/MAX_IN_PER_24H",
        help="what the key may sell of a token (symbol or mint) per order and per 24 h, in"
        " token units, e.g. SOL=100/1000 (repeatable; defaults: SOL 100/1000, USDC"
        " 20000/200000; a token without one is sold only up to what the key's fills bought)",
    )
    command.add_argument("--max-slippage", type=Decimal, help="percent, at most 50 (default)")
    command.add_argument(
        "--limit-price-guard",
        type=Decimal,
        help="percent: a limitPrice further below the quote fails as a fat finger (default 20)",
    )


def _set_limits(
    parser: argparse.ArgumentParser, key_id: uuid.UUID, args: argparse.Namespace, pool: Pool
) -> None:
    try:
        limits.set_limits(
            pool,
            key_id,
            dict(limits.parse_mint_limit(spec) for spec in args.limit),
            max_slippage=args.max_slippage,
            limit_price_guard=args.limit_price_guard,
        )
    except InvalidRequest as exc:
        parser.error(exc.message)


def _print_limits(key_id: uuid.UUID, pool: Pool) -> None:
    report = limits.report(pool, key_id)
    print(f"max slippage  {report['maxSlippage']} %")
    print(f"price guard   {report['limitPriceGuard']} % below the quote")
    for m in report["mints"]:
        print(
            f"sells {m['token']}: {m['maxIn']} per order, {m['maxInPer24h']} per 24 h"
            f" ({m['remainingIn24h']} left)"
        )
    for p in report["positions"]:
        print(f"may sell {p['remaining']} {p['token']} its fills bought")


def close_sockets(key_id: uuid.UUID, *, pool: Pool) -> tuple[int, int]:
    """Close a revoked key's open WebSocket connections through the management API (each
    connection row knows its endpoint; WS_MANAGEMENT_ENDPOINT overrides it), each after the
    frames it is owed (its orders' cancellations): (closed, failed). Any a failure leaves open
    are closed at their next delivery or frame, which check the key."""
    from engine.notify import Fanout  # boto3: only for this command

    return Fanout.from_settings(pool, Settings.from_env()).close_key(key_id)


if __name__ == "__main__":
    sys.exit(main())
