"""Mints are checked as mints before any field of them is read (hardening round 2).

The probe's order `tokenOut: SysvarC1ock...` raised IndexError in routing (byte 44 of a 40-byte
account), was swallowed, and the order sat `pending` for ~36 minutes holding an in-flight slot.
Now: addresses known without the chain (sysvars, native and well-known programs) are a 400 at
submit; any other account that is not a mint fails the order `invalid_account` on its first
delivery, and no account at all `unknown_mint`. Accounts of every kind are tried, on the local
chain through the production Executor, and against the router directly.
"""

from __future__ import annotations

import dataclasses
import uuid
from decimal import Decimal

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from engine import config
from engine.errors import InvalidRequest, PermanentChainError
from engine.orders import parse_order_request
from engine.store import Store
from engine.tokens import NOT_MINTS, WSOL_MINT, Token
from execution import router
from execution.chain import Chain
from local.chain import POOLS, T22_POOLS, WALLET, LocalChain, client_for, seeded_venue_pools
from local.chain.seed import WALLET_T22_ATA, WALLET_USDC_ATA
from tests.integration import test_executor
from tests.integration.test_executor import Runner, landed_swaps, statuses

chain = test_executor.chain  # the executor tests' fixtures: a seeded local chain, settings
cfg = test_executor.cfg

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01", "slippage": 0.5}

# Accounts that exist on the seeded chain and are no mint, by kind.
NOT_A_MINT = {
    "a wallet (System account)": str(WALLET),
    "an SPL Token account": str(WALLET_USDC_ATA),
    "a Token-2022 account": str(WALLET_T22_ATA),
    "a Raydium CPMM pool": str(POOLS["raydium_cpmm"]),
    "a Meteora DAMM v2 pool": str(POOLS["meteora_damm_v2"]),
    "a Token-2022 pool": str(next(iter(T22_POOLS.values()))),
    "the Clock sysvar": "SysvarC1ock11111111111111111111111111111111",
    "the Rent sysvar": "SysvarRent111111111111111111111111111111111",
    "the SPL Token program": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
    "the System program": "11111111111111111111111111111111",
}


@pytest.mark.parametrize("address", sorted(NOT_MINTS))
@pytest.mark.parametrize("side", ["tokenIn", "tokenOut"])
def test_addresses_known_to_be_no_mint_are_refused_at_submit(side: str, address: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_order_request({**ORDER, side: address})
    assert refused.value.field == side
    assert NOT_MINTS[address] in refused.value.message
    assert "not a token mint" in refused.value.message


def unchecked_order(store: Store, side: str, address: str) -> uuid.UUID:
    """An order naming `address` as a mint, stored as if submit had let it through (as it does
    for every address it cannot know without the chain)."""
    request = parse_order_request(ORDER)
    token = Token(symbol=address, mint=address, decimals=9)
    if side == "tokenIn":
        request = dataclasses.replace(request, token_in=token)
    else:
        request = dataclasses.replace(request, token_out=token)
    order, _ = store.create_order(request)
    order_id: uuid.UUID = order.id
    return order_id


@pytest.mark.parametrize("address", list(NOT_A_MINT.values()), ids=list(NOT_A_MINT))
@pytest.mark.parametrize("side", ["tokenIn", "tokenOut"])
async def test_an_account_that_is_no_mint_fails_the_order_at_once(
    store: Store, chain: LocalChain, cfg: config.Settings, side: str, address: str
) -> None:
    order_id = unchecked_order(store, side, address)
    outcome = await Runner(store, chain, cfg).run(order_id, receive_count=1)
    assert outcome.status == "failed"
    assert not outcome.retry  # no redelivery, no DLQ: the in-flight slot is free now
    order = store.get_order(order_id)
    assert order is not None
    assert order.failure_code == "invalid_account"
    assert f"{side} {address} is not a token mint" in (order.failure_reason or "")
    assert statuses(store, order_id) == ["pending", "failed"]
    assert landed_swaps(chain) == []


@pytest.mark.parametrize("side", ["tokenIn", "tokenOut"])
async def test_an_address_with_no_account_fails_unknown_mint(
    store: Store, chain: LocalChain, cfg: config.Settings, side: str
) -> None:
    nowhere = str(Keypair().pubkey())
    order_id = unchecked_order(store, side, nowhere)
    outcome = await Runner(store, chain, cfg).run(order_id)
    assert (outcome.status, outcome.retry) == ("failed", False)
    order = store.get_order(order_id)
    assert order is not None
    assert order.failure_code == "unknown_mint"
    assert f"{side} {nowhere} does not exist" in (order.failure_reason or "")


@pytest.mark.parametrize(
    "address", [*NOT_A_MINT.values(), *sorted(NOT_MINTS)], ids=[*NOT_A_MINT, *sorted(NOT_MINTS)]
)
async def test_the_router_never_reads_another_account_as_a_mint(
    chain: LocalChain, address: str
) -> None:
    """Whatever an order names, the router answers with a typed failure, never a crash: every
    account kind, and every address the submit path refuses (should one reach it)."""
    client = Chain("http://local-chain", client_for(chain))
    with pytest.raises(PermanentChainError) as failed:
        await router.quote_all_venues(
            client,
            config.parse_pools(seeded_venue_pools()),
            mint_in=WSOL_MINT,
            mint_out=address,
            amount_in=Decimal("0.01"),
            priority_fee=0,
        )
    assert failed.value.code in ("invalid_account", "unknown_mint")
    if failed.value.code == "unknown_mint":  # a program id the local chain does not hold
        assert await client.accounts([Pubkey.from_string(address)]) in (
            {},
            {Pubkey.from_string(address): None},
        )
