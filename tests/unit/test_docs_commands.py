"""Every shell command the README and the docs show either runs in a named test or is marked
"not run here" in its page and checked as far as this machine allows (`make -n`, the AWS CLI
call against botocore's model of the service). A command added to a page without a line here
fails the first test; a test named here that does not exist fails the second."""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
from dataclasses import dataclass

import botocore.session
import pytest

from tests.docs_commands import ROOT, Command, commands

STACK_TEST = "tests/e2e/test_docs_commands_stack.py::test_the_pages_commands_run_against_make_run"


@dataclass(frozen=True)
class Ran:
    """Run by this test, as the page shows it (the stack's port and key substituted)."""

    test: str


@dataclass(frozen=True)
class NotRunHere:
    """Not run by any test; `why`, and what checks it instead (`make -n`, `aws`: the call
    exists in botocore's service model with the options used)."""

    why: str
    check: str  # "make -n" | "aws" | "none"


# What each command is, by the start of its text (first match wins).
COVERAGE: list[tuple[str, Ran | NotRunHere]] = [
    # The command a test cannot run: the suite itself. CI (.ci/run) runs it on every push.
    ("make test", NotRunHere("the test suite itself: CI's .ci/run runs it", "make -n")),
    ("make run", Ran(STACK_TEST)),
    ("make demo-orders", Ran(STACK_TEST)),
    ("make demo", Ran(STACK_TEST)),
    ("export API_KEY=$(cat .local-data/dev-api-key)", Ran(STACK_TEST)),
    ("curl ", Ran(STACK_TEST)),
    # websocat is not installed here: the test opens the same URL with a Python client and
    # sends the line the page types into it.
    ("websocat ", Ran(STACK_TEST)),
    ('{"tokenIn"', Ran(STACK_TEST)),
    ("export SOLANA_RPC_URL=https://api.devnet.solana.com", NotRunHere("devnet", "none")),
    ("export WALLET_PRIVATE_KEY=", NotRunHere("a funded devnet keypair", "none")),
    ("aws ", NotRunHere("an AWS account", "aws")),
    ("make deploy-check", NotRunHere("an AWS account's quotas", "make -n")),
    ("make deploy", NotRunHere("an AWS account", "make -n")),
    ("make first-key", NotRunHere("a deployed stack", "make -n")),
    ("make wallet", NotRunHere("a deployed stack", "make -n")),
]
COMMANDS = commands()


def coverage(command: Command) -> Ran | NotRunHere | None:
    for start, what in COVERAGE:
        if command.text.startswith(start):
            # "make run" on a page marked not run here (devnet) is not the stack test's
            if isinstance(what, Ran) and command.not_run_here:
                return NotRunHere("its block is marked not run here", "make -n")
            return what
    return None


def test_every_command_on_the_pages_is_run_by_a_test_or_marked_not_run_here() -> None:
    assert len(COMMANDS) >= 30  # the extraction finds the pages' blocks
    unknown = [c.where + " " + c.text for c in COMMANDS if coverage(c) is None]
    assert unknown == [], "add each to COVERAGE (the test that runs it, or why not)"
    # A command not run here is said so on its page (its block's first line), unless it is the
    # suite itself.
    unmarked = [
        c.where
        for c in COMMANDS
        if isinstance(coverage(c), NotRunHere) and not c.not_run_here and c.text != "make test"
    ]
    assert unmarked == []


def test_the_tests_named_exist() -> None:
    for test in {w.test for c in COMMANDS if isinstance(w := coverage(c), Ran)}:
        path, name = test.split("::")
        tree = ast.parse((ROOT / path).read_text())
        names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert name in names, test


@pytest.mark.parametrize(
    "command",
    sorted({c.text for c in COMMANDS if c.text.startswith("make ")}),
)
def test_each_make_command_is_a_target_the_makefile_can_plan(command: str) -> None:
    """`make -n`: the target exists and its recipe expands (nothing runs)."""
    planned = subprocess.run(
        [*shlex.split(command), "-n"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert planned.returncode == 0, planned.stderr


def test_every_make_target_the_pages_name_exists() -> None:
    """Inline mentions too (`make bench-smoke`, `make key NAME=...`): each is a Makefile target."""
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w.-]*):", makefile, re.M))
    named: set[str] = set()
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        named |= set(re.findall(r"`(?:[A-Z_]+=\S+ )*make ([a-z][\w-]*)", page.read_text()))
    assert named - targets == set()


def _aws(text: str) -> tuple[str, str, list[str], list[str]]:
    """(service, operation, options, --query paths) of an `aws` CLI command."""
    words = shlex.split(text)
    service, operation = words[1], words[2]
    options = [w[2:] for w in words[3:] if w.startswith("--")]
    queries = [words[i + 1] for i, w in enumerate(words) if w == "--query"]
    return service, operation, [o for o in options if o not in ("query", "output")], queries


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.text.startswith("aws ")], ids=str)
def test_each_aws_command_is_a_call_the_service_has(command: Command) -> None:
    service, operation, options, queries = _aws(command.text)
    model = botocore.session.get_session().get_service_model(service)
    name = "".join(part.title() for part in operation.split("-"))
    assert name in model.operation_names, command.text
    op = model.operation_model(name)
    members = (
        {re.sub(r"(?<!^)(?=[A-Z])", "-", m).lower() for m in op.input_shape.members}
        if (op.input_shape)
        else set()
    )
    assert set(options) <= members, (options, members)
    for query in queries:
        assert op.output_shape is not None
        assert query.split(".")[0] in op.output_shape.members
