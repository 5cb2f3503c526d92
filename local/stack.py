"""The local stack in one process: `python -m local.stack` (PORT, default 3000).

Starts Postgres (DATABASE_URL, else 127.0.0.1:5432, else embedded; database `orders_local`,
migrated), moto's SQS server on loopback with the queues template.yaml declares (orders + DLQ,
status events + DLQ), the SQS pollers that play the event source mappings (execute, notify), the
template's EventBridge schedules (the watch function, with a short tick: LOCAL_WATCH_TICK_SECONDS,
default 0.25 s), the local Solana chain when there is one (see `start_chain`), and the gateway
(HTTP API, WebSocket API and management API) on 127.0.0.1:PORT. Ctrl-C or SIGTERM stops
everything.

Every order route needs an API key (the gateway runs the template's authorizer): the stack uses
LOCAL_API_KEY when set, else the key saved in `.local-data/dev-api-key` by an earlier run, else a
new one; it makes sure the key exists in the database, prints it and saves it to that file for
`make demo` and scripts.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import psycopg
from psycopg import sql

from local.handlers import ROOT

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from local.metrics import EmfCollector

log = logging.getLogger("local.stack")
Stopper = Callable[[], None]
LOCAL_DB = "orders_local"
FUNCTIONS = ("submit", "ws_connect", "execute", "notify", "quote", "watch")
DEV_KEY_FILE = ROOT / ".local-data" / "dev-api-key"
# Local runs (the demo, benchmarks, 50-order tests) keep many orders in flight; LOCAL_API_KEY_
# MAX_IN_FLIGHT lowers it to try the limit. New keys made with `make key` get the usual 20.
DEV_KEY_MAX_IN_FLIGHT = 1000
# The watcher's tick locally (the template's default is 1 s): orders trigger within a block or
# two of the chain's 400 ms.
LOCAL_WATCH_TICK_SECONDS = 0.25


@dataclass(frozen=True)
class StatusQueueUrls:
    status: str
    dlq: str


def create_status_queues(sqs: SQSClient, prefix: str = "local") -> StatusQueueUrls:
    """The status-events queue and its DLQ, with the template's visibility and redrive."""
    from local.queue import create_queue_with_dlq

    status, dlq = create_queue_with_dlq(sqs, "StatusEventsQueue", f"{prefix}-status-events")
    return StatusQueueUrls(status=status, dlq=dlq)


def template_environment() -> dict[str, str]:
    """Every function's plain (non-intrinsic) variables from the template. All functions share
    this process, so they share one environment; per-function service names are dropped."""
    from local.template import function_environment

    env: dict[str, str] = {}
    for name in FUNCTIONS:
        try:
            variables = function_environment(name)
        except KeyError:
            continue
        for key, value in variables.items():
            if isinstance(value, str) and key != "POWERTOOLS_SERVICE_NAME":
                env.setdefault(key, value)
    return env


