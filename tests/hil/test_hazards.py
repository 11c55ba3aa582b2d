"""Hazards: a slope beyond the tilt limit, a rock in the path, a lunar night."""

from __future__ import annotations

import pytest

from hil.mission.api import greater_than, less_than
from tests.hil import truth

pytestmark = pytest.mark.hil


def test_25_degree_slope_goes_safe_and_recovers_by_command(rover, plant):
    track = rover.send_command("DRIVE_DISTANCE", distance_m=20.0, speed_mph=200)
    rover.await_telemetry("odometer_m", greater_than(0.3), timeout=300)
    plant.slope(25.0)
    tilt = rover.await_event("HAZARD_TILT", timeout=60)
    assert tilt.args["pitch_cdeg"] >= 2000
    stage, code = rover.await_failure(track, timeout=60)
    assert (stage, code) == ("completion_failed", "HAZARD")
    aborted = rover.assert_event("DRIVE_ABORTED")
    assert rover.mission.enum_label("abort_reason", aborted.args["reason"]) == "TILT"
    rover.await_mode("SAFE", timeout=30)
    stopped_at = rover.await_telemetry("odometer_m", None, timeout=10)
    stopped = truth.mark(plant)
    # in SAFE the drive commands are refused until the operator says otherwise
    assert rover.send_and_await_failure("DRIVE_DISTANCE", distance_m=1.0, speed_mph=100) == ("rejected", "WRONG_MODE")
    # recovery: the terrain team confirms the rover settled back on gentler ground
    plant.slope(5.0)
    rover.await_telemetry("pitch_deg", less_than(10.0), timeout=30)
    rover.send_and_assert_command("MODE_SET", mode="STANDBY")
    rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=-0.5, speed_mph=200, timeout=300)
    back = rover.await_telemetry("odometer_m", greater_than(stopped_at + 0.45), timeout=30)
    assert back == pytest.approx(stopped_at + 0.5, abs=0.1)
    rover.await_mode("STANDBY", timeout=30)
    leg = truth.since(plant, stopped)
    if leg is not None:  # measured: 0.498 m straight back
        assert leg.along_m == pytest.approx(-0.5, abs=0.1)
        assert abs(leg.across_m) <= 0.1


# The Pico board (boards/pico.json) wires no hazard sensor, so a rock cannot reach the rp2 HAL.
@pytest.mark.farside_targets("virtual", "mpy", "serial")
def test_rock_ahead_stops_the_drive_and_the_rover_drives_around_it(rover, plant):
    start = truth.mark(plant)
    track = rover.send_command("DRIVE_DISTANCE", distance_m=20.0, speed_mph=200)
    rover.await_telemetry("odometer_m", greater_than(0.3), timeout=300)
    seen = truth.since(plant, start)
    rock_at_m = None if seen is None else seen.along_m + 1.5  # along the drive, from its start
    plant.rock_ahead(1.5)
    obstacle = rover.await_event("HAZARD_OBSTACLE", timeout=120)
    assert obstacle.args["height_mm"] > 200  # taller than the 0.2 m limit
    stage, code = rover.await_failure(track, timeout=60)
    assert stage == "completion_failed"
    aborted = rover.assert_event("DRIVE_ABORTED")
    assert rover.mission.enum_label("abort_reason", aborted.args["reason"]) == "OBSTACLE"
    assert aborted.args["travelled_mm"] < 20_000
    # the rock is still there: turn away and drive on
    rover.await_mode("STANDBY", timeout=60)
    stop = truth.since(plant, start)
    if stop is not None and rock_at_m is not None:  # measured: stopped 1.0 m short, reported to 1 mm
        assert stop.along_m < rock_at_m - 0.2  # truly short of the rock, not on it
        assert stop.travelled_m == pytest.approx(aborted.args["travelled_mm"] / 1000, abs=0.1)
    before_turn = truth.mark(plant)
    rover.send_and_assert_command("TURN", angle_deg=45.0, timeout=600)
    turn = truth.since(plant, before_turn)
    before_drive = truth.mark(plant)
    rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=1.0, speed_mph=200, timeout=600)
    rover.assert_event("DRIVE_COMPLETED")
    drive = truth.since(plant, before_drive)
    if turn is not None and drive is not None:  # measured: 44.77 deg, then 0.998 m straight
        assert turn.turned_deg == pytest.approx(45.0, abs=2.0)
        assert drive.travelled_m == pytest.approx(1.0, abs=0.1)
        assert abs(drive.across_m) <= 0.1


@pytest.mark.farside_targets("virtual")  # forty minutes of night: virtual time only
def test_lunar_night_hibernate_and_wake_with_the_sun(rover, plant):
    plant.sun(0.0)  # sunset
    rover.send_and_assert_command("HIBERNATE", wake_after_s=0)
    entered = rover.await_event("HIBERNATE_ENTER", timeout=60, since="test")
    assert entered.args["wake_after_s"] == 0
    rover.await_mode("HIBERNATE", timeout=30)
    before = rover.get_telemetry("battery_pct")
    rover.wait(40 * 60)  # the night, compressed
    rover.assert_no_event("HIBERNATE_WAKE")
    assert rover.get_telemetry("mode") == "HIBERNATE"
    assert rover.get_telemetry("battery_pct") <= before
    plant.sun(1.0)  # sunrise
    wake = rover.await_event("HIBERNATE_WAKE", timeout=300)
    assert wake.args["soc_pct"] >= 40
    rover.await_mode("SAFE", timeout=60)
    rover.send_and_assert_command("MODE_SET", mode="STANDBY")
    start = truth.mark(plant)
    rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=1.0, speed_mph=200, timeout=300)
    leg = truth.since(plant, start)
    if leg is not None:
        assert leg.travelled_m == pytest.approx(1.0, abs=0.1)
