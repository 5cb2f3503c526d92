"""The local Solana chain, driven through solana-py's real AsyncClient (served in-process)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from fractions import Fraction

import httpx2
import pytest
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Finalized, Processed
from solana.rpc.core import RPCException
from solana.rpc.models import TxOpts
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionConfirmationStatus
from spl.token.instructions import get_associated_token_address

from execution.chain import Chain, classify_send_error
from local.chain import (
    POOLS,
    USDC_MINT,
    WALLET,
    LocalChain,
    client_for,
    local_env,
    market,
    seed,
)
from local.chain.admin import admin_headers
from local.chain.binaries import find_all, parse_programdata, programdata_address
from local.chain.ledger import (
    BLOCKHASH_VALID_BLOCKS,
    FEE_PER_SIGNATURE,
    FINALIZE_AFTER_BLOCKS,
    TOKEN_PROGRAM_ID,
    WSOL_MINT,
)

WALLET_KP = seed.WALLET_KEYPAIR
SKIP = TxOpts(skip_preflight=True)


@pytest.fixture
def chain() -> LocalChain:
    return LocalChain.seeded()


@pytest.fixture
async def client(chain: LocalChain) -> AsyncIterator[AsyncClient]:
    client = client_for(chain)
    yield client
    await client.close()


def sign(ixs: Sequence[Instruction], blockhash: Hash, payer: Keypair = WALLET_KP) -> bytes:
    message = MessageV0.try_compile(payer.pubkey(), list(ixs), [], blockhash)
    return bytes(VersionedTransaction(message, [payer]))


def pay(to: Pubkey, lamports: int) -> Instruction:
    return transfer(TransferParams(from_pubkey=WALLET, to_pubkey=to, lamports=lamports))


async def blockhash(client: AsyncClient) -> Hash:
    return (await client.get_latest_blockhash()).value.blockhash


async def test_sol_transfer_lands_and_moves_balances(
    chain: LocalChain, client: AsyncClient
) -> None:
    to = Keypair().pubkey()
    before = (await client.get_balance(WALLET)).value
    assert before == seed.WALLET_SOL

    sig = (await client.send_raw_transaction(sign([pay(to, 10**9)], await blockhash(client)))).value

    status = (await client.get_signature_statuses([sig])).value[0]
    assert status is not None
    assert status.err is None
    # Reads see the state as of their commitment: processed at once (the newest state, as its
    # status says), confirmed once its block is produced and one more, finalized 32 later.
    assert (await client.get_balance(to, Processed)).value == 10**9
    assert (await client.get_balance(to)).value == 0  # confirmed
    chain.advance(1)
    assert (await client.get_balance(to)).value == 0  # confirmed: one block behind
    assert (await client.get_transaction(sig, max_supported_transaction_version=0)).value is None
    chain.advance(1)
    assert (await client.get_balance(to)).value == 10**9
    assert (await client.get_balance(WALLET)).value == before - 10**9 - FEE_PER_SIGNATURE
    assert (await client.get_balance(to, Finalized)).value == 0
    tx = (await client.get_transaction(sig, max_supported_transaction_version=0)).value
    assert tx is not None
    assert tx.transaction.meta is not None
    assert tx.transaction.meta.fee == FEE_PER_SIGNATURE
    accounts = (await client.get_multiple_accounts([to, Keypair().pubkey()])).value
    assert accounts[0] is not None
    assert accounts[0].lamports == 10**9
    assert accounts[1] is None


async def test_seeded_wallet_holds_usdc(chain: LocalChain, client: AsyncClient) -> None:
    balance = (await client.get_token_account_balance(seed.WALLET_USDC_ATA)).value
    assert balance.amount == str(seed.WALLET_USDC)
    assert balance.decimals == 6
    assert chain.token_balance(WALLET, USDC_MINT) == seed.WALLET_USDC
    env = local_env("http://x")
    assert env["SOLANA_CLUSTER"] == "custom"
    assert Keypair.from_json(env["WALLET_PRIVATE_KEY"]).pubkey() == WALLET


async def test_latest_blockhash_is_valid_for_150_blocks(
    chain: LocalChain, client: AsyncClient
) -> None:
    first = (await client.get_latest_blockhash()).value
    height = (await client.get_block_height()).value
    assert first.last_valid_block_height == height + BLOCKHASH_VALID_BLOCKS

    chain.advance(2)  # the client reads at `confirmed`, a block behind the newest
    second = (await client.get_latest_blockhash()).value
    assert second.blockhash != first.blockhash
    assert second.last_valid_block_height == height + 1 + BLOCKHASH_VALID_BLOCKS
    assert (await client.get_slot()).value == (await client.get_block_height()).value


async def test_status_moves_processed_confirmed_finalized(
    chain: LocalChain, client: AsyncClient
) -> None:
    raw = sign([pay(Keypair().pubkey(), 1_000_000)], await blockhash(client))
    sig = (await client.send_raw_transaction(raw)).value

    async def level() -> TransactionConfirmationStatus | None:
        status = (await client.get_signature_statuses([sig], True)).value[0]
        assert status is not None
        return status.confirmation_status

    assert await level() == TransactionConfirmationStatus.Processed
    chain.advance(1)  # its block is produced: still processed (confirmed trails by a block)
    assert await level() == TransactionConfirmationStatus.Processed
    chain.advance(1)
    assert await level() == TransactionConfirmationStatus.Confirmed
    chain.advance(FINALIZE_AFTER_BLOCKS - 3)
    assert await level() == TransactionConfirmationStatus.Confirmed
    chain.advance(1)
    assert await level() == TransactionConfirmationStatus.Finalized


async def test_engine_chain_reads_statuses(chain: LocalChain, client: AsyncClient) -> None:
    raw = sign([pay(Keypair().pubkey(), 1_000_000)], await blockhash(client))
    sig = (await client.send_raw_transaction(raw)).value
    chain.confirm()
    landed = await Chain("http://local-chain", client).status(sig)
    assert landed is not None
    assert landed.confirmed
    assert landed.err is None


async def test_expired_blockhash_is_rejected(chain: LocalChain, client: AsyncClient) -> None:
    old = await blockhash(client)
    chain.advance(BLOCKHASH_VALID_BLOCKS + 1)
    with pytest.raises(RPCException) as raised:
        await client.send_raw_transaction(sign([pay(Keypair().pubkey(), 10**6)], old))
    assert "BlockhashNotFound" in raised.value.args[0].to_json()
    assert classify_send_error(raised.value).code == "blockhash_expired"


async def test_blockhash_still_lands_at_its_last_valid_height(
    chain: LocalChain, client: AsyncClient
) -> None:
    latest = (await client.get_latest_blockhash()).value
    old = latest.blockhash
    # Transactions land in the open block: advance until it is the blockhash's last valid one.
    chain.advance(latest.last_valid_block_height - chain.height)
    assert chain.height == latest.last_valid_block_height
    sig = (await client.send_raw_transaction(sign([pay(Keypair().pubkey(), 10**6)], old))).value
    assert (await client.get_signature_statuses([sig])).value[0] is not None


async def test_duplicate_send_is_already_processed(client: AsyncClient) -> None:
    raw = sign([pay(Keypair().pubkey(), 1_000_000)], await blockhash(client))
    await client.send_raw_transaction(raw)
    before = (await client.get_balance(WALLET)).value
    with pytest.raises(RPCException) as raised:
        await client.send_raw_transaction(raw)
    assert "AlreadyProcessed" in raised.value.args[0].to_json()
    assert classify_send_error(raised.value).code == "already_processed"
    assert (await client.get_balance(WALLET)).value == before  # not executed twice


async def test_rate_limit_then_recovers(chain: LocalChain, client: AsyncClient) -> None:
    chain.faults.update(rate_limit_next=1)
    with pytest.raises(SolanaRpcException) as raised:
        await client.get_block_height()
    cause = raised.value.__cause__
    assert isinstance(cause, httpx2.HTTPStatusError)
    assert cause.response.status_code == 429
    assert (await client.get_block_height()).value >= 0


async def test_fault_rates_are_random_but_repeat_with_the_seed(chain: LocalChain) -> None:
    async def pattern() -> list[bool]:
        chain.faults.update(seed=7, rate_limit_rate=0.3)
        client = client_for(chain)
        limited = []
        for _ in range(40):
            try:
                await client.get_block_height()
                limited.append(False)
            except SolanaRpcException:
                limited.append(True)
        await client.close()
        return limited

    first = await pattern()
    assert 4 <= sum(first) <= 20  # about 30 % of 40 requests, counting solana-py's own retry
    assert await pattern() == first


async def test_expire_rate_drops_the_send_and_moves_past_its_blockhash(
    chain: LocalChain, client: AsyncClient
) -> None:
    recent = await blockhash(client)
    last_valid = (await client.get_latest_blockhash()).value.last_valid_block_height
    chain.faults.update(expire_rate=1.0)
    sig = (await client.send_raw_transaction(sign([pay(Keypair().pubkey(), 10**6)], recent))).value
    chain.faults.clear()
    assert chain.height > last_valid
    assert (await client.get_signature_statuses([sig])).value[0] is None


async def test_timeout_fault_raises_with_a_short_client_timeout(chain: LocalChain) -> None:
    # solana-py retries a transport error once by itself: two hangs make one failed call.
    chain.faults.update(timeout_next=2, hang_seconds=2)
    client = client_for(chain, timeout=0.2)
    try:
        with pytest.raises(SolanaRpcException) as raised:
            await client.get_block_height()
        assert isinstance(raised.value.__cause__, httpx2.TimeoutException)
        assert (await client.get_block_height()).value >= 0
    finally:
        await client.close()


async def test_dropped_send_returns_signature_but_never_lands(
    chain: LocalChain, client: AsyncClient
) -> None:
    chain.faults.update(drop_next_sends=1)
    to = Keypair().pubkey()
    sig = (await client.send_raw_transaction(sign([pay(to, 10**6)], await blockhash(client)))).value
    chain.advance(5)
    assert (await client.get_signature_statuses([sig], True)).value[0] is None
    assert (await client.get_balance(to)).value == 0
    assert all(entry["signature"] != str(sig) for entry in chain.txlog())


async def test_landing_delay(chain: LocalChain, client: AsyncClient) -> None:
    chain.faults.update(landing_delay_blocks=2)
    sig = (
        await client.send_raw_transaction(
            sign([pay(Keypair().pubkey(), 10**6)], await blockhash(client))
        )
    ).value
    chain.advance(1)
    assert (await client.get_signature_statuses([sig])).value[0] is None
    chain.advance(1)
    assert (await client.get_signature_statuses([sig])).value[0] is not None


async def test_preflight_failure_has_the_rpc_shape(client: AsyncClient) -> None:
    raw = sign([pay(Keypair().pubkey(), 10**15)], await blockhash(client))
    with pytest.raises(RPCException) as raised:
        await client.send_raw_transaction(raw)
    failure = raised.value.args[0]
    payload = failure.to_json()
    assert '"InstructionError":[0,{"Custom":1}]' in payload.replace(" ", "")
    assert failure.message.startswith("Transaction simulation failed")
    assert failure.data.logs
    assert failure.data.units_consumed is not None
    assert classify_send_error(raised.value).code == "insufficient_funds"


async def test_failure_without_preflight_lands_with_err_and_fee(
    chain: LocalChain, client: AsyncClient
) -> None:
    before = (await client.get_balance(WALLET)).value
    raw = sign([pay(Keypair().pubkey(), 10**15)], await blockhash(client))
    sig = (await client.send_raw_transaction(raw, opts=SKIP)).value
    status = (await client.get_signature_statuses([sig])).value[0]
    assert status is not None
    assert status.err is not None
    chain.confirm()
    assert (await client.get_balance(WALLET)).value == before - FEE_PER_SIGNATURE


async def test_simulate_returns_requested_accounts_and_changes_nothing(
    client: AsyncClient,
) -> None:
    to = Keypair().pubkey()
    tx = VersionedTransaction.from_bytes(sign([pay(to, 10**6)], await blockhash(client)))
    sim = (await client.simulate_transaction(tx, accounts_addresses=[to])).value
    assert sim.err is None
    assert sim.accounts is not None
    assert sim.accounts[0] is not None
    assert sim.accounts[0].lamports == 10**6
    assert (await client.get_balance(to)).value == 0


async def test_batch_and_unknown_method(chain: LocalChain) -> None:
    transport = httpx2.ASGITransport(app=chain.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://c") as http:
        batch = [
            {"jsonrpc": "2.0", "id": 1, "method": "getSlot"},
            {"jsonrpc": "2.0", "id": 2, "method": "nope"},
        ]
        replies = (await http.post("/", json=batch)).json()
        assert replies[0]["result"] == chain.ledger.root_slot  # a node's default: finalized
        assert replies[1]["error"]["code"] == -32601
        admin = admin_headers()
        advanced = await http.post("/admin/advance", json={"blocks": 3}, headers=admin)
        assert advanced.json()["blockHeight"] == 4
        set_ = await http.post("/admin/faults", json={"latency_ms": 1}, headers=admin)
        assert set_.status_code == 200
        assert chain.faults.latency_ms == 1


# ---------------------------------------------------------------------------------------------
# The real DEX programs (local.chain.binaries), run by LiteSVM.
# ---------------------------------------------------------------------------------------------
CPMM_PROGRAM = Pubkey.from_string("CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C")
SWAP_BASE_INPUT = bytes([143, 190, 90, 218, 196, 30, 51, 222])


def cpmm_swap_sol_for_usdc(chain: LocalChain, amount_in: int, min_out: int) -> list[Instruction]:
    """Wrap SOL into the wallet's WSOL ATA, then CPMM swap_base_input (SOLANA.md's layout)."""
    from spl.token.instructions import create_idempotent_associated_token_account, sync_native
    from spl.token.models import SyncNativeParams

    pool = POOLS["raydium_cpmm"]
    account = chain.ledger.get_account(pool)
    assert account is not None
    state = bytes(account.data)

    def key(offset: int) -> Pubkey:
        return Pubkey.from_bytes(state[offset : offset + 32])

    mint0 = key(168)
    vault0, vault1 = key(72), key(104)
    in_vault, out_vault = (vault0, vault1) if mint0 == WSOL_MINT else (vault1, vault0)
    authority, _ = Pubkey.find_program_address([b"vault_and_lp_mint_auth_seed"], CPMM_PROGRAM)
    wsol = get_associated_token_address(WALLET, WSOL_MINT)
    return [
        create_idempotent_associated_token_account(WALLET, WALLET, WSOL_MINT),
        pay(wsol, amount_in),
        sync_native(SyncNativeParams(program_id=TOKEN_PROGRAM_ID, account=wsol)),
        Instruction(
            CPMM_PROGRAM,
            SWAP_BASE_INPUT + amount_in.to_bytes(8, "little") + min_out.to_bytes(8, "little"),
            [
                AccountMeta(WALLET, True, True),
                AccountMeta(authority, False, False),
                AccountMeta(key(8), False, False),
                AccountMeta(pool, False, True),
                AccountMeta(wsol, False, True),
                AccountMeta(seed.WALLET_USDC_ATA, False, True),
                AccountMeta(in_vault, False, True),
                AccountMeta(out_vault, False, True),
                AccountMeta(TOKEN_PROGRAM_ID, False, False),
                AccountMeta(TOKEN_PROGRAM_ID, False, False),
                AccountMeta(WSOL_MINT, False, False),
                AccountMeta(USDC_MINT, False, False),
                AccountMeta(key(296), False, True),
            ],
        ),
    ]


async def test_cpmm_swap_moves_sol_and_usdc(chain: LocalChain, client: AsyncClient) -> None:
    before_sol = chain.sol_balance(WALLET)
    before_usdc = chain.token_balance(WALLET, USDC_MINT)
    ixs = cpmm_swap_sol_for_usdc(chain, 10**9, 1)
    sig = (await client.send_raw_transaction(sign(ixs, await blockhash(client)))).value
    status = (await client.get_signature_statuses([sig])).value[0]
    assert status is not None
    assert status.err is None
    assert chain.token_balance(WALLET, USDC_MINT) > before_usdc + 140 * 10**6  # ~149 USDC
    assert chain.sol_balance(WALLET) < before_sol - 10**9
    [entry] = [e for e in chain.txlog() if e["signature"] == str(sig)]
    assert entry["dexInstructions"][0]["index"] == 3
    chain.confirm()
    tx = (await client.get_transaction(sig, max_supported_transaction_version=0)).value
    assert tx is not None
    assert tx.transaction.meta is not None
    logs = tx.transaction.meta.log_messages or []
    # The program's own logs, and the compute units the real program used.
    assert f"Program {CPMM_PROGRAM} invoke [1]" in logs
    assert "Program log: Instruction: SwapBaseInput" in logs
    assert any(line.startswith(f"Program {CPMM_PROGRAM} consumed ") for line in logs)


async def test_cpmm_swap_with_too_high_min_out_is_atomic(
    chain: LocalChain, client: AsyncClient
) -> None:
    before_sol = chain.sol_balance(WALLET)
    before_usdc = chain.token_balance(WALLET, USDC_MINT)
    wsol = get_associated_token_address(WALLET, WSOL_MINT)
    ixs = cpmm_swap_sol_for_usdc(chain, 10**9, 10**12)
    raw = sign(ixs, await blockhash(client))
    with pytest.raises(RPCException) as raised:
        await client.send_raw_transaction(raw)
    assert classify_send_error(raised.value).code == "slippage_exceeded"

    sig = (await client.send_raw_transaction(raw, opts=SKIP)).value
    status = (await client.get_signature_statuses([sig])).value[0]
    assert status is not None
    assert status.err is not None
    [entry] = [e for e in chain.txlog() if e["signature"] == str(sig)]
    assert entry["err"] == {"InstructionError": [3, {"Custom": 6005}]}  # ExceededSlippage
    # Everything the transaction did before the swap failed is undone; the fee is paid.
    assert chain.sol_balance(WALLET) == before_sol - FEE_PER_SIGNATURE
    assert chain.token_balance(WALLET, USDC_MINT) == before_usdc
    assert chain.ledger.get_account(wsol) is None  # the ATA created earlier in the tx is gone


async def test_the_program_ids_are_upgradeable_programs_holding_the_pinned_elf(
    client: AsyncClient,
) -> None:
    """getAccountInfo of each DEX program id answers what a validator answers: an executable
    account of the upgradeable loader naming its ProgramData, which holds the pinned ELF."""
    loader = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")
    for binary in find_all():
        program = (await client.get_account_info(binary.pin.program_id)).value
        assert program is not None
        assert program.executable
        assert program.owner == loader
        assert bytes(program.data)[:4] == (2).to_bytes(4, "little")
        programdata = Pubkey.from_bytes(bytes(program.data)[4:36])
        assert programdata == programdata_address(binary.pin.program_id)
        data = (await client.get_account_info(programdata)).value
        assert data is not None
        assert data.owner == loader
        _, authority, elf = parse_programdata(bytes(data.data))
        assert authority is None
        assert hashlib.sha256(elf).hexdigest() == binary.pin.sha256


async def test_admin_pool_price_moves_a_pool_with_a_real_swap(chain: LocalChain) -> None:
    """POST /admin/pool_price: the market maker swaps on the pool (its program's own swap) until
    the pool prices SOL at what was asked, as near as one base unit allows."""
    pool = POOLS["raydium_cpmm"]
    transport = httpx2.ASGITransport(app=chain.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://c") as http:
        body = {"pool": str(pool), "baseMint": str(WSOL_MINT), "price": "143.5"}
        admin = admin_headers()
        reply = (await http.post("/admin/pool_price", json=body, headers=admin)).json()
        bad = await http.post(
            "/admin/pool_price", json={**body, "baseMint": str(pool)}, headers=admin
        )
    [entry] = [e for e in chain.txlog() if e["signature"] == reply["signature"]]
    assert entry["feePayer"] == str(seed.MARKET_MAKER)
    assert entry["dexInstructions"][0]["programId"] == str(CPMM_PROGRAM)
    assert (
        "Program log: Instruction: SwapBaseInput"
        in chain.ledger.records[Signature.from_string(reply["signature"])].logs
    )
    found = market.read_pool(chain.ledger, pool)
    price = market.pool_price(chain.ledger, found, WSOL_MINT) * 1_000  # USDC per SOL
    assert abs(price - Fraction("143.5")) < Fraction(1, 10**4)
    assert bad.status_code == 400


async def test_served_over_a_socket_with_a_ticker() -> None:
    """The local stack's shape: uvicorn on loopback, blocks every few ms, a plain AsyncClient."""
    import asyncio

    from local.chain import serve_in_thread

    chain = LocalChain.seeded()
    url, stop = serve_in_thread(chain)
    chain.start_ticker(0.02)
    client = AsyncClient(url, timeout=5)
    try:
        sig = (
            await client.send_raw_transaction(
                sign([pay(Keypair().pubkey(), 10**6)], await blockhash(client))
            )
        ).value
        for _ in range(200):
            status = (await client.get_signature_statuses([sig])).value[0]
            if status is not None and status.confirmation_status in (
                TransactionConfirmationStatus.Confirmed,
                TransactionConfirmationStatus.Finalized,
            ):
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the transaction never reached confirmed")
    finally:
        await client.close()
        chain.stop()
        stop()
