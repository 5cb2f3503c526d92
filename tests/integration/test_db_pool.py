"""The connection pool's liveness check: a connection checked out a moment ago is handed out
without a round trip; one idle past the window is checked, and a dead one replaced."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from engine import db


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every liveness round trip the pool makes (`check_connection`), recorded."""
    made: list[object] = []
    real = ConnectionPool.check_connection

    def counted(conn: Any) -> None:
        made.append(conn)
        real(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counted))
    return made


@pytest.fixture
def pool(database_url: str, checks: list[object]) -> Iterator[db.Pool]:
    """A pool of one connection, so every checkout gets the same one back; made after
    `checks`, so whatever check it holds is the counted one."""
    p = db.pool(database_url, max_size=1, key=f"{database_url} pool-test-{uuid.uuid4()}")
    yield p
    p.close()


def backend_pid(pool: db.Pool) -> int:
    with pool.connection() as conn:
        row = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
        assert row is not None
        return int(row["pid"])


def test_a_connection_checked_out_a_moment_ago_is_handed_out_without_a_round_trip(
    pool: db.Pool, checks: list[object]
) -> None:
    first = backend_pid(pool)
    checks.clear()
    assert [backend_pid(pool) for _ in range(5)] == [first] * 5
    assert checks == []


def test_a_connection_idle_past_the_window_is_checked_and_a_dead_one_replaced(
    pool: db.Pool, checks: list[object], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "ALIVE_BYPASS_SECONDS", 0.05)
    first = backend_pid(pool)
    checks.clear()
    time.sleep(0.1)
    assert backend_pid(pool) == first  # idle past the window: checked, alive, kept
    assert len(checks) == 1
    with psycopg.connect(database_url, autocommit=True) as admin:  # Postgres drops it
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    time.sleep(0.1)
    replaced = backend_pid(pool)  # no error reaches the caller
    assert replaced != first
    assert len(checks) >= 2


def test_a_connection_that_broke_is_checked_however_recent(
    pool: db.Pool, checks: list[object]
) -> None:
    """A connection a statement found dead is never trusted for being recent."""
    with pool.connection() as conn:
        pid = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
        assert pid is not None
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    assert backend_pid(pool) != pid["pid"]
