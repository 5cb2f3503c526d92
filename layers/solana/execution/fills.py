"""What an order actually got, read from its landed transaction (getTransaction's meta).

Token sides are the wallet's token balance changes (`preTokenBalances` / `postTokenBalances`,
the wallet as owner): what left it and what reached it, so a Token-2022 transfer fee shows as
the user bears it. SOL sides are the wallet's lamport change (it is the fee payer, account 0)
net of the transaction fee and of the rent it put into token accounts the swap created and kept
(an output token's new associated account); the wrapped-SOL account the swap opens and closes
gives its rent back within the transaction, so it nets out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.tokens import WSOL_MINT
from execution.fees import BASE_FEE_LAMPORTS_PER_SIGNATURE


@dataclass(frozen=True)
class Fill:
    amount_in_units: int
    amount_out_units: int
    fee_lamports: int
    priority_fee_lamports: int
    compute_units: int
    slot: int


def _token_balances(entries: list[dict[str, Any]] | None, owner: str) -> dict[str, int]:
    """mint -> base units the owner holds, summed over its accounts in the list."""
    held: dict[str, int] = {}
    for entry in entries or []:
        if entry.get("owner") == owner:
            amount = int(entry["uiTokenAmount"]["amount"])
            held[entry["mint"]] = held.get(entry["mint"], 0) + amount
    return held


def _rent_kept(meta: dict[str, Any], owner: str) -> int:
    """Lamports the fee payer put into token accounts of `owner` that the transaction created
    and that still exist after it (their balance before was 0)."""
    pre, post = meta["preBalances"], meta["postBalances"]
    created = {
        int(entry["accountIndex"])
        for entry in meta.get("postTokenBalances") or []
        if entry.get("owner") == owner
    }
    return sum(post[i] for i in created if i != 0 and pre[i] == 0)


def realized(tx: dict[str, Any], wallet: str, mint_in: str, mint_out: str) -> Fill:
    """The fill of a landed swap transaction signed (and paid for) by `wallet`."""
    meta = tx["meta"]
    fee = int(meta["fee"])
    signatures = len(tx["transaction"]["signatures"])
    before = _token_balances(meta.get("preTokenBalances"), wallet)
    after = _token_balances(meta.get("postTokenBalances"), wallet)
    lamports_change = int(meta["postBalances"][0]) - int(meta["preBalances"][0])
    sol_change = lamports_change + fee + _rent_kept(meta, wallet)

    def change(mint: str) -> int:
        if mint == WSOL_MINT:
            return sol_change
        return after.get(mint, 0) - before.get(mint, 0)

    return Fill(
        amount_in_units=-change(mint_in),
        amount_out_units=change(mint_out),
        fee_lamports=fee,
        priority_fee_lamports=max(0, fee - BASE_FEE_LAMPORTS_PER_SIGNATURE * signatures),
        compute_units=int(meta.get("computeUnitsConsumed") or 0),
        slot=int(tx["slot"]),
    )


def vault_outflows(tx: dict[str, Any], vaults: list[str]) -> list[int]:
    """What left each of `vaults` (a route's legs' output vaults) in the landed transaction:
    each leg's realized output, as its pool paid it (a Token-2022 output's transfer fee is
    withheld after). A vault the transaction does not name paid nothing."""
    message = tx["transaction"]["message"]
    keys = [k if isinstance(k, str) else k["pubkey"] for k in message["accountKeys"]]
    meta = tx["meta"]
    loaded = meta.get("loadedAddresses") or {}
    keys += list(loaded.get("writable") or []) + list(loaded.get("readonly") or [])

    def amounts(entries: list[dict[str, Any]] | None) -> dict[str, int]:
        return {
            keys[int(e["accountIndex"])]: int(e["uiTokenAmount"]["amount"]) for e in entries or []
        }

    before, after = amounts(meta.get("preTokenBalances")), amounts(meta.get("postTokenBalances"))
    return [before.get(v, 0) - after.get(v, 0) for v in vaults]


def plain(units: int, decimals: int) -> str:
    return format(Decimal(units).scaleb(-decimals).normalize(), "f")


def filled_json(
    fill: Fill,
    *,
    decimals_in: int,
    decimals_out: int,
    quoted_out_units: int | None,
    sent_slot: int | None,
    sends: int,
) -> dict[str, Any]:
    """The `filled` object of a confirmed order: amounts in token units (decimal strings),
    `price` = tokenOut per tokenIn, `slippageBps` = the realized output against the chosen
    venue's quote (positive = worse than quoted)."""
    amount_in = Decimal(fill.amount_in_units).scaleb(-decimals_in)
    amount_out = Decimal(fill.amount_out_units).scaleb(-decimals_out)
    price = (amount_out / amount_in) if amount_in else Decimal(0)
    slippage_bps = None
    if quoted_out_units:
        shortfall = Decimal(quoted_out_units - fill.amount_out_units) / quoted_out_units
        slippage_bps = float(round(shortfall * 10_000, 2))
    return {
        "amountIn": plain(fill.amount_in_units, decimals_in),
        "amountOut": plain(fill.amount_out_units, decimals_out),
        "price": format(price.quantize(Decimal(1).scaleb(-decimals_out - 2)).normalize(), "f"),
        "quotedAmountOut": (
            plain(quoted_out_units, decimals_out) if quoted_out_units is not None else None
        ),
        "slippageBps": slippage_bps,
        "feeLamports": fill.fee_lamports,
        "priorityFeeLamports": fill.priority_fee_lamports,
        "computeUnits": fill.compute_units,
        "slot": fill.slot,
        "slotsToLand": (fill.slot - sent_slot) if sent_slot is not None else None,
        "sends": sends,
    }
