"""Create a new token and a pool for it on a running local chain, the way it happens on devnet.

    .venv/bin/python -m local.pools create --venue raydium_cpmm|meteora_damm_v2 --quote USDC \\
        [--price 2.5] [--liquidity 1000] [--opens-in SECONDS] [--rpc http://127.0.0.1:8899] \\
        [--mint ADDRESS]
    .venv/bin/python -m local.pools mint [--decimals 6] [--supply 10000]

`mint` only mints a new token (what a sniper order then names as tokenOut); `create --mint`
creates a pool for a token minted before (the wallet must hold it) instead of a new one.

1. mints a new SPL token (a fresh keypair, `--decimals`, the local wallet as mint authority) and
   `--supply` of it to the wallet's associated token account: one transaction;
2. sends the program's real pool-creating instruction - Raydium CPMM `initialize`, Meteora DAMM
   v2 `initialize_pool` with a seeded static config (or `initialize_customizable_pool` with
   `--customizable`) - depositing `--liquidity` tokens and `--liquidity` x `--price` of the
   quote token (SOL is wrapped in the same transaction);
3. waits for `confirmed` and prints the mint, the pool, the signature and the slot (`--json`:
   one JSON object with every account the pool created).
Everything goes through the JSON-RPC with solana-py, as any client would: nothing is written
into the chain directly. The wallet is the seeded one (`local.chain.seed.WALLET_KEYPAIR`), a
throwaway key that only exists on this machine's chain.

The instruction builders (`cpmm_initialize`, `damm_initialize_pool`,
`damm_initialize_customizable_pool`) list each program's accounts in the program's order and
derive its PDAs on their own; the real programs (local.chain.binaries) run them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from hashlib import sha256
from math import isqrt
from typing import Any

from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.models import TxOpts
from solders.compute_budget import set_compute_unit_limit
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import CreateAccountParams, TransferParams, create_account, transfer
from solders.transaction import VersionedTransaction
from spl.token.constants import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    WRAPPED_SOL_MINT,
)
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    initialize_mint2,
    mint_to,
    sync_native,
)
from spl.token.models import InitializeMint2Params, MintToParams, SyncNativeParams

SYSTEM_PROGRAM = Pubkey.from_string("11111111111111111111111111111111")
SYSVAR_RENT = Pubkey.from_string("SysvarRent111111111111111111111111111111111")
SYSVAR_CLOCK = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")
# The local chain runs the mainnet build of Raydium CPMM at its mainnet id (local.chain.binaries).
CPMM_PROGRAM = Pubkey.from_string("CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C")
CPMM_DEVNET_PROGRAM = Pubkey.from_string("DRaycpLY18LhpbydsBWbVJtxpNv9oXPgjRSfpF2bWpYb")
# raydium-cp-swap lib.rs create_pool_fee_reveiver: the mainnet build's, and the devnet build's.
CPMM_CREATE_POOL_FEES = {
    CPMM_PROGRAM: Pubkey.from_string("DNXgeM9EiiaAbaWvwjHj9fQQLAX5ZsfHyvmYUNRAdNC8"),
    CPMM_DEVNET_PROGRAM: Pubkey.from_string("3oE58BKVt8KuYkGxx8zBojugnymWmBiyafWgMrnb6eYy"),
}
DAMM_PROGRAM = Pubkey.from_string("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG")
DAMM_MIN_SQRT_PRICE = 4295048016
DAMM_MAX_SQRT_PRICE = 79226673521066979257578248091
DEFAULT_RPC = "http://127.0.0.1:8899"
MINT_LEN = 82
COMPUTE_UNIT_LIMIT = 400_000
VENUES = ("raydium_cpmm", "meteora_damm_v2")
# DAMM v2 dynamic fee parameters as mainnet's SOL/USDC pool has them (bin step 1 bps).
DAMM_DYNAMIC_FEE = {
    "bin_step": 1,
    "bin_step_u128": (1 << 64) // 10_000,
    "filter_period": 10,
    "decay_period": 120,
    "reduction_factor": 5_000,
    "max_volatility_accumulator": 14_460_000,
    "variable_fee_control": 239,
}


def _discriminator(name: str) -> bytes:
    return sha256(f"global:{name}".encode()).digest()[:8]


def _pda(program: Pubkey, *seeds: bytes) -> Pubkey:
    return Pubkey.find_program_address(list(seeds), program)[0]


def _meta(key: Pubkey, writable: bool = False, signer: bool = False) -> AccountMeta:
    return AccountMeta(key, is_signer=signer, is_writable=writable)


# ------------------------------------------------------------------------------ Raydium CPMM
@dataclass(frozen=True)
class CpmmPool:
    """The accounts `initialize` creates or names, in the instruction's order."""

    creator: Pubkey
    amm_config: Pubkey
    authority: Pubkey
    pool: Pubkey
    token_0_mint: Pubkey
    token_1_mint: Pubkey
    lp_mint: Pubkey
    creator_token_0: Pubkey
    creator_token_1: Pubkey
    creator_lp_token: Pubkey
    token_0_vault: Pubkey
    token_1_vault: Pubkey
    create_pool_fee: Pubkey
    observation: Pubkey
    token_0_program: Pubkey
    token_1_program: Pubkey


