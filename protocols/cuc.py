"""CCSDS Unsegmented Time Code (CUC, CCSDS 301.0-B-4 section 3.2) as the mission uses it:
4 octets of coarse time (seconds) and 2 octets of fine time (1/65536 s) since the mission
epoch, P-field implicit (not sent). The epoch is configurable; the default is the mission
epoch in dictionary.json (2019-01-03T02:26:00Z)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from construct import Int16ub, Int32ub, Struct

from protocols.errors import ProtocolError

CUC_LENGTH = 6
FINE_PER_SECOND = 65536

cuc_time = Struct(
    "coarse_time" / Int32ub,
    "fine_time" / Int16ub,
)


def _mission_epoch() -> datetime:
    path = Path(__file__).with_name("dictionary.json")
    try:
        text = json.loads(path.read_text())["mission"]["epoch"]
    except (OSError, KeyError, ValueError):
        text = "2019-01-03T02:26:00Z"
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


MISSION_EPOCH: datetime = _mission_epoch()


@dataclass(frozen=True, order=True)
class Cuc:
    """A CUC time: whole seconds and 1/65536 s since an epoch."""

    coarse: int
    fine: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.coarse <= 0xFFFFFFFF:
            raise ProtocolError(f"CUC coarse time must be 0..2**32-1 s, got {self.coarse}")
        if not 0 <= self.fine <= 0xFFFF:
            raise ProtocolError(f"CUC fine time must be 0..65535, got {self.fine}")

    def to_bytes(self) -> bytes:
        return bytes(cuc_time.build({"coarse_time": self.coarse, "fine_time": self.fine}))

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Cuc:
        if len(data) != CUC_LENGTH:
            raise ProtocolError(f"CUC time needs {CUC_LENGTH} octets, got {len(data)}")
        parsed = cuc_time.parse(bytes(data))
        return cls(parsed.coarse_time, parsed.fine_time)

    @classmethod
    def from_seconds(cls, seconds: float) -> Cuc:
        """From seconds since the epoch (fine time rounded to the nearest 1/65536 s)."""
        if seconds < 0:
            raise ProtocolError(f"CUC time cannot be before the epoch, got {seconds} s")
        ticks = round(seconds * FINE_PER_SECOND)
        return cls(ticks >> 16, ticks & 0xFFFF)

    def to_seconds(self) -> float:
        return self.coarse + self.fine / FINE_PER_SECOND

    @classmethod
    def from_datetime(cls, when: datetime, epoch: datetime = MISSION_EPOCH) -> Cuc:
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        delta = when - epoch
        ticks = (delta.days * 86400 + delta.seconds) * FINE_PER_SECOND + round(
            delta.microseconds * FINE_PER_SECOND / 1_000_000
        )
        if ticks < 0:
            raise ProtocolError(f"{when.isoformat()} is before the epoch {epoch.isoformat()}")
        return cls(ticks >> 16, ticks & 0xFFFF)

    def to_datetime(self, epoch: datetime = MISSION_EPOCH) -> datetime:
        return epoch + timedelta(seconds=self.coarse, microseconds=self.fine * 1_000_000 / FINE_PER_SECOND)
