"""Per-cluster profiles: the one place the program ids and admin accounts `make devnet-pools`
uses live. The AmmConfig a CPMM pool is created under is NOT here: it is read from the cluster
(`find_amm_configs`), since configs are the program admin's to create and change.

Sources (pinned in tests/integration/test_devnet_pools.py):
- Raydium CPMM, raydium-io/raydium-cp-swap `programs/cp-swap/src/lib.rs`: under
  `cfg(feature = "devnet")` the program id `DRaycpLY...`, `admin::ID` and
  `create_pool_fee_reveiver::ID` (sic); without the feature, mainnet's.
- Meteora DAMM v2 (`cp_amm`): one id on mainnet and devnet; `initialize_customizable_pool` needs
  no admin-made config.
- local: the local chain as this branch runs it (its own constants in local.pools).
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

from engine.tokens import USDC_MINTS


@dataclass(frozen=True)
class ClusterProfile:
    name: str
    cpmm_program: Pubkey
    cpmm_admin: Pubkey  # creates the AmmConfigs (informative: pools need no admin signature)
    cpmm_create_pool_fee_receiver: Pubkey  # `initialize` pays the config's create fee here
    damm_program: Pubkey
    usdc_mint: Pubkey | None  # the cluster's USDC (None: none)
    explorer_cluster: str  # ?cluster= of explorer links


DAMM_V2 = Pubkey.from_string("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG")  # mainnet and devnet

DEVNET = ClusterProfile(
    name="devnet",
    cpmm_program=Pubkey.from_string("DRaycpLY18LhpbydsBWbVJtxpNv9oXPgjRSfpF2bWpYb"),
    cpmm_admin=Pubkey.from_string("DRayqG9RXYi8WHgWEmRQGrUWRWbhjYWYkCRJDd6JBBak"),
    cpmm_create_pool_fee_receiver=Pubkey.from_string(
        "3oE58BKVt8KuYkGxx8zBojugnymWmBiyafWgMrnb6eYy"
    ),
    damm_program=DAMM_V2,
    usdc_mint=Pubkey.from_string(USDC_MINTS["devnet"]),
    explorer_cluster="devnet",
)

# For the record and the tests (pools are never created on mainnet by this command).
MAINNET_CPMM = ClusterProfile(
    name="mainnet-beta",
    cpmm_program=Pubkey.from_string("CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"),
    cpmm_admin=Pubkey.from_string("GThUX1Atko4tqhN2NaiTazWSeFWMuiUvfFnyJyUghFMJ"),
    cpmm_create_pool_fee_receiver=Pubkey.from_string(
        "DNXgeM9EiiaAbaWvwjHj9fQQLAX5ZsfHyvmYUNRAdNC8"
    ),
    damm_program=DAMM_V2,
    usdc_mint=Pubkey.from_string(USDC_MINTS["mainnet-beta"]),
    explorer_cluster="mainnet-beta",
)


def local_profile() -> ClusterProfile:
    """The local chain's programs, as local.pools (the builders the local chain's pools use)
    names them: whatever ids the local chain runs, this profile follows."""
    from local.chain.seed import USDC_MINT
    from local.pools import CPMM_PROGRAM, DAMM_PROGRAM, cpmm_initialize

    # The receiver the local builder pays for the local chain's CPMM program (whichever build
    # that is): its `initialize` accounts, built once with placeholder keys.
    mint_a, mint_b = Pubkey.new_unique(), Pubkey.new_unique()
    _, accounts = cpmm_initialize(
        Pubkey.new_unique(),
        Pubkey.new_unique(),
        (mint_a, TOKEN_PROGRAM_ID, 1),
        (mint_b, TOKEN_PROGRAM_ID, 1),
        program=CPMM_PROGRAM,
    )
    return ClusterProfile(
        name="local",
        cpmm_program=CPMM_PROGRAM,
        cpmm_admin=CPMM_PROGRAM,  # the local chain writes its AmmConfigs as genesis accounts
        cpmm_create_pool_fee_receiver=accounts.create_pool_fee,
        damm_program=DAMM_PROGRAM,
        usdc_mint=USDC_MINT,
        explorer_cluster="custom",
    )


def profile(name: str) -> ClusterProfile:
    if name == "devnet":
        return DEVNET
    if name == "local":
        return local_profile()
    raise ValueError(f"no pool-creating profile for {name!r} (devnet or local)")
