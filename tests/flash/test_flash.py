"""`farside flash` on a virtual board: from nothing, incremental, interrupted at many
points, read back by the real mpremote, and refusing bad input with one line."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import serial

from hil.board import VirtualBoard, list_boards, start_board
from hil.errors import FarsideError
from hil.flash import FlashOptions, build_image, flash
from hil.flash.link import wait_boot_event
from hil.flash.repl import open_port
from tests.board.fixtures import ROOT

FARSIDE = [sys.executable, "-m", "hil.cli"]


def set_patch(src: Path, patch: int) -> int:
    """Change only version.py: PATCH = const(patch). Returns the new VERSION."""
    path = src / "version.py"
    text = re.sub(r"PATCH = const\(\d+\)", f"PATCH = const({patch})", path.read_text())
    path.write_text(text)
    return build_image("sim", src).version


def opts(board: VirtualBoard, src: Path, **kw: object) -> FlashOptions:
    return FlashOptions(board="sim", port=board.port, source=src, **kw)  # type: ignore[arg-type]


def slot_intact(flash_dir: Path, slot: str) -> bool:
    """Every file the slot's MANIFEST lists hashes as listed (read on the host)."""
    manifest = json.loads((flash_dir / "farside" / slot / "MANIFEST").read_text())
    for name, (size, digest) in manifest["files"].items():
        data = (flash_dir / "farside" / slot / name).read_bytes()
        if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
            return False
    return True


def boot_version(board: VirtualBoard, power_on: bool = True) -> int | None:
    """Power on (or reset) and return the version in the rover's BOOT event."""
    with open_port(board.port) as ser:
        ser.reset_input_buffer()
        if power_on:
            board.power_on()
        else:
            board.reset()
        event, _ = wait_boot_event(ser, 15.0)
    return event.version if event else None


def test_flash_from_nothing_then_only_the_changed_file_moves(
    vboard: VirtualBoard, src: Path
) -> None:
    v1 = set_patch(src, 1)
    first = flash(opts(vboard, src))
    assert first.plan.active is None and first.plan.staging == "a"
    actions = {f.action for f in first.plan.files}
    assert actions == {"upload"}
    # Files, then the slot's MANIFEST, boot.py, main.py and the 1-octet pointer.
    extra = (
        sum(
            (vboard.flash_dir / p).stat().st_size
            for p in ("farside/a/MANIFEST", "boot.py", "main.py")
        )
        + 1
    )
    assert first.payload_bytes == sum(f.size for f in first.plan.files) + extra
    assert first.boot is not None and first.boot.version == v1
    assert first.boot.dict_hash == first.dict_hash
    assert slot_intact(vboard.flash_dir, "a")

    v2 = set_patch(src, 2)
    second = flash(opts(vboard, src))
    assert second.attach == "enter_repl"  # the rover ran with Ctrl-C off: asked on its link
    assert second.plan.paths("upload") == ["firmware_py/version.mpy"]
    moved = [
        vboard.flash_dir / "farside/b/firmware_py/version.mpy",
        vboard.flash_dir / "farside/b/MANIFEST",
    ]
    assert second.payload_bytes == sum(p.stat().st_size for p in moved) + 1
    assert len(second.plan.paths("copy")) == len(first.plan.files) - 1
    assert second.plan.staging == "b"
    assert (vboard.flash_dir / "farside" / "active").read_text() == "b"
    assert second.boot is not None and second.boot.version == v2 != v1

    # Nothing changed: nothing moves, and the rover still boots.
    third = flash(opts(vboard, src))
    assert third.plan.up_to_date and third.payload_bytes == 0
    assert third.boot is not None and third.boot.version == v2

    # boot.py lost: only it is written back; the booting slot is left alone.
    (vboard.flash_dir / "boot.py").unlink()
    fourth = flash(opts(vboard, src))
    assert fourth.plan.root == ["boot.py"] and fourth.plan.staging == fourth.plan.active == "b"
    assert fourth.payload_bytes == (vboard.flash_dir / "boot.py").stat().st_size
    assert fourth.boot is not None and fourth.boot.version == v2


