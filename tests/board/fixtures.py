"""Virtual-board fixtures shared by tests/board and tests/flash."""

from __future__ import annotations

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
    """A running virtual board with an empty flash folder."""
    board = start_board(board="sim", flash_dir=tmp_path / "flash", micropython=micropython)
    try:
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