def cpmm_config(index: int, program: Pubkey = CPMM_PROGRAM) -> Pubkey:
    return _pda(program, b"amm_config", index.to_bytes(2, "big"))


def cpmm_initialize(
    creator: Pubkey,
    amm_config: Pubkey,
    mint_a: tuple[Pubkey, Pubkey, int],
    mint_b: tuple[Pubkey, Pubkey, int],
    open_time: int = 0,
    program: Pubkey = CPMM_PROGRAM,
    pool_keypair: Pubkey | None = None,
) -> tuple[Instruction, CpmmPool]:
    """Raydium CPMM `initialize(init_amount_0, init_amount_1, open_time)`.

    `mint_a` / `mint_b` are (mint, its token program, amount to deposit) in any order: token 0
    is the smaller address, as the program requires. The pool is the PDA
    ["pool", amm_config, token_0_mint, token_1_mint], or `pool_keypair`'s address (a random
    pool id, which must then sign); open_time 0 opens it a second after it lands."""
    (mint_0, program_0, amount_0), (mint_1, program_1, amount_1) = sorted(
        (mint_a, mint_b), key=lambda side: bytes(side[0])
    )
    pool = pool_keypair or _pda(program, b"pool", bytes(amm_config), bytes(mint_0), bytes(mint_1))
    lp_mint = _pda(program, b"pool_lp_mint", bytes(pool))
    accounts = CpmmPool(
        creator=creator,
        amm_config=amm_config,
        authority=_pda(program, b"vault_and_lp_mint_auth_seed"),
        pool=pool,
        token_0_mint=mint_0,
        token_1_mint=mint_1,
        lp_mint=lp_mint,
        creator_token_0=get_associated_token_address(creator, mint_0, program_0),
        creator_token_1=get_associated_token_address(creator, mint_1, program_1),
        creator_lp_token=get_associated_token_address(creator, lp_mint, TOKEN_PROGRAM_ID),
        token_0_vault=_pda(program, b"pool_vault", bytes(pool), bytes(mint_0)),
        token_1_vault=_pda(program, b"pool_vault", bytes(pool), bytes(mint_1)),
        create_pool_fee=CPMM_CREATE_POOL_FEES[program],
        observation=_pda(program, b"observation", bytes(pool)),
        token_0_program=program_0,
        token_1_program=program_1,
    )
    metas = [
        _meta(creator, writable=True, signer=True),
        _meta(amm_config),
        _meta(accounts.authority),
        _meta(pool, writable=True, signer=pool_keypair is not None),
        _meta(mint_0),
        _meta(mint_1),
        _meta(lp_mint, writable=True),
        _meta(accounts.creator_token_0, writable=True),
        _meta(accounts.creator_token_1, writable=True),
        _meta(accounts.creator_lp_token, writable=True),
        _meta(accounts.token_0_vault, writable=True),
        _meta(accounts.token_1_vault, writable=True),
        _meta(accounts.create_pool_fee, writable=True),
        _meta(accounts.observation, writable=True),
        _meta(TOKEN_PROGRAM_ID),
        _meta(program_0),
        _meta(program_1),
        _meta(ASSOCIATED_TOKEN_PROGRAM_ID),
        _meta(SYSTEM_PROGRAM),
        _meta(SYSVAR_RENT),
    ]
    data = _discriminator("initialize") + struct.pack("<QQQ", amount_0, amount_1, open_time)
    return Instruction(program, data, metas), accounts


