"""The plant's physics (firmware_py.hal.plant): traction and slip on regolith, the
two-wheels-per-side rule, rocks climbed or blocking, the hazard camera, attitude from the
ground under the wheels, and the visual-odometry fixes. Judged by the plant's own truth
(x, v, travelled) against what its sensors report."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_py.hal import plant as P
from firmware_py.hal.plant import Plant
from firmware_py.hal.sim import SimHal

DT = 0.05
FULL = 1.0
SPEED_200_MPH = 200.0 / 3600.0  # 200 m/h in m/s


def drive(p: Plant, duties: list[float] | float, seconds: float, dt: float = DT, each=None) -> None:
    p.enabled = True
    d = duties if isinstance(duties, list) else [duties] * 6
    for i in range(6):
        p.duty[i] = d[i]
    for _ in range(int(seconds / dt)):
        p.step(dt)
        if each is not None:
            each(p)


def stop(p: Plant, seconds: float = 1.0) -> None:
    drive(p, 0.0, seconds)


def steady_slip(pitch_deg: float = 0.0, faults: dict[int, int] | None = None, duty: float = 0.6) -> tuple[float, float]:
    """(slip of the left side, its true ground speed) after 30 s of a straight drive: the
    share of a working wheel's rim travel (what its encoder counts) the ground did not follow."""
    p = Plant(5)
    p.set_slope(pitch_deg)
    for i, f in (faults or {}).items():
        p.set_wheel_fault(i, f)
    drive(p, duty, 20.0)
    w = next(i for i in range(3) if p.fault[i] in (P.WHEEL_OK, P.WHEEL_ENC_DEAD))
    enc0 = p.enc_pos[w]
    ground0 = [0.0]

    def side(q: Plant) -> None:
        ground0[0] += q.vl * DT

    drive(p, duty, 10.0, each=side)
    wheel_m = (p.enc_pos[w] - enc0) / p.counts_per_m
    return 1.0 - ground0[0] / wheel_m, ground0[0] / 10.0


# ---- traction and slip ---------------------------------------------------------------


def test_slip_grows_with_slope_and_wheel_odometry_over_reads() -> None:
    slips = [steady_slip(a)[0] for a in (0.0, 10.0, 20.0)]
    assert 0.005 < slips[0] < slips[1] < slips[2], slips
    assert slips[2] > 0.10, f"20 deg uphill slips only {slips[2]:.3f}"
    # slope up the hill makes the rims over-read the ground: the encoders count rims
    flat, up = slips[0], slips[2]
    assert up - flat > 0.08


def test_a_twenty_degree_slope_is_climbed_and_twenty_five_is_not() -> None:
    s20, v20 = steady_slip(20.0, duty=FULL)
    assert v20 > SPEED_200_MPH, f"20 deg at full duty: {v20 * 3600:.0f} m/h"
    s25, v25 = steady_slip(25.0, duty=FULL)
    assert v25 < 0.001 and s25 > 0.99, (s25, v25)


def test_a_dragging_jammed_wheel_makes_its_side_slip_more() -> None:
    healthy, _ = steady_slip()
    dragged, _ = steady_slip(faults={1: P.WHEEL_JAM})
    assert dragged > 2 * healthy, (healthy, dragged)


def test_two_working_wheels_per_side_hold_full_speed_one_cannot() -> None:
    # one wheel open on each side: 2 + 2 working wheels
    _, v2 = steady_slip(faults={1: P.WHEEL_OPEN, 4: P.WHEEL_OPEN}, duty=FULL)
    assert v2 > SPEED_200_MPH * 1.2, f"two wheels a side: {v2 * 3600:.0f} m/h"
    # two open on each side: one working wheel, a third of its side's traction
    s1, v1 = steady_slip(faults={0: P.WHEEL_OPEN, 1: P.WHEEL_OPEN, 3: P.WHEEL_OPEN, 4: P.WHEEL_OPEN}, duty=FULL)
    assert v1 < SPEED_200_MPH, f"one wheel a side holds {v1 * 3600:.0f} m/h"
    assert s1 > 0.25, f"one wheel a side slips only {s1:.3f}"
    # one wheel, the other two jammed and dragged: it cannot move its side at all
    _, v0 = steady_slip(faults={0: P.WHEEL_JAM, 1: P.WHEEL_JAM, 3: P.WHEEL_JAM, 4: P.WHEEL_JAM}, duty=FULL)
    assert v0 < 0.001


