"""Cold start: each function's handler import time in a fresh interpreter, and bundle sizes."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("submit", "ws_connect", "execute", "notify", "authorizer")
LAYERS = {"common layer": "common", "solana layer": "solana"}  # name -> layers/<dir>
SAM_BUILD = ROOT / ".aws-sam" / "build"
SAM_DIRS = {
    "submit": "SubmitFunction",
    "ws_connect": "WsConnectFunction",
    "execute": "ExecuteFunction",
    "notify": "NotifyFunction",
    "authorizer": "AuthorizerFunction",
    "common layer": "CommonLayer",
    "solana layer": "SolanaLayer",
}
# What a cold container has before the handler module runs: the settings its init reads and
# checks (each handler builds its objects at import). The database is a closed port: a pool
# opens its connections in the background, so the import never waits on one.
IMPORT_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "DATABASE_URL": "postgresql://bench@127.0.0.1:9/bench",
    "ORDERS_QUEUE_URL": "http://127.0.0.1:9/000000000000/orders",
    "STATUS_QUEUE_URL": "http://127.0.0.1:9/000000000000/status",
    "SQS_ENDPOINT_URL": "http://127.0.0.1:9",
    "SOLANA_RPC_URL": "http://127.0.0.1:9",
}


def _wall(code: str, *args: str) -> float:
    return _run(code, *args)[0]


def _run(code: str, *args: str) -> tuple[float, str]:
    """Wall time of a fresh interpreter running `code`, and what it printed."""
    env = {**os.environ, **IMPORT_ENV}
    # The first run writes our modules' bytecode, as pip wrote the libraries' when it installed
    # them: both sides of the ratio are then timed with their bytecode compiled. Where this is
    # set (as on the development machine), every run compiled our source again while the
    # libraries loaded theirs: 60-100 ms of compile on the function's side of the ratio.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return time.perf_counter() - started, done.stdout


# Prints the third-party modules a function's module loaded (from outside the repository and
# the standard library), in the order they were loaded: what its import cannot do without.
# Every module, not only each package's top: `import botocore` alone loads a fraction of what
# a function using botocore's client needs, and would put the rest of the library's import on
# the function's side of the ratio.
THIRD_PARTY = """
import json, runpy, sys
runpy.run_path(sys.argv[1])
print(json.dumps([
    name for name, module in list(sys.modules.items())
    if "site-packages" in (getattr(module, "__file__", None) or "")
]))
"""
# Imports those modules in that order (a module that cannot be imported alone, e.g. a shim the
# package replaced in sys.modules, is skipped: its package's import already ran it).
IMPORT_ALL = """
import importlib, json, sys
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception:
        pass
"""


def third_party(name: str) -> list[str]:
    env = {**os.environ, **IMPORT_ENV}
    done = subprocess.run(
        [sys.executable, "-c", THIRD_PARTY, f"functions/{name}/app.py"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    names: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return names


def _packages(modules: list[str]) -> str:
    return " ".join(sorted({m.split(".")[0] for m in modules if not m.startswith("_")}))


# Runs a function's module, timing apart its init I/O: the CA bundle its HTTPS client reads
# from disk (`SSLContext.load_verify_locations`, for its first connection). Prints the seconds.
# The rest of its init waits on nothing: the pool connects in the background, secrets are read
# on first use.
APP = """
import runpy, ssl, sys, time
spent = [0.0]
load = ssl.SSLContext.load_verify_locations
def timed(self, *args, **kwargs):
    started = time.perf_counter()
    try:
        return load(self, *args, **kwargs)
    finally:
        spent[0] += time.perf_counter() - started
