"""The real DEX programs the local chain runs, as the SBF binaries deployed on mainnet:
Raydium CPMM (`CPMMoo8L...`) and Meteora DAMM v2 (`cpamdpZC...`), each loaded at its mainnet id
as an upgradeable program, the way a validator holds it: a ProgramData account (`u32 3`, the
deploy slot, `Option<Pubkey>` upgrade authority, then the ELF) at the PDA of `[program id]`
under the upgradeable loader, and the executable Program account (`u32 2` + the ProgramData
address). Both are written with LiteSVM's `set_account`, so `getAccountInfo` of a program id
answers what it answers on a cluster.

Where a binary comes from, first found wins:
1. `LOCAL_PROGRAMS_DIR` (a folder holding `raydium_cp_swap.so` and `cp_amm.so`);
2. `../shared/programs/` beside the repository (`local.shared`);
3. `.cache/programs/`, where `make programs` (`python -m local.chain.binaries dump`) writes
   what `getAccountInfo` of each ProgramData account on PROGRAM_DUMP_RPC_URL holds, as
   `solana program dump` does.

`programs.lock` beside this module pins each program by the sha256 of its ELF cut to the ELF's
own length (`e_shoff + e_shnum * e_shentsize`), so a `.so` file and a dump of the same program
(padded with zeros to the ProgramData account's size) agree. A binary whose hash is not the
pinned one is still loaded, with a warning naming both hashes; `make programs PIN=1` records
the dump's hash instead. The binaries are not part of the repository: Meteora's licence is
noncommercial, so they are fetched or dumped, never committed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import os
import struct
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from solders.account import Account
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey

from local.shared import REPO_ROOT, shared_dir

log = logging.getLogger("local.chain")

UPGRADEABLE_LOADER = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")
LOCK_FILE = Path(__file__).with_name("programs.lock")
CACHE_DIR = REPO_ROOT / ".cache" / "programs"
DIR_ENV = "LOCAL_PROGRAMS_DIR"
DUMP_RPC_ENV = "PROGRAM_DUMP_RPC_URL"
# UpgradeableLoaderState tags (solana-loader-v3-interface state.rs).
_PROGRAM = 2
_PROGRAM_DATA = 3
PROGRAM_DATA_HEADER = 4 + 8 + 1 + 32  # tag, slot, Option<Pubkey> (its 32 bytes always there)
DEPLOY_SLOT = 0  # the ProgramData's slot: deployed at genesis


@dataclass(frozen=True)
class Pin:
    """One program as programs.lock pins it."""

    name: str  # the venue it implements
    program_id: Pubkey
    file: str  # the binary's name in a programs folder
    sha256: str  # of the ELF cut to its own length
    version: str


@dataclass(frozen=True)
class Binary:
    """A program binary found on this machine."""

    pin: Pin
    elf: bytes  # cut to the ELF's own length
    path: Path

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.elf).hexdigest()

    @property
    def pinned(self) -> bool:
        return self.sha256 == self.pin.sha256


class ProgramMissing(FileNotFoundError):
    """No binary of a program anywhere this module looks."""


def read_lock(path: Path = LOCK_FILE) -> list[Pin]:
    entries = json.loads(path.read_text())["programs"]
    return [
        Pin(e["name"], Pubkey.from_string(e["program_id"]), e["file"], e["sha256"], e["version"])
        for e in entries
    ]


def write_lock(pins: Sequence[Pin], path: Path = LOCK_FILE) -> None:
    entries = [
        {
            "name": p.name,
            "program_id": str(p.program_id),
            "file": p.file,
            "sha256": p.sha256,
            "version": p.version,
        }
        for p in pins
    ]
    path.write_text(json.dumps({"programs": entries}, indent=2) + "\n")


def elf_length(data: bytes) -> int:
    """Where an ELF64 file ends: its section header table is its last part."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError("not an ELF64 file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    end = int(shoff + shnum * shentsize)
    if end > len(data):
        raise ValueError(f"truncated ELF: it ends at {end}, the data at {len(data)}")
    return end


def cut_elf(data: bytes) -> bytes:
    """The ELF without what follows it (a ProgramData account's zero padding)."""
    return data[: elf_length(data)]


