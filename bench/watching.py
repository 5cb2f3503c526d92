"""The watcher (issue 12): how many watched limit orders one tick prices, and how long a limit
met on chain takes to reach `submitted`.

- **priced per tick**: N limit orders (SOL -> USDC, every one a different amount, 0.01 to 10
  SOL) in a database of their own, priced by the watch function's loop (`execution.watcher.
  Watcher.run`, a 1 s tick) against the seeded local chain (the production solana-py client,
  in-process), in an interpreter of its own as in the function's container. Two books:
  *waiting* (limits 1 to 10 % above what the pools pay: the usual book, decided by the
  spot-rate bound) and *at the money* (limits just under the spot rate, above what any pool
  pays after its fee: every order gets the exact venue quote on both pools, and none
  triggers). Engine time = the tick less its time in Postgres (reading the N orders, the
  trigger sweeps), which is reported beside it.
- **trigger latency**: a local stack (`local.stack.Stack`, the watcher on the template's schedule
  with the local tick); a limit order 2 % above the price waits; the pools' price is moved past
  it on chain (the chain's admin endpoint, the instant the limit is met); the time from then to
  the order's `submitted` event (Postgres `order_events.at`, same host clock). One order at a
  time, the price put back between samples.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.stats import percentiles

ROOT = Path(__file__).resolve().parent.parent

TARGET_ORDERS = 10_000
SNIPER_ORDERS = 1_000  # beside the limit book: sniper orders, each on a pair of its own
TARGET_ENGINE_MS = 200.0
SOL = 10**9
USDC = 10**6


def _database(prefix: str) -> str:
    """A fresh, migrated database `prefix_<random>` on the Postgres `make run` finds."""
    from engine import db
    from engine.store import Store
    from local import postgres

    url = postgres.create_database(postgres.server_url(), prefix)
    Store(db.pool(url)).migrate()
    return url


def _conninfo(base: str, name: str) -> str:
    import psycopg

    return str(psycopg.conninfo.make_conninfo(base, dbname=name))


def _fill(url: str, orders: int, factor: tuple[float, float], seed: int = 7) -> None:
    """`orders` watching limit orders whose limit is the spot price (150.5 USDC/SOL, between
    the two seeded pools) times a factor drawn from `factor`, each a distinct amount."""
    import psycopg
    from psycopg.types.json import Jsonb

    from engine import db, keys
    from engine.orders import parse_order_request

    key, _ = keys.create_key(
        "bench watcher", pool=db.pool(url), max_open_orders=orders + 1, max_in_flight=10
    )
    rng = random.Random(seed)
    expires = datetime.now(UTC) + timedelta(days=1)
    rows = []
    for i in range(orders):
        amount = Decimal(10_000_000 + i * 997) / SOL  # 0.01 SOL and up, all distinct
        amount = amount * (1 + rng.randrange(1000))  # up to 10 SOL
        price = (Decimal("150.5") * Decimal(str(rng.uniform(*factor)))).quantize(Decimal("0.0001"))
        request = parse_order_request(
            {
                "orderType": "limit",
                "tokenIn": "SOL",
                "tokenOut": "USDC",
                "amountIn": str(amount.quantize(Decimal("0.000000001"))),
                "limitPrice": str(price),
                "expiresAt": expires.isoformat(),
            }
        )
        rows.append(
            (
                uuid.uuid4(),
                Jsonb(request.to_json()),
                request.token_in.mint,
                request.token_out.mint,
                request.amount_in,
                request.limit_price,
                expires,
                request.fingerprint(),
                key.id,
            )
        )
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO orders (id, request, token_in, token_out, mint_in, mint_out, amount_in,
                 slippage, order_type, status, seq, limit_price, expires_at, request_hash,
                 api_key_id)
               VALUES (%s, %s, 'SOL', 'USDC', %s, %s, %s, NULL, 'limit', 'watching', 2, %s, %s,
                 %s, %s)""",
            rows,
        )


