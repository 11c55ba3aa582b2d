"""The golden vectors of ARCHITECTURE.md on the firmware codec, in CPython and MicroPython."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_py.crc16 import crc16
from firmware_py.spacepacket import TcPacket, TmPacketBuilder
from firmware_py.tc_frame import TcDeframer, build_frame, parse_header

PING_TC = "1801c01600062f11010000ab62"
HK_TM = "0820c0010010200319000000000000000000000102f5c6"
PING_FRAME = "20ab0413001801c01600062f11010000ab62cf39"

# (command line, expected answer) for the MicroPython driver.
GOLDEN_LINES = [
    ("crc 313233343536373839", "29b1"),
    ("crc 313233343536373839" + "29b1", "0000"),
    (f"tcpkt {PING_TC}", "0 1 3 22 15 17 1 0 - 13"),
    ("tmpkt 32 1 0 0 0 0 3 25 0102", HK_TM),
    (f"tcbuild 1 0 171 1 0 {PING_TC}", PING_FRAME),
    (f"tchdr {PING_FRAME}", "1 0 171 1 20 0"),
    (f"deframe 1024 1 00eb90{PING_FRAME}ff", f"{PING_FRAME} 1 0 0 0 1 1"),
]


def test_crc_check_value_and_residue() -> None:
    assert crc16(b"123456789") == 0x29B1
    assert crc16(b"123456789" + bytes.fromhex("29b1")) == 0
    assert crc16(b"0123456789", 1, 10) == 0x29B1
    assert crc16(b"56789", crc=crc16(b"1234")) == 0x29B1


def test_ping_tc_packet_parses_to_its_fields() -> None:
    p = TcPacket()
    assert p.parse(bytes.fromhex(PING_TC)) == 0
    assert (p.apid, p.seq_flags, p.seq_count, p.ack, p.service, p.subservice, p.source_id) == (1, 3, 22, 15, 17, 1, 0)
    assert (p.packet_id, p.seq_ctrl) == (0x1801, 0xC016)
    assert (p.data_start, p.data_end, p.end) == (11, 11, 13)


def test_hk_tm_packet_builds_golden_bytes() -> None:
    t = TmPacketBuilder(apid=0x20)
    t.seq_count = 1
    assert bytes(t.build(3, 25, b"\x01\x02")).hex() == HK_TM
    assert (t.seq_count, t.msg_count) == (2, 1)


def test_ping_bd_frame_builds_and_parses_golden_bytes() -> None:
    buf = bytearray(64)
    n = build_frame(buf, 1, 0, 0x0AB, 1, 0, bytes.fromhex(PING_TC))
    assert bytes(buf[:n]).hex() == PING_FRAME
    assert parse_header(buf) == (1, 0, 0x0AB, 1, 20, 0)


def test_deframer_finds_golden_frame_octet_by_octet() -> None:
    got: list[bytes] = []
    d = TcDeframer(on_frame=lambda m: got.append(bytes(m)))
    for b in bytes.fromhex("00eb90" + PING_FRAME + "ff"):
        d.feed(bytes([b]))
    assert got == [bytes.fromhex(PING_FRAME)]
    assert (d.frames_ok, d.bad_crc, d.garbage, d.pending) == (1, 0, 1, 1)


@pytest.mark.parametrize("batch", ["cpy_batch", "mpy_batch"])
def test_goldens_through_driver(batch: str, request: pytest.FixtureRequest) -> None:
    run: Callable[[list[str]], list[str]] = request.getfixturevalue(batch)
    answers = run([line for line, _ in GOLDEN_LINES])
    assert answers == [want for _, want in GOLDEN_LINES]


@given(data=st.binary(max_size=600), start=st.integers(0, 600), crc=st.integers(0, 0xFFFF))
def test_cpython_fast_crc_agrees_with_the_table_loop(data: bytes, start: int, crc: int) -> None:
    from firmware_py import crc16 as c

    start = min(start, len(data))
    assert c._crc is not c._crc_py  # CPython takes binascii's path
    assert c.crc16(data, start, crc=crc) == c._crc_py(data, start, len(data), crc)
    assert c.crc16(memoryview(bytearray(data)), start, crc=crc) == c._crc_py(data, start, len(data), crc)


_CRC_SCRIPT = """
from firmware_py import crc16 as c
import sys
ok = 0
for line in sys.stdin:
    b = bytes.fromhex(line.strip())
    s = len(b) // 3
    mv = memoryview(b)[s:]
    assert c.crc16(b, s) == c._crc_py(b, s, len(b), 0xFFFF), line
    assert c.crc16(mv, crc=0x1D0F) == c._crc_py(mv, 0, len(mv), 0x1D0F), line
    ok += 1
print(c.NATIVE, c._crc is c._crc_py, ok)
"""


def test_native_crc_agrees_with_the_python_loop_under_micropython(run_mpy: Callable[..., Any]) -> None:
    import random

    rnd = random.Random(7)
    blobs = [bytes(rnd.randrange(256) for _ in range(n)) for n in range(0, 600, 7)]
    out = run_mpy(_CRC_SCRIPT, stdin="\n".join(b.hex() for b in blobs) + "\n").stdout.split()
    # the viper loop is in use (what runs on the Pico): without it this would compare the
    # Python loop with itself
    assert out == ["True", "False", str(len(blobs))]
