"""The local chain's second round with agave: account reads answer with the state as of their
commitment's slot (simulations with the newest), landed transactions carry the programs' CPIs
(`innerInstructions`) and simulations their `loadedAccountsDataSize`, and v0 transactions load
accounts from address lookup tables made with the real lookup-table program. Raw JSON-RPC and
PubSub frames over a real socket; blocks advance only when a test says so."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
import websockets
from solders.address_lookup_table_account import ID as LOOKUP_TABLE_PROGRAM
from solders.address_lookup_table_account import (
    AddressLookupTableAccount,
    derive_lookup_table_address,
)
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    transfer_checked,
)
from spl.token.models import TransferCheckedParams

from execution.chain import Chain
from local.chain import LocalChain, client_for, market, seed, serve_in_thread
from local.chain.ledger import FINALIZE_AFTER_BLOCKS

WALLET = seed.WALLET_KEYPAIR
DAMM_PROGRAM = Pubkey.from_string("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG")
LEVELS = ("processed", "confirmed", "finalized")


@pytest.fixture
def chain() -> LocalChain:
    return LocalChain.seeded()


@pytest.fixture
def url(chain: LocalChain) -> Iterator[str]:
    served, stop = serve_in_thread(chain)
    yield served
    stop()


def call(url: str, method: str, params: list[Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    reply = httpx.post(url, json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def result(url: str, method: str, params: list[Any]) -> Any:
    answer = call(url, method, params)
    assert "error" not in answer, answer
    return answer["result"]


def b64(tx: VersionedTransaction) -> str:
    return base64.b64encode(bytes(tx)).decode()


def send(url: str, tx: VersionedTransaction) -> str:
    sent: str = result(url, "sendTransaction", [b64(tx), {"encoding": "base64"}])
    return sent


def legacy(chain: LocalChain, ixs: Sequence[Instruction], payer: Keypair = WALLET) -> Any:
    recent = chain.ledger.latest_blockhash()[0]
    return VersionedTransaction(
        Message.new_with_blockhash(list(ixs), payer.pubkey(), recent), [payer]
    )


def pay(source: Pubkey, to: Pubkey, lamports: int) -> Instruction:
    return transfer(TransferParams(from_pubkey=source, to_pubkey=to, lamports=lamports))


def usdc(source_owner: Pubkey, dest: Pubkey, amount: int) -> Instruction:
    return transfer_checked(
        TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID,
            source=get_associated_token_address(source_owner, seed.USDC_MINT),
            mint=seed.USDC_MINT,
            dest=dest,
            owner=source_owner,
            amount=amount,
            decimals=6,
        )
    )


# ---------------------------------------------------------------------------------- state
def test_account_reads_answer_with_the_state_at_their_commitments_slot(
    chain: LocalChain, url: str
) -> None:
    """The ledger keeps each block's writes: getAccountInfo, getBalance, getMultipleAccounts,
    getProgramAccounts and getTokenAccountBalance at `confirmed` and `finalized` see the state
    at the end of that level's slot, and say that slot in their context; at `processed`, as
    simulateTransaction, the newest state (the open block's transactions included, as a
    validator's working bank), and they say the open slot."""
    ledger = chain.ledger
    owner = Keypair()
    ata = get_associated_token_address(owner.pubkey(), seed.USDC_MINT)
    send(
        url,
        legacy(
            chain,
            [
                pay(WALLET.pubkey(), owner.pubkey(), 10**9),
                create_idempotent_associated_token_account(
                    WALLET.pubkey(), owner.pubkey(), seed.USDC_MINT
                ),
                usdc(WALLET.pubkey(), ata, 7),
            ],
        ),
    )
    mine = {"memcmp": {"offset": 32, "bytes": str(owner.pubkey())}}

    def seen(level: str) -> dict[str, Any]:
        cfg = {"commitment": level, "encoding": "base64"}
        info = result(url, "getAccountInfo", [str(owner.pubkey()), cfg])
        balance = result(url, "getBalance", [str(owner.pubkey()), {"commitment": level}])
        many = result(url, "getMultipleAccounts", [[str(owner.pubkey()), str(ata)], cfg])
        program = result(
            url,
            "getProgramAccounts",
            [str(TOKEN_PROGRAM_ID), {**cfg, "withContext": True, "filters": [mine]}],
        )
        token = call(url, "getTokenAccountBalance", [str(ata), {"commitment": level}])
        slots = {
            r["context"]["slot"] for r in (info, balance, many, program, token.get("result", info))
        }
        expected = ledger.slot if level == "processed" else ledger.commitment_slot(level)
        assert slots == {expected}, (level, slots)
        return {
            "lamports": None if info["value"] is None else info["value"]["lamports"],
            "balance": balance["value"],
            "many": [a is not None for a in many["value"]],
            "program": [a["pubkey"] for a in program["value"]],
            "token": token["result"]["value"]["amount"] if "result" in token else None,
        }

    before = {"lamports": None, "balance": 0, "many": [False, False], "program": [], "token": None}
    after = {
        "lamports": 10**9,
        "balance": 10**9,
        "many": [True, True],
        "program": [str(ata)],
        "token": "7",
    }
    # Its block is still open: a processed read sees it, as its status says processed.
    assert [seen(level) for level in LEVELS] == [after, before, before]

    # A simulation sees the open block: the new owner can already spend what it was sent.
    spend = legacy(chain, [pay(owner.pubkey(), WALLET.pubkey(), 10**8)], payer=owner)
    simulated = result(url, "simulateTransaction", [b64(spend), {"encoding": "base64"}])
    assert simulated["value"]["err"] is None
    assert simulated["context"]["slot"] == ledger.slot

    chain.advance(1)  # produced: confirmed trails processed by one block
    assert [seen(level) for level in LEVELS] == [after, before, before]
    chain.advance(1)
    assert [seen(level) for level in LEVELS] == [after, after, before]
    chain.advance(FINALIZE_AFTER_BLOCKS - 2)
    assert [seen(level) for level in LEVELS] == [after, after, after]

    # A later write: confirmed keeps showing the state of its own slot until it catches up.
    send(url, legacy(chain, [pay(WALLET.pubkey(), owner.pubkey(), 5)]))
    levels = {"commitment": "processed"}, {"commitment": "confirmed"}
    processed, confirmed = (
        result(url, "getBalance", [str(owner.pubkey()), level])["value"] for level in levels
    )
    assert (processed, confirmed) == (10**9 + 5, 10**9)


# ---------------------------------------------------------------------------------- CPIs
@pytest.mark.parametrize("venue", ["raydium_cpmm", "meteora_damm_v2"])
def test_landed_swaps_carry_the_programs_token_cpis(
    chain: LocalChain, url: str, venue: str
) -> None:
    """getTransaction and getBlock list the real programs' CPIs (LiteSVM's metadata): the
    swap instruction's two token transfers (and DAMM v2's event, a CPI to itself), at stack
    height 2; jsonParsed parses them. A simulation lists them (parsed, as agave does) when
    asked, and reports the account data it loaded."""
    amount = 10**6
    tx = market.swap_transaction(
        chain.ledger, seed.MARKET_MAKER_KEYPAIR, seed.POOLS[venue], seed.USDC_MINT, amount
    )
    keys = [str(k) for k in tx.message.account_keys]
    simulated = result(
        url,
        "simulateTransaction",
        [b64(tx), {"encoding": "base64", "innerInstructions": True}],
    )["value"]
    accounts = result(url, "getMultipleAccounts", [keys, {"encoding": "base64"}])["value"]
    loaded = sum(len(base64.b64decode(a["data"][0])) for a in accounts if a is not None)
    assert simulated["loadedAccountsDataSize"] == loaded > 0
    [simulated_group] = simulated["innerInstructions"]
    assert simulated_group["index"] == 2  # compute budget, memo, then the swap

    sig = send(url, tx)
    chain.confirm()
    landed = result(
        url,
        "getTransaction",
        [sig, {"commitment": "confirmed", "maxSupportedTransactionVersion": 0}],
    )
    [group] = landed["meta"]["innerInstructions"]
    assert group["index"] == 2
    programs = [keys[ix["programIdIndex"]] for ix in group["instructions"]]
    token_calls = [
        ix for ix in group["instructions"] if keys[ix["programIdIndex"]] == str(TOKEN_PROGRAM_ID)
    ]
    assert len(token_calls) == 2, programs  # the input in, the output out
    assert all(ix["stackHeight"] == 2 for ix in group["instructions"])
    if venue == "meteora_damm_v2":
        assert str(DAMM_PROGRAM) in programs  # its event, emitted by a CPI to itself
    parsed = result(
        url,
        "getTransaction",
        [
            sig,
            {
                "commitment": "confirmed",
                "maxSupportedTransactionVersion": 0,
                "encoding": "jsonParsed",
            },
        ],
    )
    [parsed_group] = parsed["meta"]["innerInstructions"]
    transfers = [ix for ix in parsed_group["instructions"] if ix.get("program") == "spl-token"]
    first = transfers[0]["parsed"]
    assert first["type"] in ("transfer", "transferChecked")
    paid = first["info"].get("amount") or first["info"]["tokenAmount"]["amount"]
    assert int(paid) == amount  # the user's input, into the pool's vault
    assert simulated_group["instructions"] == parsed_group["instructions"]
    block = result(
        url,
        "getBlock",
        [landed["slot"], {"commitment": "confirmed", "maxSupportedTransactionVersion": 0}],
    )
    [entry] = [t for t in block["transactions"] if t["transaction"]["signatures"][0] == sig]
    assert entry["meta"]["innerInstructions"] == landed["meta"]["innerInstructions"]


# ---------------------------------------------------------------------------------- lookup tables
def create_table(authority: Keypair, recent_slot: int) -> tuple[Pubkey, Instruction]:
    """The lookup-table program's CreateLookupTable (tag 0, recent slot, bump)."""
    table, bump = derive_lookup_table_address(authority.pubkey(), recent_slot)
    data = struct.pack("<IQB", 0, recent_slot, bump)
    metas = [
        AccountMeta(table, False, True),
        AccountMeta(authority.pubkey(), True, False),
        AccountMeta(authority.pubkey(), True, True),  # the payer
        AccountMeta(SYSTEM_PROGRAM, False, False),
    ]
    return table, Instruction(LOOKUP_TABLE_PROGRAM, data, metas)


def extend_table(table: Pubkey, authority: Keypair, addresses: Sequence[Pubkey]) -> Instruction:
    """ExtendLookupTable (tag 2, a bincode Vec<Pubkey>)."""
    data = struct.pack("<IQ", 2, len(addresses)) + b"".join(bytes(a) for a in addresses)
    metas = [
        AccountMeta(table, False, True),
        AccountMeta(authority.pubkey(), True, False),
        AccountMeta(authority.pubkey(), True, True),
        AccountMeta(SYSTEM_PROGRAM, False, False),
    ]
    return Instruction(LOOKUP_TABLE_PROGRAM, data, metas)


async def test_a_v0_transaction_loads_accounts_from_a_lookup_table(
    chain: LocalChain, url: str
) -> None:
    """A table made and extended with the real program's instructions serves a v0 transfer
    from the slot after its extension: the chain runs it, getTransaction and getBlock show the
    lookups and `loadedAddresses`, balances and token balances cover the loaded accounts, and
    accountSubscribe, logsSubscribe and programSubscribe see them."""
    ledger = chain.ledger
    recipient = Keypair().pubkey()
    holder = Keypair().pubkey()
    dest = get_associated_token_address(holder, seed.USDC_MINT)
    chain.advance(1)
    recent = result(url, "getSlot", [{"commitment": "confirmed"}])
    table, create = create_table(WALLET, recent)
    extend = extend_table(table, WALLET, [recipient, dest, seed.USDC_MINT])
    setup = legacy(
        chain,
        [
            create,
            extend,
            create_idempotent_associated_token_account(WALLET.pubkey(), holder, seed.USDC_MINT),
        ],
    )
    made = send(url, setup)
    chain.confirm()
    shown = result(
        url,
        "getTransaction",
        [made, {"commitment": "confirmed", "encoding": "jsonParsed"}],
    )["transaction"]["message"]["instructions"]
    assert [(ix["program"], ix["parsed"]["type"]) for ix in shown[:2]] == [
        ("address-lookup-table", "createLookupTable"),
        ("address-lookup-table", "extendLookupTable"),
    ]
    assert shown[0]["parsed"]["info"]["recentSlot"] == recent
    assert shown[1]["parsed"]["info"]["newAddresses"] == [
        str(recipient),
        str(dest),
        str(seed.USDC_MINT),
    ]
    stored = result(
        url, "getAccountInfo", [str(table), {"commitment": "confirmed", "encoding": "base64"}]
    )["value"]
    assert stored["owner"] == str(LOOKUP_TABLE_PROGRAM)

    lookup = AddressLookupTableAccount(table, [recipient, dest, seed.USDC_MINT])
    instructions = [pay(WALLET.pubkey(), recipient, 10**6), usdc(WALLET.pubkey(), dest, 5)]
    message = MessageV0.try_compile(
        WALLET.pubkey(), instructions, [lookup], ledger.latest_blockhash()[0]
    )
    assert [str(k) for k in message.account_keys].count(str(recipient)) == 0  # it is loaded
    tx = VersionedTransaction(message, [WALLET])

    ws_url = url.replace("http://", "ws://")
    async with websockets.connect(ws_url) as ws:
        subscriptions = {}
        for request_id, method, params in (
            (1, "accountSubscribe", [str(dest), {"commitment": "processed", "encoding": "base64"}]),
            (2, "logsSubscribe", [{"mentions": [str(recipient)]}, {"commitment": "processed"}]),
            (
                3,
                "programSubscribe",
                [
                    str(TOKEN_PROGRAM_ID),
                    {
                        "commitment": "confirmed",
                        "encoding": "jsonParsed",
                        "filters": [{"memcmp": {"offset": 32, "bytes": str(holder)}}],
                    },
                ],
            ),
        ):
            await ws.send(
                json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
            )
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            subscriptions[reply["result"]] = method

        sig = send(url, tx)
        chain.confirm()
        notes: dict[str, Any] = {}
        while len(notes) < 3:
            note = json.loads(await asyncio.wait_for(ws.recv(), 5))
            notes[subscriptions[note["params"]["subscription"]]] = note["params"]["result"]
    account = base64.b64decode(notes["accountSubscribe"]["value"]["data"][0])
    assert int.from_bytes(account[64:72], "little") == 5
    assert notes["logsSubscribe"]["value"]["signature"] == sig
    program_note = notes["programSubscribe"]["value"]
    assert program_note["pubkey"] == str(dest)
    assert program_note["account"]["data"]["parsed"]["info"]["tokenAmount"]["amount"] == "5"

    cfg = {"commitment": "confirmed", "maxSupportedTransactionVersion": 0}
    landed = result(url, "getTransaction", [sig, cfg])
    assert landed["meta"]["err"] is None
    [compiled] = message.address_table_lookups  # the order the compiler chose
    table_keys = [recipient, dest, seed.USDC_MINT]
    writable = [table_keys[i] for i in bytes(compiled.writable_indexes)]
    assert {str(k) for k in writable} == {str(recipient), str(dest)}
    assert landed["meta"]["loadedAddresses"] == {
        "writable": [str(k) for k in writable],
        "readonly": [str(seed.USDC_MINT)],
    }
    assert landed["transaction"]["message"]["addressTableLookups"] == [
        {
            "accountKey": str(table),
            "readonlyIndexes": [2],
            "writableIndexes": list(bytes(compiled.writable_indexes)),
        }
    ]
    static = landed["transaction"]["message"]["accountKeys"]
    keys = [*static, *(str(k) for k in writable), str(seed.USDC_MINT)]
    pre, post = landed["meta"]["preBalances"], landed["meta"]["postBalances"]
    assert len(pre) == len(post) == len(keys)
    assert post[keys.index(str(recipient))] - pre[keys.index(str(recipient))] == 10**6
    [received] = [
        b for b in landed["meta"]["postTokenBalances"] if keys[b["accountIndex"]] == str(dest)
    ]
    assert received["uiTokenAmount"]["amount"] == "5"

    parsed = result(url, "getTransaction", [sig, {**cfg, "encoding": "jsonParsed"}])
    sources = {
        k["pubkey"]: (k["source"], k["writable"])
        for k in parsed["transaction"]["message"]["accountKeys"]
    }
    assert sources[str(recipient)] == ("lookupTable", True)
    assert sources[str(seed.USDC_MINT)] == ("lookupTable", False)
    moved = parsed["transaction"]["message"]["instructions"][1]["parsed"]
    assert moved["type"] == "transferChecked"
    assert moved["info"]["destination"] == str(dest)
    assert moved["info"]["mint"] == str(seed.USDC_MINT)

    block = result(url, "getBlock", [landed["slot"], cfg])
    [entry] = [t for t in block["transactions"] if t["transaction"]["signatures"][0] == sig]
    assert entry["meta"]["loadedAddresses"] == landed["meta"]["loadedAddresses"]
    assert (
        result(url, "getBalance", [str(recipient), {"commitment": "confirmed"}])["value"] == 10**6
    )
    found = result(url, "getSignaturesForAddress", [str(recipient), {"commitment": "confirmed"}])
    assert [f["signature"] for f in found] == [sig]

    # The engine's reader counts the loaded keys among the transaction's accounts.
    client = client_for(chain)
    try:
        read = await Chain("http://local-chain", client).transaction(Signature.from_string(sig))
    finally:
        await client.close()
    assert read is not None
    assert read.keys[-3:] == [*writable, seed.USDC_MINT]


def test_a_lookup_is_refused_until_the_slot_after_the_extension(
    chain: LocalChain, url: str
) -> None:
    """Addresses extended in the current slot are not active yet (agave's rule): the preflight
    says so in agave's words, and the transaction lands once a block has passed."""
    recipient = Keypair().pubkey()
    chain.advance(1)
    table, create = create_table(WALLET, chain.ledger.processed_slot)
    send(url, legacy(chain, [create, extend_table(table, WALLET, [recipient])]))
    lookup = AddressLookupTableAccount(table, [recipient])
    message = MessageV0.try_compile(
        WALLET.pubkey(),
        [pay(WALLET.pubkey(), recipient, 10**6)],
        [lookup],
        chain.ledger.latest_blockhash()[0],
    )
    tx = VersionedTransaction(message, [WALLET])
    refused = call(url, "sendTransaction", [b64(tx), {"encoding": "base64"}])["error"]
    assert refused["code"] == -32002
    assert refused["message"] == (
        "Transaction simulation failed: Transaction address table lookup uses an invalid index"
    )
    chain.advance(1)
    sig = send(url, tx)
    status = result(url, "getSignatureStatuses", [[sig]])["value"][0]
    assert status["err"] is None


def test_the_confirmation_lag_is_a_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOCAL_CHAIN_CONFIRMED_LAG: how many blocks `confirmed` trails `processed` (default 1);
    0 makes them one level: a transaction is confirmed as soon as its block is produced."""
    from local.chain.ledger import Ledger

    for lag, behind in (("", 1), ("0", 0), ("3", 3)):
        monkeypatch.setenv("LOCAL_CHAIN_CONFIRMED_LAG", lag)
        ledger = Ledger()
        ledger.advance(40)
        assert ledger.commitment_slot("confirmed") == ledger.processed_slot - behind
        sig = ledger.airdrop(Keypair().pubkey(), 10**9)
        levels = []
        for _ in range(behind + 2):
            found = ledger.status(sig)
            assert found is not None
            levels.append(found[2])
            ledger.advance(1)
        # Open, produced, then `behind` more blocks before it is confirmed.
        assert levels == ["processed"] * (behind + 1) + ["confirmed"]
    for bad in ("-1", "31", "one"):
        monkeypatch.setenv("LOCAL_CHAIN_CONFIRMED_LAG", bad)
        with pytest.raises(ValueError, match="LOCAL_CHAIN_CONFIRMED_LAG"):
            Ledger()
