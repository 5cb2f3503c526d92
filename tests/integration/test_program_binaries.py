"""Where the DEX program binaries come from and how they are pinned (local.chain.binaries).

There is no network here, so `make programs`' dump is tested against the one cluster at hand:
the local chain, served over a real socket, answering getAccountInfo of each ProgramData
account with the bytes it holds for the pinned binaries, exactly as a mainnet RPC answers for
the deployed ones.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.chain import LocalChain, serve_in_thread
from local.chain import binaries as programs
from local.shared import REPO_ROOT


@pytest.fixture(scope="module")
def rpc_url() -> Iterator[str]:
    chain = LocalChain()
    url, stop = serve_in_thread(chain)
    yield url
    stop()


def test_a_dump_from_a_cluster_is_the_pinned_elf(rpc_url: str, tmp_path: Path) -> None:
    lock = tmp_path / "programs.lock"
    lock.write_text(programs.LOCK_FILE.read_text())
    dumped = programs.dump(rpc_url, pin_new=False, dest=tmp_path, lock=lock)
    assert {b.pin.name for b in dumped} == {"raydium_cpmm", "meteora_damm_v2"}
    for binary in dumped:
        assert binary.pinned
        written = (tmp_path / binary.pin.file).read_bytes()
        assert hashlib.sha256(written).hexdigest() == binary.pin.sha256
        # The same ELF as the file the chain loaded, whatever padding either carried.
        assert written == programs.find(binary.pin).elf
    assert lock.read_text() == programs.LOCK_FILE.read_text()  # nothing to record


def test_a_dump_not_in_the_lock_warns_with_both_hashes_and_pin_records_it(
    rpc_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lock = tmp_path / "programs.lock"
    pins = programs.read_lock()
    stale = "0" * 64
    programs.write_lock(
        [
            programs.Pin(p.name, p.program_id, p.file, stale, "an older dump")
            if p.name == "meteora_damm_v2"
            else p
            for p in pins
        ],
        lock,
    )
    with caplog.at_level(logging.WARNING, logger="local.chain"):
        dumped = programs.dump(rpc_url, pin_new=False, dest=tmp_path, lock=lock)
    damm = next(b for b in dumped if b.pin.name == "meteora_damm_v2")
    assert not damm.pinned
    assert damm.sha256 in caplog.text
    assert stale in caplog.text
    programs.dump(rpc_url, pin_new=True, dest=tmp_path, lock=lock)
    recorded = {p.name: p.sha256 for p in programs.read_lock(lock)}
    assert recorded["meteora_damm_v2"] == damm.sha256
    assert recorded["raydium_cpmm"] == next(p.sha256 for p in pins if p.name == "raydium_cpmm")


def test_local_programs_dir_wins_and_an_unpinned_binary_is_loaded_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pin = next(p for p in programs.read_lock() if p.name == "raydium_cpmm")
    elf = bytearray(programs.find(pin).elf)
    elf[0x200] ^= 0xFF  # another build: same length, another hash
    (tmp_path / pin.file).write_bytes(bytes(elf) + bytes(4096))  # padded, as a dump may be
    monkeypatch.setenv(programs.DIR_ENV, str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="local.chain"):
        found = programs.find(pin)
    assert found.path == tmp_path / pin.file
    assert found.elf == bytes(elf)  # cut to the ELF's own length
    assert not found.pinned
    assert found.sha256 in caplog.text
    assert pin.sha256 in caplog.text


def test_a_missing_binary_names_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(programs.DIR_ENV, str(tmp_path))
    monkeypatch.setenv("SHARED_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setattr(programs, "CACHE_DIR", tmp_path / "cache")
    pin = programs.read_lock()[0]
    with pytest.raises(programs.ProgramMissing) as missing:
        programs.find(pin)
    assert str(tmp_path) in str(missing.value)
    assert "make programs" in str(missing.value)


def test_the_show_command_prints_each_programs_version_and_hash() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "local.chain.binaries", "show"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for pin in programs.read_lock():
        assert f"{pin.name} {pin.program_id}: {pin.version}" in shown
        assert f"ELF sha256 {pin.sha256[:16]} (pinned)" in shown
