"""Typed, unit-aware command arguments: `5km/h`, `0.05m/s`, `90deg`, `2min`.

A value typed with a unit is converted to the unit the dictionary gives the
argument (`speed_mph` is in `m/h`); a unit of another dimension is an error,
never a silent guess. A bare number is taken to be in the argument's own unit.
`mph` is refused as ambiguous: this dictionary's `_mph` names mean metres per
hour, the rest of the world means miles per hour.
"""

from __future__ import annotations

import math
import re

from hil.errors import FarsideError

# unit -> (dimension, factor to the dimension's base unit)
UNITS: dict[str, tuple[str, float]] = {
    "m": ("length", 1.0),
    "mm": ("length", 1e-3),
    "cm": ("length", 1e-2),
    "km": ("length", 1e3),
    "s": ("time", 1.0),
    "ms": ("time", 1e-3),
    "us": ("time", 1e-6),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
    "d": ("time", 86400.0),
    "m/s": ("speed", 1.0),
    "m/h": ("speed", 1 / 3600),
    "km/h": ("speed", 1 / 3.6),
    "cm/s": ("speed", 1e-2),
    "mm/s": ("speed", 1e-3),
    "mi/h": ("speed", 0.44704),
    "m/h/s": ("acceleration", 1 / 3600),
    "m/s2": ("acceleration", 1.0),
    "deg": ("angle", math.pi / 180),
    "rad": ("angle", 1.0),
    "cdeg": ("angle", math.pi / 18000),
    "A": ("current", 1.0),
    "mA": ("current", 1e-3),
    "V": ("voltage", 1.0),
    "mV": ("voltage", 1e-3),
    "W": ("power", 1.0),
    "mW": ("power", 1e-3),
    "%": ("fraction", 1.0),
    "degC": ("temperature", 1.0),
    "B": ("size", 1.0),
    "KiB": ("size", 1024.0),
}

_AMBIGUOUS = {"mph": "use m/h (metres per hour) or mi/h (miles per hour)"}

_NUMBER = re.compile(r"^\s*([-+]?0[xX][0-9a-fA-F]+|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


def parse_quantity(text: str) -> tuple[float | int, str | None]:
    """Split `5km/h` into (5, 'km/h'); `12` into (12, None)."""
    m = _NUMBER.match(text)
    if not m:
        raise FarsideError(f"expected a number with an optional unit (e.g. 5, 0.05m/s), got {text!r}")
    num, unit = m.group(1), m.group(2) or None
    value: float | int
    if num.lower().lstrip("+-").startswith("0x"):
        value = int(num, 16)
    elif re.fullmatch(r"[-+]?\d+", num):
        value = int(num)
    else:
        value = float(num)
    return value, unit


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """`value` in `from_unit` expressed in `to_unit`; same dimension required."""
    if from_unit in _AMBIGUOUS:
        raise FarsideError(f"unit {from_unit!r} is ambiguous: {_AMBIGUOUS[from_unit]}")
    if from_unit == to_unit:
        return value
    src = UNITS.get(from_unit)
    if src is None:
        raise FarsideError(f"unknown unit {from_unit!r}; known units: {', '.join(sorted(UNITS))}")
    dst = UNITS.get(to_unit)
    if dst is None:
        raise FarsideError(f"the dictionary's unit {to_unit!r} has no conversion; give a bare number")
    if src[0] != dst[0]:
        raise FarsideError(f"unit mismatch: expected a {dst[0]} ({to_unit}), got {from_unit} ({src[0]})")
    return value * src[1] / dst[1]


def units_of(dimension_of: str) -> list[str]:
    """Units that can be typed for an argument in `dimension_of` (a unit), for completion."""
    dim = UNITS.get(dimension_of)
    if dim is None:
        return [dimension_of] if dimension_of else []
    return [u for u, (d, _) in UNITS.items() if d == dim[0]]
