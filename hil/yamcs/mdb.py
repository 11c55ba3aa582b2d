"""The dictionary as an XTCE mission database for Yamcs (XTCE 1.2, written with yamcs-pymdb).

One source: protocols/dictionary.json through protocols.dictionary; the XTCE is generated,
never edited. `build_mdb(dictionary)` returns the XML, `write_mdb(path)` writes it,
`mdb_report(dictionary)` lists, one line each, what XTCE carries only in part and why.

Space systems (Yamcs qualified names; the root is the mission name, `/farside`):

    /farside                  HK parameters (/farside/x_m ...), the HK containers
                              (/farside/HK_ROVER), every command (/farside/DRIVE_DISTANCE) and
                              `packet`, the abstract space packet every TM container extends
                              (Yamcs's root container)
    /farside/pus              the packet headers: CCSDS 133.0-B primary header and the PUS-C
                              TM secondary header (service, subservice, counter, destination,
                              CUC time since the mission epoch); abstract containers
                              `tm` (TM type, secondary header, the rover's TM APID: idle
                              packets never match), `hk` (3/25, sid), `event` (5/x, event id),
                              `verification` (1/x), `parameter` (20/2, parameter id),
                              `ping_reply` (17/2); the abstract command `tc`
    /farside/events           one container per event (/farside/events/WHEEL_FAULT), restricted
                              by event id and by its severity's subservice; its arguments are
                              parameters of a subsystem named after it
                              (/farside/events/WHEEL_FAULT/state)
    /farside/verification     the six 1/x reports as containers (ACCEPTED ... COMPLETION_FAILED);
                              request id (TC APID, sequence count) as per-stage parameters and
                              the failure code as an enumeration of the dictionary's codes
    /farside/onboard          one container per onboard parameter (TM 20/2 by parameter id),
                              the value with its unit and valid range

Typing: an integer field is an integer parameter; with a calibration polynomial it becomes a
float (64-bit engineering value) over its integer encoding with a polynomial calibrator, as the
ground computes it (`Dictionary.value_of`); an enum field is an enumerated parameter; f32 is an
IEEE 754 float. All encodings are big-endian. Limits become threshold alarms on the engineering
value: yellow = warning, red = critical, each range inclusive (`GroundDictionary.limit_state`).

Commands: each extends `/farside/pus/tc` (primary header with the TC APID, PUS-C TC secondary
header with PUS version 2, acknowledgement flags 0xF, service, subservice, source id 0); the
sequence count, packet length and packet CRC are Yamcs's to fill (PusCommandPostprocessor with
CRC-16-CCIIT, the CRC-16/CCITT-FALSE of protocols.crc). Arguments are typed and range-checked as
the dictionary declares (else to the type's bounds); an enum argument lists only the labels its
range allows (MODE_SET offers no BOOT). Every command carries the PUS service-1 verifiers:
Acceptance (1/1, failing on 1/2), Start (1/3, failing on 1/4) and Completion (1/7, failing on
1/8), each a PUS-1 verifier algorithm (`org.yamcs.pus.Pus1Verifier`, or farside's
`farside.yamcs.Pus1ReportVerifier`, which also finds a report that arrived before the command's
sequence count: hil.yamcs.extension) matching the report's request id (APID and sequence
count) to the command's APID argument and the sequence count the postprocessor assigned
(`/yamcs/cmdHist/ccsds-seqcount`). Each stage reads its own request-id parameters, so one
command's report never completes another's verifier. Check windows run from release
(STAGE_WINDOW_S): 5 min for acceptance and start, 2 h for completion, as the dictionary gives
no command a duration; a drive that outlasts 2 h (200 m below 100 m/h) completes on the rover
after Yamcs has failed it on timeout.

Yamcs configuration the MDB expects (the link's, hil/yamcs/config.py): PusPacketPreprocessor
with CRC-16-CCIIT and timeEncoding CUC from the mission epoch with `implicitPField: 0x2E`
(the rover's CUC 4+2 has no P-field); PusCommandPostprocessor with CRC-16-CCIIT; for Yamcs
events, org.yamcs.pus.PusEventDecoder with `eventIdParameter: event_id_parameter()` and
`eventTemplateFile` written by `write_event_templates()`.

What XTCE does not carry, and why (`mdb_report`, one line each, for `export-mdb --report`):
- a `tc` argument (TT_INSERT's embedded command): XTCE has no argument that is itself a command
  of the same database, so it is an opaque binary of 13 octets up to what one TC frame leaves;
  Yamcs neither builds, range-checks nor CRC-checks the embedded packet (the rover does);
- an argument whose range depends on another argument's value (PARAM_SET's value is checked
  against the range of the parameter `param_id` names): XTCE ranges are static, so it is
  checked only to the f32 bounds;
- event message templates: XTCE has no event message; the template is the event container's
  description, and `event_templates()` gives Yamcs's PUS event decoder (PusEventDecoder) the
  templates by event name, so 5/x reports become Yamcs events with the dictionary's messages;
- an onboard parameter's default: XTCE has no default for a reported value (description only).
A `bytes` argument (fixed length) is a fixed-size binary argument: fully expressed.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from yamcs.pymdb import (
    AbsoluteTimeParameter,
    AcceptedVerifier,
    AlgorithmCheck,
    Argument,
    ArgumentEntry,
    BinaryArgument,
    BinaryEncoding,
    Command,
    CompleteVerifier,
    Container,
    Encoding,
    EnumeratedArgument,
    EnumeratedParameter,
    ExecutionVerifier,
    FixedValueEntry,
    FloatArgument,
    FloatParameter,
    InputParameter,
    IntegerArgument,
    IntegerEncoding,
    IntegerEncodingScheme,
    IntegerParameter,
    IntegerTimeEncoding,
    Parameter,
    ParameterEntry,
    Polynomial,
    Subsystem,
    System,
    TerminationAction,
    ThresholdAlarm,
    UnnamedJavaAlgorithm,
    eq,
    float32_t,
)
from yamcs.pymdb.exceptions import DuplicateNameError, ExportError
from yamcs.pymdb.expressions import AndExpression, Expression
from yamcs.pymdb.verifiers import Verifier
from yamcs.pymdb.xtce import XTCEGenerator

from hil.errors import FarsideError
from hil.yamcs.extension import STOCK_VERIFIER
from protocols.dictionary import (
    BYTES_TYPE,
    SEVERITIES,
    TC_TYPE,
    TYPE_BOUNDS,
    VERIFICATION_REPORTS,
    Arg,
    Dictionary,
    load_dictionary,
)
from protocols.pus import ACK_ALL, PUS_VERSION, TC_OVERHEAD
from protocols.tc_frame import FECF_LENGTH, MAC_LENGTH, PRIMARY_HEADER_LENGTH

SDLS_GCM_HEADER = 2 + 12  # SPI u16 + IV: the AES-256-GCM security header on every TC frame

PUS = "pus"
EVENTS = "events"
VERIFICATION = "verification"
ONBOARD = "onboard"

# the stages of PUS service 1: success subservice -> (verifier name, parameter prefix);
# the failure report is the next subservice (Pus1Verifier's rule, and ECSS's numbering)
STAGES = {1: ("Acceptance", "acceptance"), 3: ("Start", "start"), 7: ("Completion", "completion")}
# check windows from command release. The acceptance and start windows cover a full
# 1024-octet frame at 125 bit/s (66 s), the 3.5 s round trip and COP-1 retransmissions;
# the completion window covers the longest drive at the governor's 200 m/h (200 m: 1 h).
STAGE_WINDOW_S = {1: 300.0, 3: 300.0, 7: 7200.0}
SENT_SEQ = "/yamcs/cmdHist/ccsds-seqcount"  # set by Yamcs's PUS command postprocessor
# the PUS header's arguments every command inherits (assigned per command); named apart from
# the dictionary's own arguments (TM_RETRIEVE has an `apid`), which may not take these names
APID_ARG = "ccsds_apid"
SERVICE_ARG = "pus_service"
SUBSERVICE_ARG = "pus_subservice"
HEADER_ARGS = (APID_ARG, SERVICE_ARG, SUBSERVICE_ARG)
PARAM_ID_ARG = "param_id"  # a command argument naming an onboard parameter (TM/TC 20)

_INT_BITS = {"u8": (8, False), "i8": (8, True), "u16": (16, False), "i16": (16, True),
             "u32": (32, False), "i32": (32, True)}

# bit positions in a PUS-C TM packet (protocols.pus): primary header 48 bits, then PUS
# version 4, time reference 4, service 8, subservice 8, counter 16, destination 16, CUC 48
SUBSERVICE_BIT = 64
TM_HEADER_BITS = 152


class MdbError(FarsideError):
    """The dictionary holds something the XTCE writer cannot express."""


@dataclass(frozen=True)
class Gap:
    """Something in the dictionary that XTCE carries only in part."""

    where: str
    carried_as: str
    why: str

    def line(self) -> str:
        return f"{self.where}: {self.carried_as} ({self.why})"


# --- encodings -----------------------------------------------------------------------------


def _int_encoding(typ: str, where: str) -> IntegerEncoding:
    if typ not in _INT_BITS:
        raise MdbError(f"{where}: type {typ!r} has no XTCE integer encoding (expected one of "
                       f"{', '.join(sorted(_INT_BITS))}, f32, {TC_TYPE} or {BYTES_TYPE})")
    bits, signed = _INT_BITS[typ]
    scheme = IntegerEncodingScheme.TWOS_COMPLEMENT if signed else IntegerEncodingScheme.UNSIGNED
    return IntegerEncoding(bits=bits, scheme=scheme)


def _encoding(typ: str, where: str) -> Encoding:
    if typ == "f32":
        return float32_t
    return _int_encoding(typ, where)


def _uint(bits: int) -> IntegerEncoding:
    return IntegerEncoding(bits=bits, scheme=IntegerEncodingScheme.UNSIGNED)


def _alarm(a: Arg) -> ThresholdAlarm | None:
    if not a.limits:
        return None
    yellow, red = a.limits.get("yellow"), a.limits.get("red")
    return ThresholdAlarm(
        warning_low=yellow[0] if yellow else None, warning_high=yellow[1] if yellow else None,
        critical_low=red[0] if red else None, critical_high=red[1] if red else None,
    )


def _number(x: float) -> float | int:
    """Whole floats as ints, so ranges read 1 not 1.0 in the XML."""
    return int(x) if float(x).is_integer() else x


class _Writer:
    """Builds the pymdb System from a validated Dictionary."""

    def __init__(self, d: Dictionary, verifier: str = STOCK_VERIFIER) -> None:
        self.d = d
        self.verifier = verifier
        self.mission = d.mission
        self.gaps: list[Gap] = []
        name = str(self.mission.get("name") or "farside")
        self.root = System(name, short_description=f"{name}: generated from the dictionary "
                                                   f"(hash 0x{d.short_hash():08x}); do not edit")
        self.pus = Subsystem(self.root, PUS, short_description="CCSDS space packet and PUS-C headers")
        self.events = Subsystem(self.root, EVENTS, short_description="PUS service 5 event reports")
        self.verif = Subsystem(self.root, VERIFICATION, short_description="PUS service 1 verification reports")
        self.onboard = Subsystem(self.root, ONBOARD, short_description="PUS service 20 parameter reports")

    # --- fields ---
    def parameter(self, system: System, a: Arg, where: str) -> Parameter:
        desc = a.description or None
        units = a.unit or None
        if a.type not in _INT_BITS and a.type != "f32":
            raise MdbError(f"{where}: type {a.type!r} cannot be a telemetry field in XTCE "
                           f"(expected one of {', '.join(sorted(_INT_BITS))} or f32)")
        enc = _encoding(a.type, where)
        if a.enum is not None:
            if a.calibration is not None or a.limits:
                raise MdbError(f"{where}: an enumerated field with a calibration or limits has no XTCE form")
            choices = sorted(self.d.enums[a.enum].items())
            return EnumeratedParameter(system, a.name, choices=choices, encoding=enc,
                                       short_description=desc, units=units)
        if a.type == "f32" or a.calibration is not None:
            cal = Polynomial(list(a.calibration)) if a.calibration is not None else None
            return FloatParameter(system, a.name, bits=64 if a.type != "f32" or cal else 32, encoding=enc,
                                  calibrator=cal, alarm=_alarm(a), units=units, short_description=desc)
        bits, signed = _INT_BITS[a.type]
        return IntegerParameter(system, a.name, signed=signed, bits=bits if bits > 8 else 8,
                                encoding=enc, alarm=_alarm(a), units=units, short_description=desc)

    def argument(self, cmd: str, a: Arg, rest_octets: int, siblings: tuple[Arg, ...] = ()) -> Argument:
        where = f"{cmd}.{a.name}"
        desc = a.description or None
        units = a.unit or None
        if a.type == TC_TYPE:
            high = self._frame_room() - TC_OVERHEAD - rest_octets
            self.gaps.append(Gap(where, f"opaque binary of {TC_OVERHEAD}..{high} octets",
                                 "XTCE has no argument that is a command of the same database: "
                                 "Yamcs does not build, range-check or CRC-check the embedded TC"))
            return BinaryArgument(a.name, min_length=TC_OVERHEAD, max_length=high,
                                  encoding=BinaryEncoding(), short_description=desc)
        if a.type == BYTES_TYPE:
            length = a.length
            if length is None or length < 1:
                raise MdbError(f"{where}: a {BYTES_TYPE} argument needs a length in octets")
            return BinaryArgument(a.name, min_length=length, max_length=length,
                                  encoding=BinaryEncoding(bits=8 * length), short_description=desc)
        enc = _encoding(a.type, where)
        if a.enum is not None:
            table = self.d.enums[a.enum]
            lo, hi = a.range if a.range is not None else (min(table), max(table))
            choices = [(k, v) for k, v in sorted(table.items()) if lo <= k <= hi]
            return EnumeratedArgument(a.name, choices=choices, encoding=enc, short_description=desc, units=units)
        if a.type == "f32":
            lo, hi = a.range if a.range is not None else TYPE_BOUNDS["f32"]
            if a.range is None and any(b.name == PARAM_ID_ARG for b in siblings):
                self.gaps.append(Gap(where, "f32 checked only to the f32 bounds", "its range is that of "
                                     f"the onboard parameter {PARAM_ID_ARG} names, and XTCE argument "
                                     "ranges are static; the rover checks it"))
            return FloatArgument(a.name, bits=32, minimum=lo, maximum=hi, encoding=enc,
                                 short_description=desc, units=units)
        bits, signed = _INT_BITS[a.type]
        if a.range is not None:
            lo_i, hi_i = int(a.range[0]), int(a.range[1])
        else:
            lo_i = -(1 << (bits - 1)) if signed else 0
            hi_i = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        return IntegerArgument(a.name, signed=signed, bits=bits, minimum=lo_i, maximum=hi_i,
                               encoding=enc, short_description=desc, units=units)

    def _frame_room(self) -> int:
        """Octets of a TC frame's data field left for one packet under the AES-GCM SA."""
        frame_max = int(self.mission["tc_frame_max"])
        return frame_max - PRIMARY_HEADER_LENGTH - SDLS_GCM_HEADER - MAC_LENGTH - FECF_LENGTH

    # --- telemetry ---
    def headers(self) -> None:
        s = self.pus
        mk = self._header_param
        self.p_version = mk("ccsds_version", 3, "packet version number (0)")
        self.p_type = mk("ccsds_type", 1, "packet type: 0 TM, 1 TC")
        self.p_sec = mk("ccsds_secondary_header", 1, "secondary header flag")
        self.p_apid = mk("ccsds_apid", 11, "application process identifier")
        self.p_seq_flags = mk("ccsds_sequence_flags", 2, "sequence flags (3: unsegmented)")
        self.p_seq = mk("ccsds_sequence_count", 14, "packet sequence count")
        self.p_length = mk("ccsds_packet_length", 16, "packet data length: octets after the header - 1")
        self.p_pus_version = mk("pus_version", 4, "TM packet PUS version number (2)")
        self.p_time_ref = mk("pus_time_reference", 4, "spacecraft time reference status")
        self.p_service = mk("service", 8, "service type ID")
        self.p_subservice = mk("subservice", 8, "message subtype ID")
        self.p_counter = mk("message_counter", 16, "message type counter")
        self.p_destination = mk("destination", 16, "destination ID")
        epoch = datetime.fromisoformat(str(self.mission["epoch"]).replace("Z", "+00:00"))
        self.p_time = AbsoluteTimeParameter(
            s, "time", reference=epoch,
            encoding=IntegerTimeEncoding(bits=48, scale=1 / 65536),
            short_description="CUC 4+2: coarse seconds and 1/65536 s since the mission epoch",
        )
        # in the root system: Yamcs decodes every packet from the root's base-less container
        self.packet = Container(self.root, "packet", abstract=True, bits=48,
                                short_description="CCSDS 133.0-B space packet primary header",
                                entries=[ParameterEntry(p) for p in (
                                    self.p_version, self.p_type, self.p_sec, self.p_apid,
                                    self.p_seq_flags, self.p_seq, self.p_length)])
        self.tm = Container(
            s, "tm", abstract=True, base=self.packet,
            short_description="PUS-C TM packet from the rover (ECSS-E-ST-70-41C 7.4.3)",
            condition=AndExpression(eq(self.p_type, 0), eq(self.p_sec, 1),
                                    eq(self.p_apid, int(self.mission["tm_apid"]))),
            entries=[ParameterEntry(p) for p in (
                self.p_pus_version, self.p_time_ref, self.p_service, self.p_subservice,
                self.p_counter, self.p_destination, self.p_time)],
        )

    def _header_param(self, name: str, bits: int, desc: str) -> IntegerParameter:
        return IntegerParameter(self.pus, name, signed=False, bits=max(8, bits), encoding=_uint(bits),
                                short_description=desc)

    def _tm_kind(self, name: str, service: int, subservice: int | None, desc: str) -> Container:
        cond: Expression = eq(self.p_service, service)
        if subservice is not None:
            cond = AndExpression(cond, eq(self.p_subservice, subservice))
        return Container(self.pus, name, abstract=True, base=self.tm, condition=cond, short_description=desc)

    def housekeeping(self) -> None:
        hk = self._tm_kind("hk", 3, 25, "TM 3/25 housekeeping parameter report")
        self.p_sid = IntegerParameter(self.pus, "sid", signed=False, bits=16, encoding=_uint(16),
                                      short_description="housekeeping structure id")
        hk.entries = [ParameterEntry(self.p_sid)]
        for sid, packet in sorted(self.d.housekeeping.items()):
            params = [self.parameter(self.root, a, f"housekeeping {packet.name}.{a.name}")
                      for a in packet.parameters]
            Container(self.root, packet.name, base=hk, condition=eq(self.p_sid, sid),
                      entries=[ParameterEntry(p) for p in params], rate=packet.default_period_s,
                      hint_partition=True,
                      short_description=f"TM 3/25 sid {sid}, every {packet.default_period_s:g} s by default")

    def event_reports(self) -> None:
        ev = self._tm_kind("event", 5, None, "TM 5/1..5/4 event report, subservice by severity")
        # enumerated by the events' names: Yamcs's PUS event decoder names its events by label
        self.p_event_id = EnumeratedParameter(
            self.pus, "event_id", choices=[(eid, e.name) for eid, e in sorted(self.d.events.items())],
            encoding=_uint(16), short_description="event id")
        ev.entries = [ParameterEntry(self.p_event_id)]
        for _, e in sorted(self.d.events.items()):
            args = Subsystem(self.events, e.name, short_description=f"arguments of event {e.name}")
            params = [self.parameter(args, a, f"event {e.name}.{a.name}") for a in e.args]
            Container(self.events, e.name, base=ev,
                      condition=AndExpression(eq(self.p_subservice, SEVERITIES[e.severity]),
                                              eq(self.p_event_id, e.name)),
                      entries=[ParameterEntry(p) for p in params],
                      short_description=f"{e.severity}: {e.message}")
        if self.d.events:
            self.gaps.append(Gap(f"events ({len(self.d.events)})", "message templates outside the XTCE, "
                                 "for Yamcs's PUS event decoder (event_templates)", "XTCE has no event message"))

    def verification_reports(self) -> None:
        ver = self._tm_kind("verification", 1, None, "TM 1/x request verification report")
        # the report's subtype again, decoded only from service-1 reports, so a stage's
        # verifier never sees another service's subservice
        self.p_report = IntegerParameter(self.verif, "report_subtype", signed=False, bits=8,
                                         encoding=_uint(8), short_description="1/x report subtype")
        ver.entries = [ParameterEntry(self.p_report, bitpos=SUBSERVICE_BIT)]
        failure = EnumeratedParameter(
            self.verif, "failure_code", choices=sorted(self.d.failure_codes.items()),
            encoding=_uint(16), short_description="the failure report's code",
        )
        self.stage_params: dict[int, tuple[Parameter, Parameter]] = {}
        for ok, (_, prefix) in STAGES.items():
            apid = IntegerParameter(self.verif, f"{prefix}_tc_apid", signed=False, bits=16, encoding=_uint(11),
                                    short_description=f"request id of a 1/{ok} or 1/{ok + 1} report: TC APID")
            seq = IntegerParameter(self.verif, f"{prefix}_tc_sequence_count", signed=False, bits=16,
                                   encoding=_uint(14),
                                   short_description=f"request id of a 1/{ok} or 1/{ok + 1} report: TC sequence count")
            self.stage_params[ok] = (apid, seq)
            for sub in (ok, ok + 1):
                entries = [ParameterEntry(apid, bitpos=TM_HEADER_BITS + 5), ParameterEntry(seq, offset=2)]
                if sub == ok + 1:
                    entries.append(ParameterEntry(failure))
                Container(self.verif, VERIFICATION_REPORTS[sub], base=ver, condition=eq(self.p_subservice, sub),
                          entries=entries, short_description=f"TM 1/{sub}")
        self.p_failure = failure

    def onboard_parameters(self) -> None:
        rep = self._tm_kind("parameter", 20, 2, "TM 20/2 parameter value report")
        pid = IntegerParameter(self.pus, "parameter_id", signed=False, bits=16, encoding=_uint(16),
                               short_description="onboard parameter id")
        rep.entries = [ParameterEntry(pid)]
        for i, p in sorted(self.d.parameters.items()):
            value = FloatParameter(self.onboard, p.name, bits=32, encoding=float32_t,
                                   minimum=_number(p.range[0]), maximum=_number(p.range[1]),
                                   units=p.unit or None, short_description=p.description or None)
            Container(self.onboard, p.name, base=rep, condition=eq(pid, i), entries=[ParameterEntry(value)],
                      short_description=f"TM 20/2 parameter {i}")
        if self.d.parameters:
            self.gaps.append(Gap(f"onboard parameters ({len(self.d.parameters)})", "defaults left out",
                                 "XTCE has no default for a reported value"))
        self._tm_kind("ping_reply", 17, 2, "TM 17/2 are-you-alive reply").abstract = False

    # --- commands ---
    def commands(self) -> None:
        self.tc_apid_arg = IntegerArgument(APID_ARG, signed=False, bits=16, encoding=_uint(11))
        service = IntegerArgument(SERVICE_ARG, signed=False, bits=8, encoding=_uint(8))
        subservice = IntegerArgument(SUBSERVICE_ARG, signed=False, bits=8, encoding=_uint(8))
        self.tc = Command(
            self.pus, "tc", abstract=True,
            short_description="PUS-C TC packet (ECSS-E-ST-70-41C 7.4.4); Yamcs fills sequence count, length and CRC",
            arguments=[self.tc_apid_arg, service, subservice],
            entries=[
                FixedValueEntry("00", "ccsds_version", bits=3),
                FixedValueEntry("01", "ccsds_type", bits=1),
                FixedValueEntry("01", "ccsds_secondary_header", bits=1),
                ArgumentEntry(self.tc_apid_arg),
                FixedValueEntry("03", "ccsds_sequence_flags", bits=2),
                FixedValueEntry("0000", "ccsds_sequence_count", bits=14),
                FixedValueEntry("0000", "ccsds_packet_length", bits=16),
                FixedValueEntry(f"{PUS_VERSION:02x}", "pus_version", bits=4),
                FixedValueEntry(f"{ACK_ALL:02x}", "acknowledgement_flags", bits=4),
                ArgumentEntry(service),
                ArgumentEntry(subservice),
                FixedValueEntry("0000", "source_id", bits=16),
            ],
        )
        tc_apid = int(self.mission["tc_apid"])
        for name, cmd in self.d.commands.items():
            clash = [a.name for a in cmd.args if a.name in HEADER_ARGS]
            if clash:
                raise MdbError(f"{name}.{clash[0]}: that argument name is the PUS header's in the XTCE "
                               f"(reserved: {', '.join(HEADER_ARGS)})")
            args: list[Argument] = []
            for i, a in enumerate(cmd.args):
                rest = sum(_octets(b) for b in cmd.args[:i])
                args.append(self.argument(name, a, rest, cmd.args))
            c = Command(self.root, name, base=self.tc, arguments=args,
                        assignments={APID_ARG: tc_apid, SERVICE_ARG: cmd.service, SUBSERVICE_ARG: cmd.subservice},
                        short_description=cmd.description or None)
            self.verifiers(c)

    def verifiers(self, c: Command) -> None:
        for ok, (label, _) in STAGES.items():
            apid, seq = self.stage_params[ok]
            algorithm = UnnamedJavaAlgorithm(
                f"{self.verifier}({{stage: {ok}, template: \"failure {{failureCode}}\"}})",
                inputs=[
                    InputParameter(f"/yamcs/cmd/arg/{APID_ARG}", name="sentApid"),
                    InputParameter(SENT_SEQ, name="sentSeq"),
                    InputParameter(apid, name="rcvdApid"),
                    InputParameter(seq, name="rcvdSeq"),
                    InputParameter(self.p_report, name="reportSubType"),
                    InputParameter(self.p_failure, name="failureCode"),
                ],
            )
            kind = {1: AcceptedVerifier, 3: ExecutionVerifier, 7: CompleteVerifier}[ok]
            verifier = kind(check=AlgorithmCheck(algorithm), timeout=STAGE_WINDOW_S[ok], name=label,
                            on_fail=TerminationAction.FAIL, on_timeout=TerminationAction.FAIL)
            if ok == 1:
                c.accepted_verifier = verifier  # type: ignore[assignment]
            elif ok == 3:
                c.execution_verifiers.append(verifier)  # type: ignore[arg-type]
            else:
                c.complete_verifiers.append(verifier)  # type: ignore[arg-type]


