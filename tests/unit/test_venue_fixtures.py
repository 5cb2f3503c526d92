"""Layouts, quotes and instructions against real mainnet accounts, not our own encoders.

- Raydium CPMM: tests/fixtures/raydium_cpmm_mainnet.json, from the program's own repository
  (raydium-io/raydium-cp-swap, svm-tests/fixtures/cpmm_wsol_pump.json: a WSOL / Token-2022 pool,
  its AmmConfig and vaults, dumped at slot 446605268).
- Meteora DAMM v2: ../shared/fixtures/damm_v2/ beside the repository (read in place): two pools from
  MeteoraAg/damm-v2 rust-sdk/fixtures (release 0.2.1) and a pool and a config from
  programs/cp-amm/src/tests/fixtures. All three pools have the dynamic fee on and carry bytes
  from before cp_amm 0.2.0 (a partner key) where the current layout has padding.
The expected numbers come from the programs' published formulas or their own tests, cited.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest
from solders.account import Account
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID

from execution.venues import VENUES, Clock, PoolNotTradable
from execution.venues import meteora_damm_v2 as damm
from execution.venues import raydium_cpmm as cpmm
from local.chain import seed
from local.chain.ledger import Ledger
from local.chain.seed import pack_mint, pack_token_account
from local.shared import shared_path

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
OPEN_TIME = 1_782_220_562  # the real pool's open_time (2026-06-23T13:16:02Z)
CPMM_CLOCK = Clock(446_605_268, 0, 1_033, 1_034, OPEN_TIME + 86_400)
# The mints are not in the fixture: WSOL is SPL Token's 82-byte native mint; the pump mint is a
# Token-2022 mint (the pool says so) stood in by a bare 82-byte one (pump.fun mints carry
# metadata extensions only, which change no amount).
MINTS = {WSOL: pack_mint(9), PUMP: pack_mint(6)}


def cpmm_state(data: bytes | None = None) -> cpmm.PoolState:
    owner, raw = ACCOUNTS[POOL]
    state: cpmm.PoolState = CPMM.decode_pool(data if data is not None else raw, owner, POOL)
    return state


def cpmm_data() -> dict[Pubkey, bytes]:
    return {**{k: d for k, (_, d) in ACCOUNTS.items()}, **MINTS}


def test_a_real_pool_decodes_to_the_accounts_it_names() -> None:
    pool = cpmm_state()
    assert pool.program_id == Pubkey.from_string(FIXTURE["program"])
    assert pool.amm_config == CONFIG
    assert (pool.token_0_vault, pool.token_1_vault) == (WSOL_VAULT, PUMP_VAULT)
    assert (pool.token_0_mint, pool.token_1_mint) == (WSOL, PUMP)
    assert (pool.token_0_program, pool.token_1_program) == (TOKEN, TOKEN_2022)
    assert (pool.mint_0_decimals, pool.mint_1_decimals) == (9, 6)
    assert pool.open_time == OPEN_TIME
    assert pool.swap_enabled
    assert (pool.enable_creator_fee, pool.creator_fee_on) == (False, 0)
    assert CPMM.pool_mints(pool) == (WSOL, PUMP)
    assert set(CPMM.dependent_accounts(pool)) == {CONFIG, WSOL_VAULT, PUMP_VAULT}
    for vault, mint in ((WSOL_VAULT, WSOL), (PUMP_VAULT, PUMP)):
        assert Pubkey(ACCOUNTS[vault][1][:32]) == mint


def test_the_real_fee_config_is_read_at_its_offsets() -> None:
    config = cpmm.decode_amm_config(ACCOUNTS[CONFIG][1])
    # 0.25 %, 12 % and 4 % of it, and the 0.05 % creator fee of mainnet's index-0 config.
    assert (config.trade_fee_rate, config.protocol_fee_rate, config.fund_fee_rate) == (
        2_500,
        120_000,
        40_000,
    )
    assert config.creator_fee_rate == 500


def _reserves() -> tuple[int, int]:
    pool = cpmm_state()
    data = cpmm_data()
    vault = [struct.unpack_from("<Q", data[v], 64)[0] for v in (WSOL_VAULT, PUMP_VAULT)]
    owed = [pool.fees_owed(0), pool.fees_owed(1)]
    return vault[0] - owed[0], vault[1] - owed[1]


def test_a_quote_on_the_real_pool_follows_the_published_math() -> None:
    r_in, r_out = _reserves()
    amount_in = 10**9
    fee = -(-amount_in * 2_500 // 1_000_000)
    expected = (amount_in - fee) * r_out // (r_in + amount_in - fee)
    quote = CPMM.quote(cpmm_state(), cpmm_data(), WSOL, amount_in, CPMM_CLOCK)
    assert (quote.amount_out, quote.fee_amount) == (expected, fee)


def test_the_real_pool_is_not_open_before_its_open_time() -> None:
    early = Clock(446_000_000, 0, 1_030, 1_031, OPEN_TIME - 1)
    with pytest.raises(PoolNotTradable) as skipped:
        CPMM.quote(cpmm_state(), cpmm_data(), WSOL, 10**9, early)
    assert skipped.value.code == "not_open"
    assert skipped.value.detail["opensAt"] == "2026-06-23T13:16:02Z"
    at_open = Clock(446_000_000, 0, 1_030, 1_031, OPEN_TIME)
    assert CPMM.quote(cpmm_state(), cpmm_data(), WSOL, 10**9, at_open).amount_out > 0


@pytest.mark.parametrize("creator_fee_on", [0, 1, 2])
def test_the_real_pool_with_its_creator_fee_switched_on(creator_fee_on: int) -> None:
    """states/pool.rs is_creator_fee_on_input and curve/calculator.rs swap_base_input on the real
    pool and config (creator_fee_rate 500), with only the pool's two creator-fee bytes set."""
    raw = bytearray(ACCOUNTS[POOL][1])
    raw[cpmm.CREATOR_FEE_ON_OFFSET] = creator_fee_on
    raw[cpmm.ENABLE_CREATOR_FEE_OFFSET] = 1
    pool = cpmm_state(bytes(raw))
    r_in, r_out = _reserves()  # nothing owed to the creator yet
    amount_in = 10**9  # WSOL in: token 0 -> token 1
    on_input = creator_fee_on in (0, 1)  # both tokens, or only token 0 (the input here)
    if on_input:
        total = -(-amount_in * (2_500 + 500) // 1_000_000)
        creator = total * 500 // 3_000
        trade = total - creator
        expected = (amount_in - total) * r_out // (r_in + amount_in - total)
        expected_fee = total
        assert (creator, trade) == (500_000, 2_500_000)
    else:
        trade = -(-amount_in * 2_500 // 1_000_000)
        swapped = (amount_in - trade) * r_out // (r_in + amount_in - trade)
        creator = -(-swapped * 500 // 1_000_000)
        expected = swapped - creator
        expected_fee = trade + creator * amount_in // swapped  # at the trade's average rate
    quote = CPMM.quote(pool, cpmm_data(), WSOL, amount_in, CPMM_CLOCK)
    assert quote.amount_out == expected
    assert quote.fee_amount == expected_fee
    assert quote.notes["creatorFeeOnInput"] is on_input
    plain = CPMM.quote(cpmm_state(), cpmm_data(), WSOL, amount_in, CPMM_CLOCK)
    assert quote.amount_out < plain.amount_out


@pytest.mark.parametrize("sol_in", [True, False])
def test_the_real_cpmm_program_pays_the_quote_on_the_real_pool(sol_in: bool) -> None:
    """The CPMM mainnet binary, run by the local chain on the real pool, config, vaults and
    observation (the pool's creator fee is off, which the pre-creator-fee binary agrees with),
    pays exactly the engine's quote."""
    ledger = Ledger()
    seed.apply(ledger)
    for key, (owner, data) in ACCOUNTS.items():
        ledger.set_account(key, Account(_lamports(data, owner), data, owner, False, 0))
    # The fixture has no ObservationState: use one the program itself created (the seeded
    # CPMM pool's, made by its initialize; a swap checks only its address).
    seeded = ledger.get_account(seed.POOLS["raydium_cpmm"])
    assert seeded is not None
    observation = ledger.get_account(Pubkey.from_bytes(bytes(seeded.data)[296:328]))
    assert observation is not None
    ledger.set_account(cpmm_state().observation_key, observation)
    # The pump mint stood in by a bare Token-2022 mint (the pool names Token-2022 for it).
    ledger.set_account(PUMP, Account(10**7, MINTS[PUMP], TOKEN_2022, False, 0))
    ledger.shift_time(CPMM_CLOCK.unix_timestamp - ledger.clock().unix_timestamp)
    user = Keypair()
    ledger.airdrop(user.pubkey(), 10**9)
    accounts = {}
    rent = ledger.rent_exempt_minimum(165)
    for mint, program in ((WSOL, TOKEN), (PUMP, TOKEN_2022)):
        accounts[mint] = Keypair().pubkey()
        native = rent if mint == WSOL else None  # a WSOL account holds its amount as lamports
        held = pack_token_account(mint, user.pubkey(), 10**15, native_reserve=native)
        lamports = _lamports(held, program)
        ledger.set_account(accounts[mint], Account(lamports, held, program, False, 0))
    mint_in, mint_out = (WSOL, PUMP) if sol_in else (PUMP, WSOL)
    amount = 10**9 if sol_in else 10**12
    now = ledger.clock()
    clock = Clock(
        now.slot,
        now.epoch_start_timestamp,
        now.epoch,
        now.leader_schedule_epoch,
        now.unix_timestamp,
    )
    quote = CPMM.quote(cpmm_state(), cpmm_data(), mint_in, amount, clock)
    ix = CPMM.swap_instruction(
        cpmm_state(),
        user.pubkey(),
        accounts[mint_in],
        accounts[mint_out],
        mint_in,
        amount,
        quote.amount_out,
    )
    message = Message.new_with_blockhash([ix], user.pubkey(), ledger.latest_blockhash()[0])
    record = ledger.land_now(VersionedTransaction(message, [user]))
    assert record.err is None
    assert "Program log: Instruction: SwapBaseInput" in record.logs
    after = ledger.get_account(accounts[mint_out])
    assert after is not None
    assert int.from_bytes(bytes(after.data)[64:72], "little") - 10**15 == quote.amount_out


def _lamports(data: bytes, owner: Pubkey) -> int:
    """What an account holds: a native (WSOL) token account its rent reserve plus its amount,
    as the token program keeps them; any other account enough for rent."""
    if owner == TOKEN and len(data) >= 121 and data[109] == 1:
        reserve = int.from_bytes(data[113:121], "little")
        return reserve + int.from_bytes(data[64:72], "little")
    return 10**9


def test_the_swap_instruction_names_the_real_authority_and_accounts() -> None:
    pool = cpmm_state()
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


# ---------------------------------------------------------------------------------------------
# Meteora DAMM v2
# ---------------------------------------------------------------------------------------------
DAMM_FIXTURES = shared_path("fixtures", "damm_v2")
DAMM_ID = Pubkey.from_string("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG")
MACK_USDC = "3u2BK3ykdjv1hAeGQwAkZMxjb4otV5yvW7g72uviCaZZ"  # rust-sdk tests MACK_USDC_ADDRESS
SOL_USDC = "CGPxT5d1uf9a8cKVJuZaJAU76t2EfLGbTmRbfvLLZp5j"  # rust-sdk tests SOL_USDC_CL_ADDRESS
OTHER_POOL = Pubkey.from_string("E8zRkDw3UdzRc8qVWmqyQ9MLj7jhgZDHSroYud5t25A7")  # test_layout.rs
# rust-sdk/src/tests/test_quote_exact_in.rs test_quote_exact_in
SDK_TIMESTAMP, SDK_SLOT = 1_753_751_761, 356_410_171


def damm_raw(name: str) -> bytes:
    return (DAMM_FIXTURES / f"{name}.bin").read_bytes()


def damm_state(name: str) -> damm.PoolState:
    address = OTHER_POOL if name == "pool_account" else Pubkey.from_string(name)
    return damm.decode(damm_raw(name), DAMM_ID, address)


def spl_mints(state: damm.PoolState) -> dict[Pubkey, bytes]:
    """The fixtures' mints are SPL Token mints (token flags 0); their decimals do not enter a
    quote, only their (absent) extensions."""
    assert (state.token_a_flag, state.token_b_flag) == (0, 0)
    return {state.token_a_mint: pack_mint(6), state.token_b_mint: pack_mint(6)}


def sdk_clock(epoch: int = 820) -> Clock:
    return Clock(SDK_SLOT, 0, epoch, epoch + 1, SDK_TIMESTAMP)


@pytest.mark.parametrize("name", [MACK_USDC, SOL_USDC])
def test_real_damm_pools_name_their_own_vaults(name: str) -> None:
    """The vaults are PDAs of ["token_vault", mint, pool]: mints, vaults and pool agree."""
    state = damm_state(name)
    for mint, vault in (
        (state.token_a_mint, state.token_a_vault),
        (state.token_b_mint, state.token_b_vault),
    ):
        derived = Pubkey.find_program_address(
            [b"token_vault", bytes(mint), bytes(state.address)], DAMM_ID
        )
        assert derived[0] == vault
    assert state.token_b_mint == Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")


@pytest.mark.parametrize("name", [MACK_USDC, SOL_USDC, "pool_account"])
def test_real_damm_pools_decode_with_the_0_2_layout(name: str) -> None:
    state = damm_state(name)
    raw = damm_raw(name)
    assert len(raw) == damm.POOL_LEN
    assert raw[:8] == damm.POOL_DISCRIMINATOR
    assert state.sqrt_min_price <= state.sqrt_price <= state.sqrt_max_price
    assert state.sqrt_min_price >= damm.MIN_SQRT_PRICE
    assert state.sqrt_max_price <= damm.MAX_SQRT_PRICE
    assert (state.pool_status, state.activation_type, state.collect_fee_mode) == (0, 1, 1)
    assert state.fee_version == 0
    assert state.layout_version == 0
    assert (state.protocol_fee_percent, state.referral_fee_percent) == (20, 20)
    assert state.compounding_fee_bps == 0
    assert state.init_sqrt_price == 0
    # The dynamic fee is on with Meteora's defaults; bin_step_u128 = bin_step << 64 / 10_000
    # (constants.rs BIN_STEP_BPS_U128_DEFAULT), which pins the DynamicFeeStruct offsets.
    dyn = state.dynamic_fee
    assert dyn.enabled
    assert dyn.bin_step == 1
    assert dyn.bin_step_u128 == 1_844_674_407_370_955
    assert (dyn.filter_period, dyn.decay_period, dyn.reduction_factor) == (10, 120, 5_000)
    assert dyn.max_volatility_accumulator == 14_460_000
    # A pre-0.2.0 partner key sits in padding_0 (offset 328); the current layout ignores it.
    if name != "pool_account":
        assert raw[damm.PADDING_0_OFFSET : damm.PADDING_0_OFFSET + 32] != bytes(32)


def test_the_layout_fixtures_hold_the_published_fee_schedulers() -> None:
    """programs/cp-amm/src/tests/test_layout.rs pool_account_layout_backward_compatible and
    config_account_layout_backward_compatible (the values solscan shows for both accounts)."""
    pool = damm_state("pool_account").base_fee
    assert (pool.cliff_fee_numerator, pool.mode, pool.number_of_period) == (500_000_000, 1, 120)
    assert (pool.period_frequency, pool.reduction_factor) == (60, 265)
    config_raw = damm_raw("config_account")
    assert len(config_raw) == 328
    config = damm.decode_base_fee(config_raw[72:104])  # Config: 2 keys, then PoolFeesConfig
    assert (config.cliff_fee_numerator, config.mode, config.number_of_period) == (
        500_000_000,
        1,
        120,
    )
    assert (config.period_frequency, config.reduction_factor) == (60, 417)


def test_the_sdk_quote_of_u64_max_on_mack_usdc_pays_out() -> None:
    """rust-sdk/src/tests/test_quote_exact_in.rs test_quote_exact_in: B -> A, u64::MAX in, at
    timestamp 1_753_751_761 / slot 356_410_171: an output greater than 0."""
    state = damm_state(MACK_USDC)
    quote = damm.VENUE.quote(state, spl_mints(state), state.token_b_mint, 2**64 - 1, sdk_clock())
    assert quote.amount_out > 0


def test_the_sdk_quote_at_time_zero_is_refused() -> None:
    """rust-sdk test_quote_exact_in_swap_disabled: at timestamp 0 the pool is not active yet."""
    state = damm_state(MACK_USDC)
    with pytest.raises(PoolNotTradable) as skipped:
        damm.VENUE.quote(
            state, spl_mints(state), state.token_b_mint, 2**64 - 1, Clock(0, 0, 0, 0, 0)
        )
    assert skipped.value.code == "not_open"
    assert skipped.value.detail["opensAt"] == "2025-07-27T15:30:25Z"  # its activation_point


def test_mack_usdc_charges_its_cliff_fee_plus_the_stored_volatility() -> None:
    """state/fee.rs get_variable_fee on the stored state: ceil((200_000 * 1)^2 * 956 / 1e11) =
    383 on top of the 1 % cliff fee (update_pre_swap moves references, not the accumulator)."""
    state = damm_state(MACK_USDC)
    assert (state.dynamic_fee.volatility_accumulator, state.dynamic_fee.variable_fee_control) == (
        200_000,
        956,
    )
    assert damm.variable_fee(state.dynamic_fee) == 383
    quote = damm.VENUE.quote(state, spl_mints(state), state.token_a_mint, 10**9, sdk_clock())
    assert quote.notes == {"feeNumerator": 10_000_383, "variableFeeNumerator": 383}


def test_sol_usdc_quote_follows_the_concentrated_curve() -> None:
    """A -> B on the real SOL/USDC pool (only-B fees: taken from the USDC out): curve.rs
    get_next_sqrt_price_from_amount_in_a_rounding_up, get_delta_amount_b_unsigned (down), then
    the 0.25 % fee rounded up; no volatility stored, so no variable fee."""
    state = damm_state(SOL_USDC)
    sp, liq, amount = state.sqrt_price, state.liquidity, 10**9
    next_sp = -(-liq * sp // (liq + amount * sp))
    gross = liq * (sp - next_sp) >> 128
    expected = gross - -(-gross * 2_500_000 // 10**9)
    quote = damm.VENUE.quote(state, spl_mints(state), state.token_a_mint, amount, sdk_clock())
    assert quote.amount_out == expected
    assert 150_000_000 < expected < 200_000_000  # 1 SOL in mid-2025: ~175 USDC


def test_the_exponential_scheduler_on_the_real_pool_decays_per_period() -> None:
    """pool_account.bin: cliff 50 %, 120 periods of 60 s, reduction 265 bps, exponential
    (fee_time_scheduler.rs, fee_math.rs get_fee_in_period): at activation the cliff (capped at
    fee version 0's 50 %), after all periods 50 % * (1 - 0.0265)^120 (19_919_787.77 in floats),
    plus the stored variable fee ceil(1_380_000^2 * 1913 / 1e11) = 36_432."""
    state = damm_state("pool_account")
    start = state.activation_point
    assert damm.variable_fee(state.dynamic_fee) == 36_432
    fees = [
        damm.VENUE.quote(
            state,
            spl_mints(state),
            state.token_a_mint,
            10**6,
            Clock(0, 0, 800, 801, start + seconds),
        ).notes["feeNumerator"]
        for seconds in (0, 59, 60, 3_600, 7_200, 10**6)
    ]
    assert fees[0] == fees[1] == 500_000_000  # 500_036_432 capped
    assert fees[0] > fees[2] > fees[3] > fees[4] == fees[5]
    assert fees[5] == 19_919_787 + 36_432
    assert fees[2] == damm.fee_in_period(500_000_000, 265, 1) + 36_432 == 486_786_432


@pytest.mark.parametrize("name", [MACK_USDC, SOL_USDC, "pool_account"])
@pytest.mark.parametrize("a_to_b", [True, False])
def test_the_real_program_pays_the_quote_on_real_pools(name: str, a_to_b: bool) -> None:
    """The DAMM v2 0.2.0 binary, run by the local chain on the real pool bytes (layout 0,
    dynamic fee, scheduler), pays exactly the engine's quote and rewrites the pool (layout 1,
    a new price)."""
    state = damm_state(name)
    ledger = Ledger()
    ledger.set_account(state.address, Account(10**9, damm_raw(name), DAMM_ID, False, 0))
    # The chain's clock moves to the pools' era (a slot past their activation, in their time).
    target = max(SDK_TIMESTAMP, state.activation_point + 10**6)
    ledger.warp_slots(SDK_SLOT - ledger.clock().slot)
    ledger.shift_time(target - ledger.clock().unix_timestamp)
    now = ledger.clock()
    clock = Clock(now.slot, now.epoch_start_timestamp, now.epoch, now.leader_schedule_epoch, target)
    assert now.unix_timestamp == target
    authority = damm.pool_authority(DAMM_ID)
    user = Keypair()
    ledger.airdrop(user.pubkey(), 10**9)
    user_accounts = {}
    reserves = damm.reserves_for_layout(state)
    for mint, vault, reserve in (
        (state.token_a_mint, state.token_a_vault, reserves[0]),
        (state.token_b_mint, state.token_b_vault, reserves[1]),
    ):
        ledger.set_account(mint, Account(10**7, pack_mint(6), TOKEN_PROGRAM_ID, False, 0))
        vault_data = pack_token_account(mint, authority, reserve + 10**12)
        ledger.set_account(vault, Account(10**7, vault_data, TOKEN_PROGRAM_ID, False, 0))
        user_accounts[mint] = Keypair().pubkey()
        held = pack_token_account(mint, user.pubkey(), 10**15)
        ledger.set_account(user_accounts[mint], Account(10**7, held, TOKEN_PROGRAM_ID, False, 0))
    mint_in, mint_out = (state.token_a_mint, state.token_b_mint)[:: 1 if a_to_b else -1]
    amount = 10**8
    quote = damm.VENUE.quote(state, spl_mints(state), mint_in, amount, clock)
    ix = damm.VENUE.swap_instruction(
        state,
        user.pubkey(),
        user_accounts[mint_in],
        user_accounts[mint_out],
        mint_in,
        amount,
        quote.amount_out,
    )
    message = Message.new_with_blockhash([ix], user.pubkey(), ledger.latest_blockhash()[0])
    record = ledger.land_now(VersionedTransaction(message, [user]))
    assert record.err is None
    assert "Program log: Instruction: Swap" in record.logs
    after = ledger.get_account(user_accounts[mint_out])
    assert after is not None
    assert int.from_bytes(bytes(after.data)[64:72], "little") - 10**15 == quote.amount_out
    pool = ledger.get_account(state.address)
    assert pool is not None
    written = damm.decode(bytes(pool.data), DAMM_ID, state.address)
    assert written.layout_version == 1  # update_layout_version_if_needed
    assert written.sqrt_price != state.sqrt_price