def test_real_mpremote_lists_and_reads_what_farside_flashed(
    vboard: VirtualBoard, src: Path
) -> None:
    report = flash(opts(vboard, src, reset=False))
    assert report.boot is None  # left at the REPL, not reset
    mpremote = str(Path(sys.executable).parent / "mpremote")
    proc = subprocess.run(
        [
            mpremote,
            "connect",
            vboard.port,
            "fs",
            "ls",
            ":farside/a",
            "+",
            "fs",
            "cat",
            ":farside/active",
            "+",
            "fs",
            "cat",
            ":farside/a/MANIFEST",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "dictionary.json" in proc.stdout and "firmware_py/" in proc.stdout
    start = proc.stdout.index('{"board"')
    assert proc.stdout[start - 1] == "a"  # farside/active (no newline) just before the MANIFEST
    manifest = json.loads(proc.stdout[start:].strip())
    assert manifest["version"] == report.version


def _restore(board: VirtualBoard, snapshot: Path) -> None:
    """Power off and put the flash folder back as it was in `snapshot`."""
    board.power_off()
    shutil.rmtree(board.flash_dir)
    shutil.copytree(snapshot, board.flash_dir)


def test_flash_cut_at_many_points_always_boots_and_the_next_flash_completes(
    vboard: VirtualBoard, src: Path, tmp_path: Path
) -> None:
    old = set_patch(src, 1)
    flash(opts(vboard, src, reset=False))
    vboard.power_off()
    snapshot = tmp_path / "snapshot"
    shutil.copytree(vboard.flash_dir, snapshot)
    vboard.power_on()
    new = set_patch(src, 2)
    # Every cut flash starts from the same board, so it writes the same bytes once
    # staging starts: measure them, then cut across them, densest at the end, where
    # the MANIFEST, boot files and the pointer are written.
    measured = flash(opts(vboard, src, wait_boot=False))
    staged = measured.wire_bytes - measured.setup_bytes
    cuts = [int(staged * f) for f in (0.02, 0.5)] + [staged - 500, staged - 150, staged - 25]
    sweep = int(os.environ.get("FARSIDE_FLASH_CUTS", "0"))  # e.g. 40 for a thorough sweep
    if sweep:
        cuts = sorted({1 + (staged - 2) * k // (sweep - 1) for k in range(sweep)} | set(cuts))
    for cut in cuts:
        _restore(vboard, snapshot)
        vboard.power_on()

        def arm(phase: str, done: int, total: int, path: str, cut: int = cut) -> None:
            if phase == "stage":
                vboard.cut_power_after(cut, then="off")

        # A short exec timeout ends the flash soon after the cut (the board no longer
        # answers), yet leaves a loaded machine time for every exchange before it.
        with pytest.raises(FarsideError) as cut_flash:
            flash(opts(vboard, src, exec_timeout_s=3.0), progress=arm)
        assert vboard.status()["power"] == "off", (
            f"flash cut at {cut} of {staged} failed with the power on: {cut_flash.value}"
        )
        booted = boot_version(vboard)
        assert booted in (old, new), (
            f"cut at {cut} of {staged}: the board booted {booted}, expected {old} or {new}"
        )
        active = (vboard.flash_dir / "farside" / "active").read_text()
        assert slot_intact(vboard.flash_dir, active)
        # The next flash completes (the last one also resets and checks the BOOT event).
        last = cut == cuts[-1]
        report = flash(opts(vboard, src, reset=last))
        active = (vboard.flash_dir / "farside" / "active").read_text()
        manifest = json.loads((vboard.flash_dir / "farside" / active / "MANIFEST").read_text())
        assert manifest["version"] == new and slot_intact(vboard.flash_dir, active)
        assert not last or (report.boot is not None and report.boot.version == new)


def test_board_that_re_enumerates_is_found_again_by_serial_number(
    micropython: str, tmp_path: Path, src: Path
) -> None:
    board = start_board(flash_dir=tmp_path / "flash", micropython=micropython, reenumerate=True)
    try:
        before = board.port
        report = flash(FlashOptions(board="sim", port=before, source=src))
        assert report.port != before
        assert report.port == board.control("status")["port"]
        assert report.boot is not None and report.boot.version == report.version
    finally:
        board.stop()


def test_corrupted_file_is_found_by_verify_and_repaired_by_flash(
    vboard: VirtualBoard, src: Path
) -> None:
    flash(opts(vboard, src, reset=False))
    target = vboard.flash_dir / "farside/a/firmware_py/drive.mpy"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    proc = subprocess.run(
        FARSIDE + ["flash", "--port", vboard.port, "--source", str(src), "--verify"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "firmware_py/drive.mpy" in proc.stderr
    report = flash(opts(vboard, src, wait_boot=False))
    assert report.plan.paths("upload") == ["firmware_py/drive.mpy"]
    assert slot_intact(vboard.flash_dir, report.plan.staging)


def test_dry_run_lists_changes_and_writes_nothing(vboard: VirtualBoard, src: Path) -> None:
    proc = subprocess.run(
        FARSIDE + ["flash", "--port", "virtual", "--source", str(src), "--dry-run", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["port"] == vboard.port
    assert report["dry_run"] and {f["action"] for f in report["files"]} == {"upload"}
    sim = json.loads((ROOT / "boards" / "sim.json").read_text())
    assert report["boot_timeout_s"] == sim["boot_timeout_s"]  # from the board definition
    assert not (vboard.flash_dir / "farside").exists()


def test_micropython_too_old_is_one_line(vboard: VirtualBoard, src: Path) -> None:
    with pytest.raises(
        FarsideError, match=r"^MicroPython 1\.\d+\.\d+ on the board is too old: expected 99\.0\.0"
    ):
        flash(opts(vboard, src, min_micropython=(99, 0, 0)))
    proc = subprocess.run(
        FARSIDE
        + ["flash", "--port", vboard.port, "--source", str(src), "--min-micropython", "2.0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "too old: expected 2.0.0 or newer" in proc.stderr
    assert not (vboard.flash_dir / "farside").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--board", "apollo", "--port", "virtual"], "unknown board 'apollo'"),
        (["--port", "/dev/no-such-port"], "expected a serial port at /dev/no-such-port"),
        (["--port", "virtual", "--dry-run"], "expected one running virtual board"),
        (["--board", "pico", "--port", "virtual"], "expected one running virtual board"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], expected: str) -> None:
    proc = subprocess.run(
        FARSIDE + ["flash", *args], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr


def test_port_virtual_starts_a_board_when_none_runs(src: Path, micropython: str) -> None:
    proc = subprocess.run(
        FARSIDE + ["flash", "--port", "virtual", "--source", str(src), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "FARSIDE_MICROPYTHON": micropython},
    )
    try:
        assert proc.returncode == 0, proc.stderr
        boards = list_boards()
        assert (
            len(boards) == 1
            and f"started virtual board {boards[0].name} on {boards[0].port}" in proc.stderr
        )
        report = json.loads(proc.stdout)
        assert report["port"] == boards[0].port and report["boot"]["version"] == report["version"]
    finally:
        for state in list_boards():
            VirtualBoard(state).stop()


def test_busy_port_is_one_line_and_exit_2(vboard: VirtualBoard) -> None:
    with serial.Serial(vboard.port, exclusive=True):
        proc = subprocess.run(
            FARSIDE + ["flash", "--port", vboard.port],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "busy" in proc.stderr


def test_silent_port_is_a_clear_error(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        with pytest.raises(FarsideError, match="expected the raw REPL"):
            flash(FlashOptions(board="sim", port=os.ttyname(slave), attach_attempts=1))
    finally:
        os.close(master)
        os.close(slave)


class _Killed(Exception):
    pass


@pytest.mark.parametrize("kill_at", [150, 1500, 3300])
def test_flash_killed_mid_write_leaves_a_board_the_next_flash_completes(
    vboard: VirtualBoard, src: Path, kill_at: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flash process dies after writing part of a chunk; the board stays powered,
    mid-protocol (raw-paste half sent, a file half written); the next flash recovers it."""
    from hil.flash import repl as repl_module

    old = set_patch(src, 1)
    flash(opts(vboard, src, reset=False))
    new = set_patch(src, 2)
    budget = {"left": -1}
    real_write = repl_module.RawRepl.write

    def dying_write(self: repl_module.RawRepl, data: bytes) -> None:
        if budget["left"] >= 0:
            if len(data) >= budget["left"]:
                real_write(self, data[: budget["left"]])
                raise _Killed()
            budget["left"] -= len(data)
        real_write(self, data)

    def arm(phase: str, done: int, total: int, path: str) -> None:
        if phase == "stage":
            budget["left"] = kill_at

    monkeypatch.setattr(repl_module.RawRepl, "write", dying_write)
    with pytest.raises(_Killed):
        flash(opts(vboard, src, reset=False), progress=arm)
    monkeypatch.setattr(repl_module.RawRepl, "write", real_write)
    report = flash(opts(vboard, src))
    assert report.boot is not None and report.boot.version == new != old
    assert report.attach == "ctrl-c"  # Ctrl-C ends a half-sent raw-paste, as on a Pico
