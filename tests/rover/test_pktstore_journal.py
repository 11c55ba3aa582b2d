"""The packet store's journal (firmware_py.pktstore) under MicroPython: what a reboot reloads,
the sequence count it continues from, a power cut at every octet of an append, rotation, and
RAM only where the filesystem is missing or fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import PICO_HEAPSIZE

_SETUP = """
import gc, json, os
from firmware_py.pktstore import PktStore
from firmware_py.pktjournal import Journal, SEQ_AHEAD
def journaled(root, octets=2048):
    st = PktStore(4096, 96, 60)
    nxt = Journal(st, octets).open(root)
    return st, nxt
from firmware_py.spacepacket import TmPacketBuilder
ROOT = %r
b = TmPacketBuilder(32)
def send(st, i):
    # a report, an event or (every third) a housekeeping report; returns (seq, octets, service)
    svc = (1, 5, 3)[i %% 3]
    seq = b.seq_count
    p = b.build(svc, 25 if svc == 3 else 7, bytes([i & 0xFF] * (3 + i %% 11)))
    st.put(p, svc)
    return seq, bytes(p), svc
def held(st):
    out = []
    for k in range(st.count):
        i = (st._tail + k) %% st.slots
        o = st._off[i]
        out.append(bytes(st._ring[o:o + st._len[i]]).hex())
    return out
def read(name):
    with open(ROOT + "/" + name, "rb") as f:
        return f.read()
def write(name, data):
    with open(ROOT + "/" + name, "wb") as f:
        f.write(data)
def records(j):
    # the test's own reading of a journal file: (offset, length, kind 0 packet / 1 mark)
    assert j[0:2] == b"PJ"
    out, o = [], 6
    while o < len(j):
        ln = 5 if j[o] == 0xFF else ((j[o + 4] << 8) | j[o + 5]) + 7
        out.append((o, ln, 1 if j[o] == 0xFF else 0))
        o += ln
    return out, o == len(j)
"""


def _run(run_mpy: Any, root: Path, body: str, heapsize: str = PICO_HEAPSIZE, timeout: float = 120) -> dict[str, Any]:
    out = run_mpy(_SETUP % str(root) + body, heapsize=heapsize, timeout=timeout).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_a_reboot_reloads_every_report_and_event_and_continues_the_count(run_mpy: Any, tmp_path: Path) -> None:
    r = _run(run_mpy, tmp_path, """
st, first = journaled(ROOT)
sent = [send(st, i) for i in range(40)]
st.journal.close()
# the next boot
j = st.journal
st2, nxt = journaled(ROOT)
print(json.dumps({"first": first, "next": nxt, "held": held(st2), "reloaded": st2.journal.reloaded,
                  "sent": [(q, p.hex(), s) for q, p, s in sent], "ram_note": st2.ram_note,
                  "written": j.written, "records": j.records,
                  "ahead": SEQ_AHEAD}))
""")
    assert r["first"] == 0 and r["ram_note"] is None
    reports = [p for _, p, s in r["sent"] if s != 3]
    assert r["held"] == reports and r["reloaded"] == len(reports)  # housekeeping is not journaled
    last = r["sent"][-1][0]
    assert last < r["next"] <= last + r["ahead"]  # no count of the last boot is used again
    # one record per report and event, one mark (the boot's), the header: octets as sent
    assert r["records"] == len(reports) + 1
    assert r["written"] == 6 + 5 + sum(len(p) // 2 for p in reports)


def test_a_power_cut_at_any_octet_of_an_append_keeps_every_complete_record(run_mpy: Any, tmp_path: Path) -> None:
    r = _run(run_mpy, tmp_path, """
st, _ = journaled(ROOT)
for i in range(30):
    send(st, i)
st.journal.close()
whole = read("pktstore.0")
recs, clean = records(whole)
ends = [o + ln for o, ln, kind in recs]
bad = []
cases = 0
for cut in range(len(whole) + 1):
    write("pktstore.0", whole[:cut])
    s2, nxt = journaled(ROOT)
    # what must come back: every packet record that ends within the cut
    want = [whole[o:o + ln].hex() for o, ln, kind in recs if kind == 0 and o + ln <= cut]
    got = held(s2)
    # and the journal goes on: one more report after the cut is reloaded by the next boot
    p = b.build(1, 7, b"after")
    s2.put(p, 1)
    s2.journal.close()
    s3, _ = journaled(ROOT)
    after = held(s3)
    s3.journal.close()
    cases += 1
    if got != want or after != want + [bytes(p).hex()] or s2.ram_note is not None:
        bad.append((cut, len(got), len(want), len(after)))
    for name in ("pktstore.0", "pktstore.1"):
        try:
            os.remove(ROOT + "/" + name)
        except OSError:
            pass
