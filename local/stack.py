"""The local stack in one process: `python -m local.stack` (PORT, default 3000).

Starts Postgres (DATABASE_URL, else 127.0.0.1:5432, else embedded; the database DATABASE_URL
names, else `orders_local`, created if missing and migrated), LocalStack on loopback (see
`local/localstack.py`; LOCALSTACK_ENDPOINT names one already running) for SQS, with the queues
template.yaml declares (orders + DLQ, status events + DLQ), and
Secrets Manager, which holds the wallet key the execute function reads through WALLET_SECRET_ARN
as in the cloud, the SQS pollers that play the event source mappings (execute, notify), the local
Solana chain when there is one (see `start_chain`), and the gateway (HTTP API, WebSocket API and
management API) on 127.0.0.1:PORT, and the template's EventBridge schedules (the watch function,
with a short tick: LOCAL_WATCH_TICK_SECONDS, default 0.25 s). Ctrl-C or SIGTERM stops
everything, LocalStack included.

SQS_ENDPOINT_URL and SECRETS_ENDPOINT_URL, when set, name the endpoint of that service instead.

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
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import boto3
import psycopg
from psycopg import sql

from local.db_roles import ensure_logins
from local.handlers import ROOT
from local.iam import AccessChecker, install_hooks

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from local.metrics import EmfCollector
    from local.workers import Functions

log = logging.getLogger("local.stack")
Stopper = Callable[[], None]
LOCAL_DB = "orders_local"
FUNCTIONS = ("submit", "ws_connect", "execute", "notify", "quote", "watch")
DEV_KEY_FILE = ROOT / ".local-data" / "dev-api-key"
# Local runs (the demo, benchmarks, 50-order tests) keep many orders in flight; LOCAL_API_KEY_
# MAX_IN_FLIGHT lowers it to try the limit. New keys made with `make key` get the usual 20.
DEV_KEY_MAX_IN_FLIGHT = 1000
LOCALSTACK_LOG = ROOT / ".local-data" / "localstack.log"  # `make run`'s; tests' stay in a tmp dir
STACK_LOG = ROOT / ".local-data" / "stack.log"  # `make run`'s functions and stack (local/output.py)
Emulator = Literal["localstack", "moto"]


@dataclass(frozen=True)
class AwsEndpoints:
    """Where the stack's SQS and Secrets Manager answer, and what serves each (for people)."""

    sqs: str
    secrets: str
    sqs_by: str  # "LocalStack", "moto", "SQS_ENDPOINT_URL", ...
    secrets_by: str


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
    from local.template import LOCAL_PARAMETERS, function_environment

    env: dict[str, str] = {}
    for name in FUNCTIONS:
        try:
            variables = function_environment(name, parameters=LOCAL_PARAMETERS)
        except KeyError:
            continue
        for key, value in variables.items():
            if isinstance(value, str) and key != "POWERTOOLS_SERVICE_NAME":
                env.setdefault(key, value)
    return env


def wallet_through_secrets_manager(
    env: dict[str, str], secrets_endpoint: str, name: str
) -> str | None:
    """Make the execute function read its key from Secrets Manager, as it does in the cloud.

    The key the local chain hands out (or the user's WALLET_PRIVATE_KEY, e.g. a devnet wallet)
    is stored as secret `name` at `secrets_endpoint` (replacing its value when it exists) and
    named by WALLET_SECRET_ARN, with SECRETS_ENDPOINT_URL; WALLET_PRIVATE_KEY leaves both `env`
    and this process's environment. A WALLET_SECRET_ARN the user set is kept as it is (a secret
    of theirs at SECRETS_ENDPOINT_URL, or in the LocalStack LOCALSTACK_ENDPOINT names). Returns
    the secret's ARN, or None when no key was given (the executor will say so)."""
    key = env.pop("WALLET_PRIVATE_KEY", None)
    users_key = os.environ.pop("WALLET_PRIVATE_KEY", None)
    env["SECRETS_ENDPOINT_URL"] = secrets_endpoint
    if os.environ.get("WALLET_SECRET_ARN"):
        env["WALLET_ADDRESS_SECRET_ARN"] = os.environ[
            "WALLET_SECRET_ARN"
        ]  # if make wallet tagged it
        return os.environ["WALLET_SECRET_ARN"]
    key = key or users_key
    if not key:
        return None
    sm = boto3.client("secretsmanager", endpoint_url=secrets_endpoint)
    try:
        arn = sm.create_secret(Name=name, SecretString=key)["ARN"]
    except sm.exceptions.ResourceExistsException:
        arn = sm.put_secret_value(SecretId=name, SecretString=key)["ARN"]
    # Its public key as a tag, as `make wallet` leaves it in the cloud: the watcher's balance.
    from engine.secrets import PUBLIC_KEY_TAG
    from execution.wallet import parse_secret

    public_key = str(parse_secret(key).pubkey())
    sm.tag_resource(SecretId=arn, Tags=[{"Key": PUBLIC_KEY_TAG, "Value": public_key}])
    env["WALLET_SECRET_ARN"] = env["WALLET_ADDRESS_SECRET_ARN"] = arn
    return arn


