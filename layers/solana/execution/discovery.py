"""Pool discovery: which pools of the supported venues trade a pair, found on the chain itself,
so nobody has to know pool addresses in advance (a devnet user cannot).

- `find_pools(chain, mint_1, mint_2, cluster)`: a pair in, its pools out. One getProgramAccounts
  per venue program and mint order, filtered on the node by the pool account's size and the two
  mint fields (`dataSize` + two `memcmp`), so only the pair's pools travel: 4 calls, made
  concurrently. Reusable as is by anything that looks for new pools of a pair (the watcher).
- `read_pools(chain, addresses)`: what each address is (a pool of which venue and pair, or not a
  pool), for a pool an order pins and for VENUE_POOLS.
- `measure(chain, found)`: each pool's reserves (its depth), reading the vaults a CPMM pool keeps
  its tokens in (a DAMM v2 pool carries its amounts in its own account).
- `PoolCatalog`: per container, the pools an order may be routed over, from memory, else the
  pool cache in Postgres (`engine.pools`), else discovery; with the operator's policy applied:
  VENUE_POOLS as an allow-list, POOL_DENY_LIST, MAX_POOLS_PER_PAIR (the deepest first). The
  liquidity floor (MIN_POOL_LIQUIDITY) is applied by the router on the reserves it reads live.

A pair already discovered costs no RPC call here until its list is older than
POOL_REFRESH_SECONDS; its quote is then the router's one getMultipleAccounts.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from solders.account import Account
from solders.pubkey import Pubkey

from engine import observability
from engine.config import PoolConfig, Settings
from engine.db import Pool
from engine.errors import PermanentChainError, RpcMethodRefused, TransientChainError
from engine.metrics import Metric
from engine.pools import CachedPool, Known, NotAPool, PairPools, PoolCache, endpoint_id, pair_key
from execution.chain import Chain
from execution.venues import VENUES, VenueError
from execution.venues import meteora_damm_v2 as damm
from execution.venues import raydium_cpmm as cpmm

logger = Logger(child=True)
MAX_KEYS_PER_READ = 100  # getMultipleAccounts' limit


@dataclass(frozen=True)
class PoolLayout:
    """Where a venue's pool account keeps its two mints, and how long the account is: what a
    getProgramAccounts filter matches on."""

    venue: str
    size: int
    mint_offsets: tuple[int, int]


LAYOUTS = {
    "raydium_cpmm": PoolLayout(
        "raydium_cpmm",
        cpmm.POOL_STATE_LEN,
        (cpmm.TOKEN_0_MINT_OFFSET, cpmm.TOKEN_1_MINT_OFFSET),
    ),
    "meteora_damm_v2": PoolLayout(
        "meteora_damm_v2",
        damm.POOL_LEN,
        (damm.TOKEN_A_MINT_OFFSET, damm.TOKEN_B_MINT_OFFSET),
    ),
}
PROGRAM_IDS: dict[str, tuple[Pubkey, ...]] = {
    "raydium_cpmm": cpmm.PROGRAM_IDS,
    "meteora_damm_v2": damm.PROGRAM_IDS,
}


def venue_programs(cluster: str) -> list[tuple[str, Pubkey]]:
    """The program of each venue to search on `cluster`. Raydium deploys CPMM at one address on
    mainnet and another on devnet and testnet; a custom cluster (the local chain, a test
    validator) runs the mainnet binary at its mainnet id. Meteora's DAMM v2 has one address
    everywhere."""
    on_mainnet_id = cluster in ("mainnet-beta", "custom")
    cpmm_program = cpmm.PROGRAM_IDS[0] if on_mainnet_id else cpmm.PROGRAM_IDS[1]
    return [("raydium_cpmm", cpmm_program), ("meteora_damm_v2", damm.PROGRAM_IDS[0])]


def venue_of(owner: Pubkey) -> str | None:
    """The venue whose program owns an account, if any."""
    return next((v for v, ids in PROGRAM_IDS.items() if owner in ids), None)


@dataclass(frozen=True)
class FoundPool:
    """A pool read from the chain: its venue, address, decoded state and raw data."""

    venue: str
    address: Pubkey
    state: Any  # the venue's own pool state (execution.venues.*.PoolState)
    data: bytes

    @property
    def mints(self) -> tuple[Pubkey, Pubkey]:
        return VENUES[self.venue].pool_mints(self.state)

    @property
    def depends_on(self) -> list[Pubkey]:
        return VENUES[self.venue].dependent_accounts(self.state)


def decode_pool(address: Pubkey, account: Account) -> FoundPool:
    """The pool at `address`; VenueError when the account is no pool of a supported venue."""
    venue = venue_of(account.owner)
    if venue is None:
        raise VenueError(f"owned by {account.owner}, not by a supported venue's program")
    data = bytes(account.data)
    return FoundPool(venue, address, VENUES[venue].decode_pool(data, account.owner, address), data)


async def find_pools(chain: Chain, mint_1: Pubkey, mint_2: Pubkey, cluster: str) -> list[FoundPool]:
    """Every pool of each supported venue that trades the two mints, on `cluster` (which names
    the venues' program ids: `venue_programs`). Both mint orders are asked for: a pool lists its
    mints in its own order. The calls run concurrently.

    Raises RpcMethodRefused (the endpoint does not serve getProgramAccounts) or
    TransientChainError (after the in-place retries)."""
    searches = [
        (venue, program, first, second)
        for venue, program in venue_programs(cluster)
        for first, second in ((mint_1, mint_2), (mint_2, mint_1))
    ]
    # Every call ends before this returns (none is left running after a failure); the first
    # failure, a refusal first, is what the caller gets.
    results = await asyncio.gather(
        *(
            chain.program_accounts(
                program,
                data_size=LAYOUTS[venue].size,
                memcmp=list(zip(LAYOUTS[venue].mint_offsets, (first, second), strict=True)),
            )
            for venue, program, first, second in searches
        ),
        return_exceptions=True,
    )
    pages: list[tuple[str, list[tuple[Pubkey, Account]]]] = []
    failures: list[BaseException] = []
    for (venue, _program, _first, _second), result in zip(searches, results, strict=True):
        if isinstance(result, BaseException):
            failures.append(result)
        else:
            pages.append((venue, result))
    if failures:
        refused = [f for f in failures if isinstance(f, RpcMethodRefused)]
        raise (refused or failures)[0]
    found: dict[Pubkey, FoundPool] = {}
    for venue, accounts in pages:
        for address, account in accounts:
            try:
                pool = decode_pool(address, account)
            except VenueError as exc:  # the right size and mints, but not a pool account
                logger.info("not a pool", extra={"pool": str(address), "reason": str(exc)})
                continue
            if pool.venue == venue and set(pool.mints) == {mint_1, mint_2}:
                found[address] = pool
    return list(found.values())


async def read_pools(
    chain: Chain, addresses: Sequence[str]
) -> tuple[list[FoundPool], list[NotAPool], list[str]]:
    """What each address holds: (pools, accounts that are no pool of a supported venue,
    addresses with no account). One getMultipleAccounts per 100 addresses."""
    keys = [Pubkey.from_string(a) for a in addresses]
    accounts: dict[Pubkey, Account | None] = {}
    for start in range(0, len(keys), MAX_KEYS_PER_READ):
        accounts.update(await chain.accounts(keys[start : start + MAX_KEYS_PER_READ]))
    pools: list[FoundPool] = []
    others: list[NotAPool] = []
    absent: list[str] = []
    for key in keys:
        account = accounts.get(key)
        if account is None:
            absent.append(str(key))
            continue
        try:
            pools.append(decode_pool(key, account))
        except VenueError as exc:
            others.append(NotAPool(str(key), str(exc)))
    return pools, others, absent


def pool_reserves(venue: str, state: Any, data: dict[Pubkey, bytes]) -> dict[Pubkey, int]:
    """What the pool's curve holds of each mint, in base units: a CPMM pool's vault balances
    less the protocol, fund and creator fees owed (`data` holds the vaults); a DAMM v2 pool's own
    token amounts (from its curve on a layout-0 pool), as its swap reads them. A side that
    cannot be read counts as 0."""
    if venue == "raydium_cpmm":
        amounts = []
        for index, vault in enumerate((state.token_0_vault, state.token_1_vault)):
            try:
                held = cpmm.token_account_amount(data[vault])
            except (KeyError, VenueError):  # not read, or not a token account
                held = 0
            amounts.append(max(held - state.fees_owed(index), 0))
        return {state.token_0_mint: amounts[0], state.token_1_mint: amounts[1]}
    try:
        amount_a, amount_b = damm.reserves_for_layout(state)
    except damm.ProgramFailure:
        amount_a = amount_b = 0
    return {state.token_a_mint: amount_a, state.token_b_mint: amount_b}


async def measure(chain: Chain, found: Sequence[FoundPool], at: datetime) -> list[CachedPool]:
    """The pools as the cache keeps them, with their reserves now (one getMultipleAccounts per
    100 accounts the pools depend on; none for DAMM v2 pools)."""
    needed = list(dict.fromkeys(k for pool in found for k in pool.depends_on))
    data: dict[Pubkey, bytes] = {}
    for start in range(0, len(needed), MAX_KEYS_PER_READ):
        read = await chain.accounts(needed[start : start + MAX_KEYS_PER_READ])
        data.update({k: bytes(a.data) for k, a in read.items() if a is not None})
    measured = []
    for pool in found:
        mint_a, mint_b = pool.mints
        reserves = pool_reserves(pool.venue, pool.state, data)
        measured.append(
            CachedPool(
                address=str(pool.address),
                venue=pool.venue,
                mint_a=str(mint_a),
                mint_b=str(mint_b),
                reserve_a=reserves[mint_a],
                reserve_b=reserves[mint_b],
                depends_on=tuple(str(k) for k in pool.depends_on),
                refreshed_at=at,
            )
        )
    return measured


def _unknown_pool(message: str) -> PermanentChainError:
    return PermanentChainError(message, "unknown_pool")


def _no_route(message: str) -> PermanentChainError:
    return PermanentChainError(message, "no_route")


@dataclass
class PoolCatalog:
    """The pools an order may be routed over, for one container (memory) over the pool cache
    (Postgres) over the chain (discovery).

    - Pinned (`poolId`): that pool only, once it is known to be a pool of the order's pair
      (else `unknown_pool`); VENUE_POOLS and POOL_DENY_LIST still apply (else `no_route`),
      except that a sniper order's new pool (`unlisted_ok`) may be outside VENUE_POOLS.
    - VENUE_POOLS set: the listed pools of the pair (an allow-list; no getProgramAccounts, so it
      also serves RPC providers that refuse that method).
    - Otherwise discovery: the pair's pools as last found, found again once older than
      POOL_REFRESH_SECONDS. A provider that refuses getProgramAccounts is logged and counted
      (`DiscoveryRefused`) and the order fails `no_route`, saying to set VENUE_POOLS; a
      transient failure falls back to the pair's older list when there is one.
    Then POOL_DENY_LIST is taken out and at most MAX_POOLS_PER_PAIR remain, the deepest in the
    output token first."""

    chain: Chain
    cache: PoolCache
    cfg: Settings
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    endpoint: str = ""
    _pairs: dict[tuple[str, str], PairPools] = field(default_factory=dict)
    _known: dict[str, Known] = field(default_factory=dict)
    _refused_until: datetime | None = None

    def __post_init__(self) -> None:
        self.endpoint = self.endpoint or endpoint_id(self.cfg.solana_rpc_url)

    async def pools_for(
        self,
        mint_in: str,
        mint_out: str,
        pinned: str | None = None,
        *,
        unlisted_ok: bool = False,
    ) -> list[PoolConfig]:
        """The pools to quote for an order selling `mint_in` for `mint_out` (none when no pool
        trades the pair: the router then tells a missing mint from a pair without pools).
        `unlisted_ok`: the pinned pool may be outside VENUE_POOLS (a sniper's new pool).

        Raises PermanentChainError (`unknown_pool`, `no_route`) or TransientChainError."""
        if pinned is not None:
            return [(await self._pinned(pinned, mint_in, mint_out, unlisted_ok)).to_config()]
        if self.cfg.pools:
            candidates = await self._allowed(mint_in, mint_out)
        else:
            candidates = await self._discovered(mint_in, mint_out)
        if not candidates:
            return []  # the router says why: a mint that does not exist, or no pool of the pair
        allowed = [p for p in candidates if p.address not in self.cfg.pool_deny_list]
        if not allowed:
            raise _no_route(
                f"every pool of {mint_in}/{mint_out} found is on this engine's POOL_DENY_LIST"
            )
        deepest = sorted(allowed, key=lambda p: p.reserve_of(mint_out), reverse=True)
        chosen = deepest[: self.cfg.max_pools_per_pair]
        if len(deepest) > len(chosen):
            logger.info(
                "pools over the cap not quoted",
                extra={"quoted": len(chosen), "found": len(deepest)},
            )
        return [p.to_config() for p in chosen]

    # -- pinned pools and VENUE_POOLS -----------------------------------------------------------

    async def _pinned(
        self, address: str, mint_in: str, mint_out: str, unlisted_ok: bool = False
    ) -> CachedPool:
        if address in self.cfg.pool_deny_list:
            raise _no_route(f"pool {address} is on this engine's POOL_DENY_LIST")
        listed = {p.address for p in self.cfg.pools}
        if self.cfg.pools and not unlisted_ok and address not in listed:
            raise _no_route(
                f"pool {address} is not in VENUE_POOLS, the only pools this engine trades"
            )
        known = (await self._resolve([address], fresh=False)).get(address)
        if known is None:
            raise _unknown_pool(f"there is no account at {address} on this cluster")
        if isinstance(known, NotAPool):
            raise _unknown_pool(f"{address} is not a pool of a supported venue: {known.reason}")
        if not known.trades(mint_in, mint_out):
            raise _unknown_pool(
                f"pool {address} trades {known.mint_a}/{known.mint_b}, not {mint_in}/{mint_out}"
            )
        return known

    async def _allowed(self, mint_in: str, mint_out: str) -> list[CachedPool]:
        addresses = [p.address for p in self.cfg.pools]
        known = await self._resolve(addresses, fresh=True)
        pools = []
        for listed in self.cfg.pools:
            entry = known.get(listed.address)
            if not isinstance(entry, CachedPool):
                logger.warning(
                    "a pool of VENUE_POOLS is not a pool",
                    extra={"pool": listed.address, "reason": getattr(entry, "reason", "none")},
                )
                continue
            if entry.venue != listed.venue:
                logger.warning(
                    "VENUE_POOLS names the wrong venue; the pool's program decides",
                    extra={"pool": listed.address, "listed": listed.venue, "is": entry.venue},
                )
            if entry.trades(mint_in, mint_out):
                pools.append(entry)
        return pools

    async def _resolve(self, addresses: Sequence[str], *, fresh: bool) -> dict[str, Known]:
        """What each address is: from memory, else the cache, else the chain (then cached).
        `fresh`: a pool's reserves must be younger than the refresh interval (for ranking)."""
        wanted = list(dict.fromkeys(addresses))
        out = {a: self._known[a] for a in wanted if self._usable(self._known.get(a), fresh)}
        missing = [a for a in wanted if a not in out]
        if missing:
            stored = self.cache.known(self.endpoint, missing)
            usable = {a: k for a, k in stored.items() if self._usable(k, fresh)}
            self._known.update(usable)
            out.update(usable)
            missing = [a for a in missing if a not in out]
        if missing:
            at = self.now()
            pools, others, absent = await read_pools(self.chain, missing)
            if absent:
                logger.info("no account at these addresses", extra={"addresses": absent})
            learnt: list[Known] = [*await measure(self.chain, pools, at), *others]
            self.cache.remember(self.endpoint, learnt, at)
            for entry in learnt:
                self._known[entry.address] = entry
                out[entry.address] = entry
        return out

    def _usable(self, known: Known | None, fresh: bool) -> bool:
        if known is None:
            return False
        if not fresh or isinstance(known, NotAPool) or known.refreshed_at is None:
            return True
        return self._is_fresh(known.refreshed_at)

    def _is_fresh(self, refreshed_at: datetime) -> bool:
        return self.now() - refreshed_at < timedelta(seconds=self.cfg.pool_refresh_seconds)

    # -- discovery ------------------------------------------------------------------------------

    async def _discovered(self, mint_in: str, mint_out: str) -> list[CachedPool]:
        key = pair_key(mint_in, mint_out)
        listed = self._pairs.get(key)
        if listed is None or not self._is_fresh(listed.refreshed_at):
            stored = self.cache.pair(self.endpoint, *key)
            if stored is not None:
                self._pairs[key] = listed = stored
        if listed is not None and self._is_fresh(listed.refreshed_at):
            return list(listed.pools)
        try:
            return list((await self._discover(key)).pools)
        except (TransientChainError, RpcMethodRefused) as exc:
            if listed is None:
                if isinstance(exc, RpcMethodRefused):
                    raise _no_route(
                        "this RPC endpoint does not serve getProgramAccounts, so pools cannot be"
                        " discovered: list the pools to trade in VENUE_POOLS"
                    ) from exc
                raise
            logger.warning(
                "discovery failed; routing over the pair's older list",
                extra={"pair": list(key), "reason": exc.message},
            )
            return list(listed.pools)

    async def _discover(self, key: tuple[str, str]) -> PairPools:
        """Find the pair's pools now, and record them (memory and cache). Raises
        RpcMethodRefused (also, without asking again, for a refresh interval after a refusal)
        or TransientChainError."""
        now = self.now()
        if self._refused_until is not None and now < self._refused_until:
            raise RpcMethodRefused("the RPC endpoint refused getProgramAccounts recently")
        try:
            found = await find_pools(
                self.chain,
                Pubkey.from_string(key[0]),
                Pubkey.from_string(key[1]),
                self.cfg.solana_cluster,
            )
        except RpcMethodRefused as exc:
            # Not asked again for a refresh interval: the provider's answer will not change sooner.
            self._refused_until = now + timedelta(seconds=self.cfg.pool_refresh_seconds)
            logger.warning("the RPC endpoint refuses pool discovery", extra={"reason": exc.message})
            observability.count(Metric.DISCOVERY_REFUSED)
            raise
        measured = await measure(self.chain, found, now)
        self.cache.save_pair(self.endpoint, *key, measured, now)
        observability.count(Metric.POOLS_DISCOVERED, len(measured))
        logger.info("pools discovered", extra={"pair": list(key), "pools": len(measured)})
        listed = PairPools(tuple(measured), now)
        self._pairs[key] = listed
        self._known.update({p.address: p for p in measured})
        return listed


_catalogs: weakref.WeakKeyDictionary[Chain, PoolCatalog] = weakref.WeakKeyDictionary()


def catalog_for(chain: Chain, pool: Pool, cfg: Settings) -> PoolCatalog:
    """The container's catalog for this chain client, database and settings (one per
    container: its memory lives as long as the chain client)."""
    catalog = _catalogs.get(chain)
    if catalog is None or catalog.cfg is not cfg or catalog.cache.pool is not pool:
        catalog = PoolCatalog(chain, PoolCache(pool), cfg)
        _catalogs[chain] = catalog
    return catalog
