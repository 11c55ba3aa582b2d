"""farside's pytest plugin: run one HIL test suite against virtual and real rovers.

Loaded in every pytest run of this repository (pytest11 entry point), so it imports
nothing heavy at module level and does nothing unless a test asks for its fixtures.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("farside", "farside hardware-in-the-loop")
    group.addoption(
        "--farside-target",
        default="virtual",
        help="virtual (CPython rover, virtual time) | mpy (MicroPython virtual board, "
        "real time) | serial:PORT (a real board). Default: virtual.",
    )
    group.addoption("--farside-board", default=None, help="board definition (default: sim)")
    group.addoption("--farside-relay", default=None, help="relay profile (queqiao, lab, harsh)")
    group.addoption(
        "--farside-flash", action="store_true", default=False, help="flash the target first"
    )
    group.addoption(
        "--farside-seed", default=None, help="seed (int) or seed range A..B for campaigns"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil: a hardware-in-the-loop scenario")
