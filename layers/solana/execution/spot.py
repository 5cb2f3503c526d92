"""A limit order's pair quoted at submit, for the limit-price guard (`engine.spot` runs this
on the first limit order a submit container takes; the rule is `engine.limits`).

The pools are the ones the pool cache knows for the pair on this RPC endpoint (every quote,
order and watcher tick of the pair recorded them, with the accounts each one's quote reads), so
the read is the router's ONE getMultipleAccounts and the quote is the router's own
(`router.quote_all_venues`: the route a market order of that size would take now, before the
transaction's cost). No discovery here: a pair the engine has never seen has no pools in the
cache, and its order is checked when it is routed.
"""

from __future__ import annotations

from decimal import Decimal

from engine.config import Settings
from engine.errors import PermanentChainError
from engine.pools import PoolCache, endpoint_id
from execution import router
from execution.chain import Chain


async def current_price(
    chain: Chain,
    cache: PoolCache,
    cfg: Settings,
    *,
    mint_in: str,
    mint_out: str,
    amount_in: Decimal,
    pool_id: str | None = None,
) -> Decimal | None:
    """tokenOut per tokenIn that `amount_in` would get now over the pair's known pools (only
    `pool_id` when the order pins one), or None when the cache knows no pool of the pair or
    none can be quoted now (the order is then checked when it is routed).

    Raises TransientChainError when the RPC does not answer."""
    known = cache.of_pair(endpoint_id(cfg.solana_rpc_url), mint_in, mint_out)
    pools = [
        p
        for p in known
        if p.address not in cfg.pool_deny_list and (pool_id is None or p.address == pool_id)
    ]
    deepest = sorted(pools, key=lambda p: p.reserve_of(mint_out), reverse=True)
    chosen = [p.to_config() for p in deepest[: cfg.max_pools_per_pair]]
    if not chosen:
        return None
    try:
        decision = await router.quote_all_venues(
            chain,
            chosen,
            mint_in=mint_in,
            mint_out=mint_out,
            amount_in=amount_in,
            priority_fee=cfg.priority_fee_min_micro_lamports,
            min_liquidity=cfg.min_pool_liquidity,
            max_split_legs=cfg.max_split_legs,
            min_split_gain_bps=cfg.min_split_gain_bps,
        )
    except PermanentChainError:
        return None  # no pool can trade it now (not open yet, drained...): routing decides
    out = Decimal(decision.route.amount_out_units).scaleb(-decision.best.decimals_out)
    return out / amount_in
