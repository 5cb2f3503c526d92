"""The signing wallet. Its secret comes from Secrets Manager (cloud) or WALLET_PRIVATE_KEY
(local) and never leaves this module: the Wallet's repr and str show only the public key."""

from __future__ import annotations

import json
import os
from functools import lru_cache

from engine.config import settings
from solders.keypair import Keypair
from solders.pubkey import Pubkey


class Wallet:
    __slots__ = ("_keypair",)

    def __init__(self, keypair: Keypair) -> None:
        self._keypair = keypair

    @property
    def pubkey(self) -> Pubkey:
        return self._keypair.pubkey()

    @property
    def signer(self) -> Keypair:
        return self._keypair

    def __repr__(self) -> str:  # solders' Keypair str() is the base58 secret: never show it
        return f"Wallet({self.pubkey})"

    __str__ = __repr__


def parse_secret(secret: str) -> Keypair:
    """Accept the two encodings wallets export: base58 string, or a JSON array of 64 bytes."""
    text = secret.strip()
    try:
        if text.startswith("["):
            return Keypair.from_bytes(bytes(json.loads(text)))
        return Keypair.from_base58_string(text)
    except (ValueError, TypeError):
        # Say nothing of the value: a partly valid secret in a log is still a leak.
        raise ValueError("the wallet secret is not a base58 key or a 64-byte JSON array") from None


@lru_cache(maxsize=1)
def load_wallet() -> Wallet:
    arn = settings().wallet_secret_arn
    if arn:
        from aws_lambda_powertools.utilities import parameters

        value = parameters.get_secret(arn, max_age=3600)
        return Wallet(parse_secret(value if isinstance(value, str) else value.decode()))
    local = os.environ.get("WALLET_PRIVATE_KEY")
    if not local:
        raise RuntimeError("set WALLET_SECRET_ARN (cloud) or WALLET_PRIVATE_KEY (local)")
    return Wallet(parse_secret(local))
