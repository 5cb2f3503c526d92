"""The pool cache in Postgres: which pools of the supported venues trade which pair.

Discovery (`execution.discovery`, which talks to the chain) fills it; routing an already
discovered pair reads its pool list from here (or the container's memory), so the one RPC round
trip of a quote goes to the quote itself. The submit path reads it too, without any chain: an
order pinned (`poolId`) to an address the cache knows is not a pool of the order's pair is
refused at once (`UnknownPool`).

Entries belong to an RPC endpoint (`endpoint_id`): an address is a pool on one cluster only.
A pool never changes its mints, vaults or config, so what is cached about an address stays true;
only the pair's list (new pools) and the reserves (depth, for the cap) age, and discovery
refreshes both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from psycopg import Connection
from psycopg.rows import DictRow

from engine.config import PoolConfig
from engine.db import Pool
from engine.errors import InvalidRequest, UnknownPool
from engine.observability import traced


def endpoint_id(rpc_url: str) -> str:
    """The cache's name for an RPC endpoint: a hash of its URL (which may carry a provider's
    key, so it is never stored as such)."""
    return hashlib.sha256(rpc_url.strip().rstrip("/").encode()).hexdigest()[:16]


def pair_key(mint_1: str, mint_2: str) -> tuple[str, str]:
    """A pair's two mints in text order: one key whichever side is sold."""
    return (mint_1, mint_2) if mint_1 < mint_2 else (mint_2, mint_1)


@dataclass(frozen=True)
class CachedPool:
    """A pool as the cache knows it: its venue, its mints in its own order, what each side held
    when last read (base units) and the other accounts its quote reads."""

    address: str
    venue: str
    mint_a: str
    mint_b: str
    reserve_a: int = 0
    reserve_b: int = 0
    depends_on: tuple[str, ...] = ()
    refreshed_at: datetime | None = None

    def trades(self, mint_1: str, mint_2: str) -> bool:
        return pair_key(self.mint_a, self.mint_b) == pair_key(mint_1, mint_2)

    def reserve_of(self, mint: str) -> int:
        """What the pool held of `mint` when last read (0 for a mint it does not trade)."""
        if mint == self.mint_a:
            return self.reserve_a
        return self.reserve_b if mint == self.mint_b else 0

    def to_config(self) -> PoolConfig:
        return PoolConfig(self.venue, self.address, self.depends_on)


@dataclass(frozen=True)
class NotAPool:
    """An address that was read and is no pool of a supported venue (`reason` says what)."""

    address: str
    reason: str


@dataclass(frozen=True)
class PairPools:
    """A pair's pools as discovery last listed them, and when."""

    pools: tuple[CachedPool, ...]
    refreshed_at: datetime


Known = CachedPool | NotAPool


