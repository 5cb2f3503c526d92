"""Each function's database role (migrations/005_function_roles.sql) can do what its function's
code does, and nothing else. On the real Postgres: the engine's own code runs as each role
(the authorizer's key check, the submit and WebSocket paths, the executor's transitions,
notify's delivery to a real HTTP socket), every statement outside a role's needs is refused,
and the grants the server reports are exactly the ones listed here.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from engine import config, db, keys
from engine.authorizer import authorize
from engine.connections import Connections
from engine.notify import Fanout
from engine.orders import Status, parse_order_request, parse_quote_request
from engine.pools import PoolCache
from engine.provision import FUNCTION_ROLES
from engine.store import Store
from local.chain import LocalChain
from tests.integration.test_watcher import passed

# What the server must report for each role: table-level privileges...
TABLES: dict[str, set[tuple[str, str]]] = {
    "engine_authorizer": {("api_keys", "SELECT")},
    "engine_submit": {
        ("orders", "SELECT"), ("orders", "INSERT"), ("orders", "UPDATE"),
        ("order_events", "SELECT"), ("order_events", "INSERT"),
        ("api_keys", "SELECT"),
        ("pool_pairs", "SELECT"), ("pools", "SELECT"), ("not_pools", "SELECT"),
        ("key_mint_limits", "SELECT"), ("key_positions", "SELECT"),
    },
    "engine_ws_connect": {
        ("orders", "SELECT"), ("orders", "INSERT"), ("orders", "UPDATE"),
        ("order_events", "SELECT"), ("order_events", "INSERT"),
        ("api_keys", "SELECT"),
        ("connections", "SELECT"), ("connections", "INSERT"), ("connections", "DELETE"),
        ("subscriptions", "SELECT"), ("subscriptions", "INSERT"),
        ("pool_pairs", "SELECT"), ("pools", "SELECT"), ("not_pools", "SELECT"),
        ("key_mint_limits", "SELECT"), ("key_positions", "SELECT"),
    },
    "engine_execute": {
        ("orders", "SELECT"), ("orders", "UPDATE"),
        ("order_events", "SELECT"), ("order_events", "INSERT"),
        ("pool_pairs", "SELECT"), ("pool_pairs", "INSERT"),
        ("pool_pairs", "UPDATE"), ("pool_pairs", "DELETE"),
        ("pools", "SELECT"), ("pools", "INSERT"), ("pools", "UPDATE"), ("pools", "DELETE"),
        ("not_pools", "SELECT"), ("not_pools", "INSERT"),
        ("not_pools", "UPDATE"), ("not_pools", "DELETE"),
        # the key's limits, checked again before routing; its fills' position (the trigger)
        ("key_mint_limits", "SELECT"),
        ("key_positions", "SELECT"), ("key_positions", "INSERT"), ("key_positions", "UPDATE"),
    },
    "engine_notify": {
        ("order_events", "SELECT"),
        ("connections", "SELECT"), ("connections", "DELETE"),
        ("subscriptions", "SELECT"),
    },
    "engine_watch": {
        ("orders", "SELECT"), ("orders", "UPDATE"),
        ("order_events", "SELECT"), ("order_events", "INSERT"),
        ("pool_pairs", "SELECT"), ("pool_pairs", "INSERT"),
        ("pool_pairs", "UPDATE"), ("pool_pairs", "DELETE"),
        ("pools", "SELECT"), ("pools", "INSERT"), ("pools", "UPDATE"), ("pools", "DELETE"),
        ("not_pools", "SELECT"), ("not_pools", "INSERT"),
        ("not_pools", "UPDATE"), ("not_pools", "DELETE"),
        ("pool_births", "SELECT"), ("pool_births", "INSERT"), ("pool_births", "UPDATE"),
        ("watch_cursors", "SELECT"), ("watch_cursors", "INSERT"), ("watch_cursors", "UPDATE"),
    },
    "engine_quote": {
        ("pool_pairs", "SELECT"), ("pool_pairs", "INSERT"),
        ("pool_pairs", "UPDATE"), ("pool_pairs", "DELETE"),
        ("pools", "SELECT"), ("pools", "INSERT"), ("pools", "UPDATE"), ("pools", "DELETE"),
        ("not_pools", "SELECT"), ("not_pools", "INSERT"),
        ("not_pools", "UPDATE"), ("not_pools", "DELETE"),
    },
}  # fmt: skip
# ...and the single columns some may update (a row lock needs UPDATE on one column) or read
# (notify: whether a connection's key is revoked, and nothing else of the key).
COLUMN_GRANTS: dict[str, set[tuple[str, str, str]]] = {
    "engine_authorizer": set(),
    "engine_submit": {("api_keys", "created_at", "UPDATE")},
    "engine_ws_connect": {
        ("api_keys", "created_at", "UPDATE"),
        ("subscriptions", "delivered_seq", "UPDATE"),
    },
    # execute and watch: whether an order's key is revoked (nothing of a revoked key is
    # triggered or sent), and nothing else of the key
    "engine_execute": {
        # the key's row lock while an exact-out market order's maxAmountIn is stored
        ("api_keys", "created_at", "UPDATE"),
        ("api_keys", "id", "SELECT"),
        ("api_keys", "revoked_at", "SELECT"),
        ("api_keys", "max_slippage", "SELECT"),
        ("api_keys", "limit_price_guard", "SELECT"),
    },
    "engine_notify": {
        ("subscriptions", "delivered_seq", "UPDATE"),
        ("api_keys", "id", "SELECT"),
        ("api_keys", "revoked_at", "SELECT"),
    },
    "engine_watch": {("api_keys", "id", "SELECT"), ("api_keys", "revoked_at", "SELECT")},
    "engine_quote": set(),
}
# Statements no function role may run.
NOBODY = [
    "CREATE TABLE intruder (x int)",
    "DROP TABLE orders",
    "ALTER TABLE orders ADD COLUMN x int",
    "TRUNCATE orders",
    "SELECT * FROM schema_migrations",
    "INSERT INTO api_keys (id, name, prefix, key_hash) VALUES"
    " (gen_random_uuid(), 'x', 'oek_x', sha256('x'::bytea))",
    "UPDATE api_keys SET revoked_at = NULL",
    "UPDATE api_keys SET max_in_flight = 1000000",
    "DELETE FROM api_keys",
    "UPDATE order_events SET status = 'confirmed'",
    "DELETE FROM order_events",
    "DELETE FROM orders",
    "CREATE ROLE intruder",
]
# And what each may not do that another role may.
REFUSED: dict[str, list[str]] = {
    "engine_authorizer": [
        "SELECT * FROM orders",
        "SELECT * FROM order_events",
        "SELECT * FROM connections",
        "SELECT * FROM subscriptions",
        "SELECT * FROM api_keys FOR UPDATE",
    ],
    "engine_submit": ["SELECT * FROM connections", "SELECT * FROM subscriptions"],
    "engine_ws_connect": ["UPDATE subscriptions SET created_at = now()"],
    "engine_execute": [
        "SELECT * FROM api_keys",
        "SELECT * FROM connections",
        "SELECT * FROM subscriptions",
        "INSERT INTO orders (id) VALUES (gen_random_uuid())",
    ],
    "engine_notify": [
        "SELECT * FROM orders",
        "SELECT * FROM api_keys",
        "SELECT key_hash FROM api_keys",
        "UPDATE orders SET status = 'failed'",
        "INSERT INTO order_events (order_id, seq, status) VALUES (gen_random_uuid(), 1, 'x')",
        "INSERT INTO connections (connection_id) VALUES ('x')",
    ],
    "engine_watch": [
        "SELECT * FROM api_keys",
        "SELECT * FROM connections",
        "SELECT * FROM subscriptions",
        "INSERT INTO orders (id) VALUES (gen_random_uuid())",
        "DELETE FROM pool_births",
        "DELETE FROM watch_cursors",
    ],
    "engine_quote": [
        "SELECT * FROM orders",
        "SELECT * FROM order_events",
        "SELECT * FROM api_keys",
        "SELECT * FROM pool_births",
        "UPDATE orders SET status = 'failed'",
    ],
}


@pytest.fixture(scope="module")
def role_pools(database_url: str) -> Iterator[dict[str, db.Pool]]:
    """A pool per function role, logged in as that role (the deploy step gives the roles LOGIN;
    the local server trusts the login, tests/integration/test_db_login.py checks passwords)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for role in FUNCTION_ROLES:
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(role)))
    pools = {
        role: db.pool(
            str(psycopg.conninfo.make_conninfo(database_url, user=role)),
            max_size=2,
            key=f"role {role} {database_url}",
        )
        for role in FUNCTION_ROLES
    }
    yield pools
    for role, pool in pools.items():
        pool.close()
        db._pools.pop(f"role {role} {database_url}", None)


