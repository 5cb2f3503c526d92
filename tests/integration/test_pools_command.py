"""`python -m local.pools create` against a served local chain (real sockets, its own process),
watched by solana-py's WebSocket client with `logsSubscribe` mentioning each program, the way a
pool sniper listens for new pools."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from solana.rpc.commitment import Confirmed
from solana.rpc.websocket_api import SolanaWsClient
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionLogsFilterMentions
from solders.rpc.responses import LogsNotification
from solders.signature import Signature

from execution.venues import VENUES
from local.chain import USDC_MINT, LocalChain, Served, serve
from local.pools import CPMM_PROGRAM, DAMM_PROGRAM

ROOT = Path(__file__).resolve().parents[2]
COMMAND_SECONDS = 120


@pytest.fixture
def served() -> Iterator[tuple[LocalChain, Served]]:
    chain = LocalChain.seeded()
    served = serve(chain, port=0)
    chain.start_ticker(0.05)
    yield chain, served
    served.stop()
    chain.stop()


@pytest.fixture
async def ws(served: tuple[LocalChain, Served]) -> AsyncIterator[SolanaWsClient]:
    async with SolanaWsClient(served[1].ws_url) as client:
        yield client


async def run(*args: str) -> tuple[int, str, str]:
    """The command in its own process, as a user runs it from the worktree."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "local.pools",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), COMMAND_SECONDS)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def notification(ws: SolanaWsClient) -> LogsNotification:
    note = await asyncio.wait_for(ws.recv(), 10)
    assert isinstance(note, LogsNotification)
    return note


async def test_the_command_creates_pools_that_a_websocket_client_sees(
    served: tuple[LocalChain, Served], ws: SolanaWsClient
) -> None:
    chain, endpoint = served
    chain.confirm()  # the seed's own pool creations (genesis block) are confirmed before this
    mentions = {}
    for program in (CPMM_PROGRAM, DAMM_PROGRAM):
        sub = await ws.logs_subscribe(
            filter_=RpcTransactionLogsFilterMentions(program), commitment=Confirmed
        )
        mentions[sub.subscription_id] = program

    # Raydium CPMM, USDC quote, the human output.
    code, out, err = await run(
        "create", "--venue", "raydium_cpmm", "--quote", "USDC", "--price", "2.5",
        "--liquidity", "100", "--rpc", endpoint.rpc_url,
    )  # fmt: skip
    assert code == 0, err
    printed = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.splitlines())}
    assert list(printed) == ["venue", "mint", "quote", "pool", "signature", "slot"]
    note = await notification(ws)
    assert mentions[note.subscription] == CPMM_PROGRAM
    assert str(note.result.value.signature) == printed["signature"]
    assert note.result.value.err is None
    assert "Program log: Instruction: Initialize" in note.result.value.logs
    record = chain.ledger.records[Signature.from_string(printed["signature"])]
    assert record.slot == int(printed["slot"])
    mint = Pubkey.from_string(printed["mint"].split()[0])
    pool = Pubkey.from_string(printed["pool"])
    account = chain.ledger.get_account(pool)
    assert account is not None
    state = VENUES["raydium_cpmm"].decode_pool(bytes(account.data), account.owner, pool)
    assert mint in VENUES["raydium_cpmm"].pool_mints(state)
    assert printed["quote"] == str(USDC_MINT)

    # Meteora DAMM v2, SOL quote, opening in a minute, JSON output.
    code, out, err = await run(
        "create", "--venue", "meteora_damm_v2", "--quote", "SOL", "--price", "0.05",
        "--opens-in", "60", "--rpc", endpoint.rpc_url, "--json",
    )  # fmt: skip
    assert code == 0, err
    created = json.loads(out)
    note = await notification(ws)
    assert mentions[note.subscription] == DAMM_PROGRAM
    assert str(note.result.value.signature) == created["signature"]
    assert "Program log: Instruction: InitializePool" in note.result.value.logs
    pool = Pubkey.from_string(created["pool"])
    account = chain.ledger.get_account(pool)
    assert account is not None
    opens_at = int.from_bytes(bytes(account.data)[472:480], "little")  # activation_point
    landed_at = chain.ledger.slot_time(created["slot"])
    assert 55 <= opens_at - landed_at <= 60
    assert created["accounts"]["token_b_mint"] == "So11111111111111111111111111111111111111112"
    assert created["accounts"]["pool"] == created["pool"]


async def test_bad_arguments_and_refusals_are_reported_and_change_nothing(
    served: tuple[LocalChain, Served],
) -> None:
    chain, endpoint = served
    landed = len(chain.ledger.log)
    code, _, err = await run("create", "--venue", "raydium_cpmm", "--price", "0")
    assert code == 2
    assert "--price: must be greater than 0" in err
    code, _, err = await run("create", "--venue", "orca", "--rpc", endpoint.rpc_url)
    assert code == 2
    assert "invalid choice: 'orca'" in err
    assert len(chain.ledger.log) == landed
    # A config that does not exist: the token is minted, the pool is refused by the program.
    code, _, err = await run(
        "create", "--venue", "meteora_damm_v2", "--config-index", "9", "--rpc", endpoint.rpc_url
    )
    assert code == 1
    # No account there: owned by the System program, not by DAMM v2 (3007).
    assert "custom program error: 0xbbf" in err
    assert "AnchorError caused by account: config" in err
    assert "AccountOwnedByWrongProgram" in err
    code, _, err = await run("create", "--venue", "raydium_cpmm", "--rpc", "http://127.0.0.1:1")
    assert code == 1
    assert "cannot reach the chain at http://127.0.0.1:1" in err