ssl.SSLContext.load_verify_locations = timed
runpy.run_path(sys.argv[1])
print(spent[0])
"""


def _import(name: str) -> tuple[float, float]:
    """A fresh interpreter's wall time running the function's module, and its init I/O."""
    seconds, printed = _run(APP, f"functions/{name}/app.py")
    return seconds, float(printed.strip().splitlines()[-1])


def import_times(repeats: int = 9) -> dict[str, dict[str, Any]]:
    """The least wall time of fresh interpreters that run functions/<f>/app.py, minus the least
    of a bare interpreter (`python -c pass`), in milliseconds (medians too); and the same for
    importing only
    the third-party modules it loads (`third_party_ms`: the floor of its import), the two run
    alternately so that a busy moment of the machine falls on both. The module's init I/O (the
    CA bundle its HTTPS client reads, `APP`) is timed apart: `init_io_ms`, not in `ms`."""
    bare = min(_wall("pass") for _ in range(repeats))
    out: dict[str, dict[str, Any]] = {}
    for name in FUNCTIONS:
        modules = third_party(name)
        _import(name)  # the first run writes our modules' bytecode (see _run)
        samples: list[float] = []
        io: list[float] = []
        floor: list[float] = []
        for _ in range(repeats):
            seconds, init_io = _import(name)
            samples.append(seconds - bare - init_io)
            io.append(init_io)
            floor.append(_wall(IMPORT_ALL, json.dumps(modules)) - bare)
        out[name] = {
            # The least of the runs: a fresh interpreter's start has one cost, and a busy moment
            # of the machine only adds to it. A ratio still moves by up to 0.1 between two quiet
            # runs minutes apart (by the median as by the least).
            "ms": min(samples) * 1000,
            "median_ms": statistics.median(samples) * 1000,
            "init_io_ms": statistics.median(io) * 1000,
            "min_ms": min(samples) * 1000,
            "max_ms": max(samples) * 1000,
            "third_party_ms": min(floor) * 1000,
            "third_party_median_ms": statistics.median(floor) * 1000,
            "third_party_modules": len(modules),
            "third_party": _packages(modules),
        }
    out["_bare_interpreter"] = {"ms": bare * 1000, "min_ms": bare * 1000, "max_ms": bare * 1000}
    return out


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _zip_size(path: Path) -> int:
    """Bytes of a deflated zip of `path`'s contents (what a deploy uploads)."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "bundle.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(path.rglob("*")):
                if f.is_file() and "__pycache__" not in f.parts:
                    zf.write(f, f.relative_to(path))
        return target.stat().st_size


def bundle_sizes() -> dict[str, Any]:
    """From .aws-sam/build when `make template` has built it; else the function folders zipped
    and the layer's requirements pip-installed into a temp dir (python/) and zipped."""
    if all((SAM_BUILD / d).is_dir() for d in SAM_DIRS.values()):
        built = time.strftime(
            "%Y-%m-%d %H:%M", time.localtime((SAM_BUILD / "template.yaml").stat().st_mtime)
        )
        sizes = {
            name: {"unzipped": _dir_size(SAM_BUILD / d), "zipped": _zip_size(SAM_BUILD / d)}
            for name, d in SAM_DIRS.items()
        }
        return {"source": f".aws-sam/build (sam build, {built})", "sizes": sizes}
    sizes = {}
    for name in FUNCTIONS:
        folder = ROOT / "functions" / name
        sizes[name] = {"unzipped": _dir_size(folder), "zipped": _zip_size(folder)}
    for name, folder_name in LAYERS.items():
        sizes[name] = _layer_size(ROOT / "layers" / folder_name)
    return {
        "source": "functions/<f> zipped; layers = pip install -r requirements.txt, zipped",
        "sizes": sizes,
    }


def _layer_size(folder: Path) -> dict[str, int]:
    """A layer as sam build makes it: its requirements (and any package beside them) under
    python/, measured unzipped and zipped."""
    import shutil

    with tempfile.TemporaryDirectory() as tmp:
        python = Path(tmp) / "python"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--target",
                str(python),
                "-r",
                str(folder / "requirements.txt"),
            ],
            check=True,
        )
        for package in folder.iterdir():
            if package.is_dir() and (package / "__init__.py").exists():
                shutil.copytree(package, python / package.name)
        return {"unzipped": _dir_size(Path(tmp)), "zipped": _zip_size(Path(tmp))}


if __name__ == "__main__":
    import json

    print(json.dumps({"imports": import_times(3), "bundles": bundle_sizes()}, indent=1))
