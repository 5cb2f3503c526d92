"""What a deploy does to the database, once, as its owner (functions/migrate, a CloudFormation
custom resource; `make db-provision` runs it again by hand):

1. apply pending migrations (`db.migrate`), which also create the functions' roles NOLOGIN with
   their grants (migrations/005_function_roles.sql);
2. give each function's role LOGIN and the password its own secret holds, so RDS Proxy (which
   authenticates each role with that secret) and the role agree. The password is sent as a
   SCRAM-SHA-256 verifier computed here, so not even a statement log holds it;
3. make sure a first API key exists: the value of the first-key secret if it has one, else a
   new key, written to that secret first and then registered (hash only, as every key), so a
   retried deploy never leaves a key in one place and not the other.

Every step is idempotent: a deploy that changes nothing changes nothing here either.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from psycopg import Connection, OperationalError, sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from engine import db, keys
from engine.config import Settings
from engine.errors import ConfigError
from engine.secrets import secret_value_or_none, write_secret

# The roles migrations/005_function_roles.sql (and 020) create, one per function.
FUNCTION_ROLES = frozenset(
    {
        "engine_authorizer",
        "engine_submit",
        "engine_ws_connect",
        "engine_execute",
        "engine_notify",
        "engine_watch",  # 020_limit_sniper_orders.sql
        "engine_quote",
    }
)
FIRST_KEY_NAME = "first key (made at deploy)"


@dataclass(frozen=True)
class Provisioned:
    """What one run did (never a secret: the first key's id, not the key)."""

    migrations: list[str]
    logins: list[str]
    first_key_id: str | None
    first_key_created: bool

    def data(self) -> dict[str, str]:
        """The custom resource's attributes (strings, as CloudFormation wants them)."""
        return {
            "Migrations": ",".join(self.migrations),
            "Logins": ",".join(self.logins),
            "FirstApiKeyId": self.first_key_id or "",
        }


CONNECT_TIMEOUT_SECONDS = 10  # one attempt (psycopg's own default waits 130 s on a silent host)
RETRY_EVERY_SECONDS = 5


def connect_as_owner(cfg: Settings, *, wait_seconds: float = 240.0) -> Connection[DictRow]:
    """A connection as the database's owner (DATABASE_URL, or DB_SECRET_ARN through the proxy).
    A proxy whose target was registered seconds ago may still refuse connections: retried
    every few seconds, each attempt and the whole within `wait_seconds` (the caller's budget:
    CloudFormation must get its reply before the function's own timeout)."""
    login = None if cfg.database_url else db.SecretLogin(cfg.require("db_secret_arn"), cfg)
    deadline = time.monotonic() + wait_seconds
    while True:
        # libpq rounds a connect_timeout below 2 up to 2
        attempt = max(2, int(min(CONNECT_TIMEOUT_SECONDS, deadline - time.monotonic())))
        try:
            return db.SecretConnection.connect(
                db.conninfo(cfg),
                login=login,
                autocommit=True,
                prepare_threshold=None,
                row_factory=dict_row,
                connect_timeout=attempt,
            )
        except OperationalError:
            left = deadline - time.monotonic()
            if left <= 2:  # no room for another attempt
                raise
            time.sleep(min(RETRY_EVERY_SECONDS, left - 2))


def set_logins(conn: Connection[DictRow], secrets: Mapping[str, str], cfg: Settings) -> list[str]:
    """LOGIN and the password of each function role's secret (role -> secret ARN). A secret that
    names another user than its role is refused: it would give one function another's rights."""
    unknown = set(secrets) - FUNCTION_ROLES
    if unknown:
        raise ConfigError(f"no such function role: {sorted(unknown)}", field="DB_ROLE_SECRETS")
    done = []
    for role, arn in sorted(secrets.items()):
        login = db.SecretLogin(arn, cfg).credentials(fresh=True)
        if login["user"] != role:
            raise ConfigError(f"the secret for {role} names another user", field="DB_ROLE_SECRETS")
        verifier = conn.pgconn.encrypt_password(
            login["password"].encode(), role.encode(), b"scram-sha-256"
        )
        conn.execute(
            sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(verifier.decode())
            )
        )
        done.append(role)
    return done


def ensure_first_key(pool: db.Pool, secret_arn: str, cfg: Settings) -> tuple[keys.ApiKey, bool]:
    """The first API key, from its secret (made and stored there first when empty); returns
    the key and whether this run made it. A key an operator revoked stays revoked."""
    secret = secret_value_or_none(secret_arn, cfg)
    made = secret is None
    if secret is None:  # a key as keys.create_key makes them, stored before it is registered
        secret = keys.SECRET_PREFIX + secrets.token_urlsafe(32)
        write_secret(secret_arn, secret, cfg)
    return keys.ensure_key(secret, FIRST_KEY_NAME, pool=pool), made


def provision(cfg: Settings, *, wait_seconds: float = 240.0) -> Provisioned:
    """Migrate, set the function roles' logins (DB_ROLE_SECRETS), ensure the first key
    (FIRST_API_KEY_SECRET_ARN): see the module doc. `cfg` connects as the owner."""
    role_secrets = role_secrets_from(cfg.db_role_secrets or "{}")
    with connect_as_owner(cfg, wait_seconds=wait_seconds) as conn:
        applied = db.migrate(conn)
        logins = set_logins(conn, role_secrets, cfg)
    key_id, created = None, False
    if cfg.first_api_key_secret_arn:
        owner = owner_pool(cfg)
        try:
            key, created = ensure_first_key(owner, cfg.first_api_key_secret_arn, cfg)
            key_id = str(key.id)
        finally:
            owner.close()
    return Provisioned(applied, logins, key_id, created)


def owner_pool(cfg: Settings) -> db.Pool:
    """A private, one-connection pool as the owner (not the process-wide one: closed after)."""
    login = None if cfg.database_url else db.SecretLogin(cfg.require("db_secret_arn"), cfg)
    kwargs: dict[str, object] = {
        "row_factory": dict_row,
        "autocommit": True,
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    }
    if login is not None:
        kwargs.update(login=login, prepare_threshold=None)
    return ConnectionPool(
        db.conninfo(cfg),
        connection_class=db.SecretConnection,
        kwargs=kwargs,
        min_size=1,
        max_size=1,
        open=True,
        timeout=CONNECT_TIMEOUT_SECONDS * 2,  # the owner connected a moment ago: no long wait
        name="provision",
    )


def role_secrets_from(raw: str) -> dict[str, str]:
    """DB_ROLE_SECRETS: a JSON object {role: secret ARN}."""
    try:
        value = json.loads(raw)
    except ValueError:
        raise ConfigError("DB_ROLE_SECRETS is not JSON", field="DB_ROLE_SECRETS") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(
            "DB_ROLE_SECRETS must map each function role to its secret ARN",
            field="DB_ROLE_SECRETS",
        )
    return dict(value)
