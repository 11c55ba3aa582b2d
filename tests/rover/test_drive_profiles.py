"""drive.step's profiles (turn, distance, arc) under random commands and readings.

Random commands and random sensor readings (encoders, gyro, currents, parameter changes)
through Drive with stand-in hal, safety and modes: the control path stays integer (it
allocates nothing under MicroPython), duties stay within Q15, and every kind of motion
starts, completes and can be aborted. The same seed gives the same trace (determinism).
"""

from __future__ import annotations

import random

from firmware_py import drive as drive_mod
from firmware_py import modes
from firmware_py.drive import ARC, DISTANCE, TURN, Drive
from firmware_py.safety import OK

PERIOD_MS = 50


class _Hal:
    def __init__(self) -> None:
        self.enc = [0] * 6
        self.yaw_urad_s = 0
        self.current_ma = [0] * 6


class _Params:
    def __init__(self) -> None:
        self.v = {1: 5.0, 2: 2.0, 10: 3.0, 12: 0.02}
        self.version = 0


class _Modes:
    def __init__(self) -> None:
        self.mode = modes.STANDBY

    def request(self, mode: int, reason: int) -> None:
        self.mode = mode


class _Safety:
    def __init__(self, trace: list) -> None:
        self.trace = trace
        self.state = [OK] * 6
        self.armed = False
        self.tilt_latched = False
        self.on_abort = None
        self.fault_at = -1
        self.duty = [0] * 6

    def wheels_available(self) -> bool:
        return True

    def obstacle_ahead(self) -> bool:
        return False

    def arm(self) -> bool:
        self.armed = True
        return True

    def disarm(self) -> None:
        self.armed = False

    def check_hazards(self, fwd: bool, dt_ms: int = 0) -> bool:
        return False

    def check_wheels(self, dt_ms: int) -> None:
        return None

    def output(self, i: int, d: int) -> None:
        self.duty[i] = d
        self.trace.append(d)


class _Events:
    def __init__(self, trace: list) -> None:
        self.trace = trace

    def emit(self, *args: object) -> None:
        self.trace.append(("ev",) + args)


def run_trace(module, seed: int, steps: int = 600) -> list:
    """The outputs of `module`.Drive over `steps` periods of random commands and readings."""
    rng = random.Random(seed)
    trace: list = []
    hal, params, md = _Hal(), _Params(), _Modes()
    sf = _Safety(trace)
    board = {"geometry": {"track_m": rng.choice([0.4, 0.9, 1.0, 1.37]), "wheel_free_speed_mps": 0.5},
             "encoders": {"counts_per_m": rng.choice([2000, 5000, 12000])}}
    dr = module.Drive(board, hal, params, md, sf, _Events(trace))
    done: list = []
    dr.on_done = lambda tok, code: done.append((tok, code))
    for n in range(steps):
        if dr.kind == 0 or rng.random() < 0.01:
            kind = rng.choice([DISTANCE, TURN, ARC])
            target = rng.uniform(-3.0, 3.0) if kind != TURN else rng.uniform(-6.0, 6.0)
            if rng.random() < 0.1:
                target = rng.uniform(-0.003, 0.003)
            radius = rng.choice([0.0, rng.uniform(-5.0, 5.0), rng.uniform(0.2, 1.0)])
            trace.append(("start", dr.start(kind, target, rng.uniform(0.5, 20.0), radius, n)))
            md.mode = modes.DRIVE if rng.random() < 0.98 else md.mode
        if rng.random() < 0.02:
            params.v[1] = rng.uniform(0.5, 30.0)
            params.v[2] = rng.uniform(0.01, 10.0)
            params.version += 1
        # readings: encoders follow the commanded side speeds loosely, the gyro the yaw rate
        half = dr.w_cmd * dr.track_mm // 2000  # um/s
        vl = dr.v_cmd - half
        vr = dr.v_cmd + half
        for i in range(6):
            side = vl if i < 3 else vr
            hal.enc[i] += side * PERIOD_MS // 1000 // dr.nav.um_per_count + rng.randint(-3, 3)
            hal.current_ma[i] = rng.randint(0, 3000)
        hal.yaw_urad_s = dr.w_cmd + rng.randint(-20000, 20000)
        if rng.random() < 0.005:
            md.mode = modes.STANDBY
        dt = PERIOD_MS if rng.random() < 0.95 else rng.choice([0, 1, 49, 51, 200])
        dr.step(dt)
        trace.append((dr.v_cmd, dr.w_cmd, dr.progress, dr.heading_urad, dr.x_um, dr.y_um, dr.kind))
    trace.append(("done", tuple(done)))
    return trace


def _ints(x: object) -> bool:
    if isinstance(x, tuple):
        return all(_ints(v) for v in x if not isinstance(v, str))
    return isinstance(x, int) and not isinstance(x, bool) or x is None


def test_same_seed_same_trace() -> None:
    assert run_trace(drive_mod, 3) == run_trace(drive_mod, 3)


def test_control_path_is_integer_and_duties_are_q15() -> None:
    for s in range(20):
        for t in run_trace(drive_mod, s):
            if isinstance(t, int):
                assert -32767 <= t <= 32767
            elif isinstance(t, tuple) and t[:1] not in (("ev",), ("start",), ("done",)):
                assert _ints(t), t


def test_every_motion_and_completion_is_exercised() -> None:
    events = [t for s in range(40) for t in run_trace(drive_mod, s) if isinstance(t, tuple) and t[:1] == ("ev",)]
    started = {e[2] for e in events if e[1] == drive_mod.EV_DRIVE_STARTED}
    completed = {e[2] for e in events if e[1] == drive_mod.EV_DRIVE_COMPLETED}
    assert started == completed == {DISTANCE, TURN, ARC}
    assert any(e[1] == drive_mod.EV_DRIVE_ABORTED for e in events)


def test_a_second_start_while_driving_is_busy() -> None:
    trace: list = []
    dr = Drive({}, _Hal(), _Params(), _Modes(), _Safety(trace), _Events(trace))
    assert dr.start(DISTANCE, 1.0, 10.0, 0.0, 1) == 0
    assert dr.can_start(DISTANCE, 1.0) == drive_mod.F_BUSY
    assert dr.start(TURN, 1.0, 10.0, 0.0, 2) == drive_mod.F_BUSY
    assert dr.kind == DISTANCE and dr.token == 1


def test_turn_started_event_carries_degrees_not_millimetres() -> None:
    trace: list = []
    dr = Drive({}, _Hal(), _Params(), _Modes(), _Safety(trace), _Events(trace))
    dr.start(TURN, -1.5707963, 10.0, 0.0, 1)
    ev = [t for t in trace if isinstance(t, tuple) and t[:2] == ("ev", drive_mod.EV_DRIVE_STARTED)][0]
    assert ev[2] == TURN and ev[3] == 0 and abs(ev[4] - -90.0) < 0.01


def test_drive_class_is_the_module_s() -> None:
    assert Drive is drive_mod.Drive
