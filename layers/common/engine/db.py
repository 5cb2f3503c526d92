"""Postgres connections: one small psycopg_pool per container, opened on first use."""

from __future__ import annotations

import json
import threading
from importlib import resources

from psycopg import Connection
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from engine.config import settings

_lock = threading.Lock()
_pools: dict[str, ConnectionPool[Connection[DictRow]]] = {}


def conninfo() -> str:
    """DATABASE_URL locally; in the cloud, the RDS Proxy host and the managed master secret."""
    cfg = settings()
    if cfg.database_url:
        return cfg.database_url
    if not (cfg.db_secret_arn and cfg.db_host):
        raise RuntimeError("set DATABASE_URL, or DB_HOST and DB_SECRET_ARN")
    from aws_lambda_powertools.utilities import parameters

    secret = parameters.get_secret(cfg.db_secret_arn, max_age=300)
    creds = json.loads(secret if isinstance(secret, str) else secret.decode())
    return make_conninfo(
        host=cfg.db_host,
        port=cfg.db_port,
        dbname=cfg.db_name,
        user=creds["username"],
        password=creds["password"],
        sslmode="require",
    )


def pool(url: str | None = None) -> ConnectionPool[Connection[DictRow]]:
    key = url or conninfo()
    with _lock:
        existing = _pools.get(key)
        if existing is None:
            existing = ConnectionPool(
                key,
                connection_class=Connection[DictRow],
                kwargs={"row_factory": dict_row, "autocommit": True},
                min_size=1,
                max_size=settings().db_pool_max,
                # A dead connection (Postgres restarted) is replaced instead of failing a request.
                check=ConnectionPool.check_connection,
                open=True,
                # Fail fast when Postgres is down (a restart, a failover): callers answer 503 or
                # leave the message for redelivery instead of holding a Lambda for 30 s.
                timeout=settings().db_pool_timeout,
                name="orders",
            )
            if settings().db_auto_migrate:
                with existing.connection() as conn:
                    migrate(conn)
            _pools[key] = existing
        return existing


def close_all() -> None:
    with _lock:
        for p in _pools.values():
            p.close()
        _pools.clear()


def migrate(conn: Connection[DictRow]) -> list[str]:
    """Apply pending migrations in order; safe to run concurrently and repeatedly."""
    applied: list[str] = []
    files = sorted(
        (f for f in resources.files("engine.migrations").iterdir() if f.name.endswith(".sql")),
        key=lambda f: f.name,
    )
    with conn.transaction():
        # One migrator at a time across processes.
        conn.execute("SELECT pg_advisory_xact_lock(727274)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in conn.execute("SELECT version FROM schema_migrations")}
        for f in files:
            version = f.name.removesuffix(".sql")
            if version in done:
                continue
            conn.execute(f.read_text())  # type: ignore[arg-type]
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied.append(version)
    return applied
