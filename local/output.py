"""`make run`'s terminal: its URLs and key, and little else. The functions' output (their
Powertools log lines on stdout) and the stack's own log go to `.local-data/stack.log`; with
`LOG_LEVEL` (e.g. `LOG_LEVEL=INFO`, which the functions' loggers read too) or `VERBOSE=1` they stay
on the terminal, as before."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TextIO

FORMAT = "%(asctime)s %(name)s %(message)s"
_redirected: list[tuple[TextIO, TextIO]] = []  # (the terminal, the log file) while quiet


def verbose() -> bool:
    return bool(os.environ.get("LOG_LEVEL")) or os.environ.get("VERBOSE", "") not in ("", "0")


def quiet(log_path: Path) -> TextIO:
    """Send stdout and the root logger to `log_path` (appended) unless verbose; returns the
    terminal, where the caller prints what the user must see. `restore()` undoes it."""
    terminal = sys.stdout
    level = (os.environ.get("LOG_LEVEL") or "INFO").upper()
    if verbose():
        logging.basicConfig(level=level, format=FORMAT)
        return terminal
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115  (restore closes)
    logging.basicConfig(level=level, format=FORMAT, stream=stream)
    sys.stdout = stream
    _redirected.append((terminal, stream))
    return terminal


def restore() -> None:
    """Stdout back to the terminal; the log file closed."""
    while _redirected:
        terminal, stream = _redirected.pop()
        if sys.stdout is stream:
            sys.stdout = terminal
        root = logging.getLogger()
        for handler in list(root.handlers):
            if isinstance(handler, logging.StreamHandler) and handler.stream is stream:
                root.removeHandler(handler)
        stream.close()
