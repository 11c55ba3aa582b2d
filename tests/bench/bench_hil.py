"""HIL benchmarks: a lunation in virtual time, the rover's pose and speed against the truth.

    python -m tests.bench.bench_hil                    # every figure
    python -m tests.bench.bench_hil --json hil.json    # ... and written as JSON
    python -m tests.bench.bench_hil --only lunation    # one figure: lunation, traverse, speed, loop
    python -m tests.bench.bench_hil --suite            # also the wall time of pytest tests/hil

Figures (whole loop: ground + queqiao relay + CPython rover with the sim plant, virtual time):
- lunation: a full lunation, 29.53 days of rover time, from 12 h before sunset: the
  afternoon's drive, dusk (HIBERNATE, reason NIGHT), the 14.77-day night, sunrise, a
  morning drive, the rest of the day; wall seconds in all and per phase, the loop's jumps
  per phase and what woke it most (goal: <= 60 s wall on 2 cores);
- traverse: 100 m over seeded terrain (seed 7) with wheel 2 jammed at 40 m: the rover's
  estimate against the true end point, in m and % of the distance (goal: <= 1 %);
- speed: the true peak speed of 200 m/h and 50 m/h drives against the governor (goal: at
  most 2 % over), and the time to 195 m/h against the acceleration limit's 1.95 s;
- loop: simulated seconds per wall second over an hour at 200 m/h and an hour idle.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.bench.report import add_json_option, write_json

ROOT = Path(__file__).resolve().parents[2]
MPH = 1.0 / 3600.0


def _target(trace: bool = False, seed: int = 1) -> tuple[Any, Any, Any]:
    from hil.mission.api import PlantControl, RoverApi
    from hil.mission.loop import LoopConfig, WholeLoop

    w = WholeLoop(LoopConfig(seed=seed, relay="queqiao", archive=True))
    if trace:
        w.loop.wakers = Counter()
    rover = RoverApi(w)
    return w, rover, PlantControl(w, rover)


def lunation() -> dict[str, Any]:
    from tests.hil import sorties

    w, rover, plant = _target(trace=True)
    phases: list[tuple[str, float, float, int, Counter[str]]] = []

    def on_phase(name: str) -> None:
        phases.append((name, time.perf_counter(), w.now(), w.loop.jumps, Counter(w.loop.wakers)))
        print(f"    ({name} at rover day {w.now() / 86400.0:.2f}, {phases[-1][1] - phases[0][1]:.1f} s wall)", flush=True)

    try:
        synodic = sorties._plant_module().SYNODIC_S
        t0 = time.perf_counter()
        r = sorties.lunation(rover, plant, before_dusk_h=12.0, drive_m=5.0, run_s=synodic, on_phase=on_phase)
        wall = time.perf_counter() - t0
    finally:
        w.close()
    per_phase = []
    for (name, wall0, sim0, j0, c0), (_, wall1, sim1, j1, c1) in zip(phases, phases[1:], strict=False):
        top = (c1 - c0).most_common(4)
        per_phase.append({
            "phase": name, "rover_days": (sim1 - sim0) / 86400.0, "wall_s": wall1 - wall0,
            "jumps": j1 - j0, "top_wakers": top,
        })
    return {
        "rover_days": r.end_s / 86400.0, "wall_s": wall, "hibernate_reason": r.hibernate_reason,
        "night_days": None if r.night_s is None else r.night_s / 86400.0, "min_soc": r.min_soc,
        "brownouts": r.brownouts, "drive_after_m": r.drive_after_m, "phases": per_phase,
    }


def traverse() -> dict[str, Any]:
    from tests.hil import sorties

    w, rover, plant = _target()
    try:
        t0 = time.perf_counter()
        r = sorties.terrain_traverse(rover, plant, terrain_seed=7, jam_at_m=40.0)
        wall = time.perf_counter() - t0
    finally:
        w.close()
    return {
        "travelled_m": r.travelled_m, "pose_error_m": r.pose_error_m, "pose_error_pct": r.pose_error_pct,
        "heading_error_deg": r.heading_error_deg, "estimate": [r.estimate.x_m, r.estimate.y_m],
        "truth": [r.true_x_m, r.true_y_m], "detours": len(r.detours), "wall_s": wall,
    }


def speed(speed_mph: float, distance_m: float = 20.0) -> dict[str, Any]:
    from tests.hil import truth

    w, rover, plant = _target()
    near = (speed_mph - 5.0) * MPH
    try:
        rover.await_mode("STANDBY", timeout=60)
        rec = truth.Recorder(truth.world(plant), speeds=(near,))
        try:
            rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=distance_m, speed_mph=speed_mph, timeout=7200)
        finally:
            rec.close()
    finally:
        w.close()
    peak = rec.peak_v_mps / MPH
    reached = rec.reached_s(near)
    return {
        "governor_mph": speed_mph, "true_peak_mph": peak, "over_pct": 100.0 * (peak / speed_mph - 1.0),
        "to_within_5mph_s": None if reached is None or rec.first_moving_s is None else reached - rec.first_moving_s,
        "accel_limit_s": (speed_mph - 5.0) / 100.0,
    }


def one_hour(drive: bool) -> dict[str, float]:
    w, rover, _ = _target()
    try:
        rover.await_telemetry("mode", None, timeout=60)
        if drive:
            rover.send_command("DRIVE_DISTANCE", distance_m=200.0, speed_mph=200.0)
        t0_v, t0_w, t0_c = w.now(), time.perf_counter(), time.process_time()
        rover.wait(3600.0)
        sim, wall, cpu = w.now() - t0_v, time.perf_counter() - t0_w, time.process_time() - t0_c
    finally:
        w.close()
    return {"sim_s": sim, "wall_s": wall, "cpu_s": cpu, "x_wall": sim / wall, "x_cpu": sim / cpu}


def suite() -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/hil", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True,
    )
    wall = time.perf_counter() - t0
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-200:]
    return {"wall_s": wall, "result": tail}


def _run(name: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # a figure the rover cannot give yet is reported, not fatal
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.bench_hil", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_json_option(ap)
    ap.add_argument("--only", choices=("lunation", "traverse", "speed", "loop"), action="append")
    ap.add_argument("--suite", action="store_true", help="also time pytest tests/hil (virtual target)")
    args = ap.parse_args(argv)
    want = set(args.only or ("lunation", "traverse", "speed", "loop"))
    out: dict[str, Any] = {}
    if "lunation" in want:
        r = out["lunation"] = _run("lunation", lunation)
        print("lunation (29.53 days of rover time, whole loop, virtual time):")
        if "error" in r:
            print(f"  failed: {r['error']}")
        else:
            print(f"  {r['wall_s']:.1f} s wall for {r['rover_days']:.2f} rover days (goal <= 60 s); "
                  f"hibernated for {r['hibernate_reason']}, night {r['night_days'] or 0:.2f} d, "
                  f"lowest charge {r['min_soc']:.1%}, {r['brownouts']} brown-outs")
            for p in r["phases"]:
                top = ", ".join(f"{n} {k}" for n, k in p["top_wakers"])
                print(f"    {p['phase']:9} {p['rover_days']:6.2f} d  {p['wall_s']:6.1f} s wall  "
                      f"{p['jumps']:8d} jumps  ({top})")
    if "traverse" in want:
        r = out["traverse"] = _run("traverse", traverse)
        print("traverse (100 m over seeded terrain, wheel 2 jammed at 40 m):")
        if "error" in r:
            print(f"  failed: {r['error']}")
        else:
            print(f"  pose error vs truth {r['pose_error_m']:.3f} m = {r['pose_error_pct']:.2f} % of "
                  f"{r['travelled_m']:.1f} m (goal <= 1 %); heading {r['heading_error_deg']:+.2f} deg; "
                  f"{r['detours']} detours; {r['wall_s']:.1f} s wall")
    if "speed" in want:
        out["speed"] = [_run("speed", speed, 200.0), _run("speed", speed, 50.0, 5.0)]
        print("true speed vs the governor:")
        for r in out["speed"]:
            if "error" in r:
                print(f"  failed: {r['error']}")
                continue
            acc = r["to_within_5mph_s"]
            print(f"  {r['governor_mph']:5.0f} m/h: true peak {r['true_peak_mph']:.1f} m/h, "
                  f"{r['over_pct']:+.2f} % (goal <= +2 %); within 5 m/h after "
                  f"{'-' if acc is None else f'{acc:.2f}'} s (limit {r['accel_limit_s']:.2f} s)")
    if "loop" in want:
        out["loop"] = {"traverse_hour": one_hour(True), "idle_hour": one_hour(False)}
        print("whole loop, one hour of rover time:")
        for k, r in out["loop"].items():
            print(f"  {k:14} {r['x_wall']:7.0f}x wall  {r['x_cpu']:7.0f}x CPU  ({r['wall_s']:.2f} s wall)")
    if args.suite:
        r = out["suite"] = suite()
        print(f"pytest tests/hil: {r['wall_s']:.1f} s wall ({r['result']})")
    write_json(args.json, out, "hil")
    return 0


if __name__ == "__main__":
    sys.exit(main())
