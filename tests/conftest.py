"""Shared fixtures: a real Postgres database per test session; SQS and Secrets Manager from
LocalStack, started once per session (or LOCALSTACK_ENDPOINT's); moto's server where it is the
better tool (the API Gateway management API, which LocalStack's free edition does not serve)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from engine import db, keys, limits
from engine.store import Store
from engine.tokens import USDC_DEVNET_MINT, WSOL_MINT
from local import postgres

if TYPE_CHECKING:
    from bench.quoting import CountingApp
    from local.chain import LocalChain

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "orders-test")


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    return postgres.server_url()


@pytest.fixture(scope="session")
def session_env() -> Iterator[pytest.MonkeyPatch]:
    """The session's changes to os.environ (the database, the queues), undone at its end."""
    with pytest.MonkeyPatch.context() as env:
        yield env


@pytest.fixture(scope="session")
def database_url(pg_base_url: str, session_env: pytest.MonkeyPatch) -> Iterator[str]:
    """A database of this session's own (so of this test worker's own under pytest-xdist)."""
    url = postgres.create_database(pg_base_url, "orders_test")
    session_env.setenv("DATABASE_URL", url)
    Store(db.pool(url)).migrate()
    yield url
    db.close_all()
    postgres.drop_database(pg_base_url, url)


@pytest.fixture
def store(database_url: str) -> Store:
    return Store(db.pool(database_url))


@pytest.fixture(scope="session")
def api_key(database_url: str) -> tuple[keys.ApiKey, str]:
    """The session's API key and its secret. Its in-flight limit and its SOL and USDC limits
    are out of reach: tests make many orders that never execute, some larger than the wallet
    holds (tests/integration/test_api_keys.py and test_key_limits.py test the limits)."""
    pool = db.pool(database_url)
    made = keys.create_key("tests", max_in_flight=1_000_000, pool=pool)
    huge = limits.MintLimit(Decimal(10**15), Decimal(10**18))
    limits.set_limits(pool, made[0].id, {WSOL_MINT: huge, USDC_DEVNET_MINT: huge})
    return made


@pytest.fixture(scope="session")
def localstack() -> Iterator[str]:
    """LocalStack's endpoint (SQS, Secrets Manager): one process for the whole session, on a
    free loopback port, stopped at the session's end (and with this process, however it ends:
    local/localstack_boot.py); LOCALSTACK_ENDPOINT's instead when set. If it cannot start, every
    test that needs it errors with LocalStack's log tail: there is no fallback."""
    from local import localstack as ls

    with ls.start() as aws:
        yield aws.endpoint


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's server: for the API Gateway management API (post_to_connection), which the
    WebSocket tests read back from moto's backend. SQS is LocalStack's (`localstack`)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _session_prefix() -> str:
    """Queue names of this session's own: a LOCALSTACK_ENDPOINT one may serve other sessions."""
    import uuid

    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def orders_queue(localstack: str, session_env: pytest.MonkeyPatch) -> str:
    """The orders queue with the template's redrive policy, on LocalStack."""
    from local.queue import create_queues

    sqs = boto3.client("sqs", endpoint_url=localstack)
    urls = create_queues(sqs, prefix=_session_prefix())
    session_env.setenv("ORDERS_QUEUE_URL", urls.orders)
    session_env.setenv("SQS_ENDPOINT_URL", localstack)
    return urls.orders


@pytest.fixture(scope="session")
def status_queue(localstack: str, session_env: pytest.MonkeyPatch) -> str:
    """The status-events queue (and DLQ) with the template's settings, on LocalStack; the
    functions that publish status triggers read it from STATUS_QUEUE_URL."""
    from local.stack import create_status_queues

    sqs = boto3.client("sqs", endpoint_url=localstack)
    session_env.setenv("SQS_ENDPOINT_URL", localstack)
    urls = create_status_queues(sqs, prefix=_session_prefix())
    session_env.setenv("STATUS_QUEUE_URL", urls.status)
    return urls.status


@pytest.fixture
def counting_chain() -> Iterator[LocalChain]:
    """A freshly seeded chain producing blocks (every 10 ms), its RPC app counting every request
    it gets by method (`rpc_calls(chain)`)."""
    from bench.quoting import CountingApp
    from local.chain import LocalChain

    chain = LocalChain.seeded()
    chain.app = CountingApp(chain.app)
    chain.start_ticker(0.01)
    yield chain
    chain.stop()


def rpc_calls(chain: LocalChain) -> CountingApp:
    """The request counter of a `counting_chain`."""
    from bench.quoting import CountingApp

    assert isinstance(chain.app, CountingApp)
    return chain.app


@pytest.fixture(scope="session")
def served_chain() -> Iterator[tuple[LocalChain, str]]:
    """The seeded local chain over a real socket, producing blocks; the engine's env points at it
    (SOLANA_RPC_URL, VENUE_POOLS, WALLET_PRIVATE_KEY), as `make run` does."""
    from local.chain import LocalChain, local_env, serve_in_thread

    chain = LocalChain.seeded()
    chain.start_ticker(0.05)
    url, stop = serve_in_thread(chain)
    with pytest.MonkeyPatch.context() as env:
        for key, value in local_env(url).items():
            env.setenv(key, value)
        yield chain, url
    stop()
    chain.stop()


@pytest.fixture
def private_orders_queue(orders_queue: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An orders queue (and DLQ) of the test's own, so messages other tests left behind in the
    shared one cannot be received here."""
    import uuid

    from local.queue import create_queues

    sqs = boto3.client("sqs", endpoint_url=os.environ["SQS_ENDPOINT_URL"])
    urls = create_queues(sqs, prefix=f"t{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("ORDERS_QUEUE_URL", urls.orders)
    yield urls.orders
    monkeypatch.undo()


# Fixtures that start an emulated AWS service for the session (LocalStack, moto's server): a
# test that uses one, directly or through another fixture, is not part of `make check`'s quick
# loop (item.fixturenames holds every fixture a test needs, transitively).
EMULATOR_FIXTURES = frozenset(
    {"localstack", "moto_server", "orders_queue", "status_queue", "private_orders_queue"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if EMULATOR_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.emulator)


# Each suite's time (the first folder under tests/), printed at the end of every run, and the
# tests that skipped: where CI runs (CI set), a skip fails the run, since a part that is missing
# there (a fixture, a program, the browser) would otherwise leave the run green.
_suite_seconds: dict[str, float] = {}
_suite_tests: dict[str, set[str]] = {}
_skipped: list[str] = []


def _suite(nodeid: str) -> str:
    parts = nodeid.split("::", 1)[0].split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else parts[0]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    suite = _suite(report.nodeid)
    _suite_seconds[suite] = _suite_seconds.get(suite, 0.0) + report.duration
    _suite_tests.setdefault(suite, set()).add(report.nodeid)
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for suite, seconds in sorted(_suite_seconds.items()):
        count = len(_suite_tests[suite])
        terminalreporter.write_line(f"suite {suite}: {seconds:.1f} s ({count} tests)")
    if _skipped and os.environ.get("CI"):
        terminalreporter.write_line(
            f"{len(_skipped)} tests skipped where CI runs (CI={os.environ['CI']}); each is a "
            "missing part to install, not a pass:",
            red=True,
        )
        for nodeid in _skipped:
            terminalreporter.write_line(f"  {nodeid}", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and os.environ.get("CI") and exitstatus == 0:
        session.exitstatus = 1
