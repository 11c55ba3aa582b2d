"""The rover's link security under real MicroPython (the unix port): the rover stepped with its plant (tests/rover/mpy_runner.py), recorded AD and BD
frames replayed after a watchdog reset, a commanded reboot and a power cut, at once and
after the ground resynchronised, judged by the plant's truth; and, with the Pico's heap
limit, a verify that allocates nothing once warm (the heap locked)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.rover.ground import DICT
from tests.security.sdls_ground import key_file

_SCRIPT = """
import sys
sys.path.insert(0, {mpy!r})
import gc, struct
from firmware_py.dictionary import Dictionary
d = Dictionary({root!r} + "/dictionary.json")
gc.collect()
from tests.rover.mpy_runner import Runner

EV_BOOT = 1
EV_AUTH = 16
EV_SA = 30
DRIVE = struct.pack(">ff", 0.3, 200.0)


class R(Runner):
    def send_packet(self, pkt, bypass=0):
        self.spi_seq += 1
        ns = 0 if bypass else self.vs & 0xFF
        n = self.sec.build_frame(self._fbuf, bypass, 0, 171, 1, ns, 1, self.spi_seq, pkt)
        if not bypass:
            self.vs += 1
        f = bytes(self._fbuf[0:n])
        self.rec.append(f)
        self.inject(f)
        return struct.unpack(">HH", pkt[0:4])

    def inject(self, f):
        self.ground.write(b"\\xeb\\x90")
        self.ground.write(f)

    def count(self, eid):
        return len([e for e in self.events if e[0] == eid])


r = R({root!r}, d)
r.rec = []
out = []


def drive(bypass=0):
    req = r.send_packet(r.packet(200, 2, DRIVE), bypass)
    r.run_s(30, lambda: r.done(req))
    return (7, None) in r.reports(req)


for how in ("watchdog", "reboot", "power_cut"):
    r.rec = []
    ok = drive() and drive(1)
    recorded = list(r.rec)
    moved = r.hal.plant.travelled
    boots = r.boots
    if how == "watchdog":
        r.send(250, 1, struct.pack(">BBf", 9, 1, 0.0))
        r.run_s(20, lambda: r.boots > boots)
    elif how == "reboot":
        r.send(200, 9)
        r.run_s(10, lambda: r.boots > boots)
    else:
        r._boot()  # the supply goes off and on: a new rover on the same flash
    moved = r.hal.plant.travelled  # (the plant may settle a little while the rover resets)
    for f in recorded:
        r.inject(f)
    r.run_s(5)
    still = abs(r.hal.plant.travelled - moved) < 1e-3
    first = r.rover.link.auth_rejected
    # the ground resynchronises from SA_STATUS: next = max(next, mark + 1)
    mark = max(e[1][1] for e in r.events if e[0] == EV_SA and e[1][0] == 1)
    r.spi_seq = max(r.spi_seq, mark)
    ping = r.send(17, 1)
    r.run_s(5, lambda: r.done(ping))
    pinged = (7, None) in r.reports(ping)
    for f in recorded:
        r.inject(f)
    r.run_s(5)
    still2 = abs(r.hal.plant.travelled - moved) < 1e-3
    again = drive()
    out.append("%s %d %d %d %d %d %d %d %d" % (how, ok, r.boots > boots, still, first, pinged, still2,
                                              r.rover.link.auth_rejected, again))
for line in out:
    print(line)
"""


@pytest.fixture(scope="module")
def mpy_tree(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The firmware compiled with mpy-cross, as a board runs it (no compile on the heap)."""
    from tests.rover.test_micropython import compile_tree

    return compile_tree(tmp_path_factory.mktemp("mpy"))


@pytest.mark.parametrize("suite", ["aes-gcm", "hmac-sha256"])
def test_replays_after_every_kind_of_reset_under_micropython(
    run_mpy: Callable[..., Any], mpy_tree: str, tmp_path: Path, suite: str
) -> None:
    root = tmp_path / "rover"
    root.mkdir()
    (root / "dictionary.json").write_bytes(json.dumps(DICT, sort_keys=True, separators=(",", ":")).encode())
    (root / "keys.json").write_text(json.dumps(key_file(suite)))
    # The heap: this test is about replays, not the heap budget (tests/rover/test_micropython
    # and tests/bench/bench_pico.py hold the rover to that); the rover and its plant are
    # given room to run whatever else the firmware carries.
    out = run_mpy(_SCRIPT.format(root=str(root), mpy=mpy_tree), heapsize="320K", timeout=600).stdout.splitlines()
    # how, drove AD and BD, booted again, nothing moved, 2 rejected, ping after resync,
    # nothing moved after resync, 4 rejected in all, drove again
    assert out == [f"{how} 1 1 1 2 1 1 4 1" for how in ("watchdog", "reboot", "power_cut")]


_HEAP = """
import gc, micropython
from firmware_py.sdls import Security
from firmware_py import gcm
key = bytes(range(32))
sec = Security({{1: ({suite}, key, 1)}})
buf = bytearray(64)
data = bytes(range(64 - 37))  # a 64-octet frame: 27 octets of data field
n = sec.build_frame(buf, 0, 0, 171, 1, 0, 1, 5, data)
frame = bytes(buf[0:n])
work = bytearray(n)
def once():
    for i in range(n):
        work[i] = frame[i]
    return sec.verify(work, n)
r = [once() for _ in range(3)]
gc.collect()
bad = 0
locked = ""
before = gc.mem_alloc()
micropython.heap_lock()
try:
    for _ in range(20):
        bad += once()
    locked = "ok"
except MemoryError:
    locked = "alloc"
micropython.heap_unlock()
print(n, gcm.NATIVE, locked, gc.mem_alloc() - before, set(r), bad)
"""


@pytest.mark.parametrize("suite", [3, 2])
def test_a_warm_verify_allocates_nothing_under_micropython(run_mpy: Callable[..., Any], suite: int) -> None:
    out = run_mpy(_HEAP.format(suite=suite)).stdout.split()
    assert out == ["64", "True", "ok", "0", "{0}", "0"]
