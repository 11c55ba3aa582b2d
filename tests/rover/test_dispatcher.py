"""Dispatcher properties (hypothesis): any TC packet gets exactly one acceptance verdict,
a rejection changes nothing, and accepted commands are started and completed or failed."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from firmware_py.app import Rover
from protocols.dictionary import STRUCT_CODES, TYPE_BOUNDS, Arg, load_dictionary
from protocols.errors import DictionaryError
from protocols.pus import build_tc_packet
from tests.rover.ground import CMDS, FAIL, RoverRig, encode_args, make_root


@pytest.fixture(scope="module")
def rover(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _fresh_rover(tmp_path_factory.mktemp("disp") / "r")


# (the key commands, KEY_OTAR and SA_REKEY, have their own tests: tests/security)
SAFE_NAMES = [
    n for n in CMDS
    if n not in ("REBOOT", "ENTER_REPL", "SIM_INJECT", "HIBERNATE", "MODE_SET", "KEY_OTAR", "SA_REKEY")
]

# The ground's dictionary (protocols.dictionary) is the oracle: command codes, argument
# layouts and ranges. Parameter ids and ranges come from its parameters table.
DICTIONARY = load_dictionary()
DRIVES = ("DRIVE_DISTANCE", "TURN", "DRIVE_ARC")
PARAMS = {p.id: p.range for p in DICTIONARY.parameters.values()}
INNER = build_tc_packet(1, 0x3FFF, 17, 1)  # a PING to time-tag (its own sequence count)
DRIVE_WAIT_MS = 10_000  # rover time a started drive gets before a STOP ends it


def _state(r: Any) -> tuple[Any, ...]:
    return (r.modes.mode, tuple(r.params.v), r.sequencer.depth, r.drive.kind, r.safety.armed, tuple(r.safety.state))


def _plain_args(name: str) -> list[Arg]:
    return [a for a in DICTIONARY.command(name).args if a.type != "tc"]


def _pack(name: str, values: list[int | float]) -> bytes:
    return struct.pack(">" + "".join(STRUCT_CODES[a.type] for a in _plain_args(name)), *values)


def _case(name: str, *values: int | float, tail: bytes | None = None) -> tuple[int, int, bytes]:
    """(service, subservice, application data) of `name` with these raw values."""
    c = DICTIONARY.command(name)
    if tail is None:
        tail = INNER if name == "TT_INSERT" else b""
    return c.service, c.subservice, _pack(name, list(values)) + tail


@st.composite
def _value(draw: st.DrawFn, a: Arg) -> int | float:
    """Mostly inside the argument's range, sometimes anywhere its type allows."""
    if a.name == "param_id":
        return draw(st.sampled_from(sorted(PARAMS)) | st.integers(0, 0xFFFF))
    anywhere = draw(st.integers(0, 5)) == 0
    if a.type == "f32":
        if anywhere or a.range is None:
            return draw(st.floats(width=32) | st.sampled_from([-1.0, 0.0, 0.5, 5.0, 50.0]))
        return draw(st.floats(a.range[0], a.range[1]))  # packed as f32: the verdict reads it back
    lo, hi = TYPE_BOUNDS[a.type] if anywhere or a.range is None else a.range
    return draw(st.integers(int(lo), int(hi)))


@st.composite
def _known(draw: st.DrawFn) -> tuple[int, int, bytes]:
    """A dictionary command: well formed, or with a length the dictionary does not give it."""
    name = draw(st.sampled_from(SAFE_NAMES))
    values = [draw(_value(a)) for a in _plain_args(name)]
    service, sub, data = _case(name, *values)
    if name == "PARAM_SET" and draw(st.booleans()):
        lo, hi = PARAMS.get(values[0], (0.0, 1.0))
        data = _pack(name, [values[0], draw(st.floats(lo, hi))])
    how = draw(st.sampled_from(["good"] * 6 + ["longer", "shorter"]))
    if how == "longer":
        data += draw(st.binary(min_size=1, max_size=4))
    elif how == "shorter" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    return service, sub, data


@st.composite
def _unknown(draw: st.DrawFn) -> tuple[int, int, bytes]:
    service, sub = draw(
        st.tuples(st.integers(0, 255), st.integers(0, 255)).filter(lambda c: c not in DICTIONARY.by_code)
    )
    return service, sub, draw(st.binary(max_size=24))


def _wheels_ok(disabled: set[int]) -> bool:
    return all(sum(w not in disabled for w in side) >= 2 for side in ((0, 1, 2), (3, 4, 5)))


