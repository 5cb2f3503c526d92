"""Functions run as Lambda runs them: each execution environment a process of its own running
AWS's runtime interface client (`awslambdaric`) against a Lambda Runtime API served here.

An `Environment` is one worker process and the Runtime API it polls, as AWS's Runtime Interface
Emulator serves it (`GET /2018-06-01/runtime/invocation/next`, `POST .../{id}/response`,
`.../{id}/error`, `/2018-06-01/runtime/init/error`), so handler loading, init errors and the
context (`get_remaining_time_in_millis()` from `Lambda-Runtime-Deadline-Ms`) are Lambda's.
- Its import path is the function's (local/lambda_build.py), on the base interpreter run with
  `-s -S`: nothing from the project's .venv; its environment is the template's for that
  function (Globals and its own `Environment`), with the local stack's values.
- Between invocations it is frozen (`SIGSTOP` once it asks for the next one, `SIGCONT` when
  one comes), so work a handler leaves running behind it does not run.
- Past the function's `Timeout` the process is killed and the invocation fails as Lambda's
  timeout does (`TimedOut`).
- Its botocore calls go through a `before-call` hook that asks this process (`POST
  /local/iam`) to judge them against the function's role (local/iam.py).
A `FunctionPool` keeps a function's environments: a warm one is reused; a new one starts up to
the function's concurrency; past it, or past the account's `LOCAL_LAMBDA_CONCURRENCY`
invocations in flight, an invoke is throttled (`Throttled`). A cold start is logged with its
init time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from local.iam import AccessChecker
from local.lambda_build import base_python, function_dir, import_path
from local.template import function_environment, function_id, function_timeout, resource

log = logging.getLogger("local.workers")

ACCOUNT_CONCURRENCY = int(os.environ.get("LOCAL_LAMBDA_CONCURRENCY", "24"))
# Environments initializing at once. Lambda gives each its own CPU; here they share the
# machine's cores: on 2 cores, 24 inits at once took 13-18 s each (measured), so a burst of
# requests outlasted its clients' timeouts. At most this many start together; an invocation
# waiting for its turn takes the function's first environment to come free instead.
INIT_CONCURRENCY = int(os.environ.get("LOCAL_LAMBDA_INITS", str(os.cpu_count() or 2)))
REGION = "us-east-1"
INIT_LIMIT_SECONDS = 60.0
ACCOUNT = "000000000000"
# What a function needs locally beyond its template variables: where the emulators and the
# database are, and credentials to sign with (Lambda gives a role's).
LOCAL_VARIABLES = (
    "DATABASE_URL",
    "SQS_ENDPOINT_URL",
    "SECRETS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)

# Run by the worker's interpreter (`python -s -S -c BOOTSTRAP <function> <handler>`): the IAM
# hook on every botocore client, then awslambdaric's main, as the runtime's bootstrap runs it.
BOOTSTRAP = r"""
import json, os, sys, urllib.request
def _iam():
    try:
        import botocore.client
    except ImportError:
        return
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    keep_keys = ("QueueUrl", "QueueName", "SecretId", "ConnectionId")
    def keep(params, context, **_):
        context["local_iam_params"] = {k: str(params[k]) for k in keep_keys if k in params}
    class Denied:
        status_code = 403
        headers = {}
        content = b""
        text = ""
    def check(model, context, **_):
        body = json.dumps({"service": model.service_model.service_name,
                           "operation": model.name,
                           "params": context.get("local_iam_params", {})}).encode()
        request = urllib.request.Request("http://" + api + "/local/iam", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=10) as reply:
            answer = json.loads(reply.read())
        if answer["allowed"]:
            return None
        return Denied(), {"Error": {"Code": "AccessDenied", "Message": answer["message"]},
                          "ResponseMetadata": {"HTTPStatusCode": 403}}
    create = botocore.client.ClientCreator.create_client
    def create_client(self, *args, **kwargs):
        client = create(self, *args, **kwargs)
        client.meta.events.register("before-parameter-build", keep)
        client.meta.events.register_first("before-call", check)
        return client
    botocore.client.ClientCreator.create_client = create_client
