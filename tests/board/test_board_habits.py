"""Boards as an operator meets them: an unknown board refused, a port another program holds
named at once, and `mpremote fs ls` showing the virtual board's real file sizes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil.board import VirtualBoard, known_boards, list_boards
from hil.flash import FlashOptions, flash
from hil.flash.link import wait_boot_event
from hil.flash.ports import port_holders
from hil.flash.repl import open_port
from tests.board.fixtures import ROOT

FARSIDE = [sys.executable, "-m", "hil.cli"]
MPREMOTE = str(Path(sys.executable).parent / "mpremote")


def test_board_start_refuses_an_unknown_board_naming_the_known_ones() -> None:
    proc = subprocess.run(FARSIDE + ["board", "start", "--board", "nonsense"],
                          capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("farside: error: expected a board definition (")
    shipped = sorted(p.stem for p in (ROOT / "boards").glob("*.json"))
    assert known_boards() == shipped and ", ".join(shipped) in proc.stderr
    assert "got 'nonsense'" in proc.stderr
    assert list_boards() == []  # nothing was started


def test_flash_names_a_process_that_holds_the_port_without_a_lock(vboard: VirtualBoard) -> None:
    # a plain open(), as a terminal program does: no flock, no TIOCEXCL
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sys, time; f = open({vboard.port!r}, 'rb', buffering=0); "
                               "print('open', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        assert [h.pid for h in port_holders(vboard.port)] == [holder.pid]
        t0 = time.monotonic()
        proc = subprocess.run(FARSIDE + ["flash", "--port", vboard.port],
                              capture_output=True, text=True, cwd=ROOT, timeout=60)
        took = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"port {vboard.port} is busy: pid {holder.pid} (" in proc.stderr
    assert took < 10  # refused before any attempt at the raw REPL (whose retries take longer)
    # the board's own supervisor keeps the port's other end open: that is not a holder
    assert port_holders(vboard.port) == []


def test_mpremote_fs_ls_shows_real_file_sizes(vboard: VirtualBoard) -> None:
    (vboard.flash_dir / "data.bin").write_bytes(os.urandom(1234))
    (vboard.flash_dir / "lib").mkdir()
    (vboard.flash_dir / "lib" / "mod.py").write_text("x = 1\n")
    proc = subprocess.run([MPREMOTE, "connect", vboard.port, "fs", "ls", ":", "+", "fs", "ls", ":lib"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[-1]: line.split()[0] for line in proc.stdout.splitlines() if not line.startswith("ls ")}
    assert rows["data.bin"] == "1234"
    assert rows["lib/"] == "0"  # a directory has no size, as on the Pico's littlefs
    assert rows["mod.py"] == "6"


@pytest.mark.micropython
def test_mpremote_on_a_flashed_board_once_flash_no_reset_has_stopped_the_rover(
        vboard: VirtualBoard, src: Path) -> None:
    """The rover holds the board's only port for its link (boards/sim.json as pico.json) and
    ignores Ctrl-C, so mpremote alone would wait on it. `farside flash --no-reset` stops the
    rover with the authenticated ENTER_REPL, writes nothing when up to date, and leaves the REPL
    to mpremote; a reset starts the rover again."""
    first = flash(FlashOptions(board="sim", port=vboard.port, source=src))
    assert first.boot is not None
    again = subprocess.run(FARSIDE + ["flash", "--port", vboard.port, "--source", str(src), "--no-reset"],
                           capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout and "rover booted" not in again.stdout
    ran = subprocess.run([MPREMOTE, "connect", vboard.port, "resume", "exec", "import os; print('ls', os.listdir())"],
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and "ls [" in ran.stdout and "'farside'" in ran.stdout, ran.stderr
    with open_port(vboard.port) as ser:
        ser.reset_input_buffer()
        vboard.reset()
        event, seen = wait_boot_event(ser, 30)
    assert event is not None, seen
    assert (event.version, event.dict_hash) == (first.version, first.dict_hash)
    assert event.boot_count == first.boot.boot_count + 1
