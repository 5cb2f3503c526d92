"""`GET /api/quote`: every pool's quote for a pair and an amount (of tokenIn, or with
`amountOut` the input each pool needs for exactly that much tokenOut), without trading.

The pools are the ones routing would quote (the pool catalog: memory, the pool cache, discovery;
VENUE_POOLS, POOL_DENY_LIST and MAX_POOLS_PER_PAIR applied) and the quotes are the router's own
(`router.quote_all_venues`: one getMultipleAccounts, every pool at one clock), so a user sees
exactly what a market order would be routed on now, and can set a limit order's limitPrice
from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from engine.config import PoolConfig, Settings
from engine.db import Pool
from engine.orders import QuoteRequest
from execution import discovery, router
from execution.chain import Chain
from execution.fees import PriorityFees


async def quote_pair(
    chain: Chain,
    pool: Pool,
    cfg: Settings,
    request: QuoteRequest,
    fees: PriorityFees | None = None,
) -> dict[str, Any]:
    """The routing frame's shape (`quotes`: every pool, the best `chosen`, skipped ones with
    their code), plus the best single pool's venue, pool, amountOut and price (tokenOut per
    tokenIn), the `route` a market order would execute and the best two-pool `split`.

    Raises PermanentChainError (`no_route`, `unknown_mint`, `invalid_account`,
    `amount_too_small`, `invalid_amount`) or TransientChainError."""
    mint_in, mint_out = request.token_in.mint, request.token_out.mint
    catalog = discovery.catalog_for(chain, pool, cfg)
    pools = await catalog.pools_for(mint_in, mint_out)
    if request.amount_out is not None or request.amount_in is None:
        return await _exact_out(chain, pools, cfg, request, fees)
    decision = await router.quote_all_venues(
        chain,
        pools,
        mint_in=mint_in,
        mint_out=mint_out,
        amount_in=request.amount_in,
        # Ranked as the executor ranks: net of the priority fee the cluster asks now.
        priority_fee=fees if fees is not None else cfg.priority_fee_min_micro_lamports,
        min_liquidity=cfg.min_pool_liquidity,
        max_split_legs=cfg.max_split_legs,
        min_split_gain_bps=cfg.min_split_gain_bps,
    )
    best = decision.best
    out = Decimal(best.amount_out_units).scaleb(-best.decimals_out)
    price = out / request.amount_in
    return {
        "tokenIn": request.token_in.symbol,
        "tokenOut": request.token_out.symbol,
        "mintIn": mint_in,
        "mintOut": mint_out,
        "amountIn": format(request.amount_in.normalize(), "f"),
        "quotes": decision.quotes_json(),
        "venue": best.venue,
        "pool": best.pool,
        "amountOut": format(out.normalize(), "f"),
        "price": format(price.quantize(Decimal(1).scaleb(price.adjusted() - 11)).normalize(), "f"),
        "slot": decision.clock.slot if decision.clock else 0,
        # The best single pool above; the route a market order would execute now, and the
        # best split over two pools with its gain (chosen only past MIN_SPLIT_GAIN_BPS).
        "route": decision.route.to_json(),
        "split": decision.split.to_json() if decision.split is not None else None,
    }


async def _exact_out(
    chain: Chain,
    pools: Sequence[PoolConfig],
    cfg: Settings,
    request: QuoteRequest,
    fees: PriorityFees | None,
) -> dict[str, Any]:
    """`amountOut` asked: every pool's input for exactly that (`router.quote_exact_out_all`),
    the least `chosen`; `amountIn` is the best pool's input, `price` amountOut / amountIn;
    `route` what a market order would execute now and `split` the best split of the output
    over two pools (each leg its own exact-out swap) with the input it saves in bps."""
    assert request.amount_out is not None
    mint_in, mint_out = request.token_in.mint, request.token_out.mint
    decision = await router.quote_exact_out_all(
        chain,
        pools,
        mint_in=mint_in,
        mint_out=mint_out,
        amount_out=request.amount_out,
        priority_fee=fees if fees is not None else cfg.priority_fee_min_micro_lamports,
        min_liquidity=cfg.min_pool_liquidity,
        max_split_legs=cfg.max_split_legs,
        min_split_gain_bps=cfg.min_split_gain_bps,
    )
    best = decision.best
    spent = Decimal(best.amount_in_units).scaleb(-best.decimals_in)
    price = request.amount_out / spent
    return {
        "tokenIn": request.token_in.symbol,
        "tokenOut": request.token_out.symbol,
        "mintIn": mint_in,
        "mintOut": mint_out,
        "amountIn": format(spent.normalize(), "f"),
        "quotes": decision.quotes_json(),
        "venue": best.venue,
        "pool": best.pool,
        "amountOut": format(request.amount_out.normalize(), "f"),
        "price": format(price.quantize(Decimal(1).scaleb(price.adjusted() - 11)).normalize(), "f"),
        "slot": decision.clock.slot if decision.clock else 0,
        "exactOut": True,
        "route": decision.route.to_json(),
        "split": decision.split.to_json() if decision.split is not None else None,
    }
