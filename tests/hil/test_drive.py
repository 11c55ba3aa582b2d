"""Driving scenarios: ramp egress, a 100 m traverse, a wheel lost mid-traverse."""

from __future__ import annotations

import pytest

from hil.mission.api import greater_than, less_than

pytestmark = pytest.mark.hil


@pytest.mark.farside_targets("virtual")  # a 4 m drive: minutes in real time
def test_first_drive_down_the_lander_ramp(rover, plant):
    rover.await_mode("STANDBY", timeout=60)
    plant.slope(-15.0)  # on the ramp, nose down: steep, but inside the 20 deg limit
    track = rover.send_command("DRIVE_DISTANCE", distance_m=4.0, speed_mph=150)
    rover.await_telemetry("pitch_deg", less_than(-10.0), timeout=60)
    rover.await_telemetry("odometer_m", greater_than(3.0), timeout=400)
    plant.slope(0.0)  # wheels on the regolith
    rover.await_verification(track, timeout=300)
    done = rover.assert_event("DRIVE_COMPLETED")
    assert abs(done.args["travelled_mm"] - 4000) <= 100
    rover.assert_no_event("HAZARD_TILT")
    rover.await_mode("STANDBY", timeout=30)


@pytest.mark.farside_targets("virtual")  # half an hour of driving: virtual time only
def test_100m_traverse_arrives_within_tolerance(rover):
    rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=100.0, speed_mph=200, timeout=2400)
    done = rover.assert_event("DRIVE_COMPLETED")
    assert abs(done.args["travelled_mm"] - 100_000) <= 100
    assert abs(done.args["heading_cdeg"]) <= 200  # held its heading within 2 deg
    x = rover.await_telemetry("x_m", None, timeout=10)
    assert 99.5 <= x <= 100.5
    assert rover.get_telemetry("wheel1_state") == "OK"


@pytest.mark.farside_targets("virtual")
def test_jammed_wheel_mid_traverse_completes_on_five_wheels(rover, plant):
    track = rover.send_command("DRIVE_DISTANCE", distance_m=30.0, speed_mph=200)
    rover.await_telemetry("odometer_m", greater_than(10.0), timeout=900)
    plant.jam_wheel(3)
    fault = rover.await_event("WHEEL_FAULT", timeout=120)
    assert fault.args["wheel"] == 3
    rover.await_event("WHEEL_ISOLATED", timeout=60, since=fault)
    rover.await_verification(track, timeout=1200)
    done = rover.assert_event("DRIVE_COMPLETED")
    assert abs(done.args["travelled_mm"] - 30_000) <= 100
    assert abs(done.args["heading_cdeg"]) <= 300
    states = [rover.get_telemetry(f"wheel{i}_state") for i in range(1, 7)]
    assert states[2] != "OK" and states.count("OK") == 5
    rover.await_mode("STANDBY", timeout=30)
