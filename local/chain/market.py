"""Trading on the local chain as any user does: a swap is the venue's own swap instruction
(the engine's `VENUE.swap_instruction`), signed and executed by the real program in LiteSVM.

`move_price` is how prices move here (tests, `/admin/pool_price`, the bench): the market maker
swaps until the pool's price is the one asked for. The amount is found by bisection over
simulations of that swap by the program itself, so nothing here computes a pool's state: the
price is read from what the program leaves (a CPMM pool's vault balances less the fees owed, a
DAMM v2 pool's sqrt price).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

from solders.account import Account
from solders.compute_budget import set_compute_unit_limit
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.instructions import get_associated_token_address

from execution.discovery import FoundPool, decode_pool, pool_reserves
from execution.venues import VENUES
from local.chain.ledger import Ledger, Outcome, SendError, TxRecord, describe

SWAP_UNIT_LIMIT = 400_000
_nonce = itertools.count()  # a memo per swap: the same swap twice is two transactions


class MarketError(RuntimeError):
    """A swap the market maker needed was refused (its program's logs in `logs`)."""

    def __init__(self, message: str, logs: list[str] | None = None) -> None:
        super().__init__(message)
        self.logs = logs or []


def read_pool(ledger: Ledger, pool: Pubkey) -> FoundPool:
    account = ledger.get_account(pool)
    if account is None:
        raise MarketError(f"pool {pool} does not exist")
    return decode_pool(pool, account)


def token_account(ledger: Ledger, owner: Pubkey, mint: Pubkey) -> Pubkey:
    """`owner`'s associated token account of `mint`, under the mint's token program."""
    account = ledger.get_account(mint)
    if account is None:
        raise MarketError(f"mint {mint} does not exist")
    return get_associated_token_address(owner, mint, account.owner)


def swap_transaction(
    ledger: Ledger, trader: Keypair, pool: Pubkey, mint_in: Pubkey, amount_in: int, min_out: int = 1
) -> VersionedTransaction:
    """An exact-input swap of `amount_in` of `mint_in` on `pool`, paid by `trader`."""
    found = read_pool(ledger, pool)
    mints = found.mints
    mint_out = mints[1] if mint_in == mints[0] else mints[0]
    owner = trader.pubkey()
    instructions: list[Instruction] = [
        set_compute_unit_limit(SWAP_UNIT_LIMIT),
        create_memo(
            MemoParams(
                program_id=MEMO_PROGRAM_ID,
                signer=owner,
                message=f"market maker swap {next(_nonce)}".encode(),
            )
        ),
        VENUES[found.venue].swap_instruction(
            found.state,
            owner,
            token_account(ledger, owner, mint_in),
            token_account(ledger, owner, mint_out),
            mint_in,
            amount_in,
            min_out,
        ),
    ]
    blockhash, _ = ledger.latest_blockhash()
    message = Message.new_with_blockhash(instructions, owner, blockhash)
    return VersionedTransaction(message, [trader])


def swap(
    ledger: Ledger, trader: Keypair, pool: Pubkey, mint_in: Pubkey, amount_in: int, min_out: int = 1
) -> TxRecord:
    """Send the swap and return its landed record; a refusal or a failure raises MarketError."""
    tx = swap_transaction(ledger, trader, pool, mint_in, amount_in, min_out)
    try:
        record = ledger.land_now(tx)
    except SendError as exc:
        logs = exc.outcome.logs if exc.outcome is not None else []
        raise MarketError(f"swap on {pool} refused: {exc.message}", logs) from None
    if record.err is not None:
        raise MarketError(f"swap on {pool} failed: {describe(record.err)}", record.logs)
    return record


def pool_price(ledger: Ledger, found: FoundPool, base_mint: Pubkey) -> Fraction:
    """Base units of the other mint per base unit of `base_mint`, as the pool now prices it."""
    accounts = {key: ledger.get_account(key) for key in found.depends_on}
    return _price(found, accounts, base_mint)


def _price(found: FoundPool, accounts: Mapping[Pubkey, Account | None], base: Pubkey) -> Fraction:
    """The price `found` quotes for `base`, read from the pool (DAMM v2: its sqrt price, Q64.64
    of token B per token A) or its vaults (CPMM: what they hold less the fees owed)."""
    if found.venue == "meteora_damm_v2":
        b_per_a = Fraction(found.state.sqrt_price**2, 1 << 128)
        return b_per_a if base == found.mints[0] else 1 / b_per_a
    data = {key: bytes(a.data) for key, a in accounts.items() if a is not None}
    reserves = pool_reserves(found.venue, found.state, data)
    quote_mint = next(m for m in found.mints if m != base)
    return Fraction(reserves[quote_mint], max(reserves[base], 1))


def _price_after(
    ledger: Ledger, trader: Keypair, pool: Pubkey, mint_in: Pubkey, amount: int, base: Pubkey
) -> Fraction | None:
    """The pool's price if the swap ran now (None: the program refuses it)."""
    tx = swap_transaction(ledger, trader, pool, mint_in, amount, 0)
    depends_on = read_pool(ledger, pool).depends_on
    outcome: Outcome = ledger.simulate(tx, addresses=[pool, *depends_on])
    if outcome.err is not None or outcome.accounts[0] is None:
        return None
    found = decode_pool(pool, outcome.accounts[0])
    return _price(found, dict(zip(depends_on, outcome.accounts[1:], strict=True)), base)


def move_price(
    ledger: Ledger, trader: Keypair, pool: Pubkey, base_mint: Pubkey, price: Fraction
) -> TxRecord | None:
    """Swap until `pool` prices `base_mint` at `price` (base units of the other mint per base
    unit), as near as one swap gets: the smallest swap that reaches it, or the largest the
    trader can pay. None when the pool is at the price already or no swap moves it."""
    with ledger.lock:
        found = read_pool(ledger, pool)
        now = pool_price(ledger, found, base_mint)
        if now == price:
            return None
        quote_mint = next(m for m in found.mints if m != base_mint)
        rising = price > now
        mint_in = quote_mint if rising else base_mint
        held = ledger.get_account(token_account(ledger, trader.pubkey(), mint_in))
        if held is None:
            raise MarketError(f"{trader.pubkey()} holds no {mint_in}")
        budget = int.from_bytes(bytes(held.data)[64:72], "little")

        def reached(amount: int) -> bool:
            after = _price_after(ledger, trader, pool, mint_in, amount, base_mint)
            if after is None:
                return False
            return after >= price if rising else after <= price

        low, high = 1, max(budget, 1)
        if not reached(high):
            # Not reachable in one swap the trader can pay (or a refused one): go as far as the
            # largest amount the program accepts.
            while high > 0 and _price_after(ledger, trader, pool, mint_in, high, base_mint) is None:
                high //= 2
            return swap(ledger, trader, pool, mint_in, high, 0) if high > 0 else None
        while low < high:
            middle = (low + high) // 2
            if reached(middle):
                high = middle
            else:
                low = middle + 1
        return swap(ledger, trader, pool, mint_in, low, 0)


def whole_price(ledger: Ledger, base_mint: Pubkey, quote_mint: Pubkey, price: Decimal) -> Fraction:
    """A price in whole tokens (e.g. 143 USDC per SOL) as base units per base unit."""
    decimals = []
    for mint in (base_mint, quote_mint):
        account = ledger.get_account(mint)
        if account is None:
            raise MarketError(f"mint {mint} does not exist")
        decimals.append(bytes(account.data)[44])
    return Fraction(price) * Fraction(10 ** decimals[1], 10 ** decimals[0])