def local_database(base_url: str, name: str = LOCAL_DB) -> str:
    """`name` beside `base_url`, created if missing, migrated."""
    with psycopg.connect(base_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(base_url, dbname=name)
    from engine import db
    from engine.store import Store

    applied = Store(db.pool(url)).migrate()
    log.info("database %s ready (migrations applied: %s)", name, applied or "none")
    return str(url)


def dev_api_key(database_url: str, key_file: Path | None = DEV_KEY_FILE) -> str:
    """The local stack's API key: LOCAL_API_KEY, else the one `key_file` holds (if it still
    works), else a new one. Created in the database when missing; saved to `key_file`."""
    from engine import db, keys

    pool = db.pool(database_url)
    limit = int(os.environ.get("LOCAL_API_KEY_MAX_IN_FLIGHT", DEV_KEY_MAX_IN_FLIGHT))
    secret = os.environ.get("LOCAL_API_KEY")
    if secret:
        if keys.ensure_key(secret, "local (LOCAL_API_KEY)", limit, pool=pool).revoked:
            raise RuntimeError("LOCAL_API_KEY is revoked in this database; unset or replace it")
    else:
        saved = key_file.read_text().strip() if key_file and key_file.is_file() else ""
        if saved and not keys.ensure_key(saved, "local development", limit, pool=pool).revoked:
            secret = saved
        else:
            secret = keys.create_key("local development", limit, pool=pool)[1]
    if key_file is not None:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(secret + "\n")
    return secret


@dataclass(frozen=True)
class ChainEndpoints:
    """Where the stack's Solana chain answers: JSON-RPC and the PubSub WebSocket."""

    rpc: str
    ws: str
    stop: Stopper


def pubsub_url(rpc_url: str) -> str:
    """The PubSub URL clients derive from an RPC URL: ws(s)://, and an explicit port + 1 (what
    @solana/web3.js does; a URL without a port keeps the scheme's default port)."""
    parts = urllib.parse.urlsplit(rpc_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    netloc = parts.netloc
    if parts.port is not None:
        netloc = netloc.rsplit(":", 1)[0] + f":{parts.port + 1}"
    return urllib.parse.urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


def start_chain(
    env: dict[str, str], tick_seconds: float | None = None, port: int | None = None
) -> ChainEndpoints:
    """The local Solana chain (a block every 400 ms unless `tick_seconds` says otherwise, seeded
    wallet and pools) with JSON-RPC on 127.0.0.1:`port` and PubSub on `port` + 1, unless
    SOLANA_RPC_URL names a real one, in which case VENUE_POOLS and WALLET_PRIVATE_KEY must come
    from the user too.

    `port` None: LOCAL_CHAIN_PORT, else 8899, as a validator; when it (or the next port) is
    taken this raises `PortInUse` naming the port and LOCAL_CHAIN_PORT - it never moves to
    another port, since the user's tools are pointed at this one. 0: a free pair (tests)."""
    if os.environ.get("SOLANA_RPC_URL"):  # the user's choice wins over the template's default
        env["SOLANA_RPC_URL"] = os.environ["SOLANA_RPC_URL"]
        log.info("using SOLANA_RPC_URL=%s", env["SOLANA_RPC_URL"])
        return ChainEndpoints(
            env["SOLANA_RPC_URL"], pubsub_url(env["SOLANA_RPC_URL"]), lambda: None
        )
    from local.chain import LocalChain, local_env, serve

    chain = LocalChain.seeded()
    try:
        served = serve(chain, port=port)
    except BaseException:
        chain.stop()
        raise
    if tick_seconds is None:
        chain.start_ticker()
    else:
        chain.start_ticker(tick_seconds)
    env.update(local_env(served.rpc_url))
    log.info("local Solana chain: RPC %s, PubSub %s", served.rpc_url, served.ws_url)

    def stop() -> None:
        served.stop()
        chain.stop()

    return ChainEndpoints(served.rpc_url, served.ws_url, stop)


class Stack:
    def __init__(
        self,
        port: int = 3000,
        host: str = "127.0.0.1",
        *,
        database: str = LOCAL_DB,
        chain_tick_seconds: float | None = None,
        sqs_endpoint_url: str | None = None,
        run_executor: bool = True,
        api_key_file: Path | None = DEV_KEY_FILE,
        chain_port: int | None = None,
        run_watcher: bool = True,
        watch_tick_seconds: float | None = None,
    ) -> None:
        self.port = port
        self.host = host
        self.database = database  # e.g. a separate one for benchmarks
        self.chain_tick_seconds = chain_tick_seconds  # None: the chain's default (400 ms)
        self.sqs_endpoint_url = sqs_endpoint_url  # an SQS server already running (else moto here)
        self.api_key_file = api_key_file  # where the key is saved for clients (None: nowhere)
        self.api_key = ""  # the key clients send (x-api-key, ?apiKey=), set by start()
        self.run_executor = run_executor  # False: the execute poller runs elsewhere (chaos)
        self.metrics: EmfCollector | None = None  # the functions' EMF metrics, once started
        # The local chain's RPC port (PubSub on the next one): None = LOCAL_CHAIN_PORT or 8899,
        # 0 = a free pair (tests run several stacks in one session).
        self.chain_port = chain_port
        self.run_watcher = run_watcher  # False: no schedule runs (a test drives the watcher)
        self.watch_tick_seconds = watch_tick_seconds  # None: LOCAL_WATCH_TICK_SECONDS
        self.schedulers: list[Any] = []
        self._stoppers: list[tuple[str, Stopper]] = []

    def _on_stop(self, name: str, stopper: Stopper) -> None:
        self._stoppers.append((name, stopper))

    def start(self) -> dict[str, str]:
        from moto.server import ThreadedMotoServer

        from local import postgres
        from local.gateway import Gateway, serve_in_thread
        from local.metrics import EmfCollector
        from local.poller import Poller, load_container
        from local.queue import create_queues

        # Moto and the gateway do not check signatures, but botocore wants something to sign with.
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "orders-local")

        # The template's values are defaults: what the user exported wins over them.
        env = {k: v for k, v in template_environment().items() if k not in os.environ}
        env["DB_POOL_MAX"] = os.environ.get("DB_POOL_MAX", "10")  # every function shares a pool
        tick = self.watch_tick_seconds or float(
            os.environ.get("LOCAL_WATCH_TICK_SECONDS", LOCAL_WATCH_TICK_SECONDS)
        )
        env["WATCH_TICK_SECONDS"] = os.environ.get("WATCH_TICK_SECONDS", str(tick))

        database_url = local_database(postgres.server_url(), self.database)
        env["DATABASE_URL"] = database_url
        self.api_key = dev_api_key(database_url, self.api_key_file)

        if self.sqs_endpoint_url:
            sqs_endpoint = self.sqs_endpoint_url
        else:
            moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            moto.start()
            self._on_stop("moto", moto.stop)
            moto_host, moto_port = moto.get_host_and_port()
            sqs_endpoint = f"http://{moto_host}:{moto_port}"
        sqs = boto3.client("sqs", endpoint_url=sqs_endpoint)
        # Queue names per database: stacks started one after another in one process (tests,
        # benchmarks) share moto's in-memory state and must not find each other's queues.
        prefix = "local" if self.database == LOCAL_DB else self.database.replace("_", "-")
        orders = create_queues(sqs, prefix=prefix)
        status = create_status_queues(sqs, prefix=prefix)

        base = f"http://{self.host}:{self.port}"
        management_secret = secrets.token_urlsafe(24)
        dlq_arn = sqs.get_queue_attributes(QueueUrl=orders.dlq, AttributeNames=["QueueArn"])
        env.update(
            ORDERS_QUEUE_URL=orders.orders,
            ORDERS_DLQ_ARN=dlq_arn["Attributes"]["QueueArn"],
            STATUS_QUEUE_URL=status.status,
            SQS_ENDPOINT_URL=sqs_endpoint,
            WS_URL=f"ws://{self.host}:{self.port}/api/orders/execute",
            # The management API answers loopback callers with this stack's secret only.
            WS_MANAGEMENT_ENDPOINT=f"{base}/{management_secret}",
        )
        chain = start_chain(env, self.chain_tick_seconds, self.chain_port)
        self._on_stop("chain", chain.stop)
        os.environ.update(env)  # the functions' containers read it when they start

        # The functions print their metrics as EMF lines on stdout, as in Lambda; read them the
        # way CloudWatch does, and serve them at /_local/metrics.
        self.metrics = EmfCollector(sys.stdout)
        self.metrics.install()
        self._on_stop("metrics", self.metrics.uninstall)
        gateway = serve_in_thread(
            Gateway(metrics=self.metrics, management_secret=management_secret).app,
            self.host,
            self.port,
        )
        self._on_stop("gateway", gateway.stop)

        notify_poller = Poller.from_template(
            sqs, status.status, "StatusEventsQueue", "notify", metrics=self.metrics
        )
        self._on_stop("notify poller", notify_poller.start().stop)
        if not self.run_executor:
            log.info("execute poller not started here (run_executor=False)")
        elif (ROOT / "functions" / "execute" / "app.py").exists():
            override = os.environ.get("LOCAL_EXECUTE_CONCURRENCY")
            kw: dict[str, Any] = {"max_concurrency": int(override)} if override else {}
            execute_poller = Poller.from_template(
                sqs, orders.orders, "OrdersQueue", "execute", metrics=self.metrics, **kw
            )
            self._on_stop("execute poller", execute_poller.start().stop)
            # The template's OrdersDeadLetters event: the same function settles dead letters.
            # Its containers are its own (instances 1000+), apart from the orders poller's.
            dead_letters = Poller(
                sqs,
                orders.dlq,
                lambda i: load_container("execute", 1000 + i),
                function_name="execute",
                batch_size=1,
                max_concurrency=2,
                metrics=self.metrics,
            )
            self._on_stop("dead-letter poller", dead_letters.start().stop)
        else:
            log.warning("functions/execute/app.py is missing: orders stay pending (no executor)")
        if self.run_watcher:
            from local.scheduler import start_schedules

            # The template's EventBridge schedules (the watcher), invoked as EventBridge would.
            self.schedulers = start_schedules(metrics=self.metrics)
            for scheduler in self.schedulers:
                self._on_stop(f"{scheduler.schedule.function} schedule", scheduler.stop)
        return {
            "http": base,
            "ws": env["WS_URL"],
            "sqs": sqs_endpoint,
            "solana_rpc": chain.rpc,
            "solana_ws": chain.ws,
            "orders_queue": orders.orders,
            "status_queue": status.status,
            "database": database_url.rsplit("@", 1)[-1],  # no credentials in the log
        }

    def stop(self) -> None:
        for name, stopper in reversed(self._stoppers):
            try:
                stopper()
            except Exception:
                log.exception("stopping %s failed", name)
        self._stoppers.clear()
        from engine import db

        db.close_all()


def main(stop: threading.Event | None = None) -> None:
    """`make run`: start the stack, print where everything answers, run until Ctrl-C/SIGTERM
    (or until `stop` is set)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
    for chatty in ("httpx", "httpx2"):  # one INFO line per RPC request would flood the log
        logging.getLogger(chatty).setLevel(logging.WARNING)
    stack = Stack(port=int(os.environ.get("PORT", "3000")))
    stop = stop or threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    from local.chain import PortInUse

    try:
        urls = stack.start()
        print(f"HTTP API   {urls['http']}   (POST /api/orders/execute, GET /api/orders/{{id}})")
        print(f"WebSocket  {urls['ws']}")
        print(f"SQS (moto) {urls['sqs']}")
        print(f"Solana RPC {urls['solana_rpc']}")
        print(f"Solana WS  {urls['solana_ws']}")
        print(f"Metrics    {urls['http']}/_local/metrics   (the functions' CloudWatch EMF metrics)")
        for scheduler in stack.schedulers:
            schedule = scheduler.schedule
            print(
                f"Schedule   {schedule.function} every {schedule.every_seconds:g} s"
                f" (template.yaml), ticking every {os.environ.get('WATCH_TICK_SECONDS')} s"
            )
        where = f" (saved in {stack.api_key_file})" if stack.api_key_file else ""
        print(f"API key    {stack.api_key}{where}: send it as x-api-key (WS: or ?apiKey=)")
        print("Ctrl-C to stop", flush=True)
        stop.wait()
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
