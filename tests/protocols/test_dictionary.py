"""The dictionary: validation of broken copies, hash, typed command arguments, TM decoding."""

from __future__ import annotations

import copy
import hashlib
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import strategies as pst
from protocols.dictionary import (
    DEFAULT_PATH,
    Dictionary,
    canonical_bytes,
    encode_command,
    load_dictionary,
    short_hash,
)
from protocols.errors import DictionaryError
from protocols.pus import build_tc_packet

RAW = json.loads(DEFAULT_PATH.read_text())
D = load_dictionary()


def _broken(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    d = copy.deepcopy(RAW)
    edit(d)
    return d


def _cmd(d: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in d["commands"] if c["name"] == name)


BROKEN: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("duplicate command name", lambda d: d["commands"].append(copy.deepcopy(_cmd(d, "PING")) | {"subservice": 99}),
     r"duplicate command name 'PING'"),
    ("duplicate code", lambda d: d["commands"].append(copy.deepcopy(_cmd(d, "PING")) | {"name": "PING2"}),
     r"duplicate service/subservice \(17, 1\)"),
    ("unknown type", lambda d: _cmd(d, "TURN")["args"][0].update(type="f64"),
     r"commands\[\d+\] \(TURN\)\.args\[0\] \(angle_deg\): unknown type 'f64'"),
    ("range beyond type", lambda d: _cmd(d, "WHEEL_DISABLE")["args"][0].update(range=[0, 300]),
     r"range \[0, 300\] does not fit type u8"),
    ("inverted range", lambda d: _cmd(d, "TURN")["args"][0].update(range=[10, -10]),
     r"low 10 is above high -10"),
    ("enum range beyond its enum", lambda d: _cmd(d, "MODE_SET")["args"][0].update(range=[1, 5]),
     r"\(mode\): range \[1, 5\] includes 5, which is not a value of enum 'mode' \(0=BOOT, .*4=HIBERNATE\)"),
    ("enum range over a gap in its enum", lambda d: d["enums"]["mode"].pop("2"),
     r"MODE_SET\)\.args\[0\] \(mode\): range \[1, 4\] includes 2, which is not a value of enum 'mode'"),
    ("missing enum", lambda d: _cmd(d, "MODE_SET")["args"][0].update(enum="modes"),
     r"enum 'modes' is not in enums"),
    ("default outside range", lambda d: d["parameters"][0].update(default=500),
     r"parameters\[0\] \(max_speed_mph\): default 500 outside range \[1, 200\]"),
    ("duplicate parameter id", lambda d: d["parameters"][1].update(id=1),
     r"duplicate parameter id 1"),
    ("template names unknown arg", lambda d: d["events"][0].update(message="boot {nope}"),
     r"events\[0\] \(BOOT\): message template names \{nope\}"),
    ("duplicate event id", lambda d: d["events"][1].update(id=1), r"duplicate event id 1"),
    ("bad severity", lambda d: d["events"][0].update(severity="fatal"), r"unknown severity 'fatal'"),
    ("duplicate hk parameter", lambda d: d["housekeeping"][0]["parameters"].append({"name": "mode", "type": "u8"}),
     r"duplicate parameter name 'mode'"),
    ("missing section", lambda d: d.pop("events"), r"missing top-level key 'events'"),
    ("tc arg not last", lambda d: _cmd(d, "TT_INSERT")["args"].reverse(), r"'tc' argument must be the last"),
    ("bad scid", lambda d: d["mission"].update(scid=5000), r"mission\.scid: expected an integer 0\.\.1023"),
    ("duplicate enum name", lambda d: d["enums"]["mode"].update({"9": "SAFE"}), r"duplicate enum name 'SAFE'"),
    ("bad calibration", lambda d: d["housekeeping"][0]["parameters"][6].update(calibration={"poly": []}),
     r"calibration must be"),
]


