"""New pools of the pairs sniper orders watch, and the transaction that created each.

- Found from each venue program's pool-creating transactions: the pool-creating instructions
  (Raydium CPMM `initialize`, pool at account 3; Meteora DAMM v2 `initialize_pool`, pool at 6,
  or `initialize_customizable_pool`, pool at 5) are matched against every watched pair at once.
  Which transactions: where the RPC serves `logsSubscribe` (`execution.creation_feed`), only
  those whose logs show a pool-creating instruction are read (getTransaction), so a tick's RPC
  calls grow neither with sniper orders nor with the programs' swaps; the programs' signatures
  since a cursor kept in Postgres (`watch_cursors`: one getSignaturesForAddress(program,
  until=cursor) per program, then getTransaction for every new transaction that did not fail)
  are read only to fill the gap before each subscription, or every tick where the RPC has no
  logsSubscribe. Either way a tick's cost never follows the number of sniper orders or pairs
  watched (issue 25: each watched pair cost 4 getProgramAccounts per tick before, and 100
  sniper orders of one key made every user's limit orders seconds late). The transaction that
  creates a pool gives its `created_slot`.
- Every pool seen is remembered (`pool_births`).

A sniper order counts a pool only if `created_slot` is at or after the slot the order was
accepted at (`watch_from_slot`): pools that existed before it do not count.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aws_lambda_powertools import Logger
from solders.pubkey import Pubkey
from solders.signature import Signature

from engine import observability
from engine.config import Settings
from engine.metrics import Metric
from engine.pools import PoolBirth, PoolBirths, pair_key
from execution.chain import Chain, LandedTransaction, SignatureInfo
from execution.creation_feed import CreationFeed, ws_url
from execution.discovery import FoundPool, read_pools, venue_of, venue_programs

logger = Logger(child=True)
SIGNATURE_PAGE = 1000  # getSignaturesForAddress' largest page
CURSOR_PAGES = 5  # pages of a program's signatures read back at most per tick
TRANSACTION_READS = 16  # getTransaction calls in flight at once


def _anchor(name: str) -> bytes:
    return hashlib.sha256(f"global:{name}".encode()).digest()[:8]


@dataclass(frozen=True)
class Initializer:
    """Where a pool-creating instruction names the pool and its two mints."""

    venue: str
    pool_index: int
    mint_indexes: tuple[int, int]


# From the programs' instruction account lists (raydium-cp-swap `initialize`, damm-v2
# `initialize_pool` / `initialize_customizable_pool`; local/pools.py builds them the same way).
INITIALIZER_NAMES: dict[str, Initializer] = {
    "initialize": Initializer("raydium_cpmm", 3, (4, 5)),
    "initialize_pool": Initializer("meteora_damm_v2", 6, (8, 9)),
    "initialize_customizable_pool": Initializer("meteora_damm_v2", 5, (7, 8)),
}
INITIALIZERS: dict[bytes, Initializer] = {_anchor(n): i for n, i in INITIALIZER_NAMES.items()}


def creation_feed(cfg: Settings) -> CreationFeed:
    """The container's logsSubscribe feed of the venue programs' pool creations, at the RPC
    URL's WebSocket (the instruction names as Anchor logs them: `InitializePool`)."""
    programs = {
        program: {
            name.title().replace("_", "")
            for name, init in INITIALIZER_NAMES.items()
            if init.venue == venue
        }
        for venue, program in venue_programs(cfg.solana_cluster)
    }
    return CreationFeed(ws_url(cfg.solana_rpc_url), programs)


@dataclass(frozen=True)
class Creation:
    """A pool a landed transaction created."""

    venue: str
    pool: Pubkey
    mints: tuple[Pubkey, Pubkey]


def creations(tx: LandedTransaction) -> list[Creation]:
    """The pools `tx` created (none if it failed), from its top-level instructions."""
    if tx.failed:
        return []
    found = []
    for ix in tx.transaction.message.instructions:
        accounts = bytes(ix.accounts)
        if ix.program_id_index >= len(tx.keys):
            continue
        program = tx.keys[ix.program_id_index]
        init = INITIALIZERS.get(bytes(ix.data)[:8])
        if init is None or venue_of(program) != init.venue:
            continue
        wanted = (init.pool_index, *init.mint_indexes)
        if max(wanted) >= len(accounts) or any(accounts[i] >= len(tx.keys) for i in wanted):
            continue
        pool, mint_a, mint_b = (tx.keys[accounts[i]] for i in wanted)
        found.append(Creation(init.venue, pool, (mint_a, mint_b)))
    return found


