"""Relay link profiles: JSON files a user can copy and edit.

A profile describes both directions of the link through the relay and when it can be
used. Directions are named from the ground: `uplink` is ground -> rover (TC, EB90
framing), `downlink` is rover -> ground (TM, ASM framing).

    {
      "name": "queqiao",
      "description": "...",
      "uplink": {
        "delay_s": {"earth_l2_km": 455000, "l2_moon_km": 70000},   # or a number of seconds
        "rate_bps": 125,              # null: unlimited
        "ber": 0.0,                   # bit error rate in the good state
        "burst": {"p_enter": 1e-6, "p_exit": 0.01, "ber": 0.05},    # Gilbert-Elliott, per bit
        "frame_loss": 0.0,            # probability a whole frame is lost
        "frame_duplication": 0.0,     # probability a frame arrives twice
        "buffer_octets": 65536        # store-and-forward capacity; overflow is counted
      },
      "downlink": {...},
      "relay_passes":  {"period_s": 86400, "visible": [[0, 80000]]},   # optional
      "ground_passes": {"period_s": 86400, "outages": [[3600, 3700]]}, # optional
      "tm_frame_length": 256
    }

A schedule lists either the `visible` windows or the `outages` within one `period_s`
(omit the period for a one-off schedule from t=0; after its end the link stays in the
state of its last window). The link is usable only when both schedules are visible.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hil.errors import FarsideError

C_KM_S = 299_792.458
BUILTIN = ("queqiao", "lab", "harsh")


@dataclass(frozen=True)
class GilbertElliott:
    """Two-state burst error model, transition probabilities per bit."""

    p_enter: float  # good -> bad
    p_exit: float  # bad -> good
    ber: float  # bit error rate in the bad state

    @property
    def bad_fraction(self) -> float:
        return self.p_enter / (self.p_enter + self.p_exit) if self.p_enter + self.p_exit else 0.0


@dataclass(frozen=True)
class DirectionConfig:
    delay_s: float = 0.0
    rate_bps: float | None = None
    ber: float = 0.0
    burst: GilbertElliott | None = None
    frame_loss: float = 0.0
    frame_duplication: float = 0.0
    buffer_octets: int = 1 << 20

    def mean_ber(self) -> float:
        """Long-run bit error rate including bursts."""
        if self.burst is None:
            return self.ber
        f = self.burst.bad_fraction
        return (1 - f) * self.ber + f * self.burst.ber


@dataclass(frozen=True)
class Schedule:
    """Visible windows [start, end) in seconds, repeating every `period_s` (None: once)."""

    windows: tuple[tuple[float, float], ...]
    period_s: float | None = None

    def _base(self, t: float) -> tuple[float, float]:
        if self.period_s is None:
            return 0.0, t
        k = math.floor(t / self.period_s)
        return k * self.period_s, t - k * self.period_s

    def visible(self, t: float) -> bool:
        return self.window_at(t) is not None

    def window_at(self, t: float) -> tuple[float, float] | None:
        """The absolute visible window containing `t`, or None in an outage."""
        base, x = self._base(t)
        for a, b in self.windows:
            if a <= x < b:
                return base + a, base + b
        if self.period_s is None and self.windows and x >= self.windows[-1][1]:
            return None
        return None

    def next_visible(self, t: float) -> float:
        """Earliest time >= t that is visible (math.inf if never again)."""
        if self.visible(t):
            return t
        base, x = self._base(t)
        for a, _ in self.windows:
            if a > x:
                return base + a
        if self.period_s is None or not self.windows:
            return math.inf
        return base + self.period_s + self.windows[0][0]


ALWAYS = Schedule(((0.0, math.inf),), None)


@dataclass(frozen=True)
class Visibility:
    """The link is usable when the relay sees the rover and a ground station sees the relay."""

    schedules: tuple[Schedule, ...] = ()

    def visible(self, t: float) -> bool:
        return all(s.visible(t) for s in self.schedules)

    def next_visible(self, t: float) -> float:
        for _ in range(10_000):
            moved = t
            for s in self.schedules:
                moved = max(moved, s.next_visible(moved))
            if moved == math.inf or self.visible(moved):
                return moved
            t = moved
        return math.inf

    def window_end(self, t: float) -> float:
        end = math.inf
        for s in self.schedules:
            w = s.window_at(t)
            if w is None:
                return t
            end = min(end, w[1])
        return end


@dataclass(frozen=True)
class RelayProfile:
    name: str
    uplink: DirectionConfig
    downlink: DirectionConfig
    visibility: Visibility = field(default_factory=Visibility)
    tm_frame_length: int = 256
    description: str = ""
    source: str = ""


# ---------------------------------------------------------------------- parsing
def _num(obj: dict[str, Any], key: str, where: str, default: float, lo: float, hi: float) -> float:
    v = obj.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise FarsideError(f"{where}.{key}: expected a number in [{lo}, {hi}], got {v!r}")
    return float(v)


def _delay(v: Any, where: str) -> float:
    if isinstance(v, dict):
        unknown = set(v) - {"earth_l2_km", "l2_moon_km", "extra_s"}
        if unknown:
            raise FarsideError(f"{where}.delay_s: unknown keys {sorted(unknown)} (expected earth_l2_km, l2_moon_km, extra_s)")
        km = _num(v, "earth_l2_km", where + ".delay_s", 0, 0, 1e9) + _num(v, "l2_moon_km", where + ".delay_s", 0, 0, 1e9)
        return km / C_KM_S + _num(v, "extra_s", where + ".delay_s", 0, 0, 1e6)
    return _num({"delay_s": v}, "delay_s", where, 0, 0, 1e6)


_DIRECTION_KEYS = {"delay_s", "rate_bps", "ber", "burst", "frame_loss", "frame_duplication", "buffer_octets", "comment"}


def _direction(obj: Any, where: str) -> DirectionConfig:
    if obj is None:
        return DirectionConfig()
    if not isinstance(obj, dict):
        raise FarsideError(f"{where}: expected an object, got {type(obj).__name__}")
    unknown = set(obj) - _DIRECTION_KEYS
    if unknown:
        raise FarsideError(f"{where}: unknown keys {sorted(unknown)} (expected {sorted(_DIRECTION_KEYS)})")
    rate = obj.get("rate_bps")
    if rate is not None:
        rate = _num(obj, "rate_bps", where, 0, 1e-3, 1e12)
    burst = None
    if obj.get("burst") is not None:
        b = obj["burst"]
        if not isinstance(b, dict):
            raise FarsideError(f"{where}.burst: expected an object with p_enter, p_exit, ber")
        burst = GilbertElliott(
            _num(b, "p_enter", where + ".burst", 0, 0, 1),
            _num(b, "p_exit", where + ".burst", 1, 1e-12, 1),
            _num(b, "ber", where + ".burst", 0.5, 0, 1),
        )
    buf = obj.get("buffer_octets", 1 << 20)
    if isinstance(buf, bool) or not isinstance(buf, int) or buf < 0:
        raise FarsideError(f"{where}.buffer_octets: expected an integer >= 0, got {buf!r}")
    return DirectionConfig(
        delay_s=_delay(obj.get("delay_s", 0), where),
        rate_bps=rate,
        ber=_num(obj, "ber", where, 0, 0, 1),
        burst=burst,
        frame_loss=_num(obj, "frame_loss", where, 0, 0, 1),
        frame_duplication=_num(obj, "frame_duplication", where, 0, 0, 1),
        buffer_octets=buf,
    )


def parse_schedule(obj: Any, where: str) -> Schedule:
    """A schedule from its JSON form; FarsideError naming what is wrong."""
    if not isinstance(obj, dict):
        raise FarsideError(f"{where}: expected an object with 'visible' or 'outages', got {obj!r}")
    unknown = set(obj) - {"period_s", "visible", "outages", "comment"}
    if unknown:
        raise FarsideError(f"{where}: unknown keys {sorted(unknown)} (expected period_s, visible or outages)")
    if ("visible" in obj) == ("outages" in obj):
        raise FarsideError(f"{where}: expected exactly one of 'visible' or 'outages'")
    period = obj.get("period_s")
    if period is not None and (isinstance(period, bool) or not isinstance(period, (int, float)) or period <= 0):
        raise FarsideError(f"{where}.period_s: expected a number > 0, got {period!r}")
    key = "visible" if "visible" in obj else "outages"
    raw = obj[key]
    if not isinstance(raw, list):
        raise FarsideError(f"{where}.{key}: expected a list of [start_s, end_s], got {raw!r}")
    wins: list[tuple[float, float]] = []
    last = -math.inf
    for i, w in enumerate(raw):
        ok = (
            isinstance(w, list)
            and len(w) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in w)
        )
        if not ok or not 0 <= w[0] < w[1] or (period is not None and w[1] > period):
            limit = f" within [0, {period}]" if period is not None else ""
            raise FarsideError(f"{where}.{key}[{i}]: expected [start_s, end_s] with 0 <= start < end{limit}, got {w!r}")
        if w[0] < last:
            raise FarsideError(f"{where}.{key}[{i}]: windows must be sorted and not overlap, got {w!r} after end {last}")
        last = w[1]
        wins.append((float(w[0]), float(w[1])))
    if key == "outages":
        end = float(period) if period is not None else math.inf
        vis: list[tuple[float, float]] = []
        t = 0.0
        for a, b in wins:
            if a > t:
                vis.append((t, a))
            t = b
        if t < end:
            vis.append((t, end))
        wins = vis
    return Schedule(tuple(wins), None if period is None else float(period))


def profile_from_json(obj: Any, source: str = "profile") -> RelayProfile:
    if not isinstance(obj, dict):
        raise FarsideError(f"{source}: expected a JSON object, got {type(obj).__name__}")
    known = {"name", "description", "uplink", "downlink", "relay_passes", "ground_passes", "tm_frame_length", "comment"}
    unknown = set(obj) - known
    if unknown:
        raise FarsideError(f"{source}: unknown keys {sorted(unknown)} (expected {sorted(known)})")
    schedules = tuple(
        parse_schedule(obj[k], f"{source}: {k}") for k in ("relay_passes", "ground_passes") if obj.get(k) is not None
    )
    tm_len = obj.get("tm_frame_length", 256)
    if isinstance(tm_len, bool) or not isinstance(tm_len, int) or not 7 <= tm_len <= 2048:
        raise FarsideError(f"{source}: tm_frame_length: expected an integer 7..2048, got {tm_len!r}")
    return RelayProfile(
        name=str(obj.get("name", source)),
        uplink=_direction(obj.get("uplink"), f"{source}: uplink"),
        downlink=_direction(obj.get("downlink"), f"{source}: downlink"),
        visibility=Visibility(schedules),
        tm_frame_length=tm_len,
        description=str(obj.get("description", "")),
        source=source,
    )


def builtin_profile_text(name: str) -> str:
    return resources.files("hil").joinpath("profiles", f"{name}.json").read_text()


def load_profile(name_or_path: str) -> RelayProfile:
    """A built-in profile by name (queqiao, lab, harsh) or a JSON file by path."""
    if name_or_path in BUILTIN:
        text, source = builtin_profile_text(name_or_path), name_or_path
    else:
        path = Path(name_or_path)
        if not path.suffix and not path.exists():
            raise FarsideError(f"unknown profile {name_or_path!r}: expected one of {', '.join(BUILTIN)} or a JSON file")
        try:
            text = path.read_text()
        except OSError as exc:
            raise FarsideError(f"profile {name_or_path}: cannot read: {exc.strerror}") from None
        source = str(path)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FarsideError(f"profile {source}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    return profile_from_json(obj, source)
