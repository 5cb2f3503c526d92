"""The local chain's PubSub WebSocket, driven through solana-py's WebSocket client (and raw frames
where solders cannot parse a real node's message), on ephemeral ports; blocks advance only when
a test says so, so every commitment level is observed at the block where it is reached."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
import websockets
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.models import MemcmpOpts, TxOpts
from solana.rpc.websocket_api import SolanaWsClient, Subscription
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionLogsFilter, RpcTransactionLogsFilterMentions
from solders.rpc.responses import (
    AccountNotification,
    LogsNotification,
    ProgramNotification,
    RootNotification,
    SignatureNotification,
    SlotNotification,
)
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    transfer_checked,
)
from spl.token.models import TransferCheckedParams

from local.chain import LocalChain, Served, seed, serve
from local.chain.ledger import FINALIZE_AFTER_BLOCKS

WALLET = seed.WALLET_KEYPAIR
RECV_SECONDS = 5


@pytest.fixture
def served() -> Iterator[tuple[LocalChain, Served]]:
    chain = LocalChain.seeded()
    served = serve(chain, port=0)
    yield chain, served
    served.stop()
    chain.stop()


@pytest.fixture
async def ws(served: tuple[LocalChain, Served]) -> AsyncIterator[SolanaWsClient]:
    async with SolanaWsClient(served[1].ws_url) as client:
        yield client


@pytest.fixture
async def http(served: tuple[LocalChain, Served]) -> AsyncIterator[AsyncClient]:
    client = AsyncClient(served[1].rpc_url)
    yield client
    await client.close()


async def send(http: AsyncClient, instructions: Sequence[Instruction]) -> Signature:
    blockhash = (await http.get_latest_blockhash()).value.blockhash
    message = Message.new_with_blockhash(list(instructions), WALLET.pubkey(), blockhash)
    tx = VersionedTransaction(message, [WALLET])
    return (await http.send_raw_transaction(bytes(tx))).value


def pay(to: Pubkey, lamports: int) -> Instruction:
    return transfer(TransferParams(from_pubkey=WALLET.pubkey(), to_pubkey=to, lamports=lamports))


async def recv(ws: SolanaWsClient, seconds: float = RECV_SECONDS) -> Any:
    return await asyncio.wait_for(ws.recv(), seconds)


async def nothing_more(ws: SolanaWsClient, seconds: float = 0.3) -> None:
    try:
        extra = await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return
    pytest.fail(f"unexpected notification {extra}")


async def test_account_subscribe_notifies_at_each_commitment(
    served: tuple[LocalChain, Served], ws: SolanaWsClient, http: AsyncClient
) -> None:
    chain, _ = served
    to = Keypair().pubkey()
    processed = await ws.account_subscribe(pubkey=to, commitment=Processed, encoding="base64")
    confirmed = await ws.account_subscribe(pubkey=to, commitment=Confirmed, encoding="base64")

    await send(http, [pay(to, 10**9)])
    first = await recv(ws)
    assert isinstance(first, AccountNotification)
    assert first.subscription == processed.subscription_id
    assert first.result.value.lamports == 10**9
    assert first.result.context.slot == chain.ledger.slot
    await nothing_more(ws)  # confirmed waits for its block and one more

    chain.advance(1)
    await nothing_more(ws)
    chain.advance(1)
    second = await recv(ws)
    assert isinstance(second, AccountNotification)
    assert second.subscription == confirmed.subscription_id
    assert second.result.value.lamports == 10**9
    assert second.result.context.slot == chain.ledger.slot - 2  # the slot it changed in

    await ws.unsubscribe(processed)
    await ws.unsubscribe(confirmed)
    await send(http, [pay(to, 1)])
    chain.advance(1)
    await nothing_more(ws)


async def test_program_subscribe_with_memcmp_and_data_size_filters(
    served: tuple[LocalChain, Served], ws: SolanaWsClient, http: AsyncClient
) -> None:
    owner = Keypair().pubkey()
    their_ata = get_associated_token_address(owner, seed.USDC_MINT)
    # Token accounts (165 bytes) whose owner field (offset 32) is `owner`: the wallet's own
    # USDC account changes in the same transaction and must not be reported.
    sub = await ws.program_subscribe(
        program_id=TOKEN_PROGRAM_ID,
        commitment=Processed,
        encoding="base64",
        filters=[165, MemcmpOpts(offset=32, bytes=str(owner))],
    )
    await send(
        http,
        [
            create_idempotent_associated_token_account(WALLET.pubkey(), owner, seed.USDC_MINT),
            transfer_checked(
                TransferCheckedParams(
                    program_id=TOKEN_PROGRAM_ID,
                    source=seed.WALLET_USDC_ATA,
                    mint=seed.USDC_MINT,
                    dest=their_ata,
                    owner=WALLET.pubkey(),
                    amount=5 * 10**6,
                    decimals=6,
                )
            ),
        ],
    )
    note = await recv(ws)
    assert isinstance(note, ProgramNotification)
    assert note.subscription == sub.subscription_id
    assert note.result.value.pubkey == their_ata
    data = bytes(note.result.value.account.data)
    assert len(data) == 165
    assert data[32:64] == bytes(owner)
    assert int.from_bytes(data[64:72], "little") == 5 * 10**6
    await nothing_more(ws)
    await ws.unsubscribe(sub)


async def test_logs_subscribe_all_and_mentions(
    served: tuple[LocalChain, Served], ws: SolanaWsClient, http: AsyncClient
) -> None:
    watched, other = Keypair().pubkey(), Keypair().pubkey()
    everything = await ws.logs_subscribe(filter_=RpcTransactionLogsFilter.All, commitment=Processed)
    mentions = await ws.logs_subscribe(
        filter_=RpcTransactionLogsFilterMentions(watched), commitment=Processed
    )
    with_votes = await ws.logs_subscribe(
        filter_=RpcTransactionLogsFilter.AllWithVotes, commitment=Processed
    )
    first = await send(http, [pay(other, 10**6)])
    second = await send(http, [pay(watched, 10**6)])
    seen: dict[int, list[str]] = {}
    for _ in range(5):  # all: 2, allWithVotes: 2, mentions: 1
        note = await recv(ws)
        assert isinstance(note, LogsNotification)
        assert note.result.value.err is None
        assert note.result.value.logs[0].startswith("Program 11111111111111111111111111111111")
        seen.setdefault(note.subscription, []).append(str(note.result.value.signature))
    await nothing_more(ws)
    assert seen[everything.subscription_id] == [str(first), str(second)]
    assert seen[with_votes.subscription_id] == [str(first), str(second)]
    assert seen[mentions.subscription_id] == [str(second)]


async def test_signature_subscribe_fires_once_when_the_level_is_reached(
    served: tuple[LocalChain, Served], ws: SolanaWsClient, http: AsyncClient
) -> None:
    chain, _ = served
    blockhash = (await http.get_latest_blockhash()).value.blockhash
    tx = VersionedTransaction(
        Message.new_with_blockhash([pay(Keypair().pubkey(), 10**6)], WALLET.pubkey(), blockhash),
        [WALLET],
    )
    sig = tx.signatures[0]
    confirmed = await ws.signature_subscribe(signature=sig, commitment=Confirmed)
    finalized = await ws.signature_subscribe(signature=sig)  # a node's default: finalized
    await http.send_raw_transaction(bytes(tx))
    await nothing_more(ws)  # processed is not confirmed

    chain.advance(1)
    await nothing_more(ws)  # nor is the newest produced block: confirmed trails it by one
    chain.advance(1)
    note = await recv(ws)
    assert isinstance(note, SignatureNotification)
    assert note.subscription == confirmed.subscription_id
    assert note.result.value.err is None
    assert note.result.context.slot == chain.ledger.slot - 2

    chain.advance(FINALIZE_AFTER_BLOCKS - 3)
    await nothing_more(ws)
    chain.advance(1)
    note = await recv(ws)
    assert isinstance(note, SignatureNotification)
    assert note.subscription == finalized.subscription_id
    chain.advance(3)
    await nothing_more(ws)  # each fired once and ended

    # Subscribing to a signature already at the level answers at once.
    again = await ws.signature_subscribe(signature=sig, commitment=Confirmed)
    note = await recv(ws)
    assert isinstance(note, SignatureNotification)
    assert note.subscription == again.subscription_id


async def test_signature_subscribe_reports_a_failed_transaction(
    served: tuple[LocalChain, Served], http: AsyncClient
) -> None:
    """With the node's error form. Raw frames: solders 0.29 cannot parse a signatureNotification
    whose err is an InstructionError (it parses the same err in a logsNotification)."""
    chain, s = served
    broke = Keypair()
    await http.request_airdrop(broke.pubkey(), 10**7)
    blockhash = (await http.get_latest_blockhash()).value.blockhash
    # More than it holds: lands (the fee is paid) with an instruction error.
    overdraw = transfer(
        TransferParams(from_pubkey=broke.pubkey(), to_pubkey=WALLET.pubkey(), lamports=10**9)
    )
    tx = VersionedTransaction(
        Message.new_with_blockhash([overdraw], broke.pubkey(), blockhash), [broke]
    )
    sig = str(tx.signatures[0])
    async with websockets.connect(s.ws_url) as raw:
        request = {"commitment": "processed"}
        await raw.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "signatureSubscribe",
                    "params": [sig, request],
                }
            )
        )
        assert "result" in json.loads(await raw.recv())
        await http.send_raw_transaction(bytes(tx), opts=TxOpts(skip_preflight=True))
        note = json.loads(await raw.recv())
    assert note["params"]["result"]["value"] == {"err": {"InstructionError": [0, {"Custom": 1}]}}
    assert chain.ledger.status(tx.signatures[0]) is not None


async def test_received_notification_and_raw_frames(served: tuple[LocalChain, Served]) -> None:
    """`enableReceivedNotification` (which solders cannot parse), a batch, a bad frame, an
    unknown method and a JSON-RPC notification (web3.js's ping) - with raw frames."""
    chain, s = served
    tx = VersionedTransaction(
        Message.new_with_blockhash(
            [pay(Keypair().pubkey(), 10**6)], WALLET.pubkey(), chain.ledger.latest_blockhash()[0]
        ),
        [WALLET],
    )
    sig = str(tx.signatures[0])
    async with websockets.connect(s.ws_url) as raw:
        await raw.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 7,
                    "method": "signatureSubscribe",
                    "params": [
                        sig,
                        {"commitment": "confirmed", "enableReceivedNotification": True},
                    ],
                }
            )
        )
        reply = json.loads(await raw.recv())
        assert reply["id"] == 7
        assert isinstance(reply["result"], int)
        chain.ledger.send(tx)
        received = json.loads(await raw.recv())
        assert received["method"] == "signatureNotification"
        assert received["params"]["result"]["value"] == "receivedSignature"
        chain.confirm()
        done = json.loads(await raw.recv())
        assert done["params"]["result"]["value"] == {"err": None}

        await raw.send(json.dumps({"jsonrpc": "2.0", "method": "ping"}))  # no id: no reply
        await raw.send("{not json")
        assert json.loads(await raw.recv())["error"]["code"] == -32700
        await raw.send(json.dumps({"jsonrpc": "2.0", "id": 8, "method": "blockSubscribe"}))
        assert json.loads(await raw.recv())["error"]["code"] == -32601
        await raw.send(
            json.dumps(
                [
                    {"jsonrpc": "2.0", "id": 9, "method": "slotSubscribe"},
                    {"jsonrpc": "2.0", "id": 10, "method": "slotUnsubscribe", "params": [12345]},
                ]
            )
        )
        batch = json.loads(await raw.recv())
        assert isinstance(batch[0]["result"], int)
        assert batch[1]["error"] == {"code": -32602, "message": "Invalid subscription id."}


