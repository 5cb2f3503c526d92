"""The venues' client side against the local chain's simulated programs: same state, same answer."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.account import Account
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

from execution.venues import VENUES, slippage_error_codes
from execution.venues import meteora_damm_v2 as damm_layout
from execution.venues import raydium_cpmm as cpmm_layout
from local.chain.programs import PROGRAMS, Meta, ProgramError, create_pool, set_pool_reserves
from local.chain.programs.token import (
    MINT_LEN,
    NATIVE_MINT,
    TOKEN_ACCOUNT_RENT,
    Mint,
    TokenAccount,
    rent_exempt_lamports,
    token_account,
)

CPMM_ID = Pubkey.from_string("DRaycpLY18LhpbydsBWbVJtxpNv9oXPgjRSfpF2bWpYb")
DAMM_ID = Pubkey.from_string("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG")
USDC = Pubkey.from_string("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU")
POOL = Pubkey.from_string("7YttLkHDoNj9wyDur5pM1ejNaAvT9X4eqaYcHQqtj2G5")
USER = Keypair.from_seed(hashlib.sha256(b"test-venues/user").digest()).pubkey()
ATA_SOL = Pubkey.from_string("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM")
ATA_USDC = Pubkey.from_string("HN7cABqLq46Es1jh92dQQisAq662SmxELLLsHHe4YWrH")
VENUE_NAMES = ("raydium_cpmm", "meteora_damm_v2")


class DictView:
    def __init__(self) -> None:
        self.accounts: dict[Pubkey, Account] = {}
        self.writes = 0

    def get(self, key: Pubkey) -> Account | None:
        return self.accounts.get(key)

    def set(self, key: Pubkey, account: Account) -> None:
        self.writes += 1
        self.accounts[key] = account


def _chain(
    venue: str, reserve_sol: int, reserve_usdc: int, fee_ppm: int = 2_500, user_usdc: int = 0
) -> DictView:
    view = DictView()
    for mint, decimals in ((NATIVE_MINT, 9), (USDC, 6)):
        data = Mint(decimals=decimals).pack()
        view.set(mint, Account(rent_exempt_lamports(MINT_LEN), data, TOKEN_PROGRAM_ID, False, 0))
    create_pool(
        view,
        venue,
        pool=POOL,
        mint_a=NATIVE_MINT,
        mint_b=USDC,
        decimals_a=9,
        decimals_b=6,
        reserve_a=reserve_sol,
        reserve_b=reserve_usdc,
        fee_rate_ppm=fee_ppm,
    )
    view.set(ATA_SOL, token_account(NATIVE_MINT, USER, 0))
    view.set(ATA_USDC, token_account(USDC, USER, user_usdc))
    return view


def _fund_sol(view: DictView, lamports: int) -> None:
    view.set(ATA_SOL, token_account(NATIVE_MINT, USER, lamports))


def _quote(view: DictView, venue: str, mint_in: Pubkey, amount: int) -> int:
    v = VENUES[venue]
    pool_account = view.accounts[POOL]
    state = v.decode_pool(bytes(pool_account.data), pool_account.owner, POOL)
    data = {k: bytes(view.accounts[k].data) for k in v.dependent_accounts(state)}
    return v.quote(state, data, mint_in, amount).amount_out


def _swap_ix(view: DictView, venue: str, mint_in: Pubkey, amount: int, min_out: int) -> Instruction:
    v = VENUES[venue]
    pool_account = view.accounts[POOL]
    state = v.decode_pool(bytes(pool_account.data), pool_account.owner, POOL)
    ata_in, ata_out = (ATA_SOL, ATA_USDC) if mint_in == NATIVE_MINT else (ATA_USDC, ATA_SOL)
    return v.swap_instruction(state, USER, ata_in, ata_out, mint_in, amount, min_out)


def _run(view: DictView, ix: Instruction) -> list[str]:
    metas = [Meta(m.pubkey, m.is_signer, m.is_writable) for m in ix.accounts]
    return PROGRAMS[ix.program_id].process(view, metas, bytes(ix.data))


def _amount(view: DictView, key: Pubkey) -> int:
    return TokenAccount.unpack(bytes(view.accounts[key].data)).amount


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_created_pool_decodes(venue: str) -> None:
    view = _chain(venue, 1_000 * 10**9, 150_000 * 10**6)
    account = view.accounts[POOL]
    state = VENUES[venue].decode_pool(bytes(account.data), account.owner, POOL)
    assert set(VENUES[venue].pool_mints(state)) == {NATIVE_MINT, USDC}
    assert account.owner == (CPMM_ID if venue == "raydium_cpmm" else DAMM_ID)
    for dep in VENUES[venue].dependent_accounts(state):
        assert dep in view.accounts
    # 1 SOL is worth about 150 USDC at these reserves, less the 0.25 % fee and the impact.
    out = _quote(view, venue, NATIVE_MINT, 10**9)
    assert 149_000_000 < out < 150_000_000


def test_cpmm_mints_are_ordered_and_vaults_are_native_where_sol() -> None:
    view = _chain("raydium_cpmm", 5 * 10**9, 700 * 10**6)
    state = cpmm_layout.VENUE.decode_pool(bytes(view.accounts[POOL].data), CPMM_ID, POOL)
    assert bytes(state.token_0_mint) < bytes(state.token_1_mint)
    sol_vault = state.token_0_vault if state.token_0_mint == NATIVE_MINT else state.token_1_vault
    vault = view.accounts[sol_vault]
    assert TokenAccount.unpack(bytes(vault.data)).is_native == TOKEN_ACCOUNT_RENT
    assert vault.lamports == TOKEN_ACCOUNT_RENT + 5 * 10**9


@pytest.mark.parametrize("venue", VENUE_NAMES)
@settings(max_examples=60, deadline=None)
@given(
    reserve_sol=st.integers(10**6, 10**15),
    reserve_usdc=st.integers(10**6, 10**15),
    amount=st.integers(1, 10**13),
    fee_ppm=st.sampled_from([100, 2_500, 10_000, 40_000]),
    sol_in=st.booleans(),
)
def test_quote_equals_program_output(
    venue: str, reserve_sol: int, reserve_usdc: int, amount: int, fee_ppm: int, sol_in: bool
) -> None:
    view = _chain(venue, reserve_sol, reserve_usdc, fee_ppm, user_usdc=amount)
    _fund_sol(view, amount)
    mint_in = NATIVE_MINT if sol_in else USDC
    ata_out = ATA_USDC if sol_in else ATA_SOL
    try:
        quoted = _quote(view, venue, mint_in, amount)
    except ValueError:
        # The client refuses the trade (e.g. past a price bound); the program must refuse too.
        with pytest.raises(ProgramError):
            _run(view, _swap_ix(view, venue, mint_in, amount, 0))
        return
    before = _amount(view, ata_out)
    try:
        _run(view, _swap_ix(view, venue, mint_in, amount, 0))
    except ProgramError as exc:
        assert quoted == 0 and exc.code == 2505  # Raydium's require_gt!(amount_received, 0)
        return
    received = _amount(view, ata_out) - before
    assert received == quoted
    # Swap the proceeds back: the state the program wrote (vaults, sqrt price, fees owed) must
    # quote exactly what the program then pays.
    back_in = USDC if sol_in else NATIVE_MINT
    back_out = ATA_SOL if sol_in else ATA_USDC
    try:
        quoted_back = _quote(view, venue, back_in, received)
    except ValueError:
        return
    before_back = _amount(view, back_out)
    try:
        _run(view, _swap_ix(view, venue, back_in, received, 0))
    except ProgramError as exc:
        assert quoted_back == 0 and exc.code in (2505, damm_layout.AMOUNT_IS_ZERO)
        return
    assert _amount(view, back_out) - before_back == quoted_back
    assert quoted_back <= amount  # a round trip never makes money


def test_cpmm_fee_is_rounded_up() -> None:
    view = _chain("raydium_cpmm", 10**12, 10**12, fee_ppm=2_500)
    state = cpmm_layout.VENUE.decode_pool(bytes(view.accounts[POOL].data), CPMM_ID, POOL)
    data = {k: bytes(view.accounts[k].data) for k in cpmm_layout.VENUE.dependent_accounts(state)}
    assert cpmm_layout.VENUE.quote(state, data, USDC, 1).fee_amount == 1  # ceil(0.0025)
    assert cpmm_layout.VENUE.quote(state, data, USDC, 400).fee_amount == 1
    assert cpmm_layout.VENUE.quote(state, data, USDC, 401).fee_amount == 2
    quote = cpmm_layout.VENUE.quote(state, data, USDC, 1_000_000)
    net = 1_000_000 - 2_500
    assert quote.amount_out == net * 10**12 // (10**12 + net)


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_min_out_above_quote_fails_with_slippage_code(venue: str) -> None:
    view = _chain(venue, 1_000 * 10**9, 150_000 * 10**6)
    _fund_sol(view, 10**9)
    quoted = _quote(view, venue, NATIVE_MINT, 10**9)
    writes = view.writes
    with pytest.raises(ProgramError) as exc:
        _run(view, _swap_ix(view, venue, NATIVE_MINT, 10**9, quoted + 1))
    assert exc.value.code in slippage_error_codes()
    assert view.writes == writes
    assert any("ExceededSlippage" in line for line in exc.value.logs)
    _run(view, _swap_ix(view, venue, NATIVE_MINT, 10**9, quoted))  # exactly the quote passes
    assert _amount(view, ATA_USDC) == quoted


def test_slippage_codes_are_the_programs() -> None:
    assert slippage_error_codes() == (6005, 6002)


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_insufficient_balance_fails_and_writes_nothing(venue: str) -> None:
    view = _chain(venue, 1_000 * 10**9, 150_000 * 10**6, user_usdc=999)
    before = dict(view.accounts)
    writes = view.writes
    with pytest.raises(ProgramError) as exc:
        _run(view, _swap_ix(view, venue, USDC, 1_000, 0))
    assert exc.value.code == 1
    assert view.writes == writes
    assert view.accounts == before


def test_cpmm_instruction_layout() -> None:
    view = _chain("raydium_cpmm", 10**12, 10**12)
    ix = _swap_ix(view, "raydium_cpmm", NATIVE_MINT, 5, 7)
    assert ix.program_id == CPMM_ID
    assert bytes(ix.data)[:8] == bytes([143, 190, 90, 218, 196, 30, 51, 222])
    assert bytes(ix.data)[8:] == (5).to_bytes(8, "little") + (7).to_bytes(8, "little")
    state = cpmm_layout.VENUE.decode_pool(bytes(view.accounts[POOL].data), CPMM_ID, POOL)
    keys = [m.pubkey for m in ix.accounts]
    assert len(keys) == 13
    assert keys[0] == USER and ix.accounts[0].is_signer
    assert keys[1] == Pubkey.find_program_address([b"vault_and_lp_mint_auth_seed"], CPMM_ID)[0]
    assert keys[2] == state.amm_config and keys[3] == POOL
    assert keys[4:6] == [ATA_SOL, ATA_USDC]
    sol_vault = state.token_0_vault if state.token_0_mint == NATIVE_MINT else state.token_1_vault
    assert keys[6] == sol_vault
    assert keys[8] == keys[9] == TOKEN_PROGRAM_ID
    assert keys[10:12] == [NATIVE_MINT, USDC]
    assert keys[12] == state.observation_key and ix.accounts[12].is_writable


def test_damm_v2_instruction_layout() -> None:
    view = _chain("meteora_damm_v2", 10**12, 10**12)
    ix = _swap_ix(view, "meteora_damm_v2", USDC, 5, 7)
    assert ix.program_id == DAMM_ID
    assert bytes(ix.data)[:8] == bytes([248, 198, 158, 145, 225, 117, 135, 200])
    assert bytes(ix.data)[8:] == (5).to_bytes(8, "little") + (7).to_bytes(8, "little")
    state = damm_layout.decode(bytes(view.accounts[POOL].data), DAMM_ID, POOL)
    keys = [m.pubkey for m in ix.accounts]
    assert len(keys) == 14
    assert keys[0] == Pubkey.find_program_address([b"pool_authority"], DAMM_ID)[0]
    assert keys[1] == POOL and keys[2:4] == [ATA_USDC, ATA_SOL]
    assert keys[4:8] == [state.token_a_vault, state.token_b_vault, NATIVE_MINT, USDC]
    assert keys[8] == USER and ix.accounts[8].is_signer
    assert keys[9] == keys[10] == TOKEN_PROGRAM_ID
    assert keys[11] == DAMM_ID and not ix.accounts[11].is_writable  # no referral
    assert keys[12] == Pubkey.find_program_address([b"__event_authority"], DAMM_ID)[0]
    assert keys[13] == DAMM_ID


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_set_pool_reserves_moves_the_quote(venue: str) -> None:
    view = _chain(venue, 1_000 * 10**9, 150_000 * 10**6)
    before = _quote(view, venue, NATIVE_MINT, 10**9)
    set_pool_reserves(view, POOL, {NATIVE_MINT: 1_000 * 10**9, USDC: 120_000 * 10**6})
    after = _quote(view, venue, NATIVE_MINT, 10**9)
    assert 119_000_000 < after < 120_000_000 < before
    _fund_sol(view, 10**9)
    with pytest.raises(ProgramError) as exc:  # an order priced before the move now slips
        _run(view, _swap_ix(view, venue, NATIVE_MINT, 10**9, before))
    assert exc.value.code in slippage_error_codes()


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_decode_rejects_wrong_discriminator(venue: str) -> None:
    view = _chain(venue, 10**12, 10**12)
    data = bytearray(bytes(view.accounts[POOL].data))
    data[0] ^= 0xFF
    with pytest.raises(ValueError):
        VENUES[venue].decode_pool(bytes(data), view.accounts[POOL].owner, POOL)
    with pytest.raises(ValueError):  # another venue's pool is not this venue's
        other = VENUE_NAMES[1 - VENUE_NAMES.index(venue)]
        VENUES[other].decode_pool(bytes(view.accounts[POOL].data), DAMM_ID, POOL)


@pytest.mark.parametrize("venue", VENUE_NAMES)
@pytest.mark.parametrize("sol_in", [True, False])
def test_native_sol_swap_moves_lamports_with_amount(venue: str, sol_in: bool) -> None:
    view = _chain(venue, 1_000 * 10**9, 150_000 * 10**6, user_usdc=150 * 10**6)
    _fund_sol(view, 10**9)
    lamports_before = view.accounts[ATA_SOL].lamports
    amount_before = _amount(view, ATA_SOL)
    mint_in = NATIVE_MINT if sol_in else USDC
    logs = _run(view, _swap_ix(view, venue, mint_in, 10**9 if sol_in else 150 * 10**6, 0))
    assert logs[0].startswith("Program log: Instruction: Swap")
    moved = _amount(view, ATA_SOL) - amount_before
    assert moved != 0
    assert view.accounts[ATA_SOL].lamports - lamports_before == moved
    # The pool's wrapped-SOL vault moved the other way, lamports included.
    account = view.accounts[POOL]
    state = VENUES[venue].decode_pool(bytes(account.data), account.owner, POOL)
    vaults = [
        k
        for k in (
            getattr(state, n, None)
            for n in ("token_0_vault", "token_1_vault", "token_a_vault", "token_b_vault")
        )
        if k is not None
    ]
    sol_vault = next(
        k for k in vaults if TokenAccount.unpack(bytes(view.accounts[k].data)).mint == NATIVE_MINT
    )
    vault = view.accounts[sol_vault]
    assert vault.lamports == TOKEN_ACCOUNT_RENT + TokenAccount.unpack(bytes(vault.data)).amount


def test_damm_v2_rejects_unsupported_fee_setups() -> None:
    view = _chain("meteora_damm_v2", 10**12, 10**12)
    data = bytearray(bytes(view.accounts[POOL].data))
    data[damm_layout.DYNAMIC_FEE_INITIALIZED_OFFSET] = 1
    state = damm_layout.decode(bytes(data), DAMM_ID, POOL)
    with pytest.raises(ValueError, match="unsupported"):
        damm_layout.VENUE.quote(state, {}, USDC, 1_000)
