"""Run batches of firmware-codec commands through one MicroPython process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.firmware_codec.mpy_driver import Driver

_SCRIPT = "from tests.firmware_codec.mpy_driver import main\nmain()\n"


@pytest.fixture(scope="session")
def mpy_batch(run_mpy: Callable[..., Any]) -> Callable[[list[str]], list[str]]:
    """Send command lines (see mpy_driver.py) to one MicroPython process; return its answers."""

    def run(lines: list[str]) -> list[str]:
        proc = run_mpy(_SCRIPT, stdin="\n".join(lines) + "\nquit\n")
        out = proc.stdout.splitlines()
        assert len(out) == len(lines), f"MicroPython answered {len(out)} of {len(lines)} lines:\n{proc.stdout}"
        return out

    return run


@pytest.fixture(scope="session")
def cpy_batch() -> Callable[[list[str]], list[str]]:
    """The same driver, in this CPython process."""

    def run(lines: list[str]) -> list[str]:
        d = Driver()
        return [d.handle(line) for line in lines]

    return run
