"""Rover benchmarks (figures, not pass/fail): python -m tests.bench.bench_rover

Under the MicroPython unix port (-X heapsize=192K, firmware compiled with mpy-cross):
  control-loop cost per iteration (drive.step: odometry, safety, profile, six wheel loops)
  and the sim plant's update, steady-state allocations per iteration (gc.mem_alloc, gc off),
  peak heap with every task running (the real asyncio app for a few seconds, driving),
  HK packet build cost.
Under CPython: simulated seconds per wall second for the firmware plus plant (virtual time).
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

from firmware_py.app import CONTROL_MS  # noqa: E402
from tests.rover.ground import RoverRig, make_root, run_vt  # noqa: E402
from tests.rover.test_micropython import compile_tree  # noqa: E402

MPY_SCRIPT = r"""
import sys
sys.path.insert(0, {mpy!r})
sys.path.insert(1, {repo!r})
import gc, struct, time
from firmware_py.dictionary import Dictionary
d = Dictionary({root!r} + '/dictionary.json')
gc.collect()
from tests.rover.mpy_runner import Runner
r = Runner({root!r}, d)
req = r.send(200, 2, struct.pack('>ff', 50.0, 200.0))
r.run_s(20)  # cruising
rv = r.rover
hal = r.hal
hal._wdt_ms = 0  # the loop is timed alone, nobody feeds the watchdog
N = 500
now = r.now
# control-loop cost: drive.step (firmware) and hal.update (plant) separately
t_ctrl = 0
t_plant = 0
for i in range(N):
    now += {period}
    t0 = time.ticks_us()
    hal.update(now)
    t1 = time.ticks_us()
    rv.drive.step({period})
    t2 = time.ticks_us()
    t_plant += time.ticks_diff(t1, t0)
    t_ctrl += time.ticks_diff(t2, t1)
# allocations per iteration, gc off
gc.collect()
gc.disable()
M = 5
a0 = gc.mem_alloc()
for i in range(M):
    rv.drive.step({period})
a1 = gc.mem_alloc()
gc.collect()
a1b = gc.mem_alloc()
now += {period}
hal.update(now)
a2 = gc.mem_alloc()
gc.enable()
# HK build
t0 = time.ticks_us()
for i in range(200):
    rv.telemetry.build()
t_hk = time.ticks_diff(time.ticks_us(), t0) / 200
gc.collect()
gc.disable()
h0 = gc.mem_alloc()
rv.telemetry.build()
h1 = gc.mem_alloc()
gc.enable()
print('CTRL_US', t_ctrl / N)
print('PLANT_US', t_plant / N)
print('CTRL_ALLOC_B', (a1 - a0) / M)
print('PLANT_ALLOC_B', a2 - a1b)
print('FREE_B', gc.mem_free())
print('HK_US', t_hk)
print('HK_ALLOC_B', h1 - h0)
"""

MPY_PEAK = r"""
import sys
sys.path.insert(0, {mpy!r})
sys.path.insert(1, {repo!r})
import gc
gc.collect()
base = gc.mem_alloc()
from firmware_py.dictionary import Dictionary
d = Dictionary({root!r} + '/dictionary.json')
gc.collect()
after_dict = gc.mem_alloc()
import asyncio, struct
from firmware_py.app import Rover
from firmware_py.hal import link_pair
from firmware_py.hal.sim import SimHal
from tests.rover.mpy_runner import tc_packet
gc.collect()
after_code = gc.mem_alloc()
link, ground = link_pair(4096)
hal = SimHal({{'watchdog': {{'timeout_ms': 5000}}}}, link, 1)
rv = Rover({{'watchdog': {{'timeout_ms': 5000}}}}, hal, {root!r}, link, d)
gc.collect()
after_rover = gc.mem_alloc()
from firmware_py.sdls import Security, load_keys
sec = Security(load_keys({root!r} + '/keys.json'))
buf = bytearray(200)
pkt = tc_packet(1, 200, 2, struct.pack('>ff', 5.0, 200.0))
n = sec.build_frame(buf, 0, 0, 171, 1, 0, 1, 1, pkt)
ground.write(b'\xeb\x90'); ground.write(memoryview(buf)[0:n])
peak = [0, 0]
drain = bytearray(1024)
async def sampler():
    while True:
        a = gc.mem_alloc()
        if a > peak[0]:
            peak[0] = a
        ground.read_into(drain)
        await asyncio.sleep_ms(5)
async def main():
    gc.threshold(2048)  # collect after every 2 KB: the peak sampled is live data + < 2 KB
    asyncio.create_task(sampler())
    t = asyncio.create_task(rv.run())
    await asyncio.sleep_ms({secs} * 1000)
    gc.collect()
    peak[1] = gc.mem_alloc()
    t.cancel()