# ------------------------------------------------------------------------------ Meteora DAMM v2
@dataclass(frozen=True)
class DammPool:
    """The accounts `initialize_pool` / `initialize_customizable_pool` create or name."""

    creator: Pubkey
    position_nft_mint: Pubkey
    position_nft_account: Pubkey
    payer: Pubkey
    config: Pubkey | None  # None: a customizable pool
    pool_authority: Pubkey
    pool: Pubkey
    position: Pubkey
    token_a_mint: Pubkey
    token_b_mint: Pubkey
    token_a_vault: Pubkey
    token_b_vault: Pubkey
    payer_token_a: Pubkey
    payer_token_b: Pubkey
    token_a_program: Pubkey
    token_b_program: Pubkey
    event_authority: Pubkey


def damm_config(index: int, program: Pubkey = DAMM_PROGRAM) -> Pubkey:
    return _pda(program, b"config", index.to_bytes(8, "little"))


def damm_token_vault(mint: Pubkey, pool: Pubkey, program: Pubkey = DAMM_PROGRAM) -> Pubkey:
    return _pda(program, b"token_vault", bytes(mint), bytes(pool))


def _damm_accounts(
    payer: Pubkey,
    position_nft_mint: Pubkey,
    config: Pubkey | None,
    token_a: tuple[Pubkey, Pubkey],
    token_b: tuple[Pubkey, Pubkey],
    program: Pubkey,
) -> tuple[DammPool, list[AccountMeta]]:
    (mint_a, program_a), (mint_b, program_b) = token_a, token_b
    high, low = sorted((bytes(mint_a), bytes(mint_b)), reverse=True)
    pool = (
        _pda(program, b"pool", bytes(config), high, low)
        if config is not None
        else _pda(program, b"cpool", high, low)
    )
    nft = bytes(position_nft_mint)
    accounts = DammPool(
        creator=payer,
        position_nft_mint=position_nft_mint,
        position_nft_account=_pda(program, b"position_nft_account", nft),
        payer=payer,
        config=config,
        pool_authority=_pda(program, b"pool_authority"),
        pool=pool,
        position=_pda(program, b"position", nft),
        token_a_mint=mint_a,
        token_b_mint=mint_b,
        token_a_vault=damm_token_vault(mint_a, pool, program),
        token_b_vault=damm_token_vault(mint_b, pool, program),
        payer_token_a=get_associated_token_address(payer, mint_a, program_a),
        payer_token_b=get_associated_token_address(payer, mint_b, program_b),
        token_a_program=program_a,
        token_b_program=program_b,
        event_authority=_pda(program, b"__event_authority"),
    )
    metas = [
        _meta(payer),  # creator: the position NFT's owner
        _meta(position_nft_mint, writable=True, signer=True),
        _meta(accounts.position_nft_account, writable=True),
        _meta(payer, writable=True, signer=True),
        *([_meta(config)] if config is not None else []),
        _meta(accounts.pool_authority),
        _meta(pool, writable=True),
        _meta(accounts.position, writable=True),
        _meta(mint_a),
        _meta(mint_b),
        _meta(accounts.token_a_vault, writable=True),
        _meta(accounts.token_b_vault, writable=True),
        _meta(accounts.payer_token_a, writable=True),
        _meta(accounts.payer_token_b, writable=True),
        _meta(program_a),
        _meta(program_b),
        _meta(TOKEN_2022_PROGRAM_ID),
        _meta(SYSTEM_PROGRAM),
        _meta(accounts.event_authority),
        _meta(program),
    ]
    return accounts, metas


