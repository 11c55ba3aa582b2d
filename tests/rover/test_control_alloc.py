"""The control loop allocates nothing under MicroPython, through a whole drive: the ramp,
the cruise, a pose fix, the stop, the wait for the at-rest fix and the hazard checks.

The unix port with the firmware compiled by mpy-cross; the heap is larger than a Pico's
because the plant model (a simulator, floats) runs in the same interpreter here. Periods
that emit an event (a report allocates its packet) are left out of the count, and so are
the idle periods before the drive (the first one reads the parameters into integers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.rover.ground import make_root
from tests.rover.test_micropython import PRELUDE, compile_tree

pytestmark = pytest.mark.micropython

BODY = """
rv = r.rover
dr = rv.drive
orig = dr.step
count = [0, 0, 0]  # octets allocated, periods measured, periods with an event
where = []

def step(dt):
    e0 = rv.events.emitted
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    orig(dt)
    b = gc.mem_alloc()
    gc.enable()
    if rv.events.emitted == e0 and (dr.kind or count[1]):
        count[0] += b - a
        count[1] += 1
        if b - a and len(where) < 8:
            where.append((count[1], b - a, dr.phase, dr.kind, dr.nav.fixes))
    else:
        count[2] += 1

dr.step = step
req = r.send(200, 2, struct.pack('>ff', 2.0, 200.0))
r.run_s(120, lambda: r.done(req))
print(json.dumps({'alloc': count[0], 'periods': count[1], 'evented': count[2],
                  'fixes': dr.nav.fixes, 'rep': r.reports(req), 'where': where}))
"""


def test_the_control_loop_allocates_nothing_through_a_drive(run_mpy: Any, tmp_path: Path) -> None:
    tree = compile_tree(tmp_path / "mpy")
    root = make_root(tmp_path / "rover")
    proc = run_mpy(PRELUDE.format(root=root, mpy=tree) + BODY, heapsize="1M", timeout=300)
    out = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    assert out["rep"][-1] == [7, None]
    assert out["fixes"] >= 2  # a fix on the way and the one at rest
    assert out["periods"] > 500
    assert out["alloc"] == 0, out["where"]
