"""The same HIL scenarios on the real MicroPython virtual board, in real time.

The suite's own scenarios run here a second time, through the plugin, against
`--farside-target mpy`: firmware_py flashed onto the MicroPython unix port in a pty
(Pico heap budget), the `lab` relay, the ground station on the serial line. Only
scenarios short enough for real time are chosen; the rest are virtual-time only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Short scenarios (seconds of rover time); the long ones run in virtual time only.
MPY_SUBSET = (
    "test_25_degree_slope_goes_safe_and_recovers_by_command",
    "test_replayed_and_forged_commands_are_rejected_while_real_ones_work",
)


@pytest.mark.slow
@pytest.mark.timeout(600)  # the inner run's own limit, not the suite's 300 s per test
def test_scenarios_pass_on_the_micropython_virtual_board(tmp_path: Path, micropython: str) -> None:
    # the micropython fixture: skipped without the unix port, failed under CI
    env = dict(os.environ, FARSIDE_RUNTIME_DIR=str(tmp_path / "runtime"), FARSIDE_MICROPYTHON=micropython)
    proc = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "tests/hil/test_hazards.py", "tests/hil/test_link.py",
            "--farside-target", "mpy", "--farside-relay", "lab",
            "-k", " or ".join(MPY_SUBSET),
            f"--basetemp={tmp_path / 'inner'}",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    tail = proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    assert f"{len(MPY_SUBSET)} passed" in proc.stdout, tail