_iam()
if os.environ.get("LOCAL_LAMBDA_PRELOAD"):  # the bench's instruments (bench/worker_probe.py)
    import runpy
    runpy.run_path(os.environ["LOCAL_LAMBDA_PRELOAD"], run_name="local_lambda_preload")
from awslambdaric.__main__ import main
main([sys.argv[0], sys.argv[2]])
"""


class InvokeError(Exception):
    """An invocation that failed as Lambda reports it (`errorType`, `errorMessage`)."""

    def __init__(self, error_type: str, message: str) -> None:
        # str() is the errorMessage, as API Gateway reads it (an authorizer's "Unauthorized").
        super().__init__(message)
        self.error_type = error_type
        self.message = message


class TimedOut(InvokeError):
    def __init__(self, seconds: float) -> None:
        super().__init__("Sandbox.Timedout", f"Task timed out after {seconds:.2f} seconds")


class Throttled(InvokeError):
    def __init__(self, why: str) -> None:
        super().__init__("TooManyRequestsException", f"Rate Exceeded. ({why})")


class _Invocation:
    def __init__(self, event: Any, timeout: float) -> None:
        self.id = str(uuid.uuid4())
        self.body = json.dumps(event).encode()
        self.timeout = timeout
        self.deadline = 0.0  # time.time(), set when the runtime takes it
        self.started = threading.Event()
        self.done = threading.Event()
        self.result: Any = None
        self.error: dict[str, Any] | None = None


def function_variables(
    function: str, source: Mapping[str, str] | None = None, database_url: str | None = None
) -> dict[str, str]:
    """The function's own variables: its template variables (Globals' and its own), each with
    the value the local stack gave it (`source`, os.environ by default) or the template's, and
    the local endpoints; `database_url` (its role's login, local/db_roles.py) when given.
    Nothing of other functions'."""
    given = os.environ if source is None else source
    env: dict[str, str] = {}
    for key, value in function_environment(function).items():
        if key in given:
            env[key] = given[key]
        elif not isinstance(value, dict):  # a deployed-only value (!GetAtt ...) stays unset
            env[key] = str(value)
    for key in LOCAL_VARIABLES:
        if key in given:
            env[key] = given[key]
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


def worker_environment(
    function: str,
    source: Mapping[str, str] | None = None,
    runtime_api: str = "",
    database_url: str | None = None,
) -> dict[str, str]:
    """The function's variables (`function_variables`) and what Lambda itself sets."""
    given = os.environ if source is None else source
    env = function_variables(function, source, database_url)
    logical = function_id(function)
    props = resource(logical).get("Properties", {})
    env.update(
        AWS_LAMBDA_FUNCTION_NAME=function,
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(props.get("MemorySize", 512)),
        AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{function}",
        AWS_EXECUTION_ENV="AWS_Lambda_python3.11",
        AWS_REGION=given.get("AWS_DEFAULT_REGION", REGION),
        AWS_DEFAULT_REGION=given.get("AWS_DEFAULT_REGION", REGION),
        AWS_LAMBDA_RUNTIME_API=runtime_api,
        LAMBDA_TASK_ROOT=str(function_dir(function)),
        _HANDLER="app.handler",
        TZ=":UTC",
        LANG="en_US.UTF-8",
        PATH="/usr/local/bin:/usr/bin:/bin",
        PYTHONPATH=os.pathsep.join(str(p) for p in import_path(function)),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


class _RuntimeApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # its worker was killed mid-request (a timeout, a reclaim, the stack stopping)
        super().handle_error(request, client_address)


class Environment:
    """One execution environment: a worker process and its Runtime API."""

    def __init__(
        self,
        function: str,
        env: Mapping[str, str],
        *,
        access: AccessChecker | None = None,
        output: IO[str] | None = None,
        code: Path | None = None,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        """`code`: the function's code folder (its CodeUri by default; a test's probe);
        `on_exit`: told the exit status when the process ends other than by `kill()`."""
        self.function = function
        self.on_exit = on_exit
        self.killed = False  # by kill(): a timeout, a reclaim, the stack stopping
        self.initialized = threading.Event()  # its runtime asked for a first invocation
        self.access = access
        self.output = output  # where the worker's stdout and stderr go (sys.stdout)
        code = code or function_dir(function)
        path = env.get("PYTHONPATH", "").split(os.pathsep)
        path[0] = str(code)  # the function's folder comes first, as /var/task does
        self._lock = threading.Condition()
        self._pending: _Invocation | None = None
        self._frozen = False
        self.init_error: dict[str, Any] | None = None
        self.init_seconds: float | None = None
        self.invocations = 0
        self.dead = False
        self.last_used = time.monotonic()  # when its last invocation ended
        self._server = _RuntimeApiServer(("127.0.0.1", 0), self._handler_class())
        api = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(
            target=self._server.serve_forever, name=f"runtime-api-{function}", daemon=True
        ).start()
        self._started = time.monotonic()
        self.process = subprocess.Popen(
            [base_python(), "-s", "-S", "-c", BOOTSTRAP, function, "app.handler"],
            env={
                **env,
                "AWS_LAMBDA_RUNTIME_API": api,
                "LAMBDA_TASK_ROOT": str(code),
                "PYTHONPATH": os.pathsep.join(path),
            },
            cwd=str(code),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill takes all of it
        )
        threading.Thread(target=self._forward, name=f"output-{function}", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    # -- the Runtime API ------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:  # noqa: C901
        env = self

        class Api(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # A reply is two writes (headers, body): with Nagle's algorithm the body waited
                # for the runtime's delayed ACK, 40 ms on every invocation (measured: an empty
                # handler's invoke took 44-48 ms p50).
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _reply(
                self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.endswith("/runtime/invocation/next"):
                    invocation = env._next()
                    self._reply(
                        200,
                        invocation.body,
                        {
                            "Content-Type": "application/json",
                            "Lambda-Runtime-Aws-Request-Id": invocation.id,
                            "Lambda-Runtime-Deadline-Ms": str(int(invocation.deadline * 1000)),
                            "Lambda-Runtime-Invoked-Function-Arn": (
                                f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{env.function}"
                            ),
                            "Lambda-Runtime-Trace-Id": f"Root=1-{invocation.id[:8]}",
                        },
                    )
                else:
                    self._reply(404)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = self.path.strip("/").split("/")
                if self.path == "/local/iam":
                    self._reply(200, env._iam(json.loads(body)))
                elif self.path.endswith("/runtime/init/error"):
                    env._finish(None, None, json.loads(body or b"{}"))
                    self._reply(202)
                elif len(parts) == 5 and parts[4] in ("response", "error"):
                    # /2018-06-01/runtime/invocation/{id}/response or .../error
                    value = json.loads(body) if body else None
                    if parts[4] == "response":
                        env._finish(parts[3], value, None)
                    else:
                        env._finish(parts[3], None, value or {"errorType": "Unknown"})
                    self._reply(202)
                else:
                    self._reply(404)

        return Api

    def _next(self) -> _Invocation:
        with self._lock:
            if self.init_seconds is None:
                self.init_seconds = time.monotonic() - self._started
                self.initialized.set()
                log.info(
                    "%s: cold start, init %.0f ms (pid %d)",
                    self.function,
                    self.init_seconds * 1000,
                    self.pid,
                )
            if self._pending is None and not self.dead:
                # Frozen until its next invocation, as Lambda freezes an idle environment.
                os.kill(self.pid, signal.SIGSTOP)
                self._frozen = True
            while self._pending is None:
                self._lock.wait()
            invocation = self._pending
            # The timeout counts from here: init time is not the invocation's (Lambda's too).
            invocation.deadline = time.time() + invocation.timeout
            invocation.started.set()
            return invocation

    def _finish(self, request_id: str | None, result: Any, error: dict[str, Any] | None) -> None:
        with self._lock:
            invocation = self._pending
            if request_id is None:  # an init error
                self.init_error = error
            if invocation is None or (request_id is not None and request_id != invocation.id):
                return
            invocation.result, invocation.error = result, error
            self._pending = None
            invocation.started.set()
            invocation.done.set()

    def _iam(self, request: dict[str, Any]) -> bytes:
        if self.access is None:
            return json.dumps({"allowed": True}).encode()
        denied = self.access.check(
            self.function, request["service"], request["operation"], request["params"]
        )
        if denied is None:
            return json.dumps({"allowed": True}).encode()
        return json.dumps({"allowed": False, "message": denied[1]["Error"]["Message"]}).encode()

    def _forward(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        for raw in stream:
            line = raw.decode(errors="replace")
            out = self.output or sys.stdout
            try:
                out.write(line)
                out.flush()
            except ValueError:  # the stream was closed (a test's capture ended)
                pass
        self.process.wait()
        self.initialized.set()
        if not self.killed and self.on_exit is not None:
            self.on_exit(self.process.returncode)
        with self._lock:
            self.dead = True
            invocation = self._pending
            if invocation is not None and not invocation.done.is_set():
                invocation.error = self.init_error or {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {invocation.id} Error: Runtime exited "
                    f"with status {self.process.returncode}",
                }
                invocation.started.set()
                invocation.done.set()
            self._lock.notify_all()

    # -- invoking -------------------------------------------------------------------------------

    def invoke(
        self, event: Any, timeout: float, on_started: Callable[[], None] | None = None
    ) -> Any:
        """Run one invocation; its result, or InvokeError as Lambda reports the failure.
        `on_started`: called once the runtime has taken it (its init, if any, is over)."""
        invocation = _Invocation(event, timeout)
        with self._lock:
            if self.dead:
                raise InvokeError("Runtime.ExitError", "the environment is gone")
            self._pending = invocation
            self.invocations += 1
            if self._frozen:
                os.kill(self.pid, signal.SIGCONT)
                self._frozen = False
            self._lock.notify_all()
        # Init (a cold start) has a limit of its own, as Lambda's 10 s (longer here: a loaded
        # machine); then the invocation has its Timeout.
        try:
            started = invocation.started.wait(INIT_LIMIT_SECONDS) or invocation.done.is_set()
        finally:
            if on_started is not None:
                on_started()
        if not started:
            self.kill()
            raise InvokeError("Runtime.InitTimeout", f"init took over {INIT_LIMIT_SECONDS} s")
        if not invocation.done.wait(timeout):
            self.kill()
            raise TimedOut(timeout)
        if invocation.error is not None:
            raise InvokeError(
                str(invocation.error.get("errorType", "Unknown")),
                str(invocation.error.get("errorMessage", "")),
            )
        return invocation.result

    def kill(self) -> None:
        with self._lock:
            self.dead = True
            self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait()
        self._server.shutdown()
        self._server.server_close()


class AccountLimit:
    """The account's concurrency: invocations in flight across every function; and, since each
    environment here is a process on this machine holding its own Postgres connections, at most
    as many live environments: a new one reclaims the least recently used idle environment of
    any function first (Lambda, too, reclaims idle environments when it needs room)."""

    def __init__(self, limit: int = ACCOUNT_CONCURRENCY) -> None:
        self.limit = limit
        self._in_flight = 0
        self._lock = threading.Lock()
        self._pools: list[FunctionPool] = []
        self._room = threading.Lock()  # one environment made room for at a time
        self._inits = threading.BoundedSemaphore(INIT_CONCURRENCY)

    def try_init(self) -> bool:
        """A turn to start an environment (INIT_CONCURRENCY at once), or False."""
        return self._inits.acquire(blocking=False)

    def end_init(self) -> None:
        self._inits.release()

    def register(self, pool: FunctionPool) -> None:
        with self._lock:
            self._pools.append(pool)

    def make_room(self) -> bool:
        """Room for one more environment (reclaiming an idle one when the stack has `limit`);
        False when every environment is busy. The caller has counted its new one (`starting`)."""
        with self._room:
            while True:
                with self._lock:
                    pools = list(self._pools)
                if sum(p.live() for p in pools) <= self.limit:
                    return True
                idle = [(p.oldest_idle(), p) for p in pools]
                candidates = [(used, p) for used, p in idle if used is not None]
                if not candidates:
                    return False
                _, victim = min(candidates, key=lambda c: c[0] or 0.0)
                victim.reclaim_oldest()

    def acquire(self) -> bool:
        with self._lock:
            if self._in_flight >= self.limit:
                return False
            self._in_flight += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1


class FunctionPool:
    """A function's execution environments: warm ones reused, new ones up to its concurrency."""

    def __init__(
        self,
        function: str,
        *,
        concurrency: int,
        account: AccountLimit,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        access: AccessChecker | None = None,
        output: IO[str] | None = None,
        code: Path | None = None,
    ) -> None:
        self.function = function
        self.code = code
        self.concurrency = concurrency
        self.account = account
        self.env = dict(env) if env is not None else worker_environment(function)
        self.timeout = float(timeout if timeout is not None else function_timeout(function))
        self.access = access
        self.output = output
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)  # an environment became idle
        self._idle: list[Environment] = []  # the most recently used last
        self._busy: set[Environment] = set()
        self._starting = 0  # environments being made
        self.cold_starts = 0
        self.exits: list[int] = []  # the exit status of each environment that ended itself
        account.register(self)

    def live(self) -> int:
        with self._lock:
            return len(self._idle) + len(self._busy) + self._starting

    def oldest_idle(self) -> float | None:
        """When the least recently used idle environment last finished (None: none idle)."""
        with self._lock:
            return self._idle[0].last_used if self._idle else None

    def reclaim_oldest(self) -> bool:
        with self._lock:
            if not self._idle:
                return False
            env = self._idle.pop(0)
        log.info("%s: idle environment reclaimed (pid %d)", self.function, env.pid)
        env.kill()
        return True

    def environments(self) -> list[Environment]:
        with self._lock:
            return [*self._idle, *self._busy]

    def invoke(self, event: Any, timeout: float | None = None) -> Any:
        if not self.account.acquire():
            raise Throttled(f"account concurrency {self.account.limit} reached")
        try:
            env, cold = self._take()
            turn = threading.Lock()  # a cold environment's init turn, given back once

            def end_init() -> None:
                if cold and turn.acquire(blocking=False):
                    self.account.end_init()

            try:
                return env.invoke(event, self.timeout if timeout is None else timeout, end_init)
            finally:
                end_init()  # also when the invocation failed before its runtime took it
                self._give_back(env)
        finally:
            self.account.release()

    def _take(self) -> tuple[Environment, bool]:
        """An idle environment (warm), else a new one (cold: it holds an init turn, which the
        caller gives back once the runtime has started)."""
        deadline = time.monotonic() + INIT_LIMIT_SECONDS
        with self._freed:
            while True:
                while self._idle:
                    env = self._idle.pop()
                    if not env.dead:
                        self._busy.add(env)
                        return env, False
                if len(self._busy) + self._starting >= self.concurrency:
                    raise Throttled(f"{self.function} concurrency {self.concurrency} reached")
                if self.account.try_init():
                    self._starting += 1
                    break
                if time.monotonic() > deadline:
                    raise Throttled(f"no environment of {self.function} could start")
                self._freed.wait(0.05)  # an environment of ours comes free, or a turn to start
        try:
            if not self.account.make_room():
                raise Throttled(f"account environments {self.account.limit} all busy")
            env = self._new_environment()
        except BaseException:
            self.account.end_init()
            with self._lock:
                self._starting -= 1
            raise
        with self._lock:
            self._starting -= 1
            self.cold_starts += 1
            self._busy.add(env)
        return env, True

    def _new_environment(self) -> Environment:
        return Environment(
            self.function,
            self.env,
            access=self.access,
            output=self.output,
            code=self.code,
            on_exit=self.exits.append,
        )

    def prewarm(self) -> None:
        """One environment started and initialized now, idle for the first invocation (as
        provisioned concurrency keeps one): tests start their stacks so, and a first request
        does not wait for an init on a busy machine. Nothing when one exists already."""
        deadline = time.monotonic() + INIT_LIMIT_SECONDS
        with self._freed:
            if self._idle or self._busy or self._starting:
                return
            while not self.account.try_init():
                if time.monotonic() > deadline:
                    return
                self._freed.wait(0.05)
            self._starting += 1
        env: Environment | None = None
        try:
            if self.account.make_room():
                env = self._new_environment()
                env.initialized.wait(INIT_LIMIT_SECONDS)
        finally:
            self.account.end_init()
            with self._lock:
                self._starting -= 1
        if env is None:
            return
        if env.dead or env.init_seconds is None:
            env.kill()
            return
        with self._lock:
            self.cold_starts += 1
            env.last_used = time.monotonic()
            self._idle.append(env)
            self._freed.notify()

    def _give_back(self, env: Environment) -> None:
        with self._lock:
            self._busy.discard(env)
            if not env.dead:
                env.last_used = time.monotonic()
                self._idle.append(env)
                self._freed.notify()

    def handler(self, event: Any, context: Any = None) -> Any:
        """The pool as a Lambda handler, for the services that invoke functions."""
        return self.invoke(event)

    def stop(self) -> None:
        for env in self.environments():
            env.kill()


Handler = Callable[[Any, Any], Any]


def reserved_concurrency(function: str) -> int | None:
    """The function's `ReservedConcurrentExecutions` as the local stack deploys it."""
    from local.template import LOCAL_PARAMETERS, load_template, resolve

    doc = load_template()
    value = (
        resource(function_id(function, doc), doc)
        .get("Properties", {})
        .get("ReservedConcurrentExecutions")
    )
    resolved = resolve(value, doc, LOCAL_PARAMETERS)
    return None if resolved is None or isinstance(resolved, dict) else int(resolved)


class Functions:
    """The stack's functions as Lambda runs them: a pool of worker environments per function
    (made on first use, with the environment the stack exported), under one account limit."""

    def __init__(
        self,
        access: AccessChecker | None = None,
        account: AccountLimit | None = None,
        source: Mapping[str, str] | None = None,
        database_urls: Mapping[str, str] | None = None,
        code: Mapping[str, Path] | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        """`code`: function -> a folder that stands in for its code folder (a test's);
        `extra_env`: variables every function gets beyond the template's (a test's settings,
        as a deploy would set them)."""
        self.code = dict(code or {})
        self.extra_env = dict(extra_env or {})
        self.access = access
        self.account = account or AccountLimit()
        self.source = source  # the stack's environment (os.environ when None)
        # function -> the DATABASE_URL of its own role (local/db_roles.py); else the stack's
        self.database_urls = dict(database_urls or {})
        self._pools: dict[str, FunctionPool] = {}
        self._lock = threading.Lock()

    def pool(self, function: str) -> FunctionPool:
        with self._lock:
            if function not in self._pools:
                self._pools[function] = FunctionPool(
                    function,
                    concurrency=reserved_concurrency(function) or self.account.limit,
                    account=self.account,
                    env={
                        **worker_environment(
                            function, self.source, database_url=self.database_urls.get(function)
                        ),
                        **self.extra_env,
                    },
                    access=self.access,
                    code=self.code.get(function),
                )
            return self._pools[function]

    def handler(self, function: str) -> Handler:
        return self.pool(function).handler

    def prewarm(self, functions: list[str]) -> None:
        """One initialized environment of each function (FunctionPool.prewarm), started
        together (the init turns pace them)."""
        threads = [
            threading.Thread(target=self.pool(f).prewarm, name=f"prewarm-{f}", daemon=True)
            for f in functions
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def pools(self) -> dict[str, FunctionPool]:
        with self._lock:
            return dict(self._pools)

    def stop(self) -> None:
        for pool in self.pools().values():
            pool.stop()
