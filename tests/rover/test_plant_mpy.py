"""The plant under the MicroPython unix port with the Pico heap limit: a smoke run of the
sim HAL over seeded terrain with a rock, a slope and a jammed wheel, then a hibernating
night in long steps, with the heap measured before and after the drive (no growth: the
control loop allocates no lasting objects)."""

from __future__ import annotations

import json
from typing import Any

SCRIPT = """
import gc, json
from firmware_py.hal.sim import SimHal
hal = SimHal({}, None, seed=3)
p = hal.plant
p.set_terrain(21)
p.add_rock(2.5, 0.5, 0.15)
p.set_wheel_fault(4, 1)
hal.update(0)
hal.motors_enable(True)
for i in range(6):
    hal.set_motor(i, 22000)
t = 0
seen = 0
pmax = 0.0
def run(n):
    global t, seen, pmax
    for _ in range(n):
        t += 50
        hal.update(t)
        if hal.haz_n:
            seen += 1
        a = abs(p.pitch_deg)
        if a > pmax:
            pmax = a
run(200)
gc.collect()
free0 = gc.mem_free()
run(2000)
gc.collect()
free1 = gc.mem_free()
out = {'x': p.x, 'travelled': p.travelled, 'enc0': hal.enc[0], 'vo': hal.vo_seq, 'seen': seen,
       'pitch_max': pmax, 'leak': free0 - free1}
for i in range(6):
    hal.set_motor(i, 0)
hal.update(t + 1000)
p.set_sun(0.0)
hal.hibernate(True)
hal.heater(True)
soc0 = p.soc
for k in range(24 * 14):
    t += 3600000
    hal.update(t & 0x3FFFFFFF)
out.update({'soc0': soc0, 'soc1': p.soc, 'temp': p.temp_board, 'sun': hal.sun_elev_cdeg, 'powered': p.powered})
print(json.dumps(out))
"""


def test_plant_smoke_on_the_unix_port(run_mpy: Any) -> None:
    proc = run_mpy(SCRIPT, timeout=300)
    out = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    assert 5.0 < out["travelled"] < 8.0
    assert out["enc0"] / 5000 > out["travelled"]  # slip: the encoders over-read
    assert out["vo"] >= 5 and out["seen"] > 0 and out["pitch_max"] > 0.3
    assert out["leak"] < 2048, f"the heap shrank by {out['leak']} octets over 2000 updates"
    assert out["powered"] and 0.5 < out["soc1"] < out["soc0"]
    assert abs(out["temp"] - -35.0) < 0.5
    assert out["sun"] < 0
