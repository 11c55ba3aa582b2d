"""The plant's truth as the oracle of a HIL check.

    start = truth.mark(plant)          # None on a target with no in-process plant
    ...drive...
    leg = truth.since(plant, start)    # None likewise: skip only the truth check
    if leg is not None:
        assert leg.travelled_m == pytest.approx(4.0, abs=0.1)

A leg is measured in the frame of its start: `along_m` ahead along the heading the rover
had there, `across_m` to its left, `turned_deg` counter-clockwise. `travelled_m` is the
path length the body really covered (a turn in place covers ~0).

`world(plant)` is the plant model itself (place rocks, slopes and terrain on it),
`Recorder` watches its truth at every integration step (peak true speed, when it moved,
the lowest state of charge, the steepest attitude, brown-outs), and `estimate(rover)` /
`pose_error_m` compare what the rover believes with where the plant truly is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hil.mission.api import PlantControl, RoverApi


@dataclass(frozen=True)
class Pose:
    x_m: float
    y_m: float
    travelled_m: float
    heading_deg: float


@dataclass(frozen=True)
class Leg:
    travelled_m: float
    along_m: float
    across_m: float
    turned_deg: float


def observer(rover: RoverApi) -> PlantControl | None:
    """The plant of a test that injects no fault (so it does not ask for the `plant`
    fixture, which skips on real motors): None when the target has none in process."""
    return PlantControl(rover.h, rover) if rover.h.hal is not None else None


def mark(plant: PlantControl | None) -> Pose | None:
    """The plant's pose now, or None when the target has no in-process plant."""
    if plant is None:
        return None
    pose, heading = plant.true_pose, plant.true_heading_deg
    if pose is None or heading is None:
        return None
    return Pose(pose[0], pose[1], pose[2], heading)


def leg(start: Pose, end: Pose) -> Leg:
    dx, dy = end.x_m - start.x_m, end.y_m - start.y_m
    h = math.radians(start.heading_deg)
    turned = (end.heading_deg - start.heading_deg + 180.0) % 360.0 - 180.0
    return Leg(
        travelled_m=end.travelled_m - start.travelled_m,
        along_m=dx * math.cos(h) + dy * math.sin(h),
        across_m=-dx * math.sin(h) + dy * math.cos(h),
        turned_deg=turned,
    )


def since(plant: PlantControl | None, start: Pose | None) -> Leg | None:
    """What the plant truly did since `start` (None with no in-process plant)."""
    end = mark(plant)
    if start is None or end is None:
        return None
    return leg(start, end)


# --- the plant itself, and what it did between two looks ---------------------------------


def world(plant: PlantControl | None) -> Any | None:
    """The in-process plant model (firmware_py.hal.plant.Plant), or None on a target whose
    plant is not in this process: terrain, slopes and rocks are placed on it directly."""
    if plant is None or not plant.direct:
        return None
    return plant.h.hal.plant


def need_world(plant: PlantControl | None) -> Any:
    """The in-process plant, or skip: the check needs the plant's own state."""
    w = world(plant)
    if w is None:
        import pytest

        pytest.skip("needs the plant in process: its truth and its terrain")
    return w


@dataclass(frozen=True)
class Estimate:
    """Where the rover believes it is (its housekeeping), in its start frame."""

    x_m: float
    y_m: float
    heading_deg: float


def estimate(rover: RoverApi, timeout: float = 30.0) -> Estimate:
    """The rover's pose estimate from the next housekeeping report (call it at rest)."""
    x = rover.await_telemetry("x_m", None, timeout=timeout)
    return Estimate(float(x), float(rover.get_telemetry("y_m")), float(rover.get_telemetry("heading_deg")))


def pose_error_m(rover: RoverApi, plant: PlantControl | None) -> float | None:
    """Distance between the rover's estimate and the plant's true position, at rest
    (None with no in-process plant). Both frames start at the rover's power-on pose."""
    w = world(plant)
    if w is None:
        return None
    est = estimate(rover)
    return math.hypot(est.x_m - w.x, est.y_m - w.y)


class Recorder:
    """Watches the plant's truth at each of its integration steps (it wraps `step`, so it
    sees every state the plant passes through, not only what a sample happens to catch).

        rec = truth.Recorder(truth.world(plant))
        ...drive...
        rec.peak_v_mps, rec.moving_s, rec.min_soc, rec.max_pitch_deg
        rec.close()

    `t_s` is plant time since the recorder started; `first_moving_s` / `last_moving_s` the
    plant times the body first and last moved faster than `moving_mps`; `reached_s(v)` the
    plant time the true speed first reached `v` (None if it never did).
    """

    def __init__(self, plant_model: Any, moving_mps: float = 1e-4, speeds: tuple[float, ...] = ()) -> None:
        self.p = plant_model
        self.moving_mps = moving_mps
        self.t_s = 0.0
        self.peak_v_mps = 0.0
        self.first_moving_s: float | None = None
        self.last_moving_s: float | None = None
        self.min_soc = math.inf
        self.max_abs_pitch_deg = 0.0
        self.max_abs_roll_deg = 0.0
        self.brownouts_start = int(getattr(plant_model, "brownouts", 0))
        self._speeds = sorted(speeds)
        self._reached: dict[float, float] = {}
        self._step = plant_model.step
        plant_model.step = self._wrapped

    def _wrapped(self, dt: float) -> None:
        self._step(dt)
        p = self.p
        self.t_s += dt
        v = abs(p.v)
        if v > self.peak_v_mps:
            self.peak_v_mps = v
        if v > self.moving_mps:
            if self.first_moving_s is None:
                self.first_moving_s = self.t_s
            self.last_moving_s = self.t_s
        for s in self._speeds:
            if v >= s and s not in self._reached:
                self._reached[s] = self.t_s
        soc = p.soc
        if soc < self.min_soc:
            self.min_soc = soc
        pitch = abs(true_pitch_deg(p))
        if pitch > self.max_abs_pitch_deg:
            self.max_abs_pitch_deg = pitch
        roll = abs(float(getattr(p, "roll_deg", 0.0)))
        if roll > self.max_abs_roll_deg:
            self.max_abs_roll_deg = roll

    def reached_s(self, v_mps: float) -> float | None:
        return self._reached.get(v_mps)

    @property
    def moving_s(self) -> float:
        """Plant time from the first to the last motion (0 if it never moved)."""
        if self.first_moving_s is None or self.last_moving_s is None:
            return 0.0
        return self.last_moving_s - self.first_moving_s

    @property
    def brownouts(self) -> int:
        return int(getattr(self.p, "brownouts", 0)) - self.brownouts_start

    def close(self) -> None:
        if self.p.step == self._wrapped:
            del self.p.step  # the class's method again


def true_pitch_deg(p: Any) -> float:
    """The plant's true pitch (deg, nose up +): `pitch_deg`, or the older `slope_deg`."""
    v = getattr(p, "pitch_deg", None)
    return float(p.slope_deg if v is None else v)


def wait_until(rover: RoverApi, check: Any, timeout: float, step_s: float = 0.25) -> float:
    """Let rover time pass in `step_s` steps until `check()` is true (a condition on the
    plant's truth, which no telemetry announces); returns the rover time it took."""
    t0 = rover.now()
    while not check():
        if rover.now() - t0 > timeout:
            raise AssertionError(f"the plant's truth did not reach the condition within {timeout:g} s")
        rover.wait(step_s)
    return rover.now() - t0
