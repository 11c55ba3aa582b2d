"""The rover's TC deframer: every valid frame in a noisy stream, fed in chunks of any size,
comes out once, with exact drop counts, and it allocates nothing per received octet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from firmware_py.tc_frame import TcDeframer
from protocols import strategies as pst
from protocols.stream import TC_START
from protocols.tc_frame import build_tc_frame


def deframe(chunks: list[bytes], max_len: int = 1024) -> tuple[TcDeframer, list[bytes]]:
    got: list[bytes] = []
    d = TcDeframer(max_len, lambda m: got.append(bytes(m)))
    for c in chunks:
        d.feed(c)
    return d, got


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[bytes], int]:
    frames = [build_tc_frame(**draw(pst.tc_frame_args(max_data=300))) for _ in range(draw(st.integers(0, 6)))]
    stream, garbage = draw(pst.streams_with_garbage(frames, TC_START))
    return stream, frames, garbage


@given(streams(), st.data())
def test_every_embedded_frame_comes_out_with_exact_garbage_count(case: tuple[bytes, list[bytes], int], data: st.DataObject) -> None:
    stream, frames, garbage = case
    d, got = deframe(data.draw(pst.chunkings(stream)))
    assert got == frames
    assert d.frames_ok == len(frames)
    assert (d.bad_crc, d.bad_length, d.bad_header) == (0, 0, 0)
    # the last octet of the stream is held until the next one shows it starts no marker
    assert d.garbage + d.pending == garbage
    assert d.pending <= 1


@given(st.lists(pst.tc_frame_args(max_data=100), min_size=1, max_size=4), st.data())
def test_a_corrupted_frame_is_dropped_and_the_next_one_still_found(frames: list[dict[str, Any]], data: st.DataObject) -> None:
    raws = [build_tc_frame(**a) for a in frames]
    bad = data.draw(st.integers(0, len(raws) - 1))
    corrupted = bytearray(raws[bad])
    bit = data.draw(st.integers(0, len(corrupted) * 8 - 1))
    corrupted[bit // 8] ^= 0x80 >> (bit % 8)
    stream = b"".join(TC_START + (bytes(corrupted) if i == bad else r) for i, r in enumerate(raws))
    # enough trailing octets that a corrupted length field cannot hold the deframer waiting
    stream += b"\x00" * 1100
    d, got = deframe(data.draw(pst.chunkings(stream)))
    assert got == [r for i, r in enumerate(raws) if i != bad]
    # at least the corrupted frame; octets inside it that look like a start sequence
    # are rescanned and may count as bad frames of their own
    assert d.bad_crc + d.bad_length + d.bad_header >= 1
    assert d.frames_ok == len(raws) - 1


def test_frame_hidden_inside_a_false_start_is_found() -> None:
    frame = build_tc_frame(171, 1, 5, b"\x01\x02\x03", bypass=True)
    # EB 90 then a header claiming 200 octets, then the real frame inside that span
    stream = b"\xeb\x90\x20\xab\x04\xc7" + TC_START + frame + b"\x55" * 250
    d, got = deframe([stream])
    assert got == [frame]
    assert (d.frames_ok, d.bad_crc, d.bad_length) == (1, 1, 0)


def test_lengths_outside_7_to_max_len_are_bad_length() -> None:
    too_long = build_tc_frame(171, 1, 0, bytes(200))
    d, got = deframe([TC_START + too_long + b"\x00" * 10], max_len=100)
    assert got == [] and d.bad_length == 1
    d, got = deframe([TC_START + bytes.fromhex("20ab0405") + b"\x00" * 10])
    assert got == [] and d.bad_length == 1


def test_version_not_zero_is_a_bad_header() -> None:
    d, got = deframe([TC_START + b"\xc0" + b"\x00" * 10])
    assert got == [] and d.bad_header == 1


def test_reset_drops_a_partial_frame() -> None:
    frame = build_tc_frame(171, 1, 0, b"abc")
    got: list[bytes] = []
    d = TcDeframer(on_frame=lambda m: got.append(bytes(m)))
    d.feed(TC_START + frame[:5])
    assert d.pending == 7
    d.reset()
    d.feed(TC_START + frame)
    assert got == [frame]


_ALLOC_SCRIPT = """
import gc
from firmware_py.tc_frame import TcDeframer, build_frame
got = []
d = TcDeframer(1024, lambda m: got.append(len(m)))
frame = bytearray(64)
n = build_frame(frame, 1, 0, 171, 1, 0, b"0123456789")
stream = bytearray(b"\\x55" * 900) + b"\\xeb\\x90" + frame[:n]
garbage = bytearray(b"\\x55" * 900)
small = bytearray(b"\\x55" * 20)
mv = memoryview(stream)
def alloc(f):
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    f()
    b = gc.mem_alloc()
    gc.enable()
    return b - a
def feed_small():
    d.feed(small)
def feed_big():
    d.feed(mv)
def feed_garbage():
    d.feed(garbage)
def feed_octets():
    for i in range(len(mv)):
        d.feed(mv[i:i + 1])
feed_small(); feed_big()
print(alloc(feed_small), alloc(feed_garbage), alloc(feed_big), alloc(feed_octets) - len(mv) * alloc(lambda: mv[0:1]), len(got))
"""


def test_deframer_allocates_nothing_per_received_octet(run_mpy: Callable[..., Any]) -> None:
    out = run_mpy(_ALLOC_SCRIPT).stdout.split()
    small, garbage, with_frame, per_octet_feeds, frames = (int(x) for x in out)
    assert frames == 3
    # a 20-octet chunk and a 900-octet one cost the same: the chunk's memoryview
    assert garbage == small, (small, garbage)
    # a good frame costs a few small objects (its memoryview, one slice copy)
    assert with_frame <= 160, with_frame
    # fed octet by octet (as memoryview slices) the deframer itself allocates nothing
    assert per_octet_feeds <= 64, per_octet_feeds
