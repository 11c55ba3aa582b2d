"""Shared by the key tests: a CPython rover behind a pty, as a board on USB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gs.rover_pty import start_rover


@pytest.fixture
def rover_port(tmp_path: Path) -> Iterator[str]:
    proc, path = start_rover(tmp_path / "rover")
    try:
        yield path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
