"""The stack's emulated cloud parts, each in a process of its own (`--split`, the default).

    python -m bench.aux chain --tick 0.005   # the local Solana chain; prints READY <url>
    python -m bench.aux sqs                  # moto's server (SQS, SM); prints READY <endpoint>

In the cloud, SQS and the Solana RPC node are not in the function's process. In the one-process
local stack they would share its interpreter (and its GIL) with the handlers, so their CPU would
be charged to the engine. Running them apart measures the engine's own work; both layouts can be
measured (`python -m bench --no-split` keeps them in the stack process). moto's server is only
the bench's comparison (`python -m bench --sqs moto`): the stack's SQS and Secrets Manager are
LocalStack's, always a process of its own (bench/e2e.py starts it through local/localstack.py).
The process stops when its stdin closes.
"""

from __future__ import annotations

import argparse
import logging
import sys

BLOCKHASH_LIFETIME_SECONDS = 60.0  # 150 blocks of ~400 ms on a real cluster


def keep_blockhash_lifetime(tick: float) -> None:
    """Blocks every few ms would make a blockhash expire in under a second (150 blocks), which
    no real cluster does; keep its lifetime at about a minute of wall-clock time instead."""
    from local.chain import ledger

    ledger.BLOCKHASH_VALID_BLOCKS = max(150, int(BLOCKHASH_LIFETIME_SECONDS / tick))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", choices=("chain", "sqs"))
    parser.add_argument("--tick", type=float, default=0.005, help="seconds per block")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.part == "chain":
        from local.chain import LocalChain, serve_in_thread

        keep_blockhash_lifetime(args.tick)
        chain = LocalChain.seeded()
        chain.start_ticker(args.tick)
        url, stop = serve_in_thread(chain)
        print(f"READY {url}", flush=True)
        sys.stdin.read()
        stop()
        chain.stop()
    else:
        from moto.server import ThreadedMotoServer

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        print(f"READY http://{host}:{port}", flush=True)
        sys.stdin.read()
        moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
