"""The engine's quotes against the real DEX programs (the mainnet binaries the local chain runs):
same pool, same clock, same answer to the unit; and a pool the engine skips for a reason the
program enforces is one the program refuses, with that reason.

The pools are created by the programs' own initialize transactions (tests/pool_factory.py) with
every fee mode the binaries have: Raydium CPMM fee rates with and without protocol and fund
shares, Token-2022 transfer fees on either side; Meteora DAMM v2 static configs with the
dynamic fee, linear and exponential time schedulers (by timestamp and by slot), the rate
limiter, linear and exponential market-cap schedulers, both-token and token-B collection and
compounding; customizable pools with Token-2022 sides. The property moves the chain's clock
(seconds and slots), trades, and compares; it also runs on real mainnet DAMM v2 pool bytes in
tests/unit/test_venue_fixtures.py.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from solders.account import Account
from solders.pubkey import Pubkey
from spl.token.constants import WRAPPED_SOL_MINT

from engine.orders import Status
from engine.store import Order
from execution.discovery import decode_pool
from execution.executor import order_minimum_out
from execution.venues import SYSVAR_CLOCK, VENUES, Clock, PoolNotTradable, Quote, VenueError
from local import pools as builders
from local.chain import market, seed
from local.chain.genesis import DAMM_PROGRAM, damm_config_address
from local.chain.ledger import Ledger, Outcome
from local.shared import shared_path
from tests.pool_factory import MAKER, PoolFactory

USDC = seed.USDC_MINT
# Engine-policy skips: the engine declines, the program might still trade (listed apart).
POLICY_SKIPS = {"below_min_liquidity", "unsupported_token_extension"}


@dataclass(frozen=True)
class World:
    factory: PoolFactory
    pools: list[tuple[str, Pubkey]]  # (what it is, address)

    @property
    def ledger(self) -> Ledger:
        return self.factory.ledger


def build_world() -> World:
    factory = PoolFactory()
    x = factory.mint(6)
    y = factory.mint(9)
    t1 = factory.mint(6, transfer_fee_bps=100)
    t2 = factory.mint(9, transfer_fee_bps=250)
    million = 10**6
    pools: list[tuple[str, Pubkey]] = [
        ("cpmm 0.25% SOL/USDC (seeded)", seed.POOLS["raydium_cpmm"]),
        ("cpmm 0.25% protocol+fund T22/USDC (seeded)", seed.T22_POOLS["raydium_cpmm"]),
        ("damm scheduler+dynamic SOL/USDC (seeded)", seed.POOLS["meteora_damm_v2"]),
        ("damm rate limiter T22/USDC (seeded)", seed.T22_POOLS["meteora_damm_v2"]),
        ("cpmm 1% X/USDC", factory.cpmm(x, USDC, million * 10**6, 2 * million * 10**6, config=2)),
        ("cpmm 0.01% T1/USDC", factory.cpmm(t1, USDC, million * 10**6, million * 10**6, config=3)),
        ("cpmm 0.25% X/T2", factory.cpmm(x, t2, million * 10**6, million * 10**9, config=0)),
        ("cpmm 1% T1/T2", factory.cpmm(t1, t2, million * 10**6, 3 * million * 10**9, config=2)),
        ("cpmm 0.25% Y/SOL", factory.cpmm(y, WRAPPED_SOL_MINT, 10**15, 10**12, config=0)),
    ]
    now = factory.ledger.clock()
    labels = {
        0: "damm config 0: dynamic fee, fees in B",
        1: "damm config 1: linear time scheduler, both tokens",
        2: "damm config 2: exponential scheduler by slot",
        3: "damm config 3: rate limiter + dynamic fee",
        4: "damm config 4: linear market-cap scheduler",
        5: "damm config 5: exponential market-cap scheduler",
        6: "damm config 6: compounding",
    }
    for index, label in labels.items():
        # Activation a little ahead: by slot for config 2, by timestamp for the others.
        activation = now.slot + 20 if index == 2 else now.unix_timestamp + 30
        pool = factory.damm(
            x, USDC, million * 10**6, million * 10**6, config=index, activation_point=activation
        )
        pools.append((label, pool))
    pools.append(
        (
            "damm customizable T1/USDC: dynamic fee, exponential scheduler",
            factory.damm(
                t1,
                USDC,
                million * 10**6,
                million * 10**6,
                fees=builders.CustomizableFees(
                    cliff_fee_numerator=10_000_000,
                    base_fee_mode=1,
                    number_of_period=50,
                    period_frequency=60,
                    reduction_factor=200,
                ),
            ),
        )
    )
    pools.append(
        (
            "damm customizable X/T2: both tokens, no dynamic fee",
            factory.damm(
                x,
                t2,
                million * 10**6,
                million * 10**9,
                fees=builders.CustomizableFees(
                    cliff_fee_numerator=3_000_000, dynamic_fee=None, collect_fee_mode=0
                ),
            ),
        )
    )
    pools.append(
        (
            "damm customizable T1/T2: compounding",
            factory.damm(
                t1,
                t2,
                million * 10**6,
                million * 10**9,
                fees=builders.CustomizableFees(
                    cliff_fee_numerator=2_500_000,
                    dynamic_fee=None,
                    collect_fee_mode=2,
                    compounding_fee_bps=5_000,
                ),
            ),
        )
    )
    pools.append(
        (
            "damm customizable Y/USDC: a narrow price range",
            factory.damm(
                y,
                USDC,
                million * 10**6,
                million * 10**6,
                fees=builders.CustomizableFees(dynamic_fee=None),
                sqrt_price_range=(2**62, 2**66),
            ),
        )
    )
    return World(factory, pools)


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()


def chain_clock(ledger: Ledger) -> Clock:
    account = ledger.get_account(SYSVAR_CLOCK)
    assert account is not None
    return Clock.from_account_data(bytes(account.data))


def engine_quote(ledger: Ledger, pool: Pubkey, mint_in: Pubkey, amount: int) -> Quote:
    """The engine's quote from the chain's accounts at the chain's clock."""
    found = market.read_pool(ledger, pool)
    keys = [*found.depends_on, *found.mints]
    data = {k: bytes(a.data) for k in keys if (a := ledger.get_account(k)) is not None}
    return VENUES[found.venue].quote(found.state, data, mint_in, amount, chain_clock(ledger))


