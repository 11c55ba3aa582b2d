"""PUS-C telecommand and telemetry packets (ECSS-E-ST-70-41C, sections 7.4.3 and 7.4.4):
a CCSDS space packet (133.0-B-2) with the PUS secondary header and a packet error control
field (CRC-16/CCITT-FALSE over the whole packet before it).

TC secondary header (5 octets): TC packet PUS version number 4b (2), acknowledgement flags
4b, service type ID u8, message subtype ID u8, source ID u16.
TM secondary header (7 octets + time): TM packet PUS version number 4b (2), spacecraft time
reference status 4b, service type ID u8, message subtype ID u8, message type counter u16,
destination ID u16, then the absolute time (CUC 4+2 octets, see cuc.py).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from construct import (
    BitsInteger,
    BitStruct,
    Bytes,
    Checksum,
    ChecksumError,
    ConstructError,
    Int8ub,
    Int16ub,
    RawCopy,
    Struct,
    this,
)

from protocols.crc import crc16
from protocols.cuc import CUC_LENGTH, Cuc
from protocols.errors import ProtocolError
from protocols.spacepacket import (
    PRIMARY_HEADER_LENGTH,
    SEQ_UNSEGMENTED,
    TYPE_TC,
    TYPE_TM,
    parse_primary_header,
    primary_header,
)

PUS_VERSION = 2
TC_SECONDARY_HEADER_LENGTH = 5
TM_SECONDARY_HEADER_LENGTH = 7 + CUC_LENGTH
CRC_LENGTH = 2
TC_OVERHEAD = PRIMARY_HEADER_LENGTH + TC_SECONDARY_HEADER_LENGTH + CRC_LENGTH  # 13
TM_OVERHEAD = PRIMARY_HEADER_LENGTH + TM_SECONDARY_HEADER_LENGTH + CRC_LENGTH  # 21
ACK_ALL = 0xF

tc_secondary_header = Struct(
    "version_and_ack"
    / BitStruct(
        "tc_packet_pus_version_number" / BitsInteger(4),
        "acknowledgement_flags" / BitsInteger(4),
    ),
    "service_type_id" / Int8ub,
    "message_subtype_id" / Int8ub,
    "source_id" / Int16ub,
)

tm_secondary_header = Struct(
    "version_and_time_ref"
    / BitStruct(
        "tm_packet_pus_version_number" / BitsInteger(4),
        "spacecraft_time_reference_status" / BitsInteger(4),
    ),
    "service_type_id" / Int8ub,
    "message_subtype_id" / Int8ub,
    "message_type_counter" / Int16ub,
    "destination_id" / Int16ub,
    "time" / Bytes(CUC_LENGTH),
)

tc_packet = Struct(
    "packet"
    / RawCopy(
        Struct(
            "primary_header" / primary_header,
            "secondary_header" / tc_secondary_header,
            "application_data"
            / Bytes(this.primary_header.packet_data_length + 1 - TC_SECONDARY_HEADER_LENGTH - CRC_LENGTH),
        )
    ),
    "packet_error_control" / Checksum(Int16ub, crc16, this.packet.data),
)

tm_packet = Struct(
    "packet"
    / RawCopy(
        Struct(
            "primary_header" / primary_header,
            "secondary_header" / tm_secondary_header,
            "source_data"
            / Bytes(this.primary_header.packet_data_length + 1 - TM_SECONDARY_HEADER_LENGTH - CRC_LENGTH),
        )
    ),
    "packet_error_control" / Checksum(Int16ub, crc16, this.packet.data),
)


@dataclass(frozen=True)
class TcPacket:
    """A parsed PUS-C telecommand packet."""

    apid: int
    seq_count: int
    service: int
    subservice: int
    app_data: bytes = b""
    ack: int = ACK_ALL
    source_id: int = 0
    sequence_flags: int = SEQ_UNSEGMENTED
    crc: int = 0

    @property
    def request_id(self) -> tuple[int, int]:
        """(packet ID, packet sequence control): the first 4 octets, as TM 1/x reports them."""
        packet_id = 0x1000 | 0x0800 | self.apid
        return packet_id, (self.sequence_flags << 14) | self.seq_count

    def to_bytes(self) -> bytes:
        return build_tc_packet(
            self.apid, self.seq_count, self.service, self.subservice, self.app_data,
            self.ack, self.source_id,
        )


@dataclass(frozen=True)
class TmPacket:
    """A parsed PUS-C telemetry packet."""

    apid: int
    seq_count: int
    service: int
    subservice: int
    data: bytes = b""
    time: bytes = b"\0" * CUC_LENGTH
    msg_counter: int = 0
    dest_id: int = 0
    time_ref_status: int = 0
    sequence_flags: int = SEQ_UNSEGMENTED
    crc: int = 0

    @property
    def cuc(self) -> Cuc:
        return Cuc.from_bytes(self.time)

    def to_bytes(self) -> bytes:
        return build_tm_packet(
            self.apid, self.seq_count, self.service, self.subservice, self.data, self.time,
            self.msg_counter, self.dest_id,
        )


def _check_range(name: str, value: int, high: int) -> None:
    if not 0 <= value <= high:
        raise ProtocolError(f"{name} must be 0..{high}, got {value}")


def _check_header(apid: int, seq_count: int, service: int, subservice: int) -> None:
    _check_range("APID", apid, 0x7FF)
    _check_range("packet sequence count", seq_count, 0x3FFF)
    _check_range("service type", service, 0xFF)
    _check_range("message subtype", subservice, 0xFF)


def build_tc_packet(
    apid: int,
    seq_count: int,
    service: int,
    subservice: int,
    app_data: bytes = b"",
    ack: int = ACK_ALL,
    source_id: int = 0,
) -> bytes:
    """A PUS-C TC packet with its CRC."""
    _check_header(apid, seq_count, service, subservice)
    _check_range("acknowledgement flags", ack, 0xF)
    _check_range("source ID", source_id, 0xFFFF)
    data_field = TC_SECONDARY_HEADER_LENGTH + len(app_data) + CRC_LENGTH
    if data_field > 65536:
        raise ProtocolError(f"TC application data too long: {len(app_data)} octets")
    return bytes(
        tc_packet.build(
            {
                "packet": {
                    "value": {
                        "primary_header": {
                            "packet_version_number": 0,
                            "packet_type": TYPE_TC,
                            "secondary_header_flag": True,
                            "application_process_id": apid,
                            "sequence_flags": SEQ_UNSEGMENTED,
                            "packet_sequence_count": seq_count,
                            "packet_data_length": data_field - 1,
                        },
                        "secondary_header": {
                            "version_and_ack": {
                                "tc_packet_pus_version_number": PUS_VERSION,
                                "acknowledgement_flags": ack,
                            },
                            "service_type_id": service,
                            "message_subtype_id": subservice,
                            "source_id": source_id,
                        },
                        "application_data": bytes(app_data),
                    }
                },
                "packet_error_control": None,
            }
        )
    )


def build_tm_packet(
    apid: int,
    seq_count: int,
    service: int,
    subservice: int,
    data: bytes = b"",
    time: bytes | Cuc = b"\0" * CUC_LENGTH,
    msg_counter: int = 0,
    dest_id: int = 0,
) -> bytes:
    """A PUS-C TM packet with its CRC; `time` is 6 CUC octets or a Cuc."""
    _check_header(apid, seq_count, service, subservice)
    _check_range("message type counter", msg_counter, 0xFFFF)
    _check_range("destination ID", dest_id, 0xFFFF)
    time_octets = time.to_bytes() if isinstance(time, Cuc) else bytes(time)
    if len(time_octets) != CUC_LENGTH:
        raise ProtocolError(f"TM time must be {CUC_LENGTH} CUC octets, got {len(time_octets)}")
    data_field = TM_SECONDARY_HEADER_LENGTH + len(data) + CRC_LENGTH
    if data_field > 65536:
        raise ProtocolError(f"TM source data too long: {len(data)} octets")
    return bytes(
        tm_packet.build(
            {
                "packet": {
                    "value": {
                        "primary_header": {
                            "packet_version_number": 0,
                            "packet_type": TYPE_TM,
                            "secondary_header_flag": True,
                            "application_process_id": apid,
                            "sequence_flags": SEQ_UNSEGMENTED,
                            "packet_sequence_count": seq_count,
                            "packet_data_length": data_field - 1,
                        },
                        "secondary_header": {
                            "version_and_time_ref": {
                                "tm_packet_pus_version_number": PUS_VERSION,
                                "spacecraft_time_reference_status": 0,
                            },
                            "service_type_id": service,
                            "message_subtype_id": subservice,
                            "message_type_counter": msg_counter,
                            "destination_id": dest_id,
                            "time": time_octets,
                        },
                        "source_data": bytes(data),
                    }
                },
                "packet_error_control": None,
            }
        )
    )


def _precheck(data: bytes | bytearray | memoryview, packet_type: int, overhead: int, what: str) -> bytes:
    raw = bytes(data)
    if len(raw) < PRIMARY_HEADER_LENGTH:
        parse_primary_header(raw)  # raises with the octet count
    word0 = (raw[0] << 8) | raw[1]
    if word0 >> 13:
        raise ProtocolError(f"{what}: packet version number must be 0, got {word0 >> 13} at octet 0")
    if (word0 >> 12) & 1 != packet_type:
        seen = "TC" if packet_type == TYPE_TM else "TM"
        raise ProtocolError(f"{what}: expected packet type {packet_type}, got a {seen} packet at octet 0")
    if not word0 & 0x0800:
        raise ProtocolError(f"{what}: secondary header flag is 0 at octet 0 (no PUS header)")
    length = PRIMARY_HEADER_LENGTH + 1 + ((raw[4] << 8) | raw[5])
    if len(raw) != length:
        raise ProtocolError(f"{what}: length field (octets 4-5) says {length} octets, got {len(raw)}")
    if len(raw) < overhead:
        raise ProtocolError(f"{what}: needs at least {overhead} octets, got {len(raw)}")
    crc = crc16(raw[:-CRC_LENGTH])
    seen_crc = (raw[-2] << 8) | raw[-1]
    if crc != seen_crc:
        raise ProtocolError(
            f"{what}: packet error control at octet {len(raw) - 2} is {seen_crc:04x}, expected {crc:04x}"
        )
    return raw


_TC_FAST = struct.Struct(">HHHBBBH")
_TM_FAST = struct.Struct(">HHHBBBHH6s")


def parse_tc_packet(data: bytes | bytearray | memoryview) -> TcPacket:
    """Parse and check (length, PUS version, CRC) a PUS-C TC packet (struct fast path; tests
    prove it equals parse_tc_packet_layout, the construct layout)."""
    raw = _precheck(data, TYPE_TC, TC_OVERHEAD, "TC packet")
    _, word1, _, flags, service, subservice, source_id = _TC_FAST.unpack_from(raw)
    if flags >> 4 != PUS_VERSION:
        raise ProtocolError(f"TC packet: PUS version at octet 6 is {flags >> 4}, expected {PUS_VERSION}")
    return TcPacket(
        apid=((raw[0] & 7) << 8) | raw[1],
        seq_count=word1 & 0x3FFF,
        service=service,
        subservice=subservice,
        app_data=raw[TC_OVERHEAD - CRC_LENGTH : -CRC_LENGTH],
        ack=flags & 0xF,
        source_id=source_id,
        sequence_flags=word1 >> 14,
        crc=(raw[-2] << 8) | raw[-1],
    )


def parse_tm_packet(data: bytes | bytearray | memoryview) -> TmPacket:
    """Parse and check (length, PUS version, CRC) a PUS-C TM packet (struct fast path; tests
    prove it equals parse_tm_packet_layout, the construct layout)."""
    raw = _precheck(data, TYPE_TM, TM_OVERHEAD, "TM packet")
    _, word1, _, flags, service, subservice, counter, dest, time = _TM_FAST.unpack_from(raw)
    if flags >> 4 != PUS_VERSION:
        raise ProtocolError(f"TM packet: PUS version at octet 6 is {flags >> 4}, expected {PUS_VERSION}")
    return TmPacket(
        apid=((raw[0] & 7) << 8) | raw[1],
        seq_count=word1 & 0x3FFF,
        service=service,
        subservice=subservice,
        data=raw[TM_OVERHEAD - CRC_LENGTH : -CRC_LENGTH],
        time=time,
        msg_counter=counter,
        dest_id=dest,
        time_ref_status=flags & 0xF,
        sequence_flags=word1 >> 14,
        crc=(raw[-2] << 8) | raw[-1],
    )


def _parse_layout(layout: Any, raw: bytes, what: str) -> Any:
    """Parse with a construct layout, turning construct's errors into ProtocolError."""
    try:
        return layout.parse(raw)
    except ChecksumError as exc:  # pragma: no cover - caught by _precheck
        raise ProtocolError(f"{what}: bad packet error control: {exc}") from exc
    except ConstructError as exc:
        raise ProtocolError(f"{what}: {exc}") from exc


