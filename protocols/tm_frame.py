"""TM transfer frame (CCSDS 132.0-B-3 TM Space Data Link Protocol, section 4.1), fixed
length per mission (default 256 octets = 6 header + 244 data + 4 OCF + 2 FECF).

Primary header, 6 octets: transfer frame version number 2b (0), spacecraft ID 10b, virtual
channel ID 3b, operational control field flag 1b, master channel frame count 8b, virtual
channel frame count 8b, transfer frame data field status 16b: secondary header flag 1b,
synchronization flag 1b, packet order flag 1b, segment length ID 2b (3), first header
pointer 11b (0x7FF: no packet starts in this frame, 0x7FE: only idle data).
Then the data field, the OCF (the CLCW, see clcw.py) and the FECF (CRC-16/CCITT-FALSE).

TmMultiplexer packs space packets into frames (packets span frames; idle packets fill a
frame that must go out part-full; idle frames when there is nothing to send).
TmDemultiplexer rebuilds the packets, detects virtual channel frame count gaps and drops
only the packets a gap destroyed, resynchronising on the next first header pointer. A frame
repeating the previous frame's virtual channel frame count (a link that duplicates frames) is
counted as a duplicate and discarded whole: the packet in progress is kept, so the ground sees
each packet once. (Consequence: after a rover reset whose first frame happens to carry the
count of the last frame before it, that one frame is discarded; the count is only 8 bits.)
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

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
from protocols.errors import ProtocolError
from protocols.spacepacket import IDLE_APID, build_idle_packet
from protocols.spacepacket import PRIMARY_HEADER_LENGTH as PACKET_HEADER_LENGTH

PRIMARY_HEADER_LENGTH = 6
OCF_LENGTH = 4
FECF_LENGTH = 2
DEFAULT_FRAME_LENGTH = 256
FHP_NO_PACKET_START = 0x7FF
FHP_IDLE = 0x7FE
SEGMENT_LENGTH_ID = 3
MIN_IDLE_PACKET = PACKET_HEADER_LENGTH + 1

tm_frame_primary_header = BitStruct(
    "transfer_frame_version_number" / BitsInteger(2),
    "spacecraft_id" / BitsInteger(10),
    "virtual_channel_id" / BitsInteger(3),
    "operational_control_field_flag" / Flag,
    "master_channel_frame_count" / BitsInteger(8),
    "virtual_channel_frame_count" / BitsInteger(8),
    "transfer_frame_secondary_header_flag" / Flag,
    "synchronization_flag" / Flag,
    "packet_order_flag" / Flag,
    "segment_length_id" / BitsInteger(2),
    "first_header_pointer" / BitsInteger(11),
)


def tm_transfer_frame(frame_length: int = DEFAULT_FRAME_LENGTH, ocf: bool = True):  # type: ignore[no-untyped-def]
    """The layout of a whole frame of `frame_length` octets, with or without the OCF."""
    data_length = frame_length - PRIMARY_HEADER_LENGTH - (OCF_LENGTH if ocf else 0) - FECF_LENGTH
    fields = [
        "primary_header" / tm_frame_primary_header,
        "transfer_frame_data_field" / Bytes(data_length),
    ]
    if ocf:
        fields.append("operational_control_field" / Int32ub)
    return Struct(
        "frame" / RawCopy(Struct(*fields)),
        "frame_error_control_field" / Checksum(Int16ub, crc16, this.frame.data),
    )


tm_frame_256 = tm_transfer_frame(DEFAULT_FRAME_LENGTH, True)

_HEADER = struct.Struct(">HBBH")


def data_field_length(frame_length: int = DEFAULT_FRAME_LENGTH, ocf: bool = True) -> int:
    return frame_length - PRIMARY_HEADER_LENGTH - (OCF_LENGTH if ocf else 0) - FECF_LENGTH


@dataclass(frozen=True)
class TmFrame:
    """A parsed TM transfer frame."""

    scid: int
    vcid: int
    mc_count: int
    vc_count: int
    first_header_pointer: int
    data: bytes
    ocf: int | None = None
    version: int = 0
    sync_flag: bool = False
    packet_order_flag: bool = False
    segment_length_id: int = SEGMENT_LENGTH_ID
    secondary_header_flag: bool = False

    @property
    def is_idle(self) -> bool:
        return self.first_header_pointer == FHP_IDLE

    @property
    def clcw(self) -> int | None:
        return self.ocf


def build_tm_frame(
    scid: int,
    vcid: int,
    mc_count: int,
    vc_count: int,
    first_header_pointer: int,
    data: bytes,
    ocf: int | None = 0,
    frame_length: int = DEFAULT_FRAME_LENGTH,
) -> bytes:
    """A whole TM frame with FECF; `data` must fill the data field exactly; ocf None = no OCF."""
    for name, number, high in (
        ("SCID", scid, 0x3FF),
        ("VCID", vcid, 7),
        ("MC frame count", mc_count, 0xFF),
        ("VC frame count", vc_count, 0xFF),
        ("first header pointer", first_header_pointer, 0x7FF),
    ):
        if not 0 <= number <= high:
            raise ProtocolError(f"TM frame {name} must be 0..{high}, got {number}")
    expected = data_field_length(frame_length, ocf is not None)
    if len(data) != expected:
        raise ProtocolError(f"TM frame data field must be {expected} octets, got {len(data)}")
    value: dict[str, object] = {
        "primary_header": {
            "transfer_frame_version_number": 0,
            "spacecraft_id": scid,
            "virtual_channel_id": vcid,
            "operational_control_field_flag": ocf is not None,
            "master_channel_frame_count": mc_count,
            "virtual_channel_frame_count": vc_count,
            "transfer_frame_secondary_header_flag": False,
            "synchronization_flag": False,
            "packet_order_flag": False,
            "segment_length_id": SEGMENT_LENGTH_ID,
            "first_header_pointer": first_header_pointer,
        },
        "transfer_frame_data_field": bytes(data),
    }
    if ocf is not None:
        value["operational_control_field"] = ocf
    layout = tm_frame_256 if frame_length == DEFAULT_FRAME_LENGTH and ocf is not None else tm_transfer_frame(
        frame_length, ocf is not None
    )
    return bytes(layout.build({"frame": {"value": value}, "frame_error_control_field": None}))


def parse_tm_frame(data: bytes | bytearray | memoryview, frame_length: int | None = None) -> TmFrame:
    """Parse and check (length, FECF) a TM frame (struct fast path; tests prove it equals the
    construct layout)."""
    raw = bytes(data)
    if frame_length is not None and len(raw) != frame_length:
        raise ProtocolError(f"TM frame must be {frame_length} octets, got {len(raw)}")
    if len(raw) < PRIMARY_HEADER_LENGTH + FECF_LENGTH:
        raise ProtocolError(f"TM frame needs at least 8 octets, got {len(raw)}")
    crc = crc16(raw[:-FECF_LENGTH])
    seen = (raw[-2] << 8) | raw[-1]
    if crc != seen:
        raise ProtocolError(f"TM frame FECF at octet {len(raw) - 2} is {seen:04x}, expected {crc:04x}")
    word0, mc, vc, status = _HEADER.unpack_from(raw)
    if word0 >> 14:
        raise ProtocolError(f"TM frame version number at octet 0 is {word0 >> 14}, expected 0")
    has_ocf = bool(word0 & 1)
    end = len(raw) - FECF_LENGTH - (OCF_LENGTH if has_ocf else 0)
    if end < PRIMARY_HEADER_LENGTH:
        raise ProtocolError(f"TM frame of {len(raw)} octets is too short for its OCF")
    return TmFrame(
        scid=(word0 >> 4) & 0x3FF,
        vcid=(word0 >> 1) & 7,
        mc_count=mc,
        vc_count=vc,
        first_header_pointer=status & 0x7FF,
        data=raw[PRIMARY_HEADER_LENGTH:end],
        ocf=int.from_bytes(raw[end : end + OCF_LENGTH], "big") if has_ocf else None,
        version=word0 >> 14,
        secondary_header_flag=bool(status & 0x8000),
        sync_flag=bool(status & 0x4000),
        packet_order_flag=bool(status & 0x2000),
        segment_length_id=(status >> 11) & 3,
    )


ClcwSource = int | Callable[[], int] | None


class TmMultiplexer:
    """Packs space packets into fixed-length TM frames of one virtual channel.

    push(packet) queues a packet; frames() returns every frame that is full; flush() also
    returns the last part-full frame, completed with an idle packet; idle_frame() makes a
    frame of only idle data (first header pointer 0x7FE) for when there is nothing to send.
    `clcw` (an int or a callable returning one, or None for no OCF) fills each frame's OCF.
    """

    def __init__(
        self,
        scid: int,
        vcid: int = 0,
        frame_length: int = DEFAULT_FRAME_LENGTH,
        clcw: ClcwSource = 0,
        mc_count: int = 0,
        vc_count: int = 0,
    ) -> None:
        self.scid = scid
        self.vcid = vcid
        self.frame_length = frame_length
        self.clcw = clcw
        self.mc_count = mc_count
        self.vc_count = vc_count
        self.data_length = data_field_length(frame_length, clcw is not None)
        self._buf = bytearray()
        self._starts: list[int] = []  # packet start offsets inside _buf
        self.packets_in = 0
        self.frames_out = 0
        self.idle_octets = 0

    def _ocf(self) -> int | None:
        if self.clcw is None:
            return None
        return self.clcw() if callable(self.clcw) else self.clcw

    def push(self, packet: bytes) -> None:
        if len(packet) < MIN_IDLE_PACKET:
            raise ProtocolError(f"a space packet has at least 7 octets, got {len(packet)}")
        self._starts.append(len(self._buf))
        self._buf += packet
        self.packets_in += 1

    @property
    def pending(self) -> int:
        """Octets queued and not yet in a frame."""
        return len(self._buf)

    def _emit(self) -> bytes:
        n = self.data_length
        chunk = bytes(self._buf[:n])
        fhp = FHP_NO_PACKET_START
        keep: list[int] = []
        for start in self._starts:
            if start < n:
                if fhp == FHP_NO_PACKET_START:
                    fhp = start
            else:
                keep.append(start - n)
        self._starts = keep
        del self._buf[:n]
        return self._frame(fhp, chunk)

    def _frame(self, fhp: int, chunk: bytes) -> bytes:
        frame = build_tm_frame(
            self.scid, self.vcid, self.mc_count, self.vc_count, fhp, chunk, self._ocf(), self.frame_length
        )
        self.mc_count = (self.mc_count + 1) & 0xFF
        self.vc_count = (self.vc_count + 1) & 0xFF
        self.frames_out += 1
        return frame

    def frames(self) -> list[bytes]:
        """Every frame that the queued packets fill completely."""
        out = []
        while len(self._buf) >= self.data_length:
            out.append(self._emit())
        return out

    def flush(self) -> list[bytes]:
        """Every queued octet in frames; the last one is completed with an idle packet."""
        out = self.frames()
        if self._buf:
            room = self.data_length - len(self._buf)
            if room < MIN_IDLE_PACKET:
                room += self.data_length  # the idle packet spans into one more frame
            self._starts.append(len(self._buf))
            self._buf += build_idle_packet(room)
            self.idle_octets += room
            out.extend(self.frames())
        return out

    def idle_frame(self) -> bytes:
        """A frame of idle data only (first header pointer 0x7FE); queued packets stay queued."""
        return self._frame(FHP_IDLE, b"\x55" * self.data_length)


@dataclass
class DemuxCounters:
    """What the demultiplexer saw and what it dropped."""

    frames: int = 0
    bad_frames: int = 0
    idle_frames: int = 0
    frames_lost: int = 0
    frames_duplicate: int = 0  # repeats of the previous VC frame count: discarded, not in `frames`
    gaps: int = 0
    packets: int = 0
    idle_packets: int = 0
    packets_dropped: int = 0
    octets_dropped: int = 0
    other_vc_frames: int = 0


class _VcState:
    __slots__ = ("buf", "in_sync", "expected", "last")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.in_sync = False
        self.expected: int | None = None
        self.last: tuple[int, bytes] | None = None  # (MC count, data field) of the previous frame


@dataclass
class TmDemultiplexer:
    """Rebuilds space packets from TM frames: one virtual channel (vcid), or every virtual
    channel with its own packet stream and frame counter (vcid=None)."""

    frame_length: int = DEFAULT_FRAME_LENGTH
    vcid: int | None = None
    keep_idle: bool = False
    counters: DemuxCounters = field(default_factory=DemuxCounters)
    last_clcw: int | None = None
    last_frame: TmFrame | None = None

    def __post_init__(self) -> None:
        self._vcs: dict[int, _VcState] = {}

    def _drop_partial(self, vc: _VcState) -> None:
        if vc.buf:
            self.counters.packets_dropped += 1
            self.counters.octets_dropped += len(vc.buf)
            vc.buf.clear()

    def _extract(self, buf: bytearray, out: list[bytes]) -> None:
        pos = 0
        n = len(buf)
        while n - pos >= PACKET_HEADER_LENGTH:
            length = PACKET_HEADER_LENGTH + 1 + ((buf[pos + 4] << 8) | buf[pos + 5])
            if n - pos < length:
                break
            if (((buf[pos] & 7) << 8) | buf[pos + 1]) == IDLE_APID:
                self.counters.idle_packets += 1
                if self.keep_idle:
                    out.append(bytes(buf[pos : pos + length]))
            else:
                self.counters.packets += 1
                out.append(bytes(buf[pos : pos + length]))
            pos += length
        if pos:
            del buf[:pos]

    def feed(self, frame: bytes | bytearray | memoryview) -> list[bytes]:
        """The packets completed by this frame (a frame failing its FECF is counted, not raised)."""
        try:
            tm = parse_tm_frame(frame, self.frame_length)
        except ProtocolError:
            self.counters.bad_frames += 1
            return []
        return self.feed_parsed(tm)

    def feed_parsed(self, tm: TmFrame) -> list[bytes]:
        """As feed(), for a frame already parsed (and FECF-checked) by parse_tm_frame."""
        if self.vcid is not None and tm.vcid != self.vcid:
            self.counters.other_vc_frames += 1
            return []
        c = self.counters
        vc = self._vcs.get(tm.vcid)
        if vc is None:
            vc = self._vcs[tm.vcid] = _VcState()
        expected = vc.expected
        if (
            expected is not None
            and tm.vc_count == ((expected - 1) & 0xFF)
            and vc.last == (tm.mc_count, tm.data)
        ):
            # the previous frame again (not a gap of 255 frames, nor a rebooted rover whose
            # counters restarted at the count it had last sent): its packets were handed over
            c.frames_duplicate += 1
            return []
        vc.last = (tm.mc_count, tm.data)
        c.frames += 1
        self.last_frame = tm
        if tm.ocf is not None:
            self.last_clcw = tm.ocf
        vc.expected = (tm.vc_count + 1) & 0xFF
        if expected is not None and tm.vc_count != expected:
            c.gaps += 1
            c.frames_lost += (tm.vc_count - expected) & 0xFF
            self._drop_partial(vc)
            vc.in_sync = False
        fhp = tm.first_header_pointer
        if fhp == FHP_IDLE:
            c.idle_frames += 1
            return []
        out: list[bytes] = []
        data = tm.data
        if fhp != FHP_NO_PACKET_START and fhp >= len(data):
            # a pointer past the data field: this frame cannot be trusted
            self._drop_partial(vc)
            vc.in_sync = False
            c.octets_dropped += len(data)
            return out
        if not vc.in_sync:
            if fhp == FHP_NO_PACKET_START:
                c.octets_dropped += len(data)
                return out
            c.octets_dropped += fhp
            vc.buf += data[fhp:]
            vc.in_sync = True
            self._extract(vc.buf, out)
            return out
        if fhp == FHP_NO_PACKET_START:
            vc.buf += data
            self._extract(vc.buf, out)
            return out
        vc.buf += data[:fhp]
        self._extract(vc.buf, out)
        if vc.buf:
            # the pointer says a packet starts where the previous one had not ended
            self._drop_partial(vc)
        vc.buf += data[fhp:]
        self._extract(vc.buf, out)
        return out
