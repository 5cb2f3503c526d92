"""The RPC methods users' tools and the explorer call, on the local chain: what they answer
(tests/integration/test_rpc_shapes.py checks how it is shaped), through solana-py's typed client
(so solders parses every answer) and raw JSON-RPC where the detail matters."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx2
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.models import DataSliceOpts, MemcmpOpts
from solders.account import Account
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionDetails
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    transfer_checked,
)
from spl.token.models import TransferCheckedParams

from local.chain import LocalChain, client_for, market, seed
from local.chain.ledger import (
    BLOCKHASH_VALID_BLOCKS,
    FINALIZE_AFTER_BLOCKS,
    HISTORY_SLOTS,
    MS_PER_SLOT,
    PRIORITY_FEE_SLOTS,
    Ledger,
    history_slots_setting,
)
from local.chain.wire import zstd_frame

WALLET = seed.WALLET_KEYPAIR
MEMO_PROGRAM = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")


@pytest.fixture
def chain() -> LocalChain:
    return LocalChain.seeded()


@pytest.fixture
async def client(chain: LocalChain) -> AsyncIterator[AsyncClient]:
    client = client_for(chain)
    yield client
    await client.close()


@pytest.fixture
async def http(chain: LocalChain) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=chain.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://chain") as client:
        yield client


async def rpc(http: httpx2.AsyncClient, method: str, params: list[Any] | None = None) -> Any:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        body["params"] = params
    reply = (await http.post("/", json=body)).json()
    return reply


def signed(
    chain: LocalChain,
    ixs: Sequence[Instruction],
    *,
    v0: bool = False,
    payer: Keypair = WALLET,
    blockhash: Hash | None = None,
) -> VersionedTransaction:
    recent = blockhash or chain.ledger.latest_blockhash()[0]
    if v0:
        return VersionedTransaction(
            MessageV0.try_compile(payer.pubkey(), list(ixs), [], recent), [payer]
        )
    return VersionedTransaction(
        Message.new_with_blockhash(list(ixs), payer.pubkey(), recent), [payer]
    )


def pay(to: Pubkey, lamports: int = 10**6) -> Instruction:
    return transfer(TransferParams(from_pubkey=WALLET.pubkey(), to_pubkey=to, lamports=lamports))


def memo(text: str) -> Instruction:
    return Instruction(MEMO_PROGRAM, text.encode(), [AccountMeta(WALLET.pubkey(), True, False)])


def land(chain: LocalChain, ixs: Sequence[Instruction], **kw: Any) -> Signature:
    tx = signed(chain, ixs, **kw)
    return chain.ledger.send(tx)


def usdc_to(owner: Pubkey, amount: int) -> list[Instruction]:
    return [
        create_idempotent_associated_token_account(WALLET.pubkey(), owner, seed.USDC_MINT),
        transfer_checked(
            TransferCheckedParams(
                program_id=TOKEN_PROGRAM_ID,
                source=seed.WALLET_USDC_ATA,
                mint=seed.USDC_MINT,
                dest=get_associated_token_address(owner, seed.USDC_MINT),
                owner=WALLET.pubkey(),
                amount=amount,
                decimals=6,
            )
        ),
    ]


# ---------------------------------------------------------------------------------- chain info
async def test_epoch_identity_genesis_through_solana_py(
    chain: LocalChain, client: AsyncClient
) -> None:
    chain.advance(40)
    info = (await client.get_epoch_info()).value
    schedule = (await client.get_epoch_schedule()).value
    # At the client's `confirmed`: a block behind the newest produced one (the open one is
    # still filling).
    assert info.absolute_slot == chain.ledger.confirmed_slot == chain.ledger.slot - 2
    assert info.block_height == chain.ledger.height - 2
    # Mainnet's schedule without warm-up, as the ledger's Clock sysvar counts epochs (what
    # Token-2022 reads for its epoch fees): slot 39 is in epoch 0.
    assert not schedule.warmup
    assert schedule.slots_per_epoch == 432_000
    assert (info.epoch, info.slot_index, info.slots_in_epoch) == (0, 39, 432_000)
    assert info.epoch == chain.ledger.clock().epoch
    assert info.transaction_count == chain.ledger.transaction_count >= 1  # the seed's airdrop
    genesis = (await client.get_genesis_hash()).value
    assert genesis == (await client.get_genesis_hash()).value  # fixed across calls and runs
    identity = (await client.get_identity()).value.identity
    assert isinstance(identity, Pubkey)


async def test_block_time_is_400_ms_a_slot(chain: LocalChain, client: AsyncClient) -> None:
    first = chain.ledger.slot
    chain.advance(10)
    t0 = (await client.get_block_time(first)).value
    t1 = (await client.get_block_time(first + 5)).value
    assert t0 is not None
    assert t1 is not None
    assert t1 - t0 == 5 * MS_PER_SLOT // 1000
    assert abs(t0 - chain.ledger.genesis_time) <= 1


async def test_get_block_details_and_commitment(
    chain: LocalChain, client: AsyncClient, http: httpx2.AsyncClient
) -> None:
    chain.advance(1)  # past the seed's airdrop
    sig = land(chain, [pay(Keypair().pubkey())])
    v0 = land(chain, [pay(Keypair().pubkey())], v0=True)
    slot = chain.ledger.slot
    # The open slot is not a block yet.
    assert (await rpc(http, "getBlock", [slot]))["error"]["code"] == -32004
    chain.confirm()
    full = (await client.get_block(slot, max_supported_transaction_version=0)).value
    assert [t.transaction.signatures[0] for t in full.transactions or []] == [sig, v0]
    assert full.block_height == chain.ledger.blocks[slot].height
    assert full.parent_slot == slot - 1
    assert full.previous_blockhash == chain.ledger.blocks[slot - 1].blockhash
    sigs = (
        await client.get_block(
            slot,
            max_supported_transaction_version=0,
            transaction_details=TransactionDetails.Signatures,
        )
    ).value
    assert sigs.signatures == [sig, v0]
    assert sigs.transactions is None
    accounts = (
        await rpc(
            http,
            "getBlock",
            [
                slot,
                {
                    "transactionDetails": "accounts",
                    "maxSupportedTransactionVersion": 0,
                    "commitment": "confirmed",
                },
            ],
        )
    )["result"]
    assert accounts["transactions"][0]["transaction"]["accountKeys"][0] == {
        "pubkey": str(WALLET.pubkey()),
        "signer": True,
        "source": "transaction",
        "writable": True,
    }
    none = (
        await rpc(
            http, "getBlock", [slot, {"transactionDetails": "none", "commitment": "confirmed"}]
        )
    )["result"]
    assert "transactions" not in none
    assert "signatures" not in none
    no_version = await rpc(http, "getBlock", [slot, {"commitment": "confirmed"}])
    assert no_version["error"]["code"] == -32015  # a v0 transaction in the block
    processed = await rpc(http, "getBlock", [slot, {"commitment": "processed"}])
    assert processed["error"]["message"] == "Method does not support commitment below `confirmed`"
    confirmed = await rpc(http, "getBlocks", [slot - 1, slot, {"commitment": "confirmed"}])
    assert confirmed["result"] == [slot - 1, slot]
    # solana-py sends no commitment: a node's default, finalized, and these are not rooted yet.
    assert (await client.get_blocks(slot - 1, slot)).value == []


# ---------------------------------------------------------------------------------- history
async def test_signatures_for_address_newest_first_with_before_until_limit(
    chain: LocalChain, client: AsyncClient
) -> None:
    to = Keypair().pubkey()
    sigs = []
    for i in range(5):
        sigs.append(land(chain, [pay(to, 10**6 + i), memo(f"order {i}")]))
        chain.advance(1)
    chain.confirm()
    found = (await client.get_signatures_for_address(to)).value
    assert [f.signature for f in found] == sigs[::-1]
    assert found[0].memo == "[7] order 4"
    assert found[0].slot == chain.ledger.records[sigs[4]].slot
    assert found[0].block_time == chain.ledger.blocks[found[0].slot].time
    page = (await client.get_signatures_for_address(to, before=sigs[3], limit=2)).value
    assert [f.signature for f in page] == [sigs[2], sigs[1]]
    tail = (await client.get_signatures_for_address(to, until=sigs[1])).value
    assert [f.signature for f in tail] == [sigs[4], sigs[3], sigs[2]]


def test_history_keeps_the_last_n_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    assert HISTORY_SLOTS == 10_000
    monkeypatch.setenv("LOCAL_CHAIN_HISTORY_SLOTS", "5")
    assert history_slots_setting() == 5
    chain = LocalChain(Ledger())
    seed.apply(chain.ledger)
    to = Keypair().pubkey()
    old = land(chain, [pay(to)])
    old_slot = chain.ledger.slot
    chain.advance(4)
    assert chain.ledger.status(old) is not None
    chain.advance(1)  # slot `old_slot` is now 6 slots back: forgotten
    assert chain.ledger.status(old) is None
    assert old_slot not in chain.ledger.blocks
    assert chain.ledger.signatures_for_address(to) == []
    assert chain.ledger.first_available_slot == chain.ledger.slot - 4
    reply = chain.ledger  # and the RPC says so
    from local.chain.rpc import Rpc

    answer = Rpc(reply).call(
        {"jsonrpc": "2.0", "id": 1, "method": "getBlock", "params": [old_slot]}
    )
    assert answer is not None
    assert answer["error"]["code"] == -32001
    assert "First available block" in answer["error"]["message"]
    monkeypatch.setenv("LOCAL_CHAIN_HISTORY_SLOTS", "zero")
    with pytest.raises(ValueError, match="LOCAL_CHAIN_HISTORY_SLOTS"):
        history_slots_setting()


# ---------------------------------------------------------------------------------- transactions
async def test_get_transaction_legacy_and_v0_in_every_encoding(
    chain: LocalChain, client: AsyncClient, http: httpx2.AsyncClient
) -> None:
    owner = Keypair().pubkey()
    legacy = land(chain, usdc_to(owner, 2_500_000))
    v0 = land(chain, [pay(owner)], v0=True)
    # Finalized: the raw calls below ask at a node's default commitment.
    chain.advance(FINALIZE_AFTER_BLOCKS)

    typed = (
        await client.get_transaction(legacy, "jsonParsed", max_supported_transaction_version=0)
    ).value
    assert typed is not None
    assert typed.slot == chain.ledger.records[legacy].slot
    meta = typed.transaction.meta
    assert meta is not None
    assert meta.fee == 5000
    assert meta.compute_units_consumed
    assert typed.block_time == chain.ledger.blocks[typed.slot].time

    parsed = (await rpc(http, "getTransaction", [str(legacy), {"encoding": "jsonParsed"}]))[
        "result"
    ]
    assert "version" not in parsed  # no maxSupportedTransactionVersion asked: legacy, unversioned
    create, move = parsed["transaction"]["message"]["instructions"]
    assert create["program"] == "spl-associated-token-account"
    assert create["parsed"]["type"] == "createIdempotent"
    assert create["parsed"]["info"]["wallet"] == str(owner)
    assert move["program"] == "spl-token"
    assert move["parsed"]["type"] == "transferChecked"
    assert move["parsed"]["info"]["tokenAmount"]["uiAmountString"] == "2.5"
    pre = {b["owner"]: b["uiTokenAmount"]["amount"] for b in parsed["meta"]["preTokenBalances"]}
    post = {b["owner"]: b["uiTokenAmount"]["amount"] for b in parsed["meta"]["postTokenBalances"]}
    assert pre == {str(WALLET.pubkey()): str(seed.WALLET_USDC)}  # theirs did not exist yet
    assert post[str(owner)] == "2500000"
    assert post[str(WALLET.pubkey())] == str(seed.WALLET_USDC - 2_500_000)
    balance = parsed["meta"]["postTokenBalances"][0]
    assert balance["programId"] == str(TOKEN_PROGRAM_ID)
    assert balance["mint"] == str(seed.USDC_MINT)
    assert "loadedAddresses" not in parsed["meta"]  # parsed keys carry their source instead
    # The associated-token program's CPIs (LiteSVM's metadata), parsed: it sizes, creates and
    # initializes the new account.
    [inner] = parsed["meta"]["innerInstructions"]
    assert inner["index"] == 0
    kinds = [ix["parsed"]["type"] for ix in inner["instructions"]]
    assert "createAccount" in kinds
    assert kinds[-1] == "initializeAccount3"
    assert {ix["stackHeight"] for ix in inner["instructions"]} == {2}
    assert parsed["meta"]["status"] == {"Ok": None}

    as_json = (await rpc(http, "getTransaction", [str(legacy), "json"]))["result"]
    assert as_json["meta"]["loadedAddresses"] == {"readonly": [], "writable": []}
    assert as_json["transaction"]["message"]["header"]["numRequiredSignatures"] == 1

    raw = (
        await rpc(
            http,
            "getTransaction",
            [str(v0), {"encoding": "base64", "maxSupportedTransactionVersion": 0}],
        )
    )["result"]
    assert raw["version"] == 0
    assert (
        VersionedTransaction.from_bytes(base64.b64decode(raw["transaction"][0])).signatures[0] == v0
    )
    refused = await rpc(http, "getTransaction", [str(v0), "json"])
    assert refused["error"]["code"] == -32015
    assert "maxSupportedTransactionVersion" in refused["error"]["message"]
    v0_json = (await rpc(http, "getTransaction", [str(v0), {"maxSupportedTransactionVersion": 0}]))[
        "result"
    ]
    assert v0_json["transaction"]["message"]["addressTableLookups"] == []
    processed = await rpc(http, "getTransaction", [str(v0), {"commitment": "processed"}])
    assert processed["error"]["code"] == -32602
    assert (await rpc(http, "getTransaction", [str(Signature.default())]))["result"] is None


async def test_airdrops_are_real_transactions(chain: LocalChain, client: AsyncClient) -> None:
    to = Keypair().pubkey()
    first = (await client.request_airdrop(to, 10**9)).value
    second = (await client.request_airdrop(to, 10**9)).value  # same slot, same amount
    assert first != second
    chain.confirm()
    assert (await client.get_balance(to)).value == 2 * 10**9
    landed = (await client.get_transaction(first, max_supported_transaction_version=0)).value
    assert landed is not None
    found = (await client.get_signatures_for_address(to)).value
    assert [f.signature for f in found] == [second, first]


# ---------------------------------------------------------------------------------- accounts
async def test_program_accounts_filters_slices_encodings(
    chain: LocalChain, client: AsyncClient, http: httpx2.AsyncClient
) -> None:
    owner = Keypair().pubkey()
    land(chain, usdc_to(owner, 7))
    chain.confirm()
    mine = MemcmpOpts(offset=32, bytes=str(owner))
    found = (
        await client.get_program_accounts(TOKEN_PROGRAM_ID, encoding="base64", filters=[165, mine])
    ).value
    assert [a.pubkey for a in found] == [get_associated_token_address(owner, seed.USDC_MINT)]
    sliced = (
        await client.get_program_accounts(
            TOKEN_PROGRAM_ID,
            encoding="base64",
            data_slice=DataSliceOpts(offset=64, length=8),
            filters=[165, mine],
        )
    ).value
    assert bytes(sliced[0].account.data) == (7).to_bytes(8, "little")
    parsed = (
        await client.get_program_accounts_json_parsed(TOKEN_PROGRAM_ID, filters=[165, mine])
    ).value
    holding: Any = parsed[0].account.data.parsed  # type: ignore[union-attr]
    assert holding["info"]["tokenAmount"]["amount"] == "7"

    with_context = (
        await rpc(
            http,
            "getProgramAccounts",
            [
                str(TOKEN_PROGRAM_ID),
                {
                    "withContext": True,
                    "commitment": "confirmed",
                    "encoding": "base64",
                    "filters": [
                        {"dataSize": 165},
                        {
                            "memcmp": {
                                "offset": 32,
                                "bytes": base64.b64encode(bytes(owner)).decode(),
                                "encoding": "base64",
                            }
                        },
                    ],
                },
            ],
        )
    )["result"]
    assert with_context["context"]["slot"] == chain.ledger.confirmed_slot
    assert len(with_context["value"]) == 1
    too_big = await rpc(
        http,
        "getProgramAccounts",
        [str(TOKEN_PROGRAM_ID), {"encoding": "base58", "filters": [{"dataSize": 165}]}],
    )
    assert too_big["error"]["code"] == -32600
    assert "base 58" in too_big["error"]["message"]
    too_many = await rpc(
        http, "getProgramAccounts", [str(TOKEN_PROGRAM_ID), {"filters": [{"dataSize": 1}] * 5}]
    )
    assert too_many["error"]["message"] == "Too many filters provided; max 4"


async def test_account_info_json_parsed_and_binary_encodings(
    chain: LocalChain, client: AsyncClient, http: httpx2.AsyncClient
) -> None:
    account = (await client.get_account_info_json_parsed(seed.WALLET_USDC_ATA)).value
    assert account is not None
    parsed: Any = account.data.parsed  # type: ignore[union-attr]
    assert parsed["type"] == "account"
    assert parsed["info"]["owner"] == str(WALLET.pubkey())
    assert parsed["info"]["tokenAmount"]["uiAmountString"] == "10000"
    assert parsed["info"]["isNative"] is False
    assert parsed["info"]["state"] == "initialized"
    mint = (await rpc(http, "getAccountInfo", [str(seed.USDC_MINT), {"encoding": "jsonParsed"}]))[
        "result"
    ]["value"]
    assert mint["data"]["program"] == "spl-token"
    assert mint["data"]["space"] == 82
    assert mint["data"]["parsed"]["info"]["supply"] == str(10**15)
    wallet = (
        await rpc(http, "getAccountInfo", [str(WALLET.pubkey()), {"encoding": "jsonParsed"}])
    )["result"]["value"]
    assert wallet["data"] == ["", "base64"]  # no parser for a wallet: base64, as a node falls back
    legacy = (await rpc(http, "getAccountInfo", [str(seed.USDC_MINT)]))["result"]["value"]
    assert isinstance(legacy["data"], str)  # the node's default `binary`: a bare base58 string
    zstd = (await rpc(http, "getAccountInfo", [str(seed.USDC_MINT), {"encoding": "base64+zstd"}]))[
        "result"
    ]["value"]
    assert zstd["data"][1] == "base64+zstd"
    stored = chain.ledger.get_account(seed.USDC_MINT)
    assert stored is not None
    assert base64.b64decode(zstd["data"][0]) == zstd_frame(bytes(stored.data))
    many = (
        await client.get_multiple_accounts_json_parsed([seed.USDC_MINT, Keypair().pubkey()])
    ).value
    assert many[0] is not None
    assert many[1] is None


def test_base64_zstd_frames_decode_with_zstd() -> None:
    assert shutil.which("zstd"), "no zstd command to decode with (Debian's zstd package)"
    for data in [b"", b"mint" * 10, bytes(range(256)) * 1200]:  # 0 B, 40 B, 300 KiB (3 blocks)
        out = subprocess.run(["zstd", "-d", "-c"], input=zstd_frame(data), capture_output=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout == data


async def test_token_largest_accounts_supply_and_token_supply(
    chain: LocalChain, client: AsyncClient
) -> None:
    for i, amount in enumerate([3, 9, 1]):
        land(chain, usdc_to(Keypair().pubkey(), amount + i * 0))
    chain.confirm()
    largest = (await client.get_token_largest_accounts(seed.USDC_MINT)).value
    amounts = [int(a.amount.amount) for a in largest]
    assert amounts == sorted(amounts, reverse=True)
    assert amounts[-3:] == [9, 3, 1]
    assert (await client.get_token_supply(seed.USDC_MINT)).value.amount == str(10**15)
    supply = (await client.get_supply()).value
    assert supply.total == supply.circulating + supply.non_circulating
    assert set(supply.non_circulating_accounts) == set(chain.ledger.faucets())
    assert supply.circulating >= seed.WALLET_SOL - 10**9


# ---------------------------------------------------------------------------------- fees
async def test_recent_prioritization_fees_per_slot_and_per_account(
    chain: LocalChain, client: AsyncClient
) -> None:
    hot, cold = Keypair().pubkey(), Keypair().pubkey()

    def priced(to: Pubkey, price: int) -> list[Instruction]:
        return [set_compute_unit_limit(10_000), set_compute_unit_price(price), pay(to)]

    chain.advance(1)  # past the genesis block, where the seed's transactions created the pools
    land(chain, priced(hot, 5_000))
    land(chain, priced(cold, 100))
    busy = chain.ledger.slot
    chain.advance(1)
    land(chain, priced(hot, 70))
    quiet = chain.ledger.slot
    chain.advance(1)

    def by_slot(fees: Sequence[Any]) -> dict[int, int]:
        return {f.slot: f.prioritization_fee for f in fees}

    everything = by_slot((await client.get_recent_prioritization_fees()).value)
    assert everything[busy] == 100
    assert everything[quiet] == 70
    assert chain.ledger.slot not in everything  # the open slot is not a block yet
    hot_fees = by_slot((await client.get_recent_prioritization_fees([hot])).value)
    assert hot_fees[busy] == 5_000
    assert hot_fees[quiet] == 70
    assert by_slot((await client.get_recent_prioritization_fees([cold])).value)[busy] == 100

    chain.faults.update(priority_fee_level=250_000)  # congestion
    congested = by_slot((await client.get_recent_prioritization_fees([hot])).value)
    assert congested[busy] == 250_000
    assert congested[quiet] == 250_000
    chain.faults.clear()
    assert by_slot((await client.get_recent_prioritization_fees([hot])).value)[quiet] == 70

    chain.advance(PRIORITY_FEE_SLOTS + 5)
    assert len((await client.get_recent_prioritization_fees()).value) == PRIORITY_FEE_SLOTS


async def test_prioritization_fees_refuse_more_than_128_accounts(
    http: httpx2.AsyncClient,
) -> None:
    keys = [str(Keypair().pubkey()) for _ in range(129)]
    reply = await rpc(http, "getRecentPrioritizationFees", [keys])
    assert reply["error"] == {"code": -32602, "message": "Too many inputs provided; max 128"}


# ---------------------------------------------------------------------------------- simulate
async def test_simulate_units_sig_verify_and_replace_recent_blockhash() -> None:
    ledger = Ledger()
    chain = LocalChain(ledger)
    seed.apply(ledger)
    client = client_for(chain)
    transport = httpx2.ASGITransport(app=chain.app)
    http = httpx2.AsyncClient(transport=transport, base_url="http://chain")
    try:
        # A real CPMM swap: the units are what the program used, and the same when it lands.
        pool = seed.POOLS["raydium_cpmm"]
        tx = market.swap_transaction(ledger, seed.MARKET_MAKER_KEYPAIR, pool, seed.USDC_MINT, 10**6)
        sim = (await client.simulate_transaction(tx)).value
        assert sim.err is None
        assert sim.units_consumed is not None
        assert 10_000 < sim.units_consumed < 100_000
        assert "Program log: Instruction: SwapBaseInput" in (sim.logs or [])
        sent = (await client.send_raw_transaction(bytes(tx))).value
        chain.confirm()
        landed = (await client.get_transaction(sent, max_supported_transaction_version=0)).value
        assert landed is not None
        assert landed.transaction.meta is not None
        assert landed.transaction.meta.compute_units_consumed == sim.units_consumed

        native = signed(chain, [pay(Keypair().pubkey())])
        units = (await client.simulate_transaction(native)).value.units_consumed
        assert units == 150  # LiteSVM's own figure for a System transfer

        # An unsigned transaction simulates with sigVerify off (the default); with it on, a
        # node refuses it outright: -32003, no simulation.
        unsigned = VersionedTransaction.populate(native.message, [Signature.default()])
        assert (await client.simulate_transaction(unsigned)).value.err is None
        refused = await rpc(
            http,
            "simulateTransaction",
            [base64.b64encode(bytes(unsigned)).decode(), {"encoding": "base64", "sigVerify": True}],
        )
        assert refused["error"] == {
            "code": -32003,
            "message": "Transaction signature verification failure",
        }

        # An expired blockhash: BlockhashNotFound, unless it is replaced.
        old = ledger.latest_blockhash()[0]
        chain.advance(BLOCKHASH_VALID_BLOCKS + 1)
        stale = signed(chain, [pay(Keypair().pubkey())], blockhash=old)
        assert (await client.simulate_transaction(stale)).value.err is not None
        replaced = (await client.simulate_transaction(stale, replace_recent_blockhash=True)).value
        assert replaced.err is None
        assert replaced.replacement_blockhash is not None
        assert replaced.replacement_blockhash.blockhash == ledger.latest_blockhash()[0]
        both = await rpc(
            http,
            "simulateTransaction",
            [
                base64.b64encode(bytes(stale)).decode(),
                {"encoding": "base64", "sigVerify": True, "replaceRecentBlockhash": True},
            ],
        )
        assert both["error"]["message"] == "sigVerify may not be used with replaceRecentBlockhash"

        parsed_accounts = await rpc(
            http,
            "simulateTransaction",
            [
                base64.b64encode(bytes(signed(chain, [pay(Keypair().pubkey())]))).decode(),
                {
                    "encoding": "base64",
                    "accounts": {
                        "addresses": [str(seed.WALLET_USDC_ATA)],
                        "encoding": "jsonParsed",
                    },
                    "innerInstructions": True,
                },
            ],
        )
        value = parsed_accounts["result"]["value"]
        assert value["accounts"][0]["data"]["parsed"]["type"] == "account"
        assert value["innerInstructions"] == []
    finally:
        await client.close()
        await http.aclose()


# ---------------------------------------------------------------------------------- browsers
async def test_cors_for_browser_pages_including_private_network_preflight(
    http: httpx2.AsyncClient,
) -> None:
    preflight = await http.options(
        "/",
        headers={
            "Origin": "https://explorer.solana.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, solana-client",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "content-type, solana-client"
    assert preflight.headers["access-control-allow-private-network"] == "true"
    plain = await http.options(
        "/",
        headers={"Origin": "https://x.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-private-network" not in plain.headers
    assert plain.headers["access-control-allow-headers"] == "content-type"
    answer = await http.post(
        "/",
        json={"jsonrpc": "2.0", "id": 1, "method": "getSlot"},
        headers={"Origin": "https://explorer.solana.com"},
    )
    assert answer.headers["access-control-allow-origin"] == "*"
    assert (await rpc(http, "getConfirmedBlock"))["error"]["code"] == -32601  # removed in 2.x


def test_account_data_is_a_real_token_account() -> None:
    """Guard for the parsers' fixed offsets: the seed's packing is the SPL layout."""
    data = seed.pack_token_account(seed.USDC_MINT, WALLET.pubkey(), 5)
    account = Account(2_039_280, data, TOKEN_PROGRAM_ID, False, 0)
    assert len(account.data) == 165
    assert bytes(account.data)[108] == 1
