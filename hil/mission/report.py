"""Run a mission scenario on a target and write its report folder.

    result = run_mission(MissionSpec(scenario="sortie", seed=1, out=Path("mission")))

The report folder holds:
    archive/        the ground's session archive (hil.gs archive format: `farside gs replay`)
    telemetry.png   pose, speed, battery, tilt and wheel currents over rover time
    traverse.png    the tracks on a map with the wheel faults and hazards
    summary.json    distance driven, faults met and survived, commands sent and verified,
                    link statistics, rover time and wall time

The summary's numbers come from the live ground session; `check_against_archive` re-derives
them from the archive alone (the CI test compares the two). Both count distance by one rule,
`odometry_distance`. Where the run has an in-process plant, the report also judges by the
plant's truth: `truth` holds the distance truly driven and the true final pose, each step
its `reported_m` and `true_m`, and a fault counts as survived only if the rover truly drove,
in the step where it met it, what it reported (`survived_reported`: the scenario's verdict).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import FarsideError
from hil.gs.archive import KIND_TC, read_records
from hil.mission.api import PlantControl, RelayControl, RoverApi
from hil.mission.ground import HkSample, LoopGround
from hil.mission.scenarios import MissionContext, StepRecord, scenario

TELEMETRY_PLOT = ["x_m", "y_m", "speed_mph", "battery_pct", "pitch_deg", "wheel3_current_a", "mode"]


@dataclass
class MissionSpec:
    scenario: str = "sortie"
    seed: int = 1
    out: Path = Path("mission-report")
    target: str = "virtual"
    port: str | None = None
    board: str = "sim"
    relay: str | None = None  # None: queqiao on virtual, lab on real time
    real_time: bool = False
    plots: bool = True


@dataclass
class MissionResult:
    summary: dict[str, Any]
    folder: Path
    ok: bool
    error: str = ""
    files: list[Path] = field(default_factory=list)


def _open_target(spec: MissionSpec) -> Any:
    relay = spec.relay or ("queqiao" if spec.target == "virtual" else "lab")
    if spec.target == "virtual":
        from hil.mission.loop import LoopConfig, WholeLoop

        return WholeLoop(LoopConfig(seed=spec.seed, relay=relay, board=spec.board, folder=spec.out))
    from hil.mission.realtime import open_realtime_target

    return open_realtime_target(spec.target, spec.port, spec.board, relay, spec.seed, spec.out)


def _pace_real_time(harness: Any) -> None:
    """Hold a virtual-time loop to the wall clock (for --real-time on the virtual target)."""

    async def pace() -> None:
        loop = asyncio.get_running_loop()
        wall0, v0 = time.monotonic(), loop.time()
        while True:
            await asyncio.sleep(0.05)
            ahead = (loop.time() - v0) - (time.monotonic() - wall0)
            if ahead > 0:
                time.sleep(ahead)  # the loop's clock must not run ahead of the wall

    harness.loop.create_task(pace(), name="real-time pacing")


def make_report_folder(out: Path) -> None:
    """Make the report folder (and its parents), or say in one line why it cannot be one."""
    if out.exists() and not out.is_dir():
        raise FarsideError(f"{out}: expected a folder for the report, found something else there")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FarsideError(f"{out}: cannot make the report folder: {exc.strerror or exc}") from None


def run_mission(spec: MissionSpec, on_step: Callable[[StepRecord], None] | None = None) -> MissionResult:
    """Run the scenario, then write the report folder (also when the scenario failed)."""
    run = scenario(spec.scenario)
    make_report_folder(spec.out)
    if (spec.out / "archive").exists() and any((spec.out / "archive").iterdir()):
        raise FarsideError(f"expected an empty report folder, {spec.out / 'archive'} already holds an archive")
    wall0 = time.perf_counter()
    harness = _open_target(spec)
    error = ""
    try:
        if spec.real_time and spec.target == "virtual":
            _pace_real_time(harness)
        rover = RoverApi(harness)
        rover.start_test_case(spec.scenario)
        relay = RelayControl(harness) if harness.relay is not None else None
        plant = PlantControl(harness, rover) if (harness.hal is not None or spec.board == "sim") else None
        truth = TruthLog(rover, plant)
        ctx = MissionContext(rover, relay, plant, spec.seed, on_step=truth.on_step(on_step))
        try:
            run(ctx)
        except (AssertionError, FarsideError) as exc:
            error = str(exc)
        wall_s = time.perf_counter() - wall0
        summary = summarize(spec, rover, ctx, wall_s, error, truth)
    finally:
        harness.close()
    files = write_report(spec.out, summary, plots=spec.plots)
    return MissionResult(summary, spec.out, not error, error, files)


# --- the distance rule and the plant's truth ---------------------------------------------

# How far the distance a rover reports for a step may stray from the distance it truly drove
# before a fault met in that step counts as not survived (the scenarios' drive tolerance).
DRIVE_TOLERANCE_M = 0.2


def odometry_distance(boots: Sequence[Any], odometer_m: Sequence[Any]) -> float:
    """The distance the rover reports over consecutive housekeeping samples: the sum of its
    odometer's increases between samples of the same boot (odometry restarts at a boot).

    The one rule for distance: the live summary, each step and the archive check use it.
    """
    distance = 0.0
    for i in range(1, min(len(boots), len(odometer_m))):
        if boots[i] == boots[i - 1]:
            distance += max(0.0, float(odometer_m[i]) - float(odometer_m[i - 1]))
    return distance


def hk_distance(samples: Sequence[HkSample]) -> float:
    """`odometry_distance` over received housekeeping samples (those that carry an odometer)."""
    runs = [s.values for s in samples if "odometer_m" in s.values]
    return odometry_distance([v["boot_count"] for v in runs], [v["odometer_m"] for v in runs])


@dataclass(frozen=True)
class TruthMark:
    """The plant's truth at a moment, with how much the ground had received by then."""

    pose: tuple[float, float, float] | None  # plant (x, y, travelled); None: no in-process plant
    heading_deg: float | None
    hk: int  # housekeeping samples received
    events: int


