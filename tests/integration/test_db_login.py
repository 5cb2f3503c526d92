"""Logging in to Postgres from a secret, on a server that checks passwords (SCRAM-SHA-256, as
RDS and RDS Proxy do), with the secrets in LocalStack's Secrets Manager:

- a password rotated under a live pool (ALTER ROLE + the secret's new value) does not take the
  function down: the next connection succeeds, because the refused login reads the secret again;
- the deploy step gives each function role the password its own secret holds;
- in the cloud the pool talks to the proxy over verify-full TLS, anchored in a CA file the
  layer carries, and holds no password in its connection string.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import certifi
import psycopg
import pytest
from psycopg import sql

from engine import db, provision, secrets
from engine.config import Settings
from tests.embedded_pg import embedded_postgres


class PasswordServer:
    """An embedded Postgres of this module's own that asks every role but its superuser for a
    SCRAM password (the shared test server trusts everyone, so it cannot refuse a login)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.url = str(self.server.get_uri())
        hba = Path(self.server.pgdata) / "pg_hba.conf"
        hba.write_text("local all postgres trust\nlocal all all scram-sha-256\n")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute("SELECT pg_reload_conf()")

    def url_for(self, user: str, password: str | None = None) -> str:
        extra = {"password": password} if password is not None else {}
        return str(psycopg.conninfo.make_conninfo(self.url, user=user, **extra))

    def admin(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(statement)


@pytest.fixture(scope="module")
def server() -> Iterator[PasswordServer]:
    with embedded_postgres("scram") as embedded:
        yield PasswordServer(embedded)


@pytest.fixture
def secrets_manager(localstack: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """LocalStack's Secrets Manager (the session's): a real secret to rotate, reached through
    engine.secrets as in the cloud."""
    monkeypatch.setenv("SECRETS_ENDPOINT_URL", localstack)
    secrets._client.cache_clear()
    secrets._provider.cache_clear()
    yield boto3.client("secretsmanager", endpoint_url=localstack, region_name="us-east-1")
    secrets._client.cache_clear()
    secrets._provider.cache_clear()


def make_role(server: PasswordServer, password: str) -> str:
    role = f"app_{uuid.uuid4().hex[:8]}"
    server.admin(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), password))
    return role


def whoami(pool: db.Pool) -> str:
    with pool.connection() as conn:
        row = conn.execute("SELECT current_user AS me").fetchone()
    assert row is not None
    return str(row["me"])


def test_a_rotated_password_is_picked_up_by_the_next_connection(
    server: PasswordServer, secrets_manager: Any
) -> None:
    role = make_role(server, "first-password-0123")
    arn = secrets_manager.create_secret(
        Name=f"db-{role}",
        SecretString=json.dumps({"username": role, "password": "first-password-0123"}),
    )["ARN"]
    login = db.SecretLogin(arn, Settings.from_env())
    url = server.url_for(role)  # no password: it comes from the secret
    key = f"rotation {role}"
    pool = db.pool(url, max_size=3, timeout=5, login=login, key=key)
    try:
        assert whoami(pool) == role
        with pool.connection() as held:  # a session opened before the rotation
            # Taking the only connection makes the pool open a spare in the background: let it,
            # so that the connection the test asks for after the rotation is a new one.
            wait_for(lambda: pool.get_stats()["pool_size"] == 2)
            # RDS rotates: the database gets a new password, the secret its new value.
            server.admin(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role), "second-password-4567"
                )
            )
            secrets_manager.put_secret_value(
                SecretId=arn,
                SecretString=json.dumps({"username": role, "password": "second-password-4567"}),
            )
            # What the container still has cached is refused now...
            assert login.credentials()["password"] == "first-password-0123"
            with pytest.raises(psycopg.OperationalError) as refused:
                psycopg.connect(server.url_for(role, "first-password-0123")).close()
            assert db.login_refused(refused.value)
            # ...yet the pool's next new connection logs in, with the secret read again.
            with pool.connection() as spare, pool.connection() as fresh:
                assert len({id(held), id(spare), id(fresh)}) == 3
                assert fresh.execute("SELECT current_user AS me").fetchone() == {"me": role}
            assert held.execute("SELECT 1 AS one").fetchone() == {"one": 1}  # not cut off
        stats = pool.get_stats()
        assert stats["connections_num"] == 3  # the third was opened after the rotation
        assert stats.get("connections_errors", 0) == 0  # and its refused login never surfaced
        assert login.credentials()["password"] == "second-password-4567"  # the cache moved on
        # Still one pool for this database and secret: the new password opened no second one.
        assert db.pool(url, login=login, key=key) is pool
        assert [k for k in db._pools if k.startswith("rotation ")] == [key]
    finally:
        pool.close()
        db._pools.pop(key, None)


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_wrong_password_is_refused_after_one_fresh_read(
    server: PasswordServer, secrets_manager: Any
) -> None:
    """A secret that is simply wrong fails the connection (after one re-read), never loops."""
    role = make_role(server, "right-password-0123")
    arn = secrets_manager.create_secret(
        Name=f"db-{role}", SecretString=json.dumps({"username": role, "password": "wrong-pw"})
    )["ARN"]
    with pytest.raises(psycopg.OperationalError) as refused:
        db.SecretConnection.connect(
            server.url_for(role), login=db.SecretLogin(arn, Settings.from_env())
        )
    assert db.login_refused(refused.value)
    assert "wrong-pw" not in str(refused.value)


