"""Starts LocalStack's runtime the way its container image does, with two guarantees it lacks
when it runs outside Docker. Run by `local/localstack.py` with LocalStack's own interpreter:

    .tools/localstack/bin/python -P local/localstack_boot.py      (environment: its config)

1. It dies with whoever started it. Its stdin is a pipe from the parent: end of input (the
   parent closed it, or the parent died in any way, SIGKILL included, and the kernel closed it)
   sends LocalStack SIGTERM, its own graceful shutdown, and after `GRACE_SECONDS` SIGKILL to the
   whole process group (the parent starts it in a session of its own). The kernel's parent-death
   signal is set too, for a parent whose forked children keep the pipe open. An orphan removes
   its own directory (LOCALSTACK_BOOT_WORKDIR) as it exits: nobody is left to do it.
2. It listens on loopback only. LocalStack's Twisted gateway (its default server, measured the
   fastest here) ignores GATEWAY_LISTEN's host and binds 0.0.0.0; the Secrets Manager it serves
   holds a wallet key, so the endpoint factory is given the host GATEWAY_LISTEN names.

`-P` keeps this file's directory off sys.path: `local/queue.py` would shadow the stdlib `queue`.
This file imports nothing from the project; it runs in LocalStack's venv, not the project's.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import sys
import threading
import time
from typing import Any

GRACE_SECONDS = 5.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """SIGTERM when the parent goes; if it already went (we were reparented), go now."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the stdin watch below still holds
        pass
    if parent and os.getppid() != parent:
        sys.exit("localstack_boot: the process that started LocalStack is gone")


def remove_workdir_if_orphaned(workdir: str, parent: int) -> None:
    """At exit: the directory of an orphan's files and log goes with it. With its parent alive
    it stays: the parent reads the log of a failed start, then removes it."""
    if workdir and os.getppid() != parent:
        shutil.rmtree(workdir, ignore_errors=True)


def kill_everything() -> None:
    """SIGKILL our process group when we lead it (started with start_new_session), else us."""
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def stop_at_end_of_input(workdir: str, parent: int) -> None:
    sys.stdin.buffer.read()  # returns at EOF only: stop() or the parent's death
    os.kill(os.getpid(), signal.SIGTERM)  # LocalStack's handler shuts its services down
    time.sleep(GRACE_SECONDS)
    # Still here: the shutdown hung (on a loaded machine it can outlast the grace). A SIGKILL
    # runs no atexit handler, so an orphan removes its directory first.
    remove_workdir_if_orphaned(workdir, parent)
    kill_everything()


def bind_only_to(host: str) -> None:
    from twisted.internet import endpoints

    original = endpoints.TCP4ServerEndpoint

    def endpoint(reactor: Any, port: int, backlog: int = 50, interface: str = "") -> Any:
        return original(reactor, port, backlog, interface or host)

    endpoints.TCP4ServerEndpoint = endpoint


def main() -> None:
    parent = int(os.environ.get("LOCALSTACK_BOOT_PARENT", "0"))
    workdir = os.environ.get("LOCALSTACK_BOOT_WORKDIR", "")
    atexit.register(remove_workdir_if_orphaned, workdir, parent)
    die_with_parent(parent)
    threading.Thread(
        target=stop_at_end_of_input, args=(workdir, parent), name="stdin-watch", daemon=True
    ).start()
    host = os.environ.get("GATEWAY_LISTEN", "127.0.0.1:4566").rsplit(":", 1)[0]
    if host and host not in ("0.0.0.0", "::"):
        bind_only_to(host)
    from localstack.runtime.main import main as run_localstack

    run_localstack()


if __name__ == "__main__":
    main()
