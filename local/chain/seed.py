"""The local chain's fixed starting state: the engine wallet, devnet USDC, WSOL, two SOL/USDC
pools (one per venue), a Token-2022 mint with a 1 % transfer fee (`T22_MINT`) and a T22/USDC
pool on each venue (`T22_POOLS`).

Genesis accounts (written, as `solana-test-validator --account` writes them): the mints, the
engine wallet's token accounts, a market maker's, and the programs' admin-owned configs
(`local.chain.genesis`): Raydium CPMM `AmmConfig`s (index 0: 0.25 %; index 1: 0.25 % with
mainnet index 0's protocol and fund shares; both charge mainnet's 0.15 SOL pool creation fee)
and its create-pool-fee receiver; Meteora DAMM v2 static `Config`s (index 0: 0.25 % with the
dynamic fee, fees in token B; index 1: 1 % in both tokens, a linear fee scheduler from 5 % over
an hour; more, one per fee mode, in `DAMM_CONFIGS`).

The pools are not written: the market maker creates them with the programs' own `initialize` /
`initialize_customizable_pool` transactions (`local.pools`' builders), so every pool account is
the real programs' and sits at its PDA. The DAMM v2 SOL/USDC pool has the dynamic fee and a
linear fee scheduler (0.50 % falling to 0.25 % over 40 hours from the chain's start); the DAMM
v2 T22/USDC pool has the dynamic fee and the rate limiter (buys of T22 above 1,000 USDC pay
more for the first 12 hours), which reads the instructions sysvar; the CPMM T22/USDC pool has
mainnet index 0's protocol and fund shares. The CPMM binary predates creator fees, so no seeded
pool charges one. The same market maker moves prices afterwards with real swaps
(`local.chain.market`).

Every keypair here comes from a fixed, public 32-byte seed. They are throwaway keys for a chain
that only exists on this machine: publishing them is deliberate and harmless.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from solders.account import Account
from solders.compute_budget import set_compute_unit_limit
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_2022_PROGRAM_ID
from spl.token.instructions import get_associated_token_address

from local import pools as builders
from local.chain import genesis
from local.chain.genesis import CpmmConfig, DammConfig, damm_base_fee
from local.chain.ledger import TOKEN_PROGRAM_ID, WSOL_MINT, Ledger, SendError, describe

log = logging.getLogger("local.chain")

LAMPORTS_PER_SOL = 1_000_000_000
USDC_MINT = Pubkey.from_string("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU")  # devnet USDC
USDC_DECIMALS = 6


def _keypair(label: str) -> Keypair:
    # A fixed public seed per role: deterministic addresses, no secret worth keeping.
    return Keypair.from_seed(hashlib.sha256(f"local-chain/{label}".encode()).digest())


WALLET_KEYPAIR = _keypair("engine-wallet")
WALLET = WALLET_KEYPAIR.pubkey()
WALLET_SOL = 100 * LAMPORTS_PER_SOL
WALLET_USDC = 10_000 * 10**USDC_DECIMALS
WALLET_USDC_ATA = get_associated_token_address(WALLET, USDC_MINT)
# The market maker: creates the seeded pools and moves their prices with real swaps.
MARKET_MAKER_KEYPAIR = _keypair("market-maker")
MARKET_MAKER = MARKET_MAKER_KEYPAIR.pubkey()
MARKET_MAKER_SOL = 1_000_000 * LAMPORTS_PER_SOL
MARKET_MAKER_TOKENS = 10**14  # of USDC and of T22, in base units (100 million whole tokens)

FEE_RATE_PPM = 2_500  # 0.25 %
# (SOL deposit, USDC deposit): 150.00 and 151.00 USDC per SOL, so routing has a choice to make.
POOL_RESERVES: dict[str, tuple[int, int]] = {
    "raydium_cpmm": (1_000 * LAMPORTS_PER_SOL, 150_000 * 10**USDC_DECIMALS),
    "meteora_damm_v2": (800 * LAMPORTS_PER_SOL, 120_800 * 10**USDC_DECIMALS),
}

# A Token-2022 mint with a TransferFeeConfig: 1 % (100 bps), a maximum fee no trade reaches.
T22_MINT = _keypair("mint/T22").pubkey()
T22_DECIMALS = 6
T22_FEE_BPS = 100
T22_MAX_FEE = 10**15
WALLET_T22 = 10_000 * 10**T22_DECIMALS
WALLET_T22_ATA = get_associated_token_address(WALLET, T22_MINT, TOKEN_2022_PROGRAM_ID)
# (T22 deposit, USDC deposit): 1.00 and 1.01 USDC per T22.
T22_POOL_RESERVES: dict[str, tuple[int, int]] = {
    "raydium_cpmm": (100_000 * 10**T22_DECIMALS, 100_000 * 10**USDC_DECIMALS),
    "meteora_damm_v2": (100_000 * 10**T22_DECIMALS, 101_000 * 10**USDC_DECIMALS),
}
# Token-2022 extension numbers used here (token-2022 ExtensionType).
_EXT_TRANSFER_FEE_CONFIG = 1
_EXT_TRANSFER_FEE_AMOUNT = 2
_EXT_IMMUTABLE_OWNER = 7
# DAMM v2 dynamic fee as on mainnet's SOL/USDC pool (shared/fixtures/damm_v2/CGPx...).
DYNAMIC_FEE = {
    "bin_step": 1,
    "filter_period": 10,
    "decay_period": 120,
    "reduction_factor": 5_000,
    "variable_fee_control": 239,
    "max_volatility_accumulator": 14_460_000,
}
SCHEDULER_PERIOD_SECONDS = 4 * 3600

# Admin-owned configs (genesis accounts): index -> parameters.
CPMM_CREATE_POOL_FEE = 150_000_000  # lamports: mainnet's AmmConfig charges 0.15 SOL a pool
CPMM_CONFIGS: dict[int, CpmmConfig] = {
    0: CpmmConfig(FEE_RATE_PPM, create_pool_fee=CPMM_CREATE_POOL_FEE),
    1: CpmmConfig(FEE_RATE_PPM, 120_000, 40_000, CPMM_CREATE_POOL_FEE),
    2: CpmmConfig(10_000, 120_000, 40_000, CPMM_CREATE_POOL_FEE),  # 1 %
    3: CpmmConfig(100, create_pool_fee=CPMM_CREATE_POOL_FEE),  # 0.01 %
}
CPMM_CONFIG_ADDRESSES = {i: genesis.cpmm_config_address(i)[0] for i in CPMM_CONFIGS}
_DYNAMIC_CONFIG = {k: v for k, v in DYNAMIC_FEE.items() if k != "bin_step"}
DAMM_CONFIGS: dict[int, DammConfig] = {
    # 0.25 %, the dynamic fee, fees in token B, activation by timestamp.
    0: DammConfig(damm_base_fee(2_500_000), _DYNAMIC_CONFIG, collect_fee_mode=1),
    # Linear time scheduler: 5 % falling by 0.333 % every 5 minutes, 12 times; both tokens.
    1: DammConfig(
        damm_base_fee(50_000_000, 0, 12, (300).to_bytes(8, "little"), 3_333_333),
        collect_fee_mode=0,
    ),
    # Exponential time scheduler by slot: 2 % falling 10 % every 100 slots, 20 times.
    2: DammConfig(
        damm_base_fee(20_000_000, 1, 20, (100).to_bytes(8, "little"), 1_000),
        activation_type=0,
    ),
    # Rate limiter (fees in B): 1 %, plus 0.1 % per reference amount, at most 5 %, 1 hour.
    3: DammConfig(
        damm_base_fee(
            10_000_000,
            2,
            10,
            (3600).to_bytes(4, "little") + (500).to_bytes(4, "little"),
            1_000 * 10**USDC_DECIMALS,
        ),
        _DYNAMIC_CONFIG,
    ),
    # Market-cap scheduler, linear (3) and exponential (4): 3 % falling as the price rises.
    4: DammConfig(
        damm_base_fee(
            30_000_000,
            3,
            10,
            (100).to_bytes(4, "little") + (86_400).to_bytes(4, "little"),
            2_500_000,
        )
    ),
    5: DammConfig(
        damm_base_fee(
            30_000_000,
            4,
            10,
            (100).to_bytes(4, "little") + (86_400).to_bytes(4, "little"),
            1_000,
        ),
        collect_fee_mode=0,
    ),
    # Compounding (collect fee mode 2): 0.3 %, half of the fee left in the pool.
    6: DammConfig(damm_base_fee(3_000_000), collect_fee_mode=2, compounding_fee_bps=5_000),
}
DAMM_CONFIG_ADDRESSES = {i: genesis.damm_config_address(i) for i in DAMM_CONFIGS}


def _sorted_pda_pool(venue: str, mint_a: Pubkey, mint_b: Pubkey) -> Pubkey:
    if venue == "raydium_cpmm":
        config = CPMM_CONFIG_ADDRESSES[1 if T22_MINT in (mint_a, mint_b) else 0]
        low, high = sorted((bytes(mint_a), bytes(mint_b)))
        return Pubkey.find_program_address(
            [b"pool", bytes(config), low, high], genesis.CPMM_PROGRAM
        )[0]
    high, low = sorted((bytes(mint_a), bytes(mint_b)), reverse=True)
    return Pubkey.find_program_address([b"cpool", high, low], genesis.DAMM_PROGRAM)[0]


# venue -> pool address: the programs' PDAs (CPMM: config and mints; DAMM v2: a customizable
# pool, one per pair).
POOLS: dict[str, Pubkey] = {
    venue: _sorted_pda_pool(venue, WSOL_MINT, USDC_MINT) for venue in POOL_RESERVES
}
T22_POOLS: dict[str, Pubkey] = {
    venue: _sorted_pda_pool(venue, T22_MINT, USDC_MINT) for venue in T22_POOL_RESERVES
}


def pack_mint(decimals: int, supply: int = 0, authority: Pubkey | None = None) -> bytes:
    """An SPL Token Mint (82 bytes)."""
    data = bytearray(82)
    if authority is not None:
        data[0:4] = (1).to_bytes(4, "little")
        data[4:36] = bytes(authority)
    data[36:44] = supply.to_bytes(8, "little")
    data[44] = decimals
    data[45] = 1  # is_initialized; freeze authority None
    return bytes(data)


def pack_token_account(
    mint: Pubkey, owner: Pubkey, amount: int, native_reserve: int | None = None
) -> bytes:
    """An initialized SPL Token account (165 bytes): no delegate, no close authority; a WSOL
    account (`native_reserve`: its rent-exempt reserve) is native."""
    data = bytearray(165)
    data[0:32] = bytes(mint)
    data[32:64] = bytes(owner)
    data[64:72] = amount.to_bytes(8, "little")
    data[108] = 1  # AccountState::Initialized
    if native_reserve is not None:
        data[109:113] = (1).to_bytes(4, "little")
        data[113:121] = native_reserve.to_bytes(8, "little")
    return bytes(data)


def token_amount(data: bytes) -> int:
    return int.from_bytes(data[64:72], "little")


def pack_t22_mint(authority: Pubkey) -> bytes:
    """The T22 mint: an 82-byte base, padding to 165, AccountType::Mint, TransferFeeConfig
    (no authorities, nothing withheld, the same fee in its older and newer slots)."""
    fee = (0).to_bytes(8, "little") + T22_MAX_FEE.to_bytes(8, "little")
    fee += T22_FEE_BPS.to_bytes(2, "little")
    config = bytes(64) + bytes(8) + fee + fee
    tlv = _EXT_TRANSFER_FEE_CONFIG.to_bytes(2, "little") + len(config).to_bytes(2, "little")
    base = pack_mint(T22_DECIMALS, supply=10**15, authority=authority)
    return base + bytes(165 - 82) + bytes([1]) + tlv + config


def pack_t22_account(mint: Pubkey, owner: Pubkey, amount: int) -> bytes:
    """A Token-2022 associated token account of a transfer-fee mint, as the ATA program makes
    it: AccountType::Account, ImmutableOwner, TransferFeeAmount (nothing withheld)."""
    tlv = _EXT_IMMUTABLE_OWNER.to_bytes(2, "little") + (0).to_bytes(2, "little")
    tlv += _EXT_TRANSFER_FEE_AMOUNT.to_bytes(2, "little") + (8).to_bytes(2, "little") + bytes(8)
    return pack_token_account(mint, owner, amount) + bytes([2]) + tlv


def _token_accounts(ledger: Ledger, owner: Pubkey, usdc: int, t22: int, wsol: int) -> None:
    """`owner`'s USDC, T22 and (when `wsol`) WSOL associated token accounts."""
    accounts = [
        (
            get_associated_token_address(owner, USDC_MINT),
            pack_token_account(USDC_MINT, owner, usdc),
            TOKEN_PROGRAM_ID,
        ),
        (
            get_associated_token_address(owner, T22_MINT, TOKEN_2022_PROGRAM_ID),
            pack_t22_account(T22_MINT, owner, t22),
            TOKEN_2022_PROGRAM_ID,
        ),
    ]
    for address, data, program in accounts:
        rent = ledger.rent_exempt_minimum(len(data))
        ledger.set_account(address, Account(rent, data, program, False, 0))
    if wsol:
        rent = ledger.rent_exempt_minimum(165)
        data = pack_token_account(WSOL_MINT, owner, wsol, native_reserve=rent)
        ledger.set_account(
            get_associated_token_address(owner, WSOL_MINT),
            Account(rent + wsol, data, TOKEN_PROGRAM_ID, False, 0),
        )


