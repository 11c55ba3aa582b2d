"""Virtual-time speed of the whole loop, and `farside mission` as a whole process.

    python -m tests.bench.bench_mission                    # every figure
    python -m tests.bench.bench_mission --json m.json      # ... and written as JSON
    python -m tests.bench.bench_mission --only traverse    # traverse, idle, lunation, mission

Figures (ground + queqiao relay + CPython rover with the sim plant, on hil.vclock's loop;
rover seconds per CPU second of this process, `time.process_time`):
- traverse: an hour of rover time driving at 200 m/h (goal: 3000x CPU), then the same hour
  again with its parts timed (SPLIT_PARTS): microseconds of CPU per 100 ms control period;
- idle: an hour standing in STANDBY with HK every second (the default: the rover's tasks
  keep their periods), an hour in STANDBY with HK once per 600 s (the idle rover naps in
  virtual time and the loop jumps), and an hour hibernating (goal for an idle or
  hibernating hour: 20,000x CPU);
- lunation: 29.53 days, dusk, the night, sunrise, a drive, the day
  (tests/hil/sorties.lunation; goal: 60 s wall);
- mission: `farside mission` (the default sortie, report with plots, and with --no-plots) as
  a child process: its CPU seconds (user + system; goal: under 2 s with the report), in a
  user's environment (the bytecode cache on, written by an untimed first run).

`--repeat N` runs each hour and each mission N times and keeps the best (the most rover
seconds per CPU second, the least CPU): on a machine shared with other work a single run
can read 20 % slow; the lunation runs once.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench.report import add_json_option, write_json

ROOT = Path(__file__).resolve().parents[2]


def _loop() -> tuple[Any, Any, Any]:
    from hil.mission.api import PlantControl, RoverApi
    from hil.mission.loop import LoopConfig, WholeLoop

    w = WholeLoop(LoopConfig(seed=1, relay="queqiao", archive=True))
    rover = RoverApi(w)
    return w, rover, PlantControl(w, rover)


def _hour(w: Any, rover: Any) -> dict[str, float]:
    t0_v, t0_w, t0_c, j0 = w.now(), time.perf_counter(), time.process_time(), w.loop.jumps
    rover.wait(3600.0)
    sim, wall, cpu = w.now() - t0_v, time.perf_counter() - t0_w, time.process_time() - t0_c
    return {"sim_s": sim, "wall_s": wall, "cpu_s": cpu, "x_wall": sim / wall, "x_cpu": sim / cpu,
            "jumps": w.loop.jumps - j0}


def traverse_hour() -> dict[str, float]:
    w, rover, _ = _loop()
    try:
        rover.await_mode("STANDBY", timeout=60)
        rover.send_command("DRIVE_DISTANCE", distance_m=200.0, speed_mph=200.0)
        return _hour(w, rover)
    finally:
        w.close()


# Where a traverse's CPU goes: each part's time, summed over the hour by wrapping its method
# (a parent's time includes its indented children's); "the rest" is the event loop and the
# rover's task bodies (naps, watchdog check-ins, the clock) around them
SPLIT_PARTS = (
    ("rover control step", "firmware_py.app", "Rover", "control"),
    ("  sensors and plant", "firmware_py.hal.sim", "SimHal", "update"),
    ("  nav, safety, wheel loops", "firmware_py.drive", "Drive", "step"),
    ("rover link (TC in, TM out)", "firmware_py.link", "Link", "poll"),
    ("rover HK build", "firmware_py.telemetry", "Telemetry", "send"),
    ("relay and ground", "hil.mission.loop", "RelayedTarget", "_deliver"),
    ("  ground (decode, archive, COP-1)", "hil.mission.ground", "LoopGround", "feed"),
)


def traverse_split() -> dict[str, Any]:
    """The traverse hour with each of SPLIT_PARTS timed: microseconds of CPU per control
    period and the share of the hour's CPU. The wrappers cost about a microsecond a call,
    so this hour runs slower than traverse_hour's."""
    import importlib

    spent = {label: 0.0 for label, *_ in SPLIT_PARTS}
    calls = {label: 0 for label, *_ in SPLIT_PARTS}
    saved = []
    clock = time.process_time
    for label, module, cls_name, method in SPLIT_PARTS:
        cls = getattr(importlib.import_module(module), cls_name)
        inner = getattr(cls, method)

        def timed(*args: Any, _inner: Any = inner, _label: str = label, **kw: Any) -> Any:
            t = clock()
            try:
                return _inner(*args, **kw)
            finally:
                spent[_label] += clock() - t
                calls[_label] += 1

        saved.append((cls, method, inner))
        setattr(cls, method, timed)
    try:
        w, rover, _ = _loop()
        try:
            rover.await_mode("STANDBY", timeout=60)
            rover.send_command("DRIVE_DISTANCE", distance_m=200.0, speed_mph=200.0)
            for label in spent:
                spent[label], calls[label] = 0.0, 0
            r = _hour(w, rover)
        finally:
            w.close()
    finally:
        for cls, method, inner in saved:
            setattr(cls, method, inner)
    periods = calls[SPLIT_PARTS[0][0]] or 1
    top = [label for label, *_ in SPLIT_PARTS if not label.startswith(" ")]
    parts = {label: {"us_per_period": spent[label] / periods * 1e6, "share": spent[label] / r["cpu_s"]}
             for label in spent}
    rest = r["cpu_s"] - sum(spent[label] for label in top)
    parts["the rest (event loop, task bodies)"] = {"us_per_period": rest / periods * 1e6, "share": rest / r["cpu_s"]}
    return {"periods": periods, "cpu_s": r["cpu_s"], "us_per_period": r["cpu_s"] / periods * 1e6, "parts": parts}


