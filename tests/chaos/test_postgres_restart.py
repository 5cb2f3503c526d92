"""Postgres restarted in the middle of a burst of orders: every order the API accepted (202)
reaches a terminal status and lands at most once; every request it did not accept got a clean
503, never a 500 or a hang.

The stack runs on a Postgres of the test's own (an embedded pgserver in a temporary directory),
so the test can restart it with `pg_ctl restart -m fast` while orders stream in.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from local.poller import wait_until
from tests.embedded_pg import embedded_postgres
from tests.stack import (
    ORDER,
    Running,
    get_order,
    http_json,
    isolated_stack,
    submit_http,
)

pytestmark = pytest.mark.chaos

ORDERS = 60
TERMINAL = {"confirmed", "failed"}


class Restartable:
    """An embedded Postgres this test owns and may restart."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.url = str(self.server.get_uri())

    def started_at(self) -> Any:
        with psycopg.connect(self.url) as conn:
            return conn.execute("SELECT pg_postmaster_start_time()").fetchone()

    def restart(self, outage_seconds: float = 2.0) -> None:
        """Stop (fast: every connection is cut), stay down a while, start again."""
        # pgserver makes its command wrappers at import time, so they are not visible to mypy.
        commands = importlib.import_module("pgserver._commands")
        commands.pg_ctl(
            ["-w", "stop", "-m", "fast"], pgdata=self.server.pgdata, user=self.server.system_user
        )
        time.sleep(outage_seconds)
        self.server.ensure_postgres_running()


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[Restartable]:
    with embedded_postgres("pg-restart") as server:
        yield Restartable(server)


@pytest.fixture
def stack(
    private_postgres: Restartable, localstack: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Running]:
    settings = {"DB_POOL_TIMEOUT": "3", "RETRY_BASE_SECONDS": "1"}
    for key, value in settings.items():  # in-process functions read them here
        monkeypatch.setenv(key, value)
    with isolated_stack(
        private_postgres.url,
        "orders_pg_restart",
        aws=localstack,
        drop=False,
        function_env=settings,  # workers get only their own environment: these too
    ) as running:
        # One order through first: the functions' first environments are up (a cold start
        # is seconds on a busy 2-core machine, and the burst measures the restart, not them).
        accepted = submit_http(running)
        assert wait_until(lambda: get_order(running, accepted["orderId"])["status"] in TERMINAL, 60)
        yield running


@pytest.mark.timeout(300)
def test_a_postgres_restart_mid_burst_loses_no_accepted_order(
    stack: Running, private_postgres: Restartable
) -> None:
    http, database_url = stack.http, stack.database_url
    replies: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def submit(i: int) -> None:
        time.sleep(i * 0.05)  # a burst spread over three seconds
        started = time.monotonic()
        reply = http_json("POST", f"{http}/api/orders/execute", ORDER)
        assert time.monotonic() - started < 15, "a request hung while Postgres restarted"
        with lock:
            replies.append(reply)

    first_start = private_postgres.started_at()
    restarter = threading.Timer(1.0, private_postgres.restart)
    restarter.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(submit, range(ORDERS)))
    restarter.join()
    assert private_postgres.started_at() != first_start  # it really went down and came back

    accepted = [body["orderId"] for code, body in replies if code == 202]
    refused = [(code, body) for code, body in replies if code != 202]
    print(f"\n{len(accepted)} accepted, {len(refused)} refused during the restart")
    assert len(replies) == ORDERS
    assert all(
        code == 503 and body["error"]["code"] == "database_unavailable" for code, body in refused
    ), refused
    assert len(accepted) >= ORDERS // 2  # the restart takes a moment, not the whole burst

    def states() -> dict[str, dict[str, Any]]:
        with psycopg.connect(database_url, row_factory=dict_row) as conn:
            rows = conn.execute(
                "SELECT id::text, status, tx_signature FROM orders WHERE id = ANY(%s::uuid[])",
                (accepted,),
            ).fetchall()
        return {r["id"]: r for r in rows}

    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        rows = states()
        if len(rows) == len(accepted) and all(r["status"] in TERMINAL for r in rows.values()):
            break
        time.sleep(0.5)
    rows = states()
    assert set(rows) == set(accepted), "an accepted order is missing from the store"
    stuck = {i: r["status"] for i, r in rows.items() if r["status"] not in TERMINAL}
    assert stuck == {}, f"orders left non-terminal: {stuck}"
    confirmed = [r for r in rows.values() if r["status"] == "confirmed"]
    assert len(confirmed) >= len(accepted) * 0.9
    assert len({r["tx_signature"] for r in confirmed}) == len(confirmed)