def run(ledger: Ledger, payer: Keypair, instructions: list[Instruction], *signers: Keypair) -> None:
    """Sign and land a transaction now (preflight first); a failure raises SendError."""
    blockhash, _ = ledger.latest_blockhash()
    message = Message.new_with_blockhash(instructions, payer.pubkey(), blockhash)
    tx = VersionedTransaction(message, [payer, *signers])
    record = ledger.land_now(tx)
    if record.err is not None:
        raise SendError(f"seed transaction failed: {describe(record.err)}")


def apply(ledger: Ledger) -> None:
    """Write the genesis accounts into `ledger` (a fresh one), then create the pools with the
    programs' own transactions."""
    mint_authority = _keypair("usdc-mint-authority").pubkey()
    ledger.set_account(
        USDC_MINT,
        Account(
            ledger.rent_exempt_minimum(82),
            pack_mint(USDC_DECIMALS, supply=10**15, authority=mint_authority),
            TOKEN_PROGRAM_ID,
            False,
            0,
        ),
    )
    t22_authority = _keypair("t22-mint-authority").pubkey()
    t22_mint = pack_t22_mint(t22_authority)
    ledger.set_account(
        T22_MINT,
        Account(
            ledger.rent_exempt_minimum(len(t22_mint)), t22_mint, TOKEN_2022_PROGRAM_ID, False, 0
        ),
    )
    ledger.airdrop(WALLET, WALLET_SOL)
    _token_accounts(ledger, WALLET, WALLET_USDC, WALLET_T22, 0)
    ledger.airdrop(MARKET_MAKER, MARKET_MAKER_SOL)
    _token_accounts(
        ledger, MARKET_MAKER, MARKET_MAKER_TOKENS, MARKET_MAKER_TOKENS, MARKET_MAKER_SOL // 2
    )
    fee_owner = _keypair("raydium-cpmm/create-pool-fee-owner").pubkey()
    genesis.write(ledger, ledger.rent_exempt_minimum(165), CPMM_CONFIGS, DAMM_CONFIGS, fee_owner)
    # CPMM opens a pool one second after its creation: create them two seconds in the past, so
    # the seeded pools trade from the chain's first block.
    with ledger.lock:
        ledger.shift_time(-2)
        try:
            start = ledger.clock().unix_timestamp
            for venue in POOL_RESERVES:
                _create(ledger, venue, WSOL_MINT, USDC_MINT, POOL_RESERVES[venue], start)
                _create(ledger, venue, T22_MINT, USDC_MINT, T22_POOL_RESERVES[venue], start)
        finally:
            ledger.shift_time(2)
    ledger.settle_genesis()


