"""Communications Link Control Word (CCSDS 232.0-B-4 section 4.2.1, used by COP-1 in
CCSDS 232.1-B-2): 32 bits, MSB first, carried in the TM frame's operational control field.

control word type 1b (0), CLCW version number 2b (0), status field 3b, COP in effect 2b (1),
virtual channel identification 6b, reserved spare 2b, no RF available 1b, no bit lock 1b,
lockout 1b, wait 1b, retransmit 1b, FARM-B counter 2b, reserved spare 1b, report value 8b
(N(R) = V(R)).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from construct import BitsInteger, BitStruct, Flag

from protocols.errors import ProtocolError

CLCW_LENGTH = 4
COP_1 = 1

clcw = BitStruct(
    "control_word_type" / BitsInteger(1),
    "clcw_version_number" / BitsInteger(2),
    "status_field" / BitsInteger(3),
    "cop_in_effect" / BitsInteger(2),
    "virtual_channel_identification" / BitsInteger(6),
    "reserved_spare" / BitsInteger(2),
    "no_rf_available" / Flag,
    "no_bit_lock" / Flag,
    "lockout" / Flag,
    "wait" / Flag,
    "retransmit" / Flag,
    "farm_b_counter" / BitsInteger(2),
    "reserved_spare_2" / BitsInteger(1),
    "report_value" / BitsInteger(8),
)


@dataclass(frozen=True)
class Clcw:
    """The CLCW's fields; `report_value` is FARM-1's V(R)."""

    vcid: int = 0
    report_value: int = 0
    lockout: bool = False
    wait: bool = False
    retransmit: bool = False
    farm_b_counter: int = 0
    no_rf_available: bool = False
    no_bit_lock: bool = False
    status_field: int = 0
    cop_in_effect: int = COP_1
    version: int = 0
    control_word_type: int = 0

    def to_int(self) -> int:
        """The 32-bit CLCW value (struct fast path; tests prove it equals the layout)."""
        for name, value, high in (
            ("VCID", self.vcid, 63),
            ("report value", self.report_value, 255),
            ("FARM-B counter", self.farm_b_counter, 3),
            ("status field", self.status_field, 7),
            ("COP in effect", self.cop_in_effect, 3),
            ("CLCW version", self.version, 3),
            ("control word type", self.control_word_type, 1),
        ):
            if not 0 <= value <= high:
                raise ProtocolError(f"CLCW {name} must be 0..{high}, got {value}")
        return (
            (self.control_word_type << 31)
            | (self.version << 29)
            | (self.status_field << 26)
            | (self.cop_in_effect << 24)
            | (self.vcid << 18)
            | (int(self.no_rf_available) << 15)
            | (int(self.no_bit_lock) << 14)
            | (int(self.lockout) << 13)
            | (int(self.wait) << 12)
            | (int(self.retransmit) << 11)
            | (self.farm_b_counter << 9)
            | self.report_value
        )

    @classmethod
    def from_int(cls, value: int) -> Clcw:
        if not 0 <= value <= 0xFFFFFFFF:
            raise ProtocolError(f"a CLCW is 32 bits, got {value}")
        return cls(
            control_word_type=value >> 31,
            version=(value >> 29) & 3,
            status_field=(value >> 26) & 7,
            cop_in_effect=(value >> 24) & 3,
            vcid=(value >> 18) & 0x3F,
            no_rf_available=bool(value & 0x8000),
            no_bit_lock=bool(value & 0x4000),
            lockout=bool(value & 0x2000),
            wait=bool(value & 0x1000),
            retransmit=bool(value & 0x0800),
            farm_b_counter=(value >> 9) & 3,
            report_value=value & 0xFF,
        )

    def to_bytes(self) -> bytes:
        return struct.pack(">I", self.to_int())


def encode_clcw(word: Clcw) -> bytes:
    """The 4 octets of a CLCW, built with the construct layout."""
    return bytes(
        clcw.build(
            {
                "control_word_type": word.control_word_type,
                "clcw_version_number": word.version,
                "status_field": word.status_field,
                "cop_in_effect": word.cop_in_effect,
                "virtual_channel_identification": word.vcid,
                "reserved_spare": 0,
                "no_rf_available": word.no_rf_available,
                "no_bit_lock": word.no_bit_lock,
                "lockout": word.lockout,
                "wait": word.wait,
                "retransmit": word.retransmit,
                "farm_b_counter": word.farm_b_counter,
                "reserved_spare_2": 0,
                "report_value": word.report_value,
            }
        )
    )


def decode_clcw(data: bytes | bytearray | memoryview | int) -> Clcw:
    """A Clcw from 4 octets (parsed with the construct layout) or a 32-bit value."""
    if isinstance(data, int):
        return Clcw.from_int(data)
    if len(data) != CLCW_LENGTH:
        raise ProtocolError(f"a CLCW is {CLCW_LENGTH} octets, got {len(data)}")
    p = clcw.parse(bytes(data))
    return Clcw(
        vcid=p.virtual_channel_identification,
        report_value=p.report_value,
        lockout=p.lockout,
        wait=p.wait,
        retransmit=p.retransmit,
        farm_b_counter=p.farm_b_counter,
        no_rf_available=p.no_rf_available,
        no_bit_lock=p.no_bit_lock,
        status_field=p.status_field,
        cop_in_effect=p.cop_in_effect,
        version=p.clcw_version_number,
        control_word_type=p.control_word_type,
    )
