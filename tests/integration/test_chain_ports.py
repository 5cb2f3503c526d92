"""Fixed, configurable ports for the local chain, as a validator has them: JSON-RPC on
LOCAL_CHAIN_PORT (8899), PubSub on the next port; a taken port is an error naming it, never a
silent move; tests use free pairs (port 0)."""

from __future__ import annotations

import socket

import pytest

from local.chain import LocalChain, PortInUse, chain_port, serve


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
    assert f"port {port}" in message and "LOCAL_CHAIN_PORT" in message


def test_a_taken_pubsub_port_is_an_error_too() -> None:
    chain = LocalChain()
    port = _free_pair()
    with _listening(port + 1), pytest.raises(PortInUse) as raised:
        serve(chain, port=port)
    assert f"port {port + 1}" in str(raised.value)
    assert "LOCAL_CHAIN_PORT + 1" in str(raised.value)
    served = serve(chain, port=port)  # the RPC socket was released: the pair is usable again
    assert served.rpc_url.endswith(f":{port}") and served.ws_url.endswith(f":{port + 1}")
    served.stop()


def test_fixed_port_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCAL_CHAIN_PORT", raising=False)
    assert chain_port() == 8899
    monkeypatch.setenv("LOCAL_CHAIN_PORT", "9100")
    assert chain_port() == 9100
    monkeypatch.setenv("LOCAL_CHAIN_PORT", "eighty")
    with pytest.raises(ValueError, match="LOCAL_CHAIN_PORT"):
        chain_port()
