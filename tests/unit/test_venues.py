"""The venues' quotes against the local chain's simulated programs: same state, same clock,
same answer; and what each program refuses, the quote refuses too.

The engine's quoting code (layers/solana/execution/venues) and the simulated programs
(local/chain/programs) are two independent ports of the programs' sources; the property tests
run both on random pools, fees, clocks, Token-2022 transfer fees and amounts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from solders.account import Account
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

from execution.venues import (
    SYSVAR_CLOCK,
    VENUES,
    Clock,
    MintNotInPool,
    NotAPool,
    PoolNotTradable,
)
from execution.venues import meteora_damm_v2 as damm_layout
from execution.venues import raydium_cpmm as cpmm_layout
from local.chain.programs import PROGRAMS, Meta, ProgramError, create_pool, set_pool_reserves
from local.chain.programs.token import (
    MINT_LEN,
    NATIVE_MINT,
    TOKEN_ACCOUNT_RENT,
    Mint,
    TokenAccount,
    TransferFee,
    mint_2022,
    rent_exempt_lamports,
    token_account,
    transfer_fee_config_value,
    withheld_amount,
)

CPMM_ID = Pubkey.from_string("DRaycpLY18LhpbydsBWbVJtxpNv9oXPgjRSfpF2bWpYb")
DAMM_ID = Pubkey.from_string("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG")
SYSVAR_OWNER = Pubkey.from_string("Sysvar1111111111111111111111111111111111111")
USDC = Pubkey.from_string("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU")
POOL = Pubkey.from_string("7YttLkHDoNj9wyDur5pM1ejNaAvT9X4eqaYcHQqtj2G5")
USER = Keypair.from_seed(hashlib.sha256(b"test-venues/user").digest()).pubkey()
ATA_A = Pubkey.from_string("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM")
ATA_B = Pubkey.from_string("HN7cABqLq46Es1jh92dQQisAq662SmxELLLsHHe4YWrH")
T22_A = Keypair.from_seed(hashlib.sha256(b"test-venues/t22-a").digest()).pubkey()
T22_B = Keypair.from_seed(hashlib.sha256(b"test-venues/t22-b").digest()).pubkey()
VENUE_NAMES = ("raydium_cpmm", "meteora_damm_v2")
NOW = 1_800_000_000
CLOCK = Clock(
    slot=400_000_000,
    epoch_start_timestamp=NOW - 100,
    epoch=900,
    leader_schedule_epoch=901,
    unix_timestamp=NOW,
)


class DictView:
    def __init__(self) -> None:
        self.accounts: dict[Pubkey, Account] = {}
        self.writes = 0

    def get(self, key: Pubkey) -> Account | None:
        return self.accounts.get(key)

    def set(self, key: Pubkey, account: Account) -> None:
        self.writes += 1
        self.accounts[key] = account


@dataclass
class Chain:
    """A pool of `venue` between mint A and mint B, a user holding both, and a clock."""

    venue: str
    view: DictView
    mint_a: Pubkey
    mint_b: Pubkey
    clock: Clock
    programs: dict[Pubkey, Pubkey] = field(default_factory=dict)

    def set_clock(self, clock: Clock) -> None:
        self.clock = clock
        self.view.set(SYSVAR_CLOCK, Account(1, clock.to_account_data(), SYSVAR_OWNER, False, 0))

    def state(self) -> Any:
        account = self.view.accounts[POOL]
        return VENUES[self.venue].decode_pool(bytes(account.data), account.owner, POOL)

    def quote(self, mint_in: Pubkey, amount: int) -> int:
        data = {k: bytes(a.data) for k, a in self.view.accounts.items()}
        return VENUES[self.venue].quote(self.state(), data, mint_in, amount, self.clock).amount_out

    def atas(self, mint_in: Pubkey) -> tuple[Pubkey, Pubkey]:
        return (ATA_A, ATA_B) if mint_in == self.mint_a else (ATA_B, ATA_A)

    def swap_ix(self, mint_in: Pubkey, amount: int, min_out: int) -> Instruction:
        ata_in, ata_out = self.atas(mint_in)
        return VENUES[self.venue].swap_instruction(
            self.state(), USER, ata_in, ata_out, mint_in, amount, min_out
        )

    def run(self, ix: Instruction) -> list[str]:
        metas = [Meta(m.pubkey, m.is_signer, m.is_writable) for m in ix.accounts]
        return PROGRAMS[ix.program_id].process(self.view, metas, bytes(ix.data))

    def balance(self, key: Pubkey) -> int:
        return TokenAccount.unpack(bytes(self.view.accounts[key].data)).amount

    def fund(self, mint: Pubkey, amount: int) -> None:
        key = ATA_A if mint == self.mint_a else ATA_B
        self.view.set(key, _user_account(self, mint, amount))


def _user_account(chain: Chain, mint: Pubkey, amount: int) -> Account:
    program = chain.programs.get(mint, TOKEN_PROGRAM_ID)
    extensions = [(7, b""), (2, bytes(8))] if program == TOKEN_2022_PROGRAM_ID else None
    return token_account(mint, USER, amount, program, extensions)


def _mint(
    view: DictView, key: Pubkey, decimals: int, fee: tuple[TransferFee, TransferFee] | None
) -> Pubkey:
    if fee is None:
        view.set(
            key,
            Account(
                rent_exempt_lamports(MINT_LEN), Mint(decimals).pack(), TOKEN_PROGRAM_ID, False, 0
            ),
        )
        return TOKEN_PROGRAM_ID
    data = mint_2022(Mint(decimals), [(1, transfer_fee_config_value(*fee))])
    view.set(key, Account(rent_exempt_lamports(len(data)), data, TOKEN_2022_PROGRAM_ID, False, 0))
    return TOKEN_2022_PROGRAM_ID


def make_chain(
    venue: str,
    reserve_a: int,
    reserve_b: int,
    fee_ppm: int = 2_500,
    *,
    fee_a: tuple[TransferFee, TransferFee] | None = None,
    fee_b: tuple[TransferFee, TransferFee] | None = None,
    clock: Clock = CLOCK,
    user_a: int = 0,
    user_b: int = 0,
    **options: Any,
) -> Chain:
    """Mint A is wrapped SOL (or a Token-2022 mint when `fee_a`), mint B USDC (or Token-2022)."""
    view = DictView()
    mint_a = T22_A if fee_a is not None else NATIVE_MINT
    mint_b = T22_B if fee_b is not None else USDC
    chain = Chain(venue, view, mint_a, mint_b, clock)
    chain.programs[mint_a] = _mint(view, mint_a, 9, fee_a)
    chain.programs[mint_b] = _mint(view, mint_b, 6, fee_b)
    chain.set_clock(clock)
    create_pool(
        view,
        venue,
        pool=POOL,
        mint_a=mint_a,
        mint_b=mint_b,
        decimals_a=9,
        decimals_b=6,
        reserve_a=reserve_a,
        reserve_b=reserve_b,
        fee_rate_ppm=fee_ppm,
        **options,
    )
    chain.fund(mint_a, user_a)
    chain.fund(mint_b, user_b)
    return chain


def sol_usdc(
    venue: str, reserve_sol: int, reserve_usdc: int, fee_ppm: int = 2_500, user_usdc: int = 0
) -> Chain:
    return make_chain(venue, reserve_sol, reserve_usdc, fee_ppm, user_b=user_usdc)


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_created_pool_decodes(venue: str) -> None:
    chain = sol_usdc(venue, 1_000 * 10**9, 150_000 * 10**6)
    state = chain.state()
    assert set(VENUES[venue].pool_mints(state)) == {NATIVE_MINT, USDC}
    assert chain.view.accounts[POOL].owner == (CPMM_ID if venue == "raydium_cpmm" else DAMM_ID)
    for dep in VENUES[venue].dependent_accounts(state):
        assert dep in chain.view.accounts
    # 1 SOL is worth about 150 USDC at these reserves, less the 0.25 % fee and the impact.
    assert 149_000_000 < chain.quote(NATIVE_MINT, 10**9) < 150_000_000


def test_cpmm_mints_are_ordered_and_vaults_are_native_where_sol() -> None:
    chain = sol_usdc("raydium_cpmm", 5 * 10**9, 700 * 10**6)
    state = chain.state()
    assert bytes(state.token_0_mint) < bytes(state.token_1_mint)
    sol_vault = state.token_0_vault if state.token_0_mint == NATIVE_MINT else state.token_1_vault
    vault = chain.view.accounts[sol_vault]
    assert TokenAccount.unpack(bytes(vault.data)).is_native == TOKEN_ACCOUNT_RENT
    assert vault.lamports == TOKEN_ACCOUNT_RENT + 5 * 10**9


# ---------------------------------------------------------------------------------------------
# The property: the program pays exactly the quote, or both refuse.
# ---------------------------------------------------------------------------------------------
def transfer_fees() -> st.SearchStrategy[tuple[TransferFee, TransferFee] | None]:
    fee = st.builds(
        TransferFee,
        epoch=st.integers(0, 1_000),
        maximum_fee=st.one_of(st.integers(0, 10**6), st.just(10**18)),
        basis_points=st.one_of(st.integers(0, 500), st.integers(0, 500), st.just(10_000)),
    )
    return st.one_of(st.none(), st.tuples(fee, fee))


def clocks() -> st.SearchStrategy[Clock]:
    return st.builds(
        Clock,
        slot=st.integers(0, 10**9),
        epoch_start_timestamp=st.just(0),
        epoch=st.integers(0, 1_000),
        leader_schedule_epoch=st.just(0),
        unix_timestamp=st.integers(NOW - 10**6, NOW + 10**6),
    )


@st.composite
def cpmm_options(draw: st.DrawFn, clock: Clock) -> dict[str, Any]:
    return {
        "protocol_fee_rate": draw(st.sampled_from([0, 120_000, 500_000])),
        "fund_fee_rate": draw(st.sampled_from([0, 40_000])),
        "creator_fee_rate": draw(st.sampled_from([0, 500, 10_000])),
        "enable_creator_fee": draw(st.booleans()),
        "creator_fee_on": draw(st.sampled_from([0, 1, 2, 0, 1, 2, 3])),
        "open_time": max(
            clock.unix_timestamp + draw(st.sampled_from([-(10**6)] * 4 + [-1, 0, 1, 3600])), 0
        ),
        "status": draw(st.sampled_from([0, 0, 0, 0, 0, 1, 2, 4])),
        "fees_owed": draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "protocol_fees_token_0": st.integers(0, 10**9),
                    "fund_fees_token_1": st.integers(0, 10**9),
                    "creator_fees_token_0": st.integers(0, 10**9),
                },
            )
        ),
    }


@st.composite
def damm_options(draw: st.DrawFn, clock: Clock) -> dict[str, Any]:
    activation_type = draw(st.sampled_from([0, 1]))
    now = clock.slot if activation_type == 0 else clock.unix_timestamp
    offsets = [-(10**6), -(10**6), -3_600, -3_600, -100, -1, 0, 1, 500]
    activation_point = max(now + draw(st.sampled_from(offsets)), 0)
    mode = draw(st.sampled_from([0, 1, 2, 3, 4]))
    cliff = draw(st.sampled_from([100_000, 2_500_000, 10_000_000, 500_000_000]))
    base: dict[str, int] = {"base_fee_mode": mode, "cliff_fee_numerator": cliff}
    if mode in (0, 1):
        if draw(st.booleans()):
            periods = draw(st.integers(1, 200))
            reduction = (
                draw(st.integers(1, cliff // periods)) if mode == 0 else draw(st.integers(1, 9_999))
            )
            base |= {
                "number_of_period": periods,
                "period_frequency": draw(st.integers(1, 10_000)),
                "reduction_factor": reduction,
            }
    elif mode == 2:
        base |= {
            "fee_increment_bps": draw(st.integers(1, 500)),
            "max_limiter_duration": draw(st.integers(1, 43_200)),
            "max_fee_bps": draw(st.integers(cliff // 100_000, 9_900)),
            "reference_amount": draw(st.integers(1, 10**12)),
        }
    else:
        periods = draw(st.integers(1, 100))
        base |= {
            "number_of_period": periods,
            "sqrt_price_step_bps": draw(st.integers(1, 1_000)),
            "scheduler_expiration_duration": draw(st.integers(1, 10**7)),
            "reduction_factor": (
                draw(st.integers(1, cliff // periods)) if mode == 3 else draw(st.integers(1, 9_999))
            ),
        }
    dynamic = None
    if draw(st.booleans()):
        dynamic = {
            "bin_step": draw(st.sampled_from([1, 10, 80])),
            "filter_period": 10,
            "decay_period": 120,
            "reduction_factor": 5_000,
            "variable_fee_control": draw(st.sampled_from([0, 239, 956, 50_000])),
            "max_volatility_accumulator": 14_460_000,
            "volatility_accumulator": draw(st.integers(0, 14_460_000)),
            "volatility_reference": draw(st.integers(0, 1_000_000)),
            "last_update_timestamp": clock.unix_timestamp - draw(st.integers(0, 300)),
        }
    collect = draw(st.sampled_from([0, 1, 2]))
    return {
        "collect_fee_mode": collect,
        "base_fee": base,
        "dynamic_fee": dynamic,
        "activation_type": activation_type,
        "activation_point": activation_point,
        "pool_status": draw(st.sampled_from([0, 0, 0, 0, 0, 0, 1])),
        "fee_version": draw(st.sampled_from([0, 1])),
        "compounding_fee_bps": draw(st.sampled_from([0, 5_000])) if collect == 2 else 0,
        "protocol_fee_percent": draw(st.sampled_from([0, 20])),
    }


def _check_quote_against_program(chain: Chain, mint_in: Pubkey, amount: int) -> int | None:
    """Quote, then swap with minimum output 0: the user's received amount equals the quote, or
    the quote refused and so does the program. Returns the amount received."""
    ata_in, ata_out = chain.atas(mint_in)
    try:
        quoted = chain.quote(mint_in, amount)
    except PoolNotTradable as skipped:
        event(f"skipped: {skipped.code} {skipped.detail.get('programError', '')}")
        writes = chain.view.writes
        if skipped.code == "unsupported_token_extension":
            return None  # an engine-side refusal, not the program's
        if (
            skipped.code == "no_output"
            and chain.venue == "meteora_damm_v2"
            and (skipped.detail.get("programError") is None)
        ):
            # DAMM v2 swaps into a zero output without complaint; the router skips it.
            before = chain.balance(ata_out)
            chain.run(chain.swap_ix(mint_in, amount, 0))
            assert chain.balance(ata_out) == before
            return 0
        with pytest.raises(ProgramError):
            chain.run(chain.swap_ix(mint_in, amount, 0))
        assert chain.view.writes == writes
        return None
    before_in, before_out = chain.balance(ata_in), chain.balance(ata_out)
    try:
        chain.run(chain.swap_ix(mint_in, amount, 0))
    except ProgramError as exc:  # pragma: no cover - a failure here is the finding
        raise AssertionError(f"quoted {quoted} but the program failed: {exc.logs[-3:]}") from exc
    received = chain.balance(ata_out) - before_out
    event("swapped")
    assert received == quoted
    assert before_in - chain.balance(ata_in) == amount
    return received


@pytest.mark.parametrize("venue", VENUE_NAMES)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_executed_output_equals_the_quote(venue: str, data: st.DataObject) -> None:
    clock = data.draw(clocks(), "clock")
    options = data.draw(cpmm_options(clock) if venue == "raydium_cpmm" else damm_options(clock))
    reserve_a = data.draw(st.integers(10**6, 10**15), "reserve_a")
    reserve_b = data.draw(st.integers(10**6, 10**15), "reserve_b")
    amount = data.draw(st.integers(1, 10**13), "amount")
    a_in = data.draw(st.booleans(), "a_in")
    try:
        chain = make_chain(
            venue,
            reserve_a,
            reserve_b,
            data.draw(st.sampled_from([0, 100, 2_500, 2_500, 10_000, 40_000]), "fee_ppm"),
            fee_a=data.draw(transfer_fees(), "fee_a"),
            fee_b=data.draw(transfer_fees(), "fee_b"),
            clock=clock,
            user_a=amount,
            user_b=amount,
            **{k: v for k, v in options.items() if v is not None},
        )
    except ValueError:
        assume(False)  # reserves no pool of this venue can hold
        raise
    mint_in = chain.mint_a if a_in else chain.mint_b
    received = _check_quote_against_program(chain, mint_in, amount)
    if received:
        t22 = [
            m for m in (chain.mint_a, chain.mint_b) if chain.programs[m] == TOKEN_2022_PROGRAM_ID
        ]
        event(f"swapped with {len(t22)} Token-2022 mint(s)")
        if venue == "meteora_damm_v2":
            state = chain.state()
            event(f"swapped: base fee mode {options['base_fee']['base_fee_mode']}")
            event(f"swapped: collect fee mode {state.collect_fee_mode}")
            event(f"swapped: dynamic fee {'on' if state.dynamic_fee_enabled else 'off'}")
    if not received:
        return
    # Swap the proceeds back a little later: the state the program wrote (vaults, sqrt price,
    # reserves, fees owed, volatility) must quote exactly what the program then pays.
    later = Clock(clock.slot + 30, 0, clock.epoch, 0, clock.unix_timestamp + 12)
    chain.set_clock(later)
    back_in = chain.mint_b if a_in else chain.mint_a
    _check_quote_against_program(chain, back_in, received)


def test_cpmm_fee_is_rounded_up() -> None:
    chain = sol_usdc("raydium_cpmm", 10**12, 10**12, fee_ppm=2_500)
    state = chain.state()
    data = {k: bytes(a.data) for k, a in chain.view.accounts.items()}
    venue = cpmm_layout.VENUE
    config = cpmm_layout.decode_amm_config(data[state.amm_config])

    def trade_fee(amount: int) -> int:
        result = cpmm_layout.swap_base_input(amount, 10**12, 10**12, config, 0, True)
        assert result is not None
        return result.trade_fee

    assert (trade_fee(1), trade_fee(400), trade_fee(401)) == (1, 1, 2)  # ceil(amount * 0.0025)
    assert venue.quote(state, data, USDC, 401, CLOCK).fee_amount == 2
    with pytest.raises(PoolNotTradable) as nothing:  # 1 unit pays 1 in fee: nothing to swap
        venue.quote(state, data, USDC, 1, CLOCK)
    assert nothing.value.code == "no_output"
    quote = venue.quote(state, data, USDC, 1_000_000, CLOCK)
    net = 1_000_000 - 2_500
    assert quote.amount_out == net * 10**12 // (10**12 + net)


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_min_out_above_quote_fails_with_slippage_code(venue: str) -> None:
    chain = sol_usdc(venue, 1_000 * 10**9, 150_000 * 10**6)
    chain.fund(NATIVE_MINT, 10**9)
    quoted = chain.quote(NATIVE_MINT, 10**9)
    writes = chain.view.writes
    with pytest.raises(ProgramError) as exc:
        chain.run(chain.swap_ix(NATIVE_MINT, 10**9, quoted + 1))
    expected = cpmm_layout.ERROR["ExceededSlippage"] if venue == "raydium_cpmm" else 6002
    assert exc.value.code == expected
    assert chain.view.writes == writes
    assert any("ExceededSlippage" in line for line in exc.value.logs)
    chain.run(chain.swap_ix(NATIVE_MINT, 10**9, quoted))  # exactly the quote passes
    assert chain.balance(ATA_B) == quoted


def test_slippage_codes_are_each_programs_own() -> None:
    # error.rs of each program: the same number means different things.
    assert cpmm_layout.ERRORS[6005] == "ExceededSlippage"
    assert cpmm_layout.ERRORS[6002] == "EmptySupply"
    assert damm_layout.ERRORS[6002] == "ExceededSlippage"
    assert damm_layout.ERRORS[6005] == "InvalidAdmin"
    assert damm_layout.ERRORS[6049] == "FailToValidateSingleSwapInstruction"


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_insufficient_balance_fails_and_writes_nothing(venue: str) -> None:
    chain = sol_usdc(venue, 1_000 * 10**9, 150_000 * 10**6, user_usdc=999)
    before = dict(chain.view.accounts)
    writes = chain.view.writes
    with pytest.raises(ProgramError) as exc:
        chain.run(chain.swap_ix(USDC, 1_000, 0))
    assert exc.value.code == 1
    assert any(
        "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA failed" in line for line in exc.value.logs
    )
    assert chain.view.writes == writes
    assert chain.view.accounts == before


def test_cpmm_instruction_layout() -> None:
    chain = sol_usdc("raydium_cpmm", 10**12, 10**12)
    ix = chain.swap_ix(NATIVE_MINT, 5, 7)
    assert ix.program_id == CPMM_ID
    assert bytes(ix.data)[:8] == bytes([143, 190, 90, 218, 196, 30, 51, 222])
    assert bytes(ix.data)[8:] == (5).to_bytes(8, "little") + (7).to_bytes(8, "little")
    state = chain.state()
    keys = [m.pubkey for m in ix.accounts]
    assert len(keys) == 13
    assert keys[0] == USER
    assert ix.accounts[0].is_signer
    assert keys[1] == Pubkey.find_program_address([b"vault_and_lp_mint_auth_seed"], CPMM_ID)[0]
    assert keys[2] == state.amm_config
    assert keys[3] == POOL
    assert keys[4:6] == [ATA_A, ATA_B]
    sol_vault = state.token_0_vault if state.token_0_mint == NATIVE_MINT else state.token_1_vault
    assert keys[6] == sol_vault
    assert keys[8] == keys[9] == TOKEN_PROGRAM_ID
    assert keys[10:12] == [NATIVE_MINT, USDC]
    assert keys[12] == state.observation_key
    assert ix.accounts[12].is_writable


def test_damm_v2_instruction_layout() -> None:
    chain = sol_usdc("meteora_damm_v2", 10**12, 10**12)
    ix = chain.swap_ix(USDC, 5, 7)
    assert ix.program_id == DAMM_ID
    assert bytes(ix.data)[:8] == bytes([248, 198, 158, 145, 225, 117, 135, 200])
    assert bytes(ix.data)[8:] == (5).to_bytes(8, "little") + (7).to_bytes(8, "little")
    state = chain.state()
    keys = [m.pubkey for m in ix.accounts]
    assert len(keys) == 14  # no rate limiter: no instructions sysvar
    assert keys[0] == Pubkey.find_program_address([b"pool_authority"], DAMM_ID)[0]
    assert keys[1] == POOL
    assert keys[2:4] == [ATA_B, ATA_A]
    assert keys[4:8] == [state.token_a_vault, state.token_b_vault, NATIVE_MINT, USDC]
    assert keys[8] == USER
    assert ix.accounts[8].is_signer
    assert keys[9] == keys[10] == TOKEN_PROGRAM_ID
    assert keys[11] == DAMM_ID
    assert not ix.accounts[11].is_writable
    assert keys[12] == Pubkey.find_program_address([b"__event_authority"], DAMM_ID)[0]
    assert keys[13] == DAMM_ID


RATE_LIMITER = {
    "base_fee_mode": 2,
    "fee_increment_bps": 10,
    "max_limiter_duration": 600,
    "max_fee_bps": 500,
    "reference_amount": 10**9,
}


def test_damm_v2_rate_limiter_swap_carries_the_instructions_sysvar() -> None:
    chain = make_chain(
        "meteora_damm_v2",
        10**13,
        10**13,
        base_fee=RATE_LIMITER,
        activation_point=NOW,
        user_b=10**10,
    )
    ix = chain.swap_ix(USDC, 5 * 10**9, 0)
    assert len(ix.accounts) == 15
    sysvar = ix.accounts[14]
    assert str(sysvar.pubkey) == "Sysvar1nstructions1111111111111111111111111"
    assert not sysvar.is_writable
    assert not sysvar.is_signer
    quoted = chain.quote(USDC, 5 * 10**9)
    chain.run(ix)
    assert chain.balance(ATA_A) == quoted
    # Without it the program refuses the swap (ix_p_swap.rs validate_single_swap_instruction).
    chain.fund(USDC, 10**10)
    bare = Instruction(ix.program_id, bytes(ix.data), list(ix.accounts)[:14])
    with pytest.raises(ProgramError) as exc:
        chain.run(bare)
    assert exc.value.code == 6049


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_set_pool_reserves_moves_the_quote(venue: str) -> None:
    chain = sol_usdc(venue, 1_000 * 10**9, 150_000 * 10**6)
    before = chain.quote(NATIVE_MINT, 10**9)
    set_pool_reserves(chain.view, POOL, {NATIVE_MINT: 1_000 * 10**9, USDC: 120_000 * 10**6})
    after = chain.quote(NATIVE_MINT, 10**9)
    assert 119_000_000 < after < 120_000_000 < before
    chain.fund(NATIVE_MINT, 10**9)
    with pytest.raises(ProgramError) as exc:  # an order priced before the move now slips
        chain.run(chain.swap_ix(NATIVE_MINT, 10**9, before))
    assert exc.value.code in (6005, 6002)


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_decode_rejects_wrong_discriminator(venue: str) -> None:
    chain = sol_usdc(venue, 10**12, 10**12)
    data = bytearray(bytes(chain.view.accounts[POOL].data))
    data[0] ^= 0xFF
    with pytest.raises(NotAPool):
        VENUES[venue].decode_pool(bytes(data), chain.view.accounts[POOL].owner, POOL)
    other = VENUE_NAMES[1 - VENUE_NAMES.index(venue)]
    with pytest.raises(NotAPool):  # another venue's pool is not this venue's
        VENUES[other].decode_pool(bytes(chain.view.accounts[POOL].data), DAMM_ID, POOL)


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_a_mint_outside_the_pool_is_a_venue_error(venue: str) -> None:
    chain = sol_usdc(venue, 10**12, 10**12)
    with pytest.raises(MintNotInPool):
        chain.quote(T22_A, 1_000)


@pytest.mark.parametrize("venue", VENUE_NAMES)
@pytest.mark.parametrize("sol_in", [True, False])
def test_native_sol_swap_moves_lamports_with_amount(venue: str, sol_in: bool) -> None:
    chain = sol_usdc(venue, 1_000 * 10**9, 150_000 * 10**6, user_usdc=150 * 10**6)
    chain.fund(NATIVE_MINT, 10**9)
    lamports_before = chain.view.accounts[ATA_A].lamports
    amount_before = chain.balance(ATA_A)
    mint_in = NATIVE_MINT if sol_in else USDC
    logs = chain.run(chain.swap_ix(mint_in, 10**9 if sol_in else 150 * 10**6, 0))
    assert logs[0].startswith("Program log: Instruction: Swap")
    moved = chain.balance(ATA_A) - amount_before
    assert moved != 0
    assert chain.view.accounts[ATA_A].lamports - lamports_before == moved
    state = chain.state()
    vaults = [
        getattr(state, n)
        for n in ("token_0_vault", "token_1_vault", "token_a_vault", "token_b_vault")
        if hasattr(state, n)
    ]
    sol_vault = next(
        k
        for k in vaults
        if TokenAccount.unpack(bytes(chain.view.accounts[k].data)).mint == NATIVE_MINT
    )
    vault = chain.view.accounts[sol_vault]
    assert vault.lamports == TOKEN_ACCOUNT_RENT + TokenAccount.unpack(bytes(vault.data)).amount


# ---------------------------------------------------------------------------------------------
# Pools that cannot trade say why.
# ---------------------------------------------------------------------------------------------
def _skip(chain: Chain, mint_in: Pubkey, amount: int = 10**6) -> PoolNotTradable:
    with pytest.raises(PoolNotTradable) as skipped:
        chain.quote(mint_in, amount)
    return skipped.value


def test_cpmm_before_open_time_is_not_open_and_the_program_says_not_approved() -> None:
    chain = make_chain("raydium_cpmm", 10**12, 10**12, open_time=NOW + 60, user_b=10**6)
    skipped = _skip(chain, USDC)
    assert skipped.code == "not_open"
    assert skipped.detail["opensAt"] == "2027-01-15T08:01:00Z"
    with pytest.raises(ProgramError) as exc:
        chain.run(chain.swap_ix(USDC, 10**6, 0))
    assert exc.value.code == 6000  # NotApproved
    chain.set_clock(Clock(CLOCK.slot + 150, 0, CLOCK.epoch, 0, NOW + 60))
    assert chain.quote(USDC, 10**6) > 0  # open at exactly open_time


def test_cpmm_swap_disabled_bit_is_disabled() -> None:
    chain = make_chain("raydium_cpmm", 10**12, 10**12, status=4)
    assert _skip(chain, USDC).code == "disabled"
    # Deposit and withdraw bits do not stop swaps.
    assert make_chain("raydium_cpmm", 10**12, 10**12, status=3).quote(USDC, 10**6) > 0


@pytest.mark.parametrize("activation_type", [0, 1])
def test_damm_v2_before_activation_is_not_open(activation_type: int) -> None:
    point = CLOCK.slot + 150 if activation_type == 0 else NOW + 60
    chain = make_chain(
        "meteora_damm_v2",
        10**12,
        10**12,
        activation_type=activation_type,
        activation_point=point,
        user_b=10**6,
    )
    skipped = _skip(chain, USDC)
    assert skipped.code == "not_open"
    assert skipped.detail["opensAt"] == "2027-01-15T08:01:00Z"  # 150 slots = 60 s
    if activation_type == 0:
        assert skipped.detail["opensAtSlot"] == point
    with pytest.raises(ProgramError) as exc:
        chain.run(chain.swap_ix(USDC, 10**6, 0))
    assert exc.value.code == 6003  # PoolDisabled


def test_damm_v2_disabled_status_is_disabled() -> None:
    chain = make_chain("meteora_damm_v2", 10**12, 10**12, pool_status=1)
    assert _skip(chain, USDC).code == "disabled"


@pytest.mark.parametrize("venue", VENUE_NAMES)
@pytest.mark.parametrize(
    ("extension", "name"),
    [(9, "NonTransferable"), (12, "PermanentDelegate"), (26, "Pausable"), (25, "ScaledUiAmount")],
)
def test_unmodelled_token_2022_extensions_are_named(venue: str, extension: int, name: str) -> None:
    chain = sol_usdc(venue, 10**12, 10**12)
    fee = TransferFee(0, 0, 0)
    data = mint_2022(
        Mint(6), [(1, transfer_fee_config_value(fee, fee)), (extension, bytes(32 + 1))]
    )
    chain.view.set(USDC, Account(10**7, data, TOKEN_2022_PROGRAM_ID, False, 0))
    skipped = _skip(chain, NATIVE_MINT)
    assert skipped.code == "unsupported_token_extension"
    assert skipped.detail["extension"] == name
    assert name in skipped.message


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_metadata_extensions_are_accepted(venue: str) -> None:
    chain = sol_usdc(venue, 10**12, 10**12)
    data = mint_2022(
        Mint(6), [(18, bytes(64)), (19, b"\x00" * 80)]
    )  # MetadataPointer, TokenMetadata
    chain.view.set(USDC, Account(10**7, data, TOKEN_2022_PROGRAM_ID, False, 0))
    assert chain.quote(NATIVE_MINT, 10**6) > 0


def test_an_inert_transfer_hook_passes_on_damm_v2_only() -> None:
    hook = (14, bytes(64))  # no authority, no program
    for venue, accepted in (("meteora_damm_v2", True), ("raydium_cpmm", False)):
        chain = sol_usdc(venue, 10**12, 10**12)
        chain.view.set(
            USDC, Account(10**7, mint_2022(Mint(6), [hook]), TOKEN_2022_PROGRAM_ID, False, 0)
        )
        if accepted:
            assert chain.quote(NATIVE_MINT, 10**6) > 0
        else:
            assert _skip(chain, NATIVE_MINT).detail["extension"] == "TransferHook"


def test_a_price_range_violation_is_below_min_liquidity() -> None:
    chain = make_chain("meteora_damm_v2", 10**6, 10**6, sqrt_price_range=(2**63, 2**65))
    skipped = _skip(chain, USDC, 10**12)
    assert skipped.code == "below_min_liquidity"
    assert skipped.detail["programError"] == "PriceRangeViolation"


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_an_input_eaten_by_its_transfer_fee_is_no_output(venue: str) -> None:
    fee = TransferFee(0, 10**18, 10_000)  # 100 %
    chain = make_chain(venue, 10**12, 10**12, fee_b=(fee, fee), user_b=10**6)
    assert _skip(chain, T22_B).code == "no_output"
    with pytest.raises(ProgramError):
        chain.run(chain.swap_ix(T22_B, 10**6, 0))


# ---------------------------------------------------------------------------------------------
# Token-2022 transfer fees, both sides, older and newer.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_transfer_fee_on_the_input_is_taken_before_the_curve(venue: str) -> None:
    one_percent = TransferFee(0, 10**18, 100)
    with_fee = make_chain(venue, 10**12, 10**12, 2_500, fee_b=(one_percent, one_percent))
    without = make_chain(venue, 10**12, 10**12, 2_500)
    # 1,000,000 in: 10,000 withheld by the mint, 990,000 reach the curve.
    assert with_fee.quote(T22_B, 10**6) == without.quote(USDC, 990_000)


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_the_output_transfer_fee_is_withheld_in_the_users_account(venue: str) -> None:
    one_percent = TransferFee(0, 10**18, 100)
    chain = make_chain(venue, 10**12, 10**12, 2_500, fee_b=(one_percent, one_percent), user_a=10**9)
    gross = make_chain(venue, 10**12, 10**12, 2_500).quote(NATIVE_MINT, 10**9)
    fee = -(-gross * 100 // 10_000)
    assert chain.quote(NATIVE_MINT, 10**9) == gross - fee
    chain.run(chain.swap_ix(NATIVE_MINT, 10**9, gross - fee))  # the minimum is after the fee
    assert chain.balance(ATA_B) == gross - fee
    assert withheld_amount(bytes(chain.view.accounts[ATA_B].data)) == fee


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_the_newer_transfer_fee_applies_from_its_epoch(venue: str) -> None:
    older, newer = TransferFee(0, 10**18, 100), TransferFee(CLOCK.epoch + 1, 10**18, 500)
    chain = make_chain(venue, 10**12, 10**12, 2_500, fee_b=(older, newer))
    reference = make_chain(venue, 10**12, 10**12, 2_500)
    assert chain.quote(T22_B, 10**6) == reference.quote(USDC, 990_000)
    chain.set_clock(Clock(CLOCK.slot, 0, CLOCK.epoch + 1, 0, NOW))
    assert chain.quote(T22_B, 10**6) == reference.quote(USDC, 950_000)


# ---------------------------------------------------------------------------------------------
# The creator fee (CPMM) in each mode.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("creator_fee_on", [0, 1, 2])
@pytest.mark.parametrize("sol_in", [True, False])
def test_cpmm_creator_fee_side_follows_creator_fee_on(creator_fee_on: int, sol_in: bool) -> None:
    chain = make_chain(
        "raydium_cpmm",
        10**12,
        10**12,
        2_500,
        creator_fee_rate=10_000,
        enable_creator_fee=True,
        creator_fee_on=creator_fee_on,
        user_a=10**9,
        user_b=10**9,
    )
    state = chain.state()
    mint_in = NATIVE_MINT if sol_in else USDC
    zero_for_one = mint_in == state.token_0_mint
    on_input = state.is_creator_fee_on_input(zero_for_one)
    assert on_input == (creator_fee_on == 0 or (creator_fee_on == 1) == zero_for_one)
    quoted = chain.quote(mint_in, 10**8)
    chain.run(chain.swap_ix(mint_in, 10**8, quoted))
    after = chain.state()
    side_in = "0" if zero_for_one else "1"
    side = side_in if on_input else ("1" if zero_for_one else "0")
    assert getattr(after, f"creator_fees_token_{side}") > 0
    # Owed creator fees are not the curve's: the next quote subtracts them from the vault.
    assert chain.quote(mint_in, 10**8) == _quote_without_owed(chain, mint_in, 10**8)


def _quote_without_owed(chain: Chain, mint_in: Pubkey, amount: int) -> int:
    state = chain.state()
    data = {k: bytes(a.data) for k, a in chain.view.accounts.items()}
    reserves = []
    for index, vault in enumerate((state.token_0_vault, state.token_1_vault)):
        reserves.append(cpmm_layout.token_account_amount(data[vault]) - state.fees_owed(index))
    zero_for_one = mint_in == state.token_0_mint
    r_in, r_out = reserves if zero_for_one else reserves[::-1]
    config = cpmm_layout.decode_amm_config(data[state.amm_config])
    result = cpmm_layout.swap_base_input(
        amount,
        r_in,
        r_out,
        config,
        config.creator_fee_rate,
        state.is_creator_fee_on_input(zero_for_one),
    )
    assert result is not None
    return result.output_amount


def test_cpmm_creator_fee_disabled_charges_nothing_even_with_a_rate() -> None:
    on = make_chain(
        "raydium_cpmm", 10**12, 10**12, creator_fee_rate=10_000, enable_creator_fee=True
    )
    off = make_chain(
        "raydium_cpmm", 10**12, 10**12, creator_fee_rate=10_000, enable_creator_fee=False
    )
    plain = make_chain("raydium_cpmm", 10**12, 10**12)
    assert off.quote(USDC, 10**8) == plain.quote(USDC, 10**8) > on.quote(USDC, 10**8)
