"""TC transfer frame (CCSDS 232.0-B-4 TC Space Data Link Protocol, section 4.1).

Primary header, 5 octets: transfer frame version number 2b (0), bypass flag 1b, control
command flag 1b, reserved spare 2b, spacecraft ID 10b, virtual channel ID 6b, frame length
10b (total octets - 1), frame sequence number N(S) 8b; then the data field and the frame
error control field (CRC-16/CCITT-FALSE). At most 1024 octets.

Frame types (bypass, control): AD (0, 0) sequence-controlled, BD (1, 0) expedited,
BC (1, 1) COP-1 control commands: Unlock `00` and Set V(R) `82 00 NN`.

With SDLS (CCSDS 355.0-B-2, see sdls.py) the data field is security header | data | MAC
(16 octets); the security header is SPI u16 then, per the SA's suite, an IV (12 octets,
AES-GCM suites) or a sequence number u32 (legacy HMAC suite).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol

from construct import (
    BitsInteger,
    BitStruct,
    Bytes,
    Checksum,
    Flag,
    Int16ub,
    Int32ub,
    RawCopy,
    Struct,
    this,
)

from protocols.crc import crc16
from protocols.errors import AuthError, ProtocolError

PRIMARY_HEADER_LENGTH = 5
FECF_LENGTH = 2
MAX_FRAME_LENGTH = 1024
MIN_FRAME_LENGTH = PRIMARY_HEADER_LENGTH + FECF_LENGTH
SECURITY_HEADER_LENGTH = 6  # the legacy suite's (SPI + sequence number)
GCM_SECURITY_HEADER_LENGTH = 14  # SPI + IV
MAC_LENGTH = 16
SECURITY_OVERHEAD = SECURITY_HEADER_LENGTH + MAC_LENGTH  # the smallest overhead of any suite
NO_SECURITY_HEADER = 5  # auth_reason code, see sdls.AuthReason

UNLOCK = b"\x00"
SET_VR_PREFIX = b"\x82\x00"

tc_frame_primary_header = BitStruct(
    "transfer_frame_version_number" / BitsInteger(2),
    "bypass_flag" / Flag,
    "control_command_flag" / Flag,
    "reserved_spare" / BitsInteger(2),
    "spacecraft_id" / BitsInteger(10),
    "virtual_channel_id" / BitsInteger(6),
    "frame_length" / BitsInteger(10),
    "frame_sequence_number" / BitsInteger(8),
)

tc_transfer_frame = Struct(
    "frame"
    / RawCopy(
        Struct(
            "primary_header" / tc_frame_primary_header,
            "frame_data_field"
            / Bytes(this.primary_header.frame_length + 1 - PRIMARY_HEADER_LENGTH - FECF_LENGTH),
        )
    ),
    "frame_error_control_field" / Checksum(Int16ub, crc16, this.frame.data),
)

tc_security_header = Struct(
    "security_parameter_index" / Int16ub,
    "sequence_number" / Int32ub,
)

_SEC_HEADER = struct.Struct(">HI")
_HEADER = struct.Struct(">HHB")


class FrameType(Enum):
    AD = "AD"
    BD = "BD"
    BC = "BC"


def frame_type_of(bypass: bool, control: bool) -> FrameType:
    if control and not bypass:
        raise ProtocolError("control command flag 1 with bypass flag 0 is not a valid TC frame type")
    if control:
        return FrameType.BC
    return FrameType.BD if bypass else FrameType.AD


@dataclass(frozen=True)
class TcFrame:
    """A parsed TC transfer frame; spi/sec_seq/mac are set when parsed with security."""

    scid: int
    vcid: int
    frame_seq: int
    data: bytes
    bypass: bool = False
    control: bool = False
    version: int = 0
    length: int = 0
    spi: int | None = None
    sec_seq: int | None = None
    mac: bytes | None = None
    raw: bytes = field(default=b"", repr=False)
    security_header: bytes | None = field(default=None, repr=False)

    @property
    def iv(self) -> bytes | None:
        """The 12-octet IV of an AES-GCM suite's security header."""
        sec = self.security_header
        return sec[2:] if sec is not None and len(sec) == GCM_SECURITY_HEADER_LENGTH else None

    @property
    def body(self) -> bytes:
        """The data field between the security header and the MAC as sent (ciphertext for
        the aes-gcm suite)."""
        assert self.security_header is not None
        return self.raw[PRIMARY_HEADER_LENGTH + len(self.security_header) : len(self.raw) - MAC_LENGTH - FECF_LENGTH]

    @property
    def frame_type(self) -> FrameType:
        return frame_type_of(self.bypass, self.control)

    @property
    def mac_input(self) -> bytes:
        """What the MAC covers: header(5) + SPI + sequence number + data."""
        return self.raw[: len(self.raw) - MAC_LENGTH - FECF_LENGTH]


