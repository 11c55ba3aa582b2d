"""Virtual time: the whole loop never stalls, and an idle rover lets the clock jump.

The first case is the run that once froze the loop (seed 2 through `harsh`, an 8 m drive,
wheel 2 jammed at 3 m: stuck at t = 383.600 s with a timer due 1 ms later); the loop now
also turns any such stall into `hil.vclock.VirtualTimeStall` rather than spinning.
"""

from __future__ import annotations

import pytest

from hil.mission.api import PlantControl, RoverApi, greater_than
from hil.mission.loop import LoopConfig, WholeLoop
from tests.hil import truth


def test_harsh_relay_drive_with_a_wheel_jammed_mid_drive_completes_without_a_stall() -> None:
    w = WholeLoop(LoopConfig(seed=2, relay="harsh", archive=True))
    try:
        w.loop.stall_passes = 50_000  # a stall shows within a second, not minutes
        rover = RoverApi(w)
        plant = PlantControl(w, rover)
        rover.await_mode("STANDBY", timeout=120)
        start = truth.mark(plant)
        track = rover.send_command("DRIVE_DISTANCE", distance_m=8.0, speed_mph=200)
        rover.await_telemetry("odometer_m", greater_than(3.0), timeout=900)
        plant.jam_wheel(2)
        assert rover.await_verification(track, timeout=1800)[-1] == "completed"
        rover.wait(600.0)  # and on, past where the loop froze
        assert w.now() > 700.0
        leg = truth.since(plant, start)
        assert leg is not None and leg.travelled_m == pytest.approx(8.0, abs=0.1)
    finally:
        w.close()