def _program_of(mint: Pubkey) -> Pubkey:
    return TOKEN_2022_PROGRAM_ID if mint == T22_MINT else TOKEN_PROGRAM_ID


def _create(
    ledger: Ledger,
    venue: str,
    mint_a: Pubkey,
    mint_b: Pubkey,
    amounts: tuple[int, int],
    start: int,
) -> None:
    maker = MARKET_MAKER_KEYPAIR
    if venue == "raydium_cpmm":
        config = CPMM_CONFIG_ADDRESSES[1 if mint_a == T22_MINT else 0]
        ix, created = builders.cpmm_initialize(
            MARKET_MAKER,
            config,
            (mint_a, _program_of(mint_a), amounts[0]),
            (mint_b, _program_of(mint_b), amounts[1]),
        )
        run(ledger, maker, [set_compute_unit_limit(400_000), ix])
        _check_address(venue, created.pool, mint_a)
        return
    fees = _damm_fees(mint_a, start)
    sqrt_price, liquidity = builders.damm_price_and_liquidity(*amounts)
    position = _keypair(f"position/{venue}/{mint_a}")
    ix, damm = builders.damm_initialize_customizable_pool(
        MARKET_MAKER,
        position.pubkey(),
        (mint_a, _program_of(mint_a)),
        (mint_b, _program_of(mint_b)),
        liquidity,
        sqrt_price,
        activation_point=None,
        fees=fees,
    )
    run(ledger, maker, [set_compute_unit_limit(400_000), ix], position)
    _check_address(venue, damm.pool, mint_a)


