"""Pools created by the programs' real instructions on the local chain (Raydium CPMM `initialize`,
Meteora DAMM v2 `initialize_pool` and `initialize_customizable_pool`), sent through the JSON-RPC
by `local.pools`: what the creation transaction shows a client, that the engine quotes the new
pool exactly as the real program then swaps on it, and the programs' errors for wrong
initializations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from decimal import Decimal
from math import isqrt
from typing import Any

import httpx2
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solana.rpc.models import MemcmpOpts
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID, WRAPPED_SOL_MINT
from spl.token.instructions import get_associated_token_address

from execution.venues import VENUES, Clock, PoolNotTradable
from local.chain import LocalChain, client_for, seed
from local.pools import (
    CPMM_PROGRAM,
    DAMM_PROGRAM,
    Created,
    CustomizableFees,
    PoolRequest,
    cpmm_config,
    cpmm_initialize,
    create_pool,
    damm_config,
    damm_initialize_customizable_pool,
    damm_initialize_pool,
    damm_price_and_liquidity,
    mint_new_token,
    wrap_sol,
)

WALLET_KP = seed.WALLET_KEYPAIR
WALLET = WALLET_KP.pubkey()
USDC = seed.USDC_MINT
KINDS = {
    "cpmm": PoolRequest("raydium_cpmm", price=Decimal("2.5"), liquidity=Decimal(2_000)),
    "damm": PoolRequest("meteora_damm_v2", price=Decimal("2.5"), liquidity=Decimal(2_000)),
    "damm-customizable": PoolRequest(
        "meteora_damm_v2", price=Decimal("0.04"), liquidity=Decimal(50_000), customizable=True
    ),
    "cpmm-sol": PoolRequest("raydium_cpmm", quote="SOL", price=Decimal("0.02")),
}
# Where the creation instruction names the pool and its two mints (the program's account order).
ACCOUNT_INDEXES = {  # kind -> (pool, mint 0 / a, mint 1 / b, the instruction's log line)
    "cpmm": (3, 4, 5, "Initialize"),
    "damm": (6, 8, 9, "InitializePool"),
    "damm-customizable": (5, 7, 8, "InitializeCustomizablePool"),
}
# The pool account's size and its mint fields' offsets: what getProgramAccounts filters on.
POOL_LAYOUT = {"raydium_cpmm": (637, 168, 200), "meteora_damm_v2": (1112, 168, 200)}


@pytest.fixture
def chain() -> Iterator[LocalChain]:
    chain = LocalChain.seeded()
    chain.start_ticker(0.02)  # confirmations need blocks
    yield chain
    chain.stop()


@pytest.fixture
async def client(chain: LocalChain) -> AsyncIterator[AsyncClient]:
    client = client_for(chain)
    yield client
    await client.close()


def ata(chain: LocalChain, owner: Pubkey, mint: Pubkey) -> Pubkey:
    """The owner's associated token account of `mint`, under the mint's token program."""
    mint_account = chain.ledger.get_account(mint)
    program = mint_account.owner if mint_account is not None else TOKEN_PROGRAM_ID
    return get_associated_token_address(owner, mint, program)


def token_amount(chain: LocalChain, owner: Pubkey, mint: Pubkey) -> int:
    account = chain.ledger.get_account(ata(chain, owner, mint))
    return int.from_bytes(bytes(account.data)[64:72], "little") if account is not None else 0


def clock_of(chain: LocalChain) -> Clock:
    c = chain.ledger.clock()
    return Clock(
        c.slot, c.epoch_start_timestamp, c.epoch, c.leader_schedule_epoch, c.unix_timestamp
    )


async def engine_quote(
    client: AsyncClient, chain: LocalChain, venue: str, pool: Pubkey, mint_in: Pubkey, amount: int
) -> tuple[Any, Any]:
    """The engine's quote, from the accounts a client reads over the RPC."""
    account = (await client.get_account_info(pool)).value
    assert account is not None
    state = VENUES[venue].decode_pool(bytes(account.data), account.owner, pool)
    keys = [*VENUES[venue].dependent_accounts(state), *VENUES[venue].pool_mints(state)]
    read = (await client.get_multiple_accounts(keys)).value
    data = {k: bytes(a.data) for k, a in zip(keys, read, strict=True) if a is not None}
    return state, VENUES[venue].quote(state, data, mint_in, amount, clock_of(chain))


