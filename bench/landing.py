"""Landing: how orders land when the chain drops sends and is congested.

The production Executor (simulation, priced priority fee, CU limit from the simulation, the
resend loop) runs orders one after another against the seeded local chain, with real Postgres,
in two conditions:
- calm: every send reaches the leader, nobody else pays for priority;
- rough: 20 % of sends are accepted and never land (`drop_rate`), and every recent slot paid
  at least 50,000 micro-lamports per CU on the pools (`priority_fee_level`, congestion).
Slots are 40 ms here (400 ms on a cluster) and the engine rebroadcasts every 5 slots, as 2 s is
at 400 ms: the slot figures are what a cluster would show, in a tenth of the time.

Per condition: the land rate, slots from the first send to landing (p50/p95), how many times
the bytes went out, and what an order paid (fee, its priority part, the CU limit asked).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from bench.stats import percentile

SLOT_SECONDS = 0.04
RESEND_SLOTS = 5
CONDITIONS: dict[str, dict[str, Any]] = {
    "calm": {},
    "rough": {"drop_rate": 0.2, "priority_fee_level": 50_000, "seed": 7},
}


async def _run(orders: int, faults: dict[str, Any], database_url: str) -> dict[str, Any]:
    from engine import config, db
    from engine.orders import parse_order_request
    from engine.store import Store
    from execution.chain import Chain
    from execution.executor import Executor, Timing
    from execution.wallet import Wallet
    from local.chain import LocalChain, client_for, seed

    chain = LocalChain.seeded()
    chain.faults.update(**faults)
    chain.start_ticker(SLOT_SECONDS)
    pool = db.pool(database_url)
    with pool.connection() as conn:
        db.migrate(conn)
    store = Store(pool)
    cfg = dataclasses.replace(
        config.Settings.from_env({"DATABASE_URL": database_url}),
        solana_rpc_url="http://local-chain",
        solana_cluster="custom",
        priority_fee_cache_seconds=0,  # every order prices the fee afresh
    )
    client = Chain("http://local-chain", client_for(chain))
    executor = Executor(
        store,
        client,
        Wallet(seed.WALLET_KEYPAIR),
        cfg,
        timing=Timing(
            poll_seconds=SLOT_SECONDS / 4,
            resend_seconds=SLOT_SECONDS * RESEND_SLOTS,
            land_timeout_seconds=30,
        ),
    )
    outcomes: list[str] = []
    filled: list[dict[str, Any]] = []
    limits: list[int] = []
    try:
        for i in range(orders):
            side = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01"}
            if i % 2:
                side = {"tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "1.5"}
            order, _ = store.create_order(parse_order_request({**side, "slippage": 1}))
            outcomes.append((await executor.run(order.id)).status)
            done = store.get_order(order.id)
            if done is not None and done.filled is not None:
                filled.append(done.filled)
                limits.append(done.compute_unit_limit or 0)
    finally:
        await client.close()
        chain.stop()
    return _figures(outcomes, filled, limits)


def _figures(
    outcomes: list[str], filled: list[dict[str, Any]], limits: list[int]
) -> dict[str, Any]:
    def spread(values: list[float]) -> dict[str, float]:
        return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values)}

    n = len(filled) or 1
    return {
        "orders": len(outcomes),
        "confirmed": outcomes.count("confirmed"),
        "land_rate": outcomes.count("confirmed") / len(outcomes),
        "slots_to_land": spread([float(f["slotsToLand"]) for f in filled]),
        "sends": spread([float(f["sends"]) for f in filled]),
        "fee_lamports": sum(f["feeLamports"] for f in filled) / n,
        "priority_fee_lamports": sum(f["priorityFeeLamports"] for f in filled) / n,
        "compute_unit_limit": sum(limits) / n,
        "compute_units": sum(f["computeUnits"] for f in filled) / n,
    }


def measure(orders: int = 40) -> dict[str, Any]:
    from local import postgres

    base = postgres.server_url()
    results: dict[str, Any] = {"slot_seconds": SLOT_SECONDS, "resend_slots": RESEND_SLOTS}
    for name, faults in CONDITIONS.items():
        url = postgres.create_database(base, "bench_landing")
        try:
            results[name] = asyncio.run(_run(orders, faults, url)) | {"faults": faults}
        finally:
            from engine import db

            db.pool(url).close()
            db._pools.pop(url, None)
            postgres.drop_database(base, url)
    return results


def rows(landing: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The bench table's rows for the landing figures."""
    out: list[tuple[str, str, str, str]] = []
    for name, label in (
        ("calm", "landing, calm chain"),
        ("rough", "landing, 20 % of sends dropped, congested (50,000 uL/CU)"),
    ):
        r = landing[name]
        slots, sends = r["slots_to_land"], r["sends"]
        out.append(
            (
                f"{label} (n={r['orders']})",
                f"land rate {r['land_rate']:.0%}; slots to land p50 {slots['p50']:.0f},"
                f" p95 {slots['p95']:.0f}; sends p50 {sends['p50']:.0f}, max {sends['max']:.0f};"
                f" fee/order {r['fee_lamports']:,.0f} lamports ({r['priority_fee_lamports']:,.0f}"
                f" priority; CU limit {r['compute_unit_limit']:,.0f} for"
                f" {r['compute_units']:,.0f} used)",
                "every order lands",
                "met" if r["confirmed"] == r["orders"] else "NOT met",
            )
        )
    return out


if __name__ == "__main__":
    print(json.dumps(measure(), indent=1))