class _Generator(XTCEGenerator):
    """pymdb's XTCE writer, naming each verifier's algorithm after its command and stage:
    pymdb calls them all "Unnamed", and Yamcs refuses to run two algorithms of one name for
    one command ("already active")."""

    def add_verifier(self, parent: ET.Element, command: Command, verifier: Verifier) -> None:
        super().add_verifier(parent, command, verifier)
        algorithm = parent[-1].find("CustomAlgorithm")
        if algorithm is not None:
            algorithm.set("name", f"{command.name}_{verifier.name}")


def event_templates(dictionary: DictionarySource = None) -> list[dict[str, str]]:
    """The events' message templates for Yamcs's PUS event decoder (org.yamcs.pus.PusEventDecoder,
    `eventTemplateFile`, with `eventIdParameter` event_id_parameter()): one entry per event, keyed
    by its name (the label of /<mission>/pus/event_id), each {argument} made the argument's
    qualified parameter name, since a short name can also be a header's (TT_RELEASED's service)."""
    d = dictionary if isinstance(dictionary, Dictionary) else load_dictionary(dictionary)
    root = "/" + str(d.mission.get("name") or "farside")
    out = []
    for _, e in sorted(d.events.items()):
        names = {a.name: f"{{{root}/{EVENTS}/{e.name}/{a.name}}}" for a in e.args}
        out.append({"eventId": e.name, "template": e.message.format(**names)})
    return out


