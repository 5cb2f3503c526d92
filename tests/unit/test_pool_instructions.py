"""The pool-creating instructions and the accounts they derive, held against what the programs'
owners published (no I/O beyond the fixture files):
- a real mainnet Raydium CPMM pool (tests/fixtures/raydium_cpmm_mainnet.json): its address,
  vaults, LP mint, observation and config are the PDAs `local.pools` and `local.chain.genesis`
  derive;
- real mainnet Meteora DAMM v2 pools (../shared/fixtures/damm_v2): the vault PDAs;
- the instruction discriminators and account orders: Raydium's SDK (raydium-sdk-V2
  src/raydium/cpmm/instruction.ts `anchorDataBuf.initialize`, makeCreateCpmmPoolInInstruction)
  and the cp_amm IDL the DAMM v2 SDK ships (damm-v2-sdk src/idl/cp_amm.json, cp_amm 0.2.0).
That the real programs accept these instructions is tests/integration/test_real_programs.py's.
"""

from __future__ import annotations

import base64
import json
from dataclasses import fields
from pathlib import Path

import pytest
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

from local.chain.genesis import cpmm_config_address
from local.pools import (
    DAMM_PROGRAM,
    CpmmPool,
    CustomizableFees,
    DammPool,
    cpmm_initialize,
    damm_initialize_customizable_pool,
    damm_initialize_pool,
    damm_price_and_liquidity,
    damm_token_vault,
)
from local.shared import shared_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHARED = shared_path("fixtures", "damm_v2")
CPMM_MAINNET = json.loads((FIXTURES / "raydium_cpmm_mainnet.json").read_text())

# raydium-sdk-V2 cpmm/instruction.ts anchorDataBuf.initialize
CPMM_INITIALIZE = bytes([175, 175, 109, 31, 13, 152, 155, 237])
# cp_amm IDL (damm-v2-sdk src/idl/cp_amm.json): discriminators and account names, in order.
DAMM_INITIALIZE_POOL = bytes([95, 180, 10, 172, 84, 174, 232, 40])
DAMM_INITIALIZE_CUSTOMIZABLE_POOL = bytes([20, 161, 241, 24, 189, 221, 180, 2])
IDL_INITIALIZE_POOL_ACCOUNTS = [
    "creator",
    "position_nft_mint",
    "position_nft_account",
    "payer",
    "config",
    "pool_authority",
    "pool",
    "position",
    "token_a_mint",
    "token_b_mint",
    "token_a_vault",
    "token_b_vault",
    "payer_token_a",
    "payer_token_b",
    "token_a_program",
    "token_b_program",
    "token_2022_program",
    "system_program",
    "event_authority",
    "program",
]


def _mainnet_pool() -> tuple[Pubkey, Pubkey, list[Pubkey], bytes]:
    program = Pubkey.from_string(CPMM_MAINNET["program"])
    pool = Pubkey.from_string(CPMM_MAINNET["pool"])
    data = base64.b64decode(CPMM_MAINNET["accounts"][CPMM_MAINNET["pool"]]["data"])
    keys = [Pubkey.from_bytes(data[8 + 32 * i : 40 + 32 * i]) for i in range(10)]
    return program, pool, keys, data


def test_cpmm_initialize_derives_a_mainnet_pools_accounts() -> None:
    program, pool, keys, data = _mainnet_pool()
    amm_config, creator, vault_0, vault_1, lp_mint, mint_0, mint_1, prog_0, prog_1, obs = keys
    # Given in the wrong order on purpose: the builder puts the smaller mint first.
    ix, derived = cpmm_initialize(
        creator, amm_config, (mint_1, prog_1, 7), (mint_0, prog_0, 5), 0, program
    )
    assert derived.pool == pool
    assert (derived.token_0_mint, derived.token_1_mint) == (mint_0, mint_1)
    assert (derived.token_0_vault, derived.token_1_vault) == (vault_0, vault_1)
    assert derived.lp_mint == lp_mint
    assert derived.observation == obs
    assert bytes(ix.data) == CPMM_INITIALIZE + (5).to_bytes(8, "little") + (7).to_bytes(
        8, "little"
    ) + bytes(8)
    # The config is index 0's PDA, and the program's authority bump is the pool's auth_bump.
    index = int.from_bytes(
        base64.b64decode(CPMM_MAINNET["accounts"][str(amm_config)]["data"])[10:12], "little"
    )
    assert cpmm_config_address(index, program)[0] == amm_config
    authority_bump = Pubkey.find_program_address([b"vault_and_lp_mint_auth_seed"], program)[1]
    assert authority_bump == data[328]


