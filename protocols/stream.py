"""Frames on a serial byte stream.

TM: each frame is preceded by the attached sync marker 0x1ACFFC1D (CCSDS 131.0-B-4 section
9). TC: each frame is preceded by the CLTU start sequence 0xEB90 (CCSDS 231.0-B-4 section
5.2; here without BCH code blocks: the frame's own length field and FECF delimit and check
it; see cltu.py for the full CLTU).

The deframers are fed chunks of any size and return the good frames. They hunt for the
marker with bytes.find (no per-octet Python loop); after garbage or a bad frame (bad FECF,
impossible length) they resume the hunt one octet after that marker. They never raise on
bad input and count what they dropped and why. Accounting: every octet fed is either in a
good frame (marker included), counted in `garbage_octets`, or still `pending`.

Bad frames: `drops` logs the first 100 as (stream offset of the marker, reason); an optional
`on_bad(octets, reason, offset)` hook sees every one, e.g. for a ground station to archive
them. `octets` are what was judged after the marker: the whole candidate frame for a bad FECF
(TM frames are always whole), the header octets at hand (up to 4) for an impossible TC
header or length.
`reason` is the counter bumped ("bad_crc_frames", "bad_length_frames", "bad_header_frames").
The hook runs only on the bad-frame path, so good frames cost nothing more; it should not
raise (an exception propagates out of feed() and the good frames of that chunk are lost).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from protocols.crc import crc16
from protocols.tc_frame import MAX_FRAME_LENGTH, MIN_FRAME_LENGTH
from protocols.tm_frame import DEFAULT_FRAME_LENGTH

ASM = bytes.fromhex("1ACFFC1D")
TC_START = bytes.fromhex("EB90")

BadFrameHook = Callable[[bytes, str, int], None]
"""on_bad(octets after the marker, reason = counter name, stream offset of the marker)."""


def frame_tm(frame: bytes) -> bytes:
    """A TM frame as sent on the stream: ASM + frame."""
    return ASM + bytes(frame)


def frame_tc(frame: bytes) -> bytes:
    """A TC frame as sent on the stream: EB90 + frame."""
    return TC_START + bytes(frame)


@dataclass
class DeframerCounters:
    """What a deframer kept and dropped."""

    frames_ok: int = 0
    bad_crc_frames: int = 0
    bad_length_frames: int = 0
    bad_header_frames: int = 0
    garbage_octets: int = 0
    octets_in: int = 0

    @property
    def frames_bad(self) -> int:
        return self.bad_crc_frames + self.bad_length_frames + self.bad_header_frames


@dataclass
class _Deframer:
    marker: bytes
    counters: DeframerCounters = field(default_factory=DeframerCounters)
    on_bad: BadFrameHook | None = None
    header_length = 0  # octets after the marker that tell the frame's length (TC: 4)

    def __post_init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._base = 0  # stream offset of _buf[0]
        self.drops: list[tuple[int, str]] = []  # (stream offset of the marker, reason), first 100
        self.offsets: list[int] = []  # stream offset of each good frame's marker, if track_offsets
        self.track_offsets = False

    @property
    def pending(self) -> int:
        """Octets held while waiting for the rest of a marker or frame."""
        return len(self._buf) - self._pos

    def _frame_length(self, buf: bytearray, start: int) -> int | None:
        """Total frame octets at `start` (after the marker), or None when not yet known."""
        raise NotImplementedError

    def _check_header(self, buf: bytearray, start: int) -> str | None:
        """None if the header can be a frame, else the counter to bump."""
        return None

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[bytes]:
        """Good frames (without the marker) completed by `chunk`."""
        buf = self._buf
        buf += chunk
        c = self.counters
        c.octets_in += len(chunk)
        marker = self.marker
        mlen = len(marker)
        pos = self._pos
        out: list[bytes] = []
        while True:
            i = buf.find(marker, pos)
            if i < 0:
                # keep the octets that could be the start of a marker
                keep = max(pos, len(buf) - (mlen - 1))
                c.garbage_octets += keep - pos
                pos = keep
                break
            c.garbage_octets += i - pos
            pos = i
            start = i + mlen
            bad = self._check_header(buf, start)
            length = None if bad else self._frame_length(buf, start)
            if bad is None and length is None:
                break  # need more octets for the header
            if bad is None and length is not None:
                if length < 0:
                    bad = "bad_length_frames"
                else:
                    end = start + length
                    if end > len(buf):
                        break  # wait for the rest of the frame
                    if crc16(memoryview(buf)[start:end]) == 0:
                        out.append(bytes(buf[start:end]))
                        c.frames_ok += 1
                        if self.track_offsets:
                            self.offsets.append(self._base + i)
                        pos = end
                        continue
                    bad = "bad_crc_frames"
            assert bad is not None
            setattr(c, bad, getattr(c, bad) + 1)
            if len(self.drops) < 100:
                self.drops.append((self._base + i, bad))
            if self.on_bad is not None:
                judged = end if bad == "bad_crc_frames" else min(len(buf), start + self.header_length)
                self.on_bad(bytes(buf[start:judged]), bad, self._base + i)
            c.garbage_octets += 1
            pos = i + 1
        if pos > 65536 or pos == len(buf):
            del buf[:pos]
            self._base += pos
            pos = 0
        self._pos = pos
        return out


class TmDeframer(_Deframer):
    """Finds fixed-length TM frames after the ASM 0x1ACFFC1D."""

    def __init__(self, frame_length: int = DEFAULT_FRAME_LENGTH, on_bad: BadFrameHook | None = None) -> None:
        super().__init__(ASM, on_bad=on_bad)
        self.frame_length = frame_length

    def _frame_length(self, buf: bytearray, start: int) -> int | None:
        return self.frame_length


class TcDeframer(_Deframer):
    """Finds TC frames after the start sequence 0xEB90; their length comes from the header."""

    header_length = 4

    def __init__(self, max_length: int = MAX_FRAME_LENGTH, on_bad: BadFrameHook | None = None) -> None:
        super().__init__(TC_START, on_bad=on_bad)
        self.max_length = max_length

    def _check_header(self, buf: bytearray, start: int) -> str | None:
        if start < len(buf) and buf[start] >> 6 != 0:
            return "bad_header_frames"
        return None

    def _frame_length(self, buf: bytearray, start: int) -> int | None:
        if start + 4 > len(buf):
            return None
        length = (((buf[start + 2] & 0x03) << 8) | buf[start + 3]) + 1
        if length < MIN_FRAME_LENGTH or length > self.max_length:
            return -1
        return length