def event_id_parameter(dictionary: DictionarySource = None) -> str:
    """The qualified name of the event id parameter (/<mission>/pus/event_id)."""
    d = dictionary if isinstance(dictionary, Dictionary) else load_dictionary(dictionary)
    return f"/{d.mission.get('name') or 'farside'}/{PUS}/event_id"


def write_event_templates(path: str | Path, dictionary: DictionarySource = None) -> Path:
    """Write event_templates(dictionary) as JSON (YAML reads it) to `path`."""
    p = Path(path)
    try:
        p.write_text(json.dumps(event_templates(dictionary), indent=1) + "\n")
    except OSError as exc:
        raise MdbError(f"cannot write {p}: {exc.strerror or exc}") from None
    return p


def _octets(a: Arg) -> int:
    if a.type == BYTES_TYPE:
        return a.length or 0
    if a.type in _INT_BITS:
        return _INT_BITS[a.type][0] // 8
    if a.type == "f32":
        return 4
    return 0


DictionarySource = Dictionary | str | Path | None


def _build(dictionary: DictionarySource, verifier: str = STOCK_VERIFIER) -> _Writer:
    d = dictionary if isinstance(dictionary, Dictionary) else load_dictionary(dictionary)
    w = _Writer(d, verifier)
    try:
        w.headers()
        w.housekeeping()
        w.event_reports()
        w.verification_reports()
        w.onboard_parameters()
        w.commands()
    except DuplicateNameError as exc:  # e.g. two HK packets sharing a parameter name
        raise MdbError(f"the XTCE writer cannot express the dictionary: {exc} (names are unique per "
                       "space system in XTCE)") from None
    return w


