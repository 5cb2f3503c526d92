"""Shared fixtures: a real Postgres database per test session; SQS and Secrets Manager from
LocalStack, started once per session (or LOCALSTACK_ENDPOINT's); moto's server where it is the
better tool (the API Gateway management API, which LocalStack's free edition does not serve)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

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
def database_url(pg_base_url: str) -> Iterator[str]:
    url = postgres.create_database(pg_base_url, "orders_test")
    os.environ["DATABASE_URL"] = url
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
def orders_queue(localstack: str) -> str:
    """The orders queue with the template's redrive policy, on LocalStack."""
    from local.queue import create_queues

    sqs = boto3.client("sqs", endpoint_url=localstack)
    urls = create_queues(sqs, prefix=_session_prefix())
    os.environ["ORDERS_QUEUE_URL"] = urls.orders
    os.environ["SQS_ENDPOINT_URL"] = localstack
    return urls.orders


@pytest.fixture(scope="session")
def status_queue(localstack: str) -> str:
    """The status-events queue (and DLQ) with the template's settings, on LocalStack; the
    functions that publish status triggers read it from STATUS_QUEUE_URL."""
    from local.stack import create_status_queues

    sqs = boto3.client("sqs", endpoint_url=localstack)
    os.environ["SQS_ENDPOINT_URL"] = localstack
    urls = create_status_queues(sqs, prefix=_session_prefix())
    os.environ["STATUS_QUEUE_URL"] = urls.status
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
    saved = {k: os.environ.get(k) for k in local_env(url)}
    os.environ.update(local_env(url))
    yield chain, url
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
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