def test_a_jammed_wheel_stops_draws_stall_current_and_its_side_runs_slower() -> None:
    p = Plant(3)
    p.set_wheel_fault(1, P.WHEEL_JAM)
    drive(p, 0.6, 10.0)
    assert p.speed[1] == 0.0 and p.current[1] > 1.5
    assert p.vl < p.vr  # the dragged side lags: the rover curves towards it
    assert p.heading > 0.0  # ...to the left (counter-clockwise)


def test_a_dead_encoder_stops_the_counts_only_the_motor_still_drives() -> None:
    p = Plant(3)
    p.set_wheel_fault(2, P.WHEEL_ENC_DEAD)
    drive(p, 0.6, 5.0)
    frozen = p.enc_out[2]
    drive(p, 0.6, 5.0)
    assert p.enc_out[2] == frozen
    assert p.current[2] > 0.2 and p.speed[2] > 0.04
    assert abs(p.vl - p.vr) < 1e-9  # its side is as fast as the other


def test_an_open_circuit_wheel_draws_nothing_and_rolls_with_its_side() -> None:
    p = Plant(3)
    p.set_wheel_fault(4, P.WHEEL_OPEN)
    drive(p, 0.6, 10.0)
    assert p.current[4] == 0.0
    assert p.speed[4] == pytest.approx(p.vr)


# ---- rocks -----------------------------------------------------------------------------


def _over_rock(height_m: float, lateral_m: float) -> dict[str, float]:
    p = Plant(9)
    flat_i = []
    drive(p, 0.6, 10.0, each=lambda q: flat_i.append(q.current[0]))
    base_i = flat_i[-1]
    x0 = p.x
    p.add_rock(2.0, lateral_m, height_m)  # 2 m ahead of the body centre
    seen = {"pitch": 0.0, "roll": 0.0, "current": 0.0}

    def watch(q: Plant) -> None:
        seen["pitch"] = max(seen["pitch"], abs(q.pitch_deg))
        seen["roll"] = max(seen["roll"], abs(q.roll_deg))
        seen["current"] = max(seen["current"], q.current[0], q.current[3])

    enc0 = p.enc_pos[0]
    drive(p, 0.6, 90.0, each=watch)
    seen["advance"] = p.x - x0
    seen["wheel_m"] = (p.enc_pos[0] - enc0) / p.counts_per_m
    seen["base_current"] = base_i
    seen["final_current"] = max(p.current[0], p.current[3])
    return seen


def test_a_fifteen_cm_rock_on_the_wheel_line_is_climbed_with_a_pitch_and_current_bump() -> None:
    seen = _over_rock(0.15, 0.5)
    assert seen["advance"] > 4.0, "the rover did not get past the rock"
    assert seen["pitch"] > 3.0, f"pitch bump only {seen['pitch']:.2f} deg"
    assert seen["roll"] > 2.0
    assert seen["current"] > 2 * seen["base_current"], (seen["current"], seen["base_current"])


def test_a_fifteen_cm_rock_on_the_centre_line_passes_under_the_body() -> None:
    seen = _over_rock(0.15, 0.0)
    assert seen["advance"] > 4.0
    assert seen["pitch"] < 0.01 and seen["roll"] < 0.01


@pytest.mark.parametrize("lateral_m", [0.5, 0.0, -0.5])
def test_a_twenty_five_cm_rock_blocks_the_rover_and_its_wheels_spin(lateral_m: float) -> None:
    seen = _over_rock(0.25, lateral_m)
    # rock centre 2 m ahead, 0.25 m radius: the front wheels' rims stop at 2 - 0.25 - 0.65
    assert 0.9 < seen["advance"] < 1.12, seen["advance"]
    assert seen["wheel_m"] > seen["advance"] + 1.0  # the rims kept turning
    assert seen["final_current"] > 2 * seen["base_current"]