def idle_hour(hk_period_s: float = 1.0, hibernate: bool = False) -> dict[str, float]:
    from tests.hil import sorties, truth

    w, rover, plant = _loop()
    try:
        rover.await_mode("STANDBY", timeout=60)
        if hk_period_s != 1.0:
            rover.send_and_assert_command("HK_SET_PERIOD", sid=1, period_s=hk_period_s, timeout=120)
        if hibernate:  # an hour after sunset: the rover hibernates by itself (reason NIGHT)
            truth.need_world(plant).set_lunar_time(sorties._plant_module().SYNODIC_S / 4.0 + 3600.0)
            rover.await_event("HIBERNATE_ENTER", timeout=7200)
        rover.wait(60.0)
        r = _hour(w, rover)
        r["mode"] = rover.get_telemetry("mode")
        return r
    finally:
        w.close()


def lunation() -> dict[str, Any]:
    from tests.hil import sorties

    w, rover, plant = _loop()
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        r = sorties.lunation(rover, plant, before_dusk_h=12.0, drive_m=5.0, run_s=sorties._plant_module().SYNODIC_S)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        w.close()
    return {"rover_days": r.end_s / 86400.0, "wall_s": wall, "cpu_s": cpu, "hibernate_reason": r.hibernate_reason,
            "brownouts": r.brownouts, "drive_after_m": r.drive_after_m}