def run_swap(
    ledger: Ledger, pool: Pubkey, mint_in: Pubkey, amount: int, min_out: int, land: bool
) -> tuple[Outcome, int]:
    """The maker's swap, simulated (or landed): its outcome and what the maker received."""
    found = market.read_pool(ledger, pool)
    mint_out = next(m for m in found.mints if m != mint_in)
    out_account = market.token_account(ledger, MAKER.pubkey(), mint_out)

    def held() -> int:
        account = ledger.get_account(out_account)
        return int.from_bytes(bytes(account.data)[64:72], "little") if account else 0

    tx = market.swap_transaction(ledger, MAKER, pool, mint_in, amount, min_out)
    if not land:
        outcome = ledger.simulate(tx, addresses=[out_account])
        if outcome.err is not None:
            return outcome, 0
        after = outcome.accounts[0]
        received = int.from_bytes(bytes(after.data)[64:72], "little") - held() if after else 0
        return outcome, received
    before = held()
    record = ledger.land_now(tx)
    return Outcome(record.err, record.logs, record.units, record.fee, True), held() - before


def error_name(logs: list[str]) -> str | None:
    """The Anchor error a program logged ("... Error Code: NotApproved. ...")."""
    for line in logs:
        if "Error Code: " in line:
            return line.split("Error Code: ")[1].split(".")[0]
    return None


TALLY: Counter[str] = Counter()


def amounts() -> st.SearchStrategy[int]:
    """From 1 base unit to 10^12 (a million tokens of 6 decimals, as deep as the pools), spread
    over the orders of magnitude, dust included."""
    return st.one_of(
        st.builds(
            lambda exponent, digit: digit * 10**exponent, st.integers(0, 11), st.integers(1, 9)
        ),
        st.integers(1, 10**12),
    )


