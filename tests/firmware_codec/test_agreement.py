"""The firmware codec and the ground codec (protocols/) agree byte for byte, in CPython.

Same inputs give identical bytes, and each side parses the other's output.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_py.sdls import AUTH_OK, Security
from firmware_py.spacepacket import PKT_OK, TcPacket, TmPacketBuilder
from firmware_py.tc_frame import TcDeframer, build_frame, parse_header
from firmware_py.tm_frame import TmFramer
from protocols import strategies as pst
from protocols.errors import ProtocolError
from protocols.pus import build_tc_packet, build_tm_packet, parse_tc_packet, parse_tm_packet
from protocols.sdls import FrameAuthenticator, KeyStore, SecuritySender
from protocols.stream import TcDeframer as GroundTcDeframer
from protocols.tc_frame import build_tc_frame, parse_tc_frame
from protocols.tm_frame import TmDemultiplexer, TmMultiplexer, parse_tm_frame


def fw_tm_packet(args: dict[str, Any]) -> bytes:
    """A TM packet built by the firmware from protocols.strategies.tm_packet_args."""
    t = args["time"]
    coarse = int.from_bytes(t[:4], "big")
    fine = int.from_bytes(t[4:], "big")
    b = TmPacketBuilder(args["apid"], lambda: (coarse, fine), max_data=600, dest_id=args["dest_id"])
    b.seq_count = args["seq_count"]
    b.msg_count = args["msg_counter"]
    return bytes(b.build(args["service"], args["subservice"], args["data"]))


@given(pst.tc_packet_args(max_data=200))
def test_ground_tc_packet_parses_on_firmware(args: dict[str, Any]) -> None:
    raw = build_tc_packet(**args)
    p = TcPacket()
    assert p.parse(raw) == PKT_OK
    assert (p.apid, p.seq_flags, p.seq_count, p.service, p.subservice, p.ack, p.source_id) == (
        args["apid"], 3, args["seq_count"], args["service"], args["subservice"], args["ack"], args["source_id"],
    )
    assert raw[p.data_start : p.data_end] == args["app_data"]
    assert p.end == len(raw)
    assert (p.packet_id, p.seq_ctrl) == parse_tc_packet(raw).request_id


@given(pst.tc_packet_args(max_data=40), st.data())
def test_every_single_bit_flip_in_a_tc_packet_is_rejected_by_both(args: dict[str, Any], data: st.DataObject) -> None:
    raw = bytearray(build_tc_packet(**args))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 0x80 >> (bit % 8)
    with pytest.raises(ProtocolError):
        parse_tc_packet(raw)
    assert TcPacket().parse(raw) != PKT_OK


@given(st.binary(max_size=40))
def test_firmware_accepts_exactly_the_tc_packets_the_ground_accepts(raw: bytes) -> None:
    p = TcPacket()
    fw_ok = p.parse(raw) == PKT_OK and p.end == len(raw)
    try:
        parse_tc_packet(raw)
        ground_ok = True
    except ProtocolError:
        ground_ok = False
    assert fw_ok == ground_ok


@given(pst.tm_packet_args(max_data=300))
def test_firmware_tm_packet_is_identical_to_ground(args: dict[str, Any]) -> None:
    mine = fw_tm_packet(args)
    assert mine == build_tm_packet(**args)
    t = parse_tm_packet(mine)
    assert (t.apid, t.seq_count, t.msg_counter, t.data, t.time) == (
        args["apid"], args["seq_count"], args["msg_counter"], args["data"], args["time"],
    )


def test_tm_counters_are_per_builder_and_wrap() -> None:
    b = TmPacketBuilder()
    b.seq_count = 0x3FFF
    b.msg_count = 0xFFFF
    first = parse_tm_packet(bytes(b.build(17, 2)))
    second = parse_tm_packet(bytes(b.build(17, 2)))
    assert (first.seq_count, first.msg_counter) == (0x3FFF, 0xFFFF)
    assert (second.seq_count, second.msg_counter) == (0, 0)


@given(pst.tc_frame_args(max_data=300))
def test_firmware_tc_frame_is_identical_to_ground(args: dict[str, Any]) -> None:
    ground = build_tc_frame(**args)
    buf = bytearray(1024)
    n = build_frame(
        buf, int(args["bypass"]), int(args["control"]), args["scid"], args["vcid"], args["frame_seq"], args["data"]
    )
    assert bytes(buf[:n]) == ground
    f = parse_tc_frame(ground)
    assert parse_header(ground) == (int(f.bypass), int(f.control), f.scid, f.vcid, f.length, f.frame_seq)


@st.composite
def secured_args(draw: st.DrawFn) -> dict[str, Any]:
    args = draw(pst.tc_frame_args(max_data=200))
    args["key"] = draw(pst.keys)
    args["spi"] = draw(pst.u16s)
    args["seq"] = draw(st.integers(1, 0xFFFFFFFF))  # 0 is never sent: the window starts full at H = 0
    return args


@given(secured_args())
def test_secured_frames_identical_and_verified_both_ways(a: dict[str, Any]) -> None:
    sender = SecuritySender(a["key"], a["spi"], a["seq"])
    ground = build_tc_frame(a["scid"], a["vcid"], a["frame_seq"], a["data"], a["bypass"], a["control"], sender)
    sec = Security({a["spi"]: a["key"]})
    buf = bytearray(1024)
    n = sec.build_frame(
        buf, int(a["bypass"]), int(a["control"]), a["scid"], a["vcid"], a["frame_seq"], a["spi"], a["seq"], a["data"]
    )
    assert bytes(buf[:n]) == ground
    assert sec.verify(ground, len(ground)) == AUTH_OK
    assert (sec.spi, sec.seq, ground[sec.data_start : sec.data_end]) == (a["spi"], a["seq"], a["data"])
    v = FrameAuthenticator(KeyStore({a["spi"]: a["key"]})).verify(bytes(buf[:n]))
    assert (v.spi, v.seq, v.data) == (a["spi"], a["seq"], a["data"])


def _frame_ops() -> st.SearchStrategy[list[tuple[str, Any]]]:
    op = st.one_of(
        pst.pus_tm_packets(max_data=600).map(lambda p: ("put", p)),
        st.just(("flush", None)),
        st.just(("idle", None)),
        st.integers(0, 0xFFFFFFFF).map(lambda c: ("clcw", c)),
    )
    return st.lists(op, max_size=25)


@given(_frame_ops(), st.sampled_from([64, 256, 1115]))
def test_tm_framer_is_identical_to_ground_multiplexer(ops: list[tuple[str, Any]], frame_len: int) -> None:
    clcw = [0]
    mine: list[bytes] = []
    fw = TmFramer(171, 0, frame_len, lambda m: mine.append(bytes(m)), lambda: clcw[0])
    ground = TmMultiplexer(171, 0, frame_len, clcw=lambda: clcw[0])
    theirs: list[bytes] = []
    packets = []
    for kind, arg in ops:
        if kind == "put":
            packets.append(arg)
            fw.put(arg)
            ground.push(arg)
            theirs += ground.frames()
        elif kind == "clcw":
            clcw[0] = arg
        elif kind == "flush":
            fw.flush()
            theirs += ground.flush()
        elif fw.pending:  # idle with data waiting sends it, padded
            fw.idle()
            theirs += ground.flush()
        else:
            fw.idle()
            theirs.append(ground.idle_frame())
        assert fw.pending == ground.pending
    fw.flush()
    theirs += ground.flush()
    assert [m[:4] for m in mine] == [bytes.fromhex("1acffc1d")] * len(mine)
    assert [m[4:] for m in mine] == theirs
    demux = TmDemultiplexer(frame_len)
    got = []
    for m in mine:
        assert parse_tm_frame(m[4:], frame_len).ocf is not None
        got += demux.feed(m[4:])
    assert got == packets
    assert demux.counters.gaps == 0


@st.composite
def tc_streams(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A stream of garbage (markers and false headers likely) and frames, some corrupted."""
    out = bytearray()
    good = []
    for _ in range(draw(st.integers(0, 6))):
        out += bytes(draw(st.lists(st.sampled_from([0xEB, 0x90, 0x00, 0x20, 0x03, 0xFF, 0x55]), max_size=20)))
        frame = bytearray(build_tc_frame(**draw(pst.tc_frame_args(max_data=120))))
        if draw(st.integers(0, 3)) == 0:
            bit = draw(st.integers(0, len(frame) * 8 - 1))
            frame[bit // 8] ^= 0x80 >> (bit % 8)
        else:
            good.append(bytes(frame))
        out += b"\xeb\x90" + frame
    out += draw(st.binary(max_size=20))
    return bytes(out), good


@given(tc_streams(), st.data())
def test_tc_deframer_agrees_with_ground_deframer(case: tuple[bytes, list[bytes]], data: st.DataObject) -> None:
    stream, _ = case
    chunks = data.draw(pst.chunkings(stream))
    mine: list[bytes] = []
    fw = TcDeframer(1024, lambda m: mine.append(bytes(m)))
    ground = GroundTcDeframer()
    theirs: list[bytes] = []
    for c in chunks:
        fw.feed(c)
        theirs += ground.feed(c)
    assert mine == theirs
    g = ground.counters
    assert (fw.frames_ok, fw.bad_crc, fw.bad_length, fw.bad_header, fw.garbage, fw.pending) == (
        g.frames_ok, g.bad_crc_frames, g.bad_length_frames, g.bad_header_frames, g.garbage_octets, ground.pending,
    )


@given(secured_args(), st.data())
def test_auth_reasons_agree_with_ground_reference_model(a: dict[str, Any], data: st.DataObject) -> None:
    """A session of verify/commit on both sides gives the same reason for every frame."""
    key, spi = a["key"], a["spi"]
    other = bytes(b ^ 0x01 for b in key)
    fw = Security({spi: key})
    ground = FrameAuthenticator(KeyStore({spi: key}))
    seqs = data.draw(st.lists(st.integers(0, 200), min_size=1, max_size=30))
    for seq in seqs:
        use_key = other if data.draw(st.integers(0, 5)) == 0 else key
        use_spi = spi if data.draw(st.integers(0, 5)) else (spi + 1) & 0xFFFF
        frame = build_tc_frame(
            a["scid"], a["vcid"], a["frame_seq"], a["data"], a["bypass"], a["control"],
            SecuritySender(use_key, use_spi, seq),
        )
        try:
            ground.verify(frame)
            want = 0
        except ProtocolError as exc:
            want = exc.reason  # type: ignore[attr-defined]
        got = fw.verify(frame, len(frame))
        assert got == want
        if got == 0 and data.draw(st.booleans()):
            fw.commit(use_spi, seq)
            ground.commit(use_spi, seq)