async def test_slot_and_root_subscribe(
    served: tuple[LocalChain, Served], ws: SolanaWsClient
) -> None:
    chain, _ = served
    slots = await ws.slot_subscribe()
    roots = await ws.root_subscribe()
    chain.advance(1)
    note = await recv(ws)
    assert isinstance(note, SlotNotification)
    assert note.subscription == slots.subscription_id
    info = note.result
    assert (info.slot, info.parent, info.root) == (chain.ledger.slot, chain.ledger.slot - 1, 0)
    await ws.unsubscribe(slots)
    # The first root: the block at the genesis height becomes 32 deep.
    chain.advance(FINALIZE_AFTER_BLOCKS - 1)
    note = await recv(ws)
    assert isinstance(note, RootNotification)
    assert note.subscription == roots.subscription_id
    assert note.result == chain.ledger.root_slot == 1
    await ws.unsubscribe(roots)
    chain.advance(2)
    await nothing_more(ws)


async def test_every_subscription_unsubscribes(
    served: tuple[LocalChain, Served], ws: SolanaWsClient
) -> None:
    chain, _ = served
    key = Keypair().pubkey()
    subs: list[Subscription] = [
        await ws.account_subscribe(pubkey=key),
        await ws.program_subscribe(program_id=TOKEN_PROGRAM_ID),
        await ws.logs_subscribe(),
        await ws.signature_subscribe(signature=Signature.default()),
        await ws.slot_subscribe(),
        await ws.root_subscribe(),
    ]
    hub_subscriptions = chain.ledger.listeners[0].subscriptions  # type: ignore[attr-defined]
    assert len(hub_subscriptions) == len(subs)
    for sub in subs:
        await ws.unsubscribe(sub)  # raises unless the server answers true
    assert hub_subscriptions == {}


async def test_pubsub_also_answers_on_the_rpc_port(served: tuple[LocalChain, Served]) -> None:
    chain, s = served
    rpc_port_ws = s.rpc_url.replace("http://", "ws://")
    assert int(s.ws_url.rsplit(":", 1)[1]) == int(rpc_port_ws.rsplit(":", 1)[1]) + 1
    async with SolanaWsClient(rpc_port_ws) as ws:
        await ws.slot_subscribe()
        chain.advance(1)
        assert isinstance(await recv(ws), SlotNotification)


async def test_closing_the_socket_ends_its_subscriptions(
    served: tuple[LocalChain, Served],
) -> None:
    chain, s = served
    async with SolanaWsClient(s.ws_url) as ws:
        await ws.slot_subscribe()
    hub = chain.ledger.listeners[0]
    for _ in range(100):
        if not hub.subscriptions:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.02)
    assert hub.subscriptions == {}  # type: ignore[attr-defined]
    chain.advance(1)  # nobody left to notify: nothing fails