@settings(
    max_examples=2_000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    which=st.integers(0, 10**6),
    a_to_b=st.booleans(),
    amount=amounts(),
    seconds=st.sampled_from([0, 0, 0, 1, 5, 30, 61, 300, 3_600, 4 * 3_600]),
    slots=st.sampled_from([0, 0, 1, 10, 150]),
    land=st.booleans(),
)
def property_the_engine_quotes_what_the_real_program_pays(
    world: World, which: int, a_to_b: bool, amount: int, seconds: int, slots: int, land: bool
) -> None:
    ledger = world.ledger
    label, pool = world.pools[which % len(world.pools)]
    TALLY["cases"] += 1
    if slots:
        ledger.warp_slots(slots)
    if seconds:
        ledger.shift_time(seconds)
    found = market.read_pool(ledger, pool)
    mint_in = found.mints[0] if a_to_b else found.mints[1]
    skipped: PoolNotTradable | None = None
    try:
        quote = engine_quote(ledger, pool, mint_in, amount)
    except PoolNotTradable as refused:
        skipped = refused
    if skipped is not None:
        outcome, received = run_swap(ledger, pool, mint_in, amount, 1, land=False)
        if skipped.code in POLICY_SKIPS:
            event(f"engine policy skip: {skipped.code}")
            return
        # The program refuses the swap (a minimum of one unit, as the engine would send).
        assert outcome.err is not None, (label, skipped.code, skipped.detail, received)
        expected = skipped.detail.get("programError")
        if expected is not None:
            assert error_name(outcome.logs) == expected, (label, outcome.logs[-3:])
        event(f"refused by both: {skipped.code}")
        TALLY["refused"] += 1
        return
    outcome, received = run_swap(ledger, pool, mint_in, amount, max(quote.amount_out, 1), land)
    assert outcome.err is None, (label, amount, quote, outcome.logs[-4:])
    assert received == quote.amount_out, (label, amount, received, quote)
    event(f"paid the quote: {label.split(':')[0]}")
    TALLY["matched"] += 1


def test_the_property_ran_on_every_pool_and_matched_most_cases(world: World) -> None:
    """Not vacuous: most cases trade (the refusals are a minority) on real pools."""
    # One test runs the property and then judges its tally: two tests sharing a module
    # global would see an empty tally whenever pytest-xdist ran them in two workers.
    TALLY.clear()
    property_the_engine_quotes_what_the_real_program_pays(world=world)
    assert TALLY["matched"] > TALLY["cases"] // 2
    for _, pool in world.pools:
        assert decode_pool(pool, world.ledger.get_account(pool))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# What the programs accept and refuse, and the clock they read.
# ---------------------------------------------------------------------------------------------
def test_the_0_2_0_program_accepts_every_seeded_config() -> None:
    """One pool per static Config (each fee mode): the program creates it and trades on it."""
    factory = PoolFactory()
    mint = factory.mint(6)
    for index in seed.DAMM_CONFIGS:
        pool = factory.damm(mint, USDC, 10**12, 10**12, config=index)
        account = factory.ledger.get_account(pool)
        assert account is not None
        found = decode_pool(pool, account)
        assert found.venue == "meteora_damm_v2"
    for index in seed.CPMM_CONFIGS:
        factory.cpmm(mint, USDC, 10**12, 10**12, config=index)


def test_a_real_mainnet_config_creates_a_pool() -> None:
    """The mainnet Config in ../shared/fixtures/damm_v2 (index 38: a 50 % exponential
    scheduler over 120 minutes), written at its address, is one the program builds pools on."""
    data = shared_path("fixtures", "damm_v2", "config_account.bin").read_bytes()
    index = int.from_bytes(data[208:216], "little")
    assert index == 38
    factory = PoolFactory()
    address = damm_config_address(index)
    rent = factory.ledger.rent_exempt_minimum(len(data))
    factory.ledger.set_account(address, Account(rent, data, DAMM_PROGRAM, False, 0))
    seed.DAMM_CONFIG_ADDRESSES[index] = address
    try:
        mint = factory.mint(6)
        pool = factory.damm(mint, USDC, 10**12, 10**12, config=index)
        factory.ledger.shift_time(60)
        quote = engine_quote(factory.ledger, pool, mint, 10**9)
        _, received = run_swap(factory.ledger, pool, mint, 10**9, quote.amount_out, land=True)
        assert received == quote.amount_out
    finally:
        del seed.DAMM_CONFIG_ADDRESSES[index]


