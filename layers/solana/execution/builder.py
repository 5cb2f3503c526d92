"""Building and signing the swap: one v0 transaction with a compute budget, idempotent ATAs,
SOL wrap/unwrap when SOL is a side, and one swap instruction per leg of the order's route (a
single pool, or a split over several pools), each with its own minimum output, so the order
lands whole or not at all. The serialized size is checked before signing: two legs fit 1,232
bytes without an address lookup table; a route of more legs is compiled with the wallet's
table (execution/lookup.py, `Prepared.lookup_tables`), which routing checked holds every pool
account of the route and was last extended before the current slot."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from typing import Any

from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import Instruction
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    close_account,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    sync_native,
)
from spl.token.models import CloseAccountParams, SyncNativeParams

from engine.errors import PermanentChainError
from engine.store import Order
from engine.tokens import WSOL_MINT
from execution.chain import Chain, instruction_program_ids, transaction_error
from execution.fees import capped_price
from execution.lookup import Table
from execution.venues import VENUES
from execution.wallet import Wallet

WSOL = Pubkey.from_string(WSOL_MINT)
# The limit a swap is simulated with: the most a transaction may ask for, so the simulation
# measures what the swap uses instead of running out.
SIMULATION_UNIT_LIMIT = 1_400_000
MAX_TRANSACTION_BYTES = 1_232  # a packet's payload: the most a transaction may serialize to


@dataclass(frozen=True)
class Leg:
    """One swap of the route: its quote (`venue`, `pool`, `mintIn`, `mintOut`, token programs,
    `amountInUnits`), the pool's decoded state and the leg's minimum output in base units."""

    quote: dict[str, Any]
    state: Any
    min_out: int


@dataclass(frozen=True)
class FeePlan:
    """What the swap may pay for priority: the price routing (or a fresh reading) chose, the
    order's cap on the total, and the margin over the simulated units for the CU limit."""

    micro_lamports: int
    max_lamports: int
    unit_margin: float


@dataclass(frozen=True)
class Signed:
    transaction: VersionedTransaction
    last_valid_block_height: int
    compute_unit_limit: int
    priority_fee_micro_lamports: int
    simulated_slot: int  # the slot the simulation ran at, just before the first send


def chosen_quote(order: Order) -> dict[str, Any]:
    for q in order.quotes:
        if q["pool"] == order.pool and q["venue"] == order.venue and "skipped" not in q:
            return dict(q)
    raise PermanentChainError("the order has no quote for its chosen pool", "unknown_pool")


def route_legs(order: Order) -> list[dict[str, Any]]:
    """The legs the order's transaction swaps on, each with `minAmountOutUnits`: its stored
    route's, or (an order routed before split routes) its chosen pool with the order's
    minimum."""
    if order.route and all("minAmountOutUnits" in leg for leg in order.route["legs"]):
        return [dict(leg) for leg in order.route["legs"]]
    quote = chosen_quote(order)
    quote["minAmountOutUnits"] = str(int(order.min_amount_out or 0))
    return [quote]


def swap_instructions(
    wallet: Pubkey,
    legs: list[Leg],
    unit_limit: int,
    priority_fee: int,
    order_id: str,
) -> list[Instruction]:
    quote = legs[0].quote
    mint_in = Pubkey.from_string(quote["mintIn"])
    mint_out = Pubkey.from_string(quote["mintOut"])
    program_in = Pubkey.from_string(quote.get("tokenProgramIn") or str(TOKEN_PROGRAM_ID))
    program_out = Pubkey.from_string(quote.get("tokenProgramOut") or str(TOKEN_PROGRAM_ID))
    # What the swaps may take: an exact-out leg's maximum (the program returns the rest).
    amount_in = sum(
        int(leg.quote.get("maxAmountInUnits") or leg.quote["amountInUnits"]) for leg in legs
    )
    ata_in = get_associated_token_address(wallet, mint_in, program_in)
    ata_out = get_associated_token_address(wallet, mint_out, program_out)
    ixs = [
        set_compute_unit_limit(unit_limit),
        set_compute_unit_price(priority_fee),
        # The order id makes every order's transaction unique: two equal orders signed in the
        # same blockhash window would otherwise be byte-identical, one signature for two swaps.
        create_memo(
            MemoParams(program_id=MEMO_PROGRAM_ID, signer=wallet, message=order_id.encode())
        ),
        create_idempotent_associated_token_account(wallet, wallet, mint_in, program_in),
        create_idempotent_associated_token_account(wallet, wallet, mint_out, program_out),
    ]
    if mint_in == WSOL:
        ixs.append(
            transfer(TransferParams(from_pubkey=wallet, to_pubkey=ata_in, lamports=amount_in))
        )
        ixs.append(sync_native(SyncNativeParams(program_id=TOKEN_PROGRAM_ID, account=ata_in)))
    for leg in legs:  # never two legs on one pool (DAMM v2's rate limiter refuses it)
        venue = VENUES[leg.quote["venue"]]
        if leg.quote.get("exactOut"):  # exactly min_out, for at most maxAmountInUnits
            ixs.append(
                venue.swap_exact_out_instruction(
                    leg.state,
                    wallet,
                    ata_in,
                    ata_out,
                    mint_in,
                    leg.min_out,
                    int(leg.quote["maxAmountInUnits"]),
                )
            )
            continue
        ixs.append(
            venue.swap_instruction(
                leg.state,
                wallet,
                ata_in,
                ata_out,
                mint_in,
                int(leg.quote["amountInUnits"]),
                leg.min_out,
            )
        )
    wsol_ata = ata_in if mint_in == WSOL else ata_out if mint_out == WSOL else None
    if wsol_ata is not None:  # unwrap: every lamport of wrapped SOL goes back to the wallet
        ixs.append(
            close_account(
                CloseAccountParams(
                    program_id=TOKEN_PROGRAM_ID, account=wsol_ata, dest=wallet, owner=wallet
                )
            )
        )
    return ixs