class ManagementApi:
    """An HTTP server on a real socket that answers post_to_connection as API Gateway does:
    200, or 410 for a connection id that starts with "gone"."""

    def __init__(self) -> None:
        posted: list[tuple[str, dict[str, Any]]] = []
        self.posted = posted

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                connection_id = self.path.rsplit("/", 1)[-1]
                body = self.rfile.read(int(self.headers["content-length"] or 0))
                gone = connection_id.startswith("gone")
                if not gone:
                    posted.append((connection_id, json.loads(body)))
                self.send_response(410 if gone else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def management_api() -> Iterator[ManagementApi]:
    api = ManagementApi()
    yield api
    api.server.shutdown()


def grants(conn: psycopg.Connection[Any], role: str) -> tuple[set[Any], set[Any]]:
    tables = {
        (r[0], r[1])
        for r in conn.execute(
            "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = %s AND table_schema = 'public'",
            (role,),
        )
    }
    columns = {
        (r[0], r[1], r[2])
        for r in conn.execute(
            "SELECT table_name, column_name, privilege_type"
            " FROM information_schema.column_privileges"
            " WHERE grantee = %s AND table_schema = 'public'"
            " AND privilege_type IN ('SELECT', 'UPDATE')",
            (role,),
        )
        if (r[0], r[2]) not in tables
    }
    return tables, columns


def test_the_server_reports_exactly_the_listed_grants(database_url: str) -> None:
    assert set(TABLES) == set(COLUMN_GRANTS) == set(FUNCTION_ROLES)
    with psycopg.connect(database_url) as conn:
        for role in FUNCTION_ROLES:
            assert grants(conn, role) == (TABLES[role], COLUMN_GRANTS[role]), role
            can_login_elsewhere = conn.execute(
                "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls"
                " FROM pg_roles WHERE rolname = %s",
                (role,),
            ).fetchone()
            assert can_login_elsewhere == (False,), role


@pytest.mark.parametrize("role", sorted(FUNCTION_ROLES))
def test_each_role_is_refused_everything_else(role_pools: dict[str, db.Pool], role: str) -> None:
    for statement in NOBODY + REFUSED[role]:
        with role_pools[role].connection() as conn, pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement)


