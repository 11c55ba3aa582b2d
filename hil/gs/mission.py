"""The ground station's view of the dictionary: lookups, typed arguments, limits, HK layout.

Wraps the dictionary JSON (protocols/dictionary.json by default) with what an
operator's tools need: find a command, turn `ARG=VALUE` words into typed values
(units converted, enums by name, ranges checked), the HK packet as a numpy
structured dtype for vectorised decoding, limit colours.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

import protocols
from hil.errors import FarsideError
from hil.gs.units import convert, parse_quantity
from protocols.dictionary import (
    BYTES_TYPE,
    TC_TYPE,
    Arg,
    ArgumentError,
    Command,
    Decoded,
    Dictionary,
    Event,
    HkPacket,
    Parameter,
    fixed_bytes,
)
from protocols.errors import ProtocolError

DEFAULT_DICTIONARY = Path(protocols.__file__).resolve().parent / "dictionary.json"

# numpy codes of the dictionary's wire types (big-endian), for vectorised HK decoding
NP_CODES = {"u8": "u1", "i8": "i1", "u16": ">u2", "i16": ">i2", "u32": ">u4", "i32": ">i4", "f32": ">f4"}

# TM packet layout up to the source data (primary 6 + PUS secondary 7 + CUC 6)
TM_HEADER_OCTETS = 19
TM_CRC_OCTETS = 2


@dataclass
class GroundDictionary:
    """The ground station's dictionary: the validated, typed model (`pd`,
    protocols.dictionary.Dictionary), which holds every rule, with the views an operator's tools
    need, read-only and typed: `commands_by_name` (Command), `hk_packets` (HkPacket by sid),
    `hk_parameters` (each housekeeping parameter's Arg by name), `hk_packet_of` (the name of the
    HK packet that carries it), `events_by_id` and `events_by_name` (Event), `parameters_by_name`
    (the onboard Parameter, PARAM_GET/SET)."""

    raw: dict[str, Any]
    path: Path | None = None

    def __post_init__(self) -> None:
        d = self.raw
        try:
            self.pd = Dictionary.from_json(d, source=self.path.name if self.path else "dictionary")
        except ProtocolError as exc:
            raise FarsideError(str(exc)) from None
        pd = self.pd
        self.commands_by_name: Mapping[str, Command] = MappingProxyType(pd.commands)
        self.hk_packets: Mapping[int, HkPacket] = MappingProxyType(pd.housekeeping)
        self.hk_parameters: Mapping[str, Arg] = MappingProxyType(
            {p.name: p for h in pd.housekeeping.values() for p in h.parameters}
        )
        self.hk_packet_of: Mapping[str, str] = MappingProxyType(
            {p.name: h.name for h in pd.housekeeping.values() for p in h.parameters}
        )
        self.events_by_id: Mapping[int, Event] = MappingProxyType(pd.events)
        self.events_by_name: Mapping[str, Event] = MappingProxyType({e.name: e for e in pd.events.values()})
        self.parameters_by_name: Mapping[str, Parameter] = MappingProxyType({q.name: q for q in pd.parameters.values()})
        self.hash = self.pd.short_hash()
        m = d["mission"]
        self.scid: int = m["scid"]
        self.tc_vcid: int = m["tc_vcid"]
        self.tm_vcid: int = m["tm_vcid"]
        self.tc_apid: int = m["tc_apid"]
        self.tm_apid: int = m["tm_apid"]
        self.tm_frame_length: int = m["tm_frame_length"]

    @classmethod
    def load(cls, path: Path | str | None = None) -> GroundDictionary:
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
        return dict(self.pd.enums[name])

    def enum_label(self, enum: str, value: int) -> str:
        return self.pd.enums[enum].get(int(value), str(int(value)))

    def enum_value(self, enum: str, label: str) -> int:
        value = self.pd.enum_value(enum, label)
        if value is None:
            raise FarsideError(f"{enum}: expected one of {', '.join(self.pd.enums[enum].values())}, got {label!r}")
        return value

    def failure_name(self, code: int) -> str:
        return self.pd.failure_codes.get(code, f"failure {code}")

    def command(self, name: str) -> Command:
        cmd = self.pd.commands.get(name.upper())
        if cmd is None:
            raise FarsideError(f"unknown command {name!r}; try `farside gs dict commands`")
        return cmd

    # --- typed arguments ---------------------------------------------------
    def parse_args(self, name: str, words: list[str]) -> dict[str, int | float]:
        """`['distance_m=1', 'speed_mph=5km/h']` -> typed, converted, range-checked values."""
        cmd = self.command(name)
        specs = {a.name: a for a in cmd.args}
        values: dict[str, int | float] = {}
        for w in words:
            if "=" not in w:
                raise FarsideError(f"{cmd.name}: expected ARG=VALUE, got {w!r}")
            key, text = w.split("=", 1)
            if key not in specs:
                known = ", ".join(specs) or "no arguments"
                raise FarsideError(f"{cmd.name}: unknown argument {key!r} (takes {known})")
            if key in values:
                raise FarsideError(f"{cmd.name}: argument {key!r} given twice")
            if specs[key].type == TC_TYPE:
                raise FarsideError(f"{cmd.name}: argument {key!r} is a packet; use `send --at`")
            if specs[key].type == BYTES_TYPE:
                try:
                    values[key] = fixed_bytes(cmd.name, specs[key], text)  # type: ignore[assignment]
                except ProtocolError as exc:
                    raise FarsideError(str(exc)) from None
                continue
            values[key] = self.typed_value(cmd.name, specs[key], text)
        missing = [a for a in specs if a not in values and specs[a].type != TC_TYPE]
        if missing:
            raise FarsideError(f"{cmd.name}: missing argument(s) {', '.join(missing)}")
        return values

    def typed_value(self, cmd: str, a: Arg, text: str) -> int | float:
        """One argument's text (a unit is converted to the dictionary's) as a checked value.

        Units, enum labels and the operator's messages are the ground's; the value is checked
        by the dictionary (protocols.dictionary.Dictionary.coerce), whose verdict is phrased here."""
        value: int | float
        if a.enum is not None and not _is_number(text):
            found = self.pd.enum_value(a.enum, text)
            if found is None:
                raise FarsideError(f"{cmd}.{a.name}: expected one of {', '.join(self._allowed(a))}, got {text!r}")
            value = found
        else:
            try:
                value, unit = parse_quantity(text)
            except FarsideError as exc:
                raise FarsideError(f"{cmd}.{a.name}: {exc}") from None
            if unit is not None:
                if not a.unit:
                    raise FarsideError(f"{cmd}.{a.name}: takes a bare number (no unit), got {text!r}")
                value = convert(float(value), unit, a.unit)
            if a.type == "f32":
                value = float(value)
            elif isinstance(value, float) and math.isfinite(value) and abs(value - round(value)) <= 1e-9:
                value = int(round(value))  # a unit conversion's rounding noise
        try:
            return self.pd.coerce(cmd, a, value)
        except ArgumentError as exc:
            if exc.problem in ("whole", "finite") and a.type != "f32":
                raise FarsideError(f"{cmd}.{a.name}: expected an integer ({a.type}), got {text!r}") from None
            if exc.problem == "range" and a.enum is not None:
                raise FarsideError(f"{cmd}.{a.name}: expected one of {', '.join(self._allowed(a))}, got {text!r}") from None
            if exc.problem in ("range", "finite"):
                unit = f" {a.unit}" if a.unit else ""
                raise FarsideError(f"{cmd}.{a.name}: expected {exc.lo:g}..{exc.hi:g}{unit}, got {value:g}") from None
            raise FarsideError(str(exc)) from None
        except ProtocolError as exc:
            raise FarsideError(str(exc)) from None

    def _allowed(self, a: Arg) -> list[str]:
        """The labels of enum argument `a` that its range allows, in value order."""
        labels = sorted(self.pd.enums[a.enum or ""].items())
        lo, hi = a.range if a.range else (labels[0][0], labels[-1][0])
        return [label for v, label in labels if lo <= v <= hi]

    def encode_args(self, name: str, values: dict[str, int | float], packet: bytes = b"") -> bytes:
        """Application data of command `name`: arguments packed big-endian in order."""
        return self.encode_command(name, values, packet)[2]

    def encode_command(
        self, name: str, values: dict[str, int | float], packet: bytes = b""
    ) -> tuple[int, int, bytes]:
        """(service, subservice, application data) of command `name`, by the dictionary's encoder;
        `packet` is the value of a 'tc' argument (TT_INSERT)."""
        given: dict[str, Any] = dict(values)
        for a in self.command(name).args:
            if a.type == TC_TYPE:
                given[a.name] = packet
        try:
            return self.pd.encode_command(name, given)
        except ProtocolError as exc:
            raise FarsideError(str(exc)) from None

    # --- housekeeping -------------------------------------------------------
    def hk_dtype(self, sid: int) -> np.dtype:
        """A structured dtype covering a whole HK packet (headers, sid, parameters, CRC)."""
        params = self.pd.housekeeping[sid].parameters
        fields: list[tuple[str, str]] = [
            ("_packet_id", ">u2"), ("_seq", ">u2"), ("_length", ">u2"), ("_pus", "u1"),
            ("_service", "u1"), ("_subservice", "u1"), ("_counter", ">u2"), ("_dest", ">u2"),
            ("_coarse", ">u4"), ("_fine", ">u2"), ("_sid", ">u2"),
        ]
        fields += [(p.name, NP_CODES[p.type]) for p in params]
        fields.append(("_crc", ">u2"))
        return np.dtype(fields)

    def hk_struct(self, sid: int) -> struct.Struct:
        """The parameters of HK packet `sid` (without the sid), big-endian."""
        return struct.Struct(">" + self.pd.hk_struct_format(sid)[2:])

    def hk_packet_length(self, sid: int) -> int:
        return TM_HEADER_OCTETS + struct.calcsize(self.pd.hk_struct_format(sid)) + TM_CRC_OCTETS

    def decode_hk(self, data: bytes) -> Decoded:
        """Source data of a TM 3/25 (sid + parameters), named and calibrated."""
        return self.pd.decode_hk(data)

    def limit_state(self, name: str, value: float) -> str:
        """'red', 'yellow' or 'ok' for an engineering value, from the dictionary's limits."""
        p = self.hk_parameters.get(name)
        lim = p.limits if p is not None else None
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


# the name the ground's modules and scripts know it by
Mission = GroundDictionary


def _is_number(text: str) -> bool:
    try:
        parse_quantity(text)
        return True
    except FarsideError:
        return False


def command_text(name: str, args: Mapping[str, Any], mission: GroundDictionary | None = None) -> str:
    """A command as an operator reads it, `NAME a=1 b=2.5`: with `mission`, an enum argument by
    its label (the typed arguments hold the number the packet carries: `mode=DRIVE`, not 3)."""
    enums: dict[str, str] = {}
    if mission is not None and name.upper() in mission.pd.commands:
        enums = {a.name: a.enum for a in mission.pd.commands[name.upper()].args if a.enum is not None}
    words = [name]
    for k, v in args.items():
        if mission is not None and k in enums and isinstance(v, int):
            words.append(f"{k}={mission.enum_label(enums[k], v)}")
        else:
            words.append(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}")
    return " ".join(words)
