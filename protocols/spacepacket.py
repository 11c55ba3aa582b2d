"""Space packet primary header (CCSDS 133.0-B-2 Space Packet Protocol, section 4.1.3).

Six octets, big-endian: packet version number 3b (0), packet type 1b (0 TM, 1 TC),
secondary header flag 1b, APID 11b (0x7FF is the idle APID), sequence flags 2b
(3 = unsegmented), packet sequence count 14b, packet data length 16b (octets in the
packet data field minus one).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from construct import BitsInteger, BitStruct, Bytes, Flag, Struct, this

from protocols.errors import ProtocolError

PRIMARY_HEADER_LENGTH = 6
IDLE_APID = 0x7FF
MAX_APID = 0x7FF
MAX_SEQ_COUNT = 0x3FFF
TYPE_TM = 0
TYPE_TC = 1
SEQ_UNSEGMENTED = 3

primary_header = BitStruct(
    "packet_version_number" / BitsInteger(3),
    "packet_type" / BitsInteger(1),
    "secondary_header_flag" / Flag,
    "application_process_id" / BitsInteger(11),
    "sequence_flags" / BitsInteger(2),
    "packet_sequence_count" / BitsInteger(14),
    "packet_data_length" / BitsInteger(16),
)

space_packet = Struct(
    "primary_header" / primary_header,
    "packet_data_field" / Bytes(this.primary_header.packet_data_length + 1),
)

_HEADER = struct.Struct(">HHH")


@dataclass(frozen=True)
class SpacePacketHeader:
    """The primary header's fields (CCSDS 133.0-B-2 figure 4-2)."""

    packet_type: int
    secondary_header_flag: bool
    apid: int
    sequence_flags: int
    seq_count: int
    data_length: int
    version: int = 0

    @property
    def packet_length(self) -> int:
        """Total octets in the packet: header + data field."""
        return PRIMARY_HEADER_LENGTH + self.data_length + 1

    @property
    def is_idle(self) -> bool:
        return self.apid == IDLE_APID


def build_primary_header(
    packet_type: int,
    apid: int,
    seq_count: int,
    data_field_length: int,
    secondary_header_flag: bool = True,
    sequence_flags: int = SEQ_UNSEGMENTED,
) -> bytes:
    """The 6-octet primary header for a data field of `data_field_length` octets (>= 1)."""
    if not 0 <= apid <= MAX_APID:
        raise ProtocolError(f"APID must be 0..2047, got {apid}")
    if not 0 <= seq_count <= MAX_SEQ_COUNT:
        raise ProtocolError(f"packet sequence count must be 0..16383, got {seq_count}")
    if not 1 <= data_field_length <= 65536:
        raise ProtocolError(f"packet data field must be 1..65536 octets, got {data_field_length}")
    if packet_type not in (TYPE_TM, TYPE_TC):
        raise ProtocolError(f"packet type must be 0 (TM) or 1 (TC), got {packet_type}")
    return bytes(
        primary_header.build(
            {
                "packet_version_number": 0,
                "packet_type": packet_type,
                "secondary_header_flag": secondary_header_flag,
                "application_process_id": apid,
                "sequence_flags": sequence_flags,
                "packet_sequence_count": seq_count,
                "packet_data_length": data_field_length - 1,
            }
        )
    )


def parse_primary_header(data: bytes | bytearray | memoryview, offset: int = 0) -> SpacePacketHeader:
    """Parse the primary header at `offset` (struct fast path; tests prove it equals the layout)."""
    if len(data) - offset < PRIMARY_HEADER_LENGTH:
        raise ProtocolError(
            f"space packet header needs 6 octets at offset {offset}, got {max(0, len(data) - offset)}"
        )
    word0, word1, length = _HEADER.unpack_from(data, offset)
    return SpacePacketHeader(
        packet_type=(word0 >> 12) & 1,
        secondary_header_flag=bool(word0 & 0x0800),
        apid=word0 & 0x7FF,
        sequence_flags=word1 >> 14,
        seq_count=word1 & 0x3FFF,
        data_length=length,
        version=word0 >> 13,
    )


def packet_length_at(data: bytes | bytearray | memoryview, offset: int = 0) -> int:
    """Total length of the packet whose header starts at `offset` (needs 6 octets there)."""
    return PRIMARY_HEADER_LENGTH + 1 + ((data[offset + 4] << 8) | data[offset + 5])


def build_space_packet(
    packet_type: int,
    apid: int,
    seq_count: int,
    data: bytes,
    secondary_header_flag: bool = True,
    sequence_flags: int = SEQ_UNSEGMENTED,
) -> bytes:
    """A whole space packet: primary header + `data` (the packet data field, >= 1 octet)."""
    header = build_primary_header(
        packet_type, apid, seq_count, len(data), secondary_header_flag, sequence_flags
    )
    return header + bytes(data)


def parse_space_packet(data: bytes | bytearray | memoryview) -> tuple[SpacePacketHeader, bytes]:
    """Split one packet into header and data field; the length must match exactly."""
    header = parse_primary_header(data)
    if header.version != 0:
        raise ProtocolError(f"packet version number must be 0, got {header.version} at octet 0")
    if len(data) != header.packet_length:
        raise ProtocolError(
            f"space packet length field says {header.packet_length} octets, got {len(data)}"
        )
    return header, bytes(data[PRIMARY_HEADER_LENGTH:])


def build_idle_packet(length: int, seq_count: int = 0, fill: int = 0x55) -> bytes:
    """An idle packet (APID 0x7FF, no secondary header) of `length` total octets (>= 7)."""
    if length < PRIMARY_HEADER_LENGTH + 1:
        raise ProtocolError(f"an idle packet needs at least 7 octets, asked for {length}")
    return build_space_packet(
        TYPE_TM, IDLE_APID, seq_count, bytes([fill]) * (length - PRIMARY_HEADER_LENGTH),
        secondary_header_flag=False,
    )
