"""Space packets, PUS-C TC/TM packets, CUC time and CRC: goldens, round trips, independent reader."""

from __future__ import annotations

import warnings
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import strategies as pst
from protocols.crc import crc16
from protocols.cuc import MISSION_EPOCH, Cuc
from protocols.errors import ProtocolError
from protocols.pus import (
    build_tc_packet,
    build_tm_packet,
    parse_tc_packet,
    parse_tc_packet_layout,
    parse_tm_packet,
    parse_tm_packet_layout,
)
from protocols.spacepacket import (
    IDLE_APID,
    build_idle_packet,
    build_space_packet,
    parse_primary_header,
    parse_space_packet,
    primary_header,
)

GOLDEN_TC = bytes.fromhex("1801c01600062f11010000ab62")
GOLDEN_TM = bytes.fromhex("0820c0010010200319000000000000000000000102f5c6")


def test_crc_check_value_and_residue() -> None:
    assert crc16(b"123456789") == 0x29B1
    data = b"farside"
    c = crc16(data)
    assert crc16(data + c.to_bytes(2, "big")) == 0
    assert crc16(b"6789", crc16(b"12345")) == 0x29B1


def test_golden_pus_tc_ping() -> None:
    assert build_tc_packet(1, 22, 17, 1) == GOLDEN_TC
    p = parse_tc_packet(GOLDEN_TC)
    assert (p.apid, p.seq_count, p.service, p.subservice, p.app_data, p.ack) == (1, 22, 17, 1, b"", 0xF)
    assert p.request_id == (0x1801, 0xC016)


def test_golden_pus_tm_hk() -> None:
    assert build_tm_packet(0x20, 1, 3, 25, b"\x01\x02") == GOLDEN_TM
    p = parse_tm_packet(GOLDEN_TM)
    assert (p.apid, p.seq_count, p.service, p.subservice, p.data) == (0x20, 1, 3, 25, b"\x01\x02")


@given(pst.tc_packet_args())
def test_tc_packet_round_trip(args: dict) -> None:
    raw = build_tc_packet(**args)
    p = parse_tc_packet(raw)
    assert (p.apid, p.seq_count, p.service, p.subservice, p.app_data, p.ack, p.source_id) == (
        args["apid"], args["seq_count"], args["service"], args["subservice"],
        args["app_data"], args["ack"], args["source_id"],
    )
    assert p.to_bytes() == raw
    assert parse_tc_packet_layout(raw) == p


@given(pst.tm_packet_args())
def test_tm_packet_round_trip(args: dict) -> None:
    raw = build_tm_packet(**args)
    p = parse_tm_packet(raw)
    assert (p.apid, p.seq_count, p.service, p.subservice, p.data, p.time, p.msg_counter, p.dest_id) == (
        args["apid"], args["seq_count"], args["service"], args["subservice"], args["data"],
        args["time"], args["msg_counter"], args["dest_id"],
    )
    assert p.to_bytes() == raw
    assert parse_tm_packet_layout(raw) == p


@given(pst.tc_packet_args())
def test_spacepackets_library_reads_our_tc_identically(args: dict) -> None:
    from spacepackets.ecss.tc import PusTc

    raw = build_tc_packet(**args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = PusTc.unpack(raw)
        assert (theirs.apid, theirs.seq_count, theirs.service, theirs.subservice) == (
            args["apid"], args["seq_count"], args["service"], args["subservice"],
        )
        assert theirs.app_data == args["app_data"]
        assert theirs.source_id == args["source_id"]
        assert theirs.pus_tc_sec_header.ack_flags == args["ack"]
        assert theirs.pack() == raw


@given(pst.tm_packet_args())
def test_spacepackets_library_reads_our_tm_identically(args: dict) -> None:
    from spacepackets.ecss.tm import PusTm

    raw = build_tm_packet(**args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = PusTm.unpack(raw, timestamp_len=6)
        sec = theirs.pus_tm_sec_header
        assert (theirs.apid, theirs.seq_count, theirs.service, theirs.subservice) == (
            args["apid"], args["seq_count"], args["service"], args["subservice"],
        )
        assert (sec.message_counter, sec.dest_id, bytes(theirs.timestamp)) == (
            args["msg_counter"], args["dest_id"], args["time"],
        )
        assert theirs.source_data == args["data"]
        assert theirs.pack() == raw


@given(st.integers(0, 1), pst.apids, pst.seq_counts, st.binary(min_size=1, max_size=100), st.booleans())
def test_space_packet_round_trip_and_fast_header_equals_layout(
    ptype: int, apid: int, seq: int, data: bytes, sec: bool
) -> None:
    raw = build_space_packet(ptype, apid, seq, data, sec)
    header, body = parse_space_packet(raw)
    layout = primary_header.parse(raw[:6])
    assert body == data
    assert (header.packet_type, header.apid, header.seq_count, header.secondary_header_flag) == (
        ptype, apid, seq, sec,
    )
    assert (layout.packet_type, layout.application_process_id, layout.packet_sequence_count,
            layout.packet_data_length) == (ptype, apid, seq, len(data) - 1)


@given(st.integers(7, 2000))
def test_idle_packet_has_idle_apid_and_length(length: int) -> None:
    raw = build_idle_packet(length)
    assert len(raw) == length
    assert parse_primary_header(raw).apid == IDLE_APID


def test_pus_parse_errors_say_what_and_where() -> None:
    bad = bytearray(GOLDEN_TC)
    bad[8] ^= 1
    with pytest.raises(ProtocolError, match="octet 11"):
        parse_tc_packet(bytes(bad))
    with pytest.raises(ProtocolError, match="length field"):
        parse_tc_packet(GOLDEN_TC + b"\0")
    with pytest.raises(ProtocolError, match="TM packet"):
        parse_tc_packet(GOLDEN_TM)
    with pytest.raises(ProtocolError, match="6 octets"):
        parse_tm_packet(b"\x08")


def test_every_bit_flip_in_a_tc_packet_is_detected() -> None:
    raw = build_tc_packet(1, 5, 200, 2, bytes(range(8)))
    for i in range(len(raw) * 8):
        bad = bytearray(raw)
        bad[i // 8] ^= 0x80 >> (i % 8)
        with pytest.raises(ProtocolError):
            parse_tc_packet(bytes(bad))


@given(pst.cucs)
def test_cuc_round_trips(t: Cuc) -> None:
    assert Cuc.from_bytes(t.to_bytes()) == t
    assert Cuc.from_seconds(t.to_seconds()) == t
    assert Cuc.from_datetime(t.to_datetime()) == Cuc(t.coarse, t.fine) or abs(
        Cuc.from_datetime(t.to_datetime()).to_seconds() - t.to_seconds()
    ) < 2e-5


def test_cuc_mission_epoch_and_custom_epoch() -> None:
    assert MISSION_EPOCH == datetime(2019, 1, 3, 2, 26, tzinfo=timezone.utc)
    t = Cuc.from_datetime(datetime(2019, 1, 3, 2, 27, 0, 500000, tzinfo=timezone.utc))
    assert (t.coarse, t.fine) == (60, 32768)
    assert t.to_bytes() == bytes.fromhex("0000003c8000")
    other = datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert Cuc.from_datetime(datetime(2000, 1, 1, 0, 0, 10, tzinfo=timezone.utc), other).coarse == 10
    with pytest.raises(ProtocolError, match="before the epoch"):
        Cuc.from_datetime(datetime(2018, 1, 1, tzinfo=timezone.utc))
