"""Every RPC method and subscription the local chain adds answers in the shape a real node
answers: the example responses of the Solana docs (tests/fixtures/rpc_examples/<method>.json,
each with its source URL) against the chain's answer to the same call, key by key and JSON type
by JSON type, recursively.

Rules (`assert_same_shape`): every key of the example is in the answer with the same JSON type;
an answer's key the example lacks must be listed in the fixture's `extra` with where it is
documented (the docs' examples are abridged in places); a `null` in the example stands for a
nullable field (any type); a `null` in the answer is allowed only where the fixture lists it in
`nullable`; list items are compared with the example's items. `context.apiVersion` is allowed
everywhere: nodes send it in every RpcResponse (the getAccountInfo example shows it).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID

from local.chain import LocalChain, Served, seed, serve
from local.chain.ledger import FINALIZE_AFTER_BLOCKS
from local.chain.wire import encode_base58
from tests.stack import http_json

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "rpc_examples"
ALWAYS_EXTRA = {"apiVersion"}  # under any `context`
WALLET = seed.WALLET_KEYPAIR


def example(method: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{method}.json").read_text())
    assert data["source"].startswith("https://solana.com/docs/rpc/")
    return data


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return type(value).__name__


def assert_same_shape(
    expected: Any, got: Any, extra: dict[str, str], nullable: dict[str, str], path: str = ""
) -> None:
    problems: list[str] = []
    _compare(expected, got, path or "$", set(extra), set(nullable), problems)
    assert not problems, "\n".join(problems)


def _compare(
    expected: Any, got: Any, path: str, extra: set[str], nullable: set[str], out: list[str]
) -> None:
    here = path.removeprefix("$.")
    if expected is None:
        return  # the docs show null for a field that may hold a value
    if got is None:
        if here not in nullable:
            out.append(f"{here}: null where the docs show {_kind(expected)}")
        return
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            out.append(f"{here}: {_kind(got)} where the docs show an object")
            return
        for key, value in expected.items():
            if key not in got:
                out.append(f"{here}.{key}: missing")
            else:
                _compare(value, got[key], f"{path}.{key}", extra, nullable, out)
        for key in got.keys() - expected.keys():
            where = f"{here}.{key}".removeprefix("$.")
            if where not in extra and not (key in ALWAYS_EXTRA and here.endswith("context")):
                out.append(f"{where}: not in the docs' example (add it to `extra` with a source)")
        return
    if isinstance(expected, list):
        if not isinstance(got, list):
            out.append(f"{here}: {_kind(got)} where the docs show an array")
            return
        if expected:
            for i, item in enumerate(got):
                model = expected[min(i, len(expected) - 1)]
                _compare(model, item, f"{path}[]", extra, nullable, out)
        return
    if _kind(expected) == "number" and _kind(got) in ("number", "integer"):
        return
    if _kind(expected) != _kind(got):
        out.append(f"{here}: {_kind(got)} where the docs show {_kind(expected)}")


def test_the_comparison_catches_what_it_should() -> None:
    with pytest.raises(AssertionError, match=r"a\.b: missing"):
        assert_same_shape({"a": {"b": 1}}, {"a": {}}, {}, {})
    with pytest.raises(AssertionError, match="a: str where the docs show integer"):
        assert_same_shape({"a": 1}, {"a": "1"}, {}, {})
    with pytest.raises(AssertionError, match=r"a\.c: not in the docs"):
        assert_same_shape({"a": {}}, {"a": {"c": 1}}, {}, {})
    with pytest.raises(AssertionError, match=r"a\[\].b: null"):
        assert_same_shape({"a": [{"b": 1}]}, {"a": [{"b": None}]}, {}, {})
    assert_same_shape({"a": [{"b": 1}]}, {"a": [{"b": None}]}, {}, {"a[].b": "why"})
    assert_same_shape({"a": None, "n": 1.5}, {"a": {"x": 1}, "n": 2}, {}, {})


# ---------------------------------------------------------------------------------- the chain
class World:
    """A seeded chain on a free pair of ports with one SOL transfer landed and finalized."""

    def __init__(self) -> None:
        self.chain = LocalChain.seeded()
        self.served: Served = serve(self.chain, port=0)
        self.recipient = Keypair().pubkey()
        self.signature = self.send_transfer()
        self.slot = self.chain.ledger.records[self.signature].slot
        self.chain.advance(FINALIZE_AFTER_BLOCKS)

    def transfer_tx(self, to: Pubkey, lamports: int = 10**9) -> VersionedTransaction:
        ix = transfer(TransferParams(from_pubkey=WALLET.pubkey(), to_pubkey=to, lamports=lamports))
        blockhash = self.chain.ledger.latest_blockhash()[0]
        return VersionedTransaction(
            Message.new_with_blockhash([ix], WALLET.pubkey(), blockhash), [WALLET]
        )

    def send_transfer(self) -> Any:
        tx = self.transfer_tx(self.recipient)
        self.chain.ledger.send(tx)
        return tx.signatures[0]

    def call(self, method: str, params: list[Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
        if params is not None:
            body["params"] = params
        status, reply = http_json("POST", self.served.rpc_url, body)
        assert status == 200
        return dict(reply)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    w = World()
    yield w
    w.served.stop()
    w.chain.stop()


def http_params(world: World, method: str) -> list[Any] | None:
    """The docs' request for `method`, with this chain's addresses, slots and signatures."""
    sig = str(world.signature)
    decimals_6 = encode_base58(bytes([6]))
    tx = base64.b64encode(bytes(world.transfer_tx(Keypair().pubkey(), 5))).decode()
    return {
        "getEpochInfo": None,
        "getEpochSchedule": None,
        "getGenesisHash": None,
        "getIdentity": None,
        "getSupply": None,
        "getBlockTime": [world.slot],
        "getBlock": [
            world.slot,
            {
                "encoding": "json",
                "maxSupportedTransactionVersion": 0,
                "transactionDetails": "full",
                "rewards": False,
            },
        ],
        "getSignaturesForAddress": [str(world.recipient), {"limit": 1}],
        # Mints (82 bytes) with 6 decimals (byte 44): the docs' request has no encoding either.
        "getProgramAccounts": [
            str(TOKEN_PROGRAM_ID),
            {"filters": [{"dataSize": 82}, {"memcmp": {"offset": 44, "bytes": decimals_6}}]},
        ],
        "getTransaction": [sig, "json"],
        "getAccountInfo": [str(world.recipient), {"encoding": "base58"}],
        "getTokenLargestAccounts": [str(seed.USDC_MINT)],
        "getRecentPrioritizationFees": [[str(world.recipient)]],
        "simulateTransaction": [tx, {"encoding": "base64"}],
    }[method]


HTTP_METHODS = [
    "getEpochInfo",
    "getEpochSchedule",
    "getGenesisHash",
    "getIdentity",
    "getBlockTime",
    "getBlock",
    "getSignaturesForAddress",
    "getProgramAccounts",
    "getTransaction",
    "getAccountInfo",
    "getTokenLargestAccounts",
    "getSupply",
    "getRecentPrioritizationFees",
    "simulateTransaction",
]


@pytest.mark.parametrize("method", HTTP_METHODS)
def test_http_method_answers_in_the_docs_shape(world: World, method: str) -> None:
    docs = example(method)
    reply = world.call(method, http_params(world, method))
    assert "error" not in reply, reply
    assert_same_shape(docs["response"], reply, docs["extra"], docs["nullable"])
    assert reply["result"] not in ([], None), reply  # an empty answer proves no shape


def test_block_time_error_for_a_slot_not_produced(world: World) -> None:
    docs = example("getBlockTime")["errorResponse"]
    future = world.chain.ledger.slot + 1000
    reply = world.call("getBlockTime", [future])
    assert_same_shape(docs, reply, {}, {})
    assert reply["error"] == {"code": -32004, "message": f"Block not available for slot {future}"}


def test_values_agave_fixes_are_the_docs_values(world: World) -> None:
    """Beyond the shape: where a node's value is fixed, the chain's is the docs' value. A
    rent-exempt account's rentEpoch is u64::MAX; a slot with no block is -32004 with the
    docs' message."""
    docs = example("getAccountInfo")["response"]["result"]["value"]
    reply = world.call("getAccountInfo", http_params(world, "getAccountInfo"))
    assert reply["result"]["value"]["rentEpoch"] == docs["rentEpoch"] == 2**64 - 1
    docs_error = example("getBlockTime")["errorResponse"]["error"]
    docs_slot = int(docs_error["message"].rsplit(" ", 1)[1])
    future = world.chain.ledger.slot + docs_slot
    error = world.call("getBlockTime", [future])["error"]
    assert error["code"] == docs_error["code"]
    assert error["message"] == docs_error["message"].replace(str(docs_slot), str(future))


