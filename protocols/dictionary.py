"""The command / telemetry / event dictionary: protocols/dictionary.json, the single source of
truth for commands (PUS service/subservice, typed arguments with units and ranges),
housekeeping (TM 3/25 parameters with types, units, calibration, limits), events (TM 5/x)
and parameters (TM 20/2).

load_dictionary() validates the file with errors that name the entry and what is wrong.
short_hash() is the first 4 octets of SHA-256 over the canonical bytes
json.dumps(d, sort_keys=True, separators=(",", ":")) as a u32; the rover reports it.
Arguments and parameters are packed big-endian in dictionary order.

Argument checks, ground and rover alike (firmware_py/dictionary.py must agree): the range
("range": [lo, hi], else the type's bounds) is checked before the enum, so a value outside
the range fails OUT_OF_RANGE and BAD_ENUM is left for a value inside it that the enum lacks.
An enum argument's range must therefore lie within its enum's values (every whole number
lo..hi is a key of the enum): it restricts the enum (MODE_SET's [1, 4] keeps out BOOT = 0).
Validation rejects a range value that is not an enum value.
"""

from __future__ import annotations

import hashlib
import json
import math
import string
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from protocols.errors import DictionaryError, ProtocolError

DEFAULT_PATH = Path(__file__).with_name("dictionary.json")

STRUCT_CODES = {"u8": "B", "i8": "b", "u16": "H", "i16": "h", "u32": "I", "i32": "i", "f32": "f"}
TYPE_BOUNDS: dict[str, tuple[float, float]] = {
    "u8": (0, 0xFF),
    "i8": (-0x80, 0x7F),
    "u16": (0, 0xFFFF),
    "i16": (-0x8000, 0x7FFF),
    "u32": (0, 0xFFFFFFFF),
    "i32": (-0x80000000, 0x7FFFFFFF),
    "f32": (-3.4028234663852886e38, 3.4028234663852886e38),
}
TC_TYPE = "tc"  # command argument: the rest of the application data is a whole TC packet
BYTES_TYPE = "bytes"  # command argument: raw octets of a fixed "length" (hex on the CLI)
MAX_BYTES_LENGTH = 256
SEVERITIES = {"info": 1, "low": 2, "medium": 3, "high": 4}
SEVERITY_BY_SUBSERVICE = {v: k for k, v in SEVERITIES.items()}
VERIFICATION_REPORTS = {
    1: "ACCEPTED",
    2: "REJECTED",
    3: "STARTED",
    4: "START_FAILED",
    7: "COMPLETED",
    8: "COMPLETION_FAILED",
}
VERIFICATION_FAILURES = {2, 4, 8}
TOP_LEVEL = ("version", "mission", "enums", "failure_codes", "commands", "housekeeping", "parameters", "events")


# --- model ---------------------------------------------------------------------------------


def _decimals(c: float) -> int:
    """Decimal places a calibration coefficient is written with (0.01 -> 2, 5 -> 0)."""
    text = f"{c:.15g}"
    if "e" in text:
        mant, exp = text.split("e")
        return max(0, len(mant.split(".")[1]) if "." in mant else 0) - int(exp)
    return len(text.split(".")[1]) if "." in text else 0


@dataclass(frozen=True)
class Arg:
    """A typed field: a command argument, an event argument or a housekeeping parameter."""

    name: str
    type: str
    unit: str = ""
    range: tuple[float, float] | None = None
    enum: str | None = None
    calibration: tuple[float, ...] | None = None
    limits: dict[str, tuple[float, float]] | None = None
    description: str = ""
    length: int | None = None  # octets of a 'bytes' field


@dataclass(frozen=True)
class Command:
    name: str
    service: int
    subservice: int
    args: tuple[Arg, ...]
    description: str = ""


@dataclass(frozen=True)
class HkPacket:
    name: str
    sid: int
    parameters: tuple[Arg, ...]
    default_period_s: float = 1.0

    @property
    def struct_format(self) -> str:
        """struct format of the TM 3/25 source data: sid then the parameters, big-endian."""
        return ">H" + "".join(STRUCT_CODES[p.type] for p in self.parameters)


@dataclass(frozen=True)
class Event:
    id: int
    name: str
    severity: str
    args: tuple[Arg, ...]
    message: str


@dataclass(frozen=True)
class Parameter:
    id: int
    name: str
    unit: str
    range: tuple[float, float]
    default: float
    description: str = ""


@dataclass(frozen=True)
class Value:
    """One decoded field: raw number, engineering value (calibrated or enum name), unit."""

    name: str
    raw: int | float | str
    value: int | float | str
    unit: str = ""
    type: str = ""

    def text(self) -> str:
        shown = f"{self.value:.6g}" if isinstance(self.value, float) else str(self.value)
        return f"{shown} {self.unit}".rstrip()


