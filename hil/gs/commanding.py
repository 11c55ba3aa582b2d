"""Release times for time-tagged commands (`send --at TIME`).

TIME is rover seconds since the mission epoch (`123456`), an offset from the
rover's clock as last reported in housekeeping (`+30s`, `+5min`), or a UTC date
and time (`2026-11-22T03:00:00Z`).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from hil.errors import FarsideError
from hil.gs.state import GroundState
from hil.gs.units import convert, parse_quantity

EPOCH = datetime(2019, 1, 3, 2, 26, 0, tzinfo=timezone.utc)


def rover_now(state: GroundState) -> float:
    """The rover's clock now, from the latest HK rover_time_s plus the time since it arrived."""
    with state.cond:
        raw = state.hk_raw.get("rover_time_s")
        at = state.hk_time
    if raw is None or at is None:
        raise FarsideError("no housekeeping yet: the rover's clock is unknown (give --at in rover seconds or UTC)")
    return float(raw) + (time.time() - at)


def release_time(text: str, state: GroundState | None) -> int:
    text = text.strip()
    if text.startswith("+"):
        v, unit = parse_quantity(text[1:])
        dt = float(v) if unit is None else convert(float(v), unit, "s")
        if state is None:
            raise FarsideError("a relative --at needs the rover's clock (a live session)")
        return int(round(rover_now(state) + dt))
    if "T" in text or "-" in text[1:]:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise FarsideError(f"--at: expected rover seconds, +DURATION or an ISO UTC time, got {text!r}") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        secs = (when - EPOCH).total_seconds()
    else:
        try:
            secs = float(text)
        except ValueError:
            raise FarsideError(f"--at: expected rover seconds, +DURATION or an ISO UTC time, got {text!r}") from None
    if not 0 <= secs <= 0xFFFFFFFF:
        raise FarsideError(f"--at: {text} is outside the rover's clock range (0..{0xFFFFFFFF} s since epoch)")
    return int(round(secs))