print(json.dumps({"cases": cases, "bad": bad[:5], "records": len(recs), "clean": clean}))
""", timeout=300)
    assert r["clean"] and r["records"] > 20
    assert r["cases"] > 500  # every octet of the file was a cut point
    assert r["bad"] == []


def test_rotation_keeps_the_newest_records_within_two_files(run_mpy: Any, tmp_path: Path) -> None:
    r = _run(run_mpy, tmp_path, """
st, _ = journaled(ROOT, 512)
sent = [send(st, i) for i in range(300)]
st.journal.close()
sizes = [len(read(n)) for n in ("pktstore.0", "pktstore.1")]
st2, nxt = journaled(ROOT, 512)
print(json.dumps({"sizes": sizes, "held": held(st2), "next": nxt, "last": sent[-1][0],
                  "reports": [p.hex() for q, p, s in sent if s != 3]}))
""", heapsize="2M")  # the script's own list of 300 packets
    assert all(n <= 512 for n in r["sizes"])
    held = r["held"]
    # the newest reports, in order, with nothing missing between them
    assert len(held) > 512 // 30 and held == r["reports"][-len(held):]
    assert r["last"] < r["next"] <= r["last"] + 128


def test_no_filesystem_or_a_write_error_leaves_the_store_in_ram_and_says_so_once(run_mpy: Any, tmp_path: Path) -> None:
    r = _run(run_mpy, tmp_path, """
st, nxt = journaled(ROOT + "/no/such/folder")
send(st, 0)
none = [nxt, st.ram_note, st.count, st.journal is None]
class Full:
    def write(self, b):
        raise OSError(28)  # ENOSPC
    def flush(self):
        pass
    def close(self):
        pass
st, _ = journaled(ROOT)
st.journal._f = Full()
for i in range(6):
    send(st, i)
fail = [st.ram_note, st.count, st.journal is None]
print(json.dumps({"none": none, "fail": fail}))
""")
    assert r["none"][0] == 0 and r["none"][1][0] == 1 and r["none"][2:] == [1, True]  # NO_FILESYSTEM; kept in RAM
    assert r["fail"] == [[2, 28], 4, True]  # WRITE_ERROR, ENOSPC; every report and event still in the ring


def test_journaled_puts_allocate_nothing(run_mpy: Any, tmp_path: Path) -> None:
    r = _run(run_mpy, tmp_path, """
st, _ = journaled(ROOT, 16384)  # no rotation here (a rotation opens the other file)
p = b.build(1, 7, b"abcd")
q = b.build(3, 25, bytes(40))
st.put(p, 1)
gc.collect()
a = gc.mem_alloc()
for i in range(50):
    st.put(p, 1)   # a journal record each
    st.put(q, 3)
gc.collect()
a = gc.mem_alloc()  # (the first calls may allocate once)
for i in range(50):
    st.put(p, 1)
    st.put(q, 3)
d = gc.mem_alloc() - a
print(json.dumps({"alloc": d, "records": st.journal.records}))
""")
    assert r["records"] > 50
    assert r["alloc"] == 0, r


def test_the_rover_says_once_that_its_store_is_ram_only_when_the_journal_cannot_be_written(tmp_path: Path) -> None:
    """The app's side, on CPython (the same firmware code): the journal's files cannot be made
    (folders stand where they go), so the rover reports TM_STORE_RAM_ONLY (NO_FILESYSTEM) once,
    and its packet count restarts at each boot as before."""
    from tests.rover.ground import make_root
    from tests.rover.mpy_runner import Runner

    root = make_root(tmp_path / "rover")
    for name in ("pktstore.0", "pktstore.1"):
        (tmp_path / "rover" / name).mkdir()
    r = Runner(root, board={"watchdog": {"timeout_ms": 5000}, "tm_store_journal_octets": 2048})
    r.run_s(5)
    said = [args for eid, args in r.events if eid == 33]
    assert len(said) == 1 and said[0][0] == 1, r.events  # NO_FILESYSTEM, once
    rover = r.rover
    assert rover is not None
    assert rover.store.journal is None and rover.store.count > 0  # RAM only, still keeping TM
