"""The export's vectorised packet index and protocols.tm_frame.TmDemultiplexer agree.

Random PUS TM packets (some spanning several frames) are multiplexed into frames by
TmMultiplexer, with idle frames (also while a packet is half sent) and flushes (idle packets)
at random points; the link then drops, repeats and keeps frames at random, and the archive's
frames are cut into runs at random. hil.gs.export.index_packets must find exactly the packets,
idle ones included, that TmDemultiplexer rebuilds from the same frames.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from hil.gs.export import index_packets
from hil.gs.mission import Mission
from protocols.strategies import pus_tm_packets
from protocols.tm_frame import TmDemultiplexer, TmMultiplexer

M = Mission.load()

# what happens to each frame on the link
KEEP, DROP, REPEAT = "keep", "drop", "repeat"
# what the sender does after queueing a packet
SEND, IDLE, FLUSH = "send", "idle", "flush"


@st.composite
def link_frames(draw: st.DrawFn) -> list[bytes]:
    """The frames the ground received: multiplexed, then dropped and repeated at random."""
    mux = TmMultiplexer(M.scid, M.tm_vcid, M.tm_frame_length, clcw=0, vc_count=draw(st.integers(0, 255)))
    sent: list[bytes] = []
    for pkt in draw(st.lists(pus_tm_packets(max_data=600), max_size=25)):
        mux.push(pkt)
        then = draw(st.sampled_from([SEND, SEND, SEND, IDLE, FLUSH]))
        sent += mux.frames()
        if then == IDLE:
            sent += [mux.idle_frame() for _ in range(draw(st.integers(1, 3)))]
        elif then == FLUSH:
            sent += mux.flush()
    sent += mux.flush()
    received: list[bytes] = []
    for frame in sent:
        fate = draw(st.sampled_from([KEEP] * 6 + [DROP, REPEAT]))
        if fate != DROP:
            received.append(frame)
        if fate == REPEAT:
            received += [frame] * draw(st.integers(1, 2))
    return received


def demultiplexed(frames: list[bytes]) -> list[bytes]:
    demux = TmDemultiplexer(M.tm_frame_length, M.tm_vcid, keep_idle=True)
    return [p for f in frames for p in demux.feed(f)]


def indexed(frames: list[bytes], cuts: list[int]) -> list[bytes]:
    arr = np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), M.tm_frame_length)
    bounds = sorted({0, len(frames), *(c % (len(frames) + 1) for c in cuts)})
    runs = [arr[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    idx = index_packets(M, np.arange(len(frames), dtype=np.float64), runs)
    s = idx.stream.tobytes()
    return [s[a : a + n] for a, n in zip(idx.starts.tolist(), idx.lengths.tolist(), strict=True)]


@given(link_frames(), st.lists(st.integers(0, 1000), max_size=3))
def test_index_finds_what_the_demultiplexer_rebuilds(frames: list[bytes], cuts: list[int]) -> None:
    assert indexed(frames, cuts) == demultiplexed(frames)


def test_a_packet_spans_an_idle_frame_and_a_repeated_frame() -> None:
    mux = TmMultiplexer(M.scid, M.tm_vcid, M.tm_frame_length, clcw=0)
    from protocols.pus import build_tm_packet

    big = build_tm_packet(apid=M.tm_apid, seq_count=1, service=3, subservice=25, data=bytes(600))
    small = build_tm_packet(apid=M.tm_apid, seq_count=2, service=5, subservice=1, data=b"\x00\x01")
    mux.push(big)
    frames = mux.frames()
    frames = [frames[0], frames[0], *frames[1:], mux.idle_frame()]  # repeated, then idle mid-packet
    mux.push(small)
    frames += mux.flush()
    want = demultiplexed(frames)
    assert [p for p in want if p[:2] != b"\x07\xff"] == [big, small]
    assert indexed(frames, []) == want
