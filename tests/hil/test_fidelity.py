"""Yutu-2's numbers held against the plant's truth: wheel faults, speeds, the governor.

Every check here reads the plant (tests/hil/truth.py), not the rover's telemetry: where
the body truly is, how fast it truly moved, whether a wheel's motor truly still drives.

- the sweep: each of the six wheels fails (jammed, open circuit, dead encoder) at a
  quarter, half or three quarters of a 5 m drive (54 cases); every drive ends within
  1 % of its distance and 1 deg of its heading, by the truth;
- a dead encoder leaves its motor driving (open loop); two wheels lost on one side stop
  the drive, whether a fault or a command took them;
- the governor: 1 m/h and 50 m/h drives take the time their speed says; a 200 m/h drive
  never truly exceeds 200 m/h by more than 2 % and takes the acceleration limit's time to
  get there; lowering max_speed mid-drive slows the rover down.
"""

from __future__ import annotations

import pytest

from tests.hil import truth

pytestmark = [pytest.mark.hil, pytest.mark.farside_targets("virtual")]  # minutes of driving each

DRIVE_M = 5.0
WHEELS = (1, 2, 3, 4, 5, 6)
FAIL_AT = (0.25, 0.5, 0.75)  # of the drive's distance, by the truth
FAULTS = ("JAM", "OPEN_CIRCUIT", "ENCODER_DEAD")
MPH = 1.0 / 3600.0  # m/s per m/h
ACCEL_MPH_S = 100.0  # parameter 2's default


def _drive_with_fault(rover, plant, wheel, at, fault):
    w = truth.need_world(plant)
    rover.await_mode("STANDBY", timeout=60)
    start = truth.mark(plant)
    track = rover.send_command("DRIVE_DISTANCE", distance_m=DRIVE_M, speed_mph=200)
    truth.wait_until(rover, lambda: truth.since(plant, start).travelled_m >= at * DRIVE_M, timeout=600)
    plant.inject(fault, wheel)
    rover.await_verification(track, timeout=900)
    done = rover.assert_event("DRIVE_COMPLETED")
    rover.await_mode("STANDBY", timeout=60)
    return w, done, truth.since(plant, start)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("at", FAIL_AT, ids=lambda a: f"at{int(a * 100)}pct")
@pytest.mark.parametrize("wheel", WHEELS, ids=lambda n: f"wheel{n}")
def test_wheel_fault_sweep_arrives_within_1pct_and_1deg(rover, plant, wheel, at, fault):
    _, done, leg = _drive_with_fault(rover, plant, wheel, at, fault)
    assert abs(leg.along_m - DRIVE_M) <= 0.01 * DRIVE_M, (
        f"{fault} on wheel {wheel} at {at:.0%}: truly {leg.along_m:.3f} m along "
        f"(reported {done.args['travelled_mm'] / 1000:.3f} m)"
    )
    assert abs(leg.turned_deg) <= 1.0, f"{fault} on wheel {wheel} at {at:.0%}: truly turned {leg.turned_deg:.2f} deg"


def test_dead_encoder_leaves_its_motor_driving_open_loop(rover, plant):
    w = truth.need_world(plant)
    rover.await_mode("STANDBY", timeout=60)
    start = truth.mark(plant)
    track = rover.send_command("DRIVE_DISTANCE", distance_m=DRIVE_M, speed_mph=200)
    truth.wait_until(rover, lambda: truth.since(plant, start).travelled_m >= 1.0, timeout=600)
    plant.encoder_dead(2)
    fault = rover.await_event("WHEEL_FAULT", timeout=60)
    assert fault.args["wheel"] == 2
    rover.wait(5.0)
    # the plant's wheel 2 is still powered and pulling its share: duty and current on
    assert w.enabled and w.duty[1] > 0.05, f"wheel 2's motor was taken out of service (duty {w.duty[1]:.3f})"
    assert w.current[1] > 0.05
    rover.await_verification(track, timeout=900)
    leg = truth.since(plant, start)
    assert leg.along_m == pytest.approx(DRIVE_M, abs=0.01 * DRIVE_M)