def _option_u64(value: int | None) -> bytes:
    return b"\x00" if value is None else b"\x01" + struct.pack("<Q", value)


def damm_initialize_pool(
    payer: Pubkey,
    position_nft_mint: Pubkey,
    config: Pubkey,
    token_a: tuple[Pubkey, Pubkey],
    token_b: tuple[Pubkey, Pubkey],
    liquidity: int,
    sqrt_price: int,
    activation_point: int | None = None,
    program: Pubkey = DAMM_PROGRAM,
) -> tuple[Instruction, DammPool]:
    """Meteora DAMM v2 `initialize_pool(InitializePoolParameters)` with a static `config`;
    tokens are (mint, token program). The pool is the PDA
    ["pool", config, max(mint_a, mint_b), min(mint_a, mint_b)]."""
    accounts, metas = _damm_accounts(payer, position_nft_mint, config, token_a, token_b, program)
    data = (
        _discriminator("initialize_pool")
        + liquidity.to_bytes(16, "little")
        + sqrt_price.to_bytes(16, "little")
        + _option_u64(activation_point)
    )
    return Instruction(program, data, metas), accounts


@dataclass(frozen=True)
class CustomizableFees:
    """PoolFeeParameters for initialize_customizable_pool, fees in parts per billion: the base
    fee (`base_fee_mode` 0/1: time scheduler, linear/exponential, over `number_of_period`
    periods of `period_frequency`, each `reduction_factor` less; 2: rate limiter, see
    `rate_limiter`; 3/4: market-cap scheduler, see `market_cap`), and the dynamic fee or not."""

    cliff_fee_numerator: int = 2_500_000  # 0.25 %
    dynamic_fee: dict[str, int] | None = field(default_factory=lambda: dict(DAMM_DYNAMIC_FEE))
    collect_fee_mode: int = 1  # fees in token B (0: both tokens, 2: compounding, x * y = k)
    activation_type: int = 1  # activation by timestamp (0: by slot)
    compounding_fee_bps: int = 0  # the share of fees left in the pool (compounding mode only)
    base_fee_mode: int = 0
    number_of_period: int = 0
    period_frequency: int = 0
    reduction_factor: int = 0
    # Rate limiter: (fee_increment_bps, max_limiter_duration, max_fee_bps, reference_amount).
    rate_limiter: tuple[int, int, int, int] | None = None
    # Market-cap scheduler: (number_of_period, sqrt_price_step_bps,
    # scheduler_expiration_duration, reduction_factor).
    market_cap: tuple[int, int, int, int] | None = None

    def base_fee_data(self) -> bytes:
        """BaseFeeParameters.data ([u8; 30]): the mode's Borsh struct, the mode at byte 26,
        then the compounding fee share (u16) and a padding byte."""
        if self.rate_limiter is not None:
            body = struct.pack("<QHIIQ", self.cliff_fee_numerator, *self.rate_limiter)
        elif self.market_cap is not None:
            periods, step, expiration, reduction = self.market_cap
            body = struct.pack(
                "<QHIIQ", self.cliff_fee_numerator, periods, step, expiration, reduction
            )
        else:
            body = struct.pack(
                "<QHQQ",
                self.cliff_fee_numerator,
                self.number_of_period,
                self.period_frequency,
                self.reduction_factor,
            )
        # cp-amm 0.2.0 reads the compounding fee share from bytes 27-28 of the same array.
        return body + bytes([self.base_fee_mode]) + struct.pack("<HB", self.compounding_fee_bps, 0)

    def encode(self) -> bytes:
        out = self.base_fee_data()
        if self.dynamic_fee is None:
            return out + b"\x00"
        d = self.dynamic_fee
        return (
            out
            + b"\x01"
            + struct.pack("<H", d["bin_step"])
            + d["bin_step_u128"].to_bytes(16, "little")
            + struct.pack(
                "<HHHII",
                d["filter_period"],
                d["decay_period"],
                d["reduction_factor"],
                d["max_volatility_accumulator"],
                d["variable_fee_control"],
            )
        )


