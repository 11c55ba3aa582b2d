"""The ground station's view of the dictionary: lookups, typed arguments, limits, HK layout.

Wraps the dictionary JSON (protocols/dictionary.json by default) with what an
operator's tools need: find a command, turn `ARG=VALUE` words into typed values
(units converted, enums by name, ranges checked), the HK packet as a numpy
structured dtype for vectorised decoding, limit colours.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import protocols
from hil.errors import FarsideError
from hil.gs.units import convert, parse_quantity
from protocols.dictionary import Decoded, Dictionary
from protocols.errors import ProtocolError

DEFAULT_DICTIONARY = Path(protocols.__file__).resolve().parent / "dictionary.json"

STRUCT_CODES = {"u8": "B", "i8": "b", "u16": "H", "i16": "h", "u32": "I", "i32": "i", "f32": "f"}
NP_CODES = {"u8": "u1", "i8": "i1", "u16": ">u2", "i16": ">i2", "u32": ">u4", "i32": ">i4", "f32": ">f4"}
INT_RANGES = {
    "u8": (0, 0xFF),
    "i8": (-0x80, 0x7F),
    "u16": (0, 0xFFFF),
    "i16": (-0x8000, 0x7FFF),
    "u32": (0, 0xFFFFFFFF),
    "i32": (-0x80000000, 0x7FFFFFFF),
}

# TM packet layout up to the source data (primary 6 + PUS secondary 7 + CUC 6)
TM_HEADER_OCTETS = 19
TM_CRC_OCTETS = 2


@dataclass
class Mission:
    """The dictionary, indexed for the ground station."""

    raw: dict[str, Any]
    path: Path | None = None
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_service: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    events: dict[int, dict[str, Any]] = field(default_factory=dict)
    events_by_name: dict[str, dict[str, Any]] = field(default_factory=dict)
    hk: dict[int, dict[str, Any]] = field(default_factory=dict)
    hk_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = self.raw
        try:
            self.pd = Dictionary.from_json(d, source=self.path.name if self.path else "dictionary")
        except ProtocolError as exc:
            raise FarsideError(str(exc)) from None
        for c in d["commands"]:
            self.commands[c["name"]] = c
            self.by_service[(c["service"], c["subservice"])] = c
        for e in d["events"]:
            self.events[e["id"]] = e
            self.events_by_name[e["name"]] = e
        for h in d["housekeeping"]:
            self.hk[h["sid"]] = h
            for p in h["parameters"]:
                self.hk_params[p["name"]] = p
        for p in d.get("parameters", []):
            self.parameters[p["name"]] = p
        self.hash = self.pd.short_hash()
        m = d["mission"]
        self.scid: int = m["scid"]
        self.tc_vcid: int = m["tc_vcid"]
        self.tm_vcid: int = m["tm_vcid"]
        self.tc_apid: int = m["tc_apid"]
        self.tm_apid: int = m["tm_apid"]
        self.tm_frame_length: int = m["tm_frame_length"]

    @classmethod
    def load(cls, path: Path | str | None = None) -> Mission:
        p = Path(path) if path is not None else DEFAULT_DICTIONARY
        try:
            raw = json.loads(p.read_text())
        except FileNotFoundError:
            raise FarsideError(f"no dictionary at {p}") from None
        except json.JSONDecodeError as exc:
            raise FarsideError(f"dictionary {p} is not JSON: {exc}") from None
        try:
            return cls(raw, p)
        except (KeyError, TypeError) as exc:
            raise FarsideError(f"dictionary {p} lacks an expected field: {exc}") from None

    # --- enums and names ---------------------------------------------------
    def enum(self, name: str) -> dict[int, str]:
        return {int(k): v for k, v in self.raw["enums"][name].items()}

    def enum_label(self, enum: str, value: int) -> str:
        return self.raw["enums"][enum].get(str(int(value)), str(int(value)))

    def enum_value(self, enum: str, label: str) -> int:
        for k, v in self.raw["enums"][enum].items():
            if v.upper() == label.upper():
                return int(k)
        raise FarsideError(
            f"{enum}: expected one of {', '.join(self.raw['enums'][enum].values())}, got {label!r}"
        )

    def failure_name(self, code: int) -> str:
        f = self.raw.get("failure_codes", {}).get(str(code))
        return f["name"] if f else f"failure {code}"

    def command(self, name: str) -> dict[str, Any]:
        c = self.commands.get(name.upper())
        if c is None:
            raise FarsideError(f"unknown command {name!r}; try `farside gs dict commands`")
        return c

    # --- typed arguments ---------------------------------------------------
    def parse_args(self, name: str, words: list[str]) -> dict[str, int | float]:
        """`['distance_m=1', 'speed_mph=5km/h']` -> typed, converted, range-checked values."""
        cmd = self.command(name)
        specs = {a["name"]: a for a in cmd["args"]}
        values: dict[str, int | float] = {}
        for w in words:
            if "=" not in w:
                raise FarsideError(f"{cmd['name']}: expected ARG=VALUE, got {w!r}")
            key, text = w.split("=", 1)
            if key not in specs:
                known = ", ".join(specs) or "no arguments"
                raise FarsideError(f"{cmd['name']}: unknown argument {key!r} (takes {known})")
            if key in values:
                raise FarsideError(f"{cmd['name']}: argument {key!r} given twice")
            if specs[key]["type"] == "tc":
                raise FarsideError(f"{cmd['name']}: argument {key!r} is a packet; use `send --at`")
            values[key] = self.typed_value(cmd["name"], specs[key], text)
        missing = [a for a in specs if a not in values and specs[a]["type"] != "tc"]
        if missing:
            raise FarsideError(f"{cmd['name']}: missing argument(s) {', '.join(missing)}")
        return values

    def typed_value(self, cmd: str, spec: dict[str, Any], text: str) -> int | float:
        """One argument's text as a value in the dictionary's unit, range-checked."""
        aname, atype = spec["name"], spec["type"]
        if "enum" in spec and not _is_number(text):
            value: int | float = self.enum_value(spec["enum"], text)
        else:
            try:
                num, unit = parse_quantity(text)
            except FarsideError as exc:
                raise FarsideError(f"{cmd}.{aname}: {exc}") from None
            if unit is not None:
                target = spec.get("unit", "")
                if not target:
                    raise FarsideError(f"{cmd}.{aname}: takes a bare number (no unit), got {text!r}")
                num = convert(float(num), unit, target)
            if atype == "f32":
                value = float(num)
            else:
                if isinstance(num, float):
                    if not num.is_integer() and abs(num - round(num)) > 1e-9:
                        raise FarsideError(f"{cmd}.{aname}: expected an integer ({atype}), got {text!r}")
                    num = int(round(num))
                lo, hi = INT_RANGES[atype]
                if not lo <= num <= hi:
                    raise FarsideError(f"{cmd}.{aname}: {num} does not fit {atype} ({lo}..{hi})")
                value = int(num)
        rng = spec.get("range")
        if rng is not None and not rng[0] <= value <= rng[1]:
            unit = spec.get("unit", "")
            raise FarsideError(
                f"{cmd}.{aname}: expected {rng[0]}..{rng[1]}{(' ' + unit) if unit else ''}, got {value:g}"
            )
        if "enum" in spec and str(int(value)) not in self.raw["enums"][spec["enum"]]:
            raise FarsideError(f"{cmd}.{aname}: {value} is not a {spec['enum']} value")
        return value

    def encode_args(self, name: str, values: dict[str, int | float], packet: bytes = b"") -> bytes:
        """Application data of command `name`: arguments packed big-endian in order."""
        given: dict[str, Any] = dict(values)
        for a in self.command(name)["args"]:
            if a["type"] == "tc":
                given[a["name"]] = packet
        try:
            _, _, data = self.pd.encode_command(name, given)
        except ProtocolError as exc:
            raise FarsideError(str(exc)) from None
        return data

    # --- housekeeping -------------------------------------------------------
    def hk_dtype(self, sid: int) -> np.dtype:
        """A structured dtype covering a whole HK packet (headers, sid, parameters, CRC)."""
        params = self.hk[sid]["parameters"]
        fields: list[tuple[str, str]] = [
            ("_packet_id", ">u2"), ("_seq", ">u2"), ("_length", ">u2"), ("_pus", "u1"),
            ("_service", "u1"), ("_subservice", "u1"), ("_counter", ">u2"), ("_dest", ">u2"),
            ("_coarse", ">u4"), ("_fine", ">u2"), ("_sid", ">u2"),
        ]
        fields += [(p["name"], NP_CODES[p["type"]]) for p in params]
        fields.append(("_crc", ">u2"))
        return np.dtype(fields)

    def hk_struct(self, sid: int) -> struct.Struct:
        return struct.Struct(">" + "".join(STRUCT_CODES[p["type"]] for p in self.hk[sid]["parameters"]))

    def hk_packet_length(self, sid: int) -> int:
        return TM_HEADER_OCTETS + 2 + self.hk_struct(sid).size + TM_CRC_OCTETS

    def decode_hk(self, data: bytes) -> Decoded:
        """Source data of a TM 3/25 (sid + parameters), named and calibrated."""
        return self.pd.decode_hk(data)

    def calibrate(self, name: str, raw: float) -> float:
        p = self.hk_params[name]
        poly = p.get("calibration", {}).get("poly")
        if not poly:
            return raw
        return float(sum(c * raw**i for i, c in enumerate(poly)))

    def limit_state(self, name: str, value: float) -> str:
        """'red', 'yellow' or 'ok' for an engineering value, from the dictionary's limits."""
        lim = self.hk_params.get(name, {}).get("limits")
        if not lim:
            return "ok"
        red = lim.get("red")
        if red and not red[0] <= value <= red[1]:
            return "red"
        yellow = lim.get("yellow")
        if yellow and not yellow[0] <= value <= yellow[1]:
            return "yellow"
        return "ok"

    def decode_event(self, subservice: int, data: bytes) -> Decoded:
        """Source data of a TM 5/x: the event, its arguments and its message."""
        return self.pd.decode_event(subservice, data)


def _is_number(text: str) -> bool:
    try:
        parse_quantity(text)
        return True
    except FarsideError:
        return False