def new_order(store: Store, api_key_id: uuid.UUID) -> uuid.UUID:
    request = parse_order_request({"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01"})
    order, created = store.create_order(request, f"roles-{uuid.uuid4()}", api_key_id)
    assert created
    return order.id


def test_the_authorizer_role_checks_keys(role_pools: dict[str, db.Pool], database_url: str) -> None:
    key, secret = keys.create_key("role test", pool=db.pool(database_url))
    as_authorizer = role_pools["engine_authorizer"]
    assert keys.verify(secret, pool=as_authorizer) == key
    assert keys.verify("oek_" + "z" * 43, pool=as_authorizer) is None
    reply = authorize({"headers": {"x-api-key": secret}}, as_authorizer)
    assert reply == {"isAuthorized": True, "context": {"apiKeyId": str(key.id)}}


def test_the_submit_role_accepts_reads_and_fails_orders(
    role_pools: dict[str, db.Pool], database_url: str
) -> None:
    key, _ = keys.create_key("role test", pool=db.pool(database_url))
    store = Store(role_pools["engine_submit"])
    store.ping()
    queued = new_order(store, key.id)
    store.mark_enqueued(queued)
    refused = new_order(store, key.id)
    assert store.fail_unqueued(refused, "queue down") is not None
    assert store.get_owned_order(queued, key.id) is not None
    orders, _ = store.list_orders(10, api_key_id=key.id)
    assert {o.id for o in orders} == {queued, refused}
    assert [e.status for e in store.events(refused)] == [Status.PENDING, Status.FAILED]


