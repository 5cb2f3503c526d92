"""The local chain's fixed starting state: the engine wallet, devnet USDC, WSOL, two SOL/USDC
pools (one per venue), a Token-2022 mint with a 1 % transfer fee (`T22_MINT`) and a T22/USDC
pool on each venue (`T22_POOLS`), all at fixed addresses so the engine's configuration never
changes.

Before the pools it seeds what creating a pool by instruction needs (`seed_configs`): Raydium
CPMM `AmmConfig`s at their PDAs (index 0: 0.25 %, the SOL/USDC pool's; index 1: mainnet index 0's
protocol, fund and creator rates, the T22/USDC pool's; both charge mainnet's 0.15 SOL pool
creation fee) with the program's create-pool fee receiver (a WSOL account at its fixed
address), and Meteora DAMM v2 static `Config`s at theirs (index 0: 0.25 % with the dynamic fee,
fees in token B; index 1: 1 % in both tokens, a linear fee scheduler from 5 % over an hour).

The pools exercise what real pools carry: the DAMM v2 SOL/USDC pool has the dynamic fee on and
a linear fee scheduler (0.50 % falling to 0.25 % over 40 hours from the chain's start); the
DAMM v2 T22/USDC pool has the dynamic fee and the rate limiter (buys of T22 above 1,000 USDC pay
more for the first 12 hours), which needs the instructions sysvar in the swap; the CPMM T22/USDC
pool has mainnet's index-0 protocol, fund and creator fee rates with the creator fee on.

Every keypair here comes from a fixed, public 32-byte seed. They are throwaway keys for a chain
that only exists on this machine: publishing them is deliberate and harmless.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from solders.account import Account
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_2022_PROGRAM_ID
from spl.token.instructions import get_associated_token_address

from local.chain.ledger import TOKEN_PROGRAM_ID, WSOL_MINT, Ledger, programs_module
from local.chain.programs import meteora_damm_v2, raydium_cpmm
from local.chain.programs.token import token_account

log = logging.getLogger("local.chain")

LAMPORTS_PER_SOL = 1_000_000_000
USDC_MINT = Pubkey.from_string("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU")  # devnet USDC
USDC_DECIMALS = 6
SOL_DECIMALS = 9


def _keypair(label: str) -> Keypair:
    # A fixed public seed per role: deterministic addresses, no secret worth keeping.
    return Keypair.from_seed(hashlib.sha256(f"local-chain/{label}".encode()).digest())


WALLET_KEYPAIR = _keypair("engine-wallet")
WALLET = WALLET_KEYPAIR.pubkey()
WALLET_SOL = 100 * LAMPORTS_PER_SOL
WALLET_USDC = 10_000 * 10**USDC_DECIMALS
WALLET_USDC_ATA = get_associated_token_address(WALLET, USDC_MINT)

# venue -> pool state address
POOLS: dict[str, Pubkey] = {
    "raydium_cpmm": _keypair("pool/raydium_cpmm/SOL-USDC").pubkey(),
    "meteora_damm_v2": _keypair("pool/meteora_damm_v2/SOL-USDC").pubkey(),
}
FEE_RATE_PPM = 2_500  # 0.25 %
# (SOL reserve, USDC reserve): 150.00 and 151.00 USDC per SOL, so routing has a choice to make.
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
T22_POOLS: dict[str, Pubkey] = {
    "raydium_cpmm": _keypair("pool/raydium_cpmm/T22-USDC").pubkey(),
    "meteora_damm_v2": _keypair("pool/meteora_damm_v2/T22-USDC").pubkey(),
}
# (T22 reserve, USDC reserve): 1.00 and 1.01 USDC per T22.
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

# Configs for pools created by instruction (local.pools): index -> parameters.
CPMM_CREATE_POOL_FEE = 150_000_000  # lamports: mainnet's AmmConfig charges 0.15 SOL a pool
CPMM_CONFIGS: dict[int, dict[str, int]] = {
    0: {"trade_fee_rate": FEE_RATE_PPM},
    1: {
        "trade_fee_rate": FEE_RATE_PPM,
        "protocol_fee_rate": 120_000,
        "fund_fee_rate": 40_000,
        "creator_fee_rate": 500,
    },
}
CPMM_ADMIN = Pubkey.from_string("DRayqG9RXYi8WHgWEmRQGrUWRWbhjYWYkCRJDd6JBBak")  # devnet admin
CPMM_CONFIG_ADDRESSES = {i: raydium_cpmm.amm_config_address(i)[0] for i in CPMM_CONFIGS}
DAMM_CONFIGS: dict[int, dict[str, Any]] = {
    0: {
        "base_fee": {"cliff_fee_numerator": 2_500_000, "base_fee_mode": 0},
        "dynamic_fee": {k: v for k, v in DYNAMIC_FEE.items() if k != "bin_step"},
        "collect_fee_mode": 1,
        "activation_type": 1,
    },
    1: {
        "base_fee": {
            "cliff_fee_numerator": 50_000_000,
            "base_fee_mode": 0,
            "number_of_period": 12,
            "period_frequency": 300,
            "reduction_factor": 3_333_333,
        },
        "collect_fee_mode": 0,
        "activation_type": 1,
    },
}
DAMM_CONFIG_ADDRESSES = {i: meteora_damm_v2.config_address(i) for i in DAMM_CONFIGS}


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


def pack_token_account(mint: Pubkey, owner: Pubkey, amount: int) -> bytes:
    """An initialized SPL Token account (165 bytes): no delegate, not native, no close authority."""
    data = bytearray(165)
    data[0:32] = bytes(mint)
    data[32:64] = bytes(owner)
    data[64:72] = amount.to_bytes(8, "little")
    data[108] = 1  # AccountState::Initialized
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


def apply(ledger: Ledger) -> None:
    """Write the seed into `ledger` (a fresh one)."""
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
    ledger.airdrop(WALLET, WALLET_SOL)
    ledger.set_account(
        WALLET_USDC_ATA,
        Account(
            ledger.rent_exempt_minimum(165),
            pack_token_account(USDC_MINT, WALLET, WALLET_USDC),
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
    t22_ata = pack_t22_account(T22_MINT, WALLET, WALLET_T22)
    ledger.set_account(
        WALLET_T22_ATA,
        Account(ledger.rent_exempt_minimum(len(t22_ata)), t22_ata, TOKEN_2022_PROGRAM_ID, False, 0),
    )
    programs = programs_module()
    with ledger.lock:
        seed_configs(ledger)
    if not hasattr(programs, "create_pool"):
        log.warning("local.chain.programs has no create_pool: the local chain has no pools")
        return
    start = ledger.clock().unix_timestamp
    with ledger.lock:
        view = ledger.view()
        for venue, pool in POOLS.items():
            sol, usdc = POOL_RESERVES[venue]
            programs.create_pool(
                view,
                venue,
                pool=pool,
                mint_a=WSOL_MINT,
                mint_b=USDC_MINT,
                decimals_a=SOL_DECIMALS,
                decimals_b=USDC_DECIMALS,
                reserve_a=sol,
                reserve_b=usdc,
                fee_rate_ppm=FEE_RATE_PPM,
                **_sol_usdc_options(venue, start),
            )
        for venue, pool in T22_POOLS.items():
            t22, usdc = T22_POOL_RESERVES[venue]
            programs.create_pool(
                view,
                venue,
                pool=pool,
                mint_a=T22_MINT,
                mint_b=USDC_MINT,
                decimals_a=T22_DECIMALS,
                decimals_b=USDC_DECIMALS,
                reserve_a=t22,
                reserve_b=usdc,
                fee_rate_ppm=FEE_RATE_PPM,
                **_t22_options(venue, start),
            )


def seed_configs(ledger: Ledger) -> None:
    """The programs' configs at their PDAs, and CPMM's create-pool fee receiver (a WSOL token
    account; its owner here is a fixed local key, since only its address is checked)."""
    view = ledger.view()
    for index, rates in CPMM_CONFIGS.items():
        raydium_cpmm.write_amm_config(
            view,
            index,
            trade_fee_rate=rates["trade_fee_rate"],
            protocol_fee_rate=rates.get("protocol_fee_rate", 0),
            fund_fee_rate=rates.get("fund_fee_rate", 0),
            creator_fee_rate=rates.get("creator_fee_rate", 0),
            create_pool_fee=CPMM_CREATE_POOL_FEE,
            owner=CPMM_ADMIN,
        )
    fee_owner = _keypair("raydium-cpmm/create-pool-fee-owner").pubkey()
    receiver = token_account(WSOL_MINT, fee_owner, 0, TOKEN_PROGRAM_ID)
    ledger.set_account(raydium_cpmm.CREATE_POOL_FEE_RECEIVER, receiver)
    for index, parameters in DAMM_CONFIGS.items():
        meteora_damm_v2.write_config(view, index, **parameters)


def _sol_usdc_options(venue: str, start: int) -> dict[str, Any]:
    if venue != "meteora_damm_v2":
        return {}
    # Linear fee scheduler by timestamp from the chain's start: 0.50 % falling by 0.025 % every
    # 4 hours to 0.25 %; the cliff fee is fee_rate_ppm's job, so it is passed as the base fee.
    return {
        "activation_type": 1,
        "activation_point": start,
        "base_fee": {
            "cliff_fee_numerator": 5_000_000,
            "base_fee_mode": 0,
            "number_of_period": 10,
            "period_frequency": SCHEDULER_PERIOD_SECONDS,
            "reduction_factor": 250_000,
        },
        "dynamic_fee": dict(DYNAMIC_FEE, last_update_timestamp=start),
    }


def _t22_options(venue: str, start: int) -> dict[str, Any]:
    if venue == "raydium_cpmm":
        # AmmConfig index 0 on mainnet: 0.25 % trade fee, 12 % / 4 % of it to protocol / fund,
        # a 0.05 % creator fee; this pool charges it on the input side.
        return {
            "protocol_fee_rate": 120_000,
            "fund_fee_rate": 40_000,
            "creator_fee_rate": 500,
            "enable_creator_fee": True,
            "creator_fee_on": 0,
            "open_time": start,
        }
    # Rate limiter (collect fee mode OnlyB, so it applies to buys of T22 with USDC): 0.25 %,
    # plus 0.1 % for every 1,000 USDC above the first, at most 5 %, for 12 hours.
    return {
        "collect_fee_mode": 1,
        "activation_type": 1,
        "activation_point": start,
        "base_fee": {
            "base_fee_mode": 2,
            "fee_increment_bps": 10,
            "max_limiter_duration": 12 * 3600,
            "max_fee_bps": 500,
            "reference_amount": 1_000 * 10**USDC_DECIMALS,
        },
        "dynamic_fee": dict(DYNAMIC_FEE, last_update_timestamp=start),
    }
