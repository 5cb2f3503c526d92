"""The real DEX programs on the local chain (the mainnet binaries in LiteSVM) refuse each kind
of wrong transaction with their own errors, read the ledger's Clock, and the engine's main path
trades the Token-2022 pools exactly at its quotes."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
)

from engine import config
from engine.errors import PermanentChainError
from engine.orders import parse_order_request
from engine.store import Order, Store
from execution.chain import Chain, classify_send_error
from execution.executor import Executor, Timing
from execution.venues import VENUES, Clock, PoolNotTradable
from execution.wallet import Wallet
from local.chain import POOLS, T22_MINT, T22_POOLS, USDC_MINT, WALLET, LocalChain, client_for, seed
from local.chain.ledger import WSOL_MINT
from tests.pool_factory import PoolFactory

WALLET_KP = seed.WALLET_KEYPAIR
SYSTEM_PROGRAM = Pubkey.from_string("11111111111111111111111111111111")


@pytest.fixture
def chain() -> LocalChain:
    return LocalChain.seeded()


@pytest.fixture
async def client(chain: LocalChain) -> AsyncIterator[AsyncClient]:
    """A client, with the wallet's WSOL account opened so swaps into SOL have their account."""
    client = client_for(chain)
    wsol = create_idempotent_associated_token_account(WALLET, WALLET, WSOL_MINT, TOKEN_PROGRAM_ID)
    await send(client, [wsol])
    yield client
    await client.close()


def clock_of(chain: LocalChain) -> Clock:
    solders_clock = chain.ledger.clock()
    return Clock(
        solders_clock.slot,
        solders_clock.epoch_start_timestamp,
        solders_clock.epoch,
        solders_clock.leader_schedule_epoch,
        solders_clock.unix_timestamp,
    )


def swap_ix(
    chain: LocalChain, pool: Pubkey, venue: str, mint_in: Pubkey, amount: int, min_out: int = 0
) -> Instruction:
    account = chain.ledger.get_account(pool)
    assert account is not None
    state = VENUES[venue].decode_pool(bytes(account.data), account.owner, pool)
    mints = VENUES[venue].pool_mints(state)
    mint_out = mints[1] if mints[0] == mint_in else mints[0]

    def ata(mint: Pubkey) -> Pubkey:
        program = chain.ledger.get_account(mint)
        assert program is not None
        return get_associated_token_address(WALLET, mint, program.owner)

    return VENUES[venue].swap_instruction(
        state, WALLET, ata(mint_in), ata(mint_out), mint_in, amount, min_out
    )


def with_meta(
    ix: Instruction, index: int, pubkey: Pubkey | None = None, is_writable: bool | None = None
) -> Instruction:
    metas = list(ix.accounts)
    meta = metas[index]
    metas[index] = AccountMeta(
        pubkey if pubkey is not None else meta.pubkey,
        meta.is_signer,
        is_writable if is_writable is not None else meta.is_writable,
    )
    return Instruction(ix.program_id, bytes(ix.data), metas)


async def send(client: AsyncClient, ixs: Sequence[Instruction]) -> None:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    await client.send_raw_transaction(sign(ixs, blockhash))


def sign(ixs: Sequence[Instruction], blockhash: Hash) -> bytes:
    message = MessageV0.try_compile(WALLET, list(ixs), [], blockhash)
    return bytes(VersionedTransaction(message, [WALLET_KP]))


async def refused(client: AsyncClient, ixs: Sequence[Instruction]) -> tuple[str, str]:
    """Send with preflight: the transaction is refused; returns (its RPC error JSON, the order
    code the engine gives it)."""
    with pytest.raises(RPCException) as raised:
        await send(client, ixs)
    text = raised.value.args[0].to_json().replace(" ", "")
    return text, classify_send_error(raised.value).code


