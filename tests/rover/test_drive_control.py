"""Drive control judged by the plant's truth: the governor, the acceleration limit, slow
drives, parameters changed mid-drive, one drive at a time, the position tolerance, hazards
(slopes, rocks on the centre and wheel lines) and the wheel policy.

Stepped runner on CPython (the same code path the unix-port scenarios use), 50 ms periods.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.rover.ground import make_root
from tests.rover.mpy_runner import Runner

MPH = 1.0 / 3600.0  # m/s per m/h
BUSY, WRONG_MODE, WHEEL_UNAVAILABLE, HAZARD = 6, 4, 10, 11
EV_DRIVE_STARTED, EV_DRIVE_COMPLETED, EV_DRIVE_ABORTED = 6, 7, 8
EV_HAZARD_TILT, EV_HAZARD_OBSTACLE, EV_WHEEL_FAULT, EV_WHEEL_ISOLATED = 9, 10, 3, 4
F_JAM, F_ENC, F_SLOPE, F_ROCK_H, F_ROCK_LAT = 1, 3, 6, 10, 11


class Watch:
    """The plant's truth at every control period: peak speed, first/last motion, when a
    speed was first reached."""

    def __init__(self, r: Runner, near_mps: float = 0.0) -> None:
        self.r = r
        self.near = near_mps
        self.t = 0.0
        self.peak = 0.0
        self.first: float | None = None
        self.last = 0.0
        self.reached: float | None = None

    def step(self) -> None:
        self.r.step()
        self.t += 0.05
        v = abs(self.r.hal.plant.v)
        self.peak = max(self.peak, v)
        if v > 1e-4:
            self.first = self.t if self.first is None else self.first
            self.last = self.t
        if self.near and self.reached is None and v >= self.near:
            self.reached = self.t

    def until(self, cond, seconds: float) -> bool:
        for _ in range(int(seconds * 20)):
            self.step()
            if cond():
                return True
        return False


def _rover(tmp_path: Path, idle_s: float = 30.0) -> Runner:
    r = Runner(make_root(tmp_path / "r"))
    r.run_s(idle_s)  # standing still: the gyro bias is learnt
    return r


def drive(r: Runner, metres: float, mph: float) -> tuple[int, int]:
    return r.send(200, 2, struct.pack(">ff", metres, mph))


def test_true_speed_holds_the_200_mph_governor_and_the_acceleration_limit(tmp_path: Path) -> None:
    r = _rover(tmp_path)
    w = Watch(r, near_mps=195 * MPH)
    req = drive(r, 10.0, 200.0)
    assert w.until(lambda: r.done(req), 400)
    assert r.reports(req)[-1] == (7, None)
    assert 0.98 * 200 * MPH <= w.peak <= 1.02 * 200 * MPH, w.peak / MPH
    # 100 m/h/s: 195 m/h takes 1.95 s (a control period of slack)
    assert w.reached is not None and w.first is not None
    assert w.reached - w.first >= 1.95 - 0.1


@pytest.mark.parametrize(("mph", "metres"), [(1.0, 0.2), (50.0, 3.0)])
def test_slow_drives_take_the_time_their_speed_says(tmp_path: Path, mph: float, metres: float) -> None:
    r = _rover(tmp_path)
    w = Watch(r)
    x0 = r.hal.plant.x
    req = drive(r, metres, mph)
    expected = metres / (mph * MPH) + mph / 100.0
    assert w.until(lambda: r.done(req), expected * 1.5 + 60)
    assert r.reports(req)[-1] == (7, None)
    assert w.last - (w.first or 0) == pytest.approx(expected, rel=0.03, abs=2.0)
    assert w.peak <= mph * MPH * 1.02
    assert r.hal.plant.x - x0 == pytest.approx(metres, rel=0.01, abs=0.005)


def test_lowering_max_speed_mid_drive_slows_the_rover(tmp_path: Path) -> None:
    r = _rover(tmp_path)
    req = drive(r, 6.0, 200.0)
    r.run_s(60, lambda: r.hal.plant.x > 1.0)
    r.send(20, 3, struct.pack(">Hf", 1, 50.0))  # PARAM_SET max_speed_mph 50
    r.run_s(3)
    w = Watch(r)
    w.until(lambda: False, 20)
    assert 0.98 * 50 * MPH <= w.peak <= 1.02 * 50 * MPH, w.peak / MPH
    r.run_s(600, lambda: r.done(req))
    assert r.reports(req)[-1] == (7, None)


def test_a_second_drive_while_one_runs_is_rejected_busy(tmp_path: Path) -> None:
    r = _rover(tmp_path, 2)
    first = drive(r, 2.0, 200.0)
    r.run_s(2)
    second = drive(r, 1.0, 100.0)
    turn = r.send(200, 3, struct.pack(">f", 90.0))
    r.run_s(1)
    assert r.reports(second) == [(2, BUSY)] and r.reports(turn) == [(2, BUSY)]
    assert r.run_s(120, lambda: r.done(first))
    assert r.reports(first)[-1] == (7, None)  # the first drive was not disturbed
    assert r.hal.plant.x == pytest.approx(2.0, abs=0.03)


def test_turn_started_event_names_its_angle_in_degrees(tmp_path: Path) -> None:
    r = _rover(tmp_path, 2)
    req = r.send(200, 3, struct.pack(">f", -45.0))
    assert r.run_s(120, lambda: r.done(req))
    started = [a for e, a in r.events if e == EV_DRIVE_STARTED]
    assert started[-1][0] == 2 and started[-1][1] == 0 and started[-1][2] == pytest.approx(-45.0, abs=1e-3)
    req = drive(r, 1.5, 200.0)
    r.run_s(1)
    assert [a for e, a in r.events if e == EV_DRIVE_STARTED][-1] == (1, 1500, 0.0)


def test_drive_ends_within_the_position_tolerance_after_the_at_rest_fix(tmp_path: Path) -> None:
    r = _rover(tmp_path)
    r.send(20, 3, struct.pack(">Hf", 12, 0.01))  # position_tolerance_m 1 cm
    p = r.hal.plant
    req = drive(r, 4.0, 200.0)
    r.run_s(20, lambda: p.x > 1.5)
    r.send(250, 1, struct.pack(">BBf", F_JAM, 5, 0.0))  # the right side drags a jammed wheel
    assert r.run_s(400, lambda: r.done(req))
    assert r.reports(req)[-1] == (7, None)
    assert p.x == pytest.approx(4.0, abs=0.02)  # the truth, not the telemetry


def _at_default_rock(r: Runner, lateral_m: float, height_m: float) -> None:
    r.send(250, 1, struct.pack(">BBf", F_ROCK_LAT, 0, lateral_m))
    r.send(250, 1, struct.pack(">BBf", F_ROCK_H, 0, height_m))


@pytest.mark.parametrize("lateral_m", [0.0, 0.5], ids=["centre_line", "wheel_line"])
def test_a_25cm_rock_stops_the_drive_before_it_and_15cm_is_climbed(tmp_path: Path, lateral_m: float) -> None:
    r = _rover(tmp_path, 2)
    p = r.hal.plant
    _at_default_rock(r, lateral_m, 0.25)
    r.run_s(1)
    rock_x = p.x + 0.5 + p.rock_dist_m  # SIM_INJECT's distance is ahead of the front axle
    req = drive(r, 6.0, 200.0)
    assert r.run_s(200, lambda: r.done(req))
    assert r.reports(req)[-1] == (8, HAZARD) or r.reports(req)[-1] == (4, HAZARD)
    assert any(e == EV_HAZARD_OBSTACLE and a[0] > 200 for e, a in r.events)
    assert p.x < 5.0
    assert p.x + 0.5 < rock_x - 0.25  # the front axle truly short of the rock (0.5 m wide)
    # a climbable rock on the same line: driven over, the drive completes
    r2 = _rover(tmp_path / "b", 2)
    _at_default_rock(r2, lateral_m, 0.15)
    r2.run_s(1)
    req = drive(r2, 4.0, 200.0)
    assert r2.run_s(400, lambda: r2.done(req))
    assert r2.reports(req)[-1] == (7, None)
    assert r2.hal.plant.x == pytest.approx(4.0, abs=0.05)
    assert not any(e == EV_HAZARD_OBSTACLE for e, _ in r2.events)


def test_a_20_degree_slope_climbs_and_25_degrees_goes_safe(tmp_path: Path) -> None:
    r = _rover(tmp_path, 2)
    r.send(250, 1, struct.pack(">BBf", F_SLOPE, 0, 20.0))
    r.run_s(2)
    req = drive(r, 2.0, 200.0)
    assert r.run_s(400, lambda: r.done(req))
    assert r.reports(req)[-1] == (7, None)
    assert EV_HAZARD_TILT not in r.event_ids()
    r.send(250, 1, struct.pack(">BBf", F_SLOPE, 0, 25.0))
    req = drive(r, 2.0, 200.0)
    assert r.run_s(60, lambda: r.done(req))
    assert EV_HAZARD_TILT in r.event_ids()
    assert r.rover.modes.mode == 1  # SAFE


def test_two_wheels_disabled_on_one_side_mid_drive_abort_and_go_safe(tmp_path: Path) -> None:
    r = _rover(tmp_path, 2)
    req = drive(r, 10.0, 200.0)
    r.run_s(40, lambda: r.hal.plant.x > 1.0)
    r.send(200, 6, struct.pack(">B", 1))
    r.run_s(1)
    assert r.rover.drive.kind != 0  # one disabled: drives on
    r.send(200, 6, struct.pack(">B", 2))
    assert r.run_s(10, lambda: r.done(req))
    assert r.reports(req)[-1] == (8, WHEEL_UNAVAILABLE)
    assert (EV_DRIVE_ABORTED, (3, r.rover.drive.progress // 1000)) in r.events or any(
        e == EV_DRIVE_ABORTED and a[0] == 3 for e, a in r.events
    )
    assert r.rover.modes.mode == 1  # SAFE
    x = r.hal.plant.x
    r.run_s(20)
    assert abs(r.hal.plant.x - x) < 0.01


def test_a_dead_encoder_leaves_its_motor_driving_open_loop(tmp_path: Path) -> None:
    r = _rover(tmp_path, 2)
    p = r.hal.plant
    req = drive(r, 5.0, 200.0)
    r.run_s(40, lambda: p.x > 1.0)
    r.send(250, 1, struct.pack(">BBf", F_ENC, 2, 0.0))
    assert r.run_s(10, lambda: EV_WHEEL_FAULT in r.event_ids())
    r.run_s(5)
    assert p.enabled and p.duty[1] > 0.05 and p.current[1] > 0.05
    assert (EV_WHEEL_ISOLATED, (2,)) not in r.events
    assert r.run_s(300, lambda: r.done(req))
    assert r.reports(req)[-1] == (7, None)
    assert p.x == pytest.approx(5.0, abs=0.05)