def damm_initialize_customizable_pool(
    payer: Pubkey,
    position_nft_mint: Pubkey,
    token_a: tuple[Pubkey, Pubkey],
    token_b: tuple[Pubkey, Pubkey],
    liquidity: int,
    sqrt_price: int,
    activation_point: int | None = None,
    fees: CustomizableFees | None = None,
    sqrt_price_range: tuple[int, int] = (DAMM_MIN_SQRT_PRICE, DAMM_MAX_SQRT_PRICE),
    program: Pubkey = DAMM_PROGRAM,
) -> tuple[Instruction, DammPool]:
    """Meteora DAMM v2 `initialize_customizable_pool(InitializeCustomizablePoolParameters)`:
    the pool's own fees and range, no config. The pool is the PDA
    ["cpool", max(mint_a, mint_b), min(mint_a, mint_b)]."""
    fees = fees or CustomizableFees()
    accounts, metas = _damm_accounts(payer, position_nft_mint, None, token_a, token_b, program)
    data = (
        _discriminator("initialize_customizable_pool")
        + fees.encode()
        + sqrt_price_range[0].to_bytes(16, "little")
        + sqrt_price_range[1].to_bytes(16, "little")
        + b"\x00"  # has_alpha_vault
        + liquidity.to_bytes(16, "little")
        + sqrt_price.to_bytes(16, "little")
        + bytes([fees.activation_type, fees.collect_fee_mode])
        + _option_u64(activation_point)
    )
    return Instruction(program, data, metas), accounts


