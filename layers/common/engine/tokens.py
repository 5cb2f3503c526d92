"""Token registry: symbols users may name, and their mints on the configured cluster
(SOLANA_CLUSTER, read once at import as every function's settings are)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Token:
    symbol: str
    mint: str
    decimals: int


WSOL_MINT = "So11111111111111111111111111111111111111112"
# Circle's devnet USDC mint; the local chain (cluster "custom") creates its USDC at this address.
USDC_DEVNET_MINT = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
USDC_MAINNET_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"  # Circle's, mainnet-beta
# The symbol USDC on each cluster; on a cluster without one (testnet) it is refused: an order
# names the mint's address instead.
USDC_MINTS = {
    "devnet": USDC_DEVNET_MINT,
    "custom": USDC_DEVNET_MINT,
    "mainnet-beta": USDC_MAINNET_MINT,
}


def registry(cluster: str) -> dict[str, Token]:
    """The symbols an order may name on `cluster`: SOL everywhere, USDC where Circle has a mint."""
    tokens = {"SOL": Token("SOL", WSOL_MINT, 9)}
    if cluster in USDC_MINTS:
        tokens["USDC"] = Token("USDC", USDC_MINTS[cluster], 6)
    return tokens


REGISTRY: dict[str, Token] = registry(os.environ.get("SOLANA_CLUSTER") or "devnet")
BY_MINT: dict[str, Token] = {t.mint: t for t in REGISTRY.values()}

# Addresses that are never a token mint on any cluster (sysvars, native programs, the token and
# DEX programs the engine knows): an order naming one is refused at submit, which reads no
# chain. Any other address is checked as a mint when the order is routed.
NOT_MINTS: dict[str, str] = {
    "11111111111111111111111111111111": "the System program",
    "SysvarC1ock11111111111111111111111111111111": "the Clock sysvar",
    "SysvarRent111111111111111111111111111111111": "the Rent sysvar",
    "SysvarEpochSchedu1e111111111111111111111111": "the EpochSchedule sysvar",
    "SysvarFees111111111111111111111111111111111": "the Fees sysvar",
    "Sysvar1nstructions1111111111111111111111111": "the Instructions sysvar",
    "SysvarRecentB1ockHashes11111111111111111111": "the RecentBlockhashes sysvar",
    "SysvarRewards111111111111111111111111111111": "the Rewards sysvar",
    "SysvarS1otHashes111111111111111111111111111": "the SlotHashes sysvar",
    "SysvarS1otHistory11111111111111111111111111": "the SlotHistory sysvar",
    "SysvarStakeHistory1111111111111111111111111": "the StakeHistory sysvar",
    "SysvarLastRestartS1ot1111111111111111111111": "the LastRestartSlot sysvar",
    "SysvarEpochRewards1111111111111111111111111": "the EpochRewards sysvar",
    "Sysvar1111111111111111111111111111111111111": "the sysvar owner",
    "1nc1nerator11111111111111111111111111111111": "the incinerator",
    "Feature111111111111111111111111111111111111": "the Feature program",
    "StakeConfig11111111111111111111111111111111": "the stake config",
    "ZkE1Gama1Proof11111111111111111111111111111": "the ZK ElGamal Proof program",
    "ZkTokenProof1111111111111111111111111111111": "the ZK Token Proof program",
    "Secp256r1SigVerify1111111111111111111111111": "the Secp256r1 program",
    "NativeLoader1111111111111111111111111111111": "the native loader",
    "BPFLoader1111111111111111111111111111111111": "the BPF loader",
    "BPFLoader2111111111111111111111111111111111": "the BPF loader (v2)",
    "BPFLoaderUpgradeab1e11111111111111111111111": "the upgradeable BPF loader",
    "LoaderV411111111111111111111111111111111111": "the v4 loader",
    "Vote111111111111111111111111111111111111111": "the Vote program",
    "Stake11111111111111111111111111111111111111": "the Stake program",
    "Config1111111111111111111111111111111111111": "the Config program",
    "ComputeBudget111111111111111111111111111111": "the Compute Budget program",
    "AddressLookupTab1e1111111111111111111111111": "the Address Lookup Table program",
    "Ed25519SigVerify111111111111111111111111111": "the Ed25519 program",
    "KeccakSecp256k11111111111111111111111111111": "the Secp256k1 program",
    "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA": "the SPL Token program",
    "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb": "the Token-2022 program",
    "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL": "the Associated Token Account program",
    "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr": "the Memo program",
    "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo": "the Memo program (v1)",
    "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C": "the Raydium CPMM program",
    "DRaycpLY18LhpbydsBWbVJtxpNv9oXPgjRSfpF2bWpYb": "the Raydium CPMM program (devnet)",
    "cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG": "the Meteora DAMM v2 program",
}