def test_a_database_that_is_down_is_not_mistaken_for_a_refused_login(tmp_path: Path) -> None:
    with pytest.raises(psycopg.OperationalError) as down:
        psycopg.connect(f"host={tmp_path} port=1 dbname=x user=x connect_timeout=1").close()
    assert not db.login_refused(down.value)


def test_the_deploy_step_gives_each_function_role_its_secrets_password(
    server: PasswordServer, secrets_manager: Any
) -> None:
    role = "engine_authorizer"
    server.admin(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    server.admin(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    password = "generated-by-secrets-manager-0123"
    arn = secrets_manager.create_secret(
        Name=f"authorizer-db-{role}",
        SecretString=json.dumps({"username": role, "password": password}),
    )["ARN"]
    with pytest.raises(psycopg.OperationalError):  # NOLOGIN until the deploy step runs
        psycopg.connect(server.url_for(role, password)).close()

    with psycopg.connect(server.url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        assert provision.set_logins(conn, {role: arn}, Settings.from_env()) == [role]
        stored = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()
    assert stored is not None
    assert stored["rolpassword"].startswith("SCRAM-SHA-256$")  # a verifier, never the password

    with psycopg.connect(server.url_for(role, password)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.url_for(role, password + "x")).close()


def test_a_role_secret_naming_another_user_is_refused(
    server: PasswordServer, secrets_manager: Any
) -> None:
    arn = secrets_manager.create_secret(
        Name=f"swapped-{uuid.uuid4().hex[:8]}",
        SecretString=json.dumps({"username": "engine_execute", "password": "p"}),
    )["ARN"]
    with (
        psycopg.connect(server.url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn,
        pytest.raises(Exception, match="names another user"),
    ):
        provision.set_logins(conn, {"engine_submit": arn}, Settings.from_env())


def test_the_cloud_connection_verifies_the_proxy_with_a_ca_file_the_layer_carries() -> None:
    cfg = Settings.from_env(
        {
            "DB_HOST": "orders-db-abc.proxy-xyz.us-east-1.rds.amazonaws.com",
            "DB_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db",
            "DB_NAME": "orders",
        }
    )
    params = psycopg.conninfo.conninfo_to_dict(db.conninfo(cfg))
    assert params["sslmode"] == "verify-full"  # the certificate must also name the host
    assert params["sslrootcert"] == certifi.where()
    assert Path(certifi.where()).is_file()
    assert "password" not in params  # it comes from the secret
    assert "user" not in params
    # RDS Proxy's certificates are issued by ACM and chain to Amazon Trust Services' roots;
    # the bundle must hold them (the RDS CA bundle, for instance endpoints, does not).
    context = ssl.create_default_context(cafile=certifi.where())
    roots = {
        str(attribute[1])
        for cert in context.get_ca_certs()
        for rdn in cert["subject"]
        for attribute in rdn
        if attribute[0] == "commonName"
    }
    assert {"Amazon Root CA 1", "Amazon Root CA 2", "Amazon Root CA 3", "Amazon Root CA 4"} <= roots
    assert "Starfield Services Root Certificate Authority - G2" in roots