@dataclass(frozen=True)
class Prepared:
    """What routing already read for this order, so building need not read it again: the
    route's pools' decoded states (address -> state) and a recent blockhash with its
    lastValidBlockHeight."""

    pool_states: dict[str, Any]
    blockhash: Hash
    last_valid_block_height: int
    priority_fee_micro_lamports: int | None = None  # the price the quotes were ranked with
    # The wallet's lookup table, for a route of more than two legs (routing checked it).
    lookup_tables: tuple[AddressLookupTableAccount, ...] = ()


async def build_swap(
    chain: Chain,
    wallet: Wallet,
    order: Order,
    fees: FeePlan,
    prepared: Prepared | None = None,
) -> Signed:
    """Sign a fresh transaction for the order's chosen pool: with what routing `prepared`, or
    (a resumed order, a replacement after expiry) the pool and a blockhash read now.

    The swap is simulated first (no signature check, the latest blockhash): a failure the
    simulation shows is raised as the chain would report it landed (slippage, funds, a pool
    that cannot trade: PermanentChainError), so the order fails before any fee is spent. The
    signed transaction then asks for the simulated units plus the margin, at the planned price
    lowered as far as the order's cap on the total priority fee requires."""
    if order.min_amount_out is None:
        raise PermanentChainError("the order has no minimum output yet", "invalid_state")
    quotes = route_legs(order)
    table = (order.route or {}).get("lookupTable")
    if prepared is None or any(q["pool"] not in prepared.pool_states for q in quotes):
        prepared = await _read_pools_and_blockhash(chain, quotes, table)
    legs = [Leg(q, prepared.pool_states[q["pool"]], int(q["minAmountOutUnits"])) for q in quotes]
    blockhash = prepared.blockhash
    tables = list(prepared.lookup_tables)

    def sign(unit_limit: int, price: int) -> VersionedTransaction:
        ixs = swap_instructions(wallet.pubkey, legs, unit_limit, price, str(order.id))
        message = MessageV0.try_compile(wallet.pubkey, ixs, tables, blockhash)
        signed = VersionedTransaction(message, [wallet.signer])
        size = len(bytes(signed))
        if size > MAX_TRANSACTION_BYTES:
            raise PermanentChainError(
                f"the route's transaction would be {size} bytes, over the"
                f" {MAX_TRANSACTION_BYTES} a transaction may have",
                "transaction_too_large",
            )
        return signed

    trial = sign(SIMULATION_UNIT_LIMIT, fees.micro_lamports)
    simulated = await chain.simulate(trial)
    if simulated.err is not None:
        raise transaction_error(json.dumps(simulated.err), instruction_program_ids(bytes(trial)))
    unit_limit = min(
        SIMULATION_UNIT_LIMIT, math.ceil(simulated.units_consumed * (1 + fees.unit_margin))
    )
    price = capped_price(fees.micro_lamports, unit_limit, fees.max_lamports)
    return Signed(
        sign(unit_limit, price),
        prepared.last_valid_block_height,
        unit_limit,
        price,
        simulated.slot,
    )


async def _read_pools_and_blockhash(
    chain: Chain, quotes: list[dict[str, Any]], table: str | None
) -> Prepared:
    """The route's pools, its lookup table when it has one (a route of more than two legs
    routed with the wallet's table), and a blockhash."""
    pools = [Pubkey.from_string(q["pool"]) for q in quotes]
    table_key = [Pubkey.from_string(table)] if table else []
    accounts, (blockhash, last_valid) = await asyncio.gather(
        chain.accounts([*pools, *table_key]), chain.latest_blockhash()
    )
    tables: tuple[AddressLookupTableAccount, ...] = ()
    for key in table_key:
        found = accounts.get(key)
        if found is None:
            raise PermanentChainError(f"the route's lookup table {key} is gone", "invalid_state")
        tables = (Table.decode(key, bytes(found.data)).account(),)
    states: dict[str, Any] = {}
    for quote, pool in zip(quotes, pools, strict=True):
        account = accounts[pool]
        if account is None:
            raise PermanentChainError(f"pool {pool} does not exist", "unknown_pool")
        states[str(pool)] = VENUES[quote["venue"]].decode_pool(
            bytes(account.data), account.owner, pool
        )
    return Prepared(states, blockhash, last_valid, lookup_tables=tables)
