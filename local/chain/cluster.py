"""The local chain as a cluster: one node, which is the only leader and has the only vote
account. The cluster methods a 2.x validator serves answer truthfully for that node:
getVoteAccounts, getClusterNodes, the leader schedule and slot leaders, block production and
commitment, performance samples, inflation (the genesis defaults; no epoch has paid
rewards), the stake minimum, the largest accounts and the highest slots.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from local.chain.ledger import FINALIZE_AFTER_BLOCKS, MS_PER_SLOT, Ledger
from local.chain.wire import INVALID_PARAMS, Json, RpcError, config, pubkey

# Fixed public seeds, like the identity's: this chain's vote account never changes.
VOTE_ACCOUNT = Keypair.from_seed(hashlib.sha256(b"local-chain/vote").digest()).pubkey()
# The one validator's stake: the cluster's whole stake (nothing is delegated on this chain, so
# this is a fixed figure of our own, as a test validator's bootstrap stake is).
BOOTSTRAP_STAKE = 500_000_000_000_000_000 // 1_000_000  # 500,000 SOL in lamports
MAX_SLOT_LEADERS = 5000
MAX_PERFORMANCE_SAMPLES = 720
SAMPLE_SLOTS = 60_000 // MS_PER_SLOT  # a node samples every 60 s
LARGEST_ACCOUNTS = 20
# Inflation as genesis defines it (solana-inflation's defaults).
INFLATION = {"initial": 0.08, "terminal": 0.015, "taper": 0.15, "foundation": 0.05}
FOUNDATION_TERM = 7.0
STAKE_MINIMUM_DELEGATION = 1  # lamports, without the feature that raises it to 1 SOL


def _unsigned(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RpcError(INVALID_PARAMS, f"Invalid params: invalid value: {value!r}, expected u64.")
    return value


class Cluster:
    """The cluster methods over one ledger (`identity` is the node's, `wrap` makes an
    RpcResponse with its context, `level_slot` reads a request's commitment slot)."""

    def __init__(
        self,
        ledger: Ledger,
        identity: Pubkey,
        version: str,
        wrap: Callable[[Any], Json],
        level_slot: Callable[[Json], int],
    ) -> None:
        self.ledger = ledger
        self.identity = identity
        self.version = version
        self.wrap = wrap
        self.level_slot = level_slot

    def methods(self) -> dict[str, Callable[[list[Any]], Any]]:
        return {
            "getVoteAccounts": self.get_vote_accounts,
            "getClusterNodes": self.get_cluster_nodes,
            "getLeaderSchedule": self.get_leader_schedule,
            "getSlotLeader": lambda _params: str(self.identity),
            "getSlotLeaders": self.get_slot_leaders,
            "getBlockProduction": self.get_block_production,
            "getBlockCommitment": self.get_block_commitment,
            "getRecentPerformanceSamples": self.get_recent_performance_samples,
            "getInflationGovernor": lambda _params: {
                **INFLATION,
                "foundationTerm": FOUNDATION_TERM,
            },
            "getInflationRate": self.get_inflation_rate,
            "getInflationReward": self.get_inflation_reward,
            "getStakeMinimumDelegation": lambda _params: self.wrap(STAKE_MINIMUM_DELEGATION),
            "getLargestAccounts": self.get_largest_accounts,
            "getHighestSnapshotSlot": self.get_highest_snapshot_slot,
            "getMaxRetransmitSlot": lambda _params: self.ledger.processed_slot,
            "getMaxShredInsertSlot": lambda _params: self.ledger.processed_slot,
        }

    def _epoch(self, slot: int) -> int:
        epoch: int = self.ledger.svm.get_epoch_schedule().get_epoch(slot)
        return epoch

    def get_vote_accounts(self, params: list[Any]) -> Any:
        cfg = config(params, 0)
        if "votePubkey" in cfg and pubkey(cfg["votePubkey"]) != VOTE_ACCOUNT:
            return {"current": [], "delinquent": []}
        slot = self.level_slot(cfg)
        epoch = self._epoch(slot)
        return {
            "current": [
                {
                    "votePubkey": str(VOTE_ACCOUNT),
                    "nodePubkey": str(self.identity),
                    "activatedStake": BOOTSTRAP_STAKE,
                    "epochVoteAccount": True,
                    "commission": 0,
                    "lastVote": self.ledger.processed_slot,
                    # One credit per rooted slot, the epoch's so far (timely-vote credits aside).
                    "epochCredits": [[epoch, self.ledger.root_slot, 0]],
                    "rootSlot": self.ledger.root_slot,
                }
            ],
            "delinquent": [],
        }

    def get_cluster_nodes(self, params: list[Any]) -> Any:
        # The chain serves RPC only: no gossip, TPU or repair sockets to advertise.
        sockets = ("gossip", "tvu", "tpu", "tpuQuic", "tpuForwards", "tpuForwardsQuic", "tpuVote")
        return [
            {
                "pubkey": str(self.identity),
                **dict.fromkeys(sockets),
                "serveRepair": None,
                "rpc": None,
                "pubsub": None,
                "version": self.version,
                "featureSet": 0,
                "shredVersion": 0,
            }
        ]

    def get_leader_schedule(self, params: list[Any]) -> Any:
        slot = self.ledger.slot
        cfg: Json = {}
        if params and isinstance(params[0], dict):
            cfg = dict(params[0])
        elif params:
            if params[0] is not None:
                slot = _unsigned(params[0])
            cfg = config(params, 1)
        if "identity" in cfg and pubkey(cfg["identity"]) != self.identity:
            return {}
        schedule = self.ledger.svm.get_epoch_schedule()
        epoch = schedule.get_epoch(slot)
        if epoch > self._epoch(self.ledger.slot) + 1:
            return None  # a node knows the current epoch's schedule and the next one's
        return {str(self.identity): list(range(schedule.get_slots_in_epoch(epoch)))}

    def get_slot_leaders(self, params: list[Any]) -> Any:
        _unsigned(params[0])
        limit = _unsigned(params[1])
        if limit > MAX_SLOT_LEADERS:
            raise RpcError(INVALID_PARAMS, f"Invalid limit; max {MAX_SLOT_LEADERS}")
        return [str(self.identity)] * limit

    def get_block_production(self, params: list[Any]) -> Any:
        cfg = config(params, 0)
        newest = self.level_slot(cfg)
        schedule = self.ledger.svm.get_epoch_schedule()
        span = cfg.get("range") or {}
        first = _unsigned(
            span.get("firstSlot", schedule.get_first_slot_in_epoch(self._epoch(newest)))
        )
        last = _unsigned(span.get("lastSlot", newest))
        if last > newest:
            raise RpcError(INVALID_PARAMS, f"lastSlot, {last}, cannot be greater than {newest}")
        if first > last:
            raise RpcError(INVALID_PARAMS, "lastSlot must be greater than or equal to firstSlot")
        by_identity: Json = {}
        if "identity" not in cfg or pubkey(cfg["identity"]) == self.identity:
            produced = sum(1 for s in self.ledger.blocks if first <= s <= last)
            by_identity[str(self.identity)] = [last - first + 1, produced]
        return self.wrap(
            {"byIdentity": by_identity, "range": {"firstSlot": first, "lastSlot": last}}
        )

    def get_block_commitment(self, params: list[Any]) -> Any:
        slot = _unsigned(params[0])
        ledger = self.ledger
        block = ledger.blocks.get(slot)
        if block is None or slot <= ledger.root_slot or slot >= ledger.slot:
            # Rooted (or unknown) slots have no commitment array, as on a node.
            return {"commitment": None, "totalStake": BOOTSTRAP_STAKE}
        votes = [0] * FINALIZE_AFTER_BLOCKS
        depth = min(ledger.height - 1 - block.height, FINALIZE_AFTER_BLOCKS - 1)
        votes[depth] = BOOTSTRAP_STAKE  # the one validator has voted this deep on it
        return {"commitment": votes, "totalStake": BOOTSTRAP_STAKE}

    def get_recent_performance_samples(self, params: list[Any]) -> Any:
        limit = (
            _unsigned(params[0]) if params and params[0] is not None else MAX_PERFORMANCE_SAMPLES
        )
        if limit > MAX_PERFORMANCE_SAMPLES:
            raise RpcError(INVALID_PARAMS, f"Invalid limit; max {MAX_PERFORMANCE_SAMPLES}")
        ledger = self.ledger
        samples: list[Json] = []
        end = ledger.processed_slot
        while end > 0 and len(samples) < limit:
            start = max(end - SAMPLE_SLOTS, 0)
            blocks = [b for s, b in ledger.blocks.items() if start < s <= end]
            if not blocks:
                break
            records = [r for b in blocks for r in b.records]
            samples.append(
                {
                    "slot": end,
                    "numTransactions": len(records),
                    "numNonVoteTransactions": len(records),  # no votes on this chain
                    "numSlots": end - start,
                    "samplePeriodSecs": (end - start) * MS_PER_SLOT // 1000,
                }
            )
            end = start
        return samples

    def get_inflation_rate(self, params: list[Any]) -> Any:
        epoch = self._epoch(self.ledger.slot)
        years = (
            epoch
            * self.ledger.svm.get_epoch_schedule().slots_per_epoch
            * MS_PER_SLOT
            / (1000 * 365.25 * 24 * 3600)
        )
        total = max(INFLATION["initial"] * (1 - INFLATION["taper"]) ** years, INFLATION["terminal"])
        foundation = total * INFLATION["foundation"] if years < FOUNDATION_TERM else 0.0
        return {
            "epoch": epoch,
            "foundation": foundation,
            "total": total,
            "validator": total - foundation,
        }

    def get_inflation_reward(self, params: list[Any]) -> Any:
        addresses = [pubkey(a) for a in (params[0] if params else [])]
        cfg = config(params, 1)
        current = self._epoch(self.ledger.slot)
        epoch = _unsigned(cfg["epoch"]) if cfg.get("epoch") is not None else current - 1
        if epoch < 0:
            raise RpcError(INVALID_PARAMS, "Invalid params: no epoch has completed yet")
        if epoch >= current:
            raise RpcError(INVALID_PARAMS, f"Invalid params: epoch {epoch} has not yet completed")
        return [None for _ in addresses]  # nothing is staked here: no epoch pays rewards

    def get_largest_accounts(self, params: list[Any]) -> Any:
        cfg = config(params, 0)
        wanted = cfg.get("filter")
        if wanted not in (None, "circulating", "nonCirculating"):
            raise RpcError(INVALID_PARAMS, f"Invalid params: unknown variant `{wanted}`")
        faucets = set(self.ledger.faucets())
        found: dict[Pubkey, int] = {}
        for key, account in self.ledger.svm.get_program_accounts(Pubkey.default()):
            if account.lamports == 0:
                continue
            if wanted == "circulating" and key in faucets:
                continue
            if wanted == "nonCirculating" and key not in faucets:
                continue
            found[key] = account.lamports
        largest = sorted(found.items(), key=lambda item: item[1], reverse=True)[:LARGEST_ACCOUNTS]
        return self.wrap([{"address": str(k), "lamports": v} for k, v in largest])

    def get_highest_snapshot_slot(self, params: list[Any]) -> Any:
        raise RpcError(-32008, "No snapshot")  # the local chain takes no snapshots