def test_damm_pays_nothing_for_a_dust_swap_at_minimum_0_and_the_engine_never_asks_0() -> None:
    """DAMM v2 accepts a swap that pays 0 when its minimum is 0 (it keeps the input); the
    engine's minimum output is at least one unit whatever the slippage, which it refuses."""
    factory = PoolFactory()
    ledger = factory.ledger
    pool = seed.POOLS["meteora_damm_v2"]
    outcome, received = run_swap(ledger, pool, USDC, 1, 0, land=False)
    assert outcome.err is None
    assert received == 0
    refused, _ = run_swap(ledger, pool, USDC, 1, 1, land=False)
    assert refused.err is not None
    assert error_name(refused.logs) == "ExceededSlippage"
    # An order whose quote is a single unit, at 50 % slippage: floor(0.5) would be 0.
    now = datetime.now(UTC)
    order = Order(
        id=uuid.uuid4(),
        created_at=now,
        updated_at=now,
        request={},
        token_in="USDC",
        token_out="SOL",
        mint_in=str(USDC),
        mint_out=str(WRAPPED_SOL_MINT),
        amount_in=Decimal("0.000001"),
        slippage=Decimal(50),
        order_type="market",
        status=Status.ROUTING,
        seq=0,
        request_hash="",
        decimals_out=9,
        amount_out=Decimal(1),
    )
    assert order_minimum_out(order) == 1


def test_open_time_activation_and_fees_follow_the_chain_clock() -> None:
    """A CPMM open time, DAMM v2 activation by slot and by timestamp, a scheduler's period and
    the dynamic fee's decay each change what a swap does as the chain's clock moves (no
    sleeping: the clock is moved)."""
    factory = PoolFactory()
    ledger = factory.ledger
    mint = factory.mint(6)
    now = ledger.clock()
    cpmm = factory.cpmm(mint, USDC, 10**12, 10**12, open_time=now.unix_timestamp + 600)
    by_time = factory.damm(
        mint, USDC, 10**12, 10**12, config=0, activation_point=now.unix_timestamp + 600
    )
    by_slot = factory.damm(mint, USDC, 10**12, 10**12, config=2, activation_point=now.slot + 50)
    for pool, name in ((cpmm, "NotApproved"), (by_time, "PoolDisabled"), (by_slot, "PoolDisabled")):
        with pytest.raises(PoolNotTradable) as skipped:
            engine_quote(ledger, pool, mint, 10**6)
        assert skipped.value.code == "not_open"
        outcome, _ = run_swap(ledger, pool, mint, 10**6, 1, land=False)
        assert error_name(outcome.logs) == name
    ledger.warp_slots(50)  # slot reached; 20 s of time too, not 600
    assert_pays_quote(ledger, by_slot, mint)
    for pool in (cpmm, by_time):
        outcome, _ = run_swap(ledger, pool, mint, 10**6, 1, land=False)
        assert outcome.err is not None
    ledger.shift_time(600)
    assert_pays_quote(ledger, cpmm, mint)
    assert_pays_quote(ledger, by_time, mint)

    # The exponential scheduler (config 2, by slot): 2 % now, less 100 slots later.
    before = fee_numerator(ledger, by_slot, mint)
    ledger.warp_slots(100)
    after = fee_numerator(ledger, by_slot, mint)
    assert after < before
    assert_pays_quote(ledger, by_slot, mint)

    # The dynamic fee (config 0): a large trade raises the volatility, time decays it.
    calm = fee_numerator(ledger, by_time, mint)
    factory.swap(by_time, mint, 10**11)
    ledger.shift_time(11)  # past the filter period: the reference moves to the last price
    excited = fee_numerator(ledger, by_time, mint)
    assert excited > calm
    assert_pays_quote(ledger, by_time, mint)
    ledger.shift_time(3_600)  # past the decay period: the volatility is forgotten
    assert fee_numerator(ledger, by_time, mint) < excited
    assert_pays_quote(ledger, by_time, mint)


@pytest.mark.parametrize("venue", ["raydium_cpmm", "meteora_damm_v2"])
def test_a_mints_newer_transfer_fee_applies_from_its_epoch(venue: str) -> None:
    """A Token-2022 mint charging 1 % until epoch 1 and 5 % from then: when the chain reaches
    epoch 1 (432,000 slots on), the program withholds the newer fee and the engine quotes it."""
    factory = PoolFactory()
    ledger = factory.ledger
    mint = factory.mint(6, transfer_fee_bps=100, newer_fee=(1, 500))
    if venue == "raydium_cpmm":
        pool = factory.cpmm(mint, USDC, 10**12, 10**12)
        ledger.shift_time(1)
    else:
        pool = factory.damm(mint, USDC, 10**12, 10**12, config=1)
    paid: list[int] = []
    for _ in range(2):
        quote = engine_quote(ledger, pool, mint, 10**8)
        assert quote.transfer_fee_in == 10**8 * (1 if not paid else 5) // 100
        outcome, received = run_swap(ledger, pool, mint, 10**8, quote.amount_out, land=True)
        assert outcome.err is None, outcome.logs[-3:]
        assert received == quote.amount_out
        paid.append(received)
        ledger.warp_slots(432_000 - ledger.clock().slot % 432_000)  # the next epoch's first slot
    assert ledger.clock().epoch == 2
    assert paid[1] < paid[0]


