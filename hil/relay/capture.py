"""The relay's capture file: every chunk that entered or left the relay, with its time.

Format (all integers big-endian):

    header:  b"FSCAP" 0x00 | u16 version (1) | u32 n | n octets of UTF-8 JSON metadata
             (profile, seed, clock: "monotonic" or "virtual", start_unix: wall time at t=0)
    records: u8 0xA5 | u8 direction | f64 time_s (relay clock, s since t=0) | u32 length | data

Directions (`Direction`): 0 ground->relay (TC in), 1 relay->rover (TC out, after delay and
errors), 2 rover->relay (TM in), 3 relay->ground (TM out), 4 uplink overflow (TC the
store-and-forward buffer could not hold), 5 downlink overflow (TM likewise).

An "in" record is a chunk as read from the port; an "out" record is one unit as delivered:
a whole frame with its marker (EB90 / 1ACFFC1D), or a run of non-frame octets. To decode a
direction, concatenate its records' data and feed a stream deframer:

    from hil.relay.capture import read_capture, Direction
    for rec in read_capture("run.cap"):
        if rec.direction == Direction.GROUND_OUT:
            frames += tm_deframer.feed(rec.data)
"""

from __future__ import annotations

import enum
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from hil.errors import FarsideError

MAGIC = b"FSCAP\x00"
VERSION = 1
RECORD_SYNC = 0xA5
_HEADER = struct.Struct(">6sHI")
_RECORD = struct.Struct(">BBdI")


class Direction(enum.IntEnum):
    GROUND_IN = 0
    ROVER_OUT = 1
    ROVER_IN = 2
    GROUND_OUT = 3
    UPLINK_OVERFLOW = 4
    DOWNLINK_OVERFLOW = 5


@dataclass(frozen=True)
class CaptureRecord:
    direction: Direction
    time_s: float
    data: bytes


class CaptureWriter:
    """Appends records to a capture file (flushes after every `flush_every` records)."""

    def __init__(self, path: str | Path, metadata: dict[str, Any] | None = None, flush_every: int = 1) -> None:
        try:
            self._f: BinaryIO = open(path, "wb")  # noqa: SIM115
        except OSError as exc:
            raise FarsideError(f"capture file {path}: cannot write: {exc.strerror}") from None
        meta = json.dumps(metadata or {}, sort_keys=True).encode()
        self._f.write(_HEADER.pack(MAGIC, VERSION, len(meta)) + meta)
        self._flush_every = flush_every
        self._n = 0
        self.records = 0

    def write(self, direction: Direction, time_s: float, data: bytes | bytearray | memoryview) -> None:
        self._f.write(_RECORD.pack(RECORD_SYNC, int(direction), time_s, len(data)))
        self._f.write(data)
        self.records += 1
        self._n += 1
        if self._n >= self._flush_every:
            self._f.flush()
            self._n = 0

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def read_header(f: BinaryIO, source: str = "capture") -> dict[str, Any]:
    head = f.read(_HEADER.size)
    if len(head) < _HEADER.size or head[:6] != MAGIC:
        raise FarsideError(f"{source}: expected a relay capture (starts with FSCAP), got {head[:6]!r}")
    _, version, n = _HEADER.unpack(head)
    if version != VERSION:
        raise FarsideError(f"{source}: expected capture version {VERSION}, got {version}")
    meta = f.read(n)
    try:
        out = json.loads(meta or b"{}")
    except json.JSONDecodeError:
        raise FarsideError(f"{source}: capture metadata is not JSON") from None
    return out if isinstance(out, dict) else {}


def read_capture(path: str | Path | BinaryIO, strict: bool = False) -> Iterator[CaptureRecord]:
    """The records of a capture file, in order. A truncated last record (the relay was
    killed mid-write) ends the iteration quietly unless `strict`."""
    if isinstance(path, (str, Path)):
        with open(path, "rb") as fh:
            yield from read_capture(fh, strict)
        return
    f: BinaryIO = path
    source = getattr(f, "name", "capture")
    read_header(f, str(source))
    offset = 0
    while True:
        head = f.read(_RECORD.size)
        if not head:
            return
        if len(head) < _RECORD.size:
            if strict:
                raise FarsideError(f"{source}: truncated record header after record {offset}")
            return
        sync, direction, t, n = _RECORD.unpack(head)
        if sync != RECORD_SYNC or direction > max(Direction):
            raise FarsideError(f"{source}: expected record sync 0xA5 and direction 0..5 at record {offset}, got 0x{sync:02x}/{direction}")
        data = f.read(n)
        if len(data) < n:
            if strict:
                raise FarsideError(f"{source}: record {offset} truncated ({len(data)} of {n} octets)")
            return
        yield CaptureRecord(Direction(direction), t, data)
        offset += 1


def capture_metadata(path: str | Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        return read_header(f, str(path))
