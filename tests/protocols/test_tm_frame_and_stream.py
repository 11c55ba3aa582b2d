"""TM frames (132.0-B), the multiplexer/demultiplexer, and stream deframing."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import strategies as pst
from protocols.errors import ProtocolError
from protocols.pus import build_tc_packet, build_tm_packet
from protocols.stream import ASM, TC_START, TcDeframer, TmDeframer, frame_tc, frame_tm
from protocols.tc_frame import build_tc_frame
from protocols.tm_frame import (
    FHP_IDLE,
    FHP_NO_PACKET_START,
    TmDemultiplexer,
    TmMultiplexer,
    build_tm_frame,
    parse_tm_frame,
    tm_frame_256,
    tm_transfer_frame,
)


@given(pst.tm_frame_args())
def test_tm_frame_round_trip_and_fast_parse_equals_layout(args: dict) -> None:
    raw = build_tm_frame(**args)
    assert len(raw) == 256
    f = parse_tm_frame(raw, 256)
    assert (f.scid, f.vcid, f.mc_count, f.vc_count, f.first_header_pointer, f.data, f.ocf) == (
        args["scid"], args["vcid"], args["mc_count"], args["vc_count"],
        args["first_header_pointer"], args["data"], args["ocf"],
    )
    layout = tm_frame_256.parse(raw)
    h = layout.frame.value.primary_header
    assert (h.spacecraft_id, h.virtual_channel_id, h.master_channel_frame_count,
            h.virtual_channel_frame_count, h.first_header_pointer, h.segment_length_id) == (
        f.scid, f.vcid, f.mc_count, f.vc_count, f.first_header_pointer, 3,
    )
    assert layout.frame.value.operational_control_field == f.ocf


def test_tm_frame_without_ocf_and_other_lengths() -> None:
    raw = build_tm_frame(171, 0, 1, 2, 0, bytes(100 - 8), ocf=None, frame_length=100)
    f = parse_tm_frame(raw)
    assert f.ocf is None and len(f.data) == 92
    assert tm_transfer_frame(100, False).parse(raw).frame.value.transfer_frame_data_field == f.data
    with pytest.raises(ProtocolError, match="must be 244 octets"):
        build_tm_frame(171, 0, 0, 0, 0, bytes(10))


def test_every_single_bit_flip_in_a_tm_frame_is_detected() -> None:
    rnd = random.Random(1)
    raw = build_tm_frame(171, 0, 5, 6, 0, bytes(rnd.randrange(256) for _ in range(244)), ocf=0x01000000)
    for i in range(len(raw) * 8):
        bad = bytearray(raw)
        bad[i // 8] ^= 0x80 >> (i % 8)
        with pytest.raises(ProtocolError, match="FECF"):
            parse_tm_frame(bytes(bad))


def _mux_all(packets: list[bytes], clcw: int = 0) -> tuple[list[bytes], TmMultiplexer]:
    mux = TmMultiplexer(171, 0, clcw=clcw)
    frames: list[bytes] = []
    for p in packets:
        mux.push(p)
        frames += mux.frames()
    frames += mux.flush()
    return frames, mux


@given(st.lists(pst.pus_tm_packets(), min_size=1, max_size=12))
def test_mux_demux_round_trip(packets: list[bytes]) -> None:
    frames, mux = _mux_all(packets, clcw=0x01000007)
    demux = TmDemultiplexer()
    out = [p for f in frames for p in demux.feed(f)]
    assert out == packets
    assert demux.counters.packets == len(packets)
    assert demux.counters.packets_dropped == 0 and demux.counters.gaps == 0
    assert demux.last_clcw == 0x01000007
    counts = [parse_tm_frame(f).vc_count for f in frames]
    assert counts == list(range(len(frames)))


def test_first_header_pointer_points_at_the_first_packet_start() -> None:
    packets = [build_tm_packet(32, i, 3, 25, bytes(200)) for i in range(3)]  # 221 octets each
    frames, _ = _mux_all(packets)
    fhps = [parse_tm_frame(f).first_header_pointer for f in frames]
    assert fhps[0] == 0
    assert fhps[1] == 221 - 244 + 221  # second packet ends in frame 2, third starts there
    assert parse_tm_frame(frames[1]).data[fhps[1]:fhps[1] + 2] == packets[2][:2]


def test_a_packet_longer_than_a_frame_gets_no_start_pointer() -> None:
    frames, _ = _mux_all([build_tm_packet(32, 0, 3, 25, bytes(600))])
    assert [parse_tm_frame(f).first_header_pointer for f in frames][:3] == [0, FHP_NO_PACKET_START, 133]


def test_flush_with_tiny_room_spans_the_idle_packet_into_another_frame() -> None:
    p = build_tm_packet(32, 0, 3, 25, bytes(244 - 21 - 3))  # leaves 3 octets: too few for idle
    frames, _ = _mux_all([p])
    assert len(frames) == 2
    demux = TmDemultiplexer()
    assert [q for f in frames for q in demux.feed(f)] == [p]
    assert demux.counters.idle_packets == 1


def test_idle_frame_keeps_the_stream_intact() -> None:
    mux = TmMultiplexer(171)
    big = build_tm_packet(32, 0, 3, 25, bytes(300))
    mux.push(big)
    first = mux.frames()
    idle = mux.idle_frame()
    rest = mux.flush()
    assert parse_tm_frame(idle).first_header_pointer == FHP_IDLE
    demux = TmDemultiplexer()
    assert [q for f in first + [idle] + rest for q in demux.feed(f)] == [big]
    assert demux.counters.idle_frames == 1


@given(st.lists(pst.pus_tm_packets(max_data=400), min_size=3, max_size=15), st.data())
def test_a_frame_gap_drops_only_the_packets_it_destroyed(packets: list[bytes], data: st.DataObject) -> None:
    frames, _ = _mux_all(packets)
    if len(frames) < 3:
        return
    lost = data.draw(st.integers(1, len(frames) - 2))
    demux = TmDemultiplexer()
    out = [p for i, f in enumerate(frames) if i != lost for p in demux.feed(f)]
    # exactly the packets with an octet in the lost frame's data field are gone
    lo, hi = lost * 244, (lost + 1) * 244
    survivors, offset = [], 0
    for p in packets:
        start, end = offset, offset + len(p)
        offset = end
        if end <= lo or start >= hi:
            survivors.append(p)
    assert out == survivors
    assert demux.counters.gaps == 1 and demux.counters.frames_lost == 1


def test_vc_count_wraps_without_a_gap() -> None:
    mux = TmMultiplexer(171, vc_count=250)
    packets = [build_tm_packet(32, i, 3, 25, bytes(100)) for i in range(30)]
    frames = []
    for p in packets:
        mux.push(p)
        frames += mux.frames()
    frames += mux.flush()
    demux = TmDemultiplexer()
    assert [q for f in frames for q in demux.feed(f)] == packets
    assert demux.counters.gaps == 0


def test_bad_frame_is_counted_and_becomes_a_gap() -> None:
    packets = [build_tm_packet(32, i, 3, 25, bytes(100)) for i in range(10)]
    frames, _ = _mux_all(packets)
    bad = bytearray(frames[1])
    bad[20] ^= 1
    demux = TmDemultiplexer()
    out = [q for f in [frames[0], bytes(bad), *frames[2:]] for q in demux.feed(f)]
    assert demux.counters.bad_frames == 1 and demux.counters.gaps == 1
    assert out == packets[:2] + packets[5:]  # 121-octet packets 2, 3, 4 touch octets 244..487



@given(st.lists(pst.pus_tm_packets(max_data=400), min_size=1, max_size=12), st.data())
def test_duplicated_frames_are_discarded_and_every_packet_arrives_once(
    packets: list[bytes], data: st.DataObject
) -> None:
    frames, _ = _mux_all(packets, clcw=0x01000007)
    copies = data.draw(st.lists(st.integers(0, 3), min_size=len(frames), max_size=len(frames)))
    link = [f for f, n in zip(frames, copies, strict=True) for f in [f] * (1 + n)]
    demux = TmDemultiplexer()
    out = [p for f in link for p in demux.feed(f)]
    assert out == packets
    c = demux.counters
    assert c.frames_lost == 0 and c.gaps == 0 and c.packets_dropped == 0 and c.octets_dropped == 0
    assert c.frames_duplicate == sum(copies) and c.frames == len(frames)


def test_a_duplicate_keeps_the_packet_in_progress_and_a_later_gap_still_counts() -> None:
    packets = [build_tm_packet(32, i, 3, 25, bytes(300)) for i in range(6)]  # 321 octets: span frames
    frames, _ = _mux_all(packets)
    demux = TmDemultiplexer()
    out = [p for f in [frames[0], frames[1], frames[1], frames[1], *frames[2:]] for p in demux.feed(f)]
    assert out == packets
    assert demux.counters.frames_duplicate == 2 and demux.counters.frames_lost == 0
    demux = TmDemultiplexer()
    out = [p for f in [frames[0], frames[0], *frames[2:]] for p in demux.feed(f)]
    assert demux.counters.frames_duplicate == 1
    assert demux.counters.gaps == 1 and demux.counters.frames_lost == 1
    assert out == packets[2:]  # packets 0 (0..320) and 1 (321..641) touch the lost octets 244..487


def test_a_rebooted_rover_restarting_its_frame_count_is_not_taken_for_a_duplicate() -> None:
    # The rover sent one frame (count 0) and reset: its next frame has count 0 again, with
    # other content. Only a byte-identical repeat is a duplicate; this one is new telemetry.
    before = [build_tm_packet(32, 0, 5, 1, b"boot 1")]
    after = [build_tm_packet(32, 0, 5, 1, b"boot 2"), build_tm_packet(32, 1, 3, 25, bytes(8))]
    frames_before, _ = _mux_all(before)
    frames_after, _ = _mux_all(after)
    assert parse_tm_frame(frames_before[-1]).vc_count == parse_tm_frame(frames_after[0]).vc_count == 0
    demux = TmDemultiplexer()
    out = [p for f in [*frames_before, *frames_after] for p in demux.feed(f)]
    assert out == before + after
    assert demux.counters.frames_duplicate == 0


# --- stream framing ----------------------------------------------------------------------------

def _tm_frames(n: int) -> list[bytes]:
    packets = [build_tm_packet(32, i, 3, 25, os.urandom(50 + i)) for i in range(n)]
    frames, _ = _mux_all(packets)
    return frames


@given(st.data())
def test_tm_deframer_finds_every_frame_in_garbage_with_exact_counts(data: st.DataObject) -> None:
    frames = _tm_frames(data.draw(st.integers(1, 8)))
    stream, garbage = data.draw(pst.streams_with_garbage(frames, ASM))
    d = TmDeframer()
    out = [f for chunk in data.draw(pst.chunkings(stream)) for f in d.feed(chunk)]
    assert out == frames
    assert d.counters.frames_ok == len(frames)
    assert d.counters.garbage_octets + d.pending == garbage
    assert d.counters.frames_bad == 0


@given(st.data())
def test_tc_deframer_finds_every_frame_in_garbage_with_exact_counts(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 6))
    frames = [build_tc_frame(171, 1, i, build_tc_packet(1, i, 200, 2, os.urandom(i * 7))) for i in range(n)]
    stream, garbage = data.draw(pst.streams_with_garbage(frames, TC_START))
    d = TcDeframer()
    out = [f for chunk in data.draw(pst.chunkings(stream)) for f in d.feed(chunk)]
    assert out == frames
    assert d.counters.garbage_octets + d.pending == garbage


@given(st.binary(max_size=3000), st.data())
def test_random_bytes_never_raise_and_every_octet_is_accounted(junk: bytes, data: st.DataObject) -> None:
    frames = _tm_frames(3)
    cut = data.draw(st.integers(0, len(junk)))
    stream = junk[:cut] + b"".join(frame_tm(f) for f in frames) + junk[cut:]
    for d in (TmDeframer(), TcDeframer()):
        got = [f for chunk in data.draw(pst.chunkings(stream)) for f in d.feed(chunk)]
        c = d.counters
        if isinstance(d, TmDeframer):
            assert all(f in got for f in frames)
            assert c.frames_ok * 260 + c.garbage_octets + d.pending == len(stream)
        else:
            assert c.octets_in == len(stream)
            assert sum(len(f) + 2 for f in got) + c.garbage_octets + d.pending == len(stream)


def test_corrupted_frames_are_counted_and_the_hunt_resumes() -> None:
    frames = _tm_frames(60)
    stream = bytearray()
    corrupted = {3, 7, 8}
    for i, f in enumerate(frames):
        raw = bytearray(frame_tm(f))
        if i in corrupted:
            raw[100] ^= 0x10
        stream += raw
    d = TmDeframer()
    out = []
    for i in range(0, len(stream), 1):
        out += d.feed(stream[i : i + 1])
    assert out == [f for i, f in enumerate(frames) if i not in corrupted]
    assert d.counters.bad_crc_frames == len(corrupted)
    assert d.counters.frames_ok + d.counters.bad_crc_frames == len(frames)


def test_tc_deframer_rejects_impossible_lengths() -> None:
    good = build_tc_frame(171, 1, 0, b"hello")
    short = bytes.fromhex("20ab0402")  # length 3: shorter than a header + FECF
    d = TcDeframer(max_length=64)
    big = build_tc_frame(171, 1, 0, bytes(100))
    out = d.feed(frame_tc(short) + frame_tc(big) + frame_tc(good))
    assert out == [good]
    assert d.counters.bad_length_frames == 2


def test_marker_split_across_chunks() -> None:
    frame = _tm_frames(1)[0]
    d = TmDeframer()
    s = frame_tm(frame)
    assert d.feed(s[:2]) == [] and d.feed(s[2:3]) == [] and d.feed(s[3:]) == [frame]


def test_virtual_channels_are_demultiplexed_separately() -> None:
    a = TmMultiplexer(171, vcid=0)
    b = TmMultiplexer(171, vcid=3, vc_count=77)
    pa = [build_tm_packet(32, i, 3, 25, bytes(150)) for i in range(6)]
    pb = [build_tm_packet(40, i, 5, 1, bytes(90)) for i in range(6)]
    frames_a, frames_b = [], []
    for p, q in zip(pa, pb, strict=True):
        a.push(p)
        b.push(q)
        frames_a += a.frames()
        frames_b += b.frames()
    frames_a += a.flush()
    frames_b += b.flush()
    interleaved = [f for pair in zip(frames_a, frames_b, strict=False) for f in pair]
    interleaved += frames_a[len(frames_b):] + frames_b[len(frames_a):]
    every = TmDemultiplexer()
    out = [p for f in interleaved for p in every.feed(f)]
    assert [p for p in out if p in pa] == pa and [p for p in out if p in pb] == pb
    assert every.counters.gaps == 0
    only_b = TmDemultiplexer(vcid=3)
    assert [p for f in interleaved for p in only_b.feed(f)] == pb
    assert only_b.counters.other_vc_frames == len(frames_a)


def test_a_corrupt_first_header_pointer_drops_and_resyncs() -> None:
    packets = [build_tm_packet(32, i, 3, 25, bytes(100)) for i in range(8)]
    frames, _ = _mux_all(packets)
    f1 = parse_tm_frame(frames[1])
    lying = build_tm_frame(171, 0, f1.mc_count, f1.vc_count, f1.first_header_pointer + 1, f1.data, f1.ocf)
    demux = TmDemultiplexer()
    out = [p for f in [frames[0], lying, *frames[2:]] for p in demux.feed(f)]
    assert demux.counters.packets_dropped >= 1
    assert out[:2] == packets[:2] and out[-3:] == packets[-3:]


def test_drop_log_gives_stream_offsets_of_bad_frames() -> None:
    frames = _tm_frames(40)
    stream = bytearray(b"\x00" * 7)
    offsets = []
    for i, f in enumerate(frames):
        raw = bytearray(frame_tm(f))
        if i == 2:
            raw[10] ^= 1
            offsets.append(len(stream))
        stream += raw
    d = TmDeframer()
    for i in range(0, len(stream), 100):
        d.feed(stream[i : i + 100])
    assert d.drops == [(offsets[0], "bad_crc_frames")]


@given(st.data())
def test_on_bad_hook_sees_every_corrupted_frame_with_its_offset(data: st.DataObject) -> None:
    frames = _tm_frames(data.draw(st.integers(1, 8)))
    corrupted = data.draw(st.sets(st.integers(0, len(frames) - 1)))
    stream = bytearray(b"\x00" * data.draw(st.integers(0, 9)))
    expected = []
    for i, f in enumerate(frames):
        raw = bytearray(frame_tm(f))
        if i in corrupted:
            raw[data.draw(st.integers(4, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
            expected.append((bytes(raw[4:]), "bad_crc_frames", len(stream)))
        stream += raw
    seen: list[tuple[bytes, str, int]] = []
    d = TmDeframer(on_bad=lambda octets, reason, offset: seen.append((octets, reason, offset)))
    out = [f for chunk in data.draw(pst.chunkings(bytes(stream))) for f in d.feed(chunk)]
    assert out == [f for i, f in enumerate(frames) if i not in corrupted]
    assert seen == expected
    assert d.drops == [(offset, reason) for _, reason, offset in expected]


def test_on_bad_hook_is_not_capped_like_the_drop_log_and_sees_tc_headers() -> None:
    frame = _tm_frames(1)[0]
    bad = bytearray(frame_tm(frame))
    bad[50] ^= 4
    seen: list[tuple[bytes, str, int]] = []
    d = TmDeframer(on_bad=lambda *a: seen.append(a))
    d.feed(bytes(bad) * 150 + frame_tm(frame))
    assert len(seen) == 150 and len(d.drops) == 100
    assert seen[-1] == (bytes(bad[4:]), "bad_crc_frames", 149 * 260)
    short = bytes.fromhex("20ab0402")  # length 3: shorter than a header + FECF
    not_v0 = bytes.fromhex("c0ab0410")
    good = build_tc_frame(171, 1, 0, b"hello")
    tc_seen: list[tuple[bytes, str, int]] = []
    tcd = TcDeframer(on_bad=lambda *a: tc_seen.append(a))
    assert tcd.feed(frame_tc(short) + frame_tc(not_v0) + frame_tc(good)) == [good]
    assert tc_seen == [(short, "bad_length_frames", 0), (not_v0[:4], "bad_header_frames", 6)]
