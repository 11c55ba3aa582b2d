"""Run a mission scenario on a target and write its report folder.

    result = run_mission(MissionSpec(scenario="sortie", seed=1, out=Path("mission")))

The report folder holds:
    archive/        the ground's session archive (hil.gs archive format: `farside gs replay`)
    telemetry.png   pose, speed, battery, tilt and wheel currents over rover time
    traverse.png    the tracks on a map with the wheel faults and hazards
    summary.json    distance driven, faults met and survived, commands sent and verified,
                    link statistics, rover time and wall time

The summary's numbers come from the live ground session; `check_against_archive` re-derives
them from the archive alone (the CI test compares the two).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import FarsideError
from hil.gs.archive import KIND_TC, read_records
from hil.mission.api import PlantControl, RelayControl, RoverApi
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


def run_mission(spec: MissionSpec, on_step: Callable[[StepRecord], None] | None = None) -> MissionResult:
    """Run the scenario, then write the report folder (also when the scenario failed)."""
    run = scenario(spec.scenario)
    spec.out.mkdir(parents=True, exist_ok=True)
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
        ctx = MissionContext(rover, relay, plant, spec.seed, on_step=on_step)
        try:
            run(ctx)
        except (AssertionError, FarsideError) as exc:
            error = str(exc)
        wall_s = time.perf_counter() - wall0
        summary = summarize(spec, rover, ctx, wall_s, error)
    finally:
        harness.close()
    files = write_report(spec.out, summary, plots=spec.plots)
    return MissionResult(summary, spec.out, not error, error, files)


def summarize(spec: MissionSpec, rover: RoverApi, ctx: MissionContext, wall_s: float, error: str) -> dict[str, Any]:
    g = rover.ground
    hk = g.history.hk
    runs = [(s.values["boot_count"], float(s.values["odometer_m"])) for s in hk if "odometer_m" in s.values]
    # odometry restarts at a boot: sum the distance of each boot's run
    distance = 0.0
    for (b0, o0), (b1, o1) in zip(runs, runs[1:], strict=False):
        if b0 == b1:
            distance += max(0.0, o1 - o0)
    stages = [g.reports(t) for t in g.tracks]
    verified = sum(1 for s in stages if "completed" in s)
    failures = []
    for t in g.tracks:
        rep = t.failure()
        if rep is not None:
            failures.append({"command": t.name, "stage": rep.stage, "reason": g.failure_name(rep)})
    events = Counter(e.name for e in g.history.events)
    link = rover.link_counters()
    relay = link.get("relay", {})
    last = hk[-1].values if hk else {}
    rover_s = rover.now()
    return {
        "scenario": spec.scenario,
        "seed": spec.seed,
        "target": spec.target,
        "relay": relay.get("profile", "none"),
        "ok": not error,
        "error": error,
        "rover_time_s": round(rover_s, 3),
        "wall_s": round(wall_s, 3),
        "speedup": round(rover_s / wall_s, 1) if wall_s > 0 else None,
        "distance_m": round(distance, 3),
        "final_pose": {k: last.get(k) for k in ("x_m", "y_m", "heading_deg")},
        "final_mode": last.get("mode"),
        "hk_reports": len(hk),
        "faults": [vars(f) for f in ctx.log.faults],
        "faults_met": len(ctx.log.faults),
        "faults_survived": sum(1 for f in ctx.log.faults if f.survived),
        "steps": [vars(s) for s in ctx.log.steps],
        "commands": {
            "sent": len(g.tracks),
            "verified": verified,
            "verified_request_ids": [list(t.request_id) for t, st in zip(g.tracks, stages, strict=True) if "completed" in st],
            # every TM 1/7 received, including those of time-tagged commands the rover released
            "completed_reports": sum(
                1 for reps in g.state.verifications.values() for r in reps if r.stage == "completed"
            ),
            "failed": len(failures),
            "failures": failures,
            "by_name": dict(Counter(t.name for t in g.tracks)),
        },
        "events": dict(sorted(events.items())),
        "link": {
            "tc_frames_sent": link["tc_frames_sent"],
            "tm_frames_ok": link["tm_frames_ok"],
            "tm_frames_bad": link["tm_frames_bad"],
            "tm_frames_lost": link["tm_frames_lost"],
            "cop1": link["cop1"],
            "relay": relay,
        },
        "archive": str(rover.h.archive_path),
    }


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
    odo = hk.columns["odometer_m"].astype(np.float64)
    boots = hk.columns["boot_count"]
    same = boots[1:] == boots[:-1]
    distance = float(np.clip(np.diff(odo), 0, None)[same].sum()) if len(odo) > 1 else 0.0
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
