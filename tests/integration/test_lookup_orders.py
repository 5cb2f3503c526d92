"""End to end on the local chain (the executor, real Postgres, the real programs): with
MAX_SPLIT_LEGS 3 and three SOL/USDC pools of similar depth, a large market order first goes
over two pools (the wallet has no lookup table yet) and the executor then creates and extends
the wallet's table with the third leg's accounts; once the chain's slot has passed the
extension, the same order goes over three pools in one v0 transaction through the table, each
leg's fill read from the landed transaction's token balances (the vaults are loaded addresses),
summing to what the wallet received."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from engine import config
from engine.store import Store
from local.chain import POOLS, USDC_MINT, WALLET, LocalChain
from tests.integration.test_executor import WSOL, Runner, landed_swaps, new_order
from tests.pool_factory import PoolFactory


@pytest.fixture
def chain() -> Iterator[tuple[LocalChain, list[config.PoolConfig]]]:
    chain = LocalChain.seeded()
    third = PoolFactory(chain.ledger).cpmm(WSOL, USDC_MINT, 10**12, 150_000 * 10**6, config=0)
    chain.ledger.shift_time(2)  # the new pool is open
    chain.start_ticker(0.01)
    pools = [config.PoolConfig(v, str(a)) for v, a in POOLS.items()]
    yield chain, [*pools, config.PoolConfig("raydium_cpmm", str(third))]
    chain.stop()


async def test_a_three_leg_order_goes_through_the_table_once_the_engine_extended_it(
    store: Store, chain: tuple[LocalChain, list[config.PoolConfig]], database_url: str
) -> None:
    local, pools = chain
    cfg = dataclasses.replace(
        config.Settings.from_env(),
        solana_rpc_url="http://local-chain",
        solana_cluster="custom",
        pools=tuple(pools),
        max_attempts=3,
        max_split_legs=3,
    )
    runner = Runner(store, local, cfg)
    assert store.lookup_table(str(WALLET)) is None
    first = new_order(store, amountIn="40", slippage=1)
    assert (await runner.run(first)).status == "confirmed"
    order = store.get_order(first)
    assert order is not None
    assert order.route is not None
    assert len(order.route["legs"]) == 2  # no table yet
    # After the order, the executor created the wallet's table and added the route's pools.
    table = store.lookup_table(str(WALLET))
    assert table is not None
    address, extended_slot = table
    assert extended_slot is not None
    local.ledger.advance()  # past the extension's slot
    usdc_before = local.token_balance(WALLET, USDC_MINT)
    second = new_order(store, amountIn="40", slippage=1)
    assert (await runner.run(second)).status == "confirmed"
    order = store.get_order(second)
    assert order is not None
    assert order.route is not None
    assert len(order.route["legs"]) == 3
    assert order.route["lookupTable"] == address
    assert len({leg["pool"] for leg in order.route["legs"]}) == 3
    received = local.token_balance(WALLET, USDC_MINT) - usdc_before
    [confirmed] = [e for e in store.events(second) if e.status == "confirmed"]
    legs = confirmed.detail["filled"]["legs"]
    assert len(legs) == 3
    assert sum(int(leg["amountOutUnits"]) for leg in legs) == received
    swaps = landed_swaps(local, [confirmed.detail["txHash"]])
    assert len(swaps) == 1
    assert len(swaps[0]["dexInstructions"]) == 3