def test_a_blocked_rover_can_back_away_and_turn() -> None:
    p = Plant(9)
    p.add_rock(1.5, 0.0, 0.3)
    drive(p, 0.6, 30.0)
    stuck_x = p.x
    drive(p, -0.6, 10.0)
    assert p.x < stuck_x - 0.3
    drive(p, [-0.6, -0.6, -0.6, 0.6, 0.6, 0.6], 10.0)
    assert p.heading > 0.3


# ---- hazard camera ---------------------------------------------------------------------


def test_the_camera_sees_a_rock_on_the_wheel_line_and_not_one_two_metres_to_the_side() -> None:
    hal = SimHal({}, None, seed=2)
    p = hal.plant
    p.add_rock(P.FRONT_M + 2.0, 0.5, 0.3)  # 2 m ahead of the front axle, on the left wheel line
    p.add_rock(P.FRONT_M + 1.0, 2.0, 0.3)  # 2 m to the left: outside the field
    p.add_rock(P.FRONT_M + 1.5, -0.3, 0.04)  # too small to see
    hal.update(0)
    hal.update(50)
    assert hal.haz_n == 1
    assert hal.haz_d_mm[0] == pytest.approx(2000, abs=2)
    assert hal.haz_lat_mm[0] == pytest.approx(500, abs=2)
    assert hal.haz_h_mm[0] == pytest.approx(300, abs=2)
    assert hal.haz_w_mm[0] == pytest.approx(600, abs=2)
    assert (hal.obstacle_mm, hal.obstacle_dist_mm) == (hal.haz_h_mm[0], hal.haz_d_mm[0])


def test_the_camera_field_is_the_swept_width_plus_margin_and_its_range() -> None:
    half = (P.TRACK_M + P.WHEEL_W_M) / 2 + 0.3
    p = Plant(1)
    p.add_rock(P.FRONT_M + 1.0, half + 0.1 - 0.05, 0.1, 0.1)  # its edge 5 cm inside the field
    p.add_rock(P.FRONT_M + 1.0, -(half + 0.1 + 0.06), 0.1, 0.1)  # its edge 1 cm outside
    p.add_rock(P.FRONT_M + 3.2, 0.0, 0.3)  # beyond 3 m
    p.add_rock(P.FRONT_M + 0.2, 0.0, 0.1)  # nearer than 0.3 m
    p.step(DT)
    assert p.haz_n == 1 and p.haz_lat[0] > 0


def test_the_camera_reports_up_to_four_nearest_first_and_the_tallest_as_obstacle() -> None:
    p = Plant(1)
    for d, h in ((2.5, 0.4), (1.0, 0.1), (2.0, 0.2), (0.6, 0.08), (1.5, 0.12)):
        p.add_rock(P.FRONT_M + d, 0.0, h)
    p.step(DT)
    assert p.haz_n == 4
    assert [round(d, 3) for d in p.haz_d] == [0.6, 1.0, 1.5, 2.0]
    assert (p.obstacle_h, p.obstacle_d) == (pytest.approx(0.2), pytest.approx(2.0))


# ---- attitude --------------------------------------------------------------------------


def test_slope_and_roll_are_measured_under_the_wheels_with_noise() -> None:
    hal = SimHal({}, None, seed=4)
    p = hal.plant
    p.set_slope(12.0, -7.0)
    pitches, rolls = [], []
    hal.update(0)
    for k in range(1, 201):
        hal.update(k * 50)
        pitches.append(hal.pitch_cdeg / 100)
        rolls.append(hal.roll_cdeg / 100)
    assert p.pitch_deg == pytest.approx(12.0, abs=1e-6)
    assert p.roll_deg == pytest.approx(-7.0, abs=1e-6)
    assert statistics.mean(pitches) == pytest.approx(12.0, abs=0.05)
    assert statistics.mean(rolls) == pytest.approx(-7.0, abs=0.05)
    assert 0.05 < statistics.stdev(pitches) < 0.2


def test_a_slope_set_under_the_rover_turns_with_it_into_roll() -> None:
    p = Plant(1)
    p.set_slope(10.0)
    drive(p, [-0.6, -0.6, -0.6, 0.6, 0.6, 0.6], 200.0, each=lambda q: None)
    stop(p)
    # turned a quarter turn or more counter-clockwise: the uphill is now to the right
    turn = p.heading % (2 * math.pi)
    expect_pitch = math.degrees(math.atan(math.tan(math.radians(10.0)) * math.cos(turn)))
    assert p.pitch_deg == pytest.approx(expect_pitch, abs=0.2)
    assert abs(p.roll_deg) > 1.0