def test_the_execute_role_moves_an_order_to_confirmed(
    role_pools: dict[str, db.Pool], database_url: str
) -> None:
    key, _ = keys.create_key("role test", pool=db.pool(database_url))
    order_id = new_order(Store(db.pool(database_url)), key.id)
    store = Store(role_pools["engine_execute"])
    path = [Status.PENDING, Status.ROUTING, Status.BUILDING, Status.SUBMITTED, Status.CONFIRMED]
    for old, new in itertools.pairwise(path):
        fields = {"amount_out": 1} if new is Status.CONFIRMED else None
        assert store.transition(order_id, old, new, detail={"step": str(new)}, fields=fields)
    order = store.get_order(order_id)
    assert order is not None
    assert order.status == Status.CONFIRMED
    assert order.amount_out == 1
    assert [e.seq for e in store.events(order_id)] == [1, 2, 3, 4, 5]


async def test_the_execute_role_discovers_pools_and_fills_an_order(
    role_pools: dict[str, db.Pool], database_url: str
) -> None:
    """The executor's own code, as engine_execute: discovery reads and writes the pool cache,
    the order goes all the way on the local chain; then submit's pin check reads the cache."""
    from tests.integration.test_executor import Runner

    chain = LocalChain.seeded()
    chain.start_ticker(0.01)
    try:
        key, _ = keys.create_key("role test", pool=db.pool(database_url))
        order_id = new_order(Store(db.pool(database_url)), key.id)
        store = Store(role_pools["engine_execute"])
        settings = dataclasses.replace(
            config.Settings.from_env(), solana_rpc_url="http://local-chain", solana_cluster="custom"
        )
        outcome = await Runner(store, chain, settings).run(order_id)
        assert outcome.status == "confirmed"
    finally:
        chain.stop()
    order = store.get_order(order_id)
    assert order is not None
    assert order.pool is not None
    PoolCache(role_pools["engine_submit"]).check_pin(order.pool, order.mint_in, order.mint_out)


def test_the_websocket_role_records_subscribes_and_replays(
    role_pools: dict[str, db.Pool], database_url: str, management_api: ManagementApi
) -> None:
    key, _ = keys.create_key("role test", pool=db.pool(database_url))
    pool = role_pools["engine_ws_connect"]
    order_id = new_order(Store(pool), key.id)
    connections = Connections(pool)
    cid = f"ws-{uuid.uuid4().hex[:8]}"
    connections.add(cid, endpoint=management_api.url, api_key_id=key.id)
    assert connections.get(cid) is not None
    delivery = Fanout(pool, None).subscribe_and_deliver(
        cid, order_id, 0, endpoint=management_api.url
    )
    assert (delivery.outcome, delivery.posted) == ("ok", 1)
    assert connections.delivered_seq(cid, order_id) == 1
    assert management_api.posted[-1][0] == cid
    assert connections.remove(cid)


def test_the_notify_role_delivers_and_forgets_gone_connections(
    role_pools: dict[str, db.Pool], database_url: str, management_api: ManagementApi
) -> None:
    owner = db.pool(database_url)
    key, _ = keys.create_key("role test", pool=owner)
    order_id = new_order(Store(owner), key.id)
    live, gone = f"ws-{uuid.uuid4().hex[:8]}", f"gone-{uuid.uuid4().hex[:8]}"
    for cid in (live, gone):
        Connections(owner).subscribe(cid, order_id, 0, endpoint=management_api.url)
    with owner.connection() as conn:  # connected long ago: a 410 now means it is gone
        conn.execute(
            "UPDATE connections SET connected_at = now() - interval '1 hour'"
            " WHERE connection_id = %s",
            (gone,),
        )
    outcomes = {
        d.connection_id: d.outcome
        for d in Fanout(role_pools["engine_notify"], None).fan_out(order_id)
    }
    assert outcomes == {live: "ok", gone: "gone"}
    assert Connections(owner).get(gone) is None  # deleted, its subscriptions with it
    assert Connections(owner).delivered_seq(live, order_id) == 1
    assert (live, order_id) in {(c, uuid.UUID(f["orderId"])) for c, f in management_api.posted}