@dataclass(frozen=True)
class StepDrive:
    """What a step drove: by the rover's odometry and by the plant's truth."""

    reported_m: float
    true_m: float

    @property
    def error_m(self) -> float:
        return self.reported_m - self.true_m

    def as_reported(self) -> bool:
        """Whether the rover truly drove what it reported, within DRIVE_TOLERANCE_M."""
        return abs(self.error_m) <= DRIVE_TOLERANCE_M


class TruthLog:
    """The plant's truth at the run's start and at each step's start and end, when the
    mission runs an in-process plant (the virtual target's sim HAL, the emulated Pico's
    pins); a target with no plant in process gives marks with no pose."""

    def __init__(self, rover: RoverApi, plant: PlantControl | None) -> None:
        self.rover = rover
        self.plant = plant
        self.start = self.mark()
        self.steps: dict[int, list[TruthMark]] = {}  # id(step record) -> [at start, at end]

    @property
    def available(self) -> bool:
        return self.start.pose is not None

    def mark(self) -> TruthMark:
        h = self.rover.ground.history
        pose = self.plant.true_pose if self.plant is not None else None
        heading = self.plant.true_heading_deg if self.plant is not None else None
        return TruthMark(pose, heading, len(h.hk), len(h.events))

    def on_step(self, then: Callable[[StepRecord], None] | None) -> Callable[[StepRecord], None]:
        """A scenario's on_step that marks the truth at each step's start and end, then calls `then`."""

        def record(rec: StepRecord) -> None:
            self.steps.setdefault(id(rec), []).append(self.mark())
            if then is not None:
                then(rec)

        return record

    def step_drive(self, rec: StepRecord) -> StepDrive | None:
        marks = self.steps.get(id(rec), [])
        if len(marks) < 2:
            return None
        first, last = marks[0], marks[-1]
        if first.pose is None or last.pose is None:
            return None
        # from the last sample before the step: the odometer's increase over the step
        samples = self.rover.ground.history.hk[max(first.hk - 1, 0):last.hk]
        return StepDrive(hk_distance(samples), last.pose[2] - first.pose[2])

    def step_of(self, t: float, steps: Sequence[StepRecord]) -> StepRecord | None:
        """The step running at rover time `t` (the last one started by then)."""
        started = [s for s in steps if s.started_s <= t]
        return started[-1] if started else None


