"""vulture (in make lint) finds no unused code in the project, and does find it when there is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def vulture(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vulture", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_project_has_no_unused_code() -> None:
    result = vulture()
    assert result.returncode == 0, result.stdout


def test_an_unused_function_is_found(tmp_path: Path) -> None:
    module = tmp_path / "dead.py"
    module.write_text(
        "def used() -> int:\n    return 1\n\n\ndef unused() -> int:\n    return 2\n\n\nused()\n"
    )
    result = vulture(str(module), "--min-confidence", "60")
    assert result.returncode == 3
    assert "unused function 'unused'" in result.stdout