def damm_price_and_liquidity(
    amount_a: int,
    amount_b: int,
    sqrt_range: tuple[int, int] = (DAMM_MIN_SQRT_PRICE, DAMM_MAX_SQRT_PRICE),
) -> tuple[int, int]:
    """The sqrt price (Q64.64) of amount_b / amount_a and the largest liquidity whose deposit,
    as the program computes it (rounded up), fits both amounts - what the SDK's
    getLiquidityDelta does for a full-range position."""
    low, high = sqrt_range
    sqrt_price = isqrt((amount_b << 128) // amount_a)
    if not low < sqrt_price < high:
        raise ValueError("the price is outside the pool's range")
    liquidity = min(
        amount_a * sqrt_price * high // (high - sqrt_price),
        (amount_b << 128) // (sqrt_price - low),
    )
    while liquidity > 0:
        need_a = -(-liquidity * (high - sqrt_price) // (sqrt_price * high))
        need_b = -(-liquidity * (sqrt_price - low) >> 128)
        if need_a <= amount_a and need_b <= amount_b:
            return sqrt_price, liquidity
        liquidity -= max(1, liquidity >> 64)
    raise ValueError("the amounts are too small for a pool")


# ------------------------------------------------------------------------------ the command
@dataclass(frozen=True)
class Created:
    """What `create_pool` did: the new mint, the pool and the transaction that created it."""

    venue: str
    mint: str
    decimals: int
    supply: int
    quote_mint: str
    pool: str
    signature: str
    slot: int
    mint_signature: str
    accounts: dict[str, str]


@dataclass(frozen=True)
class Quote:
    mint: Pubkey
    decimals: int


def quote_token(symbol: str) -> Quote:
    from local.chain.seed import USDC_DECIMALS, USDC_MINT

    tokens = {"USDC": Quote(USDC_MINT, USDC_DECIMALS), "SOL": Quote(WRAPPED_SOL_MINT, 9)}
    if symbol.upper() not in tokens:
        raise ValueError(f"--quote must be one of {sorted(tokens)}, not {symbol!r}")
    return tokens[symbol.upper()]


class PoolCreationFailed(RuntimeError):
    """The chain refused a transaction; `logs` are the program's."""

    def __init__(self, message: str, logs: list[str] | None = None) -> None:
        super().__init__(message)
        self.logs = logs or []


async def send_and_confirm(
    client: AsyncClient, payer: Keypair, instructions: list[Instruction], signers: list[Keypair]
) -> tuple[Signature, int]:
    """Sign a v0 transaction, send it (with preflight) and wait for `confirmed`; returns its
    signature and slot. A refusal or a failed transaction raises PoolCreationFailed."""
    latest = (await client.get_latest_blockhash(Confirmed)).value
    message = MessageV0.try_compile(payer.pubkey(), instructions, [], latest.blockhash)
    tx = VersionedTransaction(message, [payer, *signers])
    try:
        sent = await client.send_raw_transaction(
            bytes(tx), opts=TxOpts(preflight_commitment=Confirmed)
        )
    except RPCException as exc:
        error = exc.args[0]
        logs = list(getattr(getattr(error, "data", None), "logs", None) or [])
        raise PoolCreationFailed(str(getattr(error, "message", error)), logs) from None
    confirmed = await client.confirm_transaction(
        sent.value,
        Confirmed,
        sleep_seconds=0.1,
        last_valid_block_height=latest.last_valid_block_height,
    )
    status = confirmed.value[0]
    if status is None or status.err is not None:
        raise PoolCreationFailed(f"transaction {sent.value} failed: {status}")
    return sent.value, status.slot


async def cluster_time(client: AsyncClient) -> int:
    """The cluster's unix time, from the Clock sysvar (what the programs compare with)."""
    account = (await client.get_account_info(SYSVAR_CLOCK, Confirmed)).value
    if account is None:
        raise PoolCreationFailed("the chain has no Clock sysvar")
    return int(struct.unpack_from("<q", bytes(account.data), 32)[0])


async def mint_new_token(
    client: AsyncClient, wallet: Keypair, decimals: int, supply: int
) -> tuple[Pubkey, Signature]:
    """A fresh SPL mint (the wallet is its authority) with `supply` in the wallet's ATA."""
    mint = Keypair()
    owner = wallet.pubkey()
    rent = (await client.get_minimum_balance_for_rent_exemption(MINT_LEN)).value
    ata = get_associated_token_address(owner, mint.pubkey())
    instructions = [
        create_account(
            CreateAccountParams(
                from_pubkey=owner,
                to_pubkey=mint.pubkey(),
                lamports=rent,
                space=MINT_LEN,
                owner=TOKEN_PROGRAM_ID,
            )
        ),
        initialize_mint2(
            InitializeMint2Params(
                decimals=decimals,
                program_id=TOKEN_PROGRAM_ID,
                mint=mint.pubkey(),
                mint_authority=owner,
            )
        ),
        create_idempotent_associated_token_account(owner, owner, mint.pubkey(), TOKEN_PROGRAM_ID),
        mint_to(
            MintToParams(
                program_id=TOKEN_PROGRAM_ID,
                mint=mint.pubkey(),
                dest=ata,
                mint_authority=owner,
                amount=supply,
            )
        ),
    ]
    signature, _ = await send_and_confirm(client, wallet, instructions, [mint])
    return mint.pubkey(), signature


def wrap_sol(owner: Pubkey, lamports: int) -> list[Instruction]:
    wsol = get_associated_token_address(owner, WRAPPED_SOL_MINT)
    return [
        create_idempotent_associated_token_account(
            owner, owner, WRAPPED_SOL_MINT, TOKEN_PROGRAM_ID
        ),
        transfer(TransferParams(from_pubkey=owner, to_pubkey=wsol, lamports=lamports)),
        sync_native(SyncNativeParams(program_id=TOKEN_PROGRAM_ID, account=wsol)),
    ]


@dataclass(frozen=True)
class PoolRequest:
    venue: str
    quote: str = "USDC"
    price: Decimal = Decimal(1)
    liquidity: Decimal = Decimal(1_000)
    opens_in: int | None = None
    decimals: int = 6
    supply: Decimal | None = None  # whole tokens minted; default 10 x liquidity
    config_index: int = 0
    customizable: bool = False
    mint: str | None = None  # an existing mint the wallet holds (None: mint a new token)

    def amounts(self) -> tuple[int, int, int]:
        """(token units deposited, quote units deposited, token units minted)."""
        quote = quote_token(self.quote)
        token_units = int(self.liquidity * 10**self.decimals)
        quote_units = int(self.liquidity * self.price * 10**quote.decimals)
        supply = self.supply if self.supply is not None else self.liquidity * 10
        if token_units <= 0 or quote_units <= 0:
            raise ValueError("--liquidity and --price must leave something on both sides")
        return token_units, quote_units, int(supply * 10**self.decimals)


async def create_pool(client: AsyncClient, request: PoolRequest, wallet: Keypair) -> Created:
    """Mint a new token and create a `request.venue` pool of it against the quote token."""
    if request.venue not in VENUES:
        raise ValueError(f"--venue must be one of {VENUES}, not {request.venue!r}")
    quote = quote_token(request.quote)
    token_units, quote_units, supply = request.amounts()
    mint_signature = ""  # no new mint when the request names one
    if request.mint is None:
        mint, minted = await mint_new_token(client, wallet, request.decimals, supply)
        mint_signature = str(minted)
    else:
        mint, supply = Pubkey.from_string(request.mint), 0
    owner = wallet.pubkey()
    opens_at = None
    if request.opens_in:
        opens_at = await cluster_time(client) + request.opens_in
    instructions = [set_compute_unit_limit(COMPUTE_UNIT_LIMIT)]
    if quote.mint == WRAPPED_SOL_MINT:
        instructions += wrap_sol(owner, quote_units + 1)
    signers: list[Keypair] = []
    created: dict[str, Any]
    if request.venue == "raydium_cpmm":
        ix, cpmm = cpmm_initialize(
            owner,
            cpmm_config(request.config_index),
            (mint, TOKEN_PROGRAM_ID, token_units),
            (quote.mint, TOKEN_PROGRAM_ID, quote_units),
            open_time=opens_at or 0,
        )
        pool, created = cpmm.pool, asdict(cpmm)
    else:
        position_nft = Keypair()
        signers.append(position_nft)
        sqrt_price, liquidity = damm_price_and_liquidity(token_units, quote_units)
        token_a, token_b = (mint, TOKEN_PROGRAM_ID), (quote.mint, TOKEN_PROGRAM_ID)
        if request.customizable:
            ix, damm = damm_initialize_customizable_pool(
                owner, position_nft.pubkey(), token_a, token_b, liquidity, sqrt_price, opens_at
            )
        else:
            config = damm_config(request.config_index)
            ix, damm = damm_initialize_pool(
                owner,
                position_nft.pubkey(),
                config,
                token_a,
                token_b,
                liquidity,
                sqrt_price,
                opens_at,
            )
        pool, created = damm.pool, asdict(damm)
    instructions.append(ix)
    signature, slot = await send_and_confirm(client, wallet, instructions, signers)
    return Created(
        venue=request.venue,
        mint=str(mint),
        decimals=request.decimals,
        supply=supply,
        quote_mint=str(quote.mint),
        pool=str(pool),
        signature=str(signature),
        slot=slot,
        mint_signature=mint_signature,
        accounts={name: str(key) for name, key in created.items() if key is not None},
    )


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.pools", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="mint a new token and create a pool for it")
    create.add_argument("--venue", required=True, choices=VENUES)
    create.add_argument("--quote", default="USDC", choices=("USDC", "SOL"), type=str.upper)
    create.add_argument("--price", type=_decimal, default=Decimal(1), help="quote per token")
    create.add_argument(
        "--liquidity", type=_decimal, default=Decimal(1_000), help="whole tokens deposited"
    )
    create.add_argument("--opens-in", type=int, default=None, metavar="SECONDS")
    create.add_argument("--decimals", type=int, default=6, choices=range(10))
    create.add_argument("--supply", type=_decimal, default=None, help="whole tokens minted")
    create.add_argument("--config-index", type=int, default=0)
    create.add_argument(
        "--customizable",
        action="store_true",
        help="DAMM v2: initialize_customizable_pool (its own fees) instead of a config's",
    )
    create.add_argument(
        "--mint", default=None, help="a token minted before (`mint`), instead of a new one"
    )
    create.add_argument("--rpc", default=None, help=f"JSON-RPC URL (default {DEFAULT_RPC})")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    mint = commands.add_parser("mint", help="mint a new token to the wallet (no pool)")
    mint.add_argument("--decimals", type=int, default=6, choices=range(10))
    mint.add_argument("--supply", type=_decimal, default=Decimal(10_000), help="whole tokens")
    mint.add_argument("--rpc", default=None, help=f"JSON-RPC URL (default {DEFAULT_RPC})")
    mint.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _print(created: Created, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(created)), flush=True)
        return
    units = Decimal(created.supply) / 10**created.decimals
    print(f"venue:     {created.venue}")
    print(f"mint:      {created.mint} ({created.decimals} decimals, {units} minted to the wallet)")
    print(f"quote:     {created.quote_mint}")
    print(f"pool:      {created.pool}")
    print(f"signature: {created.signature}")
    print(f"slot:      {created.slot}", flush=True)


def _rpc_url(args: argparse.Namespace) -> str:
    from local.chain import chain_port

    return str(args.rpc or f"http://127.0.0.1:{chain_port()}")


@dataclass(frozen=True)
class Minted:
    mint: str
    decimals: int
    supply: int
    signature: str


async def _mint(args: argparse.Namespace) -> Minted:
    from local.chain.seed import WALLET_KEYPAIR

    units = int(args.supply * 10**args.decimals)
    async with AsyncClient(_rpc_url(args), commitment=Confirmed, timeout=30) as client:
        mint, signature = await mint_new_token(client, WALLET_KEYPAIR, args.decimals, units)
    return Minted(str(mint), args.decimals, units, str(signature))


async def _run(args: argparse.Namespace) -> Created:
    from local.chain.seed import WALLET_KEYPAIR

    rpc = _rpc_url(args)
    request = PoolRequest(
        venue=args.venue,
        quote=args.quote,
        price=args.price,
        liquidity=args.liquidity,
        opens_in=args.opens_in,
        decimals=args.decimals,
        supply=args.supply,
        config_index=args.config_index,
        customizable=args.customizable,
        mint=args.mint,
    )
    request.amounts()  # a bad amount fails before anything is sent
    async with AsyncClient(rpc, commitment=Confirmed, timeout=30) as client:
        return await create_pool(client, request, WALLET_KEYPAIR)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "mint":
            minted = asyncio.run(_mint(args))
            print(json.dumps(asdict(minted)) if args.json else f"mint: {minted.mint}", flush=True)
            return 0
        created = asyncio.run(_run(args))
    except (ValueError, PoolCreationFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        for line in getattr(exc, "logs", []):
            print(f"  {line}", file=sys.stderr)
        return 1
    except (OSError, SolanaRpcException) as exc:
        cause = exc.__cause__ or exc
        print(f"error: cannot reach the chain at {_rpc_url(args)}: {cause}", file=sys.stderr)
        return 1
    _print(created, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
