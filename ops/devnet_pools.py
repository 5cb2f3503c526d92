"""`make devnet-pools`: a token pair and a pool on each venue, with the programs' real
initialize instructions, and the `VenuePools` value to deploy with.

    python -m ops.devnet_pools --keypair ~/.config/solana/id.json     # devnet (not run here)
    python -m ops.devnet_pools --profile local                         # the local chain

1. reads the Raydium CPMM AmmConfigs from the cluster (getProgramAccounts by the account's
   discriminator) and takes the enabled one with the lowest index (or --amm-config-index): its
   create-pool fee is the program admin's setting, never assumed;
2. mints a new 6-decimal token to the keypair (`--quote new`, the default), or uses the cluster's
   USDC (`--quote USDC`: the keypair must hold enough, e.g. from Circle's faucet);
3. creates a SOL/token pool on Raydium CPMM (`initialize`, with the profile's create-pool-fee
   receiver) and on Meteora DAMM v2 (`initialize_customizable_pool`: its own fees, no
   admin-made config), each depositing --sol and --sol x --price of the token;
4. prints the pools, the SOL it cost beyond the deposits (the create-pool fee, rents, fees) and
   the VenuePools JSON for `sam deploy --parameter-overrides VenuePools=...`.
The instructions are the builders the local chain's own pools are made with (local.pools); the
ids are the profile's (ops.profiles).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.models import MemcmpOpts
from solders.compute_budget import set_compute_unit_limit
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID, WRAPPED_SOL_MINT

from engine import base58
from execution.venues.raydium_cpmm import (
    AMM_CONFIG_DISCRIMINATOR,
    AMM_CONFIG_LEN,
    CONFIG_INDEX_OFFSET,
    CREATE_POOL_FEE_OFFSET,
    TRADE_FEE_RATE_OFFSET,
)
from execution.wallet import parse_secret
from local.pools import (
    COMPUTE_UNIT_LIMIT,
    PoolCreationFailed,
    cpmm_initialize,
    damm_initialize_customizable_pool,
    damm_price_and_liquidity,
    mint_new_token,
    send_and_confirm,
    wrap_sol,
)
from ops.profiles import ClusterProfile, profile

DISABLE_CREATE_POOL_OFFSET = 9  # states/config.rs: bump u8, then disable_create_pool bool
CPMM_FEE_RECEIVER_POSITION = 12  # `initialize`'s create_pool_fee account (local.pools' order)
DEVNET_RPC = "https://api.devnet.solana.com"
TOKEN_DECIMALS = 6
LAMPORTS = 10**9


@dataclass(frozen=True)
class FoundConfig:
    address: str
    index: int
    disabled: bool
    trade_fee_rate: int  # over 1,000,000
    create_pool_fee: int  # lamports


@dataclass(frozen=True)
class Made:
    cluster: str
    token_mint: str
    amm_config: FoundConfig
    cpmm_pool: str
    damm_pool: str
    signatures: list[str]
    spent_lamports: int  # beyond the SOL deposited in the pools
    venue_pools: str  # the VenuePools parameter's value


async def find_amm_configs(client: AsyncClient, program: Pubkey) -> list[FoundConfig]:
    """Every AmmConfig of the CPMM program, lowest index first."""
    reply = await client.get_program_accounts(
        program,
        Confirmed,
        encoding="base64",
        filters=[MemcmpOpts(offset=0, bytes=base58.encode(AMM_CONFIG_DISCRIMINATOR))],
    )
    found = []
    for keyed in reply.value:
        data = bytes(keyed.account.data)
        if len(data) < AMM_CONFIG_LEN:
            continue
        found.append(
            FoundConfig(
                address=str(keyed.pubkey),
                index=struct.unpack_from("<H", data, CONFIG_INDEX_OFFSET)[0],
                disabled=bool(data[DISABLE_CREATE_POOL_OFFSET]),
                trade_fee_rate=struct.unpack_from("<Q", data, TRADE_FEE_RATE_OFFSET)[0],
                create_pool_fee=struct.unpack_from("<Q", data, CREATE_POOL_FEE_OFFSET)[0],
            )
        )
    return sorted(found, key=lambda c: c.index)


def pick_config(configs: list[FoundConfig], index: int | None) -> FoundConfig:
    usable = [c for c in configs if not c.disabled and (index is None or c.index == index)]
    if not usable:
        wanted = "" if index is None else f" {index}"
        raise PoolCreationFailed(f"the CPMM program has no enabled AmmConfig{wanted} here")
    return usable[0]


def cpmm_instruction(
    owner: Pubkey,
    found: FoundConfig,
    prof: ClusterProfile,
    sol: int,
    token: tuple[Pubkey, int],
) -> tuple[Instruction, Pubkey]:
    ix, accounts = cpmm_initialize(
        owner,
        Pubkey.from_string(found.address),
        (WRAPPED_SOL_MINT, TOKEN_PROGRAM_ID, sol),
        (token[0], TOKEN_PROGRAM_ID, token[1]),
        program=prof.cpmm_program,
    )
    metas = list(ix.accounts)
    if metas[CPMM_FEE_RECEIVER_POSITION].pubkey != accounts.create_pool_fee:
        raise RuntimeError("local.pools.cpmm_initialize's account order changed")
    # Each build of the program has its own receiver: the profile's, whatever the builder names.
    metas[CPMM_FEE_RECEIVER_POSITION] = AccountMeta(
        prof.cpmm_create_pool_fee_receiver, is_signer=False, is_writable=True
    )
    return Instruction(ix.program_id, ix.data, metas), accounts.pool


async def make_pools(
    client: AsyncClient,
    prof: ClusterProfile,
    wallet: Keypair,
    *,
    sol: Decimal,
    price: Decimal,
    quote: str = "new",
    config_index: int | None = None,
) -> Made:
    owner = wallet.pubkey()
    found = pick_config(await find_amm_configs(client, prof.cpmm_program), config_index)
    sol_units = int(sol * LAMPORTS)
    token_units = int(sol * price * 10**TOKEN_DECIMALS)
    if sol_units <= 0 or token_units <= 0:
        raise ValueError("--sol and --price must leave something on both sides")
    before = (await client.get_balance(owner, Confirmed)).value
    signatures = []
    if quote == "new":
        mint, minted = await mint_new_token(client, wallet, TOKEN_DECIMALS, token_units * 10)
        signatures.append(str(minted))
    elif prof.usdc_mint is None:
        raise ValueError(f"{prof.name} has no USDC: use --quote new")
    else:
        mint = prof.usdc_mint

    cpmm_ix, cpmm_pool = cpmm_instruction(owner, found, prof, sol_units, (mint, token_units))
    sent, _ = await send_and_confirm(
        client,
        wallet,
        [set_compute_unit_limit(COMPUTE_UNIT_LIMIT), *wrap_sol(owner, sol_units + 1), cpmm_ix],
        [],
    )
    signatures.append(str(sent))

    position_nft = Keypair()
    sqrt_price, liquidity = damm_price_and_liquidity(token_units, sol_units)
    damm_ix, damm = damm_initialize_customizable_pool(
        owner,
        position_nft.pubkey(),
        (mint, TOKEN_PROGRAM_ID),
        (WRAPPED_SOL_MINT, TOKEN_PROGRAM_ID),
        liquidity,
        sqrt_price,
        program=prof.damm_program,
    )
    sent, _ = await send_and_confirm(
        client,
        wallet,
        [set_compute_unit_limit(COMPUTE_UNIT_LIMIT), *wrap_sol(owner, sol_units + 1), damm_ix],
        [position_nft],
    )
    signatures.append(str(sent))
    after = (await client.get_balance(owner, Confirmed)).value
    pools = [
        {"venue": "raydium_cpmm", "address": str(cpmm_pool)},
        {"venue": "meteora_damm_v2", "address": str(damm.pool)},
    ]
    return Made(
        cluster=prof.name,
        token_mint=str(mint),
        amm_config=found,
        cpmm_pool=str(cpmm_pool),
        damm_pool=str(damm.pool),
        signatures=signatures,
        spent_lamports=before - after - 2 * (sol_units + 1),
        venue_pools=json.dumps(pools, separators=(",", ":")),
    )


def _report(made: Made) -> str:
    fee = made.amm_config
    return "\n".join(
        [
            f"cluster:      {made.cluster}",
            f"token:        {made.token_mint} ({TOKEN_DECIMALS} decimals)",
            f"amm config:   {fee.address} (index {fee.index}, trade fee"
            f" {Decimal(fee.trade_fee_rate) / 10_000}%, create-pool fee"
            f" {Decimal(fee.create_pool_fee) / LAMPORTS} SOL)",
            f"raydium_cpmm: {made.cpmm_pool}",
            f"meteora_damm_v2: {made.damm_pool}",
            f"cost beyond the deposits: {Decimal(made.spent_lamports) / LAMPORTS} SOL",
            f"VenuePools={made.venue_pools}",
            "first order: {"
            f'"tokenIn": "SOL", "tokenOut": "{made.token_mint}", "amountIn": "0.01"'
            "}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.devnet_pools", description="pools")
    parser.add_argument("--profile", default="devnet", choices=("devnet", "local"))
    parser.add_argument("--keypair", type=Path, default=None, help="payer (devnet: required)")
    parser.add_argument("--rpc", default=None, help=f"JSON-RPC URL (devnet: {DEVNET_RPC})")
    parser.add_argument("--sol", type=Decimal, default=Decimal("0.5"), help="SOL per pool")
    parser.add_argument("--price", type=Decimal, default=Decimal(100), help="tokens per SOL")
    parser.add_argument("--quote", default="new", choices=("new", "USDC"))
    parser.add_argument("--amm-config-index", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    prof = profile(args.profile)
    if args.profile == "local":
        from local.chain import chain_port
        from local.chain.seed import WALLET_KEYPAIR

        wallet = WALLET_KEYPAIR
        rpc = args.rpc or f"http://127.0.0.1:{chain_port()}"
    else:
        if args.keypair is None:
            parser.error("--keypair FILE is required on devnet (the payer, funded)")
        wallet = parse_secret(args.keypair.expanduser().read_text(encoding="utf-8"))
        rpc = args.rpc or DEVNET_RPC

    async def run() -> Made:
        async with AsyncClient(rpc, commitment=Confirmed, timeout=60) as client:
            return await make_pools(
                client,
                prof,
                wallet,
                sol=args.sol,
                price=args.price,
                quote=args.quote,
                config_index=args.amm_config_index,
            )

    try:
        made = asyncio.run(run())
    except (ValueError, PoolCreationFailed, RPCException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        for line in getattr(exc, "logs", []):
            print(f"  {line}", file=sys.stderr)
        return 1
    except (OSError, SolanaRpcException) as exc:
        print(f"error: cannot reach {rpc}: {exc.__cause__ or exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(made)) if args.json else _report(made), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