# --- the summary's sections ---------------------------------------------------------------


def summarize(
    spec: MissionSpec, rover: RoverApi, ctx: MissionContext, wall_s: float, error: str,
    truth: TruthLog | None = None,
) -> dict[str, Any]:
    """summary.json: the run, what the rover drove and met, commands, link, and the truth."""
    truth = truth if truth is not None else TruthLog(rover, None)
    hk = rover.ground.history.hk
    link = rover.link_counters()
    distance = hk_distance(hk)
    return {
        **run_section(spec, rover, wall_s, error, link),
        "distance_m": round(distance, 3),
        **pose_section(hk),
        # housekeeping retrieved from the packet store: archived (and exported), not in `hk`
        "hk_retrieved": rover.ground.state.hk_late,
        **fault_section(ctx, truth),
        "steps": step_section(ctx, truth),
        "commands": command_section(rover.ground),
        "events": dict(sorted(Counter(e.name for e in rover.ground.history.events).items())),
        "link": link_section(link),
        "truth": truth_section(truth, distance, hk),
        "archive": str(rover.h.archive_path),
    }


def run_section(spec: MissionSpec, rover: RoverApi, wall_s: float, error: str, link: dict[str, Any]) -> dict[str, Any]:
    rover_s = rover.now()
    return {
        "scenario": spec.scenario,
        "seed": spec.seed,
        "target": spec.target,
        "relay": link.get("relay", {}).get("profile", "none"),
        "ok": not error,
        "error": error,
        "rover_time_s": round(rover_s, 3),
        "wall_s": round(wall_s, 3),
        "speedup": round(rover_s / wall_s, 1) if wall_s > 0 else None,
    }


def pose_section(hk: Sequence[HkSample]) -> dict[str, Any]:
    """Where the rover believes it ended, from its last housekeeping report."""
    last = hk[-1].values if hk else {}
    return {
        "final_pose": {k: last.get(k) for k in ("x_m", "y_m", "heading_deg")},
        "final_mode": last.get("mode"),
        "hk_reports": len(hk),
    }


def fault_section(ctx: MissionContext, truth: TruthLog) -> dict[str, Any]:
    """The faults met. `survived` is judged by the plant's truth where the run has it: the
    scenario's verdict (`survived_reported`) and the rover truly drove, in the step where it
    met the fault, what it reported (within DRIVE_TOLERANCE_M)."""
    faults = []
    for f in ctx.log.faults:
        entry = vars(f) | {"survived_reported": f.survived}
        step = truth.step_of(f.met_at_s, ctx.log.steps)
        drive = truth.step_drive(step) if step is not None else None
        if drive is not None:
            entry |= {
                "survived": f.survived and drive.as_reported(),
                "reported_m": round(drive.reported_m, 3),
                "true_m": round(drive.true_m, 3),
            }
            if not drive.as_reported():
                entry["how"] = f"{f.how}; truly {drive.true_m:.2f} m where it reported {drive.reported_m:.2f} m"
        faults.append(entry)
    return {
        "faults": faults,
        "faults_met": len(faults),
        "faults_survived": sum(1 for f in faults if f["survived"]),
        "faults_survived_reported": sum(1 for f in faults if f["survived_reported"]),
    }


def step_section(ctx: MissionContext, truth: TruthLog) -> list[dict[str, Any]]:
    steps = []
    for s in ctx.log.steps:
        drive = truth.step_drive(s)
        extra = {} if drive is None else {"reported_m": round(drive.reported_m, 3), "true_m": round(drive.true_m, 3)}
        steps.append(vars(s) | extra)
    return steps


def command_section(g: LoopGround) -> dict[str, Any]:
    stages = [g.reports(t) for t in g.tracks]
    failures = []
    for t in g.tracks:
        rep = t.failure()
        if rep is not None:
            failures.append({"command": t.name, "stage": rep.stage, "reason": g.failure_name(rep)})
    return {
        "sent": len(g.tracks),
        "verified": sum(1 for s in stages if "completed" in s),
        "verified_request_ids": [list(t.request_id) for t, st in zip(g.tracks, stages, strict=True) if "completed" in st],
        # every TM 1/7 received, each once, live or retrieved from the packet store (the ground's
        # own TM_RETRIEVE and time-tagged commands the rover released included): a running total,
        # so reports the ground forgot later (a request id reused, a retrieval closed) still count
        "completed_reports": g.state.completed_reports,
        "failed": len(failures),
        "failures": failures,
        "by_name": dict(Counter(t.name for t in g.tracks)),
    }