def _fill_snipers(url: str, orders: int) -> None:
    """`orders` watching sniper orders (USDC -> a mint no pool trades yet), each on a pair of
    its own: what new-pool discovery must watch besides the limit book."""
    import psycopg
    from psycopg.types.json import Jsonb
    from solders.keypair import Keypair

    from engine import db, keys
    from engine.orders import parse_order_request

    key, _ = keys.create_key("bench snipers", pool=db.pool(url), max_open_orders=orders + 1)
    expires = datetime.now(UTC) + timedelta(days=1)
    rows = []
    for _ in range(orders):
        request = parse_order_request(
            {
                "orderType": "sniper",
                "tokenIn": "USDC",
                "tokenOut": str(Keypair().pubkey()),
                "amountIn": "5",
                "expiresAt": expires.isoformat(),
            }
        )
        rows.append(
            (
                uuid.uuid4(),
                Jsonb(request.to_json()),
                request.token_out.mint,
                request.token_in.mint,
                request.token_out.mint,
                request.amount_in,
                request.slippage,
                expires,
                request.fingerprint(),
                key.id,
            )
        )
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO orders (id, request, token_in, token_out, mint_in, mint_out, amount_in,
                 slippage, order_type, status, seq, expires_at, request_hash, api_key_id,
                 watch_from_slot)
               VALUES (%s, %s, 'USDC', %s, %s, %s, %s, %s, 'sniper', 'watching', 2, %s, %s, %s,
                 0)""",
            rows,
        )


async def _ticks(url: str, ticks: int) -> list[Any]:
    from engine import config, db
    from engine.queue import OrdersQueue
    from engine.store import Store
    from execution.chain import Chain
    from execution.launches import creation_feed
    from execution.watcher import Watcher
    from local.chain import LocalChain, client_for, serve_in_thread

    chain = LocalChain.seeded()
    served, stop = serve_in_thread(chain)  # its PubSub WebSocket: the pool-creation feed
    settings = dataclasses.replace(
        config.Settings.from_env({}),
        database_url=url,
        solana_rpc_url="http://local-chain",
        solana_cluster="custom",
    )
    watcher = Watcher(
        Store(db.pool(url)),
        Chain("http://local-chain", client_for(chain)),
        OrdersQueue(None),  # nothing may trigger here: no message may go out either
        settings,
        # as the watch function: new pools over logsSubscribe once it is live
        creation_feed=creation_feed(dataclasses.replace(settings, solana_rpc_url=served)),
    )
    # The watch function's own loop, at its 1 s tick; the first tick (discovery of the pair
    # and the pools' accounts, a cold container) is not counted.
    seen: list[Any] = []
    await watcher.run(lambda: len(seen) <= ticks, 1.0, on_tick=seen.append)
    if watcher.launches.feed is not None:
        await watcher.launches.feed.close()
    stop()
    chain.stop()
    return seen[1:]


def priced_per_tick(
    orders: int = TARGET_ORDERS, ticks: int = 5, snipers: int = SNIPER_ORDERS
) -> dict[str, Any]:
    out: dict[str, Any] = {"orders": orders, "snipers": snipers}
    books = (
        ("waiting", (1.01, 1.10), 0),
        ("at_the_money", (0.9992, 0.9999), 0),
        # the waiting book again, with sniper orders on as many new pairs beside it: what they
        # cost every user's tick (issue 25: 4 getProgramAccounts per pair per tick, before)
        ("with_snipers", (1.01, 1.10), snipers),
    )
    for book, factor, sniping in books:
        url = _database(f"orders_bench_watch_{book}")
        _fill(url, orders, factor)
        if sniping:
            _fill_snipers(url, sniping)
        reports = asyncio.run(_ticks(url, ticks))
        out[book] = {
            "ticks": ticks,
            "priced": min(r.priced for r in reports),
            "triggered": sum(r.triggered for r in reports),
            "snipers": sniping,
            "quotes_per_tick": max(r.quotes for r in reports),
            "accounts_read": reports[-1].accounts,
            "engine_ms": percentiles([r.engine_seconds * 1000 for r in reports]),
            "postgres_ms": percentiles([r.db_seconds * 1000 for r in reports]),
            "rpc_ms": percentiles([r.rpc_seconds * 1000 for r in reports]),
            "tick_ms": percentiles([r.seconds * 1000 for r in reports]),
        }
        from engine import db

        db.close_all()
        from local import postgres

        postgres.drop_database(postgres.server_url(), url)
    return out


# -- trigger latency ------------------------------------------------------------------------------


def _post(url: str, body: Any, key: str | None = None, method: str = "POST") -> Any:
    from local.chain.admin import admin_headers

    headers = {"content-type": "application/json", **({"x-api-key": key} if key else {})}
    if "/admin/" in url:  # the chain's admin door takes its token
        headers.update(admin_headers())
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method=method
    )
    with urllib.request.urlopen(request, timeout=15) as reply:
        return json.loads(reply.read() or b"null")


def _set_price(rpc: str, usdc_per_sol: Decimal) -> float:
    """Move both SOL/USDC pools to the price (a real swap each, from the chain's market maker);
    returns when the first one got there (time.time()): a limit is met from that moment."""
    from local.chain import POOLS

    wsol = "So11111111111111111111111111111111111111112"
    first = 0.0
    for pool in POOLS.values():
        body = {"pool": str(pool), "baseMint": wsol, "price": str(usdc_per_sol)}
        _post(f"{rpc}/admin/pool_price", body)
        first = first or time.time()
    return first


def _submitted_at(database_url: str, order_id: str, deadline: float) -> float | None:
    import psycopg

    while time.monotonic() < deadline:
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT extract(epoch FROM at) FROM order_events"
                " WHERE order_id = %s AND status = 'submitted' ORDER BY seq LIMIT 1",
                (order_id,),
            ).fetchone()
        if row is not None:
            return float(row[0])
        time.sleep(0.01)
    return None


def trigger_latency(samples: int = 20, log: Any = None) -> dict[str, Any]:
    """Limit met on chain -> `submitted`, through a whole local stack (its functions' log lines
    go to `log`)."""
    import contextlib
    import sys

    with contextlib.redirect_stdout(log or sys.stdout):
        return _trigger_latency(samples)


def _trigger_latency(samples: int) -> dict[str, Any]:
    import psycopg

    from local import postgres
    from local.ports import free_port
    from local.stack import LOCAL_WATCH_TICK_SECONDS, Stack

    name = f"orders_bench_trigger_{uuid.uuid4().hex[:6]}"
    saved = dict(os.environ)
    stack = Stack(
        free_port(), database=name, api_key_file=None, chain_tick_seconds=0.05, chain_port=0
    )
    latencies: list[float] = []
    missed = 0
    try:
        urls = stack.start()
        base, rpc = urls["http"], urls["solana_rpc"]
        database_url = str(psycopg.conninfo.make_conninfo(postgres.server_url(), dbname=name))
        for _ in range(samples):
            _set_price(rpc, Decimal(150))
            expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            accepted = _post(
                f"{base}/api/orders/execute",
                {
                    "orderType": "limit",
                    "tokenIn": "SOL",
                    "tokenOut": "USDC",
                    "amountIn": "0.01",
                    "limitPrice": "153",
                    "expiresAt": expires,
                },
                stack.api_key,
            )
            time.sleep(0.3)  # watching: a tick or so passes without the limit met
            met_at = _set_price(rpc, Decimal(160))
            at = _submitted_at(database_url, accepted["orderId"], time.monotonic() + 20)
            if at is None:
                missed += 1
                continue
            latencies.append((at - met_at) * 1000)
            time.sleep(0.2)
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        postgres.drop_database(postgres.server_url(), str(_conninfo(postgres.server_url(), name)))
    return {
        "samples": samples,
        "missed": missed,
        "tick_seconds": float(os.environ.get("LOCAL_WATCH_TICK_SECONDS", LOCAL_WATCH_TICK_SECONDS)),
        "ms": percentiles(latencies),
    }


def priced_in_own_process(orders: int, ticks: int, snipers: int = SNIPER_ORDERS) -> dict[str, Any]:
    """`priced_per_tick` in a fresh interpreter, as the watch function runs in a container of
    its own. In the bench's process, what the earlier stages left on the heap made each tick's
    full garbage collection (the tick's 10,000 orders outlive it) cost up to ~100 ms more,
    landing in the engine's share of some ticks and not others."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "priced.json"
        code = (
            "import json, pathlib; from bench.watching import priced_per_tick; "
            f"pathlib.Path({str(out)!r}).write_text("
            f"json.dumps(priced_per_tick({orders}, {ticks}, {snipers}), default=str))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"pricing the watched book failed:\n{done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(out.read_text())
    return result


def measure(
    orders: int = TARGET_ORDERS,
    samples: int = 20,
    ticks: int = 5,
    log: Any = None,
    snipers: int = SNIPER_ORDERS,
) -> dict[str, Any]:
    out: dict[str, Any] = {"priced": priced_in_own_process(orders, ticks, snipers)}
    if samples:
        out["trigger"] = trigger_latency(samples, log)
    return out


if __name__ == "__main__":
    print(json.dumps(measure(), indent=1, default=str))
