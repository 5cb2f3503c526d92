"""Telling a pool-creating transaction from a swap by its logs (execution.creation_feed), as the
real programs log them (the lines below are the local chain's, running the real binaries)."""

from __future__ import annotations

from engine.config import Settings
from execution.creation_feed import created_by, ws_url
from execution.launches import creation_feed

DAMM = "cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG"
CPMM = "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"
T22 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"


def test_the_programs_own_initialize_is_a_creation_and_a_swap_or_a_token_instruction_is_not() -> (
    None
):
    create = [
        "Program ComputeBudget111111111111111111111111111111 invoke [1]",
        "Program ComputeBudget111111111111111111111111111111 success",
        f"Program {DAMM} invoke [1]",
        "Program log: Instruction: InitializePool",
        f"Program {T22} invoke [2]",
        "Program log: Instruction: InitializeMintCloseAuthority",
    ]
    names = {"InitializePool", "InitializeCustomizablePool"}
    assert created_by(create, DAMM, names)
    swap = [f"Program {DAMM} invoke [1]", "Program log: Instruction: Swap"]
    assert not created_by(swap, DAMM, names)
    # another program's instruction of the same name is not this program's
    token = [f"Program {T22} invoke [2]", "Program log: Instruction: InitializePool"]
    assert not created_by(token, DAMM, names)
    # through a CPI (a launchpad calling the program): still this program's
    nested = [
        "Program Launch1111 invoke [1]",
        f"Program {CPMM} invoke [2]",
        "Program log: Instruction: Initialize",
    ]
    assert created_by(nested, CPMM, {"Initialize"})
    assert not created_by(nested[:2], CPMM, {"Initialize"})


def test_the_feed_follows_each_venue_program_with_its_pool_creating_instructions() -> None:
    cfg = Settings.from_env(
        {"SOLANA_RPC_URL": "https://rpc.example/key?x=1", "SOLANA_CLUSTER": "mainnet-beta"}
    )
    feed = creation_feed(cfg)
    assert feed.url == "wss://rpc.example/key?x=1"
    assert {p: s.instructions for p, s in feed._programs.items()} == {
        CPMM: frozenset({"Initialize"}),
        DAMM: frozenset({"InitializePool", "InitializeCustomizablePool"}),
    }
    assert ws_url("http://127.0.0.1:8899") == "ws://127.0.0.1:8899"