def programdata_address(program_id: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([bytes(program_id)], UPGRADEABLE_LOADER)[0]


def programdata_bytes(
    elf: bytes, slot: int = DEPLOY_SLOT, authority: Pubkey | None = None
) -> bytes:
    """UpgradeableLoaderState::ProgramData followed by the ELF (bincode)."""
    head = struct.pack("<IQ", _PROGRAM_DATA, slot)
    head += b"\x01" + bytes(authority) if authority is not None else b"\x00" + bytes(32)
    return head + elf


def program_account_bytes(program_id: Pubkey) -> bytes:
    """UpgradeableLoaderState::Program { programdata_address }."""
    return struct.pack("<I", _PROGRAM) + bytes(programdata_address(program_id))


def parse_programdata(data: bytes) -> tuple[int, Pubkey | None, bytes]:
    """(deploy slot, upgrade authority, ELF cut to its length) from a ProgramData account's
    data, as `solana program dump` reads it."""
    if len(data) < PROGRAM_DATA_HEADER:
        raise ValueError("too short for a ProgramData account")
    tag, slot = struct.unpack_from("<IQ", data, 0)
    if tag != _PROGRAM_DATA:
        raise ValueError(f"not a ProgramData account (loader state {tag})")
    authority = Pubkey.from_bytes(data[13:45]) if data[12] == 1 else None
    return slot, authority, cut_elf(data[PROGRAM_DATA_HEADER:])


def search_dirs() -> list[Path]:
    """Where binaries are looked for, in order."""
    dirs = [Path(os.environ[DIR_ENV])] if os.environ.get(DIR_ENV) else []
    return [*dirs, shared_dir() / "programs", CACHE_DIR]


def find(pin: Pin) -> Binary:
    """The first binary of `pin`'s program in `search_dirs()`; a hash other than the pinned
    one is logged as a warning naming both."""
    for folder in search_dirs():
        path = folder / pin.file
        if path.is_file():
            binary = Binary(pin, cut_elf(path.read_bytes()), path)
            if not binary.pinned:
                log.warning(
                    "%s: %s has ELF sha256 %s, programs.lock pins %s; loading it anyway "
                    "(make programs PIN=1 records it)",
                    pin.name,
                    path,
                    binary.sha256,
                    pin.sha256,
                )
            return binary
    looked = ", ".join(str(d) for d in search_dirs())
    raise ProgramMissing(
        f"no {pin.file} ({pin.name}, {pin.program_id}) in {looked}: set {DIR_ENV}, put the "
        f"shared/ folder beside the repository, or run `make programs` with {DUMP_RPC_ENV}"
    )


def find_all() -> list[Binary]:
    return [find(pin) for pin in read_lock()]


_found: list[Binary] | None = None


def cached() -> list[Binary]:
    """`find_all()`, read from disk once per process (every Ledger loads the same binaries)."""
    global _found
    if _found is None:
        _found = find_all()
    return _found


def load(svm: LiteSVM, binaries: Sequence[Binary]) -> None:
    """Deploy each binary at its program id as the upgradeable loader holds it: ProgramData
    first, then the executable Program account naming it."""
    for binary in binaries:
        program_id = binary.pin.program_id
        data = programdata_bytes(binary.elf)
        rent = svm.minimum_balance_for_rent_exemption(len(data))
        svm.set_account(
            programdata_address(program_id), Account(rent, data, UPGRADEABLE_LOADER, False, 0)
        )
        program = program_account_bytes(program_id)
        rent = svm.minimum_balance_for_rent_exemption(len(program))
        svm.set_account(program_id, Account(rent, program, UPGRADEABLE_LOADER, True, 0))


# ------------------------------------------------------------------------------ make programs
def fetch_programdata(rpc_url: str, program_id: Pubkey) -> bytes:
    """getAccountInfo of the program's ProgramData account (base64), as `solana program dump`."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "getAccountInfo",
        "params": [str(programdata_address(program_id)), {"encoding": "base64"}],
    }
    request = urllib.request.Request(
        rpc_url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    value = (answer.get("result") or {}).get("value")
    if value is None:
        raise ProgramMissing(f"{rpc_url} has no ProgramData account for {program_id}")
    return base64.b64decode(value["data"][0])


def dump(
    rpc_url: str, pin_new: bool, dest: Path = CACHE_DIR, lock: Path = LOCK_FILE
) -> list[Binary]:
    """Dump every program `lock` names from `rpc_url` into `dest`; `pin_new` records the dumps'
    hashes in the lock (else a hash not pinned is a warning naming both)."""
    dest.mkdir(parents=True, exist_ok=True)
    pins = read_lock(lock)
    dumped = []
    for pin in pins:
        _, _, elf = parse_programdata(fetch_programdata(rpc_url, pin.program_id))
        path = dest / pin.file
        path.write_bytes(elf)
        binary = Binary(pin, elf, path)
        if not binary.pinned and not pin_new:
            log.warning(
                "%s: the dump's ELF sha256 is %s, programs.lock pins %s (PIN=1 records it)",
                pin.name,
                binary.sha256,
                pin.sha256,
            )
        dumped.append(binary)
    if pin_new:
        write_lock(
            [
                Pin(b.pin.name, b.pin.program_id, b.pin.file, b.sha256, "dumped from " + rpc_url)
                if not b.pinned
                else b.pin
                for b in dumped
            ],
            lock,
        )
    return dumped


def describe(binary: Binary) -> str:
    """One line for `make run`: the program, its version, its hash and whether it is pinned."""
    state = "pinned" if binary.pinned else f"NOT the pinned {binary.pin.sha256[:16]}"
    return (
        f"{binary.pin.name} {binary.pin.program_id}: {binary.pin.version}, ELF sha256 "
        f"{binary.sha256[:16]} ({state}), from {binary.path}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.chain.binaries", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dump_command = commands.add_parser("dump", help=f"dump the programs from {DUMP_RPC_ENV}")
    dump_command.add_argument("--rpc", default=os.environ.get(DUMP_RPC_ENV))
    dump_command.add_argument("--pin", action="store_true", help="record the dumps' hashes")
    commands.add_parser("show", help="which binaries the local chain would load")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "dump":
            if not args.rpc:
                print(f"error: set {DUMP_RPC_ENV} (a mainnet RPC URL)", file=sys.stderr)
                return 2
            binaries = dump(args.rpc, args.pin)
        else:
            binaries = find_all()
    except (ProgramMissing, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for binary in binaries:
        print(describe(binary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
