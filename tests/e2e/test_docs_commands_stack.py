"""The commands the README and the docs pages show, run as a reader runs them
(tests/docs_commands.py extracts them; tests/unit/test_docs_commands.py says which run here).

`make run` itself, on free ports (`PORT=... LOCAL_CHAIN_PORT=... make run`, as the README's
troubleshooting says for a second stack) and a database of its own; then each page's commands in
page order through bash and curl, with the page's `127.0.0.1:3000` replaced by that stack's port,
`<orderId>` and `$ORDER_ID` by the last order a command created and `<new mint>` by a fresh
address. A command whose page shows its answer (`# 202 {...}`) must answer that status. The
README's websocat line is sent to the same URL by a Python client (websocat is not installed);
then `make demo` against the stack and `make demo-orders` (which starts a stack of its own).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from solders.keypair import Keypair
from websockets.sync.client import connect

from local import postgres
from local.ports import free_port
from tests.docs_commands import ROOT, Command, commands
from tests.stack import ENGINE_ENV

pytestmark = pytest.mark.e2e
KEY_FILE = ROOT / ".local-data" / "dev-api-key"
SHOWN = "127.0.0.1:3000"


@dataclass(frozen=True)
class MakeRun:
    port: int
    chain_port: int
    env: dict[str, str]


def _free_pair() -> int:
    """A port whose next one is free too (the chain's PubSub takes it)."""
    while True:
        port = free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes] | None:
    """`make run` in a process group of its own, once its /health answers 200; None when it
    ended because a port it was given was taken meanwhile (free ports are only free when
    picked)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 600
    while not _healthy(f"http://127.0.0.1:{env['PORT']}/health"):
        if process.poll() is not None:
            output = log.read_text()
            assert re.search(r"in use|PortInUse", output, re.I), output[-3000:]
            return None
        if time.monotonic() > deadline:
            _stop(process)
            pytest.fail(log.read_text()[-3000:])
        time.sleep(0.5)  # polling the condition (the stack's health), not standing in for it
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have ended by itself
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@pytest.fixture(scope="module")
def make_run(
    pg_base_url: str, localstack: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MakeRun]:
    """`PORT=... LOCAL_CHAIN_PORT=... make run` with a database of its own, while healthy."""
    saved_key = KEY_FILE.read_bytes() if KEY_FILE.exists() else None
    name = f"orders_docs_{uuid.uuid4().hex[:10]}"
    database_url = str(psycopg.conninfo.make_conninfo(pg_base_url, dbname=name))
    env = {k: v for k, v in os.environ.items() if k not in ENGINE_ENV and k != "LOCAL_API_KEY"}
    env |= {"DATABASE_URL": database_url, "LOCALSTACK_ENDPOINT": localstack}
    log = tmp_path_factory.mktemp("make-run") / "make-run.log"
    process = None
    try:
        for _ in range(3):
            env |= {"PORT": str(free_port()), "LOCAL_CHAIN_PORT": str(_free_pair())}
            process = _start(env, log)
            if process is not None:
                break
        assert process is not None, log.read_text()[-3000:]
        yield MakeRun(int(env["PORT"]), int(env["LOCAL_CHAIN_PORT"]), env)
    finally:
        if process is not None:
            _stop(process)
        if saved_key is None:
            KEY_FILE.unlink(missing_ok=True)
        else:
            KEY_FILE.write_bytes(saved_key)
        postgres.drop_database(pg_base_url, database_url)


def _shown(text: str, stack: MakeRun, order_id: str, mint: str) -> str:
    return (
        text.replace(SHOWN, f"127.0.0.1:{stack.port}")
        .replace("<orderId>", order_id)
        .replace("<new mint>", mint)
    )


def _curl(command: Command, text: str, env: dict[str, str]) -> tuple[int, object]:
    ran = subprocess.run(
        ["bash", "-c", text + " -w '\\n%{http_code}'"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, (command.where, ran.stderr)
    body, _, code = ran.stdout.rpartition("\n")
    return int(code), json.loads(body) if body.strip() else None


def _websocat(command: Command, following: Command, url: str, env: dict[str, str]) -> None:
    """websocat's URL and the line the page types into it, from a Python client."""
    shown = re.search(r'websocat "([^"]+)"', url)
    assert shown, command.where
    target = shown.group(1).replace("$API_KEY", env["API_KEY"])
    with connect(target, open_timeout=30) as ws:
        ws.send(following.text)
        frame = json.loads(ws.recv(timeout=30))
    assert frame.get("status") == "pending", (command.where, frame)


def test_the_pages_commands_run_against_make_run(make_run: MakeRun) -> None:
    env = dict(make_run.env)
    order_id = ""
    mint = str(Keypair().pubkey())
    ran: list[str] = []
    shown = commands()
    for i, command in enumerate(shown):
        if command.not_run_here:
            continue
        text = _shown(command.text, make_run, order_id, mint)
        if command.text.startswith("export API_KEY="):
            got = subprocess.run(
                ["bash", "-c", f'{text}; printf %s "$API_KEY"'],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            env["API_KEY"] = got.stdout
            assert env["API_KEY"].startswith("oek_"), command.where
        elif command.text.startswith("curl "):
            code, body = _curl(command, text, {**env, "ORDER_ID": order_id})
            documented = re.match(r"(\d{3})\b", command.comment)
            assert code == (int(documented.group(1)) if documented else 200), (
                command.where,
                code,
                body,
            )
            if isinstance(body, dict) and code == 202:
                order_id = str(body["orderId"])
        elif command.text.startswith("websocat "):
            _websocat(command, shown[i + 1], text, env)
        else:
            continue  # make run (the fixture), make test (CI), the demos (below), websocat's line
        ran.append(command.where)
    runnable = ("export API_KEY=", "curl ", "websocat ")
    assert ran == [c.where for c in shown if c.text.startswith(runnable) and not c.not_run_here]
    assert len(ran) >= 16
    # make demo against this stack (the README: PORT=... make demo on another port)
    demo = subprocess.run(
        ["make", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "confirmed" in demo.stdout
    # make demo-orders against this stack, as the README's troubleshooting shows it
    # (LOCAL_CHAIN_PORT=... make demo-orders URL=http://127.0.0.1:<PORT>)
    orders = subprocess.run(
        ["make", "demo-orders", f"URL=http://127.0.0.1:{make_run.port}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert orders.returncode == 0, orders.stdout[-3000:] + orders.stderr[-3000:]
    assert "[limit]" in orders.stdout
    assert "[sniper]" in orders.stdout
    assert re.search(r"\[sniper\] #\d+ confirmed", orders.stdout), orders.stdout[-2000:]


def test_make_demo_orders_runs_on_its_own_stack(localstack: str) -> None:
    """The README's `make demo-orders` as shown: it starts (and stops) a stack of its own."""
    env = {k: v for k, v in os.environ.items() if k not in ENGINE_ENV and k != "LOCAL_API_KEY"}
    env["LOCALSTACK_ENDPOINT"] = localstack
    ran = subprocess.run(
        ["make", "demo-orders"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert re.search(r"\[limit\] #\d+ confirmed", ran.stdout), ran.stdout[-2000:]
    assert re.search(r"\[sniper\] #\d+ confirmed", ran.stdout), ran.stdout[-2000:]
