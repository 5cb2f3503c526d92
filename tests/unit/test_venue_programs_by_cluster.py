"""Which program of each venue the engine searches on each cluster (pool discovery and the
sniper's launch watch both ask `venue_programs`): devnet and testnet run Raydium's devnet CPMM
build; mainnet and a custom cluster (the local chain, which runs the mainnet binary at its
mainnet id) the mainnet one. Meteora DAMM v2 has one id everywhere."""

from __future__ import annotations

import pytest
from solders.pubkey import Pubkey

from execution.discovery import venue_programs
from local.chain.binaries import read_lock

MAINNET_CPMM = Pubkey.from_string("CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C")
DEVNET_CPMM = Pubkey.from_string("DRaycpLY18LhpbydsBWbVJtxpNv9oXPgjRSfpF2bWpYb")
DAMM = Pubkey.from_string("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG")


@pytest.mark.parametrize(
    ("cluster", "cpmm"),
    [
        ("mainnet-beta", MAINNET_CPMM),
        ("custom", MAINNET_CPMM),
        ("devnet", DEVNET_CPMM),
        ("testnet", DEVNET_CPMM),
    ],
)
def test_each_cluster_searches_the_program_it_runs(cluster: str, cpmm: Pubkey) -> None:
    assert venue_programs(cluster) == [("raydium_cpmm", cpmm), ("meteora_damm_v2", DAMM)]


def test_the_local_chain_runs_the_ids_a_custom_cluster_searches() -> None:
    loaded = {pin.name: pin.program_id for pin in read_lock()}
    assert loaded == dict(venue_programs("custom"))