# ---------------------------------------------------------------------------------------------
# Wrong transactions get the real programs' errors.
# ---------------------------------------------------------------------------------------------
async def test_a_read_only_pool_is_refused_as_each_program_refuses_it(
    chain: LocalChain, client: AsyncClient
) -> None:
    damm = with_meta(
        swap_ix(chain, POOLS["meteora_damm_v2"], "meteora_damm_v2", USDC_MINT, 10**6),
        1,
        is_writable=False,
    )
    text, code = await refused(client, [damm])
    assert '"InstructionError":[0,{"Custom":3006}]' in text  # AccountNotMutable (fast path)
    assert code == "invalid_account"
    cpmm = with_meta(
        swap_ix(chain, POOLS["raydium_cpmm"], "raydium_cpmm", USDC_MINT, 10**6),
        3,
        is_writable=False,
    )
    text, code = await refused(client, [cpmm])
    assert '"InstructionError":[0,{"Custom":2000}]' in text  # Anchor ConstraintMut
    assert "ConstraintMut" in text
    assert code == "invalid_account"


async def test_an_spl_vault_with_the_token_2022_program_is_refused(
    chain: LocalChain, client: AsyncClient
) -> None:
    # DAMM v2 checks each vault's owner against its token program (ix_swap.rs).
    ix = swap_ix(chain, POOLS["meteora_damm_v2"], "meteora_damm_v2", USDC_MINT, 10**6)
    text, code = await refused(client, [with_meta(ix, 10, pubkey=TOKEN_2022_PROGRAM_ID)])
    assert '"InstructionError":[0,{"Custom":2021}]' in text  # ConstraintTokenTokenProgram
    assert code == "invalid_account"
    # CPMM accepts any token program there; the Token-2022 transfer CPI then refuses SPL
    # Token accounts (token-2022 processor.rs check_program_account).
    ix = swap_ix(chain, POOLS["raydium_cpmm"], "raydium_cpmm", USDC_MINT, 10**6)
    text, code = await refused(client, [with_meta(ix, 8, pubkey=TOKEN_2022_PROGRAM_ID)])
    assert '"InstructionError":[0,"IncorrectProgramId"]' in text
    assert code == "invalid_account"


async def test_a_token_program_that_is_no_token_program_is_refused(
    chain: LocalChain, client: AsyncClient
) -> None:
    ix = swap_ix(chain, POOLS["raydium_cpmm"], "raydium_cpmm", USDC_MINT, 10**6)
    text, code = await refused(client, [with_meta(ix, 8, pubkey=SYSTEM_PROGRAM)])
    assert '"InstructionError":[0,{"Custom":3008}]' in text  # Interface<TokenInterface>
    assert code == "invalid_account"
    ix = swap_ix(chain, POOLS["meteora_damm_v2"], "meteora_damm_v2", USDC_MINT, 10**6)
    text, code = await refused(client, [with_meta(ix, 10, pubkey=SYSTEM_PROGRAM)])
    assert '"InstructionError":[0,{"Custom":2021}]' in text  # the vault is not its program's
    assert code == "invalid_account"


@pytest.fixture
def late_pools(chain: LocalChain) -> dict[str, Pubkey]:
    """A SOL/USDC pool of each venue opening an hour after the chain's clock."""
    now = chain.ledger.clock().unix_timestamp
    factory = PoolFactory(chain.ledger)
    pools = {
        "raydium_cpmm": factory.cpmm(
            WSOL_MINT, USDC_MINT, 10**12, 2 * 10**11, open_time=now + 3_600
        ),
        # Static config 0: activation by timestamp.
        "meteora_damm_v2": factory.damm(
            WSOL_MINT, USDC_MINT, 10**12, 2 * 10**11, config=0, activation_point=now + 3_600
        ),
    }
    chain.confirm()  # the engine reads at `confirmed`
    return pools


