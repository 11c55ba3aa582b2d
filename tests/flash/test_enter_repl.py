"""Flashing a running rover that enters the REPL the rp2 way: ENTER_REPL writes the
`enter_repl` flag in its slot and resets the board (firmware_py/main.py). The virtual
board takes that path with FARSIDE_REPL_BY_RESET=1 in its environment."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.board import VirtualBoard, start_board
from hil.flash import FlashOptions, FlashReport, flash
from hil.flash.bootfiles import ROVER_STATE_FILES
from hil.flash.image import load_keys
from hil.flash.link import command_bytes
from hil.flash.repl import open_port
from tests.flash.test_flash import set_patch, slot_intact

pytestmark = pytest.mark.micropython


def _rp2_board(
    monkeypatch: pytest.MonkeyPatch, micropython: str, flash_dir: Path, reenumerate: bool
) -> VirtualBoard:
    monkeypatch.setenv("FARSIDE_REPL_BY_RESET", "1")  # the supervisor passes it on
    return start_board(flash_dir=flash_dir, micropython=micropython, reenumerate=reenumerate)


@pytest.fixture
def rp2_board(
    monkeypatch: pytest.MonkeyPatch, micropython: str, tmp_path: Path
) -> Iterator[VirtualBoard]:
    board = _rp2_board(monkeypatch, micropython, tmp_path / "flash", reenumerate=False)
    try:
        yield board
    finally:
        board.stop()


def _slot_files(board: VirtualBoard, slot: str) -> set[str]:
    base = board.flash_dir / "farside" / slot
    return {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}


def _flash_running(
    board: VirtualBoard, src: Path, notes: list[str] | None = None
) -> tuple[FlashReport, int]:
    """Flash a board whose rover runs; also how many times the board started meanwhile.
    `notes` collects the progress lines of the connect phase."""
    boots = board.status()["boots"]

    def progress(phase: str, done: int, total: int, path: str) -> None:
        if notes is not None and phase == "connect":
            notes.append(path)

    report = flash(FlashOptions(board="sim", port=board.name, source=src), progress)
    assert report.attach == "enter_repl", report.attach
    assert report.boot is not None and report.boot.version == report.version
    return report, board.status()["boots"] - boots


def test_running_rover_flashed_twice_then_changed(rp2_board: VirtualBoard, src: Path) -> None:
    v1 = set_patch(src, 1)
    first = flash(FlashOptions(board="sim", port=rp2_board.port, source=src))
    assert first.boot is not None and first.boot.version == v1

    for n in range(2):
        report, boots = _flash_running(rp2_board, src)
        assert report.plan.up_to_date and report.plan.active == "a"
        # The rp2 path ran: the rover's reset to the REPL, the soft reset, the final reset
        # (the Ctrl-C path has no first one).
        assert boots == 3
        assert "enter_repl" not in _slot_files(rp2_board, "a")
        assert report.boot is not None and report.boot.boot_count == first.boot.boot_count + n + 1

    v2 = set_patch(src, 2)
    report, boots = _flash_running(rp2_board, src)
    assert report.boot is not None and report.boot.version == v2 != v1
    assert boots == 3 and report.plan.staging == "b"
    assert "enter_repl" not in _slot_files(rp2_board, "a") | _slot_files(rp2_board, "b")
    # Nothing of the old slot's rover state came along: the new rover's first boot.
    assert report.boot.boot_count == 1
    assert {f.action for f in report.plan.files} <= {"keep", "copy", "upload", "delete"}
    assert not set(report.plan.paths("copy")) & set(ROVER_STATE_FILES)
    assert slot_intact(rp2_board.flash_dir, "b")


def test_ctrl_c_in_the_escape_window_after_enter_repl_leaves_no_flag(
    rp2_board: VirtualBoard, src: Path
) -> None:
    """What the flash tool met on the emulated RP2040: its Ctrl-C after ENTER_REPL's reset
    landed in main.py's escape window. main.py consumes the flag before that window."""
    flash(FlashOptions(board="sim", port=rp2_board.port, source=src))
    with open_port(rp2_board.port) as ser:
        ser.reset_input_buffer()
        ser.write(command_bytes(load_keys(None), 200, 10))
        seen = b""
        end = time.monotonic() + 15.0
        while time.monotonic() < end and b">>> " not in seen:
            seen += ser.read(ser.in_waiting or 1)
            if b"escape window" in seen:
                ser.write(b"\x03")  # Ctrl-C in the escape window, every read (50 ms)
    assert b">>> " in seen, seen[-200:]
    assert b"farside: REPL (ENTER_REPL)" in seen and b"escape window" not in seen
    assert "enter_repl" not in _slot_files(rp2_board, "a")
    # The board is at the REPL; the next flash boots the rover.
    report = flash(FlashOptions(board="sim", port=rp2_board.port, source=src, boot_timeout_s=10))
    assert report.attach == "ctrl-c" and report.plan.up_to_date
    assert report.boot is not None and report.boot.version == report.version


def test_flash_deletes_a_leftover_flag(vboard: VirtualBoard, src: Path) -> None:
    """A flag main.py never saw (a Ctrl-C stopped boot.py on a slow chip): the flash tool
    deletes it, or the rover would stay at the REPL after the flash's reset."""
    flash(FlashOptions(board="sim", port=vboard.port, source=src))
    flag = vboard.flash_dir / "farside" / "a" / "enter_repl"
    flag.write_text("1")
    report = flash(FlashOptions(board="sim", port=vboard.port, source=src, boot_timeout_s=10))
    assert report.plan.up_to_date  # the booting slot is not rewritten, yet the flag is gone
    assert not flag.exists()
    assert report.boot is not None and report.boot.version == report.version


def test_enter_repl_reset_that_re_enumerates_is_followed(
    monkeypatch: pytest.MonkeyPatch, micropython: str, tmp_path: Path, src: Path
) -> None:
    """On a Pico the ENTER_REPL reset re-enumerates USB: the port the flash tool holds
    dies, and the board comes back on a new one with the same serial number."""
    board = _rp2_board(monkeypatch, micropython, tmp_path / "flash", reenumerate=True)
    try:
        flash(FlashOptions(board="sim", port=board.name, source=src))
        before = board.status()["port"]
        v2 = set_patch(src, 2)
        notes: list[str] = []
        report, boots = _flash_running(board, src, notes)
        assert boots == 3  # the rover's own reset, the soft reset, the final reset
        # The port died under the ENTER_REPL exchange and the board was found again.
        assert f"{before} went away; finding the board again" in notes
        assert report.port == board.status()["port"]
        assert report.boot is not None and report.boot.version == v2
        assert "enter_repl" not in _slot_files(board, "a") | _slot_files(board, "b")
    finally:
        board.stop()