_new = object.__new__
_set = object.__setattr__


def _value(name: str, raw: int | float | str, value: int | float | str, unit: str, typ: str) -> Value:
    """Value(name, raw, value, unit, typ) without the frozen dataclass's five guarded
    assignments: the decoders' per-field constructor (an equal Value, a third cheaper)."""
    v = _new(Value)
    _set(v, "__dict__", {"name": name, "raw": raw, "value": value, "unit": unit, "type": typ})
    return v


@dataclass(frozen=True)
class Decoded:
    """A TC's arguments or a TM packet's content, named from the dictionary."""

    kind: str  # command | hk | event | verification | ping | parameter | unknown
    name: str
    service: int
    subservice: int
    values: tuple[Value, ...] = ()
    message: str = ""
    severity: str = ""
    id: int | None = None
    raw: bytes = b""

    def value(self, name: str) -> Value:
        for v in self.values:
            if v.name == name:
                return v
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["raw"] = self.raw.hex()
        out["values"] = [asdict(v) for v in self.values]
        return {k: v for k, v in out.items() if v not in ("", None) or k in ("name", "kind")}


# --- validation ------------------------------------------------------------------------------


class ArgumentError(DictionaryError):
    """A value that Dictionary.coerce rejects for a field. `problem` is the check that failed:
    "number" (not a number nor an enum name), "finite", "whole" (an integer type given a
    fraction), "range" (outside `lo`..`hi`: the field's range, else its type's bounds) or
    "enum" (inside the range, not a value of the enum); `value` is what was checked."""

    def __init__(self, message: str, problem: str, value: Any, lo: float, hi: float) -> None:
        super().__init__(message)
        self.problem = problem
        self.value = value
        self.lo = lo
        self.hi = hi


def _err(where: str, what: str) -> DictionaryError:
    return DictionaryError(f"{where}: {what}")