asyncio.run(main())
print('BASE_B', base)
print('DICT_B', after_dict - base)
print('CODE_B', after_code - after_dict)
print('ROVER_B', after_rover - after_code)
print('PEAK_B', peak[0])
print('LIVE_B', peak[1])
print('ARMED', int(rv.safety.armed), 'MODE', rv.modes.mode)
"""


def _micropython() -> str | None:
    p = Path(sys.executable).parent / "micropython"
    return str(p) if p.exists() else None


def _figures(out: str) -> dict[str, float]:
    res = {}
    for ln in out.splitlines():
        parts = ln.split()
        if len(parts) >= 2 and parts[0].isupper():
            try:
                res[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from tests.bench.report import add_json_option, write_json

    add_json_option(ap)
    args = ap.parse_args()
    figures: dict[str, float] = {}
    tmp = Path(tempfile.mkdtemp())
    mp = _micropython()
    if mp:
        mpy = compile_tree(tmp / "mpy")
        root = make_root(tmp / "root")
        proc = subprocess.run(
            [mp, "-X", "heapsize=192K", "-c", MPY_SCRIPT.format(mpy=mpy, repo=str(ROOT), root=root, period=CONTROL_MS)],
            capture_output=True, text=True, timeout=300,
        )
        if proc.returncode:
            print(proc.stdout, proc.stderr)
        f = _figures(proc.stdout)
        figures.update({f"mpy_{k.lower()}": v for k, v in f.items()})
        print("MicroPython unix port, -X heapsize=192K, mpy-cross compiled firmware")
        print(f"  control loop (drive.step, 6 wheels)   {f['CTRL_US']:8.1f} us/iteration ({CONTROL_MS} ms period)")
        print(f"  sim plant update ({CONTROL_MS} ms of plant)    {f['PLANT_US']:8.1f} us/iteration")
        print(f"  allocations, control loop             {f['CTRL_ALLOC_B']:8.1f} B/iteration")
        print(f"  allocations, sim plant                {f['PLANT_ALLOC_B']:8.1f} B/iteration")
        print(f"  HK 3/25 build (51 parameters)         {f['HK_US']:8.1f} us  ({f['HK_ALLOC_B']:.0f} B allocated)")
        root2 = make_root(tmp / "root2")
        proc = subprocess.run(
            [mp, "-X", "heapsize=192K", "-c", MPY_PEAK.format(mpy=mpy, repo=str(ROOT), root=root2, secs=4)],
            capture_output=True, text=True, timeout=300,
        )
        if proc.returncode:
            print(proc.stdout, proc.stderr)
        f = _figures(proc.stdout)
        figures.update({f"mpy_{k.lower()}": v for k, v in f.items()})
        print(f"  peak heap, all tasks running, driving {f['PEAK_B'] / 1024:8.1f} KB (gc.threshold 2 KB, sampled every 5 ms)")
        print(f"  live heap after gc.collect            {f['LIVE_B'] / 1024:8.1f} KB, of which:")
        print(f"    interpreter at start                {f['BASE_B'] / 1024:8.1f} KB")
        print(f"    dictionary tables                   {f['DICT_B'] / 1024:8.1f} KB")
        print(f"    firmware bytecode (.mpy in RAM)     {f['CODE_B'] / 1024:8.1f} KB  (0 when frozen into flash)")
        print(f"    rover objects and buffers at boot   {f['ROVER_B'] / 1024:8.1f} KB  (incl. 2 x 4 KB test pipes)")
        print(f"  peak heap without bytecode            {(f['PEAK_B'] - f['CODE_B']) / 1024:8.1f} KB")
    else:
        print("no micropython unix port: MicroPython figures skipped")

    rig = RoverRig(make_root(tmp / "cpy"))

    async def script(rig: RoverRig) -> float:
        import asyncio

        req = rig.send("DRIVE_DISTANCE", 10.0, 200.0)
        await rig.wait_for(lambda: any(s == 7 for s, _ in rig.reports(req)), 400)
        return asyncio.get_running_loop().time()

    t0 = time.perf_counter()
    sim_s = run_vt(rig, script)
    wall = time.perf_counter() - t0
    import struct

    from firmware_py.dictionary import Dictionary
    from tests.rover.mpy_runner import Runner

    root = make_root(tmp / "stepped")
    r = Runner(root, Dictionary(root + "/dictionary.json"))
    req = r.send(200, 2, struct.pack(">ff", 10.0, 200.0))
    t0 = time.perf_counter()
    r.run_s(400, lambda: r.done(req))
    wall2 = time.perf_counter() - t0
    sim2 = (r.now - 1000) / 1000
    print("CPython, firmware + plant alone (stepped 50 ms periods, no asyncio, no ground)")
    print(f"  10 m drive at 200 m/h: {sim2:.0f} simulated s in {wall2:.2f} wall s = {sim2 / wall2:.0f} simulated s per wall s")
    print("CPython, virtual-time loop, firmware + plant + ground codec")
    print(f"  10 m drive at 200 m/h: {sim_s:.0f} simulated s in {wall:.2f} wall s = {sim_s / wall:.0f} simulated s per wall s")
    figures.update(stepped_sim_s_per_wall_s=sim2 / wall2, vt_sim_s_per_wall_s=sim_s / wall)
    write_json(args.json, figures, "rover")


if __name__ == "__main__":
    main()