def test_cpmm_initialize_lists_the_accounts_in_the_programs_order() -> None:
    # makeCreateCpmmPoolInInstruction: creator, config, authority, pool, mint A, mint B, LP mint,
    # user vault A, user vault B, user LP account, vault A, vault B, create pool fee account,
    # observation, token program, mint programs A and B, ATA program, system program, rent.
    program, _, keys, _ = _mainnet_pool()
    ix, derived = cpmm_initialize(
        keys[1], keys[0], (keys[5], keys[7], 1), (keys[6], keys[8], 1), 0, program
    )
    named = [m.pubkey for m in ix.accounts]
    expected = [getattr(derived, f.name) for f in fields(CpmmPool)]
    assert named[:14] == expected[:14]
    assert named[15:17] == [derived.token_0_program, derived.token_1_program]
    assert str(named[19]) == "SysvarRent111111111111111111111111111111111"
    assert ix.accounts[3].is_writable  # the pool
    assert not ix.accounts[3].is_signer  # a PDA: no signature
    assert bytes(ix.data)[:8] == CPMM_INITIALIZE
    assert len(ix.accounts) == 20


@pytest.mark.parametrize(
    "name",
    [
        "3u2BK3ykdjv1hAeGQwAkZMxjb4otV5yvW7g72uviCaZZ",
        "CGPxT5d1uf9a8cKVJuZaJAU76t2EfLGbTmRbfvLLZp5j",
    ],
)
def test_damm_vaults_are_the_mainnet_pools_vault_pdas(name: str) -> None:
    data = (SHARED / f"{name}.bin").read_bytes()
    pool = Pubkey.from_string(name)
    mint_a, mint_b = Pubkey.from_bytes(data[168:200]), Pubkey.from_bytes(data[200:232])
    assert damm_token_vault(mint_a, pool) == Pubkey.from_bytes(data[232:264])
    assert damm_token_vault(mint_b, pool) == Pubkey.from_bytes(data[264:296])


def test_damm_instructions_match_the_idl() -> None:
    payer, nft, config = Pubkey.new_unique(), Pubkey.new_unique(), Pubkey.new_unique()
    token_a = (Pubkey.new_unique(), TOKEN_2022_PROGRAM_ID)
    token_b = (Pubkey.new_unique(), TOKEN_PROGRAM_ID)
    sqrt_price, liquidity = damm_price_and_liquidity(10**9, 2 * 10**9)
    ix, derived = damm_initialize_pool(payer, nft, config, token_a, token_b, liquidity, sqrt_price)
    assert bytes(ix.data)[:8] == DAMM_INITIALIZE_POOL
    by_name = dict(zip(IDL_INITIALIZE_POOL_ACCOUNTS, ix.accounts, strict=True))
    for name in ("pool", "position", "token_a_vault", "token_b_vault", "event_authority"):
        assert by_name[name].pubkey == getattr(derived, name)
    assert by_name["program"].pubkey == DAMM_PROGRAM
    assert by_name["position_nft_mint"].is_signer
    # InitializePoolParameters: u128 liquidity, u128 sqrt_price, Option<u64> activation point.
    assert bytes(ix.data)[8:] == (
        liquidity.to_bytes(16, "little") + sqrt_price.to_bytes(16, "little") + b"\x00"
    )

    ix, derived = damm_initialize_customizable_pool(
        payer, nft, token_a, token_b, liquidity, sqrt_price, activation_point=1_234
    )
    assert bytes(ix.data)[:8] == DAMM_INITIALIZE_CUSTOMIZABLE_POOL
    customizable = [n for n in IDL_INITIALIZE_POOL_ACCOUNTS if n != "config"]
    assert len(ix.accounts) == len(customizable)
    assert derived.config is None
    # PoolFeeParameters (BaseFeeParameters' 30 bytes, the dynamic fee), the price range, no
    # alpha vault, liquidity, sqrt price, activation type, collect fee mode, activation point.
    data = bytes(ix.data)[8:]
    assert data[:8] == (2_500_000).to_bytes(8, "little")
    assert data[30] == 1  # Some(dynamic fee)
    tail = liquidity.to_bytes(16, "little") + sqrt_price.to_bytes(16, "little")
    tail += bytes([1, 1]) + b"\x01" + (1_234).to_bytes(8, "little")
    assert data.endswith(tail)
    assert CustomizableFees().dynamic_fee is not None
    assert [f.name for f in fields(DammPool)][:3] == IDL_INITIALIZE_POOL_ACCOUNTS[:3]