def _check_address(venue: str, created: Pubkey, mint_a: Pubkey) -> None:
    """The program made the pool at the address POOLS / T22_POOLS name (the engine's
    configuration and the docs rely on them)."""
    expected = (POOLS if mint_a == WSOL_MINT else T22_POOLS)[venue]
    if created != expected:
        raise RuntimeError(f"the {venue} pool was created at {created}, not at {expected}")


def _damm_fees(mint_a: Pubkey, start: int) -> builders.CustomizableFees:
    dynamic: dict[str, Any] = dict(builders.DAMM_DYNAMIC_FEE)
    if mint_a == WSOL_MINT:
        # Linear fee scheduler from the pool's activation: 0.50 % falling by 0.025 % every
        # 4 hours to 0.25 %.
        return builders.CustomizableFees(
            cliff_fee_numerator=5_000_000,
            dynamic_fee=dynamic,
            number_of_period=10,
            period_frequency=SCHEDULER_PERIOD_SECONDS,
            reduction_factor=250_000,
        )
    # Rate limiter (collect fee mode OnlyB, so it applies to buys of T22 with USDC): 0.25 %,
    # plus 0.1 % for every 1,000 USDC above the first, at most 5 %, for 12 hours.
    return builders.CustomizableFees(
        cliff_fee_numerator=2_500_000,
        dynamic_fee=dynamic,
        base_fee_mode=2,
        rate_limiter=(10, 12 * 3600, 500, 1_000 * 10**USDC_DECIMALS),
    )
