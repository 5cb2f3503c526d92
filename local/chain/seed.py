"""The local chain's fixed starting state: the engine wallet, devnet USDC, WSOL and two SOL/USDC
pools (one per venue), all at fixed addresses so the engine's configuration never changes.

Every keypair here comes from a fixed, public 32-byte seed. They are throwaway keys for a chain
that only exists on this machine: publishing them is deliberate and harmless.
"""

from __future__ import annotations

import hashlib
import logging

from solders.account import Account
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from local.chain.ledger import TOKEN_PROGRAM_ID, WSOL_MINT, Ledger, programs_module

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
    programs = programs_module()
    if not hasattr(programs, "create_pool"):
        log.warning("local.chain.programs has no create_pool: the local chain has no pools")
        return
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
            )
