"""Where the MicroPython firmware and source kept beside the project are, and how a test
that needs them behaves when they are not there (CI must have them: it fails there)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_RP2 = ROOT.parent / "shared" / "rp2"
STOCK_UF2 = SHARED_RP2 / "RPI_PICO-v1.28.0.uf2"


def need(ok: bool, why: str) -> None:
    """Skip the test when `ok` is false; under CI (CI=true) fail it instead."""
    if ok:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{why} (CI must have it)")
    pytest.skip(why)
