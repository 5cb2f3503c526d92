"""Where the read-only material beside the repository lives: `../shared/` (real mainnet account
dumps in `fixtures/`, the real DEX program binaries in `programs/`), found relative to the
repository root, so a clone anywhere (CI clones into another folder, with shared/ beside it)
finds it. `SHARED_DIR` points elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """`SHARED_DIR`, else the `shared/` folder beside the repository."""
    return Path(os.environ.get("SHARED_DIR") or REPO_ROOT.parent / "shared").resolve()


def shared_path(*parts: str) -> Path:
    """A file or folder under shared/; a missing one is an error that names it (never a skip)."""
    path = shared_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the shared fixtures and program binaries are expected in "
            f"{shared_dir()} (the shared/ folder beside the repository, or SHARED_DIR)"
        )
    return path
