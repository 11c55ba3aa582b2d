"""Long HIL procedures shared by the tests and tests/bench/bench_hil.py.

    result = sorties.terrain_traverse(rover, plant, terrain_seed=7)   # 100 m, a wheel jams
    result.pose_error_m                                               # estimate vs truth
    night = sorties.lunation(rover, plant)        # dusk, the 14.77-day night, sunrise, a drive
    night.hibernate_reason, night.min_soc, night.brownouts

Each procedure commands the rover through the ground like an operator would, and reads
the plant's truth (tests/hil/truth.py) for the figures it returns.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hil.gs.link import CommandTrack
from hil.mission.api import _MISSING, CheckFailed, PlantControl, RoverApi
from tests.hil import truth


@dataclass
class TraverseResult:
    goal_m: float
    true_x_m: float
    true_y_m: float
    estimate: truth.Estimate
    travelled_m: float  # path length, by the truth
    pose_error_m: float  # rover's estimate to the true position, at the end
    heading_error_deg: float
    jammed_wheel: int
    detours: list[str] = field(default_factory=list)

    @property
    def pose_error_pct(self) -> float:
        return 100.0 * self.pose_error_m / max(self.travelled_m, 1e-9)


def _wrap_deg(a: float) -> float:
    return (a + 180.0) % 360.0 - 180.0


def terrain_traverse(
    rover: RoverApi,
    plant: PlantControl,
    terrain_seed: int = 7,
    goal_m: float = 100.0,
    jam_wheel: int = 2,
    jam_at_m: float = 40.0,
    speed_mph: float = 200.0,
    max_legs: int = 8,
) -> TraverseResult:
    """Drive `goal_m` east over the plant's seeded terrain; `jam_wheel` jams once the rover
    has truly covered `jam_at_m`. A leg the rover aborts (a rock it will not climb, a slope
    beyond its limit) is met like an operator would: back to STANDBY, turn 30 deg away,
    2 m on, turn back, and on with what the rover believes is left."""
    w = truth.need_world(plant)
    w.set_terrain(terrain_seed)
    rover.await_mode("STANDBY", timeout=120)
    start = truth.mark(plant)
    assert start is not None
    jammed = False
    detours: list[str] = []
    for _ in range(max_legs):
        est = truth.estimate(rover)
        left = goal_m - est.x_m
        if left < 0.05:
            break
        if abs(est.heading_deg) > 2.0:  # face the goal line again after a detour
            rover.send_and_assert_command("TURN", angle_deg=-_wrap_deg(est.heading_deg), timeout=900)
        track = rover.send_command("DRIVE_DISTANCE", distance_m=round(left, 3), speed_mph=speed_mph)
        if not jammed:
            def far_enough(track: CommandTrack = track) -> bool:
                leg = truth.since(plant, start)
                rover.ground.reports(track)  # refreshes the track's reports
                done = track.failure() is not None or track.reached("completed")
                return done or (leg is not None and leg.travelled_m >= jam_at_m)

            truth.wait_until(rover, far_enough, timeout=left / (speed_mph / 3600.0) * 3 + 600, step_s=1.0)
            rover.ground.reports(track)
            if track.failure() is None and not track.reached("completed"):
                plant.jam_wheel(jam_wheel)
                jammed = True
        try:
            rover.await_verification(track, timeout=left / (speed_mph / 3600.0) * 3 + 900)
            continue
        except CheckFailed as exc:
            detours.append(str(exc)[:120])
        # met a hazard: stand, step aside, turn back to the goal line's heading
        if rover.get_telemetry("mode") == "SAFE":
            rover.send_and_assert_command("MODE_SET", mode="STANDBY", timeout=300)
        rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=-0.5, speed_mph=speed_mph, timeout=900)
        rover.send_and_assert_command("TURN", angle_deg=30.0, timeout=900)
        rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=2.0, speed_mph=speed_mph, timeout=900)
    rover.await_mode("STANDBY", timeout=120)
    rover.wait(5.0)  # at rest: the pose fix the camera makes after a stop
    est = truth.estimate(rover)
    leg = truth.since(plant, start)
    assert leg is not None
    err = math.hypot(est.x_m - w.x, est.y_m - w.y)
    return TraverseResult(
        goal_m, w.x, w.y, est, leg.travelled_m, err,
        _wrap_deg(est.heading_deg - math.degrees(w.heading)), jam_wheel if jammed else 0, detours,
    )


# --- a lunation ---------------------------------------------------------------------------

DAY_S = 86400.0


@dataclass
class LunationResult:
    """A lunar afternoon, the night and the next morning, by the rover's events and the
    plant's truth. Times are rover seconds since the procedure started."""

    hibernated_s: float | None = None
    hibernate_reason: str | None = None
    sun_at_hibernate_deg: float | None = None
    woke_s: float | None = None
    sun_at_wake_deg: float | None = None
    brownout_boot_s: float | None = None  # the first boot after dusk (reset_cause: why)
    reset_cause: str | None = None
    sun_at_boot_deg: float | None = None
    soc_at_boot: float | None = None
    min_soc: float = 1.0
    brownouts: int = 0
    drive_after_m: float | None = None
    end_s: float = 0.0

    @property
    def night_s(self) -> float | None:
        back = self.woke_s if self.woke_s is not None else self.brownout_boot_s
        if self.hibernated_s is None or back is None:
            return None
        return back - self.hibernated_s


