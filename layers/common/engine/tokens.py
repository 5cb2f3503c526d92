"""Token registry: symbols users may name, and their mints on the configured cluster."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Token:
    symbol: str
    mint: str
    decimals: int


WSOL_MINT = "So11111111111111111111111111111111111111112"
# Circle's devnet USDC mint; the local chain creates its USDC at this same address.
USDC_DEVNET_MINT = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"

REGISTRY: dict[str, Token] = {
    "SOL": Token("SOL", WSOL_MINT, 9),
    "USDC": Token("USDC", USDC_DEVNET_MINT, 6),
}
BY_MINT: dict[str, Token] = {t.mint: t for t in REGISTRY.values()}