@pytest.mark.parametrize(("label", "edit", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_dictionaries_are_rejected_with_a_clear_message(
    label: str, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(DictionaryError, match=message):
        Dictionary.from_json(_broken(edit), source="dictionary.json")


def test_broken_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "d.json"
    bad.write_text("{nope")
    with pytest.raises(DictionaryError, match=r"d.json: not JSON: .* line 1"):
        load_dictionary(bad)
    with pytest.raises(DictionaryError, match="cannot read dictionary"):
        load_dictionary(tmp_path / "missing.json")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(RAW))
    assert load_dictionary(good).short_hash() == D.short_hash()


def test_short_hash_is_sha256_of_canonical_bytes() -> None:
    canon = json.dumps(RAW, sort_keys=True, separators=(",", ":")).encode()
    assert canonical_bytes(RAW) == canon == D.canonical_bytes()
    assert short_hash(RAW) == int.from_bytes(hashlib.sha256(canon).digest()[:4], "big") == D.short_hash()
    assert short_hash(canon) == D.short_hash()
    changed = _broken(lambda d: d["parameters"][0].update(default=199))
    assert short_hash(changed) != D.short_hash()


def test_encode_command_with_units_enums_and_ranges() -> None:
    assert D.encode_command("DRIVE_DISTANCE", {"distance_m": "12.5 m", "speed_mph": 150}) == (
        200, 2, struct.pack(">ff", 12.5, 150),
    )
    assert encode_command("mode_set", {"mode": "DRIVE"}) == (200, 1, b"\x03")
    assert D.encode_command("MODE_SET", {"mode": 2})[2] == b"\x02"
    assert D.encode_command("PING") == (17, 1, b"")
    assert D.encode_command("TIME_ADJUST", {"delta_ms": "-5000"})[2] == struct.pack(">i", -5000)
    with pytest.raises(DictionaryError, match=r"^DRIVE_DISTANCE: speed_mph=500 out of range \[1, 200\] m/h$"):
        D.encode_command("DRIVE_DISTANCE", {"distance_m": 1, "speed_mph": 500})
    with pytest.raises(DictionaryError, match=r"mode=0 out of range \[1, 4\]"):
        D.encode_command("MODE_SET", {"mode": "BOOT"})
    with pytest.raises(DictionaryError, match="missing argument speed_mph"):
        D.encode_command("DRIVE_DISTANCE", {"distance_m": 1})
    with pytest.raises(DictionaryError, match="unknown argument speeed"):
        D.encode_command("TURN", {"angle_deg": 1, "speeed": 3})
    with pytest.raises(DictionaryError, match="distance_m='ten' is not a number m$"):
        D.encode_command("DRIVE_DISTANCE", {"distance_m": "ten", "speed_mph": 1})
    with pytest.raises(DictionaryError, match="must be a whole number"):
        D.encode_command("WHEEL_DISABLE", {"wheel": 2.5})
    with pytest.raises(DictionaryError, match="no command named 'FLY'"):
        D.encode_command("FLY")
    with pytest.raises(TypeError):
        encode_command(RAW, "PING")  # type: ignore[arg-type]


def test_tt_insert_carries_a_whole_tc_packet() -> None:
    inner = build_tc_packet(1, 3, 200, 5)
    svc, sub, data = D.encode_command("TT_INSERT", {"release_s": 1000, "command": inner.hex()})
    assert (svc, sub, data) == (11, 4, struct.pack(">I", 1000) + inner)
    decoded = D.decode_command(11, 4, data)
    assert decoded.value("command").raw == inner.hex()
    with pytest.raises(DictionaryError, match="not a valid TC packet"):
        D.encode_command("TT_INSERT", {"release_s": 1, "command": b"\x00\x01"})


@given(st.floats(-200, 200, width=32), st.floats(1, 200, width=32))
def test_command_arguments_round_trip(distance: float, speed: float) -> None:
    svc, sub, data = D.encode_command("DRIVE_DISTANCE", {"distance_m": distance, "speed_mph": speed})
    decoded = D.decode_command(svc, sub, data)
    assert decoded.name == "DRIVE_DISTANCE"
    assert decoded.value("distance_m").value == distance and decoded.value("speed_mph").value == speed


def test_decode_command_errors() -> None:
    with pytest.raises(DictionaryError, match="no command 99/1"):
        D.decode_command(99, 1, b"")
    with pytest.raises(DictionaryError, match=r"inside speed_mph \(f32 at octet 4\)"):
        D.decode_command(200, 2, bytes(6))
    with pytest.raises(DictionaryError, match="2 octets of application data left"):
        D.decode_command(200, 5, b"\0\0")


def test_decode_hk_with_calibration_enums_and_struct_format() -> None:
    hk = D.housekeeping[1]
    raws: list[int] = []
    for p in hk.parameters:
        raws.append(3 if p.name == "mode" else 1500 if p.name == "x_m" else 1)
    data = struct.pack(D.hk_struct_format(1), 1, *raws)
    decoded = D.decode_tm(3, 25, data)
    assert decoded.kind == "hk" and decoded.name == "HK_ROVER" and decoded.id == 1
    assert decoded.value("mode").value == "DRIVE"
    x = decoded.value("x_m")
    assert (x.raw, x.value, x.unit) == (1500, 1.5, "m")
    with pytest.raises(DictionaryError, match="sid 1"):
        D.decode_tm(3, 25, data[:-1])
    with pytest.raises(DictionaryError, match="no housekeeping packet with sid 9"):
        D.decode_tm(3, 25, b"\x00\x09")


def test_decode_events_verification_ping_and_parameters() -> None:
    ev = D.decode_tm(5, 4, struct.pack(">HBB", 3, 2, 2))
    assert (ev.name, ev.severity, ev.message) == ("WHEEL_FAULT", "high", "wheel 2 failed: STALL")
    auth = D.decode_tm(5, 3, struct.pack(">HBHI", 16, 3, 1, 77))
    assert auth.message == "command frame rejected: REPLAYED (SPI 1, seq 77)"
    v = D.decode_tm(1, 8, bytes.fromhex("1801c016") + struct.pack(">H", 6))
    assert (v.name, v.value("failure").value, v.value("tc_seq_count").value) == ("COMPLETION_FAILED", "BUSY", 22)
    assert D.decode_tm(1, 1, bytes.fromhex("1801c016")).message == "TC apid 1 seq 22 accepted"
    assert D.decode_tm(17, 2, b"").kind == "ping"
    p = D.decode_tm(20, 2, struct.pack(">Hf", 3, 20.0))
    assert (p.name, p.value("tilt_limit_deg").value, p.value("tilt_limit_deg").unit) == ("tilt_limit_deg", 20.0, "deg")
    assert D.decode_tm(42, 1, b"\x01").kind == "unknown"
    with pytest.raises(DictionaryError, match="no event with id 999"):
        D.decode_tm(5, 1, struct.pack(">H", 999))
    with pytest.raises(DictionaryError, match="verification report 1/1 is 4 octets"):
        D.decode_tm(1, 1, b"\x00")


@given(pst.command_values(D))
def test_every_command_round_trips_through_its_arguments(drawn: tuple[str, dict[str, Any]]) -> None:
    name, values = drawn
    svc, sub, data = D.encode_command(name, values)
    decoded = D.decode_command(svc, sub, data)
    assert decoded.name == name
    for a in D.commands[name].args:
        got = decoded.value(a.name)
        want = values[a.name]
        if a.type in ("tc", "bytes"):
            assert got.raw == bytes(want).hex()
        elif a.enum is not None and isinstance(want, str):
            assert got.value == want
        else:
            assert got.raw == want


@given(st.data())
def test_hk_converters_give_value_ofs_values(data: st.DataObject) -> None:
    # decode_hk's precomputed per-field converters: the same Value (the same floating-point
    # result, the same rounding) as value_of, for whole and fractional raw numbers
    for hk in D.housekeeping.values():
        for a in hk.parameters:
            raw = data.draw(st.one_of(st.integers(-(2**31), 2**32), st.floats(-1e6, 1e6), st.just(3.0)))
            if a.enum is not None:
                raw = int(raw)
            got, want = D.converter(a)(raw), D.value_of(a, raw)
            assert got == want and type(got.value) is type(want.value), (a.name, raw, got, want)


@given(st.data())
def test_decode_hk_gives_value_ofs_values_field_by_field(data: st.DataObject) -> None:
    # decode_hk's generated decoder against value_of on the unpacked fields of random reports
    for sid, hk in D.housekeeping.items():
        layout = struct.Struct(hk.struct_format)
        payload = sid.to_bytes(2, "big") + data.draw(st.binary(min_size=layout.size - 2, max_size=layout.size - 2))
        raws = layout.unpack(payload)[1:]
        if any(isinstance(r, float) and r != r for r in raws):
            continue  # a NaN is never equal to itself
        got = D.decode_hk(payload).values
        want = tuple(D.value_of(a, r) for a, r in zip(hk.parameters, raws, strict=True))
        assert got == want
        assert [type(v.value) for v in got] == [type(v.value) for v in want]


def test_decode_hk_reuses_only_unchanged_fields() -> None:
    # the decoder keeps each whole-number field's last (raw, Value): a report that repeats a
    # field gets that Value back, a changed field a new one, and a field changed back its
    # own value again (never another report's)
    sid, hk = next(iter(D.housekeeping.items()))
    layout = struct.Struct(hk.struct_format)
    a = sid.to_bytes(2, "big") + bytes(range(layout.size - 2))
    b = a[:2] + bytes((x + 1) & 0xFF if i % 2 else x for i, x in enumerate(a[2:]))
    reports = [a, b, b, a]
    decoded = [D.decode_hk(p).values for p in reports]
    for p, got in zip(reports, decoded, strict=True):
        raws = layout.unpack(p)[1:]
        assert got == tuple(D.value_of(x, r) for x, r in zip(hk.parameters, raws, strict=True))
    whole = [i for i, x in enumerate(hk.parameters) if x.type != "f32"]
    assert all(decoded[1][i] is decoded[2][i] for i in whole)  # unchanged: the same Value
    assert any(decoded[0][i] != decoded[1][i] for i in whole)