def _plant_module() -> Any:
    return importlib.import_module("firmware_py.hal.plant")


def lunation(
    rover: RoverApi,
    plant: PlantControl,
    before_dusk_h: float = 12.0,
    drive_m: float = 5.0,
    battery_wh: float | None = None,
    run_s: float | None = None,
    on_phase: Callable[[str], None] | None = None,
    idle_hk_s: float = 600.0,
) -> LunationResult:
    """From `before_dusk_h` before sunset: an afternoon drive, dusk (the rover hibernates
    by itself, reason NIGHT), the 14.77-day night, sunrise (it wakes, or, with a battery
    too small for the night, browns out and boots again once the array has recharged
    it), and a drive in the morning. `battery_wh` replaces the plant's battery capacity;
    `run_s` keeps the loop running until that much rover time has passed in all (a
    whole lunation is `SYNODIC_S`); `on_phase(name)` is called as each phase begins:
    "afternoon", "night", "morning", "day" (after the morning drive, with `run_s`), "end".
    Like an operator with a rover standing idle for days, the ground asks for HK once per
    `idle_hk_s` after each drive (1 s again for the morning's drive): an idle rover so
    configured naps between reports, and virtual time jumps through its day as through the
    night."""
    w = truth.need_world(plant)
    mod = _plant_module()
    if battery_wh is not None:
        w.battery_wh = battery_wh
    w.set_lunar_time(mod.SYNODIC_S / 4.0 - before_dusk_h * 3600.0)
    out = LunationResult()
    t0 = rover.now()
    rec = truth.Recorder(w)
    phase = on_phase or (lambda _: None)

    def hk_period(period_s: float) -> None:
        rover.send_and_assert_command("HK_SET_PERIOD", sid=1, period_s=period_s, timeout=300)
    try:
        phase("afternoon")
        rover.await_mode("STANDBY", timeout=120)
        if drive_m:
            rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=drive_m, speed_mph=200, timeout=900)
        hk_period(idle_hk_s)

        def to(mode: str) -> Any:
            return lambda a: rover.mission.enum_label("mode", a["to_mode"]) == mode

        enter = rover.await_event("MODE_CHANGE", timeout=before_dusk_h * 3600 + 2 * DAY_S, predicate=to("HIBERNATE"))
        out.hibernated_s = rover.now() - t0
        out.hibernate_reason = rover.mission.enum_label("mode_reason", enter.args["reason"])
        out.sun_at_hibernate_deg = w.sun_elev_deg
        phase("night")
        # the night: a wake at sunrise, or (an empty battery) a brown-out and a boot
        mark = len(rover.history.events)

        def back() -> bool:
            return any(e.name in ("HIBERNATE_WAKE", "BOOT") for e in rover.history.events[mark:])

        rover._until(lambda: True if back() else _MISSING, 17 * DAY_S, lambda: "no wake and no boot in 17 days")
        first = next(e for e in rover.history.events[mark:] if e.name in ("HIBERNATE_WAKE", "BOOT"))
        phase("morning")
        if first.name == "HIBERNATE_WAKE":
            out.woke_s = rover.now() - t0
            out.sun_at_wake_deg = w.sun_elev_deg
            rover.await_mode("SAFE", timeout=120)
        else:
            out.brownout_boot_s = rover.now() - t0
            out.reset_cause = rover.mission.enum_label("reset_cause", first.args["reset_cause"])
            out.sun_at_boot_deg = w.sun_elev_deg
            out.soc_at_boot = w.soc
        # a browned-out board boots, hibernates again (LOW_BATTERY) and wakes once charged
        rover.wait(600.0)
        if rover.get_telemetry("mode") == "HIBERNATE":
            rover.await_event("HIBERNATE_WAKE", timeout=3 * DAY_S)
        rover.await_telemetry("mode", lambda m: m in ("SAFE", "STANDBY"), timeout=600)
        rover.wait(60.0)
        if rover.get_telemetry("mode") != "STANDBY":
            rover.send_and_assert_command("MODE_SET", mode="STANDBY", timeout=300)
        hk_period(1.0)
        if drive_m:
            start = truth.mark(plant)
            rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=drive_m, speed_mph=200, timeout=900)
            leg = truth.since(plant, start)
            out.drive_after_m = None if leg is None else leg.along_m
        if run_s is not None and rover.now() - t0 < run_s:
            hk_period(idle_hk_s)
            phase("day")
            rover.wait(run_s - (rover.now() - t0))
        phase("end")
    finally:
        rec.close()
    out.min_soc = rec.min_soc
    out.brownouts = rec.brownouts
    out.end_s = rover.now() - t0
    return out
