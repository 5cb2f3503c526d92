"""The common layer's base58 agrees with solders (what the chain side uses) on every address."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from engine import base58

ALPHABET = st.sampled_from(base58.ALPHABET + "0OIl+/ ")


@given(st.binary(min_size=32, max_size=32))
def test_every_32_byte_key_round_trips_as_solders_writes_it(raw: bytes) -> None:
    text = str(Pubkey(raw))
    assert base58.encode(raw) == text
    assert base58.decode(text) == raw
    assert base58.is_pubkey(text)


@given(st.text(ALPHABET, min_size=0, max_size=50))
def test_is_pubkey_accepts_exactly_what_solders_accepts(text: str) -> None:
    try:
        Pubkey.from_string(text)
        solders_accepts = True
    except ValueError:
        solders_accepts = False
    assert base58.is_pubkey(text) == solders_accepts


def test_known_addresses() -> None:
    assert base58.is_pubkey("So11111111111111111111111111111111111111112")
    assert base58.is_pubkey("11111111111111111111111111111111")  # 32 zero bytes
    assert not base58.is_pubkey("1111111111111111111111111111111")  # 31
    assert not base58.is_pubkey("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncD0")  # '0'
