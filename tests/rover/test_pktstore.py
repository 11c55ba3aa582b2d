"""The packet store (firmware_py.pktstore) under MicroPython: what it keeps, what it
evicts, what a retrieval sends again, and what it costs on the Pico's heap."""

from __future__ import annotations

import json
from typing import Any

from protocols.tm_frame import TmDemultiplexer
from tests.conftest import PICO_HEAPSIZE

_SETUP = """
import gc, json
from firmware_py.pktstore import PktStore
from firmware_py.spacepacket import TmPacketBuilder
from firmware_py.tm_frame import TmFramer
frames = []
def write(mv):
    frames.append(bytes(mv))
b = TmPacketBuilder(32)
"""


def _run(run_mpy: Any, body: str, heapsize: str = PICO_HEAPSIZE) -> dict[str, Any]:
    out = run_mpy(_SETUP + body, heapsize=heapsize).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_store_keeps_every_report_and_one_hk_in_ten_and_sends_a_range_again(run_mpy: Any) -> None:
    r = _run(run_mpy, """
st = PktStore(4096, 64, 10)
st.attach(TmFramer(171, 1, 256, write, None, asm=False))
sent = []
for i in range(100):
    svc = 3 if i % 2 else 1
    p = b.build(svc, 25 if svc == 3 else 7, bytes([i & 0xFF] * (20 if svc == 3 else 4)))
    sent.append(bytes(p).hex())
    st.put(p, svc)
done = []
st.on_done = done.append
assert st.request(10, 20, "tok") == 0
assert st.request(0, 1) == 6   # busy
while st.pump():
    pass
print(json.dumps({"count": st.count, "stored": st.stored, "retrieved": st.retrieved,
                  "done": done, "frames": [f.hex() for f in frames], "sent": sent}))
""")
    assert r["stored"] == 50 + 5  # 50 verification reports, 5 of 50 HK
    assert r["done"] == ["tok"]
    dm = TmDemultiplexer(256, vcid=1)
    got = [p for f in r["frames"] for p in dm.feed(bytes.fromhex(f))]
    # seqs 10..29: the ten reports (even) and the HK of seq 19 (the 10th HK; 29 is the 15th)
    want = [bytes.fromhex(r["sent"][s]) for s in range(10, 30) if s % 2 == 0 or s == 19]
    assert got == want
    assert r["retrieved"] == len(want)


def test_full_store_drops_the_oldest_and_wraps_the_ring(run_mpy: Any) -> None:
    r = _run(run_mpy, """
st = PktStore(1000, 32, 1)
st.attach(TmFramer(171, 1, 256, write, None, asm=False))
import random
random.seed(3)
sent = []
for i in range(400):
    p = b.build(5, 1, bytes(random.getrandbits(8) for _ in range(random.getrandbits(5) + 1)))
    sent.append(bytes(p).hex())
    st.put(p, 5)
held = []
for k in range(st.count):
    i = (st._tail + k) % st.slots
    o = st._off[i]
    held.append((st._seq[i], bytes(st._ring[o:o + st._len[i]]).hex()))
print(json.dumps({"held": held, "sent": sent, "evicted": st.evicted, "count": st.count}))
""", heapsize="2M")
    held = r["held"]
    assert r["count"] == len(held) and r["evicted"] == 400 - len(held)
    # the newest packets, contiguous, each intact
    seqs = [s for s, _ in held]
    assert seqs == list(range(400 - len(held), 400))
    assert all(r["sent"][s] == pkt for s, pkt in held)
    # a ring of 1000 octets with 20-50-octet packets holds at least 20 of them
    assert len(held) >= 20


def test_store_puts_allocate_nothing_and_heap_cost_is_stated(run_mpy: Any) -> None:
    r = _run(run_mpy, """
gc.collect()
f0 = gc.mem_free()
st = PktStore(4096, 96, 10)
st.attach(TmFramer(171, 1, 256, write, None))
gc.collect()
cost = f0 - gc.mem_free()
p = b.build(1, 7, b"abcd")
st.put(p, 1)
gc.collect()
a = gc.mem_alloc()
for i in range(200):
    st.put(p, 1)
    st.put(p, 3)
d = gc.mem_alloc() - a
print(json.dumps({"cost": cost, "alloc": d}))
""")
    # the rover's store: 4 KB ring + 96-entry index + the store's framer: 6,528 octets measured
    # on the 64-bit unix port at the Pico's heap budget (object headers are half that on the
    # RP2040); the journal (firmware_py.pktjournal) adds 608 octets and its code
    assert 4096 <= r["cost"] <= 4096 + 2560, r
    assert r["alloc"] == 0, r
