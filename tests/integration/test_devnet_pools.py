"""`make devnet-pools` against the local chain with the local profile (devnet itself is not
reachable here): the AmmConfig is found on the chain, a new token and a pool on each venue are
created with the programs' initialize instructions, the printed VenuePools names pools the
engine decodes as the pair; and the devnet profile's constants, pinned to the sources they come
from."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey
from spl.token.constants import WRAPPED_SOL_MINT

from engine.config import parse_pools
from execution.venues import meteora_damm_v2, raydium_cpmm
from local.chain import LocalChain, Served, serve
from local.shared import shared_dir
from ops.profiles import DEVNET, MAINNET_CPMM, local_profile

ROOT = Path(__file__).resolve().parents[2]
COMMAND_SECONDS = 120


@pytest.fixture
def served() -> Iterator[tuple[LocalChain, Served]]:
    chain = LocalChain.seeded()
    served = serve(chain, port=0)
    chain.start_ticker(0.05)
    yield chain, served
    served.stop()
    chain.stop()


async def run(rpc: str, *args: str) -> tuple[int, str, str]:
    """The command in its own process, as `make devnet-pools PROFILE=local` runs it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ops.devnet_pools",
        "--profile",
        "local",
        "--rpc",
        rpc,
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), COMMAND_SECONDS)
    return process.returncode or 0, out.decode(), err.decode()


async def test_the_command_makes_a_pool_on_each_venue_and_prints_venue_pools(
    served: tuple[LocalChain, Served],
) -> None:
    rpc = served[1].rpc_url
    code, out, err = await run(rpc, "--sol", "0.5", "--price", "100", "--json")
    assert code == 0, err
    made = json.loads(out)
    pools = parse_pools(made["venue_pools"])  # what the VenuePools parameter accepts
    assert [(p.venue, p.address) for p in pools] == [
        ("raydium_cpmm", made["cpmm_pool"]),
        ("meteora_damm_v2", made["damm_pool"]),
    ]
    assert made["amm_config"]["index"] == 0  # the lowest enabled config the chain holds
    assert made["amm_config"]["create_pool_fee"] > 0
    # What it cost beyond the deposits: at least the config's create-pool fee (then rents).
    assert made["spent_lamports"] >= made["amm_config"]["create_pool_fee"]
    mint = Pubkey.from_string(made["token_mint"])
    prof = local_profile()
    async with AsyncClient(rpc, commitment=Confirmed) as client:
        cpmm_account = (await client.get_account_info(Pubkey.from_string(made["cpmm_pool"]))).value
        damm_account = (await client.get_account_info(Pubkey.from_string(made["damm_pool"]))).value
    assert cpmm_account is not None
    assert damm_account is not None
    assert (cpmm_account.owner, damm_account.owner) == (prof.cpmm_program, prof.damm_program)
    cpmm = raydium_cpmm.decode(
        bytes(cpmm_account.data), cpmm_account.owner, Pubkey.from_string(made["cpmm_pool"])
    )
    assert {cpmm.token_0_mint, cpmm.token_1_mint} == {mint, WRAPPED_SOL_MINT}
    assert str(cpmm.amm_config) == made["amm_config"]["address"]
    damm = meteora_damm_v2.decode(
        bytes(damm_account.data), damm_account.owner, Pubkey.from_string(made["damm_pool"])
    )
    assert {damm.token_a_mint, damm.token_b_mint} == {mint, WRAPPED_SOL_MINT}


async def test_a_config_index_the_chain_does_not_have_is_refused(
    served: tuple[LocalChain, Served],
) -> None:
    code, out, err = await run(served[1].rpc_url, "--amm-config-index", "999")
    assert code == 1
    assert out == ""
    assert "no enabled AmmConfig 999" in err


def test_the_devnet_profile_is_the_devnet_builds() -> None:
    """raydium-io/raydium-cp-swap programs/cp-swap/src/lib.rs (commit 0011e63), under
    cfg(feature = "devnet"): declare_id!, admin::ID, create_pool_fee_reveiver::ID; and without
    it, mainnet's. SOLANA.md (shared) records the devnet id and receiver; the mainnet binary
    the local chain can load (shared/programs/raydium_cp_swap.so) embeds mainnet's admin and
    receiver keys, which the devnet build replaces."""
    assert str(DEVNET.cpmm_program) == "DRaycpLY18LhpbydsBWbVJtxpNv9oXPgjRSfpF2bWpYb"
    assert str(DEVNET.cpmm_admin) == "DRayqG9RXYi8WHgWEmRQGrUWRWbhjYWYkCRJDd6JBBak"
    assert str(DEVNET.cpmm_create_pool_fee_receiver) == (
        "3oE58BKVt8KuYkGxx8zBojugnymWmBiyafWgMrnb6eYy"
    )
    assert str(DEVNET.damm_program) == "cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG"
    notes = (shared_dir() / "SOLANA.md").read_text()
    for key in (DEVNET.cpmm_program, DEVNET.cpmm_create_pool_fee_receiver, DEVNET.damm_program):
        assert str(key) in notes
    binary = (shared_dir() / "programs" / "raydium_cp_swap.so").read_bytes()
    assert bytes(MAINNET_CPMM.cpmm_admin) in binary
    assert bytes(MAINNET_CPMM.cpmm_create_pool_fee_receiver) in binary
    assert bytes(DEVNET.cpmm_admin) not in binary
    assert bytes(DEVNET.cpmm_create_pool_fee_receiver) not in binary