@pytest.mark.parametrize("venue", ["raydium_cpmm", "meteora_damm_v2"])
def test_an_input_eaten_by_its_transfer_fee_is_no_output_and_refused(venue: str) -> None:
    """A mint whose transfer fee becomes 100 % (from epoch 1): nothing reaches the pool, the
    engine skips it as no_output and the program refuses the swap."""
    factory = PoolFactory()
    ledger = factory.ledger
    mint = factory.mint(6, transfer_fee_bps=100, newer_fee=(1, 10_000))
    if venue == "raydium_cpmm":
        pool = factory.cpmm(mint, USDC, 10**12, 10**12)
    else:
        pool = factory.damm(mint, USDC, 10**12, 10**12, config=1)
    ledger.warp_slots(432_000)  # epoch 1
    with pytest.raises(PoolNotTradable) as skipped:
        engine_quote(ledger, pool, mint, 10**6)
    assert skipped.value.code == "no_output"
    outcome, _ = run_swap(ledger, pool, mint, 10**6, 1, land=False)
    assert outcome.err is not None


def test_a_swap_past_a_narrow_price_range_is_below_min_liquidity_and_refused() -> None:
    """A customizable DAMM v2 pool with a narrow price range (0.25 to 4): a swap that would push
    the price out of it is an engine-policy skip (below_min_liquidity) naming the program's
    error, and the program refuses it with that error."""
    factory = PoolFactory()
    mint = factory.mint(6)
    pool = factory.damm(
        mint,
        USDC,
        10**9,
        10**9,
        fees=builders.CustomizableFees(dynamic_fee=None),
        sqrt_price_range=(2**63, 2**65),
    )
    with pytest.raises(PoolNotTradable) as skipped:
        engine_quote(factory.ledger, pool, USDC, 10**12)
    assert skipped.value.code == "below_min_liquidity"
    assert skipped.value.detail["programError"] == "PriceRangeViolation"
    outcome, _ = run_swap(factory.ledger, pool, USDC, 10**12, 1, land=False)
    assert error_name(outcome.logs) == "PriceRangeViolation"
    assert_pays_quote(factory.ledger, pool, USDC)  # a small swap stays inside and trades


def fee_numerator(ledger: Ledger, pool: Pubkey, mint_in: Pubkey) -> int:
    quote = engine_quote(ledger, pool, mint_in, 10**6)
    return int(quote.notes["feeNumerator"])


def assert_pays_quote(ledger: Ledger, pool: Pubkey, mint_in: Pubkey) -> None:
    quote = engine_quote(ledger, pool, mint_in, 10**6)
    outcome, received = run_swap(ledger, pool, mint_in, 10**6, quote.amount_out, land=True)
    assert outcome.err is None, outcome.logs[-3:]
    assert received == quote.amount_out


def test_no_module_under_local_keeps_dex_math() -> None:
    """The local chain holds no port of a DEX program: no swap curve, fee or state transition
    of Raydium CPMM or Meteora DAMM v2 in local/ (the real binaries do all of it)."""
    from local.shared import REPO_ROOT

    markers = (
        "swap_base_input(",
        "get_next_sqrt_price",
        "fee_in_period",
        "volatility_accumulator =",
        "def curve_",
        "calculate_fee(",
        "trade_fee_rate *",
        "sqrt_price_from",
    )
    offenders = [
        f"{path.relative_to(REPO_ROOT)}: {marker}"
        for path in (REPO_ROOT / "local").rglob("*.py")
        for marker in markers
        if marker in path.read_text()
    ]
    assert offenders == []
    assert not (REPO_ROOT / "local" / "chain" / "programs").exists()


def test_quote_is_a_venue_error_for_a_mint_outside_the_pool(world: World) -> None:
    with pytest.raises(VenueError):
        engine_quote(world.ledger, seed.POOLS["raydium_cpmm"], seed.T22_MINT, 10**6)