def parse_tc_packet_layout(data: bytes | bytearray | memoryview) -> TcPacket:
    """parse_tc_packet through the construct layout (the reference for the fast path)."""
    raw = _precheck(data, TYPE_TC, TC_OVERHEAD, "TC packet")
    parsed = _parse_layout(tc_packet, raw, "TC packet")
    value = parsed.packet.value
    sec = value.secondary_header
    version = sec.version_and_ack.tc_packet_pus_version_number
    if version != PUS_VERSION:
        raise ProtocolError(f"TC packet: PUS version at octet 6 is {version}, expected {PUS_VERSION}")
    return TcPacket(
        apid=value.primary_header.application_process_id,
        seq_count=value.primary_header.packet_sequence_count,
        service=sec.service_type_id,
        subservice=sec.message_subtype_id,
        app_data=bytes(value.application_data),
        ack=sec.version_and_ack.acknowledgement_flags,
        source_id=sec.source_id,
        sequence_flags=value.primary_header.sequence_flags,
        crc=parsed.packet_error_control,
    )


def parse_tm_packet_layout(data: bytes | bytearray | memoryview) -> TmPacket:
    """parse_tm_packet through the construct layout (the reference for the fast path)."""
    raw = _precheck(data, TYPE_TM, TM_OVERHEAD, "TM packet")
    parsed = _parse_layout(tm_packet, raw, "TM packet")
    value = parsed.packet.value
    sec = value.secondary_header
    version = sec.version_and_time_ref.tm_packet_pus_version_number
    if version != PUS_VERSION:
        raise ProtocolError(f"TM packet: PUS version at octet 6 is {version}, expected {PUS_VERSION}")
    return TmPacket(
        apid=value.primary_header.application_process_id,
        seq_count=value.primary_header.packet_sequence_count,
        service=sec.service_type_id,
        subservice=sec.message_subtype_id,
        data=bytes(value.source_data),
        time=bytes(sec.time),
        msg_counter=sec.message_type_counter,
        dest_id=sec.destination_id,
        time_ref_status=sec.version_and_time_ref.spacecraft_time_reference_status,
        sequence_flags=value.primary_header.sequence_flags,
        crc=parsed.packet_error_control,
    )