def link_section(link: dict[str, Any]) -> dict[str, Any]:
    return {
        "tc_frames_sent": link["tc_frames_sent"],
        "tm_frames_ok": link["tm_frames_ok"],
        "tm_frames_bad": link["tm_frames_bad"],
        "tm_frames_lost": link["tm_frames_lost"],
        "cop1": link["cop1"],
        "relay": link.get("relay", {}),
    }


def truth_section(truth: TruthLog, distance_m: float, hk: Sequence[HkSample]) -> dict[str, Any] | None:
    """The plant's truth over the run (None with no in-process plant): the distance truly
    driven, the reported distance's error against it, the true final pose and, when the
    rover never rebooted (its pose restarts at a boot), how far its own pose is from it."""
    if not truth.available:
        return None
    start, end = truth.start, truth.mark()
    assert start.pose is not None and end.pose is not None and end.heading_deg is not None
    true_m = end.pose[2] - start.pose[2]
    out: dict[str, Any] = {
        "distance_m": round(true_m, 3),
        "distance_error_m": round(distance_m - true_m, 3),
        "final_pose": {"x_m": round(end.pose[0], 3), "y_m": round(end.pose[1], 3),
                       "heading_deg": round(end.heading_deg, 2)},
        "pose_error_m": None,
    }
    last = hk[-1].values if hk else {}
    one_boot = len({s.values.get("boot_count") for s in hk}) == 1
    if one_boot and last.get("x_m") is not None and last.get("y_m") is not None:
        out["pose_error_m"] = round(math.hypot(last["x_m"] - end.pose[0], last["y_m"] - end.pose[1]), 3)
    return out


def write_report(folder: Path, summary: dict[str, Any], plots: bool = True) -> list[Path]:
    files: list[Path] = []
    if plots:
        files += write_plots(folder, Path(summary["archive"]))
    summary["files"] = [p.name for p in files] + ["summary.json", "archive/"]
    path = folder / "summary.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    files.append(path)
    return files


def write_plots(folder: Path, archive: Path) -> list[Path]:
    """Telemetry and traverse PNGs from the archive (hil.gs plot functions)."""
    from hil.gs.export import decode_archive
    from hil.gs.mission import Mission
    from hil.gs.plot import plot_parameters, plot_traverse, save_png

    tables = decode_archive(Mission.load(), archive)
    hk = tables.get("hk_rover")
    if hk is None or len(hk) == 0:
        return []
    out = [save_png(plot_parameters(hk, TELEMETRY_PLOT, "rover telemetry"), folder / "telemetry.png")]
    out.append(save_png(plot_traverse(hk, tables["events"], "traverse"), folder / "traverse.png"))
    return out


def check_against_archive(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary's checkable numbers, re-derived from the archive alone."""
    import numpy as np

    from hil.gs.export import decode_archive
    from hil.gs.mission import Mission

    archive = Path(summary["archive"])
    tables = decode_archive(Mission.load(), archive)
    hk = tables["hk_rover"]
    distance = odometry_distance(hk.columns["boot_count"].tolist(), hk.columns["odometer_m"].tolist())
    ver = tables["verification"]
    stages = ver.columns.get("stage", np.array([]))
    ev = tables["events"]
    names = ev.columns.get("event", np.array([]))
    tc = sum(1 for _ in read_records(archive, {KIND_TC}))
    done = stages == "completed"
    completed_ids = {
        (int(p), int(q)) for p, q in zip(ver.columns["packet_id"][done], ver.columns["seq_control"][done], strict=True)
    } if len(stages) else set()
    return {
        "distance_m": round(distance, 3),
        "hk_reports": len(hk),
        "completed_reports": int(done.sum()) if len(stages) else 0,
        "completed_request_ids": completed_ids,
        "events": dict(sorted(Counter(str(n) for n in names).items())),
        "tc_frames_sent": tc,
    }
