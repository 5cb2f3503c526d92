"""Each function as `sam build` lays it out: its own folder plus only the layers the template gives
it (each layer = its ContentUri source and its requirements.txt installed, as under /opt/python),
plus boto3, which the Lambda Python runtime provides. Nothing else from this venv is importable.

The installed requirements are cached in `.cache/layers/<Layer>-<hash>` (a fresh clone installs
them once, about a minute; later runs reuse them).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from local.handlers import ROOT
from local.template import function_id, load_template, resource

CACHE = ROOT / ".cache" / "layers"
# What the Lambda Python 3.11 runtime itself provides beyond the standard library.
RUNTIME_REQUIREMENTS = "boto3\n"

DRIVER = r"""
import importlib.util, json, sys, traceback
paths, function = json.loads(sys.argv[1]), sys.argv[2]
sys.path[:0] = paths
events = json.loads(sys.stdin.read())

class Context:
    function_name = function
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function
    aws_request_id = "layered-test"
    def get_remaining_time_in_millis(self):
        return 30000

spec = importlib.util.spec_from_file_location("app", f"functions/{function}/app.py")
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
results = []
for event in events:
    try:
        results.append({"reply": app.handler(event, Context())})
    except Exception as exc:
        results.append({"raised": type(exc).__name__, "message": str(exc),
                        "trace": traceback.format_exc()})
roots = sorted({name.split(".")[0] for name in sys.modules})
print("RESULT " + json.dumps({"results": results, "modules": roots}, default=str))
"""


def _install(name: str, requirements: str) -> Path:
    digest = hashlib.sha256(requirements.encode()).hexdigest()[:12]
    target = CACHE / f"{name}-{digest}"
    if (target / ".complete").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--target",
            str(target),
            "--upgrade",
            "-r",
            "/dev/stdin",
        ],
        input=requirements,
        text=True,
        check=True,
    )
    (target / ".complete").touch()
    return target


def _requirements(path: Path) -> str:
    """The file's requirements for `pip -r /dev/stdin`: a `-c` constraints file (relative to the
    file, as pip reads it) made absolute, with its hash, so a new lock installs anew."""
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("-c "):
            constraints = (path.parent / line[3:].strip()).resolve()
            digest = hashlib.sha256(constraints.read_bytes()).hexdigest()[:12]
            line = f"-c {constraints}  # {digest}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def function_layers(function: str) -> list[str]:
    """Logical ids of the layers the template gives `function` (Globals first, as SAM merges)."""
    doc = load_template()
    own = resource(function_id(function, doc), doc).get("Properties", {}).get("Layers", [])
    glob = doc.get("Globals", {}).get("Function", {}).get("Layers", [])
    return [ref["Ref"] for ref in [*glob, *own]]


def import_path(function: str) -> list[str]:
    """sys.path for `function`: its folder, each layer's source and installed requirements,
    then the runtime's boto3."""
    doc = load_template()
    paths = [str(ROOT / "functions" / function)]
    for layer in function_layers(function):
        content = ROOT / str(resource(layer, doc)["Properties"]["ContentUri"])
        paths.append(str(content))
        paths.append(str(_install(layer, _requirements(content / "requirements.txt"))))
    paths.append(str(_install("runtime", RUNTIME_REQUIREMENTS)))
    return paths


def run_handler(function: str, events: list[dict[str, Any]], env: dict[str, str]) -> dict[str, Any]:
    """Invoke `functions/<function>/app.py`'s handler on each event in a fresh interpreter that
    sees only that function's layers (`-S`: no site-packages). Returns the replies (or what each
    raised) and the top-level modules the run imported."""
    done = subprocess.run(
        [sys.executable, "-S", "-c", DRIVER, json.dumps(import_path(function)), function],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            # What else the function printed: its log lines and its EMF metrics, as CloudWatch
            # Logs would receive them.
            result["stdout"] = done.stdout
            return result
    raise AssertionError(f"{function} did not run:\n{done.stdout}\n{done.stderr}")