def test_the_gyro_has_a_bias_standing_still() -> None:
    p = Plant(11)
    rates = []
    for _ in range(2000):
        p.step(DT)
        rates.append(p.gyro_out)
    bias = statistics.mean(rates)
    assert 5e-6 < abs(bias) < 40e-6
    assert bias == pytest.approx(p.gyro_bias, abs=1e-5)


# ---- visual odometry -------------------------------------------------------------------


def test_vo_fixes_every_metre_and_once_half_a_second_after_rest() -> None:
    hal = SimHal({}, None, seed=6)
    p = hal.plant
    fixes: list[tuple[float, float, int]] = []
    last = [hal.vo_seq]
    t = [0]

    def tick(on: bool) -> None:
        hal._duty_q15 = [19660 if on else 0] * 6
        hal._duty_dirty = True
        p.enabled = True
        t[0] += 50
        hal.update(t[0])
        if hal.vo_seq != last[0]:
            last[0] = hal.vo_seq
            fixes.append((p.travelled, t[0] / 1000, hal.vo_x_mm))

    for _ in range(1200):  # 60 s at ~0.055 m/s: 3.3 m
        tick(True)
    moving = list(fixes)
    assert len(moving) == int(p.travelled)
    for k, (d, _, _) in enumerate(moving):
        assert d == pytest.approx(k + 1, abs=0.01)
    stopped_at = t[0] / 1000
    for _ in range(40):
        tick(False)
    rest = fixes[len(moving):]
    assert len(rest) == 1, rest
    assert 0.5 <= rest[0][1] - stopped_at <= 1.0
    for _ in range(200):
        tick(False)
    assert len(fixes) == len(moving) + 1  # no more fixes while standing still
    assert hal.vo_x_mm == pytest.approx(p.x * 1000, abs=30)


def test_vo_error_is_a_random_walk_of_the_stated_sigma_independent_of_slip() -> None:
    steps_pos, steps_h = [], []
    for seed in range(1, 5):
        p = Plant(seed)
        p.set_wheel_fault(1, P.WHEEL_JAM)  # heavy slip on one side: VO does not care
        p.enabled = True
        for i in range(6):
            p.duty[i] = 0.8
        prev = None
        while p.vo_seq < 120:
            n = p.vo_seq
            p.step(DT)
            if p.vo_seq != n:
                err = (p.vo_x - p.x, p.vo_y - p.y, p.vo_h - p.heading)
                if prev is not None:
                    steps_pos += [err[0] - prev[0], err[1] - prev[1]]
                    steps_h.append(math.degrees(err[2] - prev[2]))
                prev = err
    sd_pos = statistics.pstdev(steps_pos)
    sd_h = statistics.pstdev(steps_h)
    assert sd_pos == pytest.approx(P.VO_SIGMA_POS * P.VO_STEP_M, rel=0.12), sd_pos
    assert sd_h == pytest.approx(P.VO_SIGMA_H_DEG, rel=0.12), sd_h
    assert abs(statistics.mean(steps_pos)) < 0.0004


# ---- the plant's truth and injection ---------------------------------------------------


def test_sim_inject_places_any_rock_slope_and_roll() -> None:
    p = Plant(1)
    assert p.inject(P.F_ROCK_DIST, 0, 1.5)
    assert p.inject(P.F_ROCK_LAT, 0, -0.5)
    assert p.inject(P.F_ROCK_H, 0, 0.12)
    assert p.inject(P.F_ROLL, 0, 5.0)
    assert p.inject(P.F_SLOPE, 0, -8.0)
    p.step(DT)
    assert p.haz_n == 1
    # ROCK_DIST_M is from the rover's centre (as add_rock); the camera measures from the front axle
    assert (p.haz_h[0], p.haz_d[0], p.haz_lat[0]) == (
        pytest.approx(0.12), pytest.approx(1.5 - P.FRONT_M), pytest.approx(-0.5))
    assert p.pitch_deg == pytest.approx(-8.0) and p.roll_deg == pytest.approx(5.0)
    assert p.inject(P.F_ROCK_H, 0, 0.0)  # removes the placed rocks
    assert p.inject(P.F_ROCK, 0, 2.0)  # the old 0.3 m rock, 2 m ahead of the front axle
    p.step(DT)
    assert p.haz_n == 1 and p.haz_h[0] == pytest.approx(0.3) and p.haz_d[0] == pytest.approx(2.0)
    assert p.inject(P.F_TERRAIN, 0, 7.0) and p.terrain.seed == 7
    assert p.inject(P.F_TERRAIN, 0, 0.0) and p.terrain.seed == 0 and p.pitch_deg == 0.0
    assert not p.inject(P.F_JAM, 0, 0.0)  # a wheel fault names a wheel
    assert not p.inject(P.F_HANG, 1, 0.0)  # the firmware's, not the plant's


