"""`make run` (local.stack.main) prints its URLs and key and little else: what the functions and
the stack log goes to .local-data/stack.log, unless LOG_LEVEL or VERBOSE asks for it here."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import pytest

from local import stack

URLS = {
    "http": "http://127.0.0.1:3999",
    "ws": "ws://127.0.0.1:3999/api/orders/execute",
    "sqs": "http://127.0.0.1:4566",
    "sqs_by": "LocalStack",
    "secrets": "http://127.0.0.1:4566",
    "secrets_by": "LocalStack",
    "solana_rpc": "http://127.0.0.1:8999",
    "solana_ws": "ws://127.0.0.1:9000",
}
NOISE = [
    f'{{"level":"INFO","message":"function log line {n}","service":"submit"}}' for n in range(60)
]


class NoisyStack:
    """Stands in for the stack: starting it logs as the functions (stdout) and the stack
    (logging) do while it starts and serves."""

    api_key = "oek_test-key"
    api_key_file = None

    def __init__(self, port: int, **_options: object) -> None:
        self.schedulers: list[object] = []

    def start(self) -> dict[str, str]:
        for line in NOISE:
            print(line)  # a function's Powertools line, as the handlers write them
        logging.getLogger("local.stack").warning("the stack's own log line")
        return URLS

    def stop(self) -> None:
        print("stopping")


def run_main(monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    monkeypatch.setattr(stack, "Stack", NoisyStack)
    monkeypatch.setattr(stack, "STACK_LOG", log)
    monkeypatch.setattr("local.stack.signal.signal", lambda *_args: None)
    monkeypatch.setenv("SOLANA_RPC_URL", URLS["solana_rpc"])  # no program lines: not the chain
    done = threading.Event()
    done.set()
    stdout = sys.stdout
    stack.main(done)
    assert sys.stdout is stdout  # restored


def test_make_run_prints_its_urls_and_key_and_little_else(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    monkeypatch.delenv("VERBOSE", raising=False)
    log = tmp_path / "stack.log"
    run_main(monkeypatch, log)
    out = capsys.readouterr().out.splitlines()
    assert len(out) < 25
    assert f"HTTP API   {URLS['http']}" in out[0]
    assert any(URLS["ws"] in line for line in out)
    assert any(line.startswith("API key    oek_test-key") for line in out)
    assert any(str(log) in line for line in out)
    assert not [line for line in out if "function log line" in line]
    logged = log.read_text().splitlines()
    assert logged[: len(NOISE)] == NOISE
    assert "stopping" in logged


@pytest.mark.parametrize("setting", [("LOG_LEVEL", "INFO"), ("VERBOSE", "1")])
def test_log_level_or_verbose_keeps_the_logs_on_the_terminal(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    setting: tuple[str, str],
) -> None:
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    monkeypatch.delenv("VERBOSE", raising=False)
    monkeypatch.setenv(*setting)
    log = tmp_path / "stack.log"
    run_main(monkeypatch, log)
    out = capsys.readouterr().out.splitlines()
    assert out[: len(NOISE)] == NOISE
    assert any(line.startswith("API key    oek_test-key") for line in out)
    assert not log.exists()
