"""Where the MicroPython firmware and source kept beside the project are, and how a test
that needs them behaves when they are not there (CI must have them: it fails there)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED_RP2 = ROOT.parent / "shared" / "rp2"
STOCK_UF2 = SHARED_RP2 / "RPI_PICO-v1.28.0.uf2"

