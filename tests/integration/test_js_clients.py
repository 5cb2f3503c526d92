"""The clients users point at an RPC endpoint, against the local chain: tests/js/clients.mjs
drives a seeded chain (on a free pair of ports, PubSub on RPC + 1) with @solana/web3.js 1.x and
@solana/spl-token from npm, pinned by tests/js/package-lock.json (`make tests/js/node_modules`
installs them; `make test` does it first); tests/js/pools.mjs watches each DEX program with
`onLogs` while `python -m local.pools create` makes pools."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from solders.pubkey import Pubkey
from solders.signature import Signature

from local.chain import LocalChain, serve

JS = Path(__file__).resolve().parents[1] / "js"
WORKTREE = JS.parents[1]
CHECKS = [
    "airdrop confirmed through signatureSubscribe",
    "sendAndConfirmTransaction of a SOL transfer, seen by onAccountChange and onLogs",
    "onSignature before sending a signed transaction",
    "spl-token: createMint, getOrCreateAssociatedTokenAccount, mintTo, transfer",
    "getParsedTransaction of a legacy SOL transfer",
    "getParsedTransaction of an spl-token transfer",
    "v0 transaction: send, confirm, getParsedTransaction, simulate",
    "explorer reads: epoch, accounts, signatures, blocks, fees, supply",
    "Token-2022 mint and account with extensions, read back jsonParsed",
    "onSlotChange and onRootChange",
]


def run_clients(
    rpc_url: str, script: str = "clients.mjs", *extra: str
) -> tuple[dict[str, dict[str, Any]], dict[str, Any], str]:
    node = shutil.which("node")
    # Missing parts fail the run, naming what is missing: a skip would let CI stay green.
    assert node is not None, "node is not installed (the JS client suite needs it)"
    assert (JS / "node_modules" / "@solana" / "web3.js").is_dir(), (
        "the JS clients are not installed: make tests/js/node_modules"
    )
    done = subprocess.run(
        [node, str(JS / script), rpc_url, *extra],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=JS,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    checks = {line["check"]: line for line in lines if "check" in line}
    summary = lines[-1] if lines else {}
    return checks, summary, done.stderr


def test_web3js_and_spl_token_against_the_local_chain() -> None:
    chain = LocalChain.seeded()
    served = serve(chain, port=0)
    chain.start_ticker(0.05)
    try:
        checks, summary, stderr = run_clients(served.rpc_url)
    finally:
        served.stop()
        chain.stop()
    failed = {name: c.get("error") for name, c in checks.items() if not c["ok"]}
    assert not failed, f"{failed}\n{stderr[-2000:]}"
    assert list(checks) == CHECKS, stderr[-2000:]
    assert summary == {"done": True, "failed": 0}

    # What the clients saw is what the ledger holds.
    transfer = checks[CHECKS[1]]
    record = chain.ledger.records[Signature.from_string(transfer["signature"])]
    assert record.err is None
    assert record.kind == "transaction"
    # The notifications are of one of the transfers the check made (more than one only when
    # the subscriptions were registered after the first had landed): the account then held a
    # whole number of transfers, and the notification's slot is the one its transfer landed in.
    assert transfer["accountChangeLamports"] % 100_000_000 == 0
    assert 1 <= transfer["accountChangeLamports"] // 100_000_000 <= transfer["transfers"]
    logged = chain.ledger.records[Signature.from_string(transfer["logsSignature"])]
    assert logged.err is None
    assert transfer["accountChangeSlot"] >= record.slot
    tokens = checks[CHECKS[3]]
    assert tokens["destinationAmount"] == "250000"
    assert chain.ledger.records[Signature.from_string(tokens["signature"])].err is None
    v0 = checks[CHECKS[6]]
    assert v0["version"] == 0
    assert v0["unitsConsumed"] > 0
    assert v0["replacementBlockhash"]
    token_2022 = checks[CHECKS[8]]
    assert token_2022["mintExtensions"] == ["transferFeeConfig", "metadataPointer"]
    assert token_2022["accountExtensions"] == ["immutableOwner", "transferFeeAmount"]


def test_web3js_on_logs_sees_pools_created_by_the_command() -> None:
    chain = LocalChain.seeded()
    served = serve(chain, port=0)
    chain.start_ticker(0.05)
    try:
        checks, summary, stderr = run_clients(
            served.rpc_url, "pools.mjs", sys.executable, str(WORKTREE)
        )
    finally:
        served.stop()
        chain.stop()
    failed = {name: c.get("error") for name, c in checks.items() if not c["ok"]}
    assert not failed, f"{failed}\n{stderr[-2000:]}"
    assert len(checks) == 2, stderr[-2000:]
    assert summary == {"done": True, "failed": 0}
    # What web3.js saw is what the ledger holds: each pool landed, owned by its program.
    for check in checks.values():
        record = chain.ledger.records[Signature.from_string(check["signature"])]
        assert record.err is None
        assert record.slot == check["slot"]
        pool = chain.ledger.get_account(Pubkey.from_string(check["pool"]))
        assert pool is not None
        assert str(pool.owner) in record.logs[-1]  # "Program <owner> success"