def build_mdb(dictionary: DictionarySource = None, verifier: str = STOCK_VERIFIER) -> str:
    """The dictionary (a Dictionary, or a path; default: protocols/dictionary.json) as XTCE 1.2 XML,
    its PUS-1 verifiers run by the Java algorithm class `verifier` (Yamcs's own by default, for
    any Yamcs; hil.yamcs.extension.VERIFIER_CLASS where farside's extension is on the class path).

    Raises MdbError (one line) for a field XTCE cannot express."""
    w = _build(dictionary, verifier)
    comment = f" generated from the {w.root.name} dictionary (hash 0x{w.d.short_hash():08x}); do not edit "
    try:
        return _Generator(w.root, version="1.2", indent="  ", top_comment=comment).to_xtce()
    except (ExportError, ValueError) as exc:  # pymdb's export checks
        raise MdbError(f"the XTCE writer cannot express the dictionary: {exc}") from None


def write_mdb(path: str | Path, dictionary: DictionarySource = None) -> Path:
    """Write build_mdb(dictionary) to `path`; returns the path."""
    p = Path(path)
    xml = build_mdb(dictionary)
    try:
        p.write_text(xml)
    except OSError as exc:
        raise MdbError(f"cannot write {p}: {exc.strerror or exc}") from None
    return p


def mdb_report(dictionary: DictionarySource = None) -> list[str]:
    """One line for each thing XTCE carries only in part, and why."""
    return [g.line() for g in _build(dictionary).gaps]


def gaps(dictionary: DictionarySource = None) -> list[Gap]:
    """What XTCE carries only in part (mdb_report's lines, as records)."""
    return list(_build(dictionary).gaps)

