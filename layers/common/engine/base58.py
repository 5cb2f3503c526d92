"""Base58 (Bitcoin alphabet), as Solana writes addresses and signatures.

Here, not solders, because the API functions must validate a mint address without the Solana
layer (only the execute function carries solana/solders).
"""

from __future__ import annotations

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: i for i, char in enumerate(ALPHABET)}
PUBKEY_BYTES = 32


def decode(text: str) -> bytes:
    """The bytes `text` encodes; ValueError for a character outside the alphabet."""
    number = 0
    for char in text:
        digit = _INDEX.get(char)
        if digit is None:
            raise ValueError(f"invalid base58 character {char!r}")
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * zeros + body


def encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, digit = divmod(number, 58)
        out.append(ALPHABET[digit])
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(out))


def is_pubkey(text: str) -> bool:
    """Is `text` a Solana address: base58 of exactly 32 bytes (what Pubkey.from_string takes)?"""
    if not 32 <= len(text) <= 44:
        return False
    try:
        return len(decode(text)) == PUBKEY_BYTES
    except ValueError:
        return False
