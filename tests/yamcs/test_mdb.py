"""The XTCE mission database agrees with the dictionary, field by field.

The XTCE is read back here with ElementTree, independently of yamcs-pymdb (which wrote it):
a small reader resolves the space systems, relative references, types, containers, their
inheritance and restriction criteria, commands, arguments and verifiers, and every item is
compared with protocols/dictionary.json through the project's loader. The command header is
assembled bit by bit from the XTCE's entries and must equal protocols.pus's TC packet; every
command's application data, encoded from the XTCE's argument encodings, must equal the
dictionary's encode_command.

The module's Yamcs tests (slow, yamcs) run on one Yamcs for the module, configured as
`farside yamcs init` configures it (tests/yamcs/conftest.py), and feed it TM frames made by the
rover's own codec: Yamcs must decode every HK parameter to the value `farside gs export` reads
from the same frames, with the dictionary's limit state as its alarm; turn event reports into
events with the dictionary's messages; encode every command as the dictionary does; and pass or
fail each PUS verifier on the reports of that command's request id alone.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import posixpath
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

try:
    importlib.import_module("yamcs.pymdb")  # the XTCE writer's library: the yamcs extra
except ImportError:
    if os.environ.get("CI", "").lower() == "true":
        raise  # CI must have it
    pytest.skip("yamcs-pymdb is not installed (pip install 'farside[yamcs]')", allow_module_level=True)

from hil.cli import main as farside_main
from hil.errors import FarsideError
from hil.yamcs.fly import close_subscription
from hil.yamcs.mdb import (
    APID_ARG,
    HEADER_ARGS,
    SENT_SEQ,
    STAGE_WINDOW_S,
    STAGES,
    MdbError,
    build_mdb,
    event_id_parameter,
    event_templates,
    gaps,
    mdb_report,
    write_mdb,
)
from protocols.dictionary import (
    BYTES_TYPE,
    DEFAULT_PATH,
    SEVERITIES,
    STRUCT_CODES,
    TC_TYPE,
    TYPE_BOUNDS,
    VERIFICATION_REPORTS,
    Arg,
    Dictionary,
    load_dictionary,
)
from protocols.errors import DictionaryError
from protocols.pus import TC_OVERHEAD, TM_OVERHEAD, build_tc_packet
from tests.yamcs.conftest import wait_until

X = "{http://www.omg.org/spec/XTCE/20180204}"
D = load_dictionary()
ROOT = "/" + D.mission["name"]
INT_TYPES = {"u8": (8, False), "i8": (8, True), "u16": (16, False), "i16": (16, True),
             "u32": (32, False), "i32": (32, True)}


# --- an independent XTCE reader --------------------------------------------------------------


def _resolve(system: str, ref: str) -> str:
    return ref if ref.startswith("/") else posixpath.normpath(posixpath.join(system, ref))


@dataclass
class Entry:
    kind: str  # parameter | argument | fixed
    ref: str  # qualified parameter name, argument name, or fixed entry name
    reference: str = "previousEntry"
    location: int = 0
    binary: str = ""
    bits: int = 0


@dataclass
class Item:
    """A container or a command: where it is, its entries, base and restriction."""

    system: str
    el: ET.Element
    entries: list[Entry] = field(default_factory=list)
    base: str | None = None
    restriction: list[tuple[str, str, str]] = field(default_factory=list)  # (param, op, value)
    assignments: dict[str, str] = field(default_factory=dict)


class Xtce:
    def __init__(self, xml: str) -> None:
        self.root = ET.fromstring(xml)
        self.param_types: dict[str, ET.Element] = {}  # qualified parameter name -> its type
        self.containers: dict[str, Item] = {}
        self.commands: dict[str, Item] = {}
        self.arg_types: dict[str, dict[str, ET.Element]] = {}  # command -> argument -> type
        self.systems: list[str] = []
        self._walk(self.root, "")

    def _walk(self, ss: ET.Element, parent: str) -> None:
        path = f"{parent}/{ss.get('name')}"
        self.systems.append(path)
        types = {t.get("name"): t for t in ss.findall(f"{X}TelemetryMetaData/{X}ParameterTypeSet/*")}
        for p in ss.findall(f"{X}TelemetryMetaData/{X}ParameterSet/{X}Parameter"):
            tref = _resolve(path, p.get("parameterTypeRef", ""))
            tsys, tname = posixpath.split(tref)
            assert tsys == path, f"{path}/{p.get('name')}: its type {tref} lives elsewhere"
            self.param_types[f"{path}/{p.get('name')}"] = types[tname]
        for c in ss.findall(f"{X}TelemetryMetaData/{X}ContainerSet/{X}SequenceContainer"):
            item = Item(path, c, self._entries(path, c.find(f"{X}EntryList")))
            base = c.find(f"{X}BaseContainer")
            if base is not None:
                item.base = _resolve(path, base.get("containerRef", ""))
                item.restriction = self._conditions(path, base.find(f"{X}RestrictionCriteria"))
            self.containers[f"{path}/{c.get('name')}"] = item
        arg_types = {t.get("name"): t for t in ss.findall(f"{X}CommandMetaData/{X}ArgumentTypeSet/*")}
        for mc in ss.findall(f"{X}CommandMetaData/{X}MetaCommandSet/{X}MetaCommand"):
            name = f"{path}/{mc.get('name')}"
            cc = mc.find(f"{X}CommandContainer")
            assert cc is not None, name
            item = Item(path, mc, self._entries(path, cc.find(f"{X}EntryList")))
            base = mc.find(f"{X}BaseMetaCommand")
            if base is not None:
                item.base = _resolve(path, base.get("metaCommandRef", ""))
                for a in base.findall(f"{X}ArgumentAssignmentList/{X}ArgumentAssignment"):
                    item.assignments[a.get("argumentName", "")] = a.get("argumentValue", "")
            self.commands[name] = item
            self.arg_types[name] = {
                a.get("name", ""): arg_types[a.get("argumentTypeRef", "")]
                for a in mc.findall(f"{X}ArgumentList/{X}Argument")
            }
        for sub in ss.findall(f"{X}SpaceSystem"):
            self._walk(sub, path)

    @staticmethod
    def _location(e: ET.Element) -> tuple[str, int]:
        loc = e.find(f"{X}LocationInContainerInBits")
        if loc is None:
            return "previousEntry", 0
        return loc.get("referenceLocation", "previousEntry"), int(loc.findtext(f"{X}FixedValue", "0"))

    def _entries(self, path: str, el: ET.Element | None) -> list[Entry]:
        out = []
        for e in list(el) if el is not None else []:
            reference, location = self._location(e)
            tag = e.tag.removeprefix(X)
            if tag == "ParameterRefEntry":
                out.append(Entry("parameter", _resolve(path, e.get("parameterRef", "")), reference, location))
            elif tag == "ArgumentRefEntry":
                out.append(Entry("argument", e.get("argumentRef", ""), reference, location))
            elif tag == "FixedValueEntry":
                out.append(Entry("fixed", e.get("name", ""), reference, location, e.get("binaryValue", ""),
                                 int(e.get("sizeInBits", "0"))))
            else:
                raise AssertionError(f"unexpected entry {tag}")
        return out

    @staticmethod
    def _conditions(path: str, rc: ET.Element | None) -> list[tuple[str, str, str]]:
        if rc is None:
            return []
        out = []
        for cond in rc.iter(f"{X}Condition"):
            ref = cond.find(f"{X}ParameterInstanceRef")
            assert ref is not None
            out.append((_resolve(path, ref.get("parameterRef", "")), cond.findtext(f"{X}ComparisonOperator", ""),
                        cond.findtext(f"{X}Value", "")))
        for comp in rc.iter(f"{X}Comparison"):
            out.append((_resolve(path, comp.get("parameterRef", "")), comp.get("comparisonOperator", "=="),
                        comp.get("value", "")))
        return out

    # --- views ---
    def chain(self, name: str) -> list[Item]:
        """The container and its bases, the root first."""
        items = []
        cur: str | None = name
        while cur is not None:
            items.append(self.containers[cur])
            cur = self.containers[cur].base
        return items[::-1]

    def criteria(self, name: str) -> dict[str, int]:
        """Every restriction of the container and its bases, as parameter -> required value
        (all are equality tests here; an enumerated parameter's label read as its value)."""
        out = {}
        for item in self.chain(name):
            for param, op, value in item.restriction:
                assert op == "==", f"{name}: {param} {op} {value}"
                assert param not in out
                t = self.param_types[param]
                if t.tag == f"{X}EnumeratedParameterType" and not value.lstrip("-").isdigit():
                    value = str({label: k for k, label in enumeration(t).items()}[value])
                out[param] = int(value)
        return out

    def layout(self, name: str) -> dict[str, tuple[int, int]]:
        """parameter -> (bit position from the packet start, size in bits) for the container
        and its bases, following previousEntry and containerStart locations."""
        pos = 0
        out = {}
        for item in self.chain(name):
            for e in item.entries:
                assert e.kind == "parameter"
                pos = e.location if e.reference == "containerStart" else pos + e.location
                size = self.bits(e.ref)
                out[e.ref] = (pos, size)
                pos += size
        return out

    def bits(self, param: str) -> int:
        enc = encoding_of(self.param_types[param])
        return int(enc.get("sizeInBits", "0"))


def encoding_of(t: ET.Element) -> ET.Element:
    for tag in ("IntegerDataEncoding", "FloatDataEncoding", "BinaryDataEncoding"):
        found = t.find(f"{X}{tag}")
        if found is None:
            found = t.find(f"{X}Encoding/{X}{tag}")
        if found is not None:
            if tag == "BinaryDataEncoding":
                fixed = found.findtext(f"{X}SizeInBits/{X}FixedValue")
                found.set("sizeInBits", fixed or "0")
            return found
    raise AssertionError(f"{t.get('name')}: no data encoding")


def unit_of(t: ET.Element) -> str:
    return t.findtext(f"{X}UnitSet/{X}Unit", "")


def enumeration(t: ET.Element) -> dict[int, str]:
    return {int(e.get("value", "")): e.get("label", "")
            for e in t.findall(f"{X}EnumerationList/{X}Enumeration")}


def valid_range(t: ET.Element) -> tuple[float, float] | None:
    r = t.find(f"{X}ValidRangeSet/{X}ValidRange")  # argument types
    if r is None:
        r = t.find(f"{X}ValidRange")  # parameter types
    if r is None:
        return None
    return float(r.get("minInclusive", "nan")), float(r.get("maxInclusive", "nan"))


def alarm_ranges(t: ET.Element) -> dict[str, tuple[float, float]]:
    out = {}
    for level, tag in (("yellow", "WarningRange"), ("red", "CriticalRange")):
        r = t.find(f"{X}DefaultAlarm/{X}StaticAlarmRanges/{X}{tag}")
        if r is not None:
            out[level] = (float(r.get("minInclusive", "nan")), float(r.get("maxInclusive", "nan")))
    return out


def polynomial(t: ET.Element) -> tuple[float, ...] | None:
    terms = t.findall(f".//{X}PolynomialCalibrator/{X}Term")
    if not terms:
        return None
    coeffs = {int(term.get("exponent", "")): float(term.get("coefficient", "")) for term in terms}
    return tuple(coeffs.get(i, 0.0) for i in range(max(coeffs) + 1))


@pytest.fixture(scope="module")
def xtce() -> Xtce:
    return Xtce(build_mdb(D))


# --- fields ----------------------------------------------------------------------------------


def check_field(t: ET.Element, a: Arg, where: str) -> None:
    """A parameter type agrees with the dictionary's field: kind, size, signedness, byte
    order, unit, calibration, enum and limits."""
    enc = encoding_of(t)
    kind = t.tag.removeprefix(X)
    assert unit_of(t) == a.unit, where
    if a.type == "f32":
        assert enc.tag == f"{X}FloatDataEncoding" and enc.get("sizeInBits") == "32", where
    else:
        bits, signed = INT_TYPES[a.type]
        assert enc.tag == f"{X}IntegerDataEncoding", where
        assert int(enc.get("sizeInBits", "0")) == bits, where
        assert enc.get("encoding") == ("twosComplement" if signed else "unsigned"), where
        if bits > 8:
            assert enc.get("byteOrder") == "mostSignificantByteFirst", where
    if a.enum is not None:
        assert kind == "EnumeratedParameterType", where
        assert enumeration(t) == D.enums[a.enum], where
    elif a.calibration is not None:
        assert kind == "FloatParameterType" and t.get("sizeInBits") == "64", where
        assert polynomial(t) == a.calibration, where
    elif a.type == "f32":
        assert kind == "FloatParameterType", where
        assert polynomial(t) is None, where
    else:
        assert kind == "IntegerParameterType", where
        assert t.get("signed") == ("true" if INT_TYPES[a.type][1] else "false"), where
        assert polynomial(t) is None, where
    assert alarm_ranges(t) == (a.limits or {}), where


def test_every_hk_parameter_has_its_type_unit_calibration_and_limits(xtce: Xtce) -> None:
    seen = 0
    for hk in D.housekeeping.values():
        for a in hk.parameters:
            check_field(xtce.param_types[f"{ROOT}/{a.name}"], a, f"HK {a.name}")
            seen += 1
    assert seen == sum(len(hk.parameters) for hk in D.housekeeping.values()) > 40


def test_hk_container_lays_out_the_real_packet_by_apid_service_subservice_and_sid(xtce: Xtce) -> None:
    for sid, hk in D.housekeeping.items():
        name = f"{ROOT}/{hk.name}"
        item = xtce.containers[name]
        assert item.el.get("abstract") == "false"
        assert [e.ref for e in item.entries] == [f"{ROOT}/{a.name}" for a in hk.parameters]
        assert xtce.criteria(name) == {
            f"{ROOT}/pus/ccsds_type": 0,
            f"{ROOT}/pus/ccsds_secondary_header": 1,
            f"{ROOT}/pus/ccsds_apid": D.mission["tm_apid"],
            f"{ROOT}/pus/service": 3,
            f"{ROOT}/pus/subservice": 25,
            f"{ROOT}/pus/sid": sid,
        }
        layout = xtce.layout(name)
        # the packet's own numbers: the PUS header ends where protocols.pus puts it, the sid
        # follows, the parameters fill the source data up to the CRC
        header_bits = 8 * (TM_OVERHEAD - 2)
        assert layout[f"{ROOT}/pus/sid"] == (header_bits, 16)
        pos = header_bits + 16
        for a in hk.parameters:
            size = 8 * struct.calcsize(">" + STRUCT_CODES[a.type])
            assert layout[f"{ROOT}/{a.name}"] == (pos, size), a.name
            pos += size
        assert pos == 8 * (TM_OVERHEAD - 2 + struct.calcsize(hk.struct_format))
        rate = item.el.find(f"{X}DefaultRateInStream")
        assert rate is not None and float(rate.get("minimumValue", "")) == pytest.approx(1 / hk.default_period_s)


def test_packet_headers_follow_ccsds_and_pus(xtce: Xtce) -> None:
    layout = xtce.layout(f"{ROOT}/pus/tm")
    pus = f"{ROOT}/pus"
    assert [(k.removeprefix(pus + "/"), v) for k, v in layout.items()] == [
        ("ccsds_version", (0, 3)), ("ccsds_type", (3, 1)), ("ccsds_secondary_header", (4, 1)),
        ("ccsds_apid", (5, 11)), ("ccsds_sequence_flags", (16, 2)), ("ccsds_sequence_count", (18, 14)),
        ("ccsds_packet_length", (32, 16)), ("pus_version", (48, 4)), ("pus_time_reference", (52, 4)),
        ("service", (56, 8)), ("subservice", (64, 8)), ("message_counter", (72, 16)),
        ("destination", (88, 16)), ("time", (104, 48)),
    ]
    # Yamcs decodes every packet from the root system's container without a base
    roots = [n for n, c in xtce.containers.items() if c.base is None]
    assert roots == [f"{ROOT}/packet"]
    time_t = xtce.param_types[f"{pus}/time"]
    assert time_t.tag == f"{X}AbsoluteTimeParameterType"
    enc = time_t.find(f"{X}Encoding")
    assert enc is not None and float(enc.get("scale", "")) == 1 / 65536
    assert time_t.findtext(f"{X}ReferenceTime/{X}Epoch", "").startswith(D.mission["epoch"].removesuffix("Z"))


def test_every_event_is_a_container_by_id_and_severity_with_its_arguments(xtce: Xtce) -> None:
    assert len(D.events) > 20
    for eid, e in D.events.items():
        name = f"{ROOT}/events/{e.name}"
        assert xtce.criteria(name) == {
            f"{ROOT}/pus/ccsds_type": 0, f"{ROOT}/pus/ccsds_secondary_header": 1,
            f"{ROOT}/pus/ccsds_apid": D.mission["tm_apid"], f"{ROOT}/pus/service": 5,
            f"{ROOT}/pus/subservice": SEVERITIES[e.severity], f"{ROOT}/pus/event_id": eid,
        }
        args = [f"{name}/{a.name}" for a in e.args]
        assert [x.ref for x in xtce.containers[name].entries] == args
        for a, ref in zip(e.args, args, strict=True):
            check_field(xtce.param_types[ref], a, f"event {e.name}.{a.name}")
        layout = xtce.layout(name)
        assert layout[f"{ROOT}/pus/event_id"] == (8 * (TM_OVERHEAD - 2), 16)
        assert e.message in (xtce.containers[name].el.get("shortDescription") or "")


def test_event_ids_are_named_and_templates_name_each_argument_in_full(xtce: Xtce) -> None:
    assert enumeration(xtce.param_types[f"{ROOT}/pus/event_id"]) == {i: e.name for i, e in D.events.items()}
    assert event_id_parameter(D) == f"{ROOT}/pus/event_id"
    templates = event_templates(D)
    assert [t["eventId"] for t in templates] == [e.name for _, e in sorted(D.events.items())]
    for t in templates:
        e = next(e for e in D.events.values() if e.name == t["eventId"])
        # each placeholder is a parameter of that event's container, by its qualified name
        assert t["template"].replace(f"{{{ROOT}/events/{e.name}/", "{") == e.message
        for a in e.args:
            if f"{{{a.name}}}" in e.message:
                assert f"{ROOT}/events/{e.name}/{a.name}" in xtce.layout(f"{ROOT}/events/{e.name}")


def test_onboard_parameters_report_by_id_with_unit_and_range(xtce: Xtce) -> None:
    for pid, p in D.parameters.items():
        name = f"{ROOT}/onboard/{p.name}"
        crit = xtce.criteria(name)
        assert (crit[f"{ROOT}/pus/service"], crit[f"{ROOT}/pus/subservice"]) == (20, 2)
        assert crit[f"{ROOT}/pus/parameter_id"] == pid
        t = xtce.param_types[name]
        assert t.tag == f"{X}FloatParameterType" and encoding_of(t).get("sizeInBits") == "32"
        assert unit_of(t) == p.unit
        assert valid_range(t) == p.range


def test_verification_reports_carry_the_request_id_per_stage(xtce: Xtce) -> None:
    ver = f"{ROOT}/verification"
    for sub, report in VERIFICATION_REPORTS.items():
        name = f"{ver}/{report}"
        crit = xtce.criteria(name)
        assert (crit[f"{ROOT}/pus/service"], crit[f"{ROOT}/pus/subservice"]) == (1, sub)
        stage = sub if sub in STAGES else sub - 1
        prefix = STAGES[stage][1]
        layout = xtce.layout(name)
        data = 8 * (TM_OVERHEAD - 2)
        # packet id: version 3, type 1, flag 1, APID 11; sequence control: flags 2, count 14
        assert layout[f"{ver}/{prefix}_tc_apid"] == (data + 5, 11)
        assert layout[f"{ver}/{prefix}_tc_sequence_count"] == (data + 18, 14)
        assert layout[f"{ver}/report_subtype"] == (64, 8)  # the PUS subservice, re-read
        if sub in STAGES:
            assert f"{ver}/failure_code" not in layout
        else:
            assert layout[f"{ver}/failure_code"] == (data + 32, 16)
    assert enumeration(xtce.param_types[f"{ver}/failure_code"]) == D.failure_codes


# --- commands --------------------------------------------------------------------------------


def _bits(value: int, size: int) -> str:
    return format(value & ((1 << size) - 1), f"0{size}b")


def header_bits(xtce: Xtce, cmd: str) -> str:
    """The base command's entries, encoded from the XTCE with the command's assignments."""
    item = xtce.commands[cmd]
    base = xtce.commands[item.base or ""]
    out = ""
    for e in base.entries:
        if e.kind == "fixed":
            out += _bits(int(e.binary, 16), e.bits)
        else:
            t = xtce.arg_types[item.base or ""][e.ref]
            out += _bits(int(item.assignments[e.ref]), int(encoding_of(t).get("sizeInBits", "0")))
    return out


def encode_args(xtce: Xtce, cmd: str, values: dict[str, Any]) -> bytes:
    """A command's application data from the XTCE's argument encodings (big-endian)."""
    out = b""
    for e in xtce.commands[cmd].entries:
        assert e.kind == "argument" and e.location == 0
        t = xtce.arg_types[cmd][e.ref]
        enc = encoding_of(t)
        size = int(enc.get("sizeInBits", "0"))
        v = values[e.ref]
        if enc.tag == f"{X}BinaryDataEncoding":
            assert size in (0, 8 * len(v))
            out += v
        elif enc.tag == f"{X}FloatDataEncoding":
            out += struct.pack(">f" if size == 32 else ">d", v)
        else:
            if t.tag == f"{X}EnumeratedArgumentType":
                v = {label: k for k, label in enumeration(t).items()}[v]
            out += (v & ((1 << size) - 1)).to_bytes(size // 8, "big")
    return out


def sample(a: Arg) -> tuple[Any, Any]:
    """(value for the XTCE encoder, value for the dictionary) of a valid argument."""
    if a.type == TC_TYPE:
        tc = build_tc_packet(D.mission["tc_apid"], 5, 17, 1)
        return tc, tc
    if a.type == BYTES_TYPE:
        raw = bytes(range(a.length or 0))
        return raw, raw
    lo, hi = a.range if a.range is not None else TYPE_BOUNDS[a.type]
    if a.enum is not None:
        code = min(k for k in D.enums[a.enum] if lo <= k <= hi)
        return D.enums[a.enum][code], code
    if a.type == "f32":
        v = float(struct.unpack(">f", struct.pack(">f", (lo + hi) / 2 if math.isfinite(hi - lo) else 1.5))[0])
        return v, v
    v = int(lo + (hi - lo) // 3)
    return v, v


def test_command_header_is_the_pus_tc_packet_header(xtce: Xtce) -> None:
    for name, cmd in D.commands.items():
        bits = header_bits(xtce, f"{ROOT}/{name}")
        assert len(bits) == 8 * (TC_OVERHEAD - 2)
        header = int(bits, 2).to_bytes(len(bits) // 8, "big")
        ours = build_tc_packet(D.mission["tc_apid"], 0, cmd.service, cmd.subservice, b"")
        # the sequence count and the length are Yamcs's to fill (zero here); the rest agrees
        assert header[:4] == ours[:4]
        assert header[4:6] == b"\0\0"
        assert header[6:] == ours[6 : TC_OVERHEAD - 2]


def test_every_command_argument_is_typed_and_range_checked_as_the_dictionary_says(xtce: Xtce) -> None:
    assert len(D.commands) > 20
    for name, cmd in D.commands.items():
        qn = f"{ROOT}/{name}"
        assert list(xtce.arg_types[qn]) == [a.name for a in cmd.args], name
        assert [e.ref for e in xtce.commands[qn].entries] == [a.name for a in cmd.args], name
        for a in cmd.args:
            t = xtce.arg_types[qn][a.name]
            where = f"{name}.{a.name}"
            assert unit_of(t) == a.unit, where
            kind = t.tag.removeprefix(X)
            if a.type == TC_TYPE:
                assert kind == "BinaryArgumentType", where
                extra = [x.text for x in t.findall(f"{X}AncillaryDataSet/{X}AncillaryData")]
                assert f"minLength={TC_OVERHEAD}" in extra, where
                continue
            if a.type == BYTES_TYPE:
                assert kind == "BinaryArgumentType", where
                assert int(encoding_of(t).get("sizeInBits", "")) == 8 * (a.length or 0), where
                continue
            enc = encoding_of(t)
            lo, hi = a.range if a.range is not None else TYPE_BOUNDS[a.type]
            if a.enum is not None:
                assert kind == "EnumeratedArgumentType", where
                assert enumeration(t) == {k: v for k, v in D.enums[a.enum].items() if lo <= k <= hi}, where
            elif a.type == "f32":
                assert kind == "FloatArgumentType", where
                assert enc.get("sizeInBits") == "32", where
                assert valid_range(t) == pytest.approx((lo, hi)), where
            else:
                bits, signed = INT_TYPES[a.type]
                assert kind == "IntegerArgumentType", where
                assert int(enc.get("sizeInBits", "")) == bits, where
                assert enc.get("encoding") == ("twosComplement" if signed else "unsigned"), where
                assert valid_range(t) == (lo, hi), where


def test_mode_set_offers_no_boot(xtce: Xtce) -> None:
    labels = enumeration(xtce.arg_types[f"{ROOT}/MODE_SET"]["mode"]).values()
    assert "BOOT" not in labels and "DRIVE" in labels


def test_every_command_encodes_to_the_dictionarys_application_data(xtce: Xtce) -> None:
    for name, cmd in D.commands.items():
        pairs = {a.name: sample(a) for a in cmd.args}
        ours = D.encode_command(name, {k: v[1] for k, v in pairs.items()})[2]
        assert encode_args(xtce, f"{ROOT}/{name}", {k: v[0] for k, v in pairs.items()}) == ours, name


def test_every_command_has_the_three_pus_verifiers_matched_by_request_id(xtce: Xtce) -> None:
    ver = f"{ROOT}/verification"
    for name in D.commands:
        qn = f"{ROOT}/{name}"
        vs = xtce.commands[qn].el.find(f"{X}VerifierSet")
        assert vs is not None, name
        found = [v.tag.removeprefix(X) for v in vs]
        assert found == ["AcceptedVerifier", "ExecutionVerifier", "CompleteVerifier"], name
        for v, (stage, (label, prefix)) in zip(vs, STAGES.items(), strict=True):
            assert v.get("name") == label
            alg = v.find(f"{X}CustomAlgorithm")
            assert alg is not None
            # Yamcs runs a command's verifier algorithms side by side: one name each
            assert alg.get("name") == f"{name}_{label}"
            assert alg.findtext(f"{X}AlgorithmText", "").startswith(f"org.yamcs.pus.Pus1Verifier({{stage: {stage},")
            inputs = [(i.get("inputName"), _resolve(xtce.commands[qn].system, i.get("parameterRef", "")))
                      for i in alg.findall(f"{X}InputSet/{X}InputParameterInstanceRef")]
            # Pus1Verifier reads its first five inputs by position
            assert inputs[:5] == [
                ("sentApid", f"/yamcs/cmd/arg/{APID_ARG}"), ("sentSeq", SENT_SEQ),
                ("rcvdApid", f"{ver}/{prefix}_tc_apid"), ("rcvdSeq", f"{ver}/{prefix}_tc_sequence_count"),
                ("reportSubType", f"{ver}/report_subtype"),
            ]
            # success on 1/stage, failure on 1/(stage + 1): both reports fill that stage's request id
            for sub in (stage, stage + 1):
                layout = xtce.layout(f"{ver}/{VERIFICATION_REPORTS[sub]}")
                assert inputs[2][1] in layout and inputs[3][1] in layout
            window = v.find(f"{X}CheckWindow")
            assert window is not None and window.get("timeWindowIsRelativeTo") == "commandRelease"
            assert window.get("timeToStopChecking") == _iso(STAGE_WINDOW_S[stage])
            extra = {x.get("name"): x.text for x in v.findall(f"{X}AncillaryDataSet/{X}AncillaryData")}
            assert extra["yamcs.onFail"] == "FAIL" and extra["yamcs.onTimeout"] == "FAIL"
        # the APID the verifier compares is the one the command is sent with
        assert xtce.commands[qn].assignments[APID_ARG] == str(D.mission["tc_apid"])


def _iso(seconds: float) -> str:
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return "PT" + (f"{h}H" if h else "") + (f"{m}M" if m else "") + (f"{s}S" if s or seconds == 0 else "")


# --- what XTCE cannot carry, and bad input ---------------------------------------------------


def test_report_lists_what_xtce_cannot_carry_one_line_each() -> None:
    lines = mdb_report(D)
    assert all("\n" not in ln for ln in lines)
    assert len(lines) == len(gaps(D))
    assert any(ln.startswith("TT_INSERT.command: opaque binary") for ln in lines)
    assert any(ln.startswith("PARAM_SET.value:") for ln in lines)
    assert any(ln.startswith("events (") for ln in lines)
    # a tc argument is the only one the dictionary has; bytes arguments are fully expressed
    tc_args = [f"{n}.{a.name}" for n, c in D.commands.items() for a in c.args if a.type == TC_TYPE]
    assert tc_args and all(any(ln.startswith(t) for ln in lines) for t in tc_args)
    assert not any(a.type == BYTES_TYPE and ln.startswith(f"{n}.{a.name}")
                   for n, c in D.commands.items() for a in c.args for ln in lines)


def test_the_xtce_is_deterministic_and_written_where_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = write_mdb(tmp_path / "farside.xml", D)
    assert out.read_text() == build_mdb(D) == build_mdb()
    assert f"0x{D.short_hash():08x}" in out.read_text().splitlines()[1]
    # the command line writes the same
    assert farside_main(["yamcs", "export-mdb", "--out", str(tmp_path / "cli.xml")]) == 0
    assert (tmp_path / "cli.xml").read_text() == out.read_text()
    capsys.readouterr()


def _with_field_type(typ: str) -> Dictionary:
    """The project's dictionary with its first HK parameter's type replaced (past the loader's
    checks, as a newer dictionary model could hold it)."""
    d = load_dictionary(DEFAULT_PATH)  # a fresh copy, not the shared default
    assert d is not D
    sid, hk = next(iter(d.housekeeping.items()))
    first = dataclasses.replace(hk.parameters[0], type=typ)
    d.housekeeping[sid] = dataclasses.replace(hk, parameters=(first, *hk.parameters[1:]))
    return d


def test_a_field_type_xtce_cannot_express_is_one_error_line() -> None:
    with pytest.raises(MdbError) as err:
        build_mdb(_with_field_type("u24"))
    msg = str(err.value)
    assert "\n" not in msg and "u24" in msg and "uptime_s" in msg
    assert isinstance(err.value, FarsideError)


def test_two_hk_packets_sharing_a_parameter_name_is_one_error_line() -> None:
    d = load_dictionary(DEFAULT_PATH)
    sid, hk = next(iter(d.housekeeping.items()))
    d.housekeeping[sid + 1] = dataclasses.replace(hk, name="HK_OTHER", sid=sid + 1, parameters=hk.parameters[:1])
    with pytest.raises(MdbError, match=hk.parameters[0].name) as err:
        build_mdb(d)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("reserved", HEADER_ARGS)
def test_a_command_argument_named_as_the_pus_header_is_one_error_line(reserved: str) -> None:
    d = load_dictionary(DEFAULT_PATH)
    name, cmd = next((n, c) for n, c in d.commands.items() if c.args)
    d.commands[name] = dataclasses.replace(cmd, args=(dataclasses.replace(cmd.args[0], name=reserved), *cmd.args[1:]))
    with pytest.raises(MdbError, match=f"{name}.{reserved}: .*reserved") as err:
        build_mdb(d)
    assert "\n" not in str(err.value)


def _made_up_type_file(tmp_path: Path) -> Path:
    raw = json.loads(DEFAULT_PATH.read_text())
    raw["housekeeping"][0]["parameters"][0]["type"] = "u24"
    path = tmp_path / "dictionary.json"
    path.write_text(json.dumps(raw))
    return path


def test_a_dictionary_file_with_a_made_up_type_is_one_error_line(tmp_path: Path) -> None:
    with pytest.raises(DictionaryError, match="u24") as err:
        build_mdb(_made_up_type_file(tmp_path))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("source", ["file", "model"])
def test_export_mdb_of_a_dictionary_xtce_cannot_express_is_one_line_and_a_failure(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`farside yamcs export-mdb` when the dictionary holds a made-up type: from the file (the
    loader refuses it) or in the model (the writer refuses it)."""
    import hil.yamcs.mdb as mdb

    path = _made_up_type_file(tmp_path)
    bad = (lambda p=None: load_dictionary(path)) if source == "file" else (lambda p=None: _with_field_type("u24"))
    monkeypatch.setattr(mdb, "load_dictionary", bad)
    out = tmp_path / "farside.xml"
    code = farside_main(["yamcs", "export-mdb", "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("farside: error: ") and "u24" in err, err
    assert "Traceback" not in err
    assert not out.exists()


# --- the XTCE in a real Yamcs ----------------------------------------------------------------

MDB_QUIET_EXCEPT = ("ProcessorConfig", "RouteHandler", "HttpRequestHandler")  # not about the MDB
LIMIT_STATE = {"ok": "IN_LIMITS", "yellow": "WARNING", "red": "CRITICAL"}
EVENT_SEVERITY = {"info": "INFO", "low": "WATCH", "medium": "DISTRESS", "high": "CRITICAL"}  # PusEventDecoder's


class FakeRover:
    """The rover's side of the link for Yamcs, without a rover: TM frames made by the rover's
    own codec (firmware_py) with the CLCW in the OCF, sent to Yamcs's TM port; Yamcs's TC
    frames (clear mode) received on the TC port it sends to."""

    def __init__(self, server: Any) -> None:
        import importlib
        import socket

        from protocols.clcw import Clcw

        self.tm_addr = ("127.0.0.1", int(server.summary["tm_port"]))
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tc.bind(("127.0.0.1", int(server.summary["tc_port"])))
        self.tc.settimeout(30)
        self.vr = 0
        self.sent: list[bytes] = []
        tc_vcid = D.mission["tc_vcid"]
        framer_cls = importlib.import_module("firmware_py.tm_frame").TmFramer
        self.framer = framer_cls(D.mission["scid"], D.mission["tm_vcid"], D.mission["tm_frame_length"],
                                 write=self._send, clcw=lambda: Clcw(vcid=tc_vcid, report_value=self.vr).to_int(),
                                 asm=False)
        self.clock = [200000, 0]
        builder = importlib.import_module("firmware_py.spacepacket").TmPacketBuilder
        self.builder = builder(apid=D.mission["tm_apid"], clock=lambda: (self.clock[0], self.clock[1]), max_data=512)

    def _send(self, mv: memoryview) -> None:
        frame = bytes(mv)
        self.sent.append(frame)
        self.out.sendto(frame, self.tm_addr)

    def send(self, packets: list[bytes]) -> list[bytes]:
        """Frame and send `packets` (flushed); returns the frames sent."""
        first = len(self.sent)
        for p in packets:
            self.framer.put(p)
        self.framer.flush()
        return self.sent[first:]

    def report(self, service: int, subservice: int, data: bytes) -> bytes:
        self.clock[0] += 1
        return bytes(self.builder.build(service, subservice, data))

    def receive_command(self) -> Any:
        """The next TC frame from Yamcs, accepted by FARM (V(R) moves on); its PUS packet."""
        from protocols.pus import parse_tc_packet
        from protocols.tc_frame import parse_tc_frame

        frame = parse_tc_frame(self.tc.recvfrom(4096)[0])
        assert not frame.bypass and not frame.control
        self.vr = (frame.frame_seq + 1) & 0xFF
        return parse_tc_packet(frame.data)

    def close(self) -> None:
        self.out.close()
        self.tc.close()


@pytest.fixture(scope="module")
def yamcs(yamcs_server: Any) -> Any:
    """yamcs-client on the module's Yamcs (loaded with this XTCE)."""
    try:
        from yamcs.client import YamcsClient
    except ImportError:
        from tests.conftest import need

        need(False, "yamcs-client is not installed (pip install 'farside[yamcs]')")
    return YamcsClient(f"localhost:{yamcs_server.http_port}")


@pytest.fixture(scope="module")
def rover(yamcs_server: Any) -> Any:
    r = FakeRover(yamcs_server)
    r.send([])
    r.framer.idle()  # a first CLCW for Yamcs's COP-1
    yield r
    r.close()


@pytest.mark.slow
@pytest.mark.yamcs
def test_yamcs_loads_every_item_of_the_xtce(yamcs_server: Any, xtce: Xtce) -> None:
    import re

    log = Path(yamcs_server.log_path).read_text(errors="replace")
    m = re.search(r"loaded: (\d+) parameters, (\d+) tm containers, (\d+) commands", log)
    assert m, "Yamcs did not report loading the XTCE"
    assert tuple(map(int, m.groups())) == (len(xtce.param_types), len(xtce.containers), len(xtce.commands))
    mdb = yamcs_server.api(f"/mdb/{yamcs_server.instance}/parameters{ROOT}/x_m")
    assert mdb["type"]["dataEncoding"]["defaultCalibrator"]["polynomialCalibrator"]["coefficients"] == [0.0, 0.001]


@pytest.mark.slow
@pytest.mark.yamcs
def test_yamcs_decodes_rover_hk_and_events_to_gs_export_values(
    yamcs: Any, yamcs_server: Any, rover: FakeRover, tmp_path: Path
) -> None:
    from hil.gs.export import decode_archive
    from hil.gs.mission import Mission
    from hil.gs.synth import synth_archive, synth_packets

    mission = Mission.load()
    sid, hk = next(iter(D.housekeeping.items()))
    n = 120
    packets, _ = synth_packets(mission, n, seed=15, events_every=10, sid=sid)
    hk_names = [f"{ROOT}/{a.name}" for a in hk.parameters]
    boot = next(e for e in D.events.values() if e.name == "BOOT")
    boot_names = [f"{ROOT}/events/BOOT/{a.name}" for a in boot.args]
    updates: dict[int, dict[str, Any]] = {}

    def on_data(data: Any) -> None:
        by_name = {p.name: p for p in data.parameters}
        t = by_name.get(f"{ROOT}/pus/time")
        if t is not None:
            updates.setdefault(int(t.raw_value), {}).update(by_name)

    sub = yamcs.get_processor(yamcs_server.instance, "realtime").create_parameter_subscription(
        [f"{ROOT}/pus/time", *hk_names, *boot_names], on_data=on_data)
    try:
        frames = rover.send(packets)
        complete = lambda: sum(hk_names[-1] in u for u in updates.values()) >= n  # noqa: E731
        assert wait_until(complete), f"Yamcs decoded {sum(hk_names[-1] in u for u in updates.values())} of {n} HK packets"
        assert wait_until(lambda: sum(boot_names[0] in u for u in updates.values()) >= n // 10)
    finally:
        close_subscription(sub)

    synth_archive(tmp_path / "archive", mission, frames)
    tables = decode_archive(mission, tmp_path / "archive")
    table = tables[hk.name.lower()]
    assert len(table.columns["packet_time_s"]) == n
    for i, t in enumerate(table.columns["packet_time_s"]):
        got = updates[round(float(t) * 65536)]
        for a in hk.parameters:
            pv = got[f"{ROOT}/{a.name}"]
            ours = table.columns[a.name][i].item()
            if a.enum is not None:
                assert pv.eng_value == D.enums[a.enum][int(ours)], a.name
                assert pv.raw_value == ours, a.name
            else:
                assert pv.eng_value == ours, (a.name, pv.eng_value, ours)
            if a.limits:
                assert pv.monitoring_result == LIMIT_STATE[mission.limit_state(a.name, float(ours))], a.name
    events = tables["events"]  # an event's arguments in arg_<name> columns
    rows = [i for i, name in enumerate(events.columns["event"]) if name == "BOOT"]
    assert len(rows) == n // 10
    for i in rows:
        got = updates[round(float(events.columns["packet_time_s"][i]) * 65536)]
        for a in boot.args:
            ours = events.columns[f"arg_{a.name}"][i]
            ours = ours.item() if hasattr(ours, "item") else ours
            assert got[f"{ROOT}/events/BOOT/{a.name}"].eng_value == ours, a.name


@pytest.mark.slow
@pytest.mark.yamcs
def test_yamcs_encodes_every_command_as_the_dictionary_does(yamcs: Any, yamcs_server: Any) -> None:
    proc = yamcs.get_processor(yamcs_server.instance, "realtime")
    for name, cmd in D.commands.items():
        pairs = {a.name: sample(a) for a in cmd.args}
        issued = proc.issue_command(f"{ROOT}/{name}", {k: v[0] for k, v in pairs.items()}, dry_run=True)
        app = D.encode_command(name, {k: v[1] for k, v in pairs.items()})[2]
        ours = build_tc_packet(D.mission["tc_apid"], 0, cmd.service, cmd.subservice, app)
        # a dry run is not post-processed: no sequence count, length or CRC yet
        assert issued.binary[:4] == ours[:4], name
        assert issued.binary[4:6] == b"\0\0", name
        assert issued.binary[6:] == ours[6:-2], name


@pytest.mark.slow
@pytest.mark.yamcs
def test_yamcs_refuses_what_the_dictionary_refuses(yamcs: Any, yamcs_server: Any) -> None:
    from yamcs.client import YamcsError

    proc = yamcs.get_processor(yamcs_server.instance, "realtime")
    for name, args, why in (
        ("MODE_SET", {"mode": "BOOT"}, "BOOT"),
        ("DRIVE_DISTANCE", {"distance_m": 200.5, "speed_mph": 100}, "range"),
        ("WHEEL_DISABLE", {"wheel": 7}, "range"),
    ):
        with pytest.raises(YamcsError, match=why):
            proc.issue_command(f"{ROOT}/{name}", args, dry_run=True)
        with pytest.raises(DictionaryError):
            D.encode_command(name, args)


def _history(command: Any) -> dict[str, str]:
    return {k: str(v) for k, v in command.attributes.items()}


def _answerable(command: Any) -> None:
    """Wait until Yamcs's command history holds the command's sequence count, which its PUS 1
    verifiers match reports on, so these tests see reports matched in the usual order (reports
    that come first are test_server_verifier's)."""
    assert wait_until(lambda: "ccsds-seqcount" in command.attributes), _history(command)


@pytest.mark.slow
@pytest.mark.yamcs
def test_verifiers_pass_on_the_request_ids_reports_and_only_those(yamcs: Any, yamcs_server: Any, rover: FakeRover) -> None:
    conn = yamcs.get_processor(yamcs_server.instance, "realtime").create_command_connection()
    try:
        cmd = conn.issue(f"{ROOT}/PING")
        tc = rover.receive_command()
        assert (tc.apid, tc.service, tc.subservice) == (D.mission["tc_apid"], 17, 1)
        pid, psc = tc.request_id
        _answerable(cmd)
        # reports for another command (the next sequence count) complete nothing here
        other = struct.pack(">HH", pid, (psc & 0xC000) | ((psc + 1) & 0x3FFF))
        rover.send([rover.report(1, 1, other), rover.report(1, 3, other), rover.report(1, 7, other)])
        mine = struct.pack(">HH", pid, psc)
        rover.send([rover.report(1, 1, mine)])
        assert wait_until(lambda: _history(cmd).get("Verifier_Acceptance_Status") == "OK")
        assert _history(cmd).get("Verifier_Start_Status") == "PENDING"
        assert _history(cmd).get("Verifier_Completion_Status") == "PENDING"
        rover.send([rover.report(1, 3, mine), rover.report(17, 2, b""), rover.report(1, 7, mine)])
        assert wait_until(cmd.is_complete)
        assert cmd.is_success(), _history(cmd)
        assert _history(cmd)["ccsds-seqcount"] == str(tc.seq_count)
    finally:
        close_subscription(conn)


@pytest.mark.slow
@pytest.mark.yamcs
def test_a_rejection_fails_the_command_with_its_failure_code(yamcs: Any, yamcs_server: Any, rover: FakeRover) -> None:
    conn = yamcs.get_processor(yamcs_server.instance, "realtime").create_command_connection()
    code = next(k for k, v in D.failure_codes.items() if v == "WRONG_MODE")
    try:
        cmd = conn.issue(f"{ROOT}/MODE_SET", {"mode": "DRIVE"})
        tc = rover.receive_command()
        assert tc.app_data == bytes([3])
        pid, psc = tc.request_id
        _answerable(cmd)
        rover.send([rover.report(1, 2, struct.pack(">HHH", pid, psc, code))])
        assert wait_until(cmd.is_complete)
        assert not cmd.is_success()
        history = _history(cmd)
        assert history["Verifier_Acceptance_Status"] == "NOK"
        assert "WRONG_MODE" in (cmd.error or "") + history.get("Verifier_Acceptance_Message", "")
    finally:
        close_subscription(conn)


@pytest.mark.slow
@pytest.mark.yamcs
def test_yamcs_turns_event_reports_into_events_with_the_dictionarys_messages(
    yamcs: Any, yamcs_server: Any, rover: FakeRover
) -> None:
    from datetime import datetime, timedelta

    epoch = datetime.fromisoformat(D.mission["epoch"].replace("Z", "+00:00"))
    by_name = {e.name: e for e in D.events.values()}
    reports = [  # (event, subservice, source data)
        (by_name["WHEEL_FAULT"], struct.pack(">HBB", by_name["WHEEL_FAULT"].id, 3, 2)),
        (by_name["TT_RELEASED"], struct.pack(">HBBI", by_name["TT_RELEASED"].id, 200, 2, 77)),
        (by_name["MODE_CHANGE"], struct.pack(">HBBB", by_name["MODE_CHANGE"].id, 2, 3, 1)),
    ]
    seen: list[Any] = []
    sub = yamcs.create_event_subscription(yamcs_server.instance, on_data=seen.append)
    try:
        rover.clock[1] = 0x8000  # half a second
        sent = []
        for e, data in reports:
            packet = rover.report(5, SEVERITIES[e.severity], data)
            sent.append((e, data, rover.clock[0]))
            rover.send([packet])
        mine = lambda: [ev for ev in seen if ev.event_type in by_name]  # noqa: E731
        assert wait_until(lambda: len(mine()) >= len(reports)), [ev.message for ev in seen]
    finally:
        close_subscription(sub)
    for ev, (e, data, coarse) in zip(mine(), sent, strict=True):
        assert ev.event_type == e.name
        assert ev.message == D.decode_event(SEVERITIES[e.severity], data).message
        assert ev.severity == EVENT_SEVERITY[e.severity]
        # the packet's own CUC time, read by the PUS preprocessor (Yamcs keeps milliseconds)
        assert abs(ev.generation_time - (epoch + timedelta(seconds=coarse + 0.5))) <= timedelta(milliseconds=1)


@pytest.mark.slow
@pytest.mark.yamcs
def test_yamcs_reads_each_onboard_parameter_report_into_its_own_parameter(
    yamcs: Any, yamcs_server: Any, rover: FakeRover
) -> None:
    values = {pid: float(struct.unpack(">f", struct.pack(">f", p.range[0] + (p.range[1] - p.range[0]) / 3))[0])
              for pid, p in D.parameters.items()}
    names = {pid: f"{ROOT}/onboard/{p.name}" for pid, p in D.parameters.items()}
    got: dict[str, float] = {}
    sub = yamcs.get_processor(yamcs_server.instance, "realtime").create_parameter_subscription(
        list(names.values()), on_data=lambda data: got.update({p.name: p.eng_value for p in data.parameters}))
    try:
        rover.send([rover.report(20, 2, struct.pack(">Hf", pid, v)) for pid, v in values.items()])
        assert wait_until(lambda: len(got) == len(values)), sorted(got)
    finally:
        close_subscription(sub)
    assert got == {names[pid]: v for pid, v in values.items()}


@pytest.mark.slow
@pytest.mark.yamcs
def test_yamcs_logged_no_warning_about_the_mdb_or_the_packets(yamcs_server: Any) -> None:
    """Last in the module: everything above was decoded and verified without a complaint."""
    import re

    bad = []
    loggers = set()
    for line in Path(yamcs_server.log_path).read_text(errors="replace").splitlines():
        m = re.search(r"\x1b\[0;36m(.*?)\x1b\[0;0m (.*)", line)
        if m is None:
            continue
        logger, message = m.groups()
        loggers.add(logger)
        if message.startswith(("\x1b[0;33m", "\x1b[0;31m")) and not logger.startswith(MDB_QUIET_EXCEPT):
            bad.append(f"{logger}: {message}")
    assert {"XtceStaxReader", "HttpRequestHandler"} <= loggers  # the log was read
    assert not bad, bad[:5]
