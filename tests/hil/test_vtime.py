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


def test_an_idle_rover_reporting_every_ten_minutes_naps_yet_answers_and_sees_at_once() -> None:
    # STANDBY with HK once per 600 s: in virtual time the rover naps between reports
    # (firmware_py.app), so the loop jumps; an uplink or a change to the plant wakes it
    from collections import Counter

    w = WholeLoop(LoopConfig(seed=1, relay="queqiao", archive=False))
    try:
        rover = RoverApi(w)
        plant = PlantControl(w, rover)
        rover.await_mode("STANDBY", timeout=120)
        rover.send_and_assert_command("HK_SET_PERIOD", sid=1, period_s=600.0, timeout=120)
        rover.wait(30.0)
        w.loop.wakers = Counter()
        jumps0 = w.loop.jumps
        hours = 6.0
        rover.wait(hours * 3600.0)
        wakers = dict(w.loop.wakers)
        w.loop.wakers = None
        # every task wakes at most once per nap (10 min) or HK; the link a few times after each HK
        assert w.loop.jumps - jumps0 < hours * 6 * 12, wakers
        assert w.boots == 1, "the watchdog bit a napping rover"
        assert rover.get_telemetry("mode") == "STANDBY"
        # an uplink wakes it: a PING answered within the relay's round trip, not the nap
        t0 = rover.now()
        rover.send_and_assert_command("PING", timeout=120)
        assert rover.now() - t0 < 30.0
        # a change to the plant from outside wakes it too: a 30 deg slope goes SAFE at once
        rover.wait(60.0)
        t0 = rover.now()
        plant.slope(30.0)
        rover.await_event("HAZARD_TILT", timeout=120)
        assert rover.now() - t0 < 10.0
        assert w.boots == 1
    finally:
        w.close()
