"""The XTCE mission database agrees with the dictionary, field by field.

The XTCE is read back here with ElementTree, independently of yamcs-pymdb (which wrote it):
a small reader resolves the space systems, relative references, types, containers, their
inheritance and restriction criteria, commands, arguments and verifiers, and every item is
compared with protocols/dictionary.json through the project's loader. The command header is
assembled bit by bit from the XTCE's entries and must equal protocols.pus's TC packet; every
command's application data, encoded from the XTCE's argument encodings, must equal the
dictionary's encode_command.

The module's Yamcs tests (slow, yamcs) load the XTCE into a real Yamcs and feed it TM frames made
by the rover's own codec: Yamcs must decode every HK parameter to the value `farside gs export`
reads from the same frames, with the dictionary's limit state as its alarm.
"""

from __future__ import annotations

import dataclasses
import json
import math
import posixpath
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hil.cli import main as farside_main
from hil.errors import FarsideError
from hil.yamcs.mdb import (
    SENT_SEQ,
    STAGE_WINDOW_S,
    STAGES,
    MdbError,
    build_mdb,
    gaps,
    mdb_report,
    write_mdb,
)
from protocols.dictionary import (
    BYTES_TYPE,
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
        (all are equality tests here)."""
        out = {}
        for item in self.chain(name):
            for param, op, value in item.restriction:
                assert op == "==", f"{name}: {param} {op} {value}"
                assert param not in out
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
                ("sentApid", "/yamcs/cmd/arg/apid"), ("sentSeq", SENT_SEQ),
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
        assert xtce.commands[qn].assignments["apid"] == str(D.mission["tc_apid"])


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


def test_the_xtce_is_deterministic_and_written_where_asked(tmp_path: Path) -> None:
    out = write_mdb(tmp_path / "farside.xml", D)
    assert out.read_text() == build_mdb(D) == build_mdb()
    assert f"0x{D.short_hash():08x}" in out.read_text().splitlines()[1]


def _with_field_type(typ: str) -> Dictionary:
    """The project's dictionary with its first HK parameter's type replaced (past the loader's
    checks, as a newer dictionary model could hold it)."""
    d = load_dictionary()
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


def test_a_dictionary_file_with_a_made_up_type_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = json.loads(Path(D.source if Path(D.source).is_absolute() else
                          Path(__file__).parents[2] / "protocols" / "dictionary.json").read_text())
    raw["housekeeping"][0]["parameters"][0]["type"] = "u24"
    path = tmp_path / "dictionary.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(DictionaryError, match="u24"):
        build_mdb(path)
    # through the command line, where it offers the dictionary option
    code = farside_main(["yamcs", "export-mdb", "--dictionary", str(path), "--out", str(tmp_path / "x.xml")])
    err = capsys.readouterr().err
    if "No such option" in err:
        pytest.skip("farside yamcs export-mdb has no --dictionary option")
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("farside: error: ") and "u24" in err
    assert "Traceback" not in err
