"""The wallet's address lookup table: what lets a route have more than two legs.

Two swap instructions fit a v0 transaction without a table (about 1,030 of 1,232 bytes); three
do not reliably (1,167-1,230 bytes, and over with a Token-2022 side). With a lookup table every
pool account of the route (pools, vaults, mints, token programs, authorities, configs, event
authorities, observation states) is one byte in the message instead of 32.

One table per wallet, created (`CreateLookupTable`) and extended (`ExtendLookupTable`) by the
engine, the wallet its authority and payer. Its address and the slot of its last extension are
kept in Postgres (`lookup_tables`, migration 031). The runtime resolves addresses added by an
extension only in a later slot, so a route uses the table only when the chain's slot (the Clock
the quotes read) is past the table's last extension slot and the table holds every address of
the route's pool accounts; otherwise the route has at most two legs.

Where it is extended: when routing finds that a route with more legs would pay more than the
best route of at most two legs, but the table does not hold all of its addresses (or was
extended in this slot), the order goes with at most two legs and the engine extends the table
with the missing addresses then (`Decision.lookup_missing`), so the next order on those pools
can use the longer route.

solders has the table's account decoder and `derive_lookup_table_address` but no instruction
builders: they are written here, as the builtin program's bincode enum (u32 variant index, then
the fields): 0 `CreateLookupTable { recent_slot: u64, bump_seed: u8 }`, 2 `ExtendLookupTable {
new_addresses: Vec<Pubkey> }` (a u64 length, then 32 bytes each).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from solders.address_lookup_table_account import ID as _PROGRAM_ID
from solders.address_lookup_table_account import (
    AddressLookupTable,
    AddressLookupTableAccount,
    derive_lookup_table_address,
)
from solders.instruction import AccountMeta, Instruction
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM
from solders.transaction import VersionedTransaction

from engine.errors import ChainError
from engine.store import Store
from execution.chain import Chain
from execution.venues import VENUES
from execution.wallet import Wallet

LOOKUP_TABLE_PROGRAM: Pubkey = _PROGRAM_ID
CREATE = 0
EXTEND = 2
# Addresses one ExtendLookupTable instruction adds: its transaction (a signature, four keys
# and 32 bytes an address) stays well under 1,232 bytes.
EXTEND_BATCH = 20
# Stand-ins for the wallet and its token accounts when listing a pool's accounts: they are the
# order's own (static keys), never the table's.
_WALLET = Pubkey.from_bytes(bytes([1] * 32))
_ATA_IN = Pubkey.from_bytes(bytes([2] * 32))
_ATA_OUT = Pubkey.from_bytes(bytes([3] * 32))


def create_lookup_table(
    authority: Pubkey, payer: Pubkey, recent_slot: int
) -> tuple[Instruction, Pubkey]:
    """The CreateLookupTable instruction for `authority`'s table derived from `recent_slot` (a
    slot the SlotHashes sysvar still holds), and the table's address."""
    table, bump = derive_lookup_table_address(authority, recent_slot)
    data = CREATE.to_bytes(4, "little") + recent_slot.to_bytes(8, "little") + bytes([bump])
    accounts = [
        AccountMeta(table, is_signer=False, is_writable=True),
        AccountMeta(authority, is_signer=True, is_writable=False),
        AccountMeta(payer, is_signer=True, is_writable=True),
        AccountMeta(SYSTEM_PROGRAM, is_signer=False, is_writable=False),
    ]
    return Instruction(LOOKUP_TABLE_PROGRAM, data, accounts), table


def extend_lookup_table(
    table: Pubkey, authority: Pubkey, payer: Pubkey, addresses: Sequence[Pubkey]
) -> Instruction:
    """The ExtendLookupTable instruction adding `addresses` (the payer funds the rent)."""
    data = EXTEND.to_bytes(4, "little") + len(addresses).to_bytes(8, "little")
    data += b"".join(bytes(a) for a in addresses)
    accounts = [
        AccountMeta(table, is_signer=False, is_writable=True),
        AccountMeta(authority, is_signer=True, is_writable=False),
        AccountMeta(payer, is_signer=True, is_writable=True),
        AccountMeta(SYSTEM_PROGRAM, is_signer=False, is_writable=False),
    ]
    return Instruction(LOOKUP_TABLE_PROGRAM, data, accounts)


def extend_batches(
    table: Pubkey, authority: Pubkey, addresses: Sequence[Pubkey]
) -> list[Instruction]:
    """`addresses` in ExtendLookupTable instructions of at most EXTEND_BATCH each (one
    transaction each)."""
    return [
        extend_lookup_table(table, authority, authority, addresses[i : i + EXTEND_BATCH])
        for i in range(0, len(addresses), EXTEND_BATCH)
    ]


