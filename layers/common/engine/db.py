"""Postgres connections: one small psycopg_pool per process and database, opened on first use.

In Lambda a process is one container; the local stack runs several containers in one process,
and they share the pool of the database they name.

Locally a pool connects with `DATABASE_URL`. In the cloud it connects to RDS Proxy as the
function's own database role, whose login lives in a Secrets Manager secret (`DB_SECRET_ARN`),
and guarantees:
- **Rotation does not take the function down.** The password is not baked into the pool: each
  new connection takes the secret's current value (cached for `LOGIN_MAX_AGE`), and a
  connection the server refuses is retried once with the secret read again, bypassing the
  cache. A warm container whose password was rotated reconnects on its next connection instead
  of failing until it is recycled. One pool per database and secret, whatever the password:
  rotation never opens a second pool beside the first.
- **The proxy can multiplex.** Prepared statements pin an RDS Proxy session to one client for
  the connection's life, so psycopg's automatic preparation is off (`prepare_threshold=None`).
- **The proxy is who it says.** TLS with `sslmode=verify-full`: the certificate must chain to a
  trusted root and name the proxy's host. RDS Proxy's certificates are issued by AWS
  Certificate Manager (Amazon Trust Services roots, not the RDS CA bundle that instance
  endpoints use), and the Mozilla root store that the `certifi` package carries in the layer
  holds those roots: nothing is downloaded at run time.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any, Self

import certifi
from psycopg import Connection, OperationalError
from psycopg.conninfo import make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from engine.config import Settings
from engine.errors import ConfigError
from engine.secrets import read_secret

Pool = ConnectionPool[Connection[DictRow]]
_lock = threading.Lock()
_pools: dict[str, Pool] = {}
# How long a login read from Secrets Manager is reused for new connections. A rotated password
# is picked up at once anyway: a refused login reads the secret again.
LOGIN_MAX_AGE = 300
# What libpq says when the server refuses a login (SQLSTATE 28P01 / 28000 carry no diagnostics
# at connection time, so the message is all there is): Postgres's own wording, and RDS Proxy's.
_LOGIN_REFUSED = ("password authentication failed", "authentication failed", "no pg_hba.conf")


@dataclass(frozen=True)
class SecretLogin:
    """A database login kept in Secrets Manager (`{"username", "password"}`, as RDS and the
    template's role secrets hold it), read through `engine.secrets` (Powertools, cached)."""

    secret_arn: str
    cfg: Settings

    def credentials(self, *, fresh: bool = False) -> dict[str, str]:
        value = read_secret(self.secret_arn, self.cfg, max_age=LOGIN_MAX_AGE, fresh=fresh)
        try:
            creds = json.loads(value)
            return {"user": str(creds["username"]), "password": str(creds["password"])}
        except (ValueError, KeyError, TypeError):  # say nothing of the value: it is a secret
            raise ConfigError(
                f"the secret {self.secret_arn} is not a JSON login with username and password",
                field="DB_SECRET_ARN",
            ) from None


def login_refused(exc: OperationalError) -> bool:
    """Did the server refuse the credentials (rather than being down or unreachable)?"""
    return exc.sqlstate in ("28P01", "28000") or any(
        marker in str(exc).lower() for marker in _LOGIN_REFUSED
    )


class SecretConnection(Connection[DictRow]):
    """A connection whose login comes from a secret: the pool passes `login=SecretLogin`, and a
    refused login is retried once with the secret read again (it may have just been rotated)."""

    checked_out_at: float = -math.inf  # clock() of its last checkout from the pool

    @classmethod
    def connect(  # type: ignore[override]  # the pool passes our `login` through its kwargs
        cls, conninfo: str = "", *, login: SecretLogin | None = None, **kwargs: Any
    ) -> Self:
        if login is None:
            return super().connect(conninfo, **kwargs)
        try:
            return super().connect(conninfo, **{**kwargs, **login.credentials()})
        except OperationalError as exc:
            if not login_refused(exc):
                raise
        return super().connect(conninfo, **{**kwargs, **login.credentials(fresh=True)})


def conninfo(cfg: Settings) -> str:
    """DATABASE_URL locally; in the cloud, the RDS Proxy endpoint over verified TLS (the login
    is not part of it: see `SecretLogin`)."""
    if cfg.database_url:
        return cfg.database_url
    if not (cfg.db_secret_arn and cfg.db_host):
        raise ConfigError("set DATABASE_URL, or DB_HOST and DB_SECRET_ARN", field="DATABASE_URL")
    return make_conninfo(
        host=cfg.db_host,
        port=cfg.db_port,
        dbname=cfg.db_name,
        sslmode="verify-full",
        sslrootcert=certifi.where(),
    )


def open_pool(cfg: Settings) -> Pool:
    """The pool for the database the settings name."""
    if cfg.database_url:
        return pool(cfg.database_url, max_size=cfg.db_pool_max, timeout=cfg.db_pool_timeout)
    login = SecretLogin(cfg.require("db_secret_arn"), cfg)
    return pool(
        conninfo(cfg),
        max_size=cfg.db_pool_max,
        timeout=cfg.db_pool_timeout,
        login=login,
        key=f"{conninfo(cfg)} secret={login.secret_arn}",
    )


# A connection checked out of the pool less than this long ago, and idle and unbroken now, is
# handed out again without a liveness round trip (HikariCP's aliveBypassWindowMs, 500 ms by
# default, counts from its last use; this counts from its last checkout, never longer): an order
# checks a connection out ~19 times, and each check was a round trip (through RDS Proxy in AWS)
# before the statement it guards. One unused for longer (a burst's lull, a thawed container) is
# checked, and a dead one replaced, as before.
ALIVE_BYPASS_SECONDS = 0.5
clock = time.monotonic  # the window's clock (tests move their own)


def _check(conn: Connection[DictRow]) -> None:
    """The pool's check on checkout: `check_connection` (a round trip, raising if the
    connection is dead), unless the connection was checked out a moment ago and is idle and
    unbroken now. (Not the pool's `reset` callback to mark returns: with one, psycopg_pool
    returns every connection through a worker thread instead of at once.)"""
    now = clock()
    recent = (
        isinstance(conn, SecretConnection)
        and now - conn.checked_out_at < ALIVE_BYPASS_SECONDS
        and not conn.broken
        and conn.pgconn.transaction_status == TransactionStatus.IDLE
    )
    if not recent:
        ConnectionPool.check_connection(conn)
    if isinstance(conn, SecretConnection):  # the pool's connection_class
        conn.checked_out_at = now


def pool(
    url: str,
    *,
    max_size: int = 4,
    timeout: float = 5.0,
    login: SecretLogin | None = None,
    key: str | None = None,
) -> Pool:
    """One pool per connection string (or `key`) in this process (the first caller's sizes
    win). With a `login`, connections authenticate with the secret's current value and do not
    prepare statements (RDS Proxy would pin them)."""
    name = key or url
    with _lock:
        existing = _pools.get(name)
        if existing is None:
            kwargs: dict[str, Any] = {"row_factory": dict_row, "autocommit": True}
            if login is not None:
                kwargs.update(login=login, prepare_threshold=None)
            existing = ConnectionPool(
                url,
                connection_class=SecretConnection,
                kwargs=kwargs,
                min_size=1,
                max_size=max_size,
                # A dead connection (Postgres restarted) is replaced instead of failing a request
                # (one used a moment ago is trusted: `_check`).
                check=_check,
                open=True,
                # Fail fast when Postgres is down (a restart, a failover): callers answer 503 or
                # leave the message for redelivery instead of holding a Lambda for 30 s.
                timeout=timeout,
                name="orders",
            )
            _pools[name] = existing
        return existing


def close_all() -> None:
    with _lock:
        for p in _pools.values():
            p.close()
        _pools.clear()


def migrate(conn: Connection[DictRow]) -> list[str]:
    """Apply pending migrations in order; safe to run concurrently and repeatedly. Run as the
    database's owner: once per deploy in the cloud (functions/migrate), by the local stack and
    the tests locally. The functions' own roles may not create or alter anything."""
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