def test_true_speed_and_distance_are_the_plant_s_own() -> None:
    p = Plant(2)
    drive(p, 0.6, 60.0)
    assert p.v == pytest.approx((p.vl + p.vr) / 2)
    assert p.travelled == pytest.approx(math.hypot(p.x, p.y), rel=1e-3)
    assert p.v < p.speed[0]  # slip: the rims outrun the ground


# ---- any sequence of commands and faults keeps the plant's state sound -------------------

_OPS = st.one_of(
    st.tuples(st.just("duty"), st.floats(-1, 1), st.floats(-1, 1)),
    st.tuples(st.just("fault"), st.integers(0, 5), st.sampled_from([P.WHEEL_OK, P.WHEEL_JAM, P.WHEEL_OPEN, P.WHEEL_ENC_DEAD])),
    st.tuples(st.just("rock"), st.floats(-4, 4), st.floats(-2, 2), st.floats(0.01, 0.5)),
    st.tuples(st.just("slope"), st.floats(-30, 30), st.floats(-30, 30)),
    st.tuples(st.just("sun"), st.floats(0, 1)),
    st.tuples(st.just("soc"), st.floats(0, 100)),
    st.tuples(st.just("terrain"), st.integers(0, 50)),
    st.tuples(st.just("mode"), st.booleans(), st.booleans()),
    st.tuples(st.just("step"), st.floats(0.001, 0.2), st.integers(1, 40)),
    st.tuples(st.just("long"), st.floats(1, 7200)),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_OPS, min_size=1, max_size=25))
def test_any_sequence_keeps_the_plant_sound(ops: list[tuple]) -> None:
    p = Plant(7)
    p.enabled = True
    for op in ops:
        kind = op[0]
        if kind == "duty":
            for i in range(6):
                p.duty[i] = op[1] if i < 3 else op[2]
        elif kind == "fault":
            p.set_wheel_fault(op[1], op[2])
        elif kind == "rock":
            p.add_rock(op[1], op[2], op[3])
        elif kind == "slope":
            p.set_slope(op[1], op[2])
        elif kind == "sun":
            p.set_sun(op[1])
        elif kind == "soc":
            p.set_soc(op[1])
        elif kind == "terrain":
            p.set_terrain(op[1])
        elif kind == "mode":
            p.hibernating, armed = op[1], op[2]
            p.heater(armed)
        elif kind == "step":
            for _ in range(op[2]):
                p.step(op[1])
        else:
            p.step(op[1])
        values = (p.x, p.y, p.heading, p.v, p.soc, p.temp_board, p.temp_motor, p.pitch_deg, p.roll_deg,
                  p.gyro_out, p.solar_w, *p.speed, *p.current)
        assert all(math.isfinite(v) for v in values), values
        assert 0.0 <= p.soc <= 1.0
        assert abs(p.v) <= P.VMAX_MPS * 1.2 and abs(p.pitch_deg) < 60 and abs(p.roll_deg) < 60
        assert all(0.0 <= c <= P.I_NOLOAD_A + P.I_STALL_A + 1e-9 for c in p.current)
        assert 0 <= p.haz_n <= 4 and list(p.haz_d[: p.haz_n]) == sorted(p.haz_d[: p.haz_n])
        assert p.powered or p.load_w == 0.0
        for i in range(6):
            if p.fault[i] == P.WHEEL_JAM:
                assert p.speed[i] == 0.0
