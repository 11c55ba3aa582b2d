"""Virtual-board fixtures shared by tests/board and tests/flash."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from hil.board import VirtualBoard, start_board

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's boards live in their own runtime dir (never the user's)."""
    path = tmp_path_factory.mktemp("rt")
    monkeypatch.setenv("FARSIDE_RUNTIME_DIR", str(path))
    return path


@pytest.fixture
def vboard(micropython: str, tmp_path: Path, runtime_dir: Path) -> Iterator[VirtualBoard]:
    """A running virtual board with an empty flash folder, its first boot over (at `>>> `).

    start_board returns once the port exists, before MicroPython has run its bootstrap: a
    main.py a test writes at once could run in that first boot too, and its output, drained
    from the board at the test's reset, would pass for the output of the boot after it."""
    board = start_board(board="sim", flash_dir=tmp_path / "flash", micropython=micropython)
    try:
        with serial.serial_for_url(board.port, baudrate=115200, timeout=0.05) as ser:
            ser.write(b"\r")  # (opening the port flushed what came before) a prompt once at the REPL
            first = read_for(ser, 15, b">>> ")
            end = time.monotonic() + 15
            while time.monotonic() < end:  # every prompt read, the line quiet
                more = read_for(ser, 0.3)
                first += more
                if not more and first.endswith(b">>> "):
                    break
        assert first.endswith(b">>> "), f"the board's first boot did not reach its REPL: {first!r}"
        yield board
    finally:
        board.stop()


def read_for(ser: serial.Serial, seconds: float, until: bytes | None = None) -> bytes:
    """Read what arrives within `seconds` (or until `until` appears)."""
    data = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        data += ser.read(ser.in_waiting or 1)
        if until is not None and until in data:
            break
    return data


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A copy of the committed firmware_py to edit (work in progress in the tree stays out;
    outside a git checkout, the tree's)."""
    archive = subprocess.run(["git", "archive", "HEAD", "firmware_py"], cwd=ROOT, capture_output=True, check=False)
    if archive.returncode == 0:
        subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive.stdout, check=True)
    else:
        shutil.copytree(ROOT / "firmware_py", tmp_path / "firmware_py", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "firmware_py"
