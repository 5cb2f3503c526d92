"""The docs' generated files (make docs-gen) are what the code says now, and the settings read
exactly the variables engine.config.VARIABLES declares, with the defaults it documents."""

from __future__ import annotations

import inspect
import re
from dataclasses import fields
from pathlib import Path

import pytest

from engine import config
from engine.config import VARIABLES, Settings
from engine.errors import ConfigError
from ops import docs_gen

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "path", sorted(docs_gen.GENERATORS), ids=lambda p: str(Path(p).relative_to(ROOT))
)
def test_a_generated_file_is_current(path: Path) -> None:
    expected = docs_gen.GENERATORS[path]()
    assert path.exists(), f"{path} is missing: run make docs-gen"
    assert path.read_text() == expected, f"{path} is stale: run make docs-gen"


def test_the_check_mode_names_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "errors.md"
    stale.write_text("old\n")
    monkeypatch.setattr(docs_gen, "generated", lambda: {stale: "new\n"})
    monkeypatch.setattr(docs_gen, "ROOT", tmp_path)
    assert docs_gen.main(["--check"]) == 1
    assert docs_gen.main([]) == 0
    assert stale.read_text() == "new\n"
    assert docs_gen.main(["--check"]) == 0


def test_every_declared_variable_is_read_and_no_other() -> None:
    source = inspect.getsource(Settings.from_env) + inspect.getsource(Settings.with_rpc_url_secret)
    names = [v.name for v in VARIABLES]
    assert len(names) == len(set(names))
    assert [n for n in names if f'"{n}"' not in source and n not in source] == []
    with pytest.raises(ConfigError, match="not declared"):
        config._Reader({"UNDECLARED_SETTING": "1"}).text("UNDECLARED_SETTING")


def test_the_documented_defaults_are_the_settings_defaults() -> None:
    defaults = Settings.from_env({})
    field_names = {f.name for f in fields(Settings)}
    checked = 0
    for variable in VARIABLES:
        name = variable.name.lower()
        if name not in field_names:
            continue
        value = getattr(defaults, name)
        if isinstance(value, bool):
            assert str(value).lower() == variable.default, variable.name
        elif isinstance(value, int | float) or type(value).__name__ == "Decimal":
            assert float(value) == float(variable.default), variable.name
        elif isinstance(value, str):
            assert value == variable.default, variable.name
        else:
            # no default in the code: the docs name who sets it, never a value
            assert not value, variable.name
            assert not re.fullmatch(r"[\d.]+", variable.default), variable.name
        checked += 1
    assert checked >= 35
