"""Plant benchmarks (figures, not pass/fail): python -m tests.bench.bench_plant

The sim HAL's update (plant step, sensors) per control-loop iteration while driving over
seeded terrain (the Chang'e-4 rock abundance) with six placed rocks ahead, under CPython and under the MicroPython unix port (-X
heapsize=192K, sources compiled with mpy-cross), with the heap allocated per update
(gc.mem_alloc, gc off); and the wall time of a 29.5-day lunation of the plant alone
stepped in one-minute updates (a hibernating rover's wake period).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from firmware_py.hal.plant import SYNODIC_S  # noqa: E402
from firmware_py.hal.sim import SimHal  # noqa: E402
from tests.bench.report import add_json_option, write_json  # noqa: E402

DRIVE = """
hal = SimHal({}, None, seed=3)
p = hal.plant
p.set_terrain(21)
for k in range(6):
    p.add_rock(1.5 + k * 1.2, 0.5 - 0.2 * k, 0.04 + 0.03 * k)
hal.update(0)
hal.motors_enable(True)
for i in range(6):
    hal.set_motor(i, 22000)
t = 0
for _ in range(100):
    t += 50
    hal.update(t)
"""

MPY_SCRIPT = r"""
import sys
sys.path.insert(0, {mpy!r})
import gc, time
from firmware_py.hal.sim import SimHal
""" + DRIVE + r"""
N = 1000
gc.collect()
t0 = time.ticks_us()
for _ in range(N):
    t += 50
    hal.update(t)
us = time.ticks_diff(time.ticks_us(), t0) / N
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
for _ in range(4):
    t += 50
    hal.update(t)
alloc = (gc.mem_alloc() - a0) / 4
gc.enable()
print('mpy', us, alloc, gc.mem_free())
"""


def cpython_update_us(n: int = 5000) -> float:
    g: dict[str, object] = {"SimHal": SimHal}
    exec(DRIVE, g)
    hal: SimHal = g["hal"]  # type: ignore[assignment]
    t = int(g["t"])  # type: ignore[call-overload]
    t0 = time.perf_counter()
    for _ in range(n):
        t += 50
        hal.update(t)
    return (time.perf_counter() - t0) / n * 1e6


def lunation_wall_s() -> float:
    hal = SimHal({}, None, seed=1)
    p = hal.plant
    p.set_sun(0.0)
    hal.hibernate(True)
    hal.heater(True)
    t0 = time.perf_counter()
    now = 0
    hal.update(0)
    for _ in range(int(SYNODIC_S / 60)):
        now = (now + 60000) & 0x3FFFFFFF
        hal.update(now)
    return time.perf_counter() - t0


def _micropython() -> str | None:
    p = Path(sys.executable).parent / "micropython"
    return str(p) if p.exists() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_json_option(ap)
    args = ap.parse_args()
    figures = measure()
    write_json(args.json, figures, "plant")


def measure() -> dict[str, float]:
    figures = {"cpython_update_us": cpython_update_us(), "cpython_lunation_wall_s": lunation_wall_s()}
    print(f"CPython: sim HAL update while driving over seeded terrain with rocks: {figures['cpython_update_us']:.1f} us")
    print(f"CPython: a 29.5-day lunation of the plant in 1-minute updates: {figures['cpython_lunation_wall_s']:.2f} s wall")
    mp = _micropython()
    if mp is None:
        print("no micropython unix port: MicroPython figures skipped")
        return figures
    from tests.rover.test_micropython import compile_tree

    with tempfile.TemporaryDirectory() as tmp:
        tree = compile_tree(Path(tmp))
        out = subprocess.run([mp, "-X", "heapsize=192K", "-c", MPY_SCRIPT.replace("{mpy!r}", repr(tree))],
                             capture_output=True, text=True, timeout=300)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("mpy")]
        if not line:
            print("MicroPython run failed:", out.stderr[-500:])
            return figures
        _, us, alloc, free = line[-1].split()
        figures.update(mpy_update_us=float(us), mpy_alloc_per_update_b=float(alloc), mpy_free_b=float(free))
        print(f"MicroPython unix port: sim HAL update while driving: {float(us):.0f} us, "
              f"{float(alloc):.0f} octets allocated per update (float boxes), {free} octets free")
    return figures


if __name__ == "__main__":
    main()