async def rpc(chain: LocalChain, method: str, signature: str, encoding: str) -> Any:
    """A raw JSON-RPC call, read as the JSON a client receives."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": method,
        "params": [
            signature,
            {"encoding": encoding, "maxSupportedTransactionVersion": 0, "commitment": "confirmed"},
        ],
    }
    transport = httpx2.ASGITransport(app=chain.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://local-chain") as http:
        answer = (await http.post("/", json=body)).json()
    return answer["result"]


async def send(client: AsyncClient, instructions: Sequence[Instruction], *signers: Keypair) -> str:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    message = MessageV0.try_compile(WALLET, list(instructions), [], blockhash)
    tx = VersionedTransaction(message, [WALLET_KP, *signers])
    return str((await client.send_raw_transaction(bytes(tx))).value)


async def swap(
    client: AsyncClient, chain: LocalChain, created: Created, mint_in: Pubkey, amount: int
) -> tuple[int, int]:
    """(the engine's quoted output, what the wallet received) for one exact-in swap."""
    return await swap_on(
        client, chain, created.venue, Pubkey.from_string(created.pool), mint_in, amount
    )


async def swap_on(
    client: AsyncClient, chain: LocalChain, venue: str, pool: Pubkey, mint_in: Pubkey, amount: int
) -> tuple[int, int]:
    # The engine reads at `confirmed`, a block behind the newest: what landed so far (the
    # creation, a wrap, the swap before) is confirmed first, as the running chain's ticker does.
    chain.confirm()
    state, quote = await engine_quote(client, chain, venue, pool, mint_in, amount)
    mints = VENUES[venue].pool_mints(state)
    mint_out = mints[1] if mints[0] == mint_in else mints[0]
    ix = VENUES[venue].swap_instruction(
        state,
        WALLET,
        ata(chain, WALLET, mint_in),
        ata(chain, WALLET, mint_out),
        mint_in,
        amount,
        quote.amount_out,
    )
    before = token_amount(chain, WALLET, mint_out)
    await send(client, [ix])
    return quote.amount_out, token_amount(chain, WALLET, mint_out) - before


# ---------------------------------------------------------------------------------------------
# A created pool is the program's pool: the engine reads it and trades it at its quote.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
async def test_a_pool_created_by_transaction_trades_at_the_engines_quote(
    chain: LocalChain, client: AsyncClient, kind: str
) -> None:
    request = KINDS[kind]
    usdc_before = token_amount(chain, WALLET, USDC)
    created = await create_pool(client, request, WALLET_KP)
    mint, quote_mint = Pubkey.from_string(created.mint), Pubkey.from_string(created.quote_mint)
    pool = Pubkey.from_string(created.pool)
    account = chain.ledger.get_account(pool)
    assert account is not None
    assert account.owner == (CPMM_PROGRAM if request.venue == "raydium_cpmm" else DAMM_PROGRAM)
    token_units, quote_units, supply = request.amounts()
    # The creator's tokens went in (rounded up on DAMM v2's curve, never more than offered).
    deposited = supply - token_amount(chain, WALLET, mint)
    assert token_units - 2 <= deposited <= token_units
    if quote_mint == USDC:
        assert quote_units - 2 <= usdc_before - token_amount(chain, WALLET, USDC) <= quote_units

    chain.ledger.shift_time(2)  # CPMM opens a second after creation (open_time 0)
    chain.stop()  # one clock for the quote and the swap
    state = VENUES[request.venue].decode_pool(bytes(account.data), account.owner, pool)
    assert set(VENUES[request.venue].pool_mints(state)) == {mint, quote_mint}

    quote_in = 10 ** (9 if quote_mint == WRAPPED_SOL_MINT else 6)  # 1 SOL or 1 USDC
    if quote_mint == WRAPPED_SOL_MINT:
        await send(client, wrap_sol(WALLET, quote_in))  # the deposit used what was wrapped
    quoted, received = await swap(client, chain, created, quote_mint, quote_in)
    assert received == quoted > 0
    quoted, received = await swap(client, chain, created, mint, 25 * 10**6)  # sell 25 tokens
    assert received == quoted > 0


@pytest.mark.parametrize("venue", ["raydium_cpmm", "meteora_damm_v2"])
async def test_a_token_2022_pool_created_by_transaction_trades_at_the_engines_quote(
    chain: LocalChain, client: AsyncClient, venue: str
) -> None:
    """The seeded Token-2022 mint (a 1 % transfer fee) paired with USDC: the deposit pays the
    transfer fee (CPMM's vault gets the amount less the fee; DAMM v2 charges the fee on top so
    its vault gets what the curve needs), the vault carries TransferFeeAmount, and swaps both
    ways pay the engine's quote."""
    t22, amount = seed.T22_MINT, 1_000 * 10**6
    signers: list[Keypair] = []
    if venue == "raydium_cpmm":
        ix, cpmm = cpmm_initialize(
            WALLET,
            cpmm_config(3),  # the seed's T22/USDC pool is config 1's
            (t22, TOKEN_2022_PROGRAM_ID, amount),
            (USDC, TOKEN_PROGRAM_ID, amount),
        )
        pool = cpmm.pool
        vault = cpmm.token_0_vault if cpmm.token_0_mint == t22 else cpmm.token_1_vault
        expected_in_vault = amount - amount // 100
    else:
        nft = Keypair()
        signers.append(nft)
        sqrt_price, liquidity = damm_price_and_liquidity(amount, amount)
        ix, damm = damm_initialize_pool(
            WALLET,
            nft.pubkey(),
            damm_config(0),
            (t22, TOKEN_2022_PROGRAM_ID),
            (USDC, TOKEN_PROGRAM_ID),
            liquidity,
            sqrt_price,
        )
        pool, vault = damm.pool, damm.token_a_vault
        expected_in_vault = None
    held = token_amount(chain, WALLET, t22)
    await send(client, [ix], *signers)
    vault_account = chain.ledger.get_account(vault)
    assert vault_account is not None
    vault_data = bytes(vault_account.data)
    assert len(vault_data) == 165 + 1 + 4 + 8  # AccountType + TransferFeeAmount
    in_vault = int.from_bytes(vault_data[64:72], "little")
    paid = held - token_amount(chain, WALLET, t22)
    assert paid - in_vault == -(-paid // 100)  # the mint's 1 % fee, withheld in the vault
    if expected_in_vault is not None:
        assert in_vault == expected_in_vault

    chain.ledger.shift_time(2)
    chain.stop()
    quoted, received = await swap_on(client, chain, venue, pool, USDC, 50 * 10**6)
    assert received == quoted > 0
    quoted, received = await swap_on(client, chain, venue, pool, t22, 50 * 10**6)
    assert received == quoted > 0


async def test_a_cpmm_pool_at_a_random_address_must_sign(
    chain: LocalChain, client: AsyncClient, new_mint: Pubkey
) -> None:
    """create_pool accepts a pool that is not the PDA if its keypair signs (the SDK's random
    pool ids); unsigned, require_eq!(is_signer, true) fails (RequireEqViolated, 2501)."""
    pool = Keypair()
    sides = (new_mint, TOKEN_PROGRAM_ID, 10**9), (USDC, TOKEN_PROGRAM_ID, 10**9)
    ix, made = cpmm_initialize(WALLET, cpmm_config(0), *sides, pool_keypair=pool.pubkey())
    assert made.pool == pool.pubkey()
    metas = list(ix.accounts)
    metas[3] = AccountMeta(pool.pubkey(), is_signer=False, is_writable=True)
    text = await refused(client, chain, [Instruction(ix.program_id, bytes(ix.data), metas)])
    assert '"Custom":2501' in text
    assert "RequireEqViolated" in text
    await send(client, [ix], pool)
    chain.ledger.shift_time(2)
    chain.stop()
    quoted, received = await swap_on(client, chain, "raydium_cpmm", pool.pubkey(), USDC, 10**6)
    assert received == quoted > 0


async def test_a_compounding_customizable_pool_trades_at_the_engines_quote(
    chain: LocalChain, client: AsyncClient, new_mint: Pubkey
) -> None:
    """Collect fee mode 2 (x * y = k, part of the fee left in the pool): the initial amounts
    come from the liquidity and price (compounding_liquidity.rs), 100 << 64 of it locked."""
    amount_a, amount_b = 10**9, 4 * 10**9
    sqrt_price = isqrt((amount_b << 128) // amount_a)
    liquidity = isqrt(amount_a * amount_b << 128) - (1 << 64)  # rounding up stays within
    nft = Keypair()
    fees = CustomizableFees(collect_fee_mode=2, compounding_fee_bps=5_000)
    ix, damm = damm_initialize_customizable_pool(
        WALLET,
        nft.pubkey(),
        (new_mint, TOKEN_PROGRAM_ID),
        (USDC, TOKEN_PROGRAM_ID),
        liquidity,
        sqrt_price,
        fees=fees,
    )
    usdc = token_amount(chain, WALLET, USDC)
    await send(client, [ix], nft)
    assert 0 < usdc - token_amount(chain, WALLET, USDC) <= amount_b
    chain.stop()
    for mint_in, amount in ((USDC, 20 * 10**6), (new_mint, 3 * 10**6)):
        quoted, received = await swap_on(
            client, chain, "meteora_damm_v2", damm.pool, mint_in, amount
        )
        assert received == quoted > 0


async def test_a_pool_opening_later_refuses_swaps_until_its_time(
    chain: LocalChain, client: AsyncClient
) -> None:
    for venue, code in (("raydium_cpmm", 6000), ("meteora_damm_v2", 6003)):
        created = await create_pool(client, PoolRequest(venue, opens_in=600), WALLET_KP)
        pool = Pubkey.from_string(created.pool)
        with pytest.raises(PoolNotTradable) as skipped:
            await engine_quote(client, chain, venue, pool, USDC, 10**6)
        assert skipped.value.code == "not_open"
        with pytest.raises(RPCException) as refused:
            await swap_unchecked(client, created, USDC, 10**6)
        assert f'"Custom":{code}' in refused.value.args[0].to_json().replace(" ", "")
        chain.ledger.shift_time(601)
        _, quote = await engine_quote(client, chain, venue, pool, USDC, 10**6)
        assert quote.amount_out > 0


async def swap_unchecked(
    client: AsyncClient, created: Created, mint_in: Pubkey, amount: int
) -> str:
    venue, pool = created.venue, Pubkey.from_string(created.pool)
    account = (await client.get_account_info(pool)).value
    assert account is not None
    state = VENUES[venue].decode_pool(bytes(account.data), account.owner, pool)
    mints = VENUES[venue].pool_mints(state)
    mint_out = mints[1] if mints[0] == mint_in else mints[0]
    ix = VENUES[venue].swap_instruction(
        state,
        WALLET,
        get_associated_token_address(WALLET, mint_in),
        get_associated_token_address(WALLET, mint_out),
        mint_in,
        amount,
        0,
    )
    return await send(client, [ix])


# ---------------------------------------------------------------------------------------------
# What a client (and a sniper) sees of the creation.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(ACCOUNT_INDEXES))
async def test_the_creation_is_visible_to_history_transaction_and_program_account_reads(
    chain: LocalChain, client: AsyncClient, kind: str
) -> None:
    request = KINDS[kind]
    created = await create_pool(client, request, WALLET_KP)
    program = CPMM_PROGRAM if request.venue == "raydium_cpmm" else DAMM_PROGRAM
    pool_index, first_mint, second_mint, name = ACCOUNT_INDEXES[kind]
    signature = Signature.from_string(created.signature)

    # History: the program's and the pool's signatures start with the creation.
    for address in (program, Pubkey.from_string(created.pool)):
        newest = (await client.get_signatures_for_address(address, limit=5)).value
        assert newest[0].signature == signature
        assert newest[0].err is None

    # getTransaction, json: the instruction's account indexes name the pool and both mints.
    plain = await rpc(chain, "getTransaction", created.signature, "json")
    keys = plain["transaction"]["message"]["accountKeys"]
    (ix,) = [
        i
        for i in plain["transaction"]["message"]["instructions"]
        if keys[i["programIdIndex"]] == str(program)
    ]
    named = [keys[i] for i in ix["accounts"]]
    assert named[pool_index] == created.pool
    assert {named[first_mint], named[second_mint]} == {created.mint, created.quote_mint}
    logs = plain["meta"]["logMessages"]
    assert f"Program log: Instruction: {name}" in logs
    assert logs[-1] == f"Program {program} success"
    assert plain["meta"]["err"] is None

    # jsonParsed: the same instruction, its accounts by address.
    parsed = await rpc(chain, "getTransaction", created.signature, "jsonParsed")
    (parsed_ix,) = [
        i
        for i in parsed["transaction"]["message"]["instructions"]
        if i["programId"] == str(program)
    ]
    assert parsed_ix["accounts"] == named

    # getProgramAccounts with the filters a client uses to find a pair's pools.
    size, offset_0, offset_1 = POOL_LAYOUT[request.venue]
    first, second = named[first_mint], named[second_mint]
    found = (
        await client.get_program_accounts(
            program,
            encoding="base64",
            filters=[
                size,
                MemcmpOpts(offset=offset_0, bytes=first),
                MemcmpOpts(offset=offset_1, bytes=second),
            ],
        )
    ).value
    assert [str(a.pubkey) for a in found] == [created.pool]


# ---------------------------------------------------------------------------------------------
# Wrong initializations get the real program's error, and change nothing.
# ---------------------------------------------------------------------------------------------
@pytest.fixture
async def new_mint(chain: LocalChain, client: AsyncClient) -> Pubkey:
    mint, _ = await mint_new_token(client, WALLET_KP, 6, 10**15)
    return mint


async def refused(
    client: AsyncClient, chain: LocalChain, ixs: Sequence[Instruction], *signers: Keypair
) -> str:
    """Send with preflight: the transaction is refused and nothing lands; returns the error."""
    landed = len(chain.ledger.log)
    usdc = token_amount(chain, WALLET, USDC)
    with pytest.raises(RPCException) as error:
        await send(client, ixs, *signers)
    assert len(chain.ledger.log) == landed
    assert token_amount(chain, WALLET, USDC) == usdc
    return str(error.value.args[0].to_json()).replace(" ", "")


def cpmm_ix(mint: Pubkey, amount: int = 10**9, config: int = 0) -> Instruction:
    ix, _ = cpmm_initialize(
        WALLET,
        cpmm_config(config),
        (mint, TOKEN_PROGRAM_ID, amount),
        (USDC, TOKEN_PROGRAM_ID, 10**9),
    )
    return ix


def damm_ix(
    mint: Pubkey, nft: Keypair, liquidity: int | None = None, config: int = 0, **kw: Any
) -> Instruction:
    sqrt_price, fitting = damm_price_and_liquidity(10**9, 10**9)
    ix, _ = damm_initialize_pool(
        WALLET,
        nft.pubkey(),
        damm_config(config),
        (mint, TOKEN_PROGRAM_ID),
        (USDC, TOKEN_PROGRAM_ID),
        fitting if liquidity is None else liquidity,
        sqrt_price,
        **kw,
    )
    return ix


def with_accounts(ix: Instruction, swaps: dict[int, int]) -> Instruction:
    metas = list(ix.accounts)
    out = [metas[swaps.get(i, i)] for i in range(len(metas))]
    return Instruction(ix.program_id, bytes(ix.data), out)


async def test_cpmm_refuses_mints_in_the_wrong_order(
    chain: LocalChain, client: AsyncClient, new_mint: Pubkey
) -> None:
    # Token 0 must be the smaller address (initialize.rs: ConstraintRaw on token_0_mint).
    text = await refused(
        client, chain, [with_accounts(cpmm_ix(new_mint), {4: 5, 5: 4, 7: 8, 8: 7})]
    )
    assert '"Custom":2003' in text
    assert "AnchorErrorcausedbyaccount:token_0_mint.ErrorCode:ConstraintRaw" in text


async def test_a_config_that_does_not_exist_is_refused(
    chain: LocalChain, client: AsyncClient, new_mint: Pubkey
) -> None:
    # No account at the config's address: CPMM (Anchor 0.29) says it is not initialized,
    # DAMM v2 that the System program owns it.
    text = await refused(client, chain, [cpmm_ix(new_mint, config=9)])
    assert '"Custom":3012' in text  # AccountNotInitialized
    assert "account:amm_config" in text
    nft = Keypair()
    text = await refused(client, chain, [damm_ix(new_mint, nft, config=9)], nft)
    assert '"Custom":3007' in text  # AccountOwnedByWrongProgram
    assert "account:config" in text


async def test_zero_liquidity_is_refused(
    chain: LocalChain, client: AsyncClient, new_mint: Pubkey
) -> None:
    text = await refused(client, chain, [cpmm_ix(new_mint, amount=0)])
    assert '"Custom":6002' in text
    assert "EmptySupply" in text
    nft = Keypair()
    text = await refused(client, chain, [damm_ix(new_mint, nft, liquidity=0)], nft)
    assert '"Custom":6021' in text
    assert "InvalidMinimumLiquidity" in text


async def test_an_initialized_pool_cannot_be_initialized_again(
    chain: LocalChain, client: AsyncClient, new_mint: Pubkey
) -> None:
    await send(client, [cpmm_ix(new_mint)])
    # Other amounts, so not the same transaction again (that would be AlreadyProcessed).
    text = await refused(client, chain, [cpmm_ix(new_mint, amount=5 * 10**8)])
    assert '"Custom":0' in text  # the System program's Allocate
    assert "alreadyinuse" in text
    first = Keypair()
    await send(client, [damm_ix(new_mint, first)], first)
    second = Keypair()
    text = await refused(client, chain, [damm_ix(new_mint, second)], second)
    assert '"Custom":0' in text
    assert "alreadyinuse" in text


async def test_damm_refuses_an_activation_point_in_the_past_and_bad_fee_parameters(
    chain: LocalChain, client: AsyncClient, new_mint: Pubkey
) -> None:
    now = chain.ledger.clock().unix_timestamp
    nft = Keypair()
    text = await refused(client, chain, [damm_ix(new_mint, nft, activation_point=now - 60)], nft)
    assert '"Custom":6011' in text
    assert "InvalidActivationPoint" in text
    sqrt_price, liquidity = damm_price_and_liquidity(10**9, 10**9)
    bad_bin_step = CustomizableFees(
        dynamic_fee={**CustomizableFees().dynamic_fee, "bin_step": 2}  # type: ignore[dict-item]
    )
    ix, _ = damm_initialize_customizable_pool(
        WALLET,
        nft.pubkey(),
        (new_mint, TOKEN_PROGRAM_ID),
        (USDC, TOKEN_PROGRAM_ID),
        liquidity,
        sqrt_price,
        fees=bad_bin_step,
    )
    text = await refused(client, chain, [ix], nft)
    assert '"Custom":6018' in text  # DynamicFeeParameters::validate
    assert "InvalidInput" in text
    too_cheap = replace(CustomizableFees(), cliff_fee_numerator=10)  # under 1 bps
    ix, _ = damm_initialize_customizable_pool(
        WALLET,
        nft.pubkey(),
        (new_mint, TOKEN_PROGRAM_ID),
        (USDC, TOKEN_PROGRAM_ID),
        liquidity,
        sqrt_price,
        fees=too_cheap,
    )
    text = await refused(client, chain, [ix], nft)
    assert '"Custom":6004' in text
    assert "ExceedMaxFeeBps" in text


async def test_the_position_nft_mint_must_sign(
    chain: LocalChain, client: AsyncClient, new_mint: Pubkey
) -> None:
    nft = Keypair()
    ix = damm_ix(new_mint, nft)
    metas = list(ix.accounts)
    metas[1] = AccountMeta(metas[1].pubkey, is_signer=False, is_writable=True)
    text = await refused(client, chain, [Instruction(ix.program_id, bytes(ix.data), metas)])
    assert "PrivilegeEscalation" in text
