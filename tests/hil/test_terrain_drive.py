"""Slopes, rocks and a traverse over seeded terrain, judged by the plant's truth.

Yutu-2's rated figures: a 20 deg climb and a 20 cm obstacle. The plant places the
slope or the rock (tests/hil/truth.py `world`), the rover drives through the ground, and
the truth says what happened: climbed and arrived, or stopped short of the hazard.

- 20 deg of pitch (a climb) or of roll (across a slope) completes; 25 deg goes SAFE;
- a 15 cm rock is driven over, on the centre line and under a wheel (which truly
  climbs it: the attitude shows the bump); a 25 cm rock stops the drive with the rover
  truly short of it, on the centre line and on the wheel line (the hazard camera sees
  the whole swept width);
- 100 m over seeded terrain with a wheel jammed at 40 m: the rover's estimate and the
  true end point are within 1 m.
"""

from __future__ import annotations

import importlib

import pytest

from tests.hil import sorties, truth

pytestmark = [pytest.mark.hil, pytest.mark.farside_targets("virtual")]  # minutes of driving each

DRIVE_M = 5.0
ROCK_AT_M = 2.5  # ahead of the rover's centre when placed
ROCK_W_M = 0.3


def _plant_constant(name: str, default: float) -> float:
    return float(getattr(importlib.import_module("firmware_py.hal.plant"), name, default))


def _flat(plant):
    w = truth.need_world(plant)
    w.clear_terrain()
    return w


def _tilt(w, axis: str, deg: float) -> None:
    """A uniform slope under the rover from here on: nose up (pitch) or left side up (roll)."""
    if axis == "pitch":
        w.set_slope(deg, 0.0)
    else:
        w.set_slope(0.0, deg)


@pytest.mark.parametrize("axis", ["pitch", "roll"])
def test_20_degree_slope_is_climbed_and_the_drive_completes(rover, plant, axis):
    w = _flat(plant)
    rover.await_mode("STANDBY", timeout=60)
    _tilt(w, axis, 20.0)
    rover.wait(10.0)  # settled on the slope
    start = truth.mark(plant)
    rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=DRIVE_M, speed_mph=200, timeout=900)
    rover.assert_event("DRIVE_COMPLETED")
    rover.assert_no_event("HAZARD_TILT")
    rover.await_mode("STANDBY", timeout=60)
    leg = truth.since(plant, start)
    # slip on the slope is the rover's to make up: it arrives by the truth
    assert leg.travelled_m == pytest.approx(DRIVE_M, rel=0.02), f"truly covered {leg.travelled_m:.3f} m"
    assert abs(leg.turned_deg) <= 2.0


@pytest.mark.parametrize("axis", ["pitch", "roll"])
def test_25_degree_slope_stops_the_drive_and_goes_safe(rover, plant, axis):
    w = _flat(plant)
    rover.await_mode("STANDBY", timeout=60)
    start = truth.mark(plant)
    track = rover.send_command("DRIVE_DISTANCE", distance_m=20.0, speed_mph=200)
    truth.wait_until(rover, lambda: truth.since(plant, start).travelled_m >= 1.0, timeout=600)
    at_slope = truth.mark(plant)
    _tilt(w, axis, 25.0)
    tilt = rover.await_event("HAZARD_TILT", timeout=60)
    assert max(abs(tilt.args["pitch_cdeg"]), abs(tilt.args["roll_cdeg"])) >= 2000
    stage, code = rover.await_failure(track, timeout=120)
    assert (stage, code) == ("completion_failed", "HAZARD")
    aborted = rover.assert_event("DRIVE_ABORTED")
    assert rover.mission.enum_label("abort_reason", aborted.args["reason"]) == "TILT"
    rover.await_mode("SAFE", timeout=60)
    change = rover.assert_event("MODE_CHANGE")
    assert rover.mission.enum_label("mode_reason", change.args["reason"]) == "TILT"
    rover.wait(10.0)
    assert abs(w.v) < 1e-3  # truly standing
    assert truth.since(plant, at_slope).travelled_m <= 0.5  # a filter's worth of travel, no more


def _rock_drive(rover, plant, lateral_m: float, height_m: float):
    w = _flat(plant)
    rover.await_mode("STANDBY", timeout=60)
    start = truth.mark(plant)
    w.add_rock(ROCK_AT_M, lateral_m, height_m, ROCK_W_M)
    rec = truth.Recorder(w)
    try:
        track = rover.send_command("DRIVE_DISTANCE", distance_m=DRIVE_M, speed_mph=200)
        try:
            rover.await_verification(track, timeout=900)
            ok = True
        except AssertionError:
            ok = False
        rover.wait(5.0)
    finally:
        rec.close()
    return ok, rec, truth.since(plant, start)


def _wheel_line_m() -> float:
    return _plant_constant("TRACK_M", 1.0) / 2.0