async def test_a_swap_before_open_time_or_activation_is_refused_until_then(
    chain: LocalChain, client: AsyncClient, late_pools: dict[str, Pubkey]
) -> None:
    for venue, error in (("raydium_cpmm", 6000), ("meteora_damm_v2", 6003)):
        ix = swap_ix(chain, late_pools[venue], venue, USDC_MINT, 10**6)
        text, code = await refused(client, [ix])
        assert f'"InstructionError":[0,{{"Custom":{error}}}]' in text  # NotApproved / PoolDisabled
        assert code == "pool_not_tradable"
        account = chain.ledger.get_account(late_pools[venue])
        assert account is not None
        state = VENUES[venue].decode_pool(bytes(account.data), account.owner, late_pools[venue])
        data = {
            k: bytes(a.data)
            for k in (USDC_MINT, WSOL_MINT, *VENUES[venue].dependent_accounts(state))
            if (a := chain.ledger.get_account(k)) is not None
        }
        with pytest.raises(PoolNotTradable) as skipped:
            VENUES[venue].quote(state, data, USDC_MINT, 10**6, clock_of(chain))
        assert skipped.value.code == "not_open"
    chain.ledger.shift_time(3_600)  # the chain's clock reaches the open time
    sol_before = chain.token_balance(WALLET, WSOL_MINT)
    wsol_ata = create_idempotent_associated_token_account(
        WALLET, WALLET, WSOL_MINT, TOKEN_PROGRAM_ID
    )
    for venue in late_pools:
        await send(client, [wsol_ata, swap_ix(chain, late_pools[venue], venue, USDC_MINT, 10**6)])
    assert chain.token_balance(WALLET, WSOL_MINT) > sol_before


async def test_the_rate_limited_pool_needs_the_instructions_sysvar(
    chain: LocalChain, client: AsyncClient
) -> None:
    pool = T22_POOLS["meteora_damm_v2"]
    t22_ata = create_idempotent_associated_token_account(
        WALLET, WALLET, T22_MINT, TOKEN_2022_PROGRAM_ID
    )
    ix = swap_ix(chain, pool, "meteora_damm_v2", USDC_MINT, 2_000 * 10**6)
    assert str(ix.accounts[14].pubkey) == "Sysvar1nstructions1111111111111111111111111"
    bare = Instruction(ix.program_id, bytes(ix.data), list(ix.accounts)[:14])
    text, code = await refused(client, [t22_ata, bare])
    assert '"InstructionError":[1,{"Custom":6049}]' in text
    assert code == "transaction_failed"
    # Two swaps of the pool in one transaction: refused too (the single-swap check).
    small = swap_ix(chain, pool, "meteora_damm_v2", USDC_MINT, 10**6)
    text, _ = await refused(client, [t22_ata, small, ix])
    assert '"InstructionError":[2,{"Custom":6049}]' in text
    await send(client, [t22_ata, ix])  # with the sysvar it lands


async def test_the_clock_sysvar_follows_the_blocks(chain: LocalChain, client: AsyncClient) -> None:
    from execution.venues import SYSVAR_CLOCK

    start = clock_of(chain)
    chain.advance(25)
    account = (await client.get_account_info(SYSVAR_CLOCK)).value
    assert account is not None
    now = Clock.from_account_data(bytes(account.data))
    assert now.slot == start.slot + 25
    assert now.unix_timestamp == start.unix_timestamp + 10  # 400 ms a slot
    assert now.epoch == 0


# ---------------------------------------------------------------------------------------------
# The engine's main path on the Token-2022 pools.
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def running(chain: LocalChain) -> Iterator[LocalChain]:
    chain.start_ticker(0.01)
    yield chain
    chain.stop()


@pytest.fixture
def cfg(database_url: str) -> config.Settings:
    from local.chain import seeded_venue_pools

    # VENUE_POOLS as an allow-list: the tests below add pools of their own to it.
    pools = config.parse_pools(seeded_venue_pools())
    return dataclasses.replace(
        config.Settings.from_env(),
        solana_rpc_url="http://local-chain",
        solana_cluster="custom",
        pools=pools,
        max_attempts=3,
    )