class PoolCache:
    """Reads and writes the cache tables (migration 004_pools.sql)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @traced("postgres pair_pools")
    def pair(self, endpoint: str, mint_1: str, mint_2: str) -> PairPools | None:
        """The pair's pools as last discovered on `endpoint`, or None if never discovered."""
        mint_x, mint_y = pair_key(mint_1, mint_2)
        with self.pool.connection() as conn:
            listed = conn.execute(
                "SELECT refreshed_at FROM pool_pairs"
                " WHERE endpoint = %s AND mint_x = %s AND mint_y = %s",
                (endpoint, mint_x, mint_y),
            ).fetchone()
            if listed is None:
                return None
            rows = conn.execute(
                "SELECT * FROM pools WHERE endpoint = %s"
                " AND LEAST(mint_a, mint_b) = %s AND GREATEST(mint_a, mint_b) = %s",
                (endpoint, mint_x, mint_y),
            ).fetchall()
        return PairPools(tuple(_cached(r) for r in rows), listed["refreshed_at"])

    @traced("postgres pools_of_pair")
    def of_pair(self, endpoint: str, mint_1: str, mint_2: str) -> list[CachedPool]:
        """Every pool of the pair the cache knows on `endpoint`, however it learnt it
        (discovery, VENUE_POOLS, a pinned pool): what submit quotes a limit order on."""
        mint_x, mint_y = pair_key(mint_1, mint_2)
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM pools WHERE endpoint = %s"
                " AND LEAST(mint_a, mint_b) = %s AND GREATEST(mint_a, mint_b) = %s",
                (endpoint, mint_x, mint_y),
            ).fetchall()
        return [_cached(r) for r in rows]

    @traced("postgres save_pair_pools")
    def save_pair(
        self, endpoint: str, mint_1: str, mint_2: str, pools: Sequence[CachedPool], at: datetime
    ) -> None:
        """Record what a discovery of the pair found at `at`: these pools (new ones added, known
        ones refreshed) and no others (a pool no longer found is gone from the list)."""
        mint_x, mint_y = pair_key(mint_1, mint_2)
        if any(not p.trades(mint_x, mint_y) for p in pools):
            raise ValueError("every pool saved for a pair must trade that pair")
        with self.pool.connection() as conn, conn.transaction():
            _upsert(conn, endpoint, pools, at)
            conn.execute(
                "DELETE FROM pools WHERE endpoint = %s"
                " AND LEAST(mint_a, mint_b) = %s AND GREATEST(mint_a, mint_b) = %s"
                " AND NOT (address = ANY(%s))",
                (endpoint, mint_x, mint_y, [p.address for p in pools]),
            )
            conn.execute(
                "INSERT INTO pool_pairs (endpoint, mint_x, mint_y, refreshed_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (endpoint, mint_x, mint_y)"
                " DO UPDATE SET refreshed_at = EXCLUDED.refreshed_at",
                (endpoint, mint_x, mint_y, at),
            )

    @traced("postgres known_pools")
    def known(self, endpoint: str, addresses: Sequence[str]) -> dict[str, Known]:
        """What the cache knows of each address on `endpoint` (unknown ones are left out)."""
        if not addresses:
            return {}
        with self.pool.connection() as conn:
            pools = conn.execute(
                "SELECT * FROM pools WHERE endpoint = %s AND address = ANY(%s)",
                (endpoint, list(addresses)),
            ).fetchall()
            others = conn.execute(
                "SELECT address, reason FROM not_pools WHERE endpoint = %s AND address = ANY(%s)",
                (endpoint, list(addresses)),
            ).fetchall()
        found: dict[str, Known] = {
            r["address"]: NotAPool(r["address"], r["reason"]) for r in others
        }
        found.update({r["address"]: _cached(r) for r in pools})
        return found

    @traced("postgres remember_pools")
    def remember(self, endpoint: str, known: Iterable[Known], at: datetime) -> None:
        """Record pools and non-pools read one by one (a pinned pool, VENUE_POOLS' pools)."""
        items = list(known)
        pools = [k for k in items if isinstance(k, CachedPool)]
        others = [k for k in items if isinstance(k, NotAPool)]
        with self.pool.connection() as conn, conn.transaction():
            _upsert(conn, endpoint, pools, at)
            for other in others:
                conn.execute(
                    "INSERT INTO not_pools (endpoint, address, reason, seen_at)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (endpoint, address)"
                    " DO UPDATE SET reason = EXCLUDED.reason, seen_at = EXCLUDED.seen_at",
                    (endpoint, other.address, other.reason[:500], at),
                )

    @traced("postgres check_mints")
    def check_not_pools(self, mints: dict[str, str]) -> None:
        """Raise InvalidRequest on the field (`mints`: field -> address) whose address the
        cache knows as a pool, on any endpoint: a pool's account is no mint. An address it does
        not know passes (routing reads the mint from the chain)."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT address, venue FROM pools WHERE address = ANY(%s)",
                (list(mints.values()),),
            ).fetchall()
        pools = {r["address"]: r["venue"] for r in rows}
        for field, address in mints.items():
            if address in pools:
                raise InvalidRequest(
                    f"{field} is a {pools[address]} pool's address, not a token mint", field=field
                )

    @traced("postgres check_pinned_pool")
    def check_pin(self, address: str, mint_in: str, mint_out: str) -> None:
        """Raise UnknownPool (field `poolId`) when the cache already knows `address` is not a
        pool of the pair, on any endpoint it has seen (an address is a pool on one cluster at
        most); an address it does not know passes: routing reads it from the chain."""
        with self.pool.connection() as conn:
            pools = conn.execute("SELECT * FROM pools WHERE address = %s", (address,)).fetchall()
            other = conn.execute(
                "SELECT reason FROM not_pools WHERE address = %s LIMIT 1", (address,)
            ).fetchone()
        cached = [_cached(r) for r in pools]
        if any(p.trades(mint_in, mint_out) for p in cached):
            return
        if cached:
            pool = cached[0]
            raise UnknownPool(
                f"pool {address} trades {pool.mint_a}/{pool.mint_b}, not this order's pair",
                field="poolId",
            )
        if other is not None:
            raise UnknownPool(
                f"{address} is not a pool of a supported venue: {other['reason']}",
                field="poolId",
            )


def _cached(r: DictRow) -> CachedPool:
    return CachedPool(
        address=r["address"],
        venue=r["venue"],
        mint_a=r["mint_a"],
        mint_b=r["mint_b"],
        reserve_a=int(Decimal(r["reserve_a"])),
        reserve_b=int(Decimal(r["reserve_b"])),
        depends_on=tuple(r["depends_on"] or ()),
        refreshed_at=r["refreshed_at"],
    )


def _upsert(
    conn: Connection[DictRow], endpoint: str, pools: Sequence[CachedPool], at: datetime
) -> None:
    # In address order: concurrent refreshes of one pair then lock its rows in the same order.
    for p in sorted(pools, key=lambda p: p.address):
        conn.execute(
            """INSERT INTO pools (endpoint, address, venue, mint_a, mint_b, reserve_a, reserve_b,
                 depends_on, found_at, refreshed_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (endpoint, address) DO UPDATE SET
                 venue = EXCLUDED.venue, mint_a = EXCLUDED.mint_a, mint_b = EXCLUDED.mint_b,
                 reserve_a = EXCLUDED.reserve_a, reserve_b = EXCLUDED.reserve_b,
                 depends_on = EXCLUDED.depends_on, refreshed_at = EXCLUDED.refreshed_at""",
            (
                endpoint,
                p.address,
                p.venue,
                p.mint_a,
                p.mint_b,
                p.reserve_a,
                p.reserve_b,
                list(p.depends_on),
                at,
                at,
            ),
        )


# -- new pools, for sniper orders (migration 020) -------------------------------------------------


@dataclass(frozen=True)
class PoolBirth:
    """A pool the watcher has seen for a pair sniper orders watch, and the transaction that
    created it (`created_slot` None: no creation transaction could be found, so it is old)."""

    address: str
    venue: str
    mint_a: str
    mint_b: str
    seen_slot: int
    depends_on: tuple[str, ...] = ()
    created_slot: int | None = None
    creation_signature: str | None = None

    def trades(self, mint_1: str, mint_2: str) -> bool:
        return pair_key(self.mint_a, self.mint_b) == pair_key(mint_1, mint_2)

    def to_config(self) -> PoolConfig:
        return PoolConfig(self.venue, self.address, self.depends_on)

    def seen_at(self, slot: int) -> PoolBirth:
        return replace(self, seen_slot=slot)


class PoolBirths:
    """Reads and writes `pool_births` and `watch_cursors` (migration 020)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @traced("postgres pool_births")
    def of_pairs(self, endpoint: str, pairs: Iterable[tuple[str, str]]) -> list[PoolBirth]:
        """Every pool seen for these pairs (each a `pair_key`) on `endpoint`."""
        keys = sorted(set(pairs))
        if not keys:
            return []
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM pool_births WHERE endpoint = %s"
                " AND (LEAST(mint_a, mint_b), GREATEST(mint_a, mint_b)) IN"
                " (SELECT * FROM unnest(%s::text[], %s::text[]))",
                (endpoint, [k[0] for k in keys], [k[1] for k in keys]),
            ).fetchall()
        return [_birth(r) for r in rows]

    @traced("postgres record_pool_births")
    def record(self, endpoint: str, births: Sequence[PoolBirth]) -> None:
        """Remember pools first seen now (a pool already recorded keeps its first record)."""
        with self.pool.connection() as conn, conn.transaction():
            for b in sorted(births, key=lambda b: b.address):
                conn.execute(
                    """INSERT INTO pool_births (endpoint, address, venue, mint_a, mint_b,
                         depends_on, created_slot, creation_signature, seen_slot)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                       ON CONFLICT (endpoint, address) DO NOTHING""",
                    (
                        endpoint,
                        b.address,
                        b.venue,
                        b.mint_a,
                        b.mint_b,
                        list(b.depends_on),
                        b.created_slot,
                        b.creation_signature,
                        b.seen_slot,
                    ),
                )

    def cursor(self, endpoint: str, program: str) -> tuple[str, int] | None:
        """The newest signature of `program` already read (signature, slot), if any."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT signature, slot FROM watch_cursors WHERE endpoint = %s AND program = %s",
                (endpoint, program),
            ).fetchone()
        return (row["signature"], int(row["slot"])) if row else None

    def save_cursor(self, endpoint: str, program: str, signature: str, slot: int) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                """INSERT INTO watch_cursors (endpoint, program, signature, slot)
                   VALUES (%s, %s, %s, %s) ON CONFLICT (endpoint, program) DO UPDATE SET
                     signature = EXCLUDED.signature, slot = EXCLUDED.slot, updated_at = now()
                   WHERE watch_cursors.slot <= EXCLUDED.slot""",
                (endpoint, program, signature, slot),
            )


def _birth(r: DictRow) -> PoolBirth:
    return PoolBirth(
        address=r["address"],
        venue=r["venue"],
        mint_a=r["mint_a"],
        mint_b=r["mint_b"],
        seen_slot=int(r["seen_slot"]),
        depends_on=tuple(r["depends_on"] or ()),
        created_slot=None if r["created_slot"] is None else int(r["created_slot"]),
        creation_signature=r["creation_signature"],
    )
