"""Postgres connections: one small psycopg_pool per process and database, opened on first use.

In Lambda a process is one container; the local stack runs several containers in one process,
and they share the pool of the database they name.
"""

from __future__ import annotations

import json
import threading
from importlib import resources

from psycopg import Connection
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from engine.config import Settings
from engine.errors import ConfigError
from engine.secrets import read_secret

Pool = ConnectionPool[Connection[DictRow]]
_lock = threading.Lock()
_pools: dict[str, Pool] = {}


def conninfo(cfg: Settings) -> str:
    """DATABASE_URL locally; in the cloud, the RDS Proxy host and the managed master secret."""
    if cfg.database_url:
        return cfg.database_url
    if not (cfg.db_secret_arn and cfg.db_host):
        raise ConfigError("set DATABASE_URL, or DB_HOST and DB_SECRET_ARN", field="DATABASE_URL")
    creds = json.loads(read_secret(cfg.db_secret_arn, cfg))
    return make_conninfo(
        host=cfg.db_host,
        port=cfg.db_port,
        dbname=cfg.db_name,
        user=creds["username"],
        password=creds["password"],
        sslmode="require",
    )


def open_pool(cfg: Settings) -> Pool:
    """The pool for the database the settings name."""
    return pool(
        conninfo(cfg),
        max_size=cfg.db_pool_max,
        timeout=cfg.db_pool_timeout,
        auto_migrate=cfg.db_auto_migrate,
    )


def pool(url: str, *, max_size: int = 4, timeout: float = 5.0, auto_migrate: bool = False) -> Pool:
    """One pool per connection string in this process (the first caller's sizes win)."""
    with _lock:
        existing = _pools.get(url)
        if existing is None:
            existing = ConnectionPool(
                url,
                connection_class=Connection[DictRow],
                kwargs={"row_factory": dict_row, "autocommit": True},
                min_size=1,
                max_size=max_size,
                # A dead connection (Postgres restarted) is replaced instead of failing a request.
                check=ConnectionPool.check_connection,
                open=True,
                # Fail fast when Postgres is down (a restart, a failover): callers answer 503 or
                # leave the message for redelivery instead of holding a Lambda for 30 s.
                timeout=timeout,
                name="orders",
            )
            if auto_migrate:
                with existing.connection() as conn:
                    migrate(conn)
            _pools[url] = existing
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
            conn.execute(f.read_text())
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied.append(version)
    return applied