def local_database_name() -> str:
    """The database `make run`, `make key` and `local.keys` use: the one DATABASE_URL names,
    else `orders_local` (two stacks on one Postgres server keep their keys and orders apart
    by naming two databases)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        name = psycopg.conninfo.conninfo_to_dict(url).get("dbname")
        if name:
            return str(name)
    return LOCAL_DB


def management_file(database: str) -> Path:
    """Where a running stack keeps its management API's endpoint (with its secret) for the
    local tools (`local.keys revoke` closes sockets through it): readable by this user only,
    removed when the stack stops."""
    return ROOT / ".local-data" / f"{database}.management"


def local_database(base_url: str, name: str = LOCAL_DB) -> str:
    """`name` on `base_url`'s server, created if missing, migrated."""
    server = psycopg.conninfo.make_conninfo(base_url, dbname="postgres")
    with psycopg.connect(server, autocommit=True) as conn:
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


def _pool_of(handler_of: Callable[[str], Any], function: str) -> Callable[[int], Any]:
    """A poller's container factory that hands every slot the function's worker pool."""
    handler = handler_of(function)
    return lambda slot: handler


def iam_checker(queues: dict[str, str], secrets: dict[str, str], account: str) -> AccessChecker:
    """Each function's role from the template, resolved against this stack's queues (logical
    id -> URL) and secrets (logical id -> ARN); every AWS client made from now on is checked."""
    from local.iam import LocalResources, Roles, forget_cached_clients

    checker = AccessChecker(Roles(LocalResources.for_stack(queues, secrets, account=account)))
    forget_cached_clients()  # clients made before the hooks existed would go unchecked
    return checker


