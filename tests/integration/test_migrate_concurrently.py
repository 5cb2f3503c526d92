"""Two databases on one server migrated at the same time (two stacks, two test workers, two
deploys sharing an RDS instance): function roles are per server, so both migrations create the
same roles, and the second must not fail when the first made them a moment before it.

It runs on an embedded Postgres of its own (pgserver, in a temporary directory) on which no role
exists yet: on the shared test server the roles were made long ago, so the race cannot happen."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from engine import db
from engine.provision import FUNCTION_ROLES
from local import postgres
from local.poller import wait_until
from tests.embedded_pg import embedded_postgres


@pytest.fixture(scope="module")
def fresh_server() -> Iterator[str]:
    with embedded_postgres("fresh-cluster") as server:
        yield str(server.get_uri())


def waiting_on_a_lock(admin: psycopg.Connection[Any], pid: int) -> bool:
    row = admin.execute(
        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
    ).fetchone()
    return row is not None and row[0] == "Lock"


def test_a_migration_waiting_on_another_databases_new_roles_still_succeeds(
    fresh_server: str,
) -> None:
    first = postgres.create_database(fresh_server, "orders_a")
    second = postgres.create_database(fresh_server, "orders_b")
    failures: list[BaseException] = []

    def migrate(url: str) -> None:
        try:
            with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
                db.migrate(conn)
        except BaseException as exc:
            failures.append(exc)

    with psycopg.connect(first, autocommit=True) as a, psycopg.connect(fresh_server) as admin:
        admin.autocommit = True
        # The first migration has created a role and not committed yet ...
        a.execute("BEGIN")
        a.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier("engine_authorizer")))
        # ... when the second, on another database, reaches the same CREATE ROLE: it waits.
        runner = threading.Thread(target=migrate, args=(second,))
        runner.start()
        assert wait_until(
            lambda: any(
                waiting_on_a_lock(admin, r[0])
                for r in admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s",
                    (psycopg.conninfo.conninfo_to_dict(second)["dbname"],),
                ).fetchall()
            ),
            30,
        ), "the second migration never reached the role the first holds"
        a.execute("COMMIT")  # now the role exists, made by the other database's migration
        runner.join(60)
    assert not runner.is_alive()
    assert failures == []
    with psycopg.connect(fresh_server) as admin:
        roles = {r[0] for r in admin.execute("SELECT rolname FROM pg_roles").fetchall()}
    assert roles >= FUNCTION_ROLES
