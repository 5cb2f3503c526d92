"""Pools made by the real programs, for tests: a ledger with the programs loaded and the seed's
genesis accounts (its configs, its market maker), where each pool is created by its program's
own `initialize` / `initialize_pool` / `initialize_customizable_pool` transaction
(`local.pools`' builders) and traded by real swaps. Nothing here writes a pool's bytes.
"""

from __future__ import annotations

import hashlib
from itertools import count

from solders.account import Account
from solders.compute_budget import set_compute_unit_limit
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID
from spl.token.instructions import get_associated_token_address

from local import pools as builders
from local.chain import market, seed
from local.chain.ledger import Ledger

MAKER = seed.MARKET_MAKER_KEYPAIR
MAKER_TOKENS = 10**17  # what the maker holds of every mint made here
_labels = count()


def _keypair(label: str) -> Keypair:
    return Keypair.from_seed(hashlib.sha256(f"tests/pool-factory/{label}".encode()).digest())


def t22_mint_data(
    decimals: int,
    fee_bps: int,
    max_fee: int,
    authority: Pubkey,
    newer: tuple[int, int] | None = None,
) -> bytes:
    """A Token-2022 mint with a TransferFeeConfig: `fee_bps` from epoch 0, and `newer`
    (epoch, bps) from that epoch on when given (else the same fee in both slots)."""

    def fee(epoch: int, bps: int) -> bytes:
        return (
            epoch.to_bytes(8, "little") + max_fee.to_bytes(8, "little") + bps.to_bytes(2, "little")
        )

    config = bytes(64) + bytes(8) + fee(0, fee_bps) + fee(*(newer or (0, fee_bps)))
    tlv = (1).to_bytes(2, "little") + len(config).to_bytes(2, "little")
    base = seed.pack_mint(decimals, supply=MAKER_TOKENS, authority=authority)
    return base + bytes(165 - 82) + bytes([1]) + tlv + config


def t22_account_data(mint: Pubkey, owner: Pubkey, amount: int) -> bytes:
    tlv = (7).to_bytes(2, "little") + (0).to_bytes(2, "little")
    tlv += (2).to_bytes(2, "little") + (8).to_bytes(2, "little") + bytes(8)
    return seed.pack_token_account(mint, owner, amount) + bytes([2]) + tlv


class PoolFactory:
    """A seeded ledger (or the one given, seeded already) to create mints and pools on."""

    def __init__(self, ledger: Ledger | None = None, now: int | None = None) -> None:
        if ledger is None:
            ledger = Ledger()
            seed.apply(ledger)
        self.ledger = ledger
        if now is not None:
            self.ledger.shift_time(now - self.ledger.clock().unix_timestamp)

    def mint(
        self,
        decimals: int = 6,
        transfer_fee_bps: int | None = None,
        newer_fee: tuple[int, int] | None = None,
    ) -> Pubkey:
        """A new mint (Token-2022 with that transfer fee when `transfer_fee_bps` is given, and
        `newer_fee` (epoch, bps) from that epoch) and the maker's token account holding
        MAKER_TOKENS of it (genesis accounts)."""
        label = next(_labels)
        mint = _keypair(f"mint/{label}").pubkey()
        owner = MAKER.pubkey()
        if transfer_fee_bps is None:
            program = TOKEN_PROGRAM_ID
            mint_data = seed.pack_mint(decimals, supply=MAKER_TOKENS, authority=owner)
            account_data = seed.pack_token_account(mint, owner, MAKER_TOKENS)
        else:
            program = TOKEN_2022_PROGRAM_ID
            mint_data = t22_mint_data(decimals, transfer_fee_bps, 10**18, owner, newer_fee)
            account_data = t22_account_data(mint, owner, MAKER_TOKENS)
        for address, data in (
            (mint, mint_data),
            (get_associated_token_address(owner, mint, program), account_data),
        ):
            rent = self.ledger.rent_exempt_minimum(len(data))
            self.ledger.set_account(address, Account(rent, data, program, False, 0))
        return mint

    def program_of(self, mint: Pubkey) -> Pubkey:
        account = self.ledger.get_account(mint)
        assert account is not None, f"no mint {mint}"
        return account.owner

    def run(self, instructions: list[Instruction], *signers: Keypair) -> None:
        seed.run(self.ledger, MAKER, [set_compute_unit_limit(400_000), *instructions], *signers)

    def cpmm(
        self,
        mint_a: Pubkey,
        mint_b: Pubkey,
        amount_a: int,
        amount_b: int,
        config: int = 0,
        open_time: int = 0,
    ) -> Pubkey:
        """A Raydium CPMM pool at a random address (its keypair signs), so one config and pair
        can have several; it opens a second after it is created, or at `open_time`."""
        pool = _keypair(f"cpmm/{next(_labels)}")
        ix, created = builders.cpmm_initialize(
            MAKER.pubkey(),
            seed.CPMM_CONFIG_ADDRESSES[config],
            (mint_a, self.program_of(mint_a), amount_a),
            (mint_b, self.program_of(mint_b), amount_b),
            open_time=open_time,
            pool_keypair=pool.pubkey(),
        )
        self.run([ix], pool)
        return created.pool

    def damm(
        self,
        mint_a: Pubkey,
        mint_b: Pubkey,
        amount_a: int,
        amount_b: int,
        config: int | None = None,
        fees: builders.CustomizableFees | None = None,
        activation_point: int | None = None,
        sqrt_price_range: tuple[int, int] | None = None,
    ) -> Pubkey:
        """A Meteora DAMM v2 pool: `initialize_pool` with static Config `config`, else
        `initialize_customizable_pool` with `fees` (one per pair) and, when given, its own
        sqrt price range (else the full one)."""
        position = _keypair(f"position/{next(_labels)}")
        price_range = sqrt_price_range or (
            builders.DAMM_MIN_SQRT_PRICE,
            builders.DAMM_MAX_SQRT_PRICE,
        )
        sqrt_price, liquidity = builders.damm_price_and_liquidity(amount_a, amount_b, price_range)
        token_a = (mint_a, self.program_of(mint_a))
        token_b = (mint_b, self.program_of(mint_b))
        if config is not None:
            ix, created = builders.damm_initialize_pool(
                MAKER.pubkey(),
                position.pubkey(),
                seed.DAMM_CONFIG_ADDRESSES[config],
                token_a,
                token_b,
                liquidity,
                sqrt_price,
                activation_point,
            )
        else:
            ix, created = builders.damm_initialize_customizable_pool(
                MAKER.pubkey(),
                position.pubkey(),
                token_a,
                token_b,
                liquidity,
                sqrt_price,
                activation_point,
                fees,
                price_range,
            )
        self.run([ix], position)
        return created.pool

    def swap(self, pool: Pubkey, mint_in: Pubkey, amount: int) -> None:
        """The maker swaps `amount` of `mint_in` on `pool` (a real swap)."""
        market.swap(self.ledger, MAKER, pool, mint_in, amount, 0)
