"""What the engine does with a Token-2022 mint whose extensions it does not model: it skips the
pool naming the extension (an engine-policy skip, `unsupported_token_extension`), accepts the
metadata extensions (they change no amount), and an inert transfer hook passes on DAMM v2 only
(CPMM's `is_supported_mint` refuses it). The pools are the real programs' (created by their
initialize transactions); only the mint the engine reads is another one, since the programs
would not create a pool of an unsupported mint in the first place."""

from __future__ import annotations

import pytest
from spl.token.constants import WRAPPED_SOL_MINT

from execution.venues import VENUES, Clock, PoolNotTradable, Quote
from local.chain import market, seed
from tests.pool_factory import PoolFactory

USDC = seed.USDC_MINT
VENUE_NAMES = ("raydium_cpmm", "meteora_damm_v2")


def t22_mint(entries: list[tuple[int, bytes]]) -> bytes:
    """A Token-2022 mint (6 decimals) carrying these TLV extensions."""
    base = seed.pack_mint(6, supply=10**15)
    tlv = b"".join(
        kind.to_bytes(2, "little") + len(value).to_bytes(2, "little") + value
        for kind, value in entries
    )
    return base + bytes(165 - 82) + bytes([1]) + tlv


def quote_with_usdc_as(venue: str, usdc: bytes) -> Quote:
    """The engine's quote of 0.001 SOL on the seeded SOL/USDC pool, reading `usdc` as the
    USDC mint's data."""
    factory = PoolFactory()
    ledger = factory.ledger
    pool = seed.POOLS[venue]
    found = market.read_pool(ledger, pool)
    keys = [*found.depends_on, *found.mints]
    data = {k: bytes(a.data) for k in keys if (a := ledger.get_account(k)) is not None}
    data[USDC] = usdc
    clock = ledger.clock()
    at = Clock(
        clock.slot,
        clock.epoch_start_timestamp,
        clock.epoch,
        clock.leader_schedule_epoch,
        clock.unix_timestamp,
    )
    return VENUES[venue].quote(found.state, data, WRAPPED_SOL_MINT, 10**6, at)


NO_FEE = bytes(64) + bytes(8) + (bytes(8) + bytes(8) + bytes(2)) * 2  # TransferFeeConfig, 0 %


@pytest.mark.parametrize("venue", VENUE_NAMES)
@pytest.mark.parametrize(
    ("extension", "name"),
    [(9, "NonTransferable"), (12, "PermanentDelegate"), (26, "Pausable"), (25, "ScaledUiAmount")],
)
def test_unmodelled_token_2022_extensions_are_named(venue: str, extension: int, name: str) -> None:
    with pytest.raises(PoolNotTradable) as skipped:
        quote_with_usdc_as(venue, t22_mint([(1, NO_FEE), (extension, bytes(33))]))
    assert skipped.value.code == "unsupported_token_extension"
    assert skipped.value.detail["extension"] == name
    assert name in str(skipped.value)


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_metadata_extensions_are_accepted(venue: str) -> None:
    # MetadataPointer, TokenMetadata.
    assert quote_with_usdc_as(venue, t22_mint([(18, bytes(64)), (19, bytes(80))])).amount_out > 0


def test_an_inert_transfer_hook_passes_on_damm_v2_only() -> None:
    hook = t22_mint([(14, bytes(64))])  # no authority, no program
    assert quote_with_usdc_as("meteora_damm_v2", hook).amount_out > 0
    with pytest.raises(PoolNotTradable) as skipped:
        quote_with_usdc_as("raydium_cpmm", hook)
    assert skipped.value.detail["extension"] == "TransferHook"