def _verdict(service: int, sub: int, data: bytes, disabled: set[int]) -> tuple[int, ...]:
    """What the dictionary and the command's own rules say: (2, code) rejected, (4, code)
    accepted but not started, (3,) started (then 7 or 8)."""
    c = DICTIONARY.command_by_code(service, sub)
    if c is None:
        return (2, FAIL["UNKNOWN_COMMAND"])
    args = _plain_args(c.name)
    size = struct.calcsize(">" + "".join(STRUCT_CODES[a.type] for a in args))
    variable = len(args) < len(c.args)  # a trailing time-tagged TC
    if (len(data) <= size) if variable else (len(data) != size):
        return (2, FAIL["BAD_LENGTH"])
    values = struct.unpack_from(">" + "".join(STRUCT_CODES[a.type] for a in args), data)
    for a, v in zip(args, values, strict=True):
        if a.range is None:
            if a.type == "f32" and not math.isfinite(v):
                return (2, FAIL["OUT_OF_RANGE"])  # an f32 without a range must still be finite
            continue  # nothing more to check in the packet (PARAM_SET's value: the parameter's range)
        try:
            DICTIONARY.coerce(c.name, a, v)
        except DictionaryError:
            return (2, FAIL["OUT_OF_RANGE"])
    if c.name in ("PARAM_GET", "PARAM_SET"):
        if values[0] not in PARAMS:
            return (2, FAIL["UNKNOWN_PARAMETER"])
        lo, hi = PARAMS[values[0]]
        if c.name == "PARAM_SET" and not lo <= values[1] <= hi:
            return (2, FAIL["OUT_OF_RANGE"])
    if c.name == "TT_INSERT" and data[size:] != INNER:
        return (2, FAIL["BAD_LENGTH"])  # the inner packet does not parse or does not fill the data
    if c.name == "DRIVE_ARC" and values[0] == 0:
        return (2, FAIL["OUT_OF_RANGE"])
    if c.name in DRIVES and not _wheels_ok(disabled):
        return (4, FAIL["WHEEL_UNAVAILABLE"])
    return (3,)


def _fresh_rover(root: Path) -> Any:
    """A booted rover whose every TM report is also kept in `r.sent` (service, sub, octets)."""
    rig = RoverRig(make_root(root))
    r = Rover(rig.board, rig.hal, rig.root, rig.rover_link)
    r.boot()
    r.sent = []
    orig = r.dispatcher._send

    def send(service: int, sub: int, n: int) -> None:
        r.sent.append((service, sub, bytes(r.link.data[:n])))
        orig(service, sub, n)

    r.dispatcher._send = send
    return r


def _reports(r: Any, rid: tuple[int, int]) -> list[tuple[int, ...]]:
    """The service 1 reports for one request: (subservice,) or (subservice, failure code)."""
    out = []
    for s, u, d in r.sent:
        if s == 1 and struct.unpack(">HH", d[:4]) == rid:
            out.append((u,) + ((struct.unpack(">H", d[4:6])[0],) if len(d) == 6 else ()))
    return out