@pytest.mark.parametrize("how", ["fault", "command"])
def test_two_wheels_lost_on_one_side_stop_the_drive_and_go_safe(rover, plant, how):
    w = truth.need_world(plant)
    rover.await_mode("STANDBY", timeout=60)
    start = truth.mark(plant)
    track = rover.send_command("DRIVE_DISTANCE", distance_m=20.0, speed_mph=200)
    truth.wait_until(rover, lambda: truth.since(plant, start).travelled_m >= 1.0, timeout=600)
    if how == "fault":
        plant.open_circuit(1)
        plant.open_circuit(2)
    else:
        rover.send_and_assert_command("WHEEL_DISABLE", wheel=1, timeout=120)
        rover.send_and_assert_command("WHEEL_DISABLE", wheel=2, timeout=120)
    stage, _ = rover.await_failure(track, timeout=300)
    assert stage == "completion_failed"
    aborted = rover.assert_event("DRIVE_ABORTED")
    assert rover.mission.enum_label("abort_reason", aborted.args["reason"]) == "WHEELS"
    rover.await_mode("SAFE", timeout=60)
    stopped = truth.mark(plant)
    rover.wait(30.0)
    # truly stopped: the left side has one wheel, and one wheel does not drive a side
    assert truth.since(plant, stopped).travelled_m < 0.01
    assert abs(w.v) < 1e-3
    assert truth.since(plant, start).travelled_m < 20.0 - 5.0


@pytest.mark.parametrize(("speed_mph", "distance_m"), [(1.0, 0.5), (50.0, 5.0)], ids=["1mph", "50mph"])
def test_slow_drive_takes_the_time_its_speed_says(rover, plant, speed_mph, distance_m):
    w = truth.need_world(plant)
    rover.await_mode("STANDBY", timeout=60)
    cruise_s = distance_m / (speed_mph * MPH)
    expected_s = cruise_s + speed_mph / ACCEL_MPH_S  # a trapezoid: half the ramp time at each end
    rec = truth.Recorder(w)
    start = truth.mark(plant)
    try:
        rover.send_and_assert_command(
            "DRIVE_DISTANCE", distance_m=distance_m, speed_mph=speed_mph, timeout=expected_s * 1.5 + 120
        )
        rover.await_mode("STANDBY", timeout=60)
    finally:
        rec.close()
    leg = truth.since(plant, start)
    assert leg.along_m == pytest.approx(distance_m, rel=0.01)
    assert rec.moving_s == pytest.approx(expected_s, rel=0.03, abs=2.0), (
        f"{distance_m:g} m at {speed_mph:g} m/h: truly moving {rec.moving_s:.1f} s, expected {expected_s:.1f} s"
    )
    assert rec.peak_v_mps <= speed_mph * MPH * 1.02


def test_true_speed_holds_the_governor_and_the_acceleration_limit(rover, plant):
    w = truth.need_world(plant)
    rover.await_mode("STANDBY", timeout=60)
    near = 195.0 * MPH
    rec = truth.Recorder(w, speeds=(near,))
    try:
        rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=10.0, speed_mph=200, timeout=600)
    finally:
        rec.close()
    peak_mph = rec.peak_v_mps / MPH
    assert peak_mph <= 200.0 * 1.02, f"true peak {peak_mph:.1f} m/h over a 200 m/h governor"
    assert peak_mph >= 200.0 * 0.98, f"true peak {peak_mph:.1f} m/h: the governor's speed never reached"
    reached = rec.reached_s(near)
    assert reached is not None and rec.first_moving_s is not None
    # 100 m/h/s: 195 m/h takes 1.95 s; a control period of slack
    assert reached - rec.first_moving_s >= 1.95 - 0.1, f"195 m/h truly reached in {reached - rec.first_moving_s:.2f} s"


def test_lowering_max_speed_mid_drive_slows_the_rover(rover, plant):
    w = truth.need_world(plant)
    rover.await_mode("STANDBY", timeout=60)
    start = truth.mark(plant)
    track = rover.send_command("DRIVE_DISTANCE", distance_m=20.0, speed_mph=200)
    truth.wait_until(rover, lambda: truth.since(plant, start).travelled_m >= 1.0, timeout=600)
    rover.send_and_assert_command("PARAM_SET", param_id=1, value=50.0, timeout=120)
    rover.wait(3.0)  # 150 m/h down at 100 m/h/s: 1.5 s
    rec = truth.Recorder(w)
    try:
        rover.wait(30.0)
    finally:
        rec.close()
    assert rec.peak_v_mps / MPH <= 50.0 * 1.02, f"still {rec.peak_v_mps / MPH:.1f} m/h after max_speed 50"
    assert rec.peak_v_mps / MPH >= 50.0 * 0.98
    rover.await_verification(track, timeout=3000)
    assert truth.since(plant, start).along_m == pytest.approx(20.0, abs=0.2)
