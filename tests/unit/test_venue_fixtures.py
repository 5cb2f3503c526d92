"""Layouts and instruction encoding against a real mainnet Raydium CPMM pool.

The accounts come from the program's own repository (raydium-io/raydium-cp-swap,
svm-tests/fixtures/cpmm_wsol_pump.json: a WSOL / Token-2022 pool dumped at slot 446605268), so
they check our offsets against bytes the real program wrote, not against our own encoder.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from execution.venues import VENUES

FIXTURE = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "raydium_cpmm_mainnet.json").read_text()
)
ACCOUNTS = {
    Pubkey.from_string(k): (Pubkey.from_string(v["owner"]), base64.b64decode(v["data"]))
    for k, v in FIXTURE["accounts"].items()
}
POOL = Pubkey.from_string(FIXTURE["pool"])
CONFIG = Pubkey.from_string("D4FPEruKEHrG5TenZ2mpDGEfu1iUvTiqBxvpU8HLBvC2")
WSOL_VAULT = Pubkey.from_string("47KLLXNKUMuJBgis11NWmZ9iNPW2wHX2ZKQKUDCL3LA6")
PUMP_VAULT = Pubkey.from_string("5Ap19VZWbmP9NnvFabeyGzWjTqXFcFLPcuFDsNyAB9Sg")
WSOL = Pubkey.from_string("So11111111111111111111111111111111111111112")
PUMP = Pubkey.from_string("73edX6xoGY4v5y2hzuKdrUbJXLntqgmo74au1Ki1pump")
TOKEN = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022 = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
# Raydium's published mainnet CPMM authority (PDA of "vault_and_lp_mint_auth_seed").
MAINNET_AUTHORITY = Pubkey.from_string("GpMZbSM2GgvTKHJirzeGfMFoaZ8UR2X7F4v8vHTvxFbL")
CPMM = VENUES["raydium_cpmm"]


def state():  # type: ignore[no-untyped-def]
    owner, data = ACCOUNTS[POOL]
    return CPMM.decode_pool(data, owner, POOL)


def test_a_real_pool_decodes_to_the_accounts_it_names() -> None:
    pool = state()
    assert pool.program_id == Pubkey.from_string(FIXTURE["program"])
    assert pool.amm_config == CONFIG
    assert (pool.token_0_vault, pool.token_1_vault) == (WSOL_VAULT, PUMP_VAULT)
    assert (pool.token_0_mint, pool.token_1_mint) == (WSOL, PUMP)
    assert (pool.token_0_program, pool.token_1_program) == (TOKEN, TOKEN_2022)
    assert (pool.mint_0_decimals, pool.mint_1_decimals) == (9, 6)
    assert CPMM.pool_mints(pool) == (WSOL, PUMP)
    assert set(CPMM.dependent_accounts(pool)) == {CONFIG, WSOL_VAULT, PUMP_VAULT}
    # Each vault is an SPL token account of its mint, as the pool's own bytes say.
    for vault, mint in ((WSOL_VAULT, WSOL), (PUMP_VAULT, PUMP)):
        assert Pubkey(ACCOUNTS[vault][1][:32]) == mint


def test_the_real_fee_config_is_read_at_its_offsets() -> None:
    trade, protocol, fund = struct.unpack_from("<QQQ", ACCOUNTS[CONFIG][1], 12)
    assert (trade, protocol, fund) == (2_500, 120_000, 40_000)  # 0.25 %, 12 %, 4 % of it


def test_a_quote_on_the_real_pool_follows_the_published_math() -> None:
    pool = state()
    data = {k: d for k, (_, d) in ACCOUNTS.items()}
    vault_amount = [struct.unpack_from("<Q", data[v], 64)[0] for v in (WSOL_VAULT, PUMP_VAULT)]
    r_in = vault_amount[0] - pool.protocol_fees_token_0 - pool.fund_fees_token_0
    r_out = vault_amount[1] - pool.protocol_fees_token_1 - pool.fund_fees_token_1
    amount_in = 10**9
    fee = -(-amount_in * 2_500 // 1_000_000)
    expected = (amount_in - fee) * r_out // (r_in + amount_in - fee)
    quote = CPMM.quote(pool, data, WSOL, amount_in)
    assert (quote.amount_out, quote.fee_amount) == (expected, fee)


def test_the_swap_instruction_names_the_real_authority_and_accounts() -> None:
    pool = state()
    user, ata_in, ata_out = Keypair().pubkey(), Keypair().pubkey(), Keypair().pubkey()
    ix = CPMM.swap_instruction(pool, user, ata_in, ata_out, WSOL, 10**9, 123)
    assert ix.program_id == pool.program_id
    assert [m.pubkey for m in ix.accounts] == [
        user,
        MAINNET_AUTHORITY,
        CONFIG,
        POOL,
        ata_in,
        ata_out,
        WSOL_VAULT,
        PUMP_VAULT,
        TOKEN,
        TOKEN_2022,
        WSOL,
        PUMP,
        pool.observation_key,
    ]
    assert [m.is_signer for m in ix.accounts] == [True] + [False] * 12
    assert bytes(ix.data) == bytes([143, 190, 90, 218, 196, 30, 51, 222]) + struct.pack(
        "<QQ", 10**9, 123
    )
    _, bump = Pubkey.find_program_address([b"vault_and_lp_mint_auth_seed"], pool.program_id)
    assert bump == pool.auth_bump  # the bump the real program stored in the pool
