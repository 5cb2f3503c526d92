"""A function's import path as Lambda's python3.11 runtime gives it, built as `sam build` does.

Lambda puts the function's code first (`/var/task`), then each of its layers (`/opt/python`),
then the runtime's own packages (awslambdaric, boto3/botocore). Here:
- the function's folder (`functions/<name>/`);
- each layer of the function (Globals' and its own, in the template's order) as two folders:
  its source (`layers/<layer>/`, what `sam build` copies under `python/`) and its
  `requirements.txt` installed with `pip install --target`, cached under `.cache/lambda/` by the
  hash of the requirements (and the constraints they name);
- the runtime folder: `awslambdaric` and boto3 at the runtime's version, cached the same way.
Nothing from the project's `.venv`: workers run the base interpreter with `-s -S`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from local.handlers import ROOT
from local.template import function_id, load_template, resource

log = logging.getLogger("local.lambda_build")

CACHE = Path(os.environ.get("LOCAL_LAMBDA_CACHE", ROOT / ".cache" / "lambda"))
# The runtime interface client (AWS's, as the python3.11 image runs it) and the boto3 the
# managed runtime ships (its documented version for python3.11 at the time of writing).
RUNTIME_REQUIREMENTS = ("awslambdaric==4.2.*", "boto3==1.38.*")
_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def base_python() -> str:
    """The interpreter the project's venv was made from: a worker must not see the venv."""
    return str(getattr(sys, "_base_executable", None) or sys.executable)


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in (*parts, sys.version.split()[0]):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _install(target: Path, args: list[str], cwd: Path | None = None) -> Path:
    """`pip install --target target args`, once: a finished target has a `.complete` file; a
    half-made one (a crash mid-install) is made again. Safe across threads and processes
    (pytest-xdist workers): each builds in a temporary folder and renames it into place."""
    with _locks_lock:
        lock = _locks.setdefault(str(target), threading.Lock())
    with lock:
        if (target / ".complete").exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("building %s (pip install --target)", target.name)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--no-compile",
                "--target",
                str(tmp),
                *args,
            ],
            check=True,
            cwd=cwd,
        )
        (tmp / ".complete").touch()
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
        return target


def runtime_dir() -> Path:
    """awslambdaric and the runtime's boto3."""
    return _install(CACHE / f"runtime-{_digest(*RUNTIME_REQUIREMENTS)}", list(RUNTIME_REQUIREMENTS))


def layer_dirs(source: Path) -> list[Path]:
    """A layer's folders on the import path: its source, then its installed requirements."""
    requirements = source / "requirements.txt"
    if not requirements.exists():
        return [source]
    text = requirements.read_text()
    constraints = [
        (source / line.split(None, 1)[1]).read_text()
        for line in text.splitlines()
        if line.startswith("-c ")
    ]
    digest = _digest(text, *constraints)
    deps = _install(CACHE / f"layer-{source.name}-{digest}", ["-r", "requirements.txt"], source)
    return [source, deps]


def function_layers(name: str) -> list[Path]:
    """The layer sources of a function, in the template's order (Globals' first)."""
    doc = load_template()
    props = resource(function_id(name, doc), doc).get("Properties", {})
    refs = list(doc.get("Globals", {}).get("Function", {}).get("Layers", []))
    refs += list(props.get("Layers", []))
    found = []
    for ref in refs:
        logical = ref["Ref"] if isinstance(ref, dict) else str(ref)
        content = str(resource(logical, doc)["Properties"]["ContentUri"]).rstrip("/")
        found.append(ROOT / content)
    return found


def function_dir(name: str) -> Path:
    doc = load_template()
    code = str(resource(function_id(name, doc), doc)["Properties"]["CodeUri"]).rstrip("/")
    return ROOT / code


def import_path(name: str) -> list[Path]:
    """The function's folder, its layers (source and requirements each), the runtime."""
    path = [function_dir(name)]
    for layer in function_layers(name):
        path += layer_dirs(layer)
    return [*path, runtime_dir()]


if __name__ == "__main__":  # python -m local.lambda_build: build every function's path
    logging.basicConfig(level=logging.INFO)
    for folder in sorted(p.name for p in (ROOT / "functions").iterdir() if p.is_dir()):
        if (ROOT / "functions" / folder / "app.py").exists():
            print(folder, ":".join(str(p) for p in import_path(folder)))