async def execute(
    store: Store,
    chain: LocalChain,
    cfg: config.Settings,
    on_event: Callable[[Any], None] | None = None,
    **body: Any,
) -> Order:
    request = {"slippage": 0.5, **body}
    order, _ = store.create_order(parse_order_request(request))
    client = Chain("http://local-chain", client_for(chain))
    executor = Executor(
        store,
        client,
        Wallet(WALLET_KP),
        cfg,
        publish=on_event or (lambda _: None),
        timing=Timing(poll_seconds=0.01, resend_seconds=0.05, land_timeout_seconds=20),
    )
    try:
        outcome = await executor.run(order.id, 1)
    finally:
        await client.close()
    assert outcome.status == "confirmed", store.get_order(order.id)
    row = store.get_order(order.id)
    assert row is not None
    return row


def t22_balance(chain: LocalChain) -> tuple[int, int]:
    """(amount, withheld) of the wallet's Token-2022 T22 account."""
    account = chain.ledger.get_account(
        get_associated_token_address(WALLET, T22_MINT, TOKEN_2022_PROGRAM_ID)
    )
    assert account is not None
    return _amount(bytes(account.data)), _withheld(bytes(account.data))


def _amount(data: bytes) -> int:
    return int.from_bytes(data[64:72], "little")


def _withheld(data: bytes) -> int:
    """TransferFeeAmount (extension 2) of a Token-2022 account: what its mint withheld there."""
    at = 166
    while at + 4 <= len(data):
        kind = int.from_bytes(data[at : at + 2], "little")
        size = int.from_bytes(data[at + 2 : at + 4], "little")
        if kind == 2:
            return int.from_bytes(data[at + 4 : at + 12], "little")
        at += 4 + size
    return 0


async def test_selling_the_transfer_fee_token_receives_the_quote(
    store: Store, running: LocalChain, cfg: config.Settings
) -> None:
    usdc_before = running.token_balance(WALLET, USDC_MINT)
    t22_before, _ = t22_balance(running)
    row = await execute(store, running, cfg, tokenIn=str(T22_MINT), tokenOut="USDC", amountIn="100")
    quotes = row.quotes
    assert {q["pool"] for q in quotes} == {str(p) for p in T22_POOLS.values()}
    assert all(q["tokenProgramIn"] == str(TOKEN_2022_PROGRAM_ID) for q in quotes)
    # 100 T22 leave the wallet; 1 % is withheld by the mint before the curve, so about 99
    # reach the pool: at 1.00-1.01 USDC each, less the pool fees.
    assert t22_before - t22_balance(running)[0] == 100 * 10**6
    received = running.token_balance(WALLET, USDC_MINT) - usdc_before
    assert received == int(row.amount_out or 0)
    assert 97 * 10**6 < received < 100 * 10**6