@pytest.mark.parametrize("line", ["centre", "wheel"])
def test_15cm_rock_is_driven_over(rover, plant, line):
    lateral = 0.0 if line == "centre" else _wheel_line_m()
    ok, rec, leg = _rock_drive(rover, plant, lateral, 0.15)
    assert ok, "the drive over a 15 cm rock did not complete"
    rover.assert_event("DRIVE_COMPLETED")
    assert leg.along_m == pytest.approx(DRIVE_M, abs=0.01 * DRIVE_M), f"truly {leg.along_m:.3f} m along"
    assert abs(leg.turned_deg) <= 2.0
    if line == "wheel":  # the left wheels truly climbed it: a bump in pitch or roll
        assert max(rec.max_abs_pitch_deg, rec.max_abs_roll_deg) >= 2.0, (
            f"no attitude bump: pitch {rec.max_abs_pitch_deg:.2f}, roll {rec.max_abs_roll_deg:.2f} deg"
        )


@pytest.mark.parametrize("line", ["centre", "wheel"])
def test_25cm_rock_stops_the_rover_short_of_it(rover, plant, line):
    lateral = 0.0 if line == "centre" else _wheel_line_m()
    ok, rec, leg = _rock_drive(rover, plant, lateral, 0.25)
    assert not ok, "the drive completed through a 25 cm rock"
    obstacle = rover.assert_event("HAZARD_OBSTACLE")
    assert obstacle.args["height_mm"] >= 200
    aborted = rover.assert_event("DRIVE_ABORTED")
    assert rover.mission.enum_label("abort_reason", aborted.args["reason"]) == "OBSTACLE"
    # truly short of it: the front wheels stopped before the rock's near side, heading kept
    front_m = _plant_constant("FRONT_M", 0.5)  # the front axle, ahead of the body centre
    near_side = ROCK_AT_M - ROCK_W_M / 2.0
    assert leg.along_m + front_m <= near_side - 0.05, (
        f"stopped with the front axle {leg.along_m + front_m:.2f} m ahead, the rock's near side at {near_side:.2f} m"
    )
    assert abs(leg.turned_deg) <= 1.0
    assert rec.max_abs_pitch_deg < 2.0 and rec.max_abs_roll_deg < 2.0  # never touched it


@pytest.mark.slow
def test_100m_traverse_over_terrain_with_a_jam_ends_within_1m_of_the_estimate(rover, plant):
    r = sorties.terrain_traverse(rover, plant, terrain_seed=7, jam_at_m=40.0)
    assert r.jammed_wheel == 2
    fault = rover.assert_event("WHEEL_FAULT")
    assert fault.args["wheel"] == 2
    assert r.travelled_m >= 95.0, f"truly covered {r.travelled_m:.1f} m (detours: {r.detours})"
    assert r.pose_error_m <= 1.0, (
        f"the rover believes ({r.estimate.x_m:.2f}, {r.estimate.y_m:.2f}), it is truly at "
        f"({r.true_x_m:.2f}, {r.true_y_m:.2f}): {r.pose_error_m:.2f} m off"
    )
    assert abs(r.heading_error_deg) <= 3.0


# SIM_INJECT places rocks on any board with the sim HAL (the MicroPython virtual board too)
@pytest.mark.farside_targets("virtual", "mpy")
def test_rock_placed_by_sim_inject_on_the_wheel_line_stops_the_rover(rover, plant):
    def inject(fault: str, value: float) -> None:
        rover.send_and_assert_command("SIM_INJECT", fault=fault, wheel=0, value=value, bypass=True, timeout=120)

    rover.await_mode("STANDBY", timeout=120)
    start = truth.mark(plant)
    inject("ROCK_DIST_M", ROCK_AT_M)
    inject("ROCK_LATERAL_M", -_wheel_line_m())  # under the right wheels
    inject("ROCK_HEIGHT_M", 0.25)
    track = rover.send_command("DRIVE_DISTANCE", distance_m=DRIVE_M, speed_mph=200)
    stage, _ = rover.await_failure(track, timeout=600)
    assert stage == "completion_failed"
    obstacle = rover.assert_event("HAZARD_OBSTACLE")
    assert obstacle.args["height_mm"] == pytest.approx(250, abs=30)
    aborted = rover.assert_event("DRIVE_ABORTED")
    assert rover.mission.enum_label("abort_reason", aborted.args["reason"]) == "OBSTACLE"
    rover.await_mode("STANDBY", timeout=60)
    leg = truth.since(plant, start)
    if leg is not None:  # truly short of the rock (the rock was placed from the start pose)
        near_side = ROCK_AT_M - 0.25  # a rock is twice as wide as it is tall unless told
        assert leg.along_m + _plant_constant("FRONT_M", 0.5) <= near_side - 0.05
