"""Hypothesis strategies for the wire format's layouts (test-time only: imports hypothesis)."""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from protocols.clcw import Clcw
from protocols.cuc import Cuc

apids = st.integers(0, 0x7FE)
seq_counts = st.integers(0, 0x3FFF)
octets = st.integers(0, 0xFF)
u16s = st.integers(0, 0xFFFF)
scids = st.integers(0, 0x3FF)
tc_vcids = st.integers(0, 0x3F)
tm_vcids = st.integers(0, 7)
keys = st.binary(min_size=32, max_size=32)
cucs = st.builds(Cuc, st.integers(0, 0xFFFFFFFF), u16s)


@st.composite
def tc_packet_args(draw: st.DrawFn, max_data: int = 64) -> dict[str, object]:
    """Keyword arguments for pus.build_tc_packet."""
    return {
        "apid": draw(apids),
        "seq_count": draw(seq_counts),
        "service": draw(octets),
        "subservice": draw(octets),
        "app_data": draw(st.binary(max_size=max_data)),
        "ack": draw(st.integers(0, 0xF)),
        "source_id": draw(u16s),
    }


@st.composite
def tm_packet_args(draw: st.DrawFn, max_data: int = 64) -> dict[str, object]:
    """Keyword arguments for pus.build_tm_packet."""
    return {
        "apid": draw(apids),
        "seq_count": draw(seq_counts),
        "service": draw(octets),
        "subservice": draw(octets),
        "data": draw(st.binary(max_size=max_data)),
        "time": draw(st.binary(min_size=6, max_size=6)),
        "msg_counter": draw(u16s),
        "dest_id": draw(u16s),
    }


@st.composite
def tc_frame_args(draw: st.DrawFn, max_data: int = 200) -> dict[str, object]:
    """Keyword arguments for tc_frame.build_tc_frame (AD, BD or BC; no security)."""
    kind = draw(st.sampled_from(["AD", "BD", "BC"]))
    if kind == "BC":
        data = draw(st.one_of(st.just(b"\x00"), octets.map(lambda n: b"\x82\x00" + bytes([n]))))
    else:
        data = draw(st.binary(max_size=max_data))
    return {
        "scid": draw(scids),
        "vcid": draw(tc_vcids),
        "frame_seq": draw(octets),
        "data": data,
        "bypass": kind != "AD",
        "control": kind == "BC",
    }


clcws = st.builds(
    Clcw,
    vcid=tc_vcids,
    report_value=octets,
    lockout=st.booleans(),
    wait=st.booleans(),
    retransmit=st.booleans(),
    farm_b_counter=st.integers(0, 3),
    no_rf_available=st.booleans(),
    no_bit_lock=st.booleans(),
    status_field=st.integers(0, 7),
    cop_in_effect=st.integers(0, 3),
    version=st.integers(0, 3),
    control_word_type=st.integers(0, 1),
)


@st.composite
def tm_frame_args(draw: st.DrawFn, frame_length: int = 256) -> dict[str, object]:
    """Keyword arguments for tm_frame.build_tm_frame (with an OCF)."""
    return {
        "scid": draw(scids),
        "vcid": draw(tm_vcids),
        "mc_count": draw(octets),
        "vc_count": draw(octets),
        "first_header_pointer": draw(st.one_of(st.integers(0, frame_length - 13), st.just(0x7FF), st.just(0x7FE))),
        "data": draw(st.binary(min_size=frame_length - 12, max_size=frame_length - 12)),
        "ocf": draw(st.integers(0, 0xFFFFFFFF)),
        "frame_length": frame_length,
    }


@st.composite
def pus_tm_packets(draw: st.DrawFn, max_data: int = 600) -> bytes:
    """Whole PUS TM packets, some longer than a 256-octet frame."""
    from protocols.pus import build_tm_packet

    args = draw(tm_packet_args(max_data=max_data))
    return build_tm_packet(**args)  # type: ignore[arg-type]


def _without(marker: bytes) -> st.SearchStrategy[bytes]:
    # garbage that cannot contain or complete a marker, so drop counts are exact
    return st.binary(max_size=80).map(lambda b: b.replace(marker[:1], b"\x00"))


@st.composite
def streams_with_garbage(
    draw: st.DrawFn, frames: list[bytes], marker: bytes
) -> tuple[bytes, int]:
    """(stream, garbage octets): `frames` each after `marker`, with garbage between them."""
    out = bytearray()
    garbage = 0
    for frame in frames:
        junk = draw(_without(marker))
        out += junk + marker + frame
        garbage += len(junk)
    tail = draw(_without(marker))
    out += tail
    return bytes(out), garbage + len(tail)


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """`data` cut into chunks of 1 octet up to the whole thing."""
    chunks = []
    pos = 0
    mode = draw(st.sampled_from(["one", "random", "whole"]))
    while pos < len(data):
        n = 1 if mode == "one" else len(data) if mode == "whole" else draw(st.integers(1, 300))
        chunks.append(data[pos : pos + n])
        pos += n
    return chunks


def _f32_in(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Single-precision values inside [lo, hi]."""

    def to_f32(x: float) -> float:
        return float(struct.unpack(">f", struct.pack(">f", x))[0])

    def inside(x: float) -> bool:
        return lo <= x <= hi

    return st.floats(lo, hi).map(to_f32).filter(inside)


@st.composite
def command_values(draw: st.DrawFn, dictionary: object, name: str | None = None) -> tuple[str, dict[str, object]]:
    """(command name, {arg: value}) drawn inside each argument's type and range."""
    from protocols.dictionary import TC_TYPE, TYPE_BOUNDS, Dictionary
    from protocols.pus import build_tc_packet

    assert isinstance(dictionary, Dictionary)
    cmd = dictionary.commands[name] if name else draw(st.sampled_from(sorted(dictionary.commands.values(),
                                                                             key=lambda c: c.name)))
    values: dict[str, object] = {}
    for a in cmd.args:
        if a.type == TC_TYPE:
            values[a.name] = build_tc_packet(**draw(tc_packet_args(max_data=16)))  # type: ignore[arg-type]
            continue
        if a.type == "bytes":
            values[a.name] = draw(st.binary(min_size=a.length or 0, max_size=a.length or 0))
            continue
        lo, hi = a.range if a.range is not None else TYPE_BOUNDS[a.type]
        if a.type == "f32":
            values[a.name] = draw(_f32_in(lo, hi))
        elif a.enum is not None:
            names = [n for k, n in dictionary.enums[a.enum].items() if lo <= k <= hi]
            values[a.name] = draw(st.sampled_from(names)) if names else draw(st.integers(int(lo), int(hi)))
        else:
            values[a.name] = draw(st.integers(int(lo), int(hi)))
    return cmd.name, values


@st.composite
def secured_tc_frame_args(draw: st.DrawFn) -> dict[str, object]:
    """tc_frame_args plus a key, SPI and sequence number for sdls.SecuritySender."""
    args = draw(tc_frame_args(max_data=1024 - 5 - 22 - 2))
    args["key"] = draw(keys)
    args["spi"] = draw(u16s)
    args["seq"] = draw(st.integers(1, 0xFFFFFFFF))
    return args
