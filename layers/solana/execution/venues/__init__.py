"""DEX venues the router can quote and the builder can swap on.

Each venue decodes a pool account into a state object, names the extra accounts its quote reads,
quotes an exact-input swap with the program's own integer math, and builds the program's swap
instruction. The program id always comes from the pool account's owner, so one code path serves
devnet, mainnet and the local chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from solders.instruction import Instruction
from solders.pubkey import Pubkey


@dataclass(frozen=True)
class Quote:
    amount_out: int
    fee_amount: int  # in input-token base units
    price_impact_pct: float  # curve impact against the spot price, fees excluded, in percent


class Venue(Protocol):
    compute_units: int

    def decode_pool(self, data: bytes, owner: Pubkey, address: Pubkey) -> Any: ...

    def dependent_accounts(self, state: Any) -> list[Pubkey]: ...

    def pool_mints(self, state: Any) -> tuple[Pubkey, Pubkey]: ...

    def quote(
        self, state: Any, data_by_pubkey: dict[Pubkey, bytes], mint_in: Pubkey, amount_in: int
    ) -> Quote: ...

    def swap_instruction(
        self,
        state: Any,
        user: Pubkey,
        ata_in: Pubkey,
        ata_out: Pubkey,
        mint_in: Pubkey,
        amount_in: int,
        min_out: int,
    ) -> Instruction: ...


# The venue modules import Quote from this package, so they can only be imported once it exists.
from execution.venues import meteora_damm_v2, raydium_cpmm  # noqa: E402

VENUES: dict[str, Venue] = {
    "raydium_cpmm": raydium_cpmm.VENUE,
    "meteora_damm_v2": meteora_damm_v2.VENUE,
}


def slippage_error_codes() -> tuple[int, ...]:
    """Custom error codes the venues' programs return when the output is below the minimum."""
    return (raydium_cpmm.EXCEEDED_SLIPPAGE, meteora_damm_v2.EXCEEDED_SLIPPAGE)


__all__ = ["VENUES", "Quote", "Venue", "slippage_error_codes"]
