"""The watcher: limit and sniper orders wait here (`watching`) until they trigger or expire.

One tick (`Watcher.tick`):
1. orders past their `expiresAt` end `expired` (guarded transitions);
2. a triggered order whose queue message is not known to have gone out (its watcher stopped
   between the trigger's commit and the send) is queued again;
3. every watching order is read from Postgres; the pools each limit order's pair trades on come
   from the pool catalog (memory, the pool cache, discovery: `execution.discovery`), and the
   pools of each sniper order's pair from `execution.launches` (found on chain, with the slot
   each was created in);
4. every one of those pools, the accounts their quotes read, the orders' mints and the Clock are
   read in ONE getMultipleAccounts per 100 keys (the batches concurrently), so every order is
   priced at one clock;
5. each limit order is priced with the venue math (`execution.pricing`): it triggers when a
   pool pays at least amountIn x limitPrice for its amountIn now, or when no pool does but a
   split of it over two pools does (`execution.split`, as routing would split it: only when the
   split pays more than the best pool by MIN_SPLIT_GAIN_BPS, gross of the second swap's small
   cost, and only for orders some pool's spot-rate bound could pay); an exact-out limit order
   when a pool's exact-out quote takes at most amountOut / limitPrice. A sniper order
   triggers on the first pool of its pair created at or after the slot it was accepted at
   (`watch_from_slot`) that is open for trading, of its `poolVenue` if it names one, whose
   price (tokenIn per tokenOut) is at most `maxPrice` and which holds at least `minLiquidity`
   of tokenIn; a pool that is not open yet is looked at again each tick and triggers once it
   opens;
6. triggering is the guarded `watching -> triggered` transition (the reason in its event; a
   sniper's order is pinned to its new pool), then the order's message on the orders queue:
   the execute function does the rest with its usual guarantees.

Two watchers racing (a second invocation, a retried one) price the same orders: the guarded
transition lets exactly one of them trigger each order, and only that one queues it. A cancel
racing a trigger is decided the same way.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from psycopg import OperationalError
from solders.account import Account
from solders.pubkey import Pubkey

from engine import observability
from engine.config import PoolConfig, Settings
from engine.errors import ChainError, QueueUnavailable
from engine.metrics import Metric
from engine.orders import Status, iso_z, limit_min_out_units
from engine.pools import PoolBirth, PoolBirths, pair_key
from engine.queue import OrdersQueue
from engine.store import Event, Order, Store
from execution import discovery, split
from execution.chain import Chain
from execution.creation_feed import CreationFeed
from execution.launches import LaunchWatch, counting
from execution.pricing import PoolBook, opens_at
from execution.venues import SYSVAR_CLOCK, VENUES, Quote, VenueError

logger = Logger(child=True)
MAX_KEYS_PER_READ = 100  # getMultipleAccounts' limit
REQUEUE_AFTER_SECONDS = 10.0  # a trigger's message not sent by then is sent again
# The watch function stops ticking this long before its timeout: room to flush the status
# triggers and the metrics, and to end before the schedule's next invocation.
STOP_BEFORE_TIMEOUT_SECONDS = 4.0
Publish = Callable[[Event], None]


@dataclass
class TickReport:
    """What one tick did, and where its time went."""

    slot: int | None = None
    watched: int = 0  # orders watching
    priced: int = 0  # orders checked against the pools read this tick
    quotes: int = 0  # exact venue quotes computed
    pools: int = 0  # pools read
    accounts: int = 0  # accounts read (pools, vaults, configs, mints, the Clock)
    triggered: int = 0
    raced: int = 0  # triggers another watcher (or a cancel) won
    expired: int = 0
    requeued: int = 0
    seconds: float = 0.0
    db_seconds: float = 0.0  # reading and writing Postgres
    rpc_seconds: float = 0.0  # reading the chain
    skipped: list[str] = field(default_factory=list)  # pairs not priced this tick, and why

    @property
    def engine_seconds(self) -> float:
        """The tick without its Postgres time: reading the chain and pricing."""
        return self.seconds - self.db_seconds


@dataclass(frozen=True)
class Trigger:
    order: Order
    detail: dict[str, Any]
    fields: dict[str, Any]


class Watcher:
    def __init__(
        self,
        store: Store,
        chain: Chain,
        queue: OrdersQueue,
        cfg: Settings,
        publish: Publish | None = None,
        creation_feed: CreationFeed | None = None,
    ) -> None:
        """`creation_feed`: the venue programs' pool creations over logsSubscribe
        (`launches.creation_feed`); without it, new pools are found from the programs'
        signatures every tick."""
        self.store = store
        self.chain = chain
        self.queue = queue
        self.cfg = cfg
        self.publish = publish or (lambda _e: None)
        self.catalog = discovery.catalog_for(chain, store.pool, cfg)
        self.launches = LaunchWatch(
            chain, PoolBirths(store.pool), cfg, self.catalog.endpoint, feed=creation_feed
        )

    # -- the loop -------------------------------------------------------------------------------

    async def run(
        self,
        keep_going: Callable[[], bool],
        tick_seconds: float,
        on_tick: Callable[[TickReport], None] | None = None,
        stop_when_idle: bool = False,
    ) -> list[TickReport]:
        """Tick every `tick_seconds` while `keep_going()`; a tick that fails (the chain or
        Postgres unreachable) is logged and the next one tries again. `on_tick` sees each
        tick's report (the handler flushes its metrics from there). `stop_when_idle`: return
        after a tick that found no order watching and no trigger to send again."""
        reports: list[TickReport] = []
        while keep_going():
            started = time.monotonic()
            try:
                with _collector_paused():
                    reports.append(await self.tick())
                if on_tick is not None:
                    on_tick(reports[-1])
                if stop_when_idle and reports[-1].watched == 0 and reports[-1].requeued == 0:
                    break
            except (ChainError, OperationalError) as exc:
                logger.warning("tick failed; next tick retries", extra={"error": str(exc)[:300]})
            except Exception:  # a bug: logged with its trace and counted, the watching goes on
                logger.exception("unexpected error in a tick")
                observability.count(Metric.INTERNAL_ERROR)
            rest = tick_seconds - (time.monotonic() - started)
            while rest > 0 and keep_going():
                await asyncio.sleep(min(rest, 0.05))
                rest = tick_seconds - (time.monotonic() - started)
        return reports

    async def tick(self) -> TickReport:
        report = TickReport()
        started = time.perf_counter()
        with self._timed(report, "db"):
            self._expire(report)
            self._requeue(report)
            orders = self.store.watched_orders()
        report.watched = len(orders)
        limits = [o for o in orders if o.order_type == "limit"]
        snipers = [o for o in orders if o.order_type == "sniper"]
        limit_pools = await self._limit_pools(limits, report)
        births, fresh = await self._sniper_pools(snipers, report)
        keys = self._keys(limits, limit_pools, snipers, [*births, *fresh])
        book = await self._read(keys, report)
        report.slot = book.clock.slot
        if fresh:
            with self._timed(report, "db"):
                self.launches.remember(fresh, book.clock.slot)
            births = [*births, *(b.seen_at(book.clock.slot) for b in fresh)]
        triggers = [
            t
            for o in limits
            if (t := self._limit_met(book, o, limit_pools.get(_pool_key(o), []))) is not None
        ]
        triggers += [t for o in snipers if (t := self._new_pool(book, o, births)) is not None]
        report.priced = len(limits) + len(snipers)
        report.quotes = book.quotes
        with self._timed(report, "db"):
            for trigger in triggers:
                self._trigger(trigger, report)
        report.seconds = time.perf_counter() - started
        observability.milliseconds(Metric.WATCH_TICK, report.seconds)
        observability.count(Metric.ORDERS_WATCHED, report.watched)
        return report

    @contextmanager
    def _timed(self, report: TickReport, kind: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - started
            if kind == "db":
                report.db_seconds += spent
            else:
                report.rpc_seconds += spent

    # -- orders that end or need their message again --------------------------------------------

    def _expire(self, report: TickReport) -> None:
        for order in self.store.due_to_expire():
            expires = iso_z(order.expires_at) if order.expires_at else None
            done = self.store.transition(
                order.id,
                order.status,
                Status.EXPIRED,
                detail={"reason": f"not triggered by its expiresAt ({expires})"},
            )
            if done is not None:
                self._emit(done.event)
                report.expired += 1
                observability.count(Metric.ORDERS_EXPIRED)

    def _requeue(self, report: TickReport) -> None:
        for order in self.store.unqueued_triggers(REQUEUE_AFTER_SECONDS):
            if self._enqueue(order):
                report.requeued += 1
                logger.info("triggered order queued again", extra={"order_id": str(order.id)})

    def _enqueue(self, order: Order) -> bool:
        try:
            self.queue.enqueue(order.id)
        except QueueUnavailable as exc:
            logger.warning(
                "a triggered order could not be queued; the next ticks retry",
                extra={"order_id": str(order.id), "error": exc.message},
            )
            return False
        self.store.mark_enqueued(order.id)
        return True

    # -- which pools ----------------------------------------------------------------------------

    async def _limit_pools(
        self, limits: Sequence[Order], report: TickReport
    ) -> dict[tuple[str, str, str | None], list[PoolConfig]]:
        """The pools each limit order's pair (or pinned pool) trades on, per pair."""
        wanted = sorted({_pool_key(o) for o in limits}, key=str)
        found: dict[tuple[str, str, str | None], list[PoolConfig]] = {}
        for key in wanted:
            try:
                with self._timed(report, "rpc"):
                    found[key] = await self.catalog.pools_for(*key)
            except ChainError as exc:  # no pool yet, a pin that is not one, the RPC down
                report.skipped.append(f"{key[0]}/{key[1]}: {exc.code}")
        return found

    async def _sniper_pools(
        self, snipers: Sequence[Order], report: TickReport
    ) -> tuple[list[PoolBirth], list[PoolBirth]]:
        """Pools of the sniper orders' pairs already seen, and the ones found now."""
        if not snipers:
            return [], []
        pairs = {pair_key(o.mint_in, o.mint_out) for o in snipers}
        since = min(o.watch_from_slot or 0 for o in snipers)
        try:
            with self._timed(report, "rpc"):
                return await self.launches.find(pairs, since)
        except ChainError as exc:
            report.skipped.append(f"new pools: {exc.code}")
            return [], []

    @staticmethod
    def _keys(
        limits: Sequence[Order],
        limit_pools: dict[tuple[str, str, str | None], list[PoolConfig]],
        snipers: Sequence[Order],
        births: Sequence[PoolBirth],
    ) -> list[Pubkey]:
        pools = [p for ps in limit_pools.values() for p in ps] + [b.to_config() for b in births]
        mints = {m for o in (*limits, *snipers) for m in (o.mint_in, o.mint_out)}
        addresses = [p.address for p in pools] + [k for p in pools for k in p.depends_on]
        addresses += sorted(mints)
        return [*dict.fromkeys(Pubkey.from_string(a) for a in addresses), SYSVAR_CLOCK]

    async def _read(self, keys: list[Pubkey], report: TickReport) -> PoolBook:
        """Every key in getMultipleAccounts calls of 100, concurrently; a pool whose quote
        needs accounts it did not list (first seen without them) costs one more read."""
        with self._timed(report, "rpc"):
            accounts = await self._accounts(keys)
            missing = self._unlisted(accounts)
            if missing:
                accounts.update(await self._accounts(missing))
        report.accounts = len(accounts)
        report.pools = sum(1 for a in accounts.values() if a is not None and _is_pool(a))
        return PoolBook(accounts)

    async def _accounts(self, keys: list[Pubkey]) -> dict[Pubkey, Account | None]:
        batches = [keys[i : i + MAX_KEYS_PER_READ] for i in range(0, len(keys), MAX_KEYS_PER_READ)]
        pages = await asyncio.gather(*(self.chain.accounts(b) for b in batches))
        return {k: a for page in pages for k, a in page.items()}

    @staticmethod
    def _unlisted(accounts: dict[Pubkey, Account | None]) -> list[Pubkey]:
        missing: list[Pubkey] = []
        for key, account in accounts.items():
            venue = discovery.venue_of(account.owner) if account is not None else None
            if venue is None or account is None:
                continue
            try:
                state = VENUES[venue].decode_pool(bytes(account.data), account.owner, key)
            except VenueError:
                continue
            missing += [k for k in VENUES[venue].dependent_accounts(state) if k not in accounts]
        return list(dict.fromkeys(missing))

    # -- pricing --------------------------------------------------------------------------------

    def _limit_met(
        self, book: PoolBook, order: Order, pools: Sequence[PoolConfig]
    ) -> Trigger | None:
        """The first pool that pays the limit for the order's amount now, as a trigger."""
        if order.amount_out_exact is not None:
            return self._exact_out_limit_met(book, order, pools)
        if order.amount_in is None:
            return None
        units = book.units(order.mint_in, order.amount_in)
        decimals_out = book.decimals(order.mint_out)
        if units is None or decimals_out is None or order.limit_price is None:
            return None
        needed = limit_min_out_units(order.amount_in, order.limit_price, decimals_out)
        for pool in pools:
            bound = book.upper_bound(pool, order.mint_in, units)
            if bound is not None and bound < needed:
                continue  # this pool cannot pay the limit now, whatever its fees
            quote = book.quote(pool, order.mint_in, units)
            if quote is None or quote.amount_out < needed:
                continue
            out = Decimal(quote.amount_out).scaleb(-decimals_out)
            detail = {
                "reason": "limit_reached",
                "trigger": order.triggers + 1,
                "venue": pool.venue,
                "pool": pool.address,
                "amountIn": _text(order.amount_in),
                "amountOut": _text(out),
                "minAmountOut": _text(Decimal(needed).scaleb(-decimals_out)),
                "limitPrice": _text(order.limit_price),
                "price": _text(_rounded(out / order.amount_in)),
                "slot": book.clock.slot,
            }
            return Trigger(order, detail, {"triggers": order.triggers + 1, "enqueued_at": None})
        return self._split_meets(book, order, pools, units, needed)

    def _split_meets(
        self,
        book: PoolBook,
        order: Order,
        pools: Sequence[PoolConfig],
        units: int,
        needed: int,
    ) -> Trigger | None:
        """No pool alone pays the limit: does a split of the amount over two of them (the
        executor routes it as it routes any order, and splits when that pays more)? Tried
        only when some pool's bound after its fee reaches the limit: a leg of x pays at most
        x at the pool's spot rate less its fee rate, so a split pays at most the amount at the
        best of those, and the orders it cannot reach cost no allocation."""
        if self.cfg.max_split_legs < 2 or len(pools) < 2 or order.amount_in is None:
            return None
        bounds = [book.upper_bound(p, order.mint_in, units) for p in pools]
        if all(b is not None and b < needed for b in bounds):
            return None  # the usual book: decided by the spot rates, no quote asked
        whole = [(p, q) for p in pools if (q := book.quote(p, order.mint_in, units)) is not None]
        if len(whole) < 2:
            return None
        for pool, quote in whole:
            bound = book.upper_bound(pool, order.mint_in, units)
            if bound is None or after_fee(bound, pool, book, quote) >= needed:
                break
        else:
            return None
        ranked = sorted(whole, key=lambda pq: pq[1].amount_out, reverse=True)
        candidates = [p for p, _ in ranked[: split.SPLIT_CANDIDATES]]
        if len(candidates) < 2:
            return None
        mint_in = order.mint_in

        def quote_fn(pool: PoolConfig) -> split.QuoteFn:
            def fn(amount: int) -> int | None:
                quote = book.quote(pool, mint_in, amount)
                return quote.amount_out if quote is not None else None

            return fn

        allocation = split.best_split([quote_fn(p) for p in candidates], units)
        best_single = ranked[0][1].amount_out
        if (
            allocation is None
            or allocation.total_out < needed
            or split.gain_bps(allocation.total_out, best_single) <= self.cfg.min_split_gain_bps
        ):
            return None
        decimals_out = book.decimals(order.mint_out) or 0
        decimals_in = book.decimals(order.mint_in) or 0
        legs = [
            (candidates[allocation.first], allocation.amount_first, allocation.out_first),
            (candidates[allocation.second], allocation.amount_second, allocation.out_second),
        ]
        out = Decimal(allocation.total_out).scaleb(-decimals_out)
        detail = {
            "reason": "limit_reached",
            "trigger": order.triggers + 1,
            "venue": legs[0][0].venue,
            "pool": legs[0][0].address,
            "split": [
                {
                    "venue": pool.venue,
                    "pool": pool.address,
                    "amountIn": _text(Decimal(amount).scaleb(-decimals_in)),
                    "amountOut": _text(Decimal(paid).scaleb(-decimals_out)),
                }
                for pool, amount, paid in legs
            ],
            "amountIn": _text(order.amount_in),
            "amountOut": _text(out),
            "minAmountOut": _text(Decimal(needed).scaleb(-decimals_out)),
            "limitPrice": _text(order.limit_price or Decimal(0)),
            "price": _text(_rounded(out / order.amount_in)),
            "slot": book.clock.slot,
        }
        return Trigger(order, detail, {"triggers": order.triggers + 1, "enqueued_at": None})

    def _exact_out_limit_met(
        self, book: PoolBook, order: Order, pools: Sequence[PoolConfig]
    ) -> Trigger | None:
        """An exact-out limit order: the first pool whose exact-out quote for amountOut takes
        at most the order's maximum input (amountOut / limitPrice, rounded down)."""
        if order.amount_out_exact is None or order.amount_in is None:
            return None
        units_out = book.units(order.mint_out, order.amount_out_exact)
        max_in = book.units(order.mint_in, order.amount_in)
        decimals_in = book.decimals(order.mint_in)
        if units_out is None or max_in is None or decimals_in is None:
            return None
        for pool in pools:
            needed = book.input_for(pool, order.mint_in, units_out)
            if needed is None or needed > max_in:
                continue
            spent = Decimal(needed).scaleb(-decimals_in)
            detail = {
                "reason": "limit_reached",
                "trigger": order.triggers + 1,
                "venue": pool.venue,
                "pool": pool.address,
                "amountOut": _text(order.amount_out_exact),
                "quotedAmountIn": _text(spent),
                "maxAmountIn": _text(order.amount_in),
                "limitPrice": _text(order.limit_price or Decimal(0)),
                "price": _text(_rounded(order.amount_out_exact / spent)),
                "slot": book.clock.slot,
            }
            return Trigger(order, detail, {"triggers": order.triggers + 1, "enqueued_at": None})
        return self._exact_out_split_meets(book, order, pools, units_out, max_in)

    def _exact_out_split_meets(
        self,
        book: PoolBook,
        order: Order,
        pools: Sequence[PoolConfig],
        units_out: int,
        max_in: int,
    ) -> Trigger | None:
        """No pool alone takes at most the exact-out order's maximum input: does a split of the
        output over two of them (the executor splits it when that saves input)? Tried only when
        some pool's spot rate less its fee rate, over the whole maximum input, reaches the
        output: a leg taking x pays at most x at that rate, so a split within the maximum pays
        at most the maximum at the best of those rates, and the orders it cannot reach cost no
        allocation."""
        if self.cfg.max_split_legs < 2 or len(pools) < 2 or order.amount_out_exact is None:
            return None
        mint_in = order.mint_in
        bounds = [book.upper_bound(p, mint_in, max_in) for p in pools]
        if all(b is not None and b < units_out for b in bounds):
            return None  # the usual book: decided by the spot rates, no quote asked
        for pool, bound in zip(pools, bounds, strict=True):
            if bound is None:
                break
            if bound < units_out:
                continue
            quote = book.quote(pool, mint_in, max_in)
            if quote is None or after_fee(bound, pool, book, quote) >= units_out:
                break
        else:
            return None
        singles = [(p, book.input_for(p, mint_in, units_out)) for p in pools]
        ranked = sorted(singles, key=lambda pi: (pi[1] is None, pi[1] or 0))
        candidates = [p for p, _ in ranked[: split.SPLIT_CANDIDATES]]

        def input_fn(pool: PoolConfig) -> split.InputFn:
            def fn(amount: int) -> int | None:
                return book.input_for(pool, mint_in, amount)

            return fn

        allocation = split.best_split_exact_out([input_fn(p) for p in candidates], units_out)
        best_single = ranked[0][1]
        if (
            allocation is None
            or allocation.total_in > max_in
            or (
                best_single is not None
                and split.saving_bps(allocation.total_in, best_single)
                <= self.cfg.min_split_gain_bps
            )
        ):
            return None
        decimals_out = book.decimals(order.mint_out) or 0
        decimals_in = book.decimals(mint_in) or 0
        legs = [
            (candidates[allocation.first], allocation.out_first, allocation.in_first),
            (candidates[allocation.second], allocation.out_second, allocation.in_second),
        ]
        spent = Decimal(allocation.total_in).scaleb(-decimals_in)
        detail = {
            "reason": "limit_reached",
            "trigger": order.triggers + 1,
            "venue": legs[0][0].venue,
            "pool": legs[0][0].address,
            "split": [
                {
                    "venue": pool.venue,
                    "pool": pool.address,
                    "amountOut": _text(Decimal(paid).scaleb(-decimals_out)),
                    "quotedAmountIn": _text(Decimal(taken).scaleb(-decimals_in)),
                }
                for pool, paid, taken in legs
            ],
            "amountOut": _text(order.amount_out_exact),
            "quotedAmountIn": _text(spent),
            "maxAmountIn": _text(order.amount_in or Decimal(0)),
            "limitPrice": _text(order.limit_price or Decimal(0)),
            "price": _text(_rounded(order.amount_out_exact / spent)),
            "slot": book.clock.slot,
        }
        return Trigger(order, detail, {"triggers": order.triggers + 1, "enqueued_at": None})

    def _new_pool(
        self, book: PoolBook, order: Order, births: Sequence[PoolBirth]
    ) -> Trigger | None:
        """The first pool new to the order that it may buy from now, as a trigger."""
        if order.amount_in is None:  # a sniper order is exact in
            return None
        units = book.units(order.mint_in, order.amount_in)
        decimals_out = book.decimals(order.mint_out)
        if units is None or decimals_out is None:
            return None
        mine = [
            b
            for b in counting(births, order.watch_from_slot)
            if b.trades(order.mint_in, order.mint_out)
            and order.pool_venue in (None, b.venue)
            and b.address not in self.cfg.pool_deny_list
        ]
        for birth in sorted(mine, key=lambda b: (b.created_slot or 0, b.address)):
            pool = birth.to_config()
            quote = book.quote(pool, order.mint_in, units)
            if quote is None:
                continue  # not open yet, disabled, empty: looked at again next tick
            out = Decimal(quote.amount_out).scaleb(-decimals_out)
            # maxPrice bounds what one tokenOut costs (tokenIn per tokenOut); the frame's `price`
            # is stated as fills state theirs: tokenOut per tokenIn.
            cost = order.amount_in / out
            if order.max_price is not None and cost > order.max_price:
                continue
            held = Decimal(book.reserve(pool, order.mint_in)).scaleb(
                -(book.decimals(order.mint_in) or 0)
            )
            if order.min_liquidity is not None and held < order.min_liquidity:
                continue
            detail = {
                "reason": "new_pool",
                "trigger": order.triggers + 1,
                "venue": birth.venue,
                "pool": birth.address,
                "createdSlot": birth.created_slot,
                "creationTx": birth.creation_signature,
                "seenSlot": birth.seen_slot,
                **opens_at(birth.venue, book.state(pool)),
                "amountIn": _text(order.amount_in),
                "amountOut": _text(out),
                "price": _text(_rounded(out / order.amount_in)),
                "liquidity": _text(held),
                "slot": book.clock.slot,
            }
            fields = {
                "triggers": order.triggers + 1,
                "enqueued_at": None,
                "pinned_pool": birth.address,  # the executor trades on this pool only
            }
            return Trigger(order, detail, fields)
        return None

    # -- triggering -----------------------------------------------------------------------------

    def _trigger(self, trigger: Trigger, report: TickReport) -> None:
        done = self.store.transition(
            trigger.order.id,
            Status.WATCHING,
            Status.TRIGGERED,
            detail=trigger.detail,
            fields=trigger.fields,
        )
        if done is None:  # another watcher triggered it first, or it was cancelled
            report.raced += 1
            return
        self._emit(done.event)
        report.triggered += 1
        observability.count(Metric.ORDERS_TRIGGERED)
        logger.info(
            "order triggered",
            extra={"order_id": str(trigger.order.id), "reason": trigger.detail["reason"]},
        )
        self._enqueue(done.order)

    def _emit(self, event: Event) -> None:
        try:
            self.publish(event)
        except Exception:  # a notification failure must never undo a committed status
            logger.exception("publishing a status event failed")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector waits while a tick prices: a big book's orders outlive
    the tick, so a full collection (tens of milliseconds, scanning every object the container
    holds) would otherwise land in most ticks, between a limit being met and its trigger.
    Refcounting still frees what the tick drops; the collection runs at the next allocation
    after the tick, while the loop sleeps. (The switch is per process: in the local stack, where
    every function shares one, the others' collections wait for the tick too.)"""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def after_fee(bound: int, pool: PoolConfig, book: PoolBook, quote: Quote) -> int:
    """`bound` (what the amount fetches at the pool's spot rate) less the pool's fee rate as
    its quote applied it, rounded up: the fee is at least that rate on any smaller leg too
    (CPMM's trade fee, DAMM v2's total fee numerator; under DAMM v2's rate limiter, which rises
    with the amount, only its cliff and the dynamic fee count)."""
    if pool.venue == "raydium_cpmm":
        numerator, denominator = int(quote.notes.get("tradeFeeRate", 0)), 1_000_000
    else:
        numerator, denominator = int(quote.notes.get("feeNumerator", 0)), 1_000_000_000
        state = book.state(pool)
        if state is not None and state.uses_rate_limiter:
            cliff = state.base_fee.cliff_fee_numerator
            numerator = min(numerator, cliff + int(quote.notes.get("variableFeeNumerator", 0)))
    return bound - bound * numerator // denominator


def _pool_key(order: Order) -> tuple[str, str, str | None]:
    return (order.mint_in, order.mint_out, order.pinned_pool)


def _is_pool(account: Account) -> bool:
    return discovery.venue_of(account.owner) is not None


def _text(value: Decimal) -> str:
    return format(Decimal(value).normalize(), "f")


def _rounded(value: Decimal) -> Decimal:
    """A price to 12 significant digits (a quotient of decimals need not end)."""
    return Decimal(value).quantize(Decimal(1).scaleb(value.adjusted() - 11))