async def test_subscriptions_answer_and_notify_in_the_docs_shape(world: World) -> None:
    chain = world.chain
    to = Keypair().pubkey()
    tx = world.transfer_tx(to)
    sig = str(tx.signatures[0])
    requests = {
        "accountSubscribe": [str(to), {"encoding": "base58", "commitment": "finalized"}],
        "programSubscribe": [
            "11111111111111111111111111111111",
            {"encoding": "base64", "filters": [{"dataSize": 0}]},
        ],
        "logsSubscribe": [{"mentions": [str(to)]}, {"commitment": "finalized"}],
        "signatureSubscribe": [
            sig,
            {"commitment": "finalized", "enableReceivedNotification": True},
        ],
        "slotSubscribe": None,
        "rootSubscribe": None,
    }
    notifications: dict[str, list[dict[str, Any]]] = {}
    async with websockets.connect(world.served.ws_url) as ws:
        ids: dict[int, str] = {}
        for i, (method, params) in enumerate(requests.items()):
            body: dict[str, Any] = {"jsonrpc": "2.0", "id": i, "method": method}
            if params is not None:
                body["params"] = params
            await ws.send(json.dumps(body))
            reply = json.loads(await ws.recv())
            docs = example(method)
            assert_same_shape(docs["response"], reply, {}, {})
            ids[reply["result"]] = method
        chain.ledger.send(tx)
        chain.advance(FINALIZE_AFTER_BLOCKS)
        wanted = set(requests)
        while wanted - {m for m, seen in notifications.items() if seen}:
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            method = ids[message["params"]["subscription"]]
            notifications.setdefault(method, []).append(message)
        account_sub = next(i for i, m in ids.items() if m == "accountSubscribe")
        await ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 99,
                    "method": "accountUnsubscribe",
                    "params": [account_sub],
                }
            )
        )
        while True:  # slot notifications keep coming until the reply
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if reply.get("id") == 99:
                break
        assert_same_shape(example("accountUnsubscribe")["response"], reply, {}, {})
        assert reply["result"] is True

    for method in requests:
        docs = example(method)
        got = notifications[method]
        if method == "signatureSubscribe":
            received, done = got[0], got[-1]
            assert received["params"]["result"]["value"] == "receivedSignature"
            assert_same_shape(docs["receivedNotification"], received, {}, {})
            assert done["params"]["result"]["value"] == {"err": None}
            assert_same_shape(docs["notification"], done, {}, {})
        else:
            assert_same_shape(docs["notification"], got[0], {}, {})