def _user_env() -> dict[str, str]:
    """The environment of a user's shell: Python keeps its bytecode cache (__pycache__), as
    it does by default and as a pip install leaves it. A PYTHONDONTWRITEBYTECODE set around
    the bench would have every run compile farside's ~150 modules afresh (about 0.25 s)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def mission(plots: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="farside-bench-") as tmp:
        out = Path(tmp) / "report"
        cmd = [sys.executable, "-m", "hil.cli", "mission", "--out", str(out)] + ([] if plots else ["--no-plots"])
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=_user_env())
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rover_s = summary.get("rover_time_s")
    return {"plots": plots, "exit": proc.returncode, "cpu_s": cpu, "wall_s": wall, "rover_s": rover_s,
            "max_rss_mib": after.ru_maxrss / 1024.0}


def headline(out: dict[str, Any]) -> dict[str, Any]:
    """The figures the goals name, flat: the table's row (the printout has the rest)."""
    fig: dict[str, Any] = {}
    for key in ("traverse_hour", "idle_hour", "idle_hour_hk600", "hibernating_hour"):
        if key in out:
            fig[f"{key}_x_cpu"] = round(out[key]["x_cpu"])
    if "traverse_split" in out:
        sp = out["traverse_split"]
        fig["traverse_us_per_period"] = round(sp["us_per_period"], 1)
        for key, label in (("control", "rover control step"), ("ground", "  ground (decode, archive, COP-1)")):
            fig[f"traverse_{key}_us"] = round(sp["parts"][label]["us_per_period"], 1)
    if "lunation" in out:
        fig["lunation_wall_s"] = round(out["lunation"]["wall_s"], 1)
        fig["lunation_cpu_s"] = round(out["lunation"]["cpu_s"], 1)
    for r in out.get("mission", []):
        fig["mission_cpu_s" if r["plots"] else "mission_no_plots_cpu_s"] = round(r["cpu_s"], 2)
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.bench_mission", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_json_option(ap)
    ap.add_argument("--only", choices=("traverse", "idle", "lunation", "mission"), action="append")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run each hour and mission N times and keep the best (default 1)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, got {args.repeat}")
    n = args.repeat
    want = set(args.only or ("traverse", "idle", "lunation", "mission"))
    out: dict[str, Any] = {}
    print("whole loop, rover seconds per CPU second (virtual time):")
    if "traverse" in want:
        r = out["traverse_hour"] = max((traverse_hour() for _ in range(n)), key=lambda x: x["x_cpu"])
        print(f"  traverse hour (200 m/h)        {r['x_cpu']:9.0f}x CPU {r['x_wall']:9.0f}x wall  (goal 3000x CPU)")
        sp = out["traverse_split"] = traverse_split()
        print(f"  where a traverse's CPU goes ({sp['periods']} control periods, timed: "
              f"{sp['us_per_period']:.0f} us each; 3000x is 33 us):")
        for label, part in sp["parts"].items():
            print(f"    {label:36} {part['us_per_period']:6.1f} us  {100 * part['share']:3.0f} %")
    if "idle" in want:
        for key, label, kw in (
            ("idle_hour", "idle hour, HK 1 s", {}),
            ("idle_hour_hk600", "idle hour, HK 600 s (naps)", {"hk_period_s": 600.0}),
            ("hibernating_hour", "hibernating hour", {"hk_period_s": 600.0, "hibernate": True}),
        ):
            r = out[key] = max((idle_hour(**kw) for _ in range(n)), key=lambda x: x["x_cpu"])  # type: ignore[arg-type]
            print(f"  {label:30} {r['x_cpu']:9.0f}x CPU {r['x_wall']:9.0f}x wall  ({r['jumps']} jumps, {r['mode']})")
        print("  (goal 20,000x CPU for an idle or hibernating hour)")
    if "lunation" in want:
        r = out["lunation"] = lunation()
        print(f"lunation: {r['rover_days']:.2f} rover days in {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU "
              f"(goal <= 60 s wall); hibernated for {r['hibernate_reason']}, {r['brownouts']} brown-outs")
    if "mission" in want:
        mission(True)  # a first run, as a user's first: it writes the bytecode cache the timed runs use
        out["mission"] = [min((mission(p) for _ in range(n)), key=lambda x: x["cpu_s"]) for p in (True, False)]
        for r in out["mission"]:
            what = "with plots" if r["plots"] else "--no-plots"
            print(f"farside mission ({what}): {r['cpu_s']:.2f} s CPU for {r['rover_s'] or 0:.0f} rover s, "
                  f"{r['wall_s']:.2f} s wall, "
                  f"{r['max_rss_mib']:.0f} MiB peak, exit {r['exit']} (goal < 2 s CPU with the report)")
    write_json(args.json, headline(out), "mission")
    return 0


if __name__ == "__main__":
    sys.exit(main())