def pool_addresses(venue: str, state: Any, mint_in: Pubkey) -> list[Pubkey]:
    """Every account a swap on the pool names that is not the wallet's (the pool, its vaults,
    mints, token programs, authority, config, event authority, ...), the program itself left
    out (an instruction's program must be a static key)."""
    ix = VENUES[venue].swap_instruction(state, _WALLET, _ATA_IN, _ATA_OUT, mint_in, 1, 1)
    own = {_WALLET, _ATA_IN, _ATA_OUT, ix.program_id}
    return list(dict.fromkeys(m.pubkey for m in ix.accounts if m.pubkey not in own))


def route_addresses(legs: Iterable[tuple[str, Any, Pubkey]]) -> list[Pubkey]:
    """The table's addresses a route over `legs` (venue, pool state, input mint) needs."""
    return list(dict.fromkeys(a for leg in legs for a in pool_addresses(*leg)))


@dataclass(frozen=True)
class Table:
    """A wallet's table as the chain has it: its address, addresses, last extension slot."""

    address: Pubkey
    addresses: tuple[Pubkey, ...]
    last_extended_slot: int
    active: bool

    @classmethod
    def decode(cls, address: Pubkey, data: bytes) -> Table:
        table = AddressLookupTable.deserialize(data)
        meta = table.meta
        active = meta.deactivation_slot == 2**64 - 1
        return cls(address, tuple(table.addresses), meta.last_extended_slot, active)

    def usable_at(self, slot: int) -> bool:
        """Its addresses resolve in a transaction at `slot`: after its last extension's slot."""
        return self.active and slot > self.last_extended_slot

    def missing(self, addresses: Iterable[Pubkey]) -> list[Pubkey]:
        held = set(self.addresses)
        return [a for a in dict.fromkeys(addresses) if a not in held]

    def account(self) -> AddressLookupTableAccount:
        """What MessageV0.try_compile takes."""
        return AddressLookupTableAccount(self.address, list(self.addresses))


class TableKeeper:
    """Creates and extends the wallet's table (the wallet pays, signs and is its authority),
    recorded in Postgres: `address()` is what routing reads, `extend(missing)` what the
    executor calls after an order whose longer route the table could not carry yet."""

    def __init__(self, chain: Chain, wallet: Wallet, store: Store, confirm_polls: int = 60) -> None:
        self.chain = chain
        self.wallet = wallet
        self.store = store
        self.confirm_polls = confirm_polls  # status reads (0.5 s apart) before giving up

    def address(self) -> Pubkey | None:
        found = self.store.lookup_table(str(self.wallet.pubkey))
        return None if found is None else Pubkey.from_string(found[0])

    async def extend(self, missing: Sequence[Pubkey]) -> Pubkey:
        """Create the wallet's table when the engine has none (this container's claim in
        Postgres wins or another's is used), then add `missing` to it in transactions of
        EXTEND_BATCH addresses, each awaited; the slot each landed in is recorded. Returns the
        table's address. ChainError when a transaction fails or does not land."""
        wallet = str(self.wallet.pubkey)
        found = self.store.lookup_table(wallet)
        if found is None or found[1] is None:
            recent = await self.chain.finalized_slot()
            create, address = create_lookup_table(self.wallet.pubkey, self.wallet.pubkey, recent)
            claimed = Pubkey.from_string(self.store.claim_lookup_table(wallet, str(address)))
            if claimed == address:
                self.store.lookup_table_extended(wallet, await self._land([create]))
            table = claimed
        else:
            table = Pubkey.from_string(found[0])
        for ix in extend_batches(table, self.wallet.pubkey, list(missing)):
            self.store.lookup_table_extended(wallet, await self._land([ix]))
        return table

    async def _land(self, ixs: list[Instruction]) -> int:
        blockhash, _ = await self.chain.latest_blockhash()
        message = MessageV0.try_compile(self.wallet.pubkey, ixs, [], blockhash)
        tx = VersionedTransaction(message, [self.wallet.signer])
        await self.chain.send(bytes(tx))
        for _ in range(self.confirm_polls):
            landed = await self.chain.status(tx.signatures[0])
            if landed is not None and landed.confirmed:
                if landed.err is not None:
                    raise ChainError(f"the lookup table transaction failed: {landed.err}")
                return landed.slot
            await asyncio.sleep(0.5)
        raise ChainError("the lookup table transaction did not land")
