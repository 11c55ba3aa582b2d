"""The HIL scenarios on the emulated Pico: the suite's own tests, run a second time through the
plugin with `--farside-target pico-emu`.

The rover is the real firmware flashed by `farside flash` onto the stock rp2 firmware, on
boards/pico.json and the rp2 HAL; faults are injected at the chip's pins; the ground, the relay
and the plant follow the chip's clock. Every scenario that can run on the chip does; those that
cannot say why with their `farside_targets` mark (the rock: the Pico board has no hazard
sensor; long traverses and lunar nights: minutes of chip time each, run in virtual time).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pico.conftest import need_emulator

ROOT = Path(__file__).resolve().parents[2]

ON_CHIP = (
    "tests/hil/test_board_faults.py",  # jam on five wheels, time tags across a reboot, power cuts
    "tests/hil/test_hazards.py",  # tilt -> SAFE (the rock is virtual/mpy only: no hazard sensor pins)
    "tests/hil/test_link.py",  # replay/forgery rejected, hung task -> watchdog reset (WATCHDOG)
)


@pytest.mark.slow
@pytest.mark.timeout(1500)  # the inner run's own limit, not the suite's 300 s per test
def test_hil_scenarios_pass_on_the_emulated_pico(tmp_path: Path) -> None:
    need_emulator()
    env = dict(os.environ, FARSIDE_RUNTIME_DIR=str(tmp_path / "runtime"))
    proc = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *ON_CHIP,
            "--farside-target", "pico-emu", "-rs", f"--basetemp={tmp_path / 'inner'}",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=1500, env=env,
    )
    tail = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    summary = proc.stdout.strip().splitlines()[-1]
    passed = int(summary.split(" passed")[0].split()[-1])
    assert passed >= 9, tail  # six board faults, tilt, replay/forgery, watchdog reset
    assert "failed" not in summary and "error" not in summary, tail