class FrameSecurity(Protocol):
    """Sender side of authentication (sdls.SecuritySender)."""

    @property
    def overhead(self) -> int:
        """Octets the security header and MAC add."""
        ...

    def secure(self, header: bytes, data: bytes) -> bytes:
        """Return security header + data + MAC for a frame whose header is `header`."""
        ...


class SecurityCheck(Protocol):
    """Receiver side of authentication (sdls.FrameAuthenticator): raise AuthError, commit
    nothing; return the plaintext data field (or None when it is the frame's as parsed)."""

    def split(self, spi: int) -> int | None:
        """The security header length of an SPI's SA, None when the SPI has none."""
        ...

    def check(self, frame: TcFrame) -> bytes | None: ...


def build_tc_frame(
    scid: int,
    vcid: int,
    frame_seq: int,
    data: bytes,
    bypass: bool = False,
    control: bool = False,
    security: FrameSecurity | None = None,
) -> bytes:
    """A whole TC frame with its FECF (and security header/MAC when `security` is given)."""
    frame_type_of(bypass, control)
    for name, value, high in (("SCID", scid, 0x3FF), ("VCID", vcid, 0x3F), ("N(S)", frame_seq, 0xFF)):
        if not 0 <= value <= high:
            raise ProtocolError(f"TC frame {name} must be 0..{high}, got {value}")
    overhead = security.overhead if security is not None else 0
    total = PRIMARY_HEADER_LENGTH + overhead + len(data) + FECF_LENGTH
    if total > MAX_FRAME_LENGTH:
        raise ProtocolError(f"TC frame would be {total} octets, more than {MAX_FRAME_LENGTH}")
    fields = {
        "transfer_frame_version_number": 0,
        "bypass_flag": bypass,
        "control_command_flag": control,
        "reserved_spare": 0,
        "spacecraft_id": scid,
        "virtual_channel_id": vcid,
        "frame_length": total - 1,
        "frame_sequence_number": frame_seq,
    }
    header = bytes(tc_frame_primary_header.build(fields))
    field_octets = bytes(data) if security is None else security.secure(header, bytes(data))
    if len(field_octets) != total - PRIMARY_HEADER_LENGTH - FECF_LENGTH:
        raise ProtocolError(f"security added {len(field_octets) - len(data)} octets, expected {overhead}")
    return bytes(
        tc_transfer_frame.build(
            {
                "frame": {"value": {"primary_header": fields, "frame_data_field": field_octets}},
                "frame_error_control_field": None,
            }
        )
    )


def frame_length_from_header(data: bytes | bytearray | memoryview, offset: int = 0) -> int:
    """Total frame octets from the header at `offset` (needs 4 octets)."""
    return (((data[offset + 2] & 0x03) << 8) | data[offset + 3]) + 1


