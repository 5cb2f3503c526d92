"""@solana/kit against the local chain, beside the web3.js 1.x suite (test_js_clients.py):
tests/kit/clients.mjs drives a seeded chain on a free pair of ports with @solana/kit,
@solana-program/system and @solana-program/token from npm, pinned by tests/kit/package-lock.json
(`make tests/kit/node_modules` installs them; `make test` does it first). kit asks for what a
validator serves at each commitment: `getBlockTime(await getSlot())` at processed, confirmed and
finalized, sendAndConfirmTransactionFactory at each, and every subscription."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from solders.signature import Signature

from local.chain import LocalChain, serve

KIT = Path(__file__).resolve().parents[1] / "kit"
CHECKS = [
    "airdrop",
    "sendAndConfirmTransaction at processed",
    "sendAndConfirmTransaction at confirmed",
    "sendAndConfirmTransaction at finalized",
    "getBlockTime(await getSlot()) at processed",
    "getBlockTime(await getSlot()) at confirmed",
    "getBlockTime(await getSlot()) at finalized",
    "token: create a mint, an associated account, mintTo, transfer",
    "subscriptions: account, logs, program, signature, slot, root, slotsUpdates",
]


def test_kit_against_the_local_chain() -> None:
    node = shutil.which("node")
    # Missing parts fail the run, naming what is missing: a skip would let CI stay green.
    assert node is not None, "node is not installed (the kit suite needs it)"
    assert (KIT / "node_modules" / "@solana" / "kit").is_dir(), (
        "kit is not installed: make tests/kit/node_modules"
    )
    chain = LocalChain.seeded()
    served = serve(chain, port=0)
    chain.start_ticker(0.05)
    try:
        done = subprocess.run(
            [node, str(KIT / "clients.mjs"), served.rpc_url, served.ws_url],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=KIT,
        )
    finally:
        served.stop()
        chain.stop()
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    checks = {line["check"]: line for line in lines if "check" in line}
    failed = {name: c.get("error") for name, c in checks.items() if not c["ok"]}
    assert not failed, f"{failed}\n{done.stderr[-2000:]}"
    assert list(checks) == CHECKS, done.stderr[-2000:]
    assert lines[-1] == {"done": True, "failed": 0}
    # What kit saw is what the ledger holds: each slot it read names a block with that time.
    for level in ("processed", "confirmed", "finalized"):
        seen = checks[f"getBlockTime(await getSlot()) at {level}"]
        assert chain.ledger.blocks[int(seen["slot"])].time == int(seen["time"])
    for level in ("processed", "confirmed", "finalized"):
        sent = checks[f"sendAndConfirmTransaction at {level}"]["signature"]
        assert chain.ledger.records[Signature.from_string(sent)].err is None


KIT23 = Path(__file__).resolve().parents[1] / "kit23"
KIT23_CHECKS = [
    "getBlockTime(await getSlot()) at processed",
    "getBlockTime(await getSlot()) at confirmed",
    "getBlockTime(await getSlot()) at finalized",
    "airdrop",
    "sendAndConfirmTransaction of a hand-built transfer at processed",
    "sendAndConfirmTransaction of a hand-built transfer at confirmed",
    "sendAndConfirmTransaction of a hand-built transfer at finalized",
]


def test_kit_2_3_against_the_local_chain() -> None:
    """kit 2.3 alone (tests/kit23, pinned; the program clients need kit 8): raw RPC calls and a
    transfer built by hand, confirmed at each commitment and then read at it."""
    node = shutil.which("node")
    assert node is not None, "node is not installed (the kit suite needs it)"
    installed = KIT23 / "node_modules" / "@solana" / "kit" / "package.json"
    assert installed.is_file(), "kit 2.3 is not installed: make tests/kit23/node_modules"
    assert json.loads(installed.read_text())["version"] == "2.3.0"
    chain = LocalChain.seeded()
    served = serve(chain, port=0)
    chain.start_ticker(0.05)
    try:
        done = subprocess.run(
            [node, str(KIT23 / "clients.mjs"), served.rpc_url, served.ws_url],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=KIT23,
        )
    finally:
        served.stop()
        chain.stop()
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    checks = {line["check"]: line for line in lines if "check" in line}
    failed = {name: c.get("error") for name, c in checks.items() if not c["ok"]}
    assert not failed, f"{failed}\n{done.stderr[-2000:]}"
    assert list(checks) == KIT23_CHECKS, done.stderr[-2000:]
    assert lines[-1] == {"done": True, "failed": 0}
    for level in ("processed", "confirmed", "finalized"):
        seen = checks[f"getBlockTime(await getSlot()) at {level}"]
        assert chain.ledger.blocks[int(seen["slot"])].time == int(seen["time"])
        sent = checks[f"sendAndConfirmTransaction of a hand-built transfer at {level}"]
        assert chain.ledger.records[Signature.from_string(sent["signature"])].err is None
