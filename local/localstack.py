"""LocalStack: the local AWS for what its free edition serves here, SQS and Secrets Manager.

    with localstack.start() as aws:     # LOCALSTACK_ENDPOINT's, else a new one on a free port
        boto3.client("sqs", endpoint_url=aws.endpoint)

A new one runs LocalStack's Python core (`localstack-core`, pinned in
`scripts/install-localstack.sh`, installed on first use into `.tools/localstack`, a venv of its
own) as its container image runs it, without Docker: `localstack.runtime.main` with the
services, ports and directories set by environment (see `runtime_environment`), started through
`local/localstack_boot.py`. Guarantees:
- `start` returns only once LocalStack answers `/_localstack/health` with SQS and Secrets Manager
  and has printed "Ready."; otherwise it raises `LocalStackError` with the log's tail and leaves
  no process behind. There is no fallback to another emulator.
- The process listens on 127.0.0.1 only and ends with `stop()`, with the `with` block, or with
  the process that started it, however that one ends (SIGKILL and interrupted test runs
  included: see `local/localstack_boot.py`). Start it from a thread that outlives it (the main
  thread, as the stack, the test fixtures and the bench do): Linux's parent-death signal, one of
  the two ways it notices, follows the thread that started it.
- It keeps nothing between runs (PERSISTENCE=0, its files in a temporary directory).

LOCALSTACK_ENDPOINT (e.g. `http://127.0.0.1:4566` of a `localstack start` with Docker, or a
shared one in CI) makes `start` use that LocalStack instead: it is checked, never started or
stopped here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from local.handlers import ROOT
from local.ports import free_port

ENDPOINT_VARIABLE = "LOCALSTACK_ENDPOINT"
TOOLS = ROOT / ".tools" / "localstack"
PYTHON = TOOLS / "bin" / "python"
INSTALLER = ROOT / "scripts" / "install-localstack.sh"
BOOT = Path(__file__).with_name("localstack_boot.py")
SERVICES = ("sqs", "secretsmanager")
# "available": enabled, loaded on its first request; "running": loaded.
SERVING = frozenset({"available", "running"})
READY_LINE = "Ready."
CANNOT_LISTEN = "CannotListenError"  # Twisted's, in its log, when the port is taken
PORT_ATTEMPTS = 3
# ~1-2 s on an idle 2-core machine; far more when the cores are busy with other work.
START_TIMEOUT_SECONDS = 120.0
LOG_TAIL_LINES = 25
# What LocalStack's process gets from ours: nothing of the engine's settings (it reads many
# variables, e.g. DEBUG or SERVICES), only what a program needs plus LocalStack's log switches.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "LS_LOG", "DEBUG")


class LocalStackError(RuntimeError):
    """LocalStack could not be installed or did not start (the message carries its log's tail),
    or the one LOCALSTACK_ENDPOINT names does not answer or does not serve SQS and Secrets
    Manager. Raised by `start`, `launch`, `attach` and `LocalStack.wait_ready`."""


class PortTaken(LocalStackError):
    """Its port was taken before it could listen (it still prints "Ready." then). `start`
    tries another free port when it chose the port itself."""


def runtime_environment(port: int, workdir: Path) -> dict[str, str]:
    """The configuration LocalStack reads at start (documented in its `config.py`), with its
    files under `workdir`, and what local/localstack_boot.py reads."""
    env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
    env.setdefault("LS_LOG", "warn")  # its default logs a line per request: CPU the bench pays
    env.update(
        RUNTIME_COMPONENTS="aws",  # the AWS services, no container tooling
        SERVICES=",".join(SERVICES),
        GATEWAY_LISTEN=f"127.0.0.1:{port}",
        LOCALSTACK_HOST=f"127.0.0.1:{port}",
        # Queue URLs http://127.0.0.1:PORT/queue/REGION/ACCOUNT/NAME: a host that resolves here
        # ("standard" gives sqs.REGION.127.0.0.1:PORT, which resolves nowhere).
        SQS_ENDPOINT_STRATEGY="path",
        SQS_DISABLE_CLOUDWATCH_METRICS="1",  # no CloudWatch here to report to
        PERSISTENCE="0",
        FILESYSTEM_ROOT=str(workdir / "fs"),
        # This machine may look like a container to LocalStack (/.dockerenv); it is not
        # LocalStack's container, so its files go under FILESYSTEM_ROOT, not /var/lib/localstack.
        OVERRIDE_IN_DOCKER="0",
        DNS_ADDRESS="0",  # no DNS server: it would try port 53 and an upstream resolver
        SKIP_SSL_CERT_DOWNLOAD="1",  # no internet: it would try to download a certificate
        DISABLE_EVENTS="1",  # no analytics
        LOCALSTACK_BOOT_PARENT=str(os.getpid()),
        LOCALSTACK_BOOT_WORKDIR=str(workdir),
    )
    return env


def ensure_installed() -> Path:
    """LocalStack's interpreter, installing it first (a few minutes, once) when missing."""
    if not (TOOLS / ".installed").is_file() or not PYTHON.exists():
        reply = subprocess.run(["bash", str(INSTALLER)], cwd=ROOT, capture_output=True, text=True)
        if reply.returncode != 0:
            raise LocalStackError(
                f"installing LocalStack ({INSTALLER.relative_to(ROOT)}) failed:\n"
                + _tail(reply.stdout + reply.stderr)
            )
    return PYTHON


def health(endpoint: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """LocalStack's /_localstack/health answer, or None when nothing answers there."""
    try:
        with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=timeout) as reply:
            answer = json.loads(reply.read())
    except (OSError, ValueError):  # refused, reset, timed out, an HTTP error, not JSON
        return None
    return answer if isinstance(answer, dict) else None


def missing_services(answer: dict[str, Any]) -> list[str]:
    """The services we need that the health answer does not show as serving."""
    states = answer.get("services") or {}
    return [name for name in SERVICES if states.get(name) not in SERVING]


@dataclass
class LocalStack:
    """One LocalStack: started here (`process` set) or the user's (LOCALSTACK_ENDPOINT)."""

    endpoint: str
    process: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None  # FILESYSTEM_ROOT and the log of one started here
    log_path: Path | None = None
    keep_log: bool = False  # the log was placed by the caller: leave it
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def started_here(self) -> bool:
        return self.process is not None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return "(no log)"
        return _tail(self.log_path.read_text(errors="replace"), lines)

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Return once it serves SQS and Secrets Manager; else stop it and raise."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                problem = self._not_ready()
                if problem is None:
                    return
                if time.monotonic() > deadline:
                    raise self._failed(f"not ready after {timeout:.0f} s ({problem})")
                time.sleep(0.1)
        except BaseException:
            self.stop(keep_workdir=True)  # the log stays readable for the message
            raise

    def _not_ready(self) -> str | None:
        if self.process is not None and self.process.poll() is not None:
            raise self._failed(f"it exited with status {self.process.returncode}")
        # The log first: on a taken port, whatever else listens there would answer the health
        # check (another LocalStack would even pass it).
        log = self.log_path.read_text(errors="replace") if self.log_path is not None else ""
        if CANNOT_LISTEN in log:
            raise self._failed("its port was taken", PortTaken)
        answer = health(self.endpoint)
        if answer is None:
            return f"nothing answers at {self.endpoint}/_localstack/health"
        if missing := missing_services(answer):
            return f"not serving {', '.join(missing)}"
        if self.log_path is not None and READY_LINE not in log:
            return f"no {READY_LINE!r} in its log yet"
        return None

    def _failed(self, what: str, kind: type[LocalStackError] = LocalStackError) -> LocalStackError:
        return kind(
            f"LocalStack did not start at {self.endpoint}: {what}. "
            f"The end of its log ({self.log_path}):\n{self.log_tail()}"
        )

    def stop(self, *, keep_workdir: bool = False) -> None:
        """End the process and remove its files. Nothing happens to a LOCALSTACK_ENDPOINT one."""
        process, self.process = self.process, None
        if process is not None:
            _end(process)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.workdir is not None and not keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def _end(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to its process group (it leads a session of its own: LocalStack and whatever it
    started). Its graceful shutdown takes seconds and saves state we do not keep (PERSISTENCE=0)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    process.wait()


def _tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-lines:])


