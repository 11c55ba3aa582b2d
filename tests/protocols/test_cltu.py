"""CLTU (231.0-B): BCH(63,56) code blocks, single-error correction, tail, stream hunting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import strategies as pst
from protocols.cltu import (
    TAIL_SEQUENCE,
    CltuDeframer,
    bch_parity,
    decode_block,
    decode_cltu,
    encode_block,
    encode_cltu,
    split_frames,
)
from protocols.errors import ProtocolError
from protocols.tc_frame import build_tc_frame


def _long_division_parity(info: bytes) -> int:
    # remainder of m(x) * x^7 by g(x) = x^7 + x^6 + x^2 + 1, complemented, filler bit 0
    m = int.from_bytes(info, "big") << 7
    for i in range(62, 6, -1):
        if (m >> i) & 1:
            m ^= 0b11000101 << (i - 7)
    return ((~m) & 0x7F) << 1


@given(st.binary(min_size=7, max_size=7))
def test_table_parity_equals_polynomial_division(info: bytes) -> None:
    assert bch_parity(info) == _long_division_parity(info)


def test_known_blocks() -> None:
    assert encode_block(bytes(7)) == bytes(7) + b"\xfe"
    assert decode_block(TAIL_SEQUENCE) is None
    assert decode_block(TAIL_SEQUENCE, correct=False) is None


@given(st.binary(min_size=7, max_size=7), st.integers(0, 62))
def test_any_single_bit_error_is_corrected(info: bytes, bit: int) -> None:
    block = bytearray(encode_block(info))
    block[bit // 8] ^= 0x80 >> (bit % 8)
    assert decode_block(bytes(block)) == (info, True)
    assert decode_block(bytes(block), correct=False) is None


@given(st.binary(min_size=7, max_size=7), st.integers(0, 62), st.integers(0, 62))
def test_double_bit_errors_are_never_silently_accepted_as_the_original(info: bytes, a: int, b: int) -> None:
    if a == b:
        return
    block = bytearray(encode_block(info))
    for bit in (a, b):
        block[bit // 8] ^= 0x80 >> (bit % 8)
    decoded = decode_block(bytes(block), correct=False)
    assert decoded is None


@given(pst.tc_frame_args())
def test_cltu_round_trip(args: dict) -> None:
    frame = build_tc_frame(**args)
    cltu = encode_cltu(frame)
    assert cltu[:2] == b"\xeb\x90" and cltu.endswith(TAIL_SEQUENCE)
    assert (len(cltu) - 10) % 8 == 0
    assert split_frames(decode_cltu(cltu)) == [frame]


def test_decode_cltu_errors_name_the_octet() -> None:
    cltu = bytearray(encode_cltu(build_tc_frame(171, 1, 0, b"hello")))
    cltu[3] ^= 0x03  # two bits in one block
    with pytest.raises(ProtocolError, match="code block at octet 2 does not decode"):
        decode_cltu(bytes(cltu))
    with pytest.raises(ProtocolError, match="no tail"):
        decode_cltu(encode_cltu(b"abc")[:-8])
    with pytest.raises(ProtocolError, match="must start with EB90"):
        decode_cltu(b"\x00\x00")


@given(st.data())
def test_cltu_deframer_finds_frames_in_garbage_with_single_bit_errors(data: st.DataObject) -> None:
    frames = [build_tc_frame(171, 1, i, bytes([i]) * (i * 9)) for i in range(data.draw(st.integers(1, 5)))]
    stream = bytearray()
    flips = 0
    for frame in frames:
        stream += data.draw(st.binary(max_size=40)).replace(b"\xeb", b"\x00")
        cltu = bytearray(encode_cltu(frame))
        if data.draw(st.booleans()):
            bit = data.draw(st.integers(16, (len(cltu) - 8) * 8 - 1))
            if (bit - 16) % 64 != 63:  # the filler bit is not covered by the code
                cltu[bit // 8] ^= 0x80 >> (bit % 8)
                flips += 1
        stream += cltu
    d = CltuDeframer()
    out = [f for chunk in data.draw(pst.chunkings(bytes(stream))) for f in d.feed(chunk)]
    assert out == frames
    assert d.counters.corrected_blocks == flips and d.counters.cltus == len(frames)