async def test_buying_the_transfer_fee_token_receives_the_quote_after_its_fee(
    store: Store, running: LocalChain, cfg: config.Settings
) -> None:
    t22_before, withheld_before = t22_balance(running)
    routing: list[dict[str, Any]] = []
    row = await execute(
        store,
        running,
        cfg,
        tokenIn="USDC",
        tokenOut=str(T22_MINT),
        amountIn="2500",
        on_event=lambda e: routing.append(e.detail) if str(e.status) == "routing" else None,
    )
    t22_after, withheld_after = t22_balance(running)
    assert t22_after - t22_before == int(row.amount_out or 0)
    # The output's transfer fee stays withheld in the wallet's own account (TransferFeeAmount).
    withheld = withheld_after - withheld_before
    assert withheld > 0
    gross = int(row.amount_out or 0) + withheld
    assert withheld == -(-gross * 100 // 10_000)
    [quotes] = [r["quotes"] for r in routing]
    damm = next(q for q in quotes if q["venue"] == "meteora_damm_v2")
    assert int(damm["amountOutUnits"]) > 0  # the rate-limited pool was quoted, not refused


async def test_a_pool_not_open_yet_is_listed_skipped_and_not_chosen(
    store: Store, running: LocalChain, cfg: config.Settings
) -> None:
    now = running.ledger.clock().unix_timestamp
    early = PoolFactory(running.ledger).cpmm(
        WSOL_MINT, USDC_MINT, 10**12, 2 * 10**11, open_time=now + 7_200
    )
    running.confirm()  # the engine reads at `confirmed`
    cfg = dataclasses.replace(
        cfg, pools=(*cfg.pools, config.PoolConfig("raydium_cpmm", str(early)))
    )
    row = await execute(store, running, cfg, tokenIn="SOL", tokenOut="USDC", amountIn="0.01")
    skipped = [q for q in row.quotes if "skipped" in q]
    assert [q["pool"] for q in skipped] == [str(early)]
    assert skipped[0]["skipped"] == "not_open"
    assert skipped[0]["opensAt"].endswith("Z")
    assert row.pool != str(early)  # 200 USDC/SOL, but not open: never chosen


async def test_an_order_only_closed_pools_could_fill_fails_no_route(
    store: Store, running: LocalChain, cfg: config.Settings
) -> None:
    now = running.ledger.clock().unix_timestamp
    early = PoolFactory(running.ledger).damm(
        WSOL_MINT, T22_MINT, 10**12, 10**12, config=0, activation_point=now + 7_200
    )
    running.confirm()  # the engine reads at `confirmed`
    cfg = dataclasses.replace(cfg, pools=(config.PoolConfig("meteora_damm_v2", str(early)),))
    order, _ = store.create_order(
        parse_order_request({"tokenIn": "SOL", "tokenOut": str(T22_MINT), "amountIn": "0.01"})
    )
    client = Chain("http://local-chain", client_for(running))
    executor = Executor(store, client, Wallet(WALLET_KP), cfg, publish=lambda _: None)
    try:
        outcome = await executor.run(order.id, 1)
    finally:
        await client.close()
    row = store.get_order(order.id)
    assert outcome.status == "failed"
    assert row is not None
    assert row.failure_code == "no_route"
    reason = row.failure_reason or ""
    assert "not_open" in reason
    assert str(early) in reason


# ---------------------------------------------------------------------------------------------
# The property on the whole local chain: the engine's route, quote and transaction, executed by
# LiteSVM (System, ATA, Token, Token-2022) and the real DEX program, pay the quote.
# ---------------------------------------------------------------------------------------------
TRADES = [
    ("raydium_cpmm", "T22", "USDC"),
    ("raydium_cpmm", "USDC", "T22"),
    ("meteora_damm_v2", "T22", "USDC"),
    ("meteora_damm_v2", "USDC", "T22"),
    ("raydium_cpmm", "SOL", "USDC"),
    ("meteora_damm_v2", "SOL", "USDC"),
]


def _fund(chain: LocalChain, user: Keypair) -> None:
    """Real ATA-program accounts for `user`, funded by real TransferChecked instructions from
    the seeded wallet (Token-2022 withholds its fee on the T22 one)."""
    from spl.token.instructions import transfer_checked
    from spl.token.models import TransferCheckedParams

    chain.ledger.airdrop(user.pubkey(), 10 * 10**9)
    ixs = []
    for mint, program, amount in (
        (USDC_MINT, TOKEN_PROGRAM_ID, 6_000 * 10**6),
        (T22_MINT, TOKEN_2022_PROGRAM_ID, 6_000 * 10**6),
    ):
        ixs.append(create_idempotent_associated_token_account(WALLET, user.pubkey(), mint, program))
        ixs.append(
            transfer_checked(
                TransferCheckedParams(
                    program_id=program,
                    source=get_associated_token_address(WALLET, mint, program),
                    mint=mint,
                    dest=get_associated_token_address(user.pubkey(), mint, program),
                    owner=WALLET,
                    amount=amount,
                    decimals=6,
                )
            )
        )
    blockhash, _ = chain.ledger.latest_blockhash()
    chain.ledger.send(VersionedTransaction.from_bytes(sign(ixs, blockhash)))


def _token_amount(chain: LocalChain, owner: Pubkey, mint: Pubkey, program: Pubkey) -> int:
    account = chain.ledger.get_account(get_associated_token_address(owner, mint, program))
    return _amount(bytes(account.data)) if account is not None else 0


async def _trade(
    chain: LocalChain, user: Keypair, venue: str, pair: tuple[str, str], units: int
) -> None:
    from engine.config import PoolConfig
    from execution import builder, router

    mints = {"SOL": WSOL_MINT, "USDC": USDC_MINT, "T22": T22_MINT}
    decimals = {"SOL": 9, "USDC": 6, "T22": 6}
    mint_in, mint_out = mints[pair[0]], mints[pair[1]]
    pool = (T22_POOLS if "T22" in pair else POOLS)[venue]
    client = Chain("http://local-chain", client_for(chain))
    try:
        decision = await router.quote_all_venues(
            client,
            [PoolConfig(venue, str(pool))],
            mint_in=str(mint_in),
            mint_out=str(mint_out),
            amount_in=Decimal(units).scaleb(-decimals[pair[0]]),
            priority_fee=0,
        )
        quote = decision.best.to_json(True)
        account = chain.ledger.get_account(pool)
        assert account is not None
        state = VENUES[venue].decode_pool(bytes(account.data), account.owner, pool)
        amount_out = decision.best.amount_out_units
        ixs = builder.swap_instructions(
            user.pubkey(), [builder.Leg(quote, state, amount_out)], 200_000, 0, "property"
        )
        program_out = Pubkey.from_string(quote["tokenProgramOut"])
        before = _token_amount(chain, user.pubkey(), mint_out, program_out)
        blockhash = (await client.client.get_latest_blockhash()).value.blockhash
        message = MessageV0.try_compile(user.pubkey(), ixs, [], blockhash)
        await client.send(bytes(VersionedTransaction(message, [user])))
        after = _token_amount(chain, user.pubkey(), mint_out, program_out)
        assert after - before == amount_out  # the minimum out was the quote itself
        event(f"swapped on {venue} {'/'.join(pair)}")
    finally:
        await client.close()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    trade=st.sampled_from(TRADES),
    units=st.integers(1_000, 5_000 * 10**6),
    hours=st.integers(0, 48),
    blocks=st.integers(0, 40),
)
def test_the_local_chain_pays_the_engines_quote(
    trade: tuple[str, str, str], units: int, hours: int, blocks: int
) -> None:
    import asyncio

    chain = LocalChain.seeded()
    user = Keypair()
    _fund(chain, user)
    chain.ledger.shift_time(hours * 3_600)  # fee schedulers, the rate limiter's window
    chain.advance(blocks)
    if trade[1] == "SOL":
        units = units // 1_000  # 0.000001 to 5 SOL
    venue, *pair = trade
    refused: PermanentChainError | None = None
    try:
        asyncio.run(_trade(chain, user, venue, (pair[0], pair[1]), max(units, 1)))
    except PermanentChainError as exc:
        refused = exc
    # A dust trade buys nothing: refused, not sent.
    assert refused is None or refused.code == "amount_too_small"
    # A second trade at a later point sees the state the first one wrote (once confirmed: the
    # engine reads at `confirmed`).
    chain.confirm()
    chain.advance(blocks)
    with contextlib.suppress(PermanentChainError):
        asyncio.run(
            _trade(
                chain,
                user,
                venue,
                (pair[1], pair[0]) if pair[0] != "SOL" else (pair[0], pair[1]),
                max(units // 3, 1),
            )
        )
