"""The local chain's modules import one way: the wire format knows nothing of the ledger or the
servers, and the ledger knows nothing of the servers (it used to import the RPC server for the
JSON form of a transaction error, while the RPC server imported the ledger)."""

from __future__ import annotations

import ast
from pathlib import Path

CHAIN = Path(__file__).resolve().parents[2] / "local" / "chain"


def imported(module: str) -> set[str]:
    tree = ast.parse((CHAIN / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_ledger_does_not_import_the_servers() -> None:
    assert not {
        n for n in imported("ledger") if n.startswith(("local.chain.rpc", "local.chain.pubsub"))
    }


def test_the_wire_format_imports_no_chain_module_but_its_parsers() -> None:
    chain_imports = {n for n in imported("wire") if n.startswith("local.chain")}
    assert chain_imports <= {"local.chain", "local.chain.parsers"}