ANY = st.one_of(_known(), _known(), _known(), _unknown())


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(ANY, min_size=1, max_size=5))
@example(cases=[_case("PING"), _case("STOP"), (200, 99, b""), _case("TURN", 200.0)])
@example(cases=[_case("DRIVE_DISTANCE", 0.2, 200.0), _case("DRIVE_ARC", 0.0, 1.0, 10.0)])
@example(cases=[_case("DRIVE_DISTANCE", 50.0, 1.0), _case("TURN", 90.0), _case("STOP")])
@example(cases=[_case("WHEEL_DISABLE", 1), _case("WHEEL_DISABLE", 2), _case("DRIVE_DISTANCE", 1.0, 10.0)])
@example(cases=[_case("PARAM_SET", 1, 500.0), _case("PARAM_GET", 99), _case("TT_INSERT", 5, tail=INNER[:-1])])
def test_dictionary_commands_and_unknown_ones_get_the_verdict_they_should(
    tmp_path_factory: pytest.TempPathFactory, cases: list[tuple[int, int, bytes]]
) -> None:
    """Commands drawn from the dictionary (mostly well formed) and unknown codes, a few in a
    row on a fresh rover: rejected ones get 1/2 with the right code and change nothing;
    accepted ones get 1/1, then 1/3 and 1/7, or 1/4 when a drive cannot start; a started
    drive ends with exactly one 1/7 or 1/8 (1/8 ABORTED when STOP ends it, 1/8
    WHEEL_UNAVAILABLE when disabling wheels leaves a side with one, and the rover goes SAFE);
    a drive while one runs is rejected BUSY, and in SAFE WRONG_MODE."""
    r = _fresh_rover(tmp_path_factory.mktemp("disp") / "r")
    disabled: set[int] = set()
    driving: tuple[int, int] | None = None
    safe = False
    ends: dict[tuple[int, int], list[tuple[int, ...]]] = {}  # drive -> the end it must get
    for seq, (service, sub, data) in enumerate(cases):
        pkt = build_tc_packet(1, seq, service, sub, data)
        rid = struct.unpack(">HH", pkt[:4])
        name = c.name if (c := DICTIONARY.command_by_code(service, sub)) else None
        verdict = _verdict(service, sub, data, disabled)
        if name in DRIVES and verdict[0] != 2 and (safe or driving is not None):
            verdict = (2, FAIL["WRONG_MODE"] if safe else FAIL["BUSY"])  # one drive at a time
        event(f"verdict {verdict}")
        before = _state(r)
        r.dispatcher.on_packet(pkt, 0, len(pkt))
        while r.store.pump():  # TM_RETRIEVE completes once the store sent its range
            pass
        got = _reports(r, rid)
        if verdict[0] == 2:
            assert got == [verdict], (name, data.hex())
            assert _state(r) == before
            continue
        if verdict[0] == 4:
            assert got == [(1,), verdict], name
            continue
        if name in DRIVES or (name == "STOP" and driving is not None):
            if driving is not None:
                ends[driving] = [(8, FAIL["ABORTED"])]  # STOP ended it
            driving = rid if name in DRIVES else None
        if name in DRIVES:
            assert got[:2] == [(1,), (3,)] and got[2:] in ([], [(7,)]), (name, got)
            if got[2:]:
                driving = None  # a zero-length motion ends at once
        else:
            assert got == [(1,), (3,), (7,)], (name, got)
        if name == "WHEEL_DISABLE":
            disabled.add(struct.unpack(">B", data)[0] - 1)
            if driving is not None and not _wheels_ok(disabled):
                ends[driving] = [(8, FAIL["WHEEL_UNAVAILABLE"])]  # two wheels per side, or SAFE
                driving = None
                safe = True
        elif name == "WHEEL_ENABLE":
            disabled.discard(struct.unpack(">B", data)[0] - 1)
    now = 0
    while r.drive.kind and now < DRIVE_WAIT_MS:
        now += 50
        r.step(now)
    if driving is not None:
        ended = _reports(r, driving)[2:]
        if not ended:
            stop = build_tc_packet(1, len(cases), *_case("STOP"))
            r.dispatcher.on_packet(stop, 0, len(stop))
            ends[driving] = [(8, FAIL["ABORTED"])]
        else:
            assert ended == [(7,)] or (len(ended) == 1 and ended[0][0] == 8 and ended[0][1] in FAIL.values()), ended
            ends[driving] = ended
    for rid, end in ends.items():
        assert _reports(r, rid)[2:] == end, rid
    assert r.drive.kind == 0


@pytest.mark.parametrize("name", SAFE_NAMES)
def test_every_command_with_a_wrong_length_is_rejected_bad_length(rover: Any, name: str) -> None:
    c = CMDS[name]
    good = encode_args(name, *[a.get("range", [0, 0])[0] for a in c["args"] if a["type"] != "tc"])
    bad = good + b"\x00" if c["args"] and c["args"][-1]["type"] != "tc" or not c["args"] else good[:-1]
    if c["args"] and c["args"][-1]["type"] == "tc":
        bad = good  # no inner packet at all
    pkt = build_tc_packet(1, 1, c["service"], c["subservice"], bad)
    rover.sent.clear()
    rover.dispatcher.on_packet(pkt, 0, len(pkt))
    assert [(s, u) for s, u, _ in rover.sent] == [(1, 2)]
    assert struct.unpack(">H", rover.sent[0][2][4:6])[0] == 2


def test_drive_command_completion_is_reported_when_the_motion_ends(tmp_path: Path) -> None:
    rig = RoverRig(make_root(tmp_path / "r"))
    r = Rover(rig.board, rig.hal, rig.root, rig.rover_link)
    r.boot()
    sent: list[tuple[int, int]] = []
    orig = r.dispatcher._send
    r.dispatcher._send = lambda s, u, n: (sent.append((s, u)), orig(s, u, n))
    pkt = build_tc_packet(1, 5, 200, 2, struct.pack(">ff", 0.5, 200.0))
    r.dispatcher.on_packet(pkt, 0, len(pkt))
    assert sent == [(1, 1), (1, 3)]
    now = 0
    while r.drive.kind and now < 60000:
        now += 50
        r.step(now)
    assert sent[-1] == (1, 7)
    assert abs(rig.hal.plant.x - 0.5) < 0.02
