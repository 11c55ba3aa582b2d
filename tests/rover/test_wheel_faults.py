"""Each kind of wheel failure is told apart, isolated, and the drive completes on five wheels
(stepped runner on CPython: the same code path the unix-port scenarios use)."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest

from tests.rover.ground import make_root
from tests.rover.mpy_runner import Runner

JAM, OPEN_CIRCUIT, ENCODER_DEAD = 1, 2, 3
STALL, OVERCURRENT, OPEN, ENCODER_FAIL = 2, 3, 4, 5


@pytest.mark.parametrize(
    ("fault", "wheel", "expected"),
    [(JAM, 4, STALL), (OPEN_CIRCUIT, 6, OPEN), (ENCODER_DEAD, 2, ENCODER_FAIL), (JAM, 1, STALL)],
)
def test_each_wheel_failure_is_classified_isolated_and_the_drive_completes(
    tmp_path: Path, fault: int, wheel: int, expected: int
) -> None:
    r = Runner(make_root(tmp_path / "r"))
    req = r.send(200, 2, struct.pack(">ff", 10.0, 200.0))
    r.run_s(200, lambda: r.hal.plant.x > 5.0)
    r.send(250, 1, struct.pack(">BBf", fault, wheel, 0.0))
    assert r.run_s(400, lambda: r.done(req))
    assert r.reports(req)[-1] == (7, None)
    assert r.rover.safety.state[wheel - 1] == expected
    assert (3, (wheel, expected)) in r.events
    # a dead encoder's motor still works: reported, never isolated; the others are isolated
    assert ((4, (wheel,)) in r.events) == (expected != ENCODER_FAIL)
    assert sum(1 for s in r.rover.safety.state if s) == 1  # only that wheel changed state
    p = r.hal.plant
    assert abs(p.x - 10.0) < 0.1 and abs(p.y) < 0.2 and abs(math.degrees(p.heading)) < 1.0


def test_overcurrent_is_reported_for_a_short(tmp_path: Path) -> None:
    r = Runner(make_root(tmp_path / "r"))
    r.send(20, 3, struct.pack(">Hf", 10, 0.2))  # over-current limit 0.2 A: normal running trips it
    req = r.send(200, 2, struct.pack(">ff", 2.0, 200.0))
    r.run_s(30, lambda: r.done(req))
    assert any(e[0] == 3 and e[1][1] == OVERCURRENT for e in r.events)
    assert r.rover.modes.mode == 1  # more than one wheel per side lost: SAFE
    assert r.reports(req)[-1] == (8, 10)  # WHEEL_UNAVAILABLE