class Stack:
    def __init__(
        self,
        port: int = 3000,
        host: str = "127.0.0.1",
        *,
        database: str = LOCAL_DB,
        chain_tick_seconds: float | None = None,
        aws_endpoint_url: str | None = None,
        emulator: Emulator = "localstack",
        localstack_log: Path | None = None,
        api_key_file: Path | None = DEV_KEY_FILE,
        chain_port: int | None = None,
        run_watcher: bool = True,
        watch_tick_seconds: float | None = None,
        check_iam: bool = True,
        workers: bool | None = None,
        function_code: dict[str, Path] | None = None,
        function_env: dict[str, str] | None = None,
        orders_visibility_timeout: int | None = None,
    ) -> None:
        self.port = port
        # Each function's AWS calls (and its event source mappings') judged against its role
        # from the template (local/iam.py): a call the role does not allow is AccessDenied.
        self.check_iam = check_iam
        self.access: AccessChecker | None = None  # set by start() when check_iam
        # Each function in worker processes of its own (local/workers.py), as Lambda runs it;
        # False: every function's module in this process. None: LOCAL_LAMBDA_WORKERS (`make
        # run` sets 1; the test suites' stacks stay in-process unless a test asks for workers).
        if workers is None:
            workers = os.environ.get("LOCAL_LAMBDA_WORKERS", "0") == "1"
        self.workers = workers
        self.function_code = function_code  # function -> a folder standing in for its code
        # Variables every worker gets beyond its template environment (a test's settings, e.g.
        # DB_POOL_TIMEOUT); in-process, functions read this process's environment instead.
        self.function_env = function_env or {}
        # The orders queue's visibility timeout in place of the template's 720 s (the chaos
        # suite's, so a killed executor's batch comes back within a test). Set at creation: a
        # change made once the poller runs reaches only receives begun after it (a long poll in
        # progress keeps the visibility it started with; AWS takes up to 60 s to apply one).
        self.orders_visibility_timeout = orders_visibility_timeout
        self.functions: Functions | None = None  # the worker pools, set by start()
        self.database_urls: dict[str, str] = {}  # function -> its role's login (workers only)
        self.host = host
        self.database = database  # e.g. a separate one for benchmarks
        self.chain_tick_seconds = chain_tick_seconds  # None: the chain's default (400 ms)
        # An endpoint already running that serves SQS and Secrets Manager (the tests' session
        # LocalStack, the bench's), else `emulator` is started here: LocalStack (LOCALSTACK_
        # ENDPOINT's when set), or moto's server in this process (the bench's comparison).
        self.aws_endpoint_url = aws_endpoint_url
        self.emulator: Emulator = emulator
        self.localstack_log = localstack_log  # where a LocalStack started here logs (tmp: None)
        self.api_key_file = api_key_file  # where the key is saved for clients (None: nowhere)
        self.api_key = ""  # the key clients send (x-api-key, ?apiKey=), set by start()
        self.metrics: EmfCollector | None = None  # the functions' EMF metrics, once started
        # The local chain's RPC port (PubSub on the next one): None = LOCAL_CHAIN_PORT or 8899,
        # 0 = a free pair (tests run several stacks in one session).
        self.chain_port = chain_port
        self.aws: AwsEndpoints | None = None  # set by start()
        self.run_watcher = run_watcher  # False: no schedule runs (a test drives the watcher)
        self.watch_tick_seconds = watch_tick_seconds  # None: LOCAL_WATCH_TICK_SECONDS
        self.schedulers: list[Any] = []
        self._stoppers: list[tuple[str, Stopper]] = []

    def _on_stop(self, name: str, stopper: Stopper) -> None:
        self._stoppers.append((name, stopper))

    def _start_aws(self) -> AwsEndpoints:
        """SQS and Secrets Manager: see `aws_endpoint_url` and `emulator`. An endpoint the user
        exported for one service (SQS_ENDPOINT_URL, SECRETS_ENDPOINT_URL) wins for it."""
        if self.aws_endpoint_url:
            given = self.emulator_name
            return AwsEndpoints(self.aws_endpoint_url, self.aws_endpoint_url, given, given)
        sqs = os.environ.get("SQS_ENDPOINT_URL")
        secrets = os.environ.get("SECRETS_ENDPOINT_URL")
        if sqs and secrets:
            return AwsEndpoints(sqs, secrets, "SQS_ENDPOINT_URL", "SECRETS_ENDPOINT_URL")
        if self.emulator == "moto":
            from moto.server import ThreadedMotoServer

            moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            moto.start()
            self._on_stop("moto", moto.stop)
            host, port = moto.get_host_and_port()
            url, by = f"http://{host}:{port}", "moto"
        else:
            from local import localstack

            aws = localstack.start(log_path=self.localstack_log)  # LocalStackError: no fallback
            self._on_stop("LocalStack", aws.stop)
            url = aws.endpoint
            by = "LocalStack" if aws.started_here else f"LocalStack, {localstack.ENDPOINT_VARIABLE}"
        return AwsEndpoints(
            sqs or url,
            secrets or url,
            "SQS_ENDPOINT_URL" if sqs else by,
            "SECRETS_ENDPOINT_URL" if secrets else by,
        )

    @property
    def emulator_name(self) -> str:
        return {"localstack": "LocalStack", "moto": "moto"}[self.emulator]

    def _queue_prefix(self) -> str:
        """`local` for `make run` (its queues outlive a restart in a LocalStack that does, as
        its database does); otherwise one of this stack's own, so stacks sharing a LocalStack
        (a test session, a bench) never receive each other's messages."""
        if self.database == LOCAL_DB:
            return "local"
        return f"{self.database.replace('_', '-')[:40]}-{uuid.uuid4().hex[:6]}"

    def start(self) -> dict[str, str]:
        from local import postgres
        from local.gateway import Gateway, serve_in_thread
        from local.metrics import EmfCollector
        from local.poller import Poller, load_container
        from local.queue import create_queues

        # Neither emulator checks signatures, but botocore wants something to sign with.
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "orders-local")

        # The template's values are defaults: what the user exported wins over them.
        env = {k: v for k, v in template_environment().items() if k not in os.environ}
        if not self.workers:  # every function shares this process's pool
            env["DB_POOL_MAX"] = os.environ.get("DB_POOL_MAX", "10")
        tick = self.watch_tick_seconds or float(
            os.environ.get("LOCAL_WATCH_TICK_SECONDS", LOCAL_WATCH_TICK_SECONDS)
        )
        env["WATCH_TICK_SECONDS"] = os.environ.get("WATCH_TICK_SECONDS", str(tick))

        if self.check_iam:  # before any client is made: each one made after carries the hook
            install_hooks()
        self.aws = aws = self._start_aws()
        database_url = local_database(postgres.server_url(), self.database)
        env["DATABASE_URL"] = database_url
        self.api_key = dev_api_key(database_url, self.api_key_file)

        sqs = boto3.client("sqs", endpoint_url=aws.sqs)
        prefix = self._queue_prefix()
        orders = create_queues(
            sqs, prefix=prefix, visibility_timeout=self.orders_visibility_timeout
        )
        status = create_status_queues(sqs, prefix=prefix)

        base = f"http://{self.host}:{self.port}"
        management_secret = secrets.token_urlsafe(24)
        dlq_arn = sqs.get_queue_attributes(QueueUrl=orders.dlq, AttributeNames=["QueueArn"])
        env.update(
            ORDERS_QUEUE_URL=orders.orders,
            ORDERS_DLQ_ARN=dlq_arn["Attributes"]["QueueArn"],
            STATUS_QUEUE_URL=status.status,
            SQS_ENDPOINT_URL=aws.sqs,
            WS_URL=f"ws://{self.host}:{self.port}/api/orders/execute",
            # The management API answers loopback callers with this stack's secret only.
            WS_MANAGEMENT_ENDPOINT=f"{base}/{management_secret}",
        )
        self._save_management_endpoint(env["WS_MANAGEMENT_ENDPOINT"])
        chain = start_chain(env, self.chain_tick_seconds, self.chain_port)
        self._on_stop("chain", chain.stop)
        wallet_through_secrets_manager(env, aws.secrets, f"{prefix}/wallet")
        os.environ.update(env)  # the functions' containers read it when they start
        if self.check_iam:
            self.access = iam_checker(
                {
                    "OrdersQueue": orders.orders,
                    "OrdersDeadLetterQueue": orders.dlq,
                    "StatusEventsQueue": status.status,
                    "StatusEventsDeadLetterQueue": status.dlq,
                },
                {"WalletSecret": env["WALLET_SECRET_ARN"]} if env.get("WALLET_SECRET_ARN") else {},
                account=env["ORDERS_DLQ_ARN"].split(":")[4],
            )

        # With workers each function logs in to Postgres as its own role from the template
        # (local/db_roles.py); in-process they share this process's pool, as the stack's user.
        self.database_urls = ensure_logins(database_url) if self.workers else {}
        self._save_function_environments()
        handler_of: Callable[[str], Any] | None = None
        if self.workers:
            from local.workers import Functions

            self.functions = Functions(
                self.access,
                database_urls=self.database_urls,
                code=self.function_code,
                extra_env=self.function_env,
            )
            handler_of = self.functions.handler
        # The functions print their metrics as EMF lines on stdout, as in Lambda; read them the
        # way CloudWatch does, and serve them at /_local/metrics.
        self.metrics = EmfCollector(sys.stdout)
        self.metrics.install()
        self._on_stop("metrics", self.metrics.uninstall)
        gateway = serve_in_thread(
            Gateway(
                metrics=self.metrics,
                management_secret=management_secret,
                access=self.access,
                functions=handler_of,
            ).app,
            self.host,
            self.port,
        )
        self._on_stop("gateway", gateway.stop)

        notify_poller = Poller.from_template(
            sqs,
            status.status,
            "StatusEventsQueue",
            "notify" if handler_of is None else _pool_of(handler_of, "notify"),
            function_name="notify",
            metrics=self.metrics,
            access=self.access,
        )
        self._on_stop("notify poller", notify_poller.start().stop)
        if (ROOT / "functions" / "execute" / "app.py").exists():
            override = os.environ.get("LOCAL_EXECUTE_CONCURRENCY")
            kw: dict[str, Any] = {"max_concurrency": int(override)} if override else {}
            kw["access"] = self.access
            execute = "execute" if handler_of is None else _pool_of(handler_of, "execute")
            execute_poller = Poller.from_template(
                sqs,
                orders.orders,
                "OrdersQueue",
                execute,
                function_name="execute",
                metrics=self.metrics,
                **kw,
            )
            self._on_stop("execute poller", execute_poller.start().stop)
            # The template's OrdersDeadLetters event: the same function settles dead letters.
            # Its containers are its own (instances 1000+), apart from the orders poller's.
            dead_letters = Poller(
                sqs,
                orders.dlq,
                (lambda i: load_container("execute", 1000 + i))
                if handler_of is None
                else _pool_of(handler_of, "execute"),
                function_name="execute",
                batch_size=1,
                max_concurrency=2,
                metrics=self.metrics,
                access=self.access,
            )
            self._on_stop("dead-letter poller", dead_letters.start().stop)
        else:
            log.warning("functions/execute/app.py is missing: orders stay pending (no executor)")
        if self.run_watcher:
            from local.scheduler import start_schedules

            # The template's EventBridge schedules (the watcher), invoked as EventBridge would.
            self.schedulers = start_schedules(
                metrics=self.metrics, access=self.access, functions=handler_of
            )
            for scheduler in self.schedulers:
                self._on_stop(f"{scheduler.schedule.function} schedule", scheduler.stop)
        if self.functions is not None:
            # Stopped first (the last stopper runs first): a worker mid-invocation (the
            # watcher's minute) is killed rather than waited for.
            self._on_stop("functions", self.functions.stop)
        return {
            "http": base,
            "ws": env["WS_URL"],
            "sqs": aws.sqs,
            "sqs_by": aws.sqs_by,
            "secrets": aws.secrets,
            "secrets_by": aws.secrets_by,
            "solana_rpc": chain.rpc,
            "solana_ws": chain.ws,
            "orders_queue": orders.orders,
            "status_queue": status.status,
            "database": database_url.rsplit("@", 1)[-1],  # no credentials in the log
        }

    def _save_function_environments(self) -> None:
        """What each function gets here, for `make sam-env` (local/sam_env.py)."""
        from local import sam_env
        from local.workers import function_variables

        path = sam_env.save(
            self.database,
            {
                folder: function_variables(folder, database_url=self.database_urls.get(folder))
                for folder in sam_env.functions().values()
            },
        )
        self._on_stop("function environments file", lambda: path.unlink(missing_ok=True))

    def _save_management_endpoint(self, endpoint: str) -> None:
        path = management_file(self.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(endpoint)
        self._on_stop("management endpoint file", lambda: path.unlink(missing_ok=True))

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
    from local import output

    terminal = output.quiet(STACK_LOG)  # logs to STACK_LOG; LOG_LEVEL or VERBOSE=1: here

    def say(line: str, flush: bool = False) -> None:
        print(line, file=terminal, flush=flush)

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
    for chatty in ("httpx", "httpx2"):  # one INFO line per RPC request would flood the log
        logging.getLogger(chatty).setLevel(logging.WARNING)
    stack = Stack(
        port=int(os.environ.get("PORT", "3000")),
        database=local_database_name(),
        localstack_log=LOCALSTACK_LOG,
    )
    stop = stop or threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    from local.chain import PortInUse
    from local.localstack import LocalStackError

    try:
        urls = stack.start()
        say(f"HTTP API   {urls['http']}   (POST /api/orders/execute, GET /api/orders/{{id}})")
        say(f"WebSocket  {urls['ws']}")
        say(f"SQS ({urls['sqs_by']}) {urls['sqs']}")
        say(f"Secrets Manager ({urls['secrets_by']}) {urls['secrets']}   (the wallet key)")
        say(f"Solana RPC {urls['solana_rpc']}")
        say(f"Solana WS  {urls['solana_ws']}")
        if not os.environ.get("SOLANA_RPC_URL"):  # the local chain: the programs it runs
            from local.chain.binaries import cached, describe

            for binary in cached():
                say(f"Program    {describe(binary)}")
            from local.chain.admin import admin_token

            token = admin_token()
            say(f"Chain admin {urls['solana_rpc']}/admin/*   (Authorization: Bearer {token})")
        say(f"Metrics    {urls['http']}/_local/metrics   (the functions' CloudWatch EMF metrics)")
        for scheduler in stack.schedulers:
            schedule = scheduler.schedule
            say(
                f"Schedule   {schedule.function} every {schedule.every_seconds:g} s"
                f" (template.yaml), ticking every {os.environ.get('WATCH_TICK_SECONDS')} s"
            )
        where = f" (saved in {stack.api_key_file})" if stack.api_key_file else ""
        if not output.verbose():
            say(f"Logs       {STACK_LOG}   (LOG_LEVEL=INFO or VERBOSE=1: on this terminal)")
        say(f"API key    {stack.api_key}{where}: send it as x-api-key (WS: or ?apiKey=)")
        say("Ctrl-C to stop", flush=True)
        stop.wait()
    except (PortInUse, LocalStackError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        stack.stop()
        output.restore()


if __name__ == "__main__":
    main()