class LaunchWatch:
    """Per container: the new pools of watched pairs, as the chain and `pool_births` know them."""

    def __init__(
        self,
        chain: Chain,
        births: PoolBirths,
        cfg: Settings,
        endpoint: str,
        feed: CreationFeed | None = None,
    ) -> None:
        self.chain = chain
        self.births = births
        self.cfg = cfg
        self.endpoint = endpoint
        self.feed = feed
        self._synced: dict[str, int] = {}  # program -> the feed epoch whose gap was read
        self._unread: dict[str, list[tuple[Signature, int]]] = {}  # the node had not got it yet

    async def find(
        self, pairs: Iterable[tuple[str, str]], since_slot: int
    ) -> tuple[list[PoolBirth], list[PoolBirth]]:
        """The pools of these pairs already seen, and those found now (with their creation
        read; `seen_slot` 0 until `remember` records them at the slot they were seen).
        `since_slot`: where a signature scan starts when there is no cursor yet (the oldest
        watching sniper order's slot). Raises TransientChainError."""
        wanted = {pair_key(*p) for p in pairs}
        if not wanted:
            return [], []
        known = self.births.of_pairs(self.endpoint, wanted)
        seen = {b.address for b in known}
        return known, await self._by_signatures(wanted, seen, since_slot)

    def remember(self, births: Sequence[PoolBirth], slot: int) -> None:
        """Record pools found now, seen at `slot`."""
        self.births.record(self.endpoint, [b.seen_at(slot) for b in births])
        observability.count(Metric.NEW_POOLS_SEEN, len(births))
        logger.info("pools seen", extra={"pools": [b.address for b in births], "slot": slot})

    async def _by_signatures(
        self, pairs: set[tuple[str, str]], known: set[str], since_slot: int
    ) -> list[PoolBirth]:
        """New pools of `pairs` from each venue program's transactions since its cursor."""
        made: list[Creation] = []
        made_at: dict[Pubkey, tuple[int, str]] = {}
        for _venue, program in venue_programs(self.cfg.solana_cluster):
            for sig, tx in await self._program_transactions(program, since_slot):
                for creation in creations(tx):
                    made.append(creation)
                    made_at[creation.pool] = (tx.slot, str(sig))
        wanted = [
            c
            for c in made
            if pair_key(str(c.mints[0]), str(c.mints[1])) in pairs and str(c.pool) not in known
        ]
        if not wanted:
            return []
        pools, _others, _absent = await read_pools(self.chain, [str(c.pool) for c in wanted])
        return [_born(pool, *made_at[pool.address]) for pool in pools]

    async def _program_transactions(
        self, program: Pubkey, since_slot: int
    ) -> list[tuple[Signature, LandedTransaction]]:
        """The program's landed transactions that may have created a pool since the last tick:
        from the feed once it is live and its gap was read, else every transaction since the
        cursor. Oldest first."""
        feed = self.feed
        if feed is None:
            return await self._since_cursor(program, since_slot)
        feed.start()
        if feed.live and self._synced.get(str(program)) == feed.epoch:
            return await self._from_feed(feed, program)
        epoch, live = feed.epoch, feed.live
        if live:
            feed.take(program)  # what it saw so far: the signature read below covers it
        found = await self._since_cursor(program, since_slot)
        if live:
            self._synced[str(program)] = epoch
        return found

    async def _from_feed(
        self, feed: CreationFeed, program: Pubkey
    ) -> list[tuple[Signature, LandedTransaction]]:
        """getTransaction for the pool-creating transactions the feed saw, and no other; the
        cursor moves to the newest transaction it saw (a later gap is read from there)."""
        creating, newest = feed.take(program)
        wanted = [*self._unread.pop(str(program), []), *creating]
        txs = await self._read_all([sig for sig, _ in wanted])
        unread = [w for w, tx in zip(wanted, txs, strict=True) if tx is None]
        if unread:
            self._unread[str(program)] = unread
        if newest is not None:
            self.births.save_cursor(self.endpoint, str(program), str(newest[0]), newest[1])
        return [(sig, tx) for (sig, _), tx in zip(wanted, txs, strict=True) if tx is not None]

    async def _read_all(self, signatures: Sequence[Signature]) -> list[LandedTransaction | None]:
        gate = asyncio.Semaphore(TRANSACTION_READS)

        async def read(sig: Signature) -> LandedTransaction | None:
            async with gate:
                return await self.chain.transaction(sig)

        return list(await asyncio.gather(*(read(s) for s in signatures)))

    async def _since_cursor(
        self, program: Pubkey, since_slot: int
    ) -> list[tuple[Signature, LandedTransaction]]:
        """The program's landed transactions after its cursor (without one: from `since_slot`),
        oldest first; the cursor moves to the newest read."""
        cursor = self.births.cursor(self.endpoint, str(program))
        until = Signature.from_string(cursor[0]) if cursor else None
        picked: list[SignatureInfo] = []
        before = None
        for _ in range(CURSOR_PAGES):
            page = await self.chain.signatures(
                program, before=before, until=until, limit=SIGNATURE_PAGE
            )
            recent = page if cursor else [s for s in page if s.slot >= since_slot]
            picked += recent
            if len(page) < SIGNATURE_PAGE or len(recent) < len(page):
                break
            before = page[-1].signature
        newest = picked[0] if picked else None
        picked = [s for s in picked if not s.failed]  # a failed transaction created nothing
        if newest is None:
            return []
        txs = await self._read_all([s.signature for s in picked])
        found = [(s.signature, tx) for s, tx in zip(picked, txs, strict=True) if tx is not None]
        self.births.save_cursor(self.endpoint, str(program), str(newest.signature), newest.slot)
        return list(reversed(found))


def counting(births: Sequence[PoolBirth], since_slot: int | None) -> list[PoolBirth]:
    """The pools that are new to an order accepted at `since_slot`: created at or after it."""
    if since_slot is None:
        return []
    return [b for b in births if b.created_slot is not None and b.created_slot >= since_slot]


def _born(pool: FoundPool, created_slot: int | None, signature: str | None) -> PoolBirth:
    """A pool found on chain, not yet seen by a tick, with the transaction that created it."""
    mint_a, mint_b = pool.mints
    return PoolBirth(
        address=str(pool.address),
        venue=pool.venue,
        mint_a=str(mint_a),
        mint_b=str(mint_b),
        seen_slot=0,
        depends_on=tuple(str(k) for k in pool.depends_on),
        created_slot=created_slot,
        creation_signature=signature,
    )
