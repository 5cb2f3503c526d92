"""The local chain answers as an agave 2.x validator does where clients notice: commitment levels
that name produced blocks, agave's error codes and texts, its request limits, malformed requests
answered as JSON-RPC errors (never an HTTP 500), and an admin door no web page can use. Over a
real socket (`serve_in_thread`), with raw JSON-RPC where the detail is the point."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from local.chain import LocalChain, seed, serve_in_thread
from local.chain.admin import MAX_ADVANCE_BLOCKS, admin_headers
from local.chain.ledger import FINALIZE_AFTER_BLOCKS
from local.chain.rpc import MAX_REQUEST_BODY_BYTES

WALLET = seed.WALLET_KEYPAIR
U64_MAX = 2**64 - 1


@pytest.fixture
def chain() -> LocalChain:
    return LocalChain.seeded()


@pytest.fixture
def url(chain: LocalChain) -> Iterator[str]:
    served, stop = serve_in_thread(chain)
    yield served
    stop()


def call(url: str, method: str, params: list[Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        body["params"] = params
    reply = httpx.post(url, json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def result(url: str, method: str, params: list[Any] | None = None) -> Any:
    answer = call(url, method, params)
    assert "error" not in answer, answer
    return answer["result"]


def error(url: str, method: str, params: list[Any] | None = None) -> dict[str, Any]:
    answer = call(url, method, params)
    assert "error" in answer, answer
    found: dict[str, Any] = answer["error"]
    return found


def signed(
    chain: LocalChain, ixs: Sequence[Instruction], payer: Keypair = WALLET
) -> VersionedTransaction:
    recent = chain.ledger.latest_blockhash()[0]
    return VersionedTransaction(
        Message.new_with_blockhash(list(ixs), payer.pubkey(), recent), [payer]
    )


def b64(tx: VersionedTransaction) -> str:
    return base64.b64encode(bytes(tx)).decode()


def send(url: str, tx: VersionedTransaction, **cfg: Any) -> dict[str, Any]:
    return call(url, "sendTransaction", [b64(tx), {"encoding": "base64", **cfg}])


def pay(source: Pubkey, to: Pubkey, lamports: int) -> Instruction:
    return transfer(TransferParams(from_pubkey=source, to_pubkey=to, lamports=lamports))


# ---------------------------------------------------------------------------------- commitment
def test_every_commitment_names_a_produced_block(chain: LocalChain, url: str) -> None:
    """`getBlockTime(await getSlot())` and `getBlock(getSlot())` work at every level."""
    for level in ("processed", "confirmed", "finalized"):  # before any block is produced
        slot = result(url, "getSlot", [{"commitment": level}])
        assert isinstance(result(url, "getBlockTime", [slot]), int)
    chain.advance(40)
    ledger = chain.ledger
    slots = {
        level: result(url, "getSlot", [{"commitment": level}])
        for level in ("processed", "confirmed", "finalized")
    }
    assert slots["processed"] == ledger.slot - 1  # the open slot is still filling
    assert slots["confirmed"] == ledger.slot - 2  # one block behind processed, as on a cluster
    assert slots["finalized"] == ledger.slot - FINALIZE_AFTER_BLOCKS
    assert result(url, "getSlot") == slots["finalized"]  # a node's default commitment
    for level, slot in slots.items():
        assert result(url, "getBlockTime", [slot]) == ledger.blocks[slot].time
        height = result(url, "getBlockHeight", [{"commitment": level}])
        assert height == ledger.blocks[slot].height
        latest = result(url, "getLatestBlockhash", [{"commitment": level}])
        assert latest["context"]["slot"] == slot
        assert latest["value"]["blockhash"] == str(ledger.blocks[slot].blockhash)
        if level != "processed":
            block = result(url, "getBlock", [slot, {"commitment": level}])
            assert block["blockHeight"] == height
    assert result(url, "getBlocks", [slots["finalized"] - 2])[-1] == slots["finalized"]
    assert (
        result(url, "getBlocks", [slots["finalized"] - 2, None, {"commitment": "confirmed"}])[-1]
        == slots["confirmed"]
    )
    assert (
        result(url, "getEpochInfo", [{"commitment": "finalized"}])["absoluteSlot"]
        == (slots["finalized"])
    )


def test_history_methods_answer_at_their_commitment(chain: LocalChain, url: str) -> None:
    to = Keypair().pubkey()
    sig = chain.ledger.send(signed(chain, [pay(WALLET.pubkey(), to, 10**9)]))
    for method, params in (
        ("getTransaction", [str(sig), {"commitment": "processed"}]),
        ("getSignaturesForAddress", [str(to), {"commitment": "processed"}]),
        ("getBlock", [chain.ledger.slot, {"commitment": "processed"}]),
        ("getBlocks", [0, None, {"commitment": "processed"}]),
    ):
        refused = error(url, method, params)
        assert refused == {
            "code": -32602,
            "message": "Method does not support commitment below `confirmed`",
        }
    confirmed = {"commitment": "confirmed"}
    assert result(url, "getTransaction", [str(sig), confirmed]) is None  # its block is open
    chain.advance(1)
    assert result(url, "getTransaction", [str(sig), confirmed]) is None  # produced, not confirmed
    chain.advance(1)
    assert result(url, "getTransaction", [str(sig), confirmed])["slot"] == chain.ledger.slot - 2
    assert result(url, "getTransaction", [str(sig)]) is None  # finalized: not rooted yet
    assert result(url, "getSignaturesForAddress", [str(to)]) == []
    assert len(result(url, "getSignaturesForAddress", [str(to), confirmed])) == 1
    chain.advance(FINALIZE_AFTER_BLOCKS)
    assert result(url, "getTransaction", [str(sig)]) is not None
    assert len(result(url, "getSignaturesForAddress", [str(to)])) == 1


def test_simulation_runs_on_the_newest_state_and_says_so(chain: LocalChain, url: str) -> None:
    tx = signed(chain, [pay(WALLET.pubkey(), Keypair().pubkey(), 10**6)])
    simulated = result(url, "simulateTransaction", [b64(tx), {"encoding": "base64"}])
    assert simulated["value"]["err"] is None
    assert simulated["context"]["slot"] == chain.ledger.slot


# ---------------------------------------------------------------------------------- errors
def test_preflight_failures_read_as_agave_writes_them(chain: LocalChain, url: str) -> None:
    nobody = Keypair()
    unfunded = send(url, signed(chain, [pay(nobody.pubkey(), WALLET.pubkey(), 1)], nobody))
    assert unfunded["error"]["code"] == -32002
    assert unfunded["error"]["message"] == (
        "Transaction simulation failed: Attempt to debit an account but found no record of a "
        "prior credit."
    )
    assert unfunded["error"]["data"]["err"] == "AccountNotFound"
    dust = send(url, signed(chain, [pay(WALLET.pubkey(), Keypair().pubkey(), 1)]))
    assert dust["error"]["message"] == (
        "Transaction simulation failed: Transaction results in an account (1) with insufficient "
        "funds for rent"
    )
    too_much = send(
        url, signed(chain, [pay(WALLET.pubkey(), Keypair().pubkey(), 10**30 // 10**12)])
    )
    assert too_much["error"]["message"] == (
        "Transaction simulation failed: Error processing Instruction 0: custom program error: 0x1"
    )
    faucet_dry = error(url, "requestAirdrop", [str(Keypair().pubkey()), 10**18])
    assert faucet_dry == {"code": -32603, "message": "Internal error"}


def test_a_bad_signature_is_32003_without_data(chain: LocalChain, url: str) -> None:
    tx = signed(chain, [pay(WALLET.pubkey(), Keypair().pubkey(), 10**6)])
    forged = VersionedTransaction.populate(tx.message, [Signature.default()])
    refused = {"code": -32003, "message": "Transaction signature verification failure"}
    assert send(url, forged)["error"] == refused
    simulated = call(
        url, "simulateTransaction", [b64(forged), {"encoding": "base64", "sigVerify": True}]
    )
    assert simulated["error"] == refused
    # Without preflight a node takes it and it never lands.
    assert send(url, forged, skipPreflight=True)["result"] == str(Signature.default())
    chain.advance(1)
    assert result(url, "getSignatureStatuses", [[str(Signature.default())]])["value"] == [None]


def test_malformed_requests_are_json_rpc_errors(url: str) -> None:
    invalid = -32602
    for method, params, message in (
        ("isBlockhashValid", [12], None),
        ("isBlockhashValid", ["not a hash"], None),
        (
            "getMinimumBalanceForRentExemption",
            [-1],
            "Invalid params: invalid value: integer `-1`, expected usize.",
        ),
        (
            "getMinimumBalanceForRentExemption",
            [1e30],
            "Invalid params: invalid type: floating point `1e+30`, expected usize.",
        ),
        (
            "getBlocksWithLimit",
            [0, -1],
            "Invalid params: invalid value: integer `-1`, expected usize.",
        ),
        (
            "getSlot",
            [{"commitment": "recent-ish"}],
            "Invalid params: unknown variant `recent-ish`, expected one of `processed`, "
            "`confirmed`, `finalized`.",
        ),
        ("getBalance", ["1" * 45], "Invalid param: WrongSize"),
        ("getBalance", ["0OIl" * 8], "Invalid param: Invalid"),
        ("getBalance", ["1" * 20], "Invalid param: WrongSize"),
        (
            "getSignatureStatuses",
            [[str(Signature.default())] * 257],
            "Too many inputs provided; max 256",
        ),
        (
            "getMultipleAccounts",
            [[str(Pubkey.default())] * 101],
            "Too many inputs provided; max 100",
        ),
    ):
        found = error(url, method, params)
        assert found["code"] == invalid, (method, params, found)
        if message is not None:
            assert found["message"] == message
    nested = '{"jsonrpc":"2.0","id":1,"method":"getSlot","params":' + "[" * 25_000 + "]" * 25_000
    deep = httpx.post(url, content=nested + "}", headers={"content-type": "application/json"})
    assert deep.status_code == 200
    assert deep.json()["error"]["code"] == -32700
    huge = httpx.post(url, content=b" " * (MAX_REQUEST_BODY_BYTES + 1))
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == -32600
    batch = [{"jsonrpc": "2.0", "id": i, "method": "getHealth"} for i in range(101)]
    too_many = httpx.post(url, json=batch).json()
    assert too_many["error"]["code"] == -32600
    assert "LOCAL_CHAIN_MAX_BATCH" in too_many["error"]["message"]


def test_token_reads_refuse_in_agaves_words(url: str) -> None:
    nowhere = str(Keypair().pubkey())
    wallet = str(WALLET.pubkey())
    token_account = str(seed.WALLET_USDC_ATA)

    def message(method: str, key: str) -> str:
        return str(error(url, method, [key])["message"])

    assert message("getTokenSupply", nowhere) == "Invalid param: could not find account"
    assert message("getTokenSupply", wallet) == "Invalid param: not a Token mint"
    assert message("getTokenSupply", token_account) == "Invalid param: mint could not be unpacked"
    assert message("getTokenLargestAccounts", nowhere) == "Invalid param: could not find mint"
    assert message("getTokenAccountBalance", nowhere) == "Invalid param: could not find account"
    assert message("getTokenAccountBalance", wallet) == "Invalid param: not a Token account"
    by_mint = error(url, "getTokenAccountsByOwner", [wallet, {"mint": wallet}])
    assert by_mint["message"] == "Invalid param: not a Token mint"


def test_a_long_memcmp_is_refused_before_it_is_decoded(url: str) -> None:
    started = time.monotonic()
    refused = error(
        url,
        "getProgramAccounts",
        [
            str(Pubkey.default()),
            {"filters": [{"memcmp": {"offset": 0, "bytes": "z" * 50_000}}]},
        ],
    )
    assert refused == {"code": -32602, "message": "Invalid param: DataTooLarge"}
    assert time.monotonic() - started < 1  # a quadratic base58 decode took seconds


def test_a_notification_gets_no_reply(chain: LocalChain, url: str) -> None:
    quiet = httpx.post(
        url,
        json={"jsonrpc": "2.0", "method": "requestAirdrop", "params": [str(WALLET.pubkey()), 1]},
    )
    assert quiet.status_code == 200
    assert quiet.content == b""
    mixed = httpx.post(
        url,
        json=[
            {"jsonrpc": "2.0", "method": "getHealth"},
            {"jsonrpc": "2.0", "id": 7, "method": "getHealth"},
        ],
    ).json()
    assert mixed == [{"jsonrpc": "2.0", "result": "ok", "id": 7}]


def test_fees_and_rent_epoch_as_agave_shows_them(chain: LocalChain, url: str) -> None:
    message = signed(chain, [pay(WALLET.pubkey(), Keypair().pubkey(), 1)]).message
    fee = result(url, "getFeeForMessage", [base64.b64encode(to_bytes_versioned(message)).decode()])
    assert fee["value"] == 5000
    unknown = Message.new_with_blockhash(
        [pay(WALLET.pubkey(), Keypair().pubkey(), 1)], WALLET.pubkey(), Hash.new_unique()
    )
    stale = result(
        url, "getFeeForMessage", [base64.b64encode(to_bytes_versioned(unknown)).decode()]
    )
    assert stale["value"] is None
    account = result(url, "getAccountInfo", [str(WALLET.pubkey()), {"encoding": "base64"}])
    assert account["value"]["rentEpoch"] == U64_MAX


# ---------------------------------------------------------------------------------- admin door
def test_the_admin_door_takes_the_token_json_only_and_no_cors(chain: LocalChain, url: str) -> None:
    faults = f"{url}/admin/faults"
    assert httpx.get(faults).status_code == 401
    assert httpx.get(faults, headers={"Authorization": "Bearer wrong"}).status_code == 401
    # A page's simple (preflight-free) POST: text/plain, no token.
    page = httpx.post(
        f"{url}/admin/advance",
        content=json.dumps({"blocks": 1}),
        headers={"Content-Type": "text/plain", "Origin": "https://evil.example"},
    )
    assert page.status_code == 401
    assert "access-control-allow-origin" not in page.headers
    token = admin_headers()
    as_text = httpx.post(
        f"{url}/admin/advance",
        content=json.dumps({"blocks": 1}),
        headers={**token, "Content-Type": "text/plain"},
    )
    assert as_text.status_code == 415
    preflight = httpx.options(
        f"{url}/admin/pool_price",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-private-network" not in preflight.headers
    height = chain.height
    for blocks in (0, -5, MAX_ADVANCE_BLOCKS + 1, "3"):
        bounded = httpx.post(f"{url}/admin/advance", json={"blocks": blocks}, headers=token)
        assert bounded.status_code == 400, blocks
    malformed = httpx.post(f"{url}/admin/faults", content=b"{", headers=token)
    assert malformed.status_code == 400
    assert chain.height == height  # nothing above moved the chain
    moved = httpx.post(f"{url}/admin/advance", json={"blocks": 2}, headers=token)
    assert moved.json()["blockHeight"] == height + 2
    assert httpx.get(faults, headers=token).json()["drop_next_sends"] == 0
    # The RPC itself keeps CORS for the explorer.
    rpc = httpx.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
        headers={"Origin": "https://explorer.solana.com"},
    )
    assert rpc.headers["access-control-allow-origin"] == "*"


# ---------------------------------------------------------------------------------- cluster methods
def test_the_cluster_methods_answer_for_the_one_node(chain: LocalChain, url: str) -> None:
    identity = result(url, "getIdentity")["identity"]
    chain.advance(40)
    ledger = chain.ledger
    votes = result(url, "getVoteAccounts")
    [voter] = votes["current"]
    assert votes["delinquent"] == []
    assert voter["nodePubkey"] == identity
    assert voter["epochVoteAccount"] is True
    assert voter["rootSlot"] == ledger.root_slot
    [node] = result(url, "getClusterNodes")
    assert node["pubkey"] == identity
    assert node["version"] == result(url, "getVersion")["solana-core"]
    schedule = result(url, "getLeaderSchedule")
    assert list(schedule) == [identity]
    assert schedule[identity][:3] == [0, 1, 2]
    assert len(schedule[identity]) == 432_000
    assert result(url, "getLeaderSchedule", [None, {"identity": str(Pubkey.default())}]) == {}
    assert result(url, "getSlotLeader") == identity
    assert result(url, "getSlotLeaders", [ledger.slot, 3]) == [identity] * 3
    assert error(url, "getSlotLeaders", [0, 5001])["code"] == -32602
    production = result(url, "getBlockProduction", [{"commitment": "confirmed"}])["value"]
    assert production["range"] == {"firstSlot": 0, "lastSlot": ledger.slot - 2}
    assert production["byIdentity"][identity] == [ledger.slot - 1, ledger.slot - 1]  # no skips
    rooted = result(url, "getBlockCommitment", [ledger.root_slot])
    assert rooted["commitment"] is None
    recent = result(url, "getBlockCommitment", [ledger.slot - 1])
    assert len(recent["commitment"]) == 32
    assert sum(recent["commitment"]) == recent["totalStake"] > 0
    [sample] = result(url, "getRecentPerformanceSamples", [5])
    assert sample["slot"] == ledger.slot - 1
    assert sample["numTransactions"] == sum(len(b.records) for b in ledger.blocks.values())
    assert sample["numSlots"] == ledger.slot - 1
    governor = result(url, "getInflationGovernor")
    assert governor == {
        "initial": 0.08,
        "terminal": 0.015,
        "taper": 0.15,
        "foundation": 0.05,
        "foundationTerm": 7.0,
    }
    rate = result(url, "getInflationRate")
    assert rate["epoch"] == 0
    assert rate["total"] == pytest.approx(rate["validator"] + rate["foundation"])
    assert error(url, "getInflationReward", [[str(WALLET.pubkey())]])["code"] == -32602
    assert result(url, "getStakeMinimumDelegation")["value"] == 1
    largest = result(url, "getLargestAccounts")["value"]
    assert len(largest) <= 20
    assert largest == sorted(largest, key=lambda a: a["lamports"], reverse=True)
    circulating = result(url, "getLargestAccounts", [{"filter": "circulating"}])["value"]
    assert {a["address"] for a in circulating}.isdisjoint(str(k) for k in ledger.faucets())
    assert error(url, "getHighestSnapshotSlot") == {"code": -32008, "message": "No snapshot"}
    assert result(url, "getMaxRetransmitSlot") == ledger.slot - 1
    assert result(url, "getMaxShredInsertSlot") == ledger.slot - 1


def test_token_accounts_by_delegate(chain: LocalChain, url: str) -> None:
    from spl.token.constants import TOKEN_PROGRAM_ID
    from spl.token.instructions import approve
    from spl.token.models import ApproveParams

    delegate = Keypair().pubkey()
    by = {"programId": str(TOKEN_PROGRAM_ID)}
    assert result(url, "getTokenAccountsByDelegate", [str(delegate), by])["value"] == []
    allow = approve(
        ApproveParams(
            program_id=TOKEN_PROGRAM_ID,
            source=seed.WALLET_USDC_ATA,
            delegate=delegate,
            owner=WALLET.pubkey(),
            amount=5,
        )
    )
    chain.ledger.send(signed(chain, [allow]))
    chain.confirm()
    cfg = {"encoding": "jsonParsed", "commitment": "confirmed"}
    found = result(url, "getTokenAccountsByDelegate", [str(delegate), by, cfg])["value"]
    assert [f["pubkey"] for f in found] == [str(seed.WALLET_USDC_ATA)]
    info = found[0]["account"]["data"]["parsed"]["info"]
    assert info["delegate"] == str(delegate)
    assert info["delegatedAmount"]["amount"] == "5"


async def test_slots_updates_subscribe(chain: LocalChain, url: str) -> None:
    import websockets

    ws_url = url.replace("http://", "ws://")
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "slotsUpdatesSubscribe"}))
        subscription = json.loads(await ws.recv())["result"]
        chain.advance(1)  # past the seed's transactions
        for _ in range(3):  # that block's frozen, createdBank and optimisticConfirmation
            json.loads(await asyncio.wait_for(ws.recv(), 5))
        chain.ledger.send(signed(chain, [pay(WALLET.pubkey(), Keypair().pubkey(), 10**6)]))
        produced = chain.ledger.slot
        chain.advance(1)
        updates: list[dict[str, Any]] = []
        while len(updates) < 3:
            note = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert note["method"] == "slotsUpdatesNotification"
            assert note["params"]["subscription"] == subscription
            updates.append(note["params"]["result"])
        frozen, created, confirmed = updates
        assert frozen["type"] == "frozen"
        assert frozen["slot"] == produced
        assert frozen["stats"]["numSuccessfulTransactions"] == 1
        assert created == {
            "type": "createdBank",
            "parent": produced,
            "slot": chain.ledger.slot,
            "timestamp": created["timestamp"],
        }
        assert confirmed["type"] == "optimisticConfirmation"
        assert confirmed["slot"] == chain.ledger.blocks[produced].parent_slot  # a block behind
        chain.advance(1)
        updates = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(3)]
        assert updates[2]["params"]["result"]["type"] == "optimisticConfirmation"
        assert updates[2]["params"]["result"]["slot"] == produced