def launch(port: int | None = None, *, log_path: Path | None = None) -> LocalStack:
    """Start a LocalStack on 127.0.0.1:`port` (a free one when None) without waiting for it:
    call `wait_ready` (the caller may do other work meanwhile). Its log is `log_path`, else a
    file in its temporary directory."""
    python = ensure_installed()
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="localstack-"))
    log = log_path or workdir / "localstack.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    sink = log.open("wb")
    try:
        process = subprocess.Popen(
            [str(python), "-P", str(BOOT)],
            cwd=workdir,
            env=runtime_environment(port, workdir),
            stdin=subprocess.PIPE,  # its lifeline: see local/localstack_boot.py
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in `make run` is ours to handle; stop() ends it
        )
    except BaseException:
        sink.close()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return LocalStack(
        f"http://127.0.0.1:{port}", process, workdir, log, log_path is not None, _log=sink
    )


def attach(endpoint: str) -> LocalStack:
    """The LocalStack already running at `endpoint`, once it is seen serving what we need."""
    endpoint = endpoint.rstrip("/")
    answer = health(endpoint, timeout=5.0)
    if answer is None:
        raise LocalStackError(
            f"{ENDPOINT_VARIABLE}={endpoint}: nothing answers at {endpoint}/_localstack/health"
            " (is `localstack start` running?)"
        )
    if missing := missing_services(answer):
        raise LocalStackError(
            f"{ENDPOINT_VARIABLE}={endpoint} does not serve {', '.join(missing)}"
            f" (its services: {answer.get('services')})"
        )
    return LocalStack(endpoint)


def start(
    port: int | None = None,
    *,
    log_path: Path | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
) -> LocalStack:
    """LOCALSTACK_ENDPOINT's LocalStack when set, else a new one, ready (see the module)."""
    if endpoint := os.environ.get(ENDPOINT_VARIABLE):
        return attach(endpoint)
    for attempt in range(1, PORT_ATTEMPTS + 1):
        stack = launch(port, log_path=log_path)
        try:
            stack.wait_ready(timeout)
        except PortTaken:
            if port is not None or attempt == PORT_ATTEMPTS:
                raise
            stack.stop()  # a free port, taken between our look and its bind: another one
            continue
        return stack
    raise AssertionError("unreachable")
