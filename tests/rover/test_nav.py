"""The pose estimate (firmware_py.nav) against the plant's truth: no heading drift at rest
(gyro bias learnt standing still), slip estimated from the currents when a dragged wheel
makes the others slip, pose fixes that bound the error, and the estimate in HK."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest

from tests.rover.ground import HK_FMT, HK_NAMES, make_root
from tests.rover.mpy_runner import Runner

F_JAM, F_TERRAIN = 1, 14


def _rover(tmp_path: Path, idle_s: float = 30.0) -> Runner:
    r = Runner(make_root(tmp_path / "r"))
    r.run_s(idle_s)
    return r


def test_heading_does_not_drift_standing_still(tmp_path: Path) -> None:
    r = _rover(tmp_path, 5)
    h0 = r.rover.drive.nav.heading_urad
    r.run_s(11 * 60)
    drift_deg = math.degrees((r.rover.drive.nav.heading_urad - h0) * 1e-6)
    assert abs(drift_deg) < 0.01  # was 0.18 deg in 11 min
    bias = r.hal.plant.gyro_bias * 1e6  # urad/s
    assert r.rover.drive.nav.bias_urad_s == pytest.approx(bias, abs=8.0)


def test_gyro_bias_is_learnt_at_rest_only(tmp_path: Path) -> None:
    r = _rover(tmp_path, 5)
    nav = r.rover.drive.nav
    req = r.send(200, 2, struct.pack(">ff", 1.0, 200.0))
    r.run_s(1)
    n0 = nav._bias_n
    r.run_s(10)
    assert not nav.at_rest and nav._bias_n == n0  # moving: no samples taken
    r.run_s(120, lambda: r.done(req))
    r.run_s(3)
    assert nav.at_rest and nav._bias_n > n0


@pytest.mark.parametrize("vo_use", [1.0, 0.0], ids=["with_pose_fixes", "imu_and_odometry_only"])
def test_a_dragged_jammed_wheel_s_slip_does_not_fool_the_distance(tmp_path: Path, vo_use: float) -> None:
    """Jammed wheel 2 is dragged: the others slip 8 % and their encoders over-read. The
    current-based slip model (and the pose fixes, when used) keep the drive to its truth."""
    r = _rover(tmp_path)
    r.send(20, 3, struct.pack(">Hf", 33, vo_use))
    p = r.hal.plant
    req = r.send(200, 2, struct.pack(">ff", 10.0, 200.0))
    r.run_s(60, lambda: p.x > 2.0)
    r.send(250, 1, struct.pack(">BBf", F_JAM, 2, 0.0))
    assert r.run_s(600, lambda: r.done(req))
    assert r.reports(req)[-1] == (7, None)
    tol = 0.03 if vo_use else 0.15  # the fixes hold it to cm; the slip model to about 1 %
    assert p.x == pytest.approx(10.0, abs=tol)
    nav = r.rover.drive.nav
    est = math.hypot(nav.x_um * 1e-6 - p.x, nav.y_um * 1e-6 - p.y)
    assert est < tol


def test_pose_fixes_correct_the_position_and_learn_the_scale(tmp_path: Path) -> None:
    r = _rover(tmp_path)
    p = r.hal.plant
    req = r.send(200, 2, struct.pack(">ff", 6.0, 200.0))
    assert r.run_s(400, lambda: r.done(req))
    nav = r.rover.drive.nav
    assert nav.fixes >= 6  # one a metre, one at rest
    assert nav.err_mm <= 10
    assert math.hypot(nav.x_um * 1e-6 - p.x, nav.y_um * 1e-6 - p.y) < 0.02
    # flat ground, three wheels a side: the plant's slip is 1.7 %; the estimate has it
    assert 1 - nav.gr_q14 / 16384 == pytest.approx(p.slip[0], abs=0.01)


def test_hk_reports_the_estimate(tmp_path: Path) -> None:
    r = _rover(tmp_path)
    req = r.send(200, 2, struct.pack(">ff", 2.0, 200.0))
    r.run_s(200, lambda: r.done(req))
    t = r.rover.telemetry
    for name in ("x_m", "y_m", "heading_deg", "pose_err_m", "vo_fixes", "slip_pct", "gyro_bias_dph"):
        assert name in HK_NAMES and name not in t.missing
    n = t.build()
    hk = dict(zip(["sid", *HK_NAMES], struct.unpack(HK_FMT, bytes(t.data[:n])), strict=True))
    assert hk["x_m"] == pytest.approx(r.hal.plant.x * 1000, abs=20)  # raw mm
    assert hk["vo_fixes"] >= 2 and 0 < hk["pose_err_m"] <= 10


def test_seeded_terrain_traverse_ends_where_the_rover_believes(tmp_path: Path) -> None:
    r = _rover(tmp_path)
    r.send(250, 1, struct.pack(">BBf", F_TERRAIN, 0, 7.0))
    r.run_s(1)
    p = r.hal.plant
    req = r.send(200, 2, struct.pack(">ff", 15.0, 200.0))
    r.run_s(1200, lambda: r.done(req))
    nav = r.rover.drive.nav
    err = math.hypot(nav.x_um * 1e-6 - p.x, nav.y_um * 1e-6 - p.y)
    assert err < 0.15  # 1 % of the distance