def _int_in(where: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _err(where, f"expected an integer {lo}..{hi}, got {value!r}")
    return value


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _err(where, f"expected a number, got {value!r}")
    return value


def _name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value or not value.replace("_", "a").isalnum():
        raise _err(where, f"expected a name of letters, digits and _, got {value!r}")
    return value


def _pair(where: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise _err(where, f"expected [low, high], got {value!r}")
    lo, hi = _number(where, value[0]), _number(where, value[1])
    if lo > hi:
        raise _err(where, f"low {lo} is above high {hi}")
    return lo, hi


def _arg(where: str, obj: Any, enums: Mapping[str, Mapping[int, str]], allow_tc: bool = False) -> Arg:
    if not isinstance(obj, dict):
        raise _err(where, f"expected an object, got {obj!r}")
    name = _name(f"{where}.name", obj.get("name"))
    where = f"{where} ({name})"
    typ = obj.get("type")
    known = sorted(STRUCT_CODES) + ([TC_TYPE, BYTES_TYPE] if allow_tc else [])
    if typ not in known:
        raise _err(where, f"unknown type {typ!r} (expected one of {', '.join(known)})")
    length = None
    if typ == BYTES_TYPE:
        length = _int_in(f"{where}.length", obj.get("length"), 1, MAX_BYTES_LENGTH)
        for key in ("range", "enum", "calibration", "limits"):
            if key in obj:
                raise _err(where, f"a 'bytes' argument has no {key}")
    elif "length" in obj:
        raise _err(where, f"only a 'bytes' argument has a length, not {typ}")
    rng = None
    if "range" in obj:
        rng = _pair(f"{where}.range", obj["range"])
        if typ == TC_TYPE:
            raise _err(where, "a 'tc' argument has no range")
        lo, hi = TYPE_BOUNDS[typ]
        if rng[0] < lo or rng[1] > hi:
            raise _err(where, f"range [{rng[0]:g}, {rng[1]:g}] does not fit type {typ} ({lo:g}..{hi:g})")
    enum = obj.get("enum")
    if enum is not None:
        if enum not in enums:
            raise _err(where, f"enum {enum!r} is not in enums ({', '.join(sorted(enums))})")
        if typ == "f32" or typ == TC_TYPE:
            raise _err(where, f"an enumerated field must have an integer type, not {typ}")
        if rng is not None:
            _range_within_enum(where, rng, enum, enums[enum])
    cal = None
    if "calibration" in obj:
        poly = obj["calibration"].get("poly") if isinstance(obj["calibration"], dict) else None
        if not isinstance(poly, list) or not poly:
            raise _err(where, "calibration must be {\"poly\": [c0, c1, ...]}")
        cal = tuple(_number(f"{where}.calibration.poly", c) for c in poly)
    limits = None
    if "limits" in obj:
        if not isinstance(obj["limits"], dict):
            raise _err(where, "limits must be an object {\"yellow\": [lo, hi], \"red\": [lo, hi]}")
        limits = {}
        for level, pair in obj["limits"].items():
            if level not in ("yellow", "red"):
                raise _err(where, f"unknown limit level {level!r} (expected yellow or red)")
            limits[level] = _pair(f"{where}.limits.{level}", pair)
    unit = obj.get("unit", "")
    if not isinstance(unit, str):
        raise _err(where, f"unit must be a string, got {unit!r}")
    return Arg(name, typ, unit, rng, enum, cal, limits, str(obj.get("description", "")), length)


def _range_within_enum(where: str, rng: tuple[float, float], name: str, table: Mapping[int, str]) -> None:
    """Every whole number of an enum argument's range must be a value of its enum."""
    value = math.ceil(rng[0])
    while value <= rng[1]:  # stops at the first gap: at most len(table) + 1 steps
        if value not in table:
            keys = ", ".join(f"{k}={v}" for k, v in sorted(table.items()))
            raise _err(where, f"range [{rng[0]:g}, {rng[1]:g}] includes {value}, which is not a value of "
                              f"enum {name!r} ({keys}); an enum argument's range must lie within its enum")
        value += 1


def _unique(where: str, kind: str, seen: dict[Any, str], key: Any, label: str) -> None:
    if key in seen:
        raise _err(where, f"duplicate {kind} {key!r} (also {seen[key]})")
    seen[key] = label


@dataclass
class Dictionary:
    """A validated dictionary; build with load_dictionary() or Dictionary.from_json()."""

    raw: dict[str, Any]
    source: str = "dictionary"
    commands: dict[str, Command] = field(default_factory=dict)
    by_code: dict[tuple[int, int], Command] = field(default_factory=dict)
    housekeeping: dict[int, HkPacket] = field(default_factory=dict)
    events: dict[int, Event] = field(default_factory=dict)
    parameters: dict[int, Parameter] = field(default_factory=dict)
    enums: dict[str, dict[int, str]] = field(default_factory=dict)
    failure_codes: dict[int, str] = field(default_factory=dict)
    # per sid: the HK report's struct and its compiled decoder (raw fields -> Values)
    _hk_fast: dict[int, tuple[struct.Struct, Callable[[tuple[Any, ...]], tuple[Value, ...]]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    # --- loading ---
    @classmethod
    def from_json(cls, obj: Any, source: str = "dictionary") -> Dictionary:
        d = cls(raw=obj, source=source)
        d._validate()
        return d

    def _validate(self) -> None:
        src = self.source
        obj = self.raw
        if not isinstance(obj, dict):
            raise _err(src, "expected a JSON object at the top level")
        for key in TOP_LEVEL:
            if key not in obj:
                raise _err(src, f"missing top-level key {key!r}")
        extra = sorted(set(obj) - set(TOP_LEVEL))
        if extra:
            raise _err(src, f"unknown top-level key {extra[0]!r}")
        self._validate_mission(obj["mission"])
        if not isinstance(obj["enums"], dict):
            raise _err(f"{src}: enums", "expected an object")
        for ename, values in obj["enums"].items():
            where = f"{src}: enums.{ename}"
            _name(where, ename)
            if not isinstance(values, dict) or not values:
                raise _err(where, "expected a non-empty object {\"<number>\": \"NAME\"}")
            table: dict[int, str] = {}
            names: dict[Any, str] = {}
            for k, v in values.items():
                try:
                    num = int(k)
                except ValueError:
                    raise _err(where, f"key {k!r} is not an integer") from None
                _unique(where, "enum name", names, _name(f"{where}[{k}]", v), k)
                table[num] = v
            self.enums[ename] = table
        if not isinstance(obj["failure_codes"], dict):
            raise _err(f"{src}: failure_codes", "expected an object")
        names = {}
        for k, v in obj["failure_codes"].items():
            where = f"{src}: failure_codes[{k}]"
            try:
                code = _int_in(where, int(k), 1, 0xFFFF)
            except ValueError:
                raise _err(where, "key is not an integer") from None
            fname = _name(f"{where}.name", v.get("name") if isinstance(v, dict) else None)
            _unique(where, "failure code name", names, fname, k)
            self.failure_codes[code] = fname
        self._validate_commands(obj["commands"])
        self._validate_housekeeping(obj["housekeeping"])
        self._validate_parameters(obj["parameters"])
        self._validate_events(obj["events"])

    def _validate_mission(self, m: Any) -> None:
        where = f"{self.source}: mission"
        if not isinstance(m, dict):
            raise _err(where, "expected an object")
        for key, lo, hi in (
            ("scid", 0, 0x3FF), ("tc_vcid", 0, 63), ("tm_vcid", 0, 7), ("tc_apid", 0, 0x7FE),
            ("tm_apid", 0, 0x7FE), ("tm_frame_length", 16, 2048), ("tc_frame_max", 16, 1024),
        ):
            if key not in m:
                raise _err(where, f"missing {key!r}")
            _int_in(f"{where}.{key}", m[key], lo, hi)
        try:
            datetime.fromisoformat(str(m.get("epoch", "")).replace("Z", "+00:00"))
        except ValueError:
            raise _err(f"{where}.epoch", f"not an ISO 8601 time: {m.get('epoch')!r}") from None

    def _named_objects(self, section: str, items: Any) -> Iterator[tuple[int, str, str, dict[str, Any]]]:
        """Each entry of a list section as (index, where, name, object), checked to be a named object."""
        if not isinstance(items, list):
            raise _err(f"{self.source}: {section}", "expected a list")
        for i, obj in enumerate(items):
            where = f"{self.source}: {section}[{i}]"
            if not isinstance(obj, dict):
                raise _err(where, "expected an object")
            name = _name(f"{where}.name", obj.get("name"))
            yield i, f"{where} ({name})", name, obj

    def _validate_commands(self, commands: Any) -> None:
        names: dict[Any, str] = {}
        codes: dict[Any, str] = {}
        for i, where, name, c in self._named_objects("commands", commands):
            _unique(where, "command name", names, name, f"commands[{names.get(name, i)}]")
            svc = _int_in(f"{where}.service", c.get("service"), 0, 255)
            sub = _int_in(f"{where}.subservice", c.get("subservice"), 0, 255)
            _unique(where, "service/subservice", codes, (svc, sub), name)
            args = self._args(where, c.get("args"), allow_tc=True)
            for j, a in enumerate(args):
                if a.type == TC_TYPE and j != len(args) - 1:
                    raise _err(f"{where}.args[{j}] ({a.name})", "a 'tc' argument must be the last")
            cmd = Command(name, svc, sub, args, str(c.get("description", "")))
            self.commands[name] = cmd
            self.by_code[(svc, sub)] = cmd

    def _args(self, where: str, args: Any, allow_tc: bool = False) -> tuple[Arg, ...]:
        if not isinstance(args, list):
            raise _err(where, "args must be a list")
        out = []
        seen: dict[Any, str] = {}
        for j, a in enumerate(args):
            arg = _arg(f"{where}.args[{j}]", a, self.enums, allow_tc)
            _unique(f"{where}.args[{j}]", "argument name", seen, arg.name, f"args[{seen.get(arg.name, j)}]")
            out.append(arg)
        return tuple(out)

    def _validate_housekeeping(self, packets: Any) -> None:
        sids: dict[Any, str] = {}
        for _, where, name, p in self._named_objects("housekeeping", packets):
            sid = _int_in(f"{where}.sid", p.get("sid"), 0, 0xFFFF)
            _unique(where, "sid", sids, sid, name)
            params = p.get("parameters")
            if not isinstance(params, list) or not params:
                raise _err(where, "parameters must be a non-empty list")
            seen: dict[Any, str] = {}
            out = []
            for j, a in enumerate(params):
                arg = _arg(f"{where}.parameters[{j}]", a, self.enums)
                _unique(f"{where}.parameters[{j}]", "parameter name", seen, arg.name, str(j))
                out.append(arg)
            period = _number(f"{where}.default_period_s", p.get("default_period_s", 1.0))
            self.housekeeping[sid] = HkPacket(name, sid, tuple(out), period)

    def _validate_parameters(self, params: Any) -> None:
        ids: dict[Any, str] = {}
        names: dict[Any, str] = {}
        for _, where, name, p in self._named_objects("parameters", params):
            pid = _int_in(f"{where}.id", p.get("id"), 1, 0xFFFF)
            _unique(where, "parameter id", ids, pid, name)
            _unique(where, "parameter name", names, name, str(pid))
            rng = _pair(f"{where}.range", p.get("range"))
            default = _number(f"{where}.default", p.get("default"))
            if not rng[0] <= default <= rng[1]:
                raise _err(where, f"default {default:g} outside range [{rng[0]:g}, {rng[1]:g}]")
            self.parameters[pid] = Parameter(pid, name, str(p.get("unit", "")), rng, default,
                                             str(p.get("description", "")))

    def _validate_events(self, events: Any) -> None:
        ids: dict[Any, str] = {}
        names: dict[Any, str] = {}
        for _, where, name, e in self._named_objects("events", events):
            eid = _int_in(f"{where}.id", e.get("id"), 0, 0xFFFF)
            _unique(where, "event id", ids, eid, name)
            _unique(where, "event name", names, name, str(eid))
            sev = e.get("severity")
            if sev not in SEVERITIES:
                raise _err(where, f"unknown severity {sev!r} (expected one of {', '.join(SEVERITIES)})")
            args = self._args(where, e.get("args"))
            message = e.get("message")
            if not isinstance(message, str):
                raise _err(where, "message must be a string template")
            arg_names = {a.name for a in args}
            try:
                fields = [f for _, f, _, _ in string.Formatter().parse(message) if f is not None]
            except ValueError as exc:
                raise _err(where, f"bad message template: {exc}") from None
            for f in fields:
                if f not in arg_names:
                    raise _err(where, f"message template names {{{f}}}, which is not an argument")
            self.events[eid] = Event(eid, name, sev, args, message)

    # --- hash ---
    def canonical_bytes(self) -> bytes:
        return canonical_bytes(self.raw)

    def short_hash(self) -> int:
        return short_hash(self.raw)

    @property
    def mission(self) -> dict[str, Any]:
        return dict(self.raw["mission"])

    # --- commands ---
    def command(self, name: str) -> Command:
        cmd = self.commands.get(name.upper())
        if cmd is None:
            raise DictionaryError(f"no command named {name!r} in the dictionary")
        return cmd

    def command_by_code(self, service: int, subservice: int) -> Command | None:
        return self.by_code.get((service, subservice))

    def encode_command(self, name: str, args: Mapping[str, Any] | None = None) -> tuple[int, int, bytes]:
        """(service, subservice, application data) of command `name` with typed `args`
        (numbers, numeric strings with an optional unit matching the dictionary's, enum names,
        and for a 'tc' argument the whole TC packet as bytes or hex)."""
        if not isinstance(name, str):
            raise TypeError("command name must be a str")
        cmd = self.command(name)
        given = dict(args or {})
        out = bytearray()
        for a in cmd.args:
            if a.name not in given:
                raise DictionaryError(f"{cmd.name}: missing argument {a.name}")
            value = given.pop(a.name)
            if a.type == TC_TYPE:
                out += _tc_bytes(cmd.name, a, value)
                continue
            if a.type == BYTES_TYPE:
                out += fixed_bytes(cmd.name, a, value)
                continue
            num = self.coerce(cmd.name, a, value)
            out += struct.pack(">" + STRUCT_CODES[a.type], num)
        if given:
            raise DictionaryError(
                f"{cmd.name}: unknown argument {sorted(given)[0]} (expected {', '.join(a.name for a in cmd.args) or 'none'})"
            )
        return cmd.service, cmd.subservice, bytes(out)

    def enum_value(self, enum: str, label: str) -> int | None:
        """The number of `label` in enum `enum` (case-insensitive), None if the enum lacks it."""
        want = label.upper()
        for k, n in self.enums[enum].items():
            if n.upper() == want:
                return k
        return None

    def coerce(self, where: str, a: Arg, value: Any) -> int | float:
        """A checked number for field `a` from a number, numeric string (with unit) or enum name.

        Raises ArgumentError: its `problem` says which check failed, for callers that phrase
        the error in their own terms."""
        unit = f" {a.unit}" if a.unit else ""
        lo, hi = a.range if a.range is not None else TYPE_BOUNDS[a.type]
        num: int | float
        if isinstance(value, str):
            text = value.strip()
            code = self.enum_value(a.enum, text) if a.enum is not None else None
            if code is not None:
                num = code
            else:
                if a.unit and text.endswith(a.unit):
                    text = text[: -len(a.unit)].strip()
                try:
                    num = int(text, 0) if a.type != "f32" else float(text)
                except ValueError:
                    try:
                        num = float(text)
                    except ValueError:
                        expect = f"a number{unit}" + (
                            f" or one of {', '.join(self.enums[a.enum].values())}" if a.enum else ""
                        )
                        raise ArgumentError(f"{where}: {a.name}={value!r} is not {expect}",
                                            "number", value, lo, hi) from None
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ArgumentError(f"{where}: {a.name}={value!r} is not a number", "number", value, lo, hi)
        else:
            num = value
        if isinstance(num, float) and not math.isfinite(num):
            raise ArgumentError(f"{where}: {a.name}={num} is not finite", "finite", num, lo, hi)
        if a.type != "f32":
            if isinstance(num, float):
                if not num.is_integer():
                    raise ArgumentError(f"{where}: {a.name}={num:g} must be a whole number ({a.type})",
                                        "whole", num, lo, hi)
                num = int(num)
        if not lo <= num <= hi:
            raise ArgumentError(f"{where}: {a.name}={num:g} out of range [{lo:g}, {hi:g}]{unit}",
                                "range", num, lo, hi)
        if a.enum is not None and int(num) not in self.enums[a.enum]:
            raise ArgumentError(f"{where}: {a.name}={num} is not a {a.enum} value", "enum", num, lo, hi)
        return num

    def decode_command(self, service: int, subservice: int, app_data: bytes) -> Decoded:
        """The command with this code and its arguments (raises DictionaryError if unknown or
        the data does not fit)."""
        cmd = self.command_by_code(service, subservice)
        if cmd is None:
            raise DictionaryError(f"no command {service}/{subservice} in the dictionary")
        values, rest = self._unpack(cmd.name, cmd.args, app_data)
        if rest:
            raise DictionaryError(
                f"{cmd.name}: {len(rest)} octets of application data left after the arguments"
            )
        return Decoded("command", cmd.name, service, subservice, tuple(values), raw=bytes(app_data))

    def _unpack(self, where: str, args: tuple[Arg, ...], data: bytes) -> tuple[list[Value], bytes]:
        values = []
        pos = 0
        for a in args:
            if a.type == TC_TYPE:
                values.append(Value(a.name, data[pos:].hex(), data[pos:].hex(), "", a.type))
                pos = len(data)
                continue
            if a.type == BYTES_TYPE:
                assert a.length is not None
                if len(data) - pos < a.length:
                    raise DictionaryError(
                        f"{where}: data ends at octet {len(data)} inside {a.name} (bytes({a.length}) at octet {pos})"
                    )
                octets = bytes(data[pos : pos + a.length]).hex()
                values.append(Value(a.name, octets, octets, "", a.type))
                pos += a.length
                continue
            code = ">" + STRUCT_CODES[a.type]
            size = struct.calcsize(code)
            if len(data) - pos < size:
                raise DictionaryError(
                    f"{where}: data ends at octet {len(data)} inside {a.name} ({a.type} at octet {pos})"
                )
            (raw,) = struct.unpack_from(code, data, pos)
            pos += size
            values.append(self.value_of(a, raw))
        return values, bytes(data[pos:])

    def converter(self, a: Arg) -> Callable[[Any], Value]:
        """value_of(a, raw) as a function of raw alone, with the lookups done once: the same
        Values (the same floating-point operations) at a fraction of the cost."""
        name, unit, typ = a.name, a.unit, a.type
        if a.enum is not None:
            table = self.enums[a.enum]

            def enum_value(raw: Any) -> Value:
                return _value(name, raw, table.get(int(raw), f"?{raw}"), unit, typ)

            return enum_value
        cal = a.calibration
        if cal is None:
            return lambda raw: _value(name, raw, raw, unit, typ)
        if len(cal) == 2:
            c0, c1 = cal
            digits = max(_decimals(c) for c in cal)
            base_int = 0 + c0 * 1  # value_of's 0 + c0 * raw**0 for an int raw (raw**0 is 1)

            def linear(raw: Any) -> Value:
                # as value_of: 0 + c0 * raw**0 + c1 * raw**1, rounded for a whole raw number
                if type(raw) is int:
                    value = round(float(base_int + c1 * raw), digits)
                else:
                    value = float(0 + c0 * raw**0 + c1 * raw)
                    if float(raw).is_integer():
                        value = round(value, digits)
                return _value(name, raw, value, unit, typ)

            return linear
        return lambda raw: self.value_of(a, raw)

    def value_of(self, a: Arg, raw: int | float) -> Value:
        """Raw -> engineering value (calibration polynomial or enum name) with unit."""
        value: int | float | str = raw
        if a.enum is not None:
            value = self.enums[a.enum].get(int(raw), f"?{raw}")
        elif a.calibration is not None:
            value = float(sum(c * raw**i for i, c in enumerate(a.calibration)))
            if len(a.calibration) <= 2 and float(raw).is_integer():
                # a linear calibration of a whole raw number: to the resolution it declares
                # (1495 * 0.01 is 14.95, not 14.950000000000001)
                value = round(value, max(_decimals(c) for c in a.calibration))
        return Value(a.name, raw, value, a.unit, a.type)

    # --- telemetry ---
    def hk_struct_format(self, sid: int) -> str:
        return self._hk(sid).struct_format

    def _hk(self, sid: int) -> HkPacket:
        hk = self.housekeeping.get(sid)
        if hk is None:
            raise DictionaryError(f"no housekeeping packet with sid {sid} in the dictionary")
        return hk

    def decode_hk(self, data: bytes) -> Decoded:
        if len(data) < 2:
            raise DictionaryError(f"HK report needs a 2-octet sid, got {len(data)} octets")
        sid = int.from_bytes(data[:2], "big")
        hk = self._hk(sid)
        fast = self._hk_fast.get(sid)
        if fast is None:
            fast = self._hk_fast[sid] = (struct.Struct(hk.struct_format), self._hk_decoder(hk))
        st, decode = fast
        if len(data) != st.size:
            raise DictionaryError(f"{hk.name} (sid {sid}) is {st.size} octets of source data, got {len(data)}")
        return Decoded("hk", hk.name, 3, 25, decode(st.unpack(data)), id=sid, raw=bytes(data))

    def _hk_decoder(self, hk: HkPacket) -> Callable[[tuple[Any, ...]], tuple[Value, ...]]:
        """One function from the HK report's unpacked fields (the sid first) to its Values,
        generated once: each field's converter (see converter()) written out inline for the
        common kinds (an enum, no calibration, a linear one of a whole number), so a report
        costs one call instead of one per field. The same Values as converter() gives.

        A whole-number field keeps its last (raw, Value) pair: a report whose field has not
        changed since the last one (most of them, report to report) gets the same Value
        back (frozen, so shared safely) without converting it again. The pair is one tuple,
        read and replaced whole, so decoders on two threads never pair a raw with another
        raw's Value."""
        ns: dict[str, Any] = {"V": _value}
        lines = []
        outs = []
        never = object()  # equal to no raw number: the first report converts every field
        for i, a in enumerate(hk.parameters):
            x = "x"
            ns[f"N{i}"], ns[f"U{i}"], ns[f"Y{i}"] = a.name, a.unit, a.type
            head = f"V(N{i}, {x}, "
            tail = f", U{i}, Y{i})"
            whole = a.type in STRUCT_CODES and a.type != "f32"  # struct gives an int
            cal = a.calibration
            if a.enum is not None and whole:
                ns[f"T{i}"] = self.enums[a.enum]
                expr = f"{head}T{i}[{x}] if {x} in T{i} else f'?{{{x}}}'{tail}"
            elif a.enum is None and cal is None:
                expr = f"{head}{x}{tail}"
            elif a.enum is None and cal is not None and len(cal) == 2 and whole:
                c0, c1 = cal
                ns[f"B{i}"] = 0 + c0 * 1  # value_of's 0 + c0 * raw**0 (raw**0 is 1)
                ns[f"C{i}"] = c1
                ns[f"D{i}"] = max(_decimals(c) for c in cal)
                expr = f"{head}round(float(B{i} + C{i} * {x}), D{i}){tail}"
            else:
                ns[f"F{i}"] = self.converter(a)
                expr = f"F{i}({x})"
            lines.append(f"    x = r[{i + 1}]")
            if whole:
                ns[f"K{i}"] = [(never, None)]
                lines += [
                    f"    k = K{i}[0]",
                    "    if k[0] == x:",
                    f"        v{i} = k[1]",
                    "    else:",
                    f"        v{i} = {expr}",
                    f"        K{i}[0] = (x, v{i})",
                ]
            else:
                lines.append(f"    v{i} = {expr}")
            outs.append(f"v{i}")
        src = "def decode(r):\n" + "\n".join(lines) + "\n    return (" + ", ".join(outs) + ",)\n"
        exec(compile(src, f"<hk {hk.name} decoder>", "exec"), ns)
        decode: Callable[[tuple[Any, ...]], tuple[Value, ...]] = ns["decode"]
        return decode

    def decode_event(self, subservice: int, data: bytes) -> Decoded:
        if len(data) < 2:
            raise DictionaryError(f"event report needs a 2-octet event id, got {len(data)} octets")
        eid = int.from_bytes(data[:2], "big")
        ev = self.events.get(eid)
        if ev is None:
            raise DictionaryError(f"no event with id {eid} in the dictionary")
        values, rest = self._unpack(ev.name, ev.args, data[2:])
        if rest:
            raise DictionaryError(f"{ev.name}: {len(rest)} octets left after the arguments")
        shown = {v.name: v.text() for v in values}
        message = ev.message.format(**shown)
        return Decoded("event", ev.name, 5, subservice, tuple(values), message, ev.severity, eid, bytes(data))

    def decode_verification(self, subservice: int, data: bytes) -> Decoded:
        report = VERIFICATION_REPORTS.get(subservice)
        if report is None:
            raise DictionaryError(f"no verification report 1/{subservice}")
        need = 6 if subservice in VERIFICATION_FAILURES else 4
        if len(data) != need:
            raise DictionaryError(f"verification report 1/{subservice} is {need} octets, got {len(data)}")
        packet_id, psc = struct.unpack_from(">HH", data)
        values = [
            Value("tc_apid", packet_id & 0x7FF, packet_id & 0x7FF),
            Value("tc_seq_count", psc & 0x3FFF, psc & 0x3FFF),
        ]
        message = f"TC apid {packet_id & 0x7FF} seq {psc & 0x3FFF} {report.lower().replace('_', ' ')}"
        if need == 6:
            code = int.from_bytes(data[4:6], "big")
            fname = self.failure_codes.get(code, f"?{code}")
            values.append(Value("failure", code, fname))
            message += f": {fname}"
        return Decoded("verification", report, 1, subservice, tuple(values), message, raw=bytes(data))

    def decode_tm(self, service: int, subservice: int, data: bytes) -> Decoded:
        """TM source data named from the dictionary (raises DictionaryError if it does not fit)."""
        if service == 1:
            return self.decode_verification(subservice, data)
        if (service, subservice) == (3, 25):
            return self.decode_hk(data)
        if service == 5 and subservice in SEVERITY_BY_SUBSERVICE:
            return self.decode_event(subservice, data)
        if (service, subservice) == (17, 2):
            if data:
                raise DictionaryError(f"ping reply 17/2 carries no data, got {len(data)} octets")
            return Decoded("ping", "PING_REPLY", 17, 2, message="are-you-alive reply")
        if (service, subservice) == (20, 2):
            if len(data) != 6:
                raise DictionaryError(f"parameter report 20/2 is 6 octets, got {len(data)}")
            pid, value = struct.unpack(">Hf", data)
            param = self.parameters.get(pid)
            pname = param.name if param else f"?{pid}"
            unit = param.unit if param else ""
            v = Value(pname, value, float(value), unit, "f32")
            return Decoded("parameter", pname, 20, 2, (v,), f"parameter {pid} {pname} = {v.text()}", id=pid,
                           raw=bytes(data))
        return Decoded("unknown", f"TM_{service}_{subservice}", service, subservice, raw=bytes(data))


def fixed_bytes(where: str, a: Arg, value: Any) -> bytes:
    """A 'bytes' argument's octets from bytes or hex text (spaces, ':' and a 0x prefix
    allowed); the length must be the dictionary's."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "").replace(":", "")
        if text[:2].lower() == "0x":
            text = text[2:]
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ArgumentError(f"{where}: {a.name}={value!r} is not hex", "number", value, 0, 0) from None
    else:
        raise ArgumentError(f"{where}: {a.name} must be {a.length} octets as bytes or hex", "number", value, 0, 0)
    if len(raw) != a.length:
        raise ArgumentError(
            f"{where}: {a.name} must be {a.length} octets ({2 * (a.length or 0)} hex digits), got {len(raw)}",
            "length", len(raw), a.length or 0, a.length or 0,
        )
    return raw


def _tc_bytes(where: str, a: Arg, value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
    elif isinstance(value, str):
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise DictionaryError(f"{where}: {a.name} must be a TC packet as hex") from None
    else:
        raise DictionaryError(f"{where}: {a.name} must be a TC packet (bytes or hex)")
    from protocols.pus import parse_tc_packet

    try:
        parse_tc_packet(raw)
    except ProtocolError as exc:
        raise DictionaryError(f"{where}: {a.name} is not a valid TC packet: {exc}") from None
    return raw


def canonical_bytes(d: Mapping[str, Any]) -> bytes:
    """json.dumps(d, sort_keys=True, separators=(",", ":")).encode(): what the rover hashes."""
    return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()


def short_hash(d: Mapping[str, Any] | bytes) -> int:
    """First 4 octets of SHA-256 over the canonical bytes, as a u32."""
    data = d if isinstance(d, bytes) else canonical_bytes(d)
    return int.from_bytes(hashlib.sha256(data).digest()[:4], "big")


def load_dictionary(path: str | Path | None = None) -> Dictionary:
    """Load and validate a dictionary file (default: protocols/dictionary.json)."""
    p = Path(path) if path is not None else DEFAULT_PATH
    if path is None:
        return _default()
    return _load(p)


def _load(p: Path) -> Dictionary:
    try:
        text = p.read_text()
    except OSError as exc:
        raise DictionaryError(f"cannot read dictionary {p}: {exc.strerror or exc}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DictionaryError(f"{p.name}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return Dictionary.from_json(obj, source=p.name)


@lru_cache(maxsize=1)
def _default() -> Dictionary:
    return _load(DEFAULT_PATH)


def encode_command(name: str, args: Mapping[str, Any] | None = None,
                   dictionary: Dictionary | None = None) -> tuple[int, int, bytes]:
    """(service, subservice, app_data) of a command from the (default) dictionary."""
    if not isinstance(name, str):
        raise TypeError("command name must be a str")
    return (dictionary or load_dictionary()).encode_command(name, args)