def parse_tc_frame(
    data: bytes | bytearray | memoryview,
    security: bool | int | SecurityCheck | None = None,
) -> TcFrame:
    """Parse and check (length, FECF) a TC frame.

    security: None = plain data field; True = split the legacy security header (SPI +
    sequence number) and MAC out of the data field (no check); an int = split a security
    header of that length (14: SPI + IV); an object with `split(spi)` and `check(frame)`
    (sdls.FrameAuthenticator) = split per the SPI's SA and verify it, raising AuthError
    without committing the sequence number (the frame's data is then the plaintext).
    """
    raw = bytes(data)
    if len(raw) < MIN_FRAME_LENGTH:
        raise ProtocolError(f"TC frame needs at least {MIN_FRAME_LENGTH} octets, got {len(raw)}")
    if raw[0] >> 6 != 0:
        raise ProtocolError(f"TC frame version number at octet 0 is {raw[0] >> 6}, expected 0")
    length = frame_length_from_header(raw)
    if length != len(raw):
        raise ProtocolError(f"TC frame length field (octets 2-3) says {length} octets, got {len(raw)}")
    crc = crc16(raw[:-FECF_LENGTH])
    seen = (raw[-2] << 8) | raw[-1]
    if crc != seen:
        raise ProtocolError(f"TC frame FECF at octet {len(raw) - 2} is {seen:04x}, expected {crc:04x}")
    # struct fast path; tests prove it equals the construct layout (parse_tc_frame_layout)
    word0, word1, frame_seq = _HEADER.unpack_from(raw)
    bypass, control = bool(word0 & 0x2000), bool(word0 & 0x1000)
    frame_type_of(bypass, control)
    field_octets = raw[PRIMARY_HEADER_LENGTH:-FECF_LENGTH]
    frame = TcFrame(
        scid=word0 & 0x3FF,
        vcid=word1 >> 10,
        frame_seq=frame_seq,
        data=field_octets,
        bypass=bypass,
        control=control,
        version=word0 >> 14,
        length=length,
        raw=raw,
    )
    if security is None or security is False:
        return frame
    if len(field_octets) < SECURITY_OVERHEAD:
        raise AuthError(
            NO_SECURITY_HEADER,
            f"TC frame data field is {len(field_octets)} octets, too short for the "
            f"{SECURITY_OVERHEAD}-octet security header and MAC (octet {PRIMARY_HEADER_LENGTH})",
        )
    spi = (field_octets[0] << 8) | field_octets[1]
    if security is True:
        header_length = SECURITY_HEADER_LENGTH
    elif isinstance(security, int):
        header_length = security
    else:
        found = security.split(spi)
        if found is None:
            raise AuthError(1, f"no key for SPI {spi} (octets 5-6)", spi)  # UNKNOWN_SPI
        header_length = found
    if len(field_octets) < header_length + MAC_LENGTH:
        raise AuthError(
            NO_SECURITY_HEADER,
            f"TC frame data field is {len(field_octets)} octets, too short for SPI {spi}'s "
            f"{header_length + MAC_LENGTH}-octet security header and MAC (octet {PRIMARY_HEADER_LENGTH})",
            spi,
        )
    sec = field_octets[:header_length]
    if header_length == SECURITY_HEADER_LENGTH:
        sec_seq = _SEC_HEADER.unpack_from(sec)[1]
    else:
        sec_seq = int.from_bytes(sec[-4:], "big")  # IV[8:12]: the 32-bit ARSN
    frame = TcFrame(
        scid=frame.scid,
        vcid=frame.vcid,
        frame_seq=frame.frame_seq,
        data=field_octets[header_length:-MAC_LENGTH],
        bypass=frame.bypass,
        control=frame.control,
        version=frame.version,
        length=length,
        spi=spi,
        sec_seq=sec_seq,
        mac=field_octets[-MAC_LENGTH:],
        raw=raw,
        security_header=sec,
    )
    if not isinstance(security, bool | int):
        plain = security.check(frame)
        if plain is not None and plain != frame.data:
            frame = replace(frame, data=plain)
    return frame


def parse_tc_frame_layout(data: bytes) -> TcFrame:
    """A plain TC frame parsed with the construct layout (the reference for the fast path)."""
    parsed = tc_transfer_frame.parse(bytes(data))
    h = parsed.frame.value.primary_header
    return TcFrame(
        scid=h.spacecraft_id,
        vcid=h.virtual_channel_id,
        frame_seq=h.frame_sequence_number,
        data=bytes(parsed.frame.value.frame_data_field),
        bypass=h.bypass_flag,
        control=h.control_command_flag,
        version=h.transfer_frame_version_number,
        length=h.frame_length + 1,
        raw=bytes(data),
    )


def unlock() -> bytes:
    """BC control command Unlock (232.0-B 4.1.3.3.2)."""
    return UNLOCK


def set_vr(n: int) -> bytes:
    """BC control command Set V(R) to `n`."""
    if not 0 <= n <= 0xFF:
        raise ProtocolError(f"Set V(R) value must be 0..255, got {n}")
    return SET_VR_PREFIX + bytes([n])


def parse_control_command(data: bytes) -> tuple[str, int | None]:
    """("UNLOCK", None) or ("SET_VR", n) from a BC frame's data."""
    if data == UNLOCK:
        return "UNLOCK", None
    if len(data) == 3 and data[:2] == SET_VR_PREFIX:
        return "SET_VR", data[2]
    raise ProtocolError(f"BC frame data {data.hex()} is neither Unlock (00) nor Set V(R) (8200NN)")


def build_ad_frame(scid: int, vcid: int, frame_seq: int, data: bytes, security: FrameSecurity | None = None) -> bytes:
    return build_tc_frame(scid, vcid, frame_seq, data, False, False, security)


def build_bd_frame(scid: int, vcid: int, data: bytes, frame_seq: int = 0, security: FrameSecurity | None = None) -> bytes:
    return build_tc_frame(scid, vcid, frame_seq, data, True, False, security)


def build_bc_frame(scid: int, vcid: int, command: bytes, frame_seq: int = 0, security: FrameSecurity | None = None) -> bytes:
    parse_control_command(command)
    return build_tc_frame(scid, vcid, frame_seq, command, True, True, security)
