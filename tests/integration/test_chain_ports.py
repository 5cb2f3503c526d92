"""Fixed, configurable ports for the local chain, as a validator has them: JSON-RPC on
LOCAL_CHAIN_PORT (8899), PubSub on the next port; a taken port is an error naming it, never a
silent move; tests use free pairs (port 0). Also what `make run` prints."""

from __future__ import annotations

import socket
import threading

import pytest

from local import stack
from local.chain import LocalChain, PortInUse, chain_port, serve
from local.chain.admin import admin_token
from local.chain.binaries import read_lock


def _listening(port: int = 0) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def _free_pair() -> int:
    for _ in range(100):
        with _listening() as a:
            port = a.getsockname()[1]
        try:
            with _listening(port + 1), _listening(port):
                return int(port)
        except OSError:
            continue
    raise AssertionError("no free pair of ports")


def test_a_taken_rpc_port_is_an_error_naming_the_port_and_the_variable() -> None:
    chain = LocalChain()
    with _listening() as taken:
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse) as raised:
            serve(chain, port=port)
    message = str(raised.value)
    assert f"port {port}" in message
    assert "LOCAL_CHAIN_PORT" in message


def test_a_taken_pubsub_port_is_an_error_too() -> None:
    chain = LocalChain()
    port = _free_pair()
    with _listening(port + 1), pytest.raises(PortInUse) as raised:
        serve(chain, port=port)
    assert f"port {port + 1}" in str(raised.value)
    assert "LOCAL_CHAIN_PORT + 1" in str(raised.value)
    served = serve(chain, port=port)  # the RPC socket was released: the pair is usable again
    assert served.rpc_url.endswith(f":{port}")
    assert served.ws_url.endswith(f":{port + 1}")
    served.stop()


def test_fixed_port_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCAL_CHAIN_PORT", raising=False)
    assert chain_port() == 8899
    monkeypatch.setenv("LOCAL_CHAIN_PORT", "9100")
    assert chain_port() == 9100
    monkeypatch.setenv("LOCAL_CHAIN_PORT", "eighty")
    with pytest.raises(ValueError, match="LOCAL_CHAIN_PORT"):
        chain_port()


def test_start_chain_serves_on_the_configured_port_and_refuses_a_taken_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from local.stack import pubsub_url, start_chain

    monkeypatch.delenv("SOLANA_RPC_URL", raising=False)
    port = _free_pair()
    monkeypatch.setenv("LOCAL_CHAIN_PORT", str(port))
    env: dict[str, str] = {}
    endpoints = start_chain(env, tick_seconds=60)
    try:
        assert endpoints.rpc == env["SOLANA_RPC_URL"] == f"http://127.0.0.1:{port}"
        assert endpoints.ws == f"ws://127.0.0.1:{port + 1}" == pubsub_url(endpoints.rpc)
        with pytest.raises(PortInUse):
            start_chain({}, tick_seconds=60)  # no falling back to another port
    finally:
        endpoints.stop()
    assert pubsub_url("https://api.devnet.solana.com") == "wss://api.devnet.solana.com"


class _FakeStack:
    """Stands in for the whole stack: `main` only needs its URLs."""

    api_key = "key"
    api_key_file = None

    def __init__(self, port: int, **_options: object) -> None:
        self.port = port
        self.schedulers: list[object] = []  # the template's schedules it started: none here

    def start(self) -> dict[str, str]:
        return {
            "http": "http://127.0.0.1:3000",
            "ws": "ws://127.0.0.1:3000/api/orders/execute",
            "sqs": "http://127.0.0.1:4566",
            "sqs_by": "LocalStack",
            "secrets": "http://127.0.0.1:4566",
            "secrets_by": "LocalStack",
            "solana_rpc": "http://127.0.0.1:8899",
            "solana_ws": "ws://127.0.0.1:8900",
        }

    def stop(self) -> None:
        pass


def test_make_run_prints_the_solana_urls(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(stack, "Stack", _FakeStack)
    monkeypatch.setattr("local.stack.signal.signal", lambda *_args: None)
    monkeypatch.delenv("SOLANA_RPC_URL", raising=False)
    done = threading.Event()
    done.set()
    stack.main(done)
    out = capsys.readouterr().out.splitlines()
    assert "Solana RPC http://127.0.0.1:8899" in out
    assert "Solana WS  ws://127.0.0.1:8900" in out
    assert "SQS (LocalStack) http://127.0.0.1:4566" in out
    # The chain's admin door and the token it takes (no web page has it).
    admin = f"Chain admin http://127.0.0.1:8899/admin/*   (Authorization: Bearer {admin_token()})"
    assert admin in out
    # The DEX programs the local chain runs: each one's id, version and pinned ELF hash.
    programs = [line for line in out if line.startswith("Program    ")]
    assert len(programs) == 2
    for pin in read_lock():
        [line] = [p for p in programs if str(pin.program_id) in p]
        assert pin.version in line
        assert f"ELF sha256 {pin.sha256[:16]} (pinned)" in line


def test_make_run_stops_with_the_port_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Taken(_FakeStack):
        def start(self) -> dict[str, str]:
            raise PortInUse("port 8899 on 127.0.0.1 (LOCAL_CHAIN_PORT, the JSON-RPC port) ...")

    monkeypatch.setattr(stack, "Stack", Taken)
    monkeypatch.setattr("local.stack.signal.signal", lambda *_args: None)
    with pytest.raises(SystemExit) as exited:
        stack.main(threading.Event())
    assert exited.value.code == 1
    assert "error: port 8899" in capsys.readouterr().err