async def test_the_watch_role_triggers_expires_and_finds_new_pools(
    role_pools: dict[str, db.Pool], database_url: str
) -> None:
    """The watcher's own code, as engine_watch: discovery and the pool cache, a limit order
    triggered, one expired, a sniper order's new pool found by the signatures of the programs
    (getProgramAccounts refused: the cursor table too) and recorded."""
    from datetime import UTC, datetime, timedelta

    from engine.queue import OrdersQueue
    from execution.chain import Chain
    from execution.watcher import Watcher
    from local import pools as local_pools
    from local.chain import client_for, seed

    chain = LocalChain.seeded()
    chain.start_ticker(0.01)
    owner = Store(db.pool(database_url))
    try:
        with owner.pool.connection() as conn:  # what earlier tests left watching is not ours
            conn.execute("UPDATE orders SET expires_at = now() WHERE status = 'watching'")
        key, _ = keys.create_key("role test", pool=db.pool(database_url))
        soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        limit = {"orderType": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01"}
        met = owner.create_order(
            parse_order_request({**limit, "limitPrice": "140", "expiresAt": later}), None, key.id
        )[0]
        ending = owner.create_order(
            parse_order_request({**limit, "limitPrice": "900", "expiresAt": soon}), None, key.id
        )[0]
        chain.faults.update(refuse_methods=["getProgramAccounts"])
        client = client_for(chain)
        mint, _ = await local_pools.mint_new_token(client, seed.WALLET_KEYPAIR, 6, 10**12)
        sniper = {"orderType": "sniper", "tokenIn": "USDC", "tokenOut": str(mint)}
        snipe = owner.create_order(
            parse_order_request({**sniper, "amountIn": "5", "expiresAt": later}),
            None,
            key.id,
            watch_from_slot=chain.ledger.slot,
        )[0]
        created = await local_pools.create_pool(
            client, local_pools.PoolRequest("raydium_cpmm", mint=str(mint)), seed.WALLET_KEYPAIR
        )
        settings = dataclasses.replace(
            config.Settings.from_env(),
            solana_rpc_url="http://local-chain",
            solana_cluster="custom",
            pools=(),
        )
        store = Store(role_pools["engine_watch"])
        watcher = Watcher(
            store, Chain("http://local-chain", client_for(chain)), OrdersQueue(None), settings
        )
        # Pools of SOL/USDC come from the pool cache, as the executor's (no getProgramAccounts).
        chain.faults.update(refuse_methods=[])
        first = await watcher.tick()
        chain.faults.update(refuse_methods=["getProgramAccounts"])
        await passed(owner, ending.expires_at)  # the database's clock, which expiry reads
        report = await watcher.tick()
    finally:
        chain.stop()
    # `ending` expires 1 s after it was made: on a busy machine the first tick may already
    # come after that, so either tick may be the one that expired it.
    assert first.expired + report.expired >= 1
    assert store.get_order(met.id).status == Status.TRIGGERED  # type: ignore[union-attr]
    assert store.get_order(ending.id).status == Status.EXPIRED  # type: ignore[union-attr]
    sniped = store.get_order(snipe.id)
    assert sniped is not None
    assert (sniped.status, sniped.pinned_pool) == (Status.TRIGGERED, created.pool)


async def test_the_quote_role_quotes_a_pair(
    role_pools: dict[str, db.Pool], database_url: str
) -> None:
    from execution.chain import Chain
    from execution.quote import quote_pair
    from local.chain import client_for

    chain = LocalChain.seeded()
    settings = dataclasses.replace(
        config.Settings.from_env(), solana_rpc_url="http://local-chain", solana_cluster="custom"
    )
    request = parse_quote_request({"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01"})
    reply = await quote_pair(
        Chain("http://local-chain", client_for(chain)),
        role_pools["engine_quote"],
        settings,
        request,
    )
    assert {q["venue"] for q in reply["quotes"]} == {"raydium_cpmm", "meteora_damm_v2"}
    # A small amount routes to the best single pool; 50 SOL is split over both venues, which
    # pays more than the best pool alone (reported beside it).
    [leg] = reply["route"]["legs"]
    assert (leg["pool"], reply["route"]["amountOut"]) == (reply["pool"], reply["amountOut"])
    large = await quote_pair(
        Chain("http://local-chain", client_for(chain)),
        role_pools["engine_quote"],
        settings,
        parse_quote_request({"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "50"}),
    )
    route = large["route"]
    assert {leg["venue"] for leg in route["legs"]} == {"raydium_cpmm", "meteora_damm_v2"}
    assert route == large["split"]
    assert route["gainBps"] > settings.min_split_gain_bps
    assert Decimal(route["amountOut"]) > Decimal(large["amountOut"])
