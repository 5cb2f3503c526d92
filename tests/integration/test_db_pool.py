"""The connection pool's liveness check: a connection checked out a moment ago is handed out
without a round trip; one idle past the window is checked, and a dead one replaced."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from engine import db
from local.poller import wait_until


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


class Clock:
    """The pool's liveness-window clock, moved by the test (never by the machine's load)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(db, "clock", fake)
    return fake


@pytest.fixture
def pool(database_url: str, checks: list[object], clock: Clock) -> Iterator[db.Pool]:
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


def backend_alive(admin: psycopg.Connection[Any], pid: int) -> bool:
    found = admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return found is not None


def test_a_connection_checked_out_a_moment_ago_is_handed_out_without_a_round_trip(
    pool: db.Pool, checks: list[object]
) -> None:
    first = backend_pid(pool)
    checks.clear()
    assert [backend_pid(pool) for _ in range(5)] == [first] * 5
    assert checks == []


def test_a_connection_idle_past_the_window_is_checked_and_a_dead_one_replaced(
    pool: db.Pool, checks: list[object], database_url: str, clock: Clock
) -> None:
    first = backend_pid(pool)
    checks.clear()
    clock.now += db.ALIVE_BYPASS_SECONDS
    assert backend_pid(pool) == first  # idle past the window: checked, alive, kept
    assert len(checks) == 1
    with psycopg.connect(database_url, autocommit=True) as admin:  # Postgres drops it
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        assert wait_until(lambda: not backend_alive(admin, first), 30)
    clock.now += db.ALIVE_BYPASS_SECONDS
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
