"""The rover's compact dictionary (firmware_py/dictionary.py) matches the ground's
(protocols/dictionary.py): same hash of the canonical bytes, same command formats,
ranges and enums, same HK and event layouts; and it fits the Pico heap."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_py.dictionary import (
    FAIL_BAD_ENUM,
    FAIL_BAD_LENGTH,
    FAIL_OUT_OF_RANGE,
    Dictionary,
    _members_py,
)
from protocols.dictionary import SEVERITIES, STRUCT_CODES, TC_TYPE, load_dictionary
from protocols.dictionary import Dictionary as GroundDictionary
from protocols.errors import DictionaryError
from protocols.pus import build_tc_packet

GROUND = load_dictionary()


def f32(x: float) -> float:
    return float(struct.unpack(">f", struct.pack(">f", x))[0])


@pytest.fixture(scope="module")
def canonical(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("flash") / "dictionary.json"
    p.write_bytes(GROUND.canonical_bytes())
    return p


@pytest.fixture(scope="module")
def fw(canonical: Path) -> Dictionary:
    return Dictionary(str(canonical))


def test_hash_is_the_ground_short_hash_of_the_bytes_loaded(fw: Dictionary, canonical: Path) -> None:
    assert fw.hash == GROUND.short_hash()


def test_hash_follows_the_file_bytes(tmp_path: Path) -> None:
    p = tmp_path / "dictionary.json"
    p.write_bytes(GROUND.canonical_bytes().replace(b'"version":1', b'"version":2'))
    assert Dictionary(str(p)).hash != GROUND.short_hash()


def _code(a: Any) -> str:
    """The struct code of one argument ("12s" for bytes(12))."""
    return f"{a.length}s" if a.type == "bytes" else STRUCT_CODES[a.type]


def test_every_command_matches_the_ground(fw: Dictionary) -> None:
    assert len(fw.commands()) == len(GROUND.commands)
    for cmd in GROUND.commands.values():
        entry = fw.command(cmd.service, cmd.subservice)
        assert entry is not None, cmd.name
        name, fmt, size, ranges, enums, tail = entry
        fixed = [a for a in cmd.args if a.type != TC_TYPE]
        assert name == cmd.name
        assert fmt == ">" + "".join(_code(a) for a in fixed)
        assert size == struct.calcsize(fmt)
        assert tail == any(a.type == TC_TYPE for a in cmd.args)
        for a, r, e in zip(fixed, ranges, enums, strict=True):
            if a.range is not None:
                want = (f32(a.range[0]), f32(a.range[1])) if a.type == "f32" else tuple(a.range)
                assert r == want, (cmd.name, a.name)
            assert e == (tuple(sorted(GROUND.enums[a.enum])) if a.enum else None)
    assert fw.command(99, 99) is None


def test_hk_event_parameter_and_failure_tables_match_the_ground(fw: Dictionary) -> None:
    for sid, hk in GROUND.housekeeping.items():
        assert fw.hk_format(sid) == hk.struct_format
        assert fw.hk_names(sid) == tuple(p.name for p in hk.parameters)
    for eid, ev in GROUND.events.items():
        fmt = ">H" + "".join(STRUCT_CODES[a.type] for a in ev.args)
        assert fw.event(ev.name) == (eid, SEVERITIES[ev.severity], fmt)
        assert fw.event_format(eid) == fmt
    for pid, p in GROUND.parameters.items():
        assert fw.params[pid] == (p.name, f32(p.range[0]), f32(p.range[1]), p.default)
    assert fw.failure == {name: code for code, name in GROUND.failure_codes.items()}
    assert fw.mission["scid"] == 171 and fw.mission["tm_apid"] == 32


def _ground_accepts(cmd_name: str, values: tuple[Any, ...]) -> bool:
    cmd = GROUND.command(cmd_name)
    fixed = [a for a in cmd.args if a.type != TC_TYPE]
    try:
        for a, v in zip(fixed, values, strict=True):
            if a.type != "bytes":  # any octets are a valid bytes argument
                GROUND.coerce(cmd_name, a, v)
    except DictionaryError:
        return False
    return True


@given(st.sampled_from(sorted(GROUND.commands)), st.data())
def test_check_accepts_exactly_what_the_ground_would_encode(fw: Dictionary, name: str, data: st.DataObject) -> None:
    cmd = GROUND.command(name)
    entry = fw.command(cmd.service, cmd.subservice)
    assert entry is not None
    raw = data.draw(st.binary(min_size=entry[2], max_size=entry[2]))
    tail = build_tc_packet(1, 5, 17, 1) if entry[5] else b""
    code, values = fw.check(entry, raw + tail, 0, len(raw) + len(tail))
    unpacked = struct.unpack(entry[1], raw)
    if _ground_accepts(name, unpacked):
        assert code == 0 and values == unpacked
    else:
        assert code in (FAIL_OUT_OF_RANGE, FAIL_BAD_ENUM)


@given(st.sampled_from(sorted(GROUND.commands)), st.data())
def test_ground_encoded_commands_pass_the_rover_check(fw: Dictionary, name: str, data: st.DataObject) -> None:
    cmd = GROUND.command(name)
    args: dict[str, Any] = {}
    for a in cmd.args:
        if a.type == TC_TYPE:
            args[a.name] = build_tc_packet(1, 9, 200, 5)
        elif a.type == "bytes":
            args[a.name] = data.draw(st.binary(min_size=a.length, max_size=a.length)).hex()
        elif a.enum is not None:
            lo, hi = a.range if a.range else (min(GROUND.enums[a.enum]), max(GROUND.enums[a.enum]))
            args[a.name] = data.draw(st.sampled_from([k for k in GROUND.enums[a.enum] if lo <= k <= hi]))
        elif a.type == "f32":
            lo, hi = a.range if a.range else (-1e30, 1e30)
            args[a.name] = data.draw(st.floats(lo, hi))  # the ground packs it as f32
        else:
            lo, hi = a.range if a.range else (0, 255)
            args[a.name] = data.draw(st.integers(int(lo), int(hi)))
    service, subservice, app = GROUND.encode_command(name, args)
    entry = fw.command(service, subservice)
    assert entry is not None
    code, values = fw.check(entry, app, 0, len(app))
    assert code == 0
    assert values == tuple(
        f32(args[a.name]) if a.type == "f32" else bytes.fromhex(args[a.name]) if a.type == "bytes" else args[a.name]
        for a in cmd.args
        if a.type != TC_TYPE
    )


def test_wrong_lengths_and_bad_values(fw: Dictionary) -> None:
    drive = fw.command(200, 2)
    assert drive is not None
    ok = struct.pack(">ff", 10.0, 100.0)
    assert fw.check(drive, ok, 0, 8) == (0, (10.0, 100.0))
    assert fw.check(drive, ok + b"\x00", 0, 9)[0] == FAIL_BAD_LENGTH
    assert fw.check(drive, ok, 0, 7)[0] == FAIL_BAD_LENGTH
    assert fw.check(drive, struct.pack(">ff", 10.0, 201.0), 0, 8)[0] == FAIL_OUT_OF_RANGE
    assert fw.check(drive, struct.pack(">ff", float("nan"), 100.0), 0, 8)[0] == FAIL_OUT_OF_RANGE
    param_set = fw.command(20, 3)
    assert param_set is not None
    assert fw.check(param_set, struct.pack(">Hf", 1, float("inf")), 0, 6)[0] == FAIL_OUT_OF_RANGE
    tt = fw.command(11, 4)
    assert tt is not None and tt[5]
    assert fw.check(tt, struct.pack(">I", 5), 0, 4)[0] == FAIL_BAD_LENGTH  # no packet after


def test_an_invalid_enum_value_inside_the_range_is_bad_enum(tmp_path: Path) -> None:
    raw = dict(GROUND.raw)
    raw["enums"] = dict(raw["enums"])
    raw["enums"]["mode"] = {k: v for k, v in raw["enums"]["mode"].items() if k != "3"}
    # The ground rejects a range that includes a value outside the enum: MODE_SET's
    # argument loses its range, so only the enum bounds it.
    raw["commands"] = [dict(c) for c in raw["commands"]]
    for c in raw["commands"]:
        if c["name"] == "MODE_SET":
            c["args"] = [{k: v for k, v in a.items() if k != "range"} for a in c["args"]]
    GroundDictionary.from_json(raw)  # still a valid dictionary
    p = tmp_path / "dictionary.json"
    p.write_bytes(GroundDictionary.from_json(raw).canonical_bytes())
    d = Dictionary(str(p))
    mode_set = d.command(200, 1)
    assert mode_set is not None
    assert mode_set[3] == (None,) and mode_set[4] == ((0, 1, 2, 4),)
    assert d.check(mode_set, b"\x03", 0, 1)[0] == FAIL_BAD_ENUM
    assert d.check(mode_set, b"\x05", 0, 1)[0] == FAIL_BAD_ENUM
    assert d.check(mode_set, b"\x02", 0, 1) == (0, (2,))


_MPY_SCRIPT = """
import gc
gc.collect()
before = gc.mem_free()
from firmware_py.dictionary import Dictionary
gc.collect()
after_import = gc.mem_free()
d = Dictionary({path!r})
gc.collect()
after_load = gc.mem_free()
print(d.hash, d.hk_format(1), d.command(200, 2)[1], d.event("BOOT")[2], len(d.commands()))
print(before - after_import, after_import - after_load)
e = d.command(200, 2)
again = None  # globals made before counting
a = 0
gc.collect()
gc.disable()
a = gc.mem_alloc()
again = d.command(200, 2)
a = gc.mem_alloc() - a
gc.enable()
code, values = d.check(again, b"\\x41\\x20\\x00\\x00\\x42\\xc8\\x00\\x00", 0, 8)
print(again is e, code, a, values)
"""


def test_loads_under_micropython_within_the_pico_heap(run_mpy: Callable[..., Any], canonical: Path, fw: Dictionary) -> None:
    out = run_mpy(_MPY_SCRIPT.format(path=str(canonical))).stdout.splitlines()
    h, hk, drive, boot, n = out[0].split()
    assert int(h) == GROUND.short_hash()
    assert (hk, drive, boot, int(n)) == (fw.hk_format(1), ">ff", ">HIHBI", len(GROUND.commands))
    code_bytes, table_bytes = (int(x) for x in out[1].split())
    # 64-bit unix port (objects about twice a Pico's): the packed tables take a few KB
    # (26 KB as dicts of tuples)
    assert table_bytes < 8 * 1024, table_bytes
    same, code, alloc, values = out[2].split(maxsplit=3)
    assert (same, code, values) == ("True", "0", "(10.0, 100.0)")
    # the last entry is kept: the same command again allocates nothing
    assert int(alloc) == 0, alloc


def test_loads_in_a_small_heap(run_mpy: Callable[..., Any], canonical: Path) -> None:
    """The parse is done one section at a time, so the peak stays small."""
    out = run_mpy(_MPY_SCRIPT.format(path=str(canonical)), heapsize="80K").stdout.splitlines()
    assert int(out[0].split()[0]) == GROUND.short_hash()


# JSON objects as the member scan meets them: nesting, and strings holding the scan's own
# delimiters, escaped quotes and backslashes, and non-ASCII.
_JSON_TEXT = st.text(alphabet=st.sampled_from('ab{}[]:,"\\ é\n'), max_size=8)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | _JSON_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_JSON_TEXT, inner, max_size=4),
    max_leaves=12,
)
_JSON_OBJECTS = st.dictionaries(_JSON_TEXT, _JSON_VALUES, max_size=6)

_MEMBERS_SCRIPT = """
import sys
from firmware_py import dictionary as d
scan = d.native_scan()
print(scan is not None)
for line in sys.stdin:
    raw = bytes.fromhex(line.strip())
    print(repr(d._members(memoryview(raw), scan)))
"""


@settings(max_examples=4, deadline=None)
@given(objects=st.lists(_JSON_OBJECTS, min_size=40, max_size=40))
def test_native_member_scan_finds_every_top_level_value_under_micropython(
    run_mpy: Callable[..., Any], canonical: Path, objects: list[dict[str, Any]]
) -> None:
    """The viper scan (what runs on a Pico) against the JSON each member came from."""
    import ast
    import json

    texts = [canonical.read_bytes()]
    for i, obj in enumerate(objects):
        compact = (",", ":") if i % 2 else (", ", ": ")  # the canonical form, and spaces
        texts.append(json.dumps(obj, sort_keys=True, separators=compact, ensure_ascii=bool(i % 3)).encode())
    out = run_mpy(_MEMBERS_SCRIPT, stdin="\n".join(t.hex() for t in texts) + "\n").stdout.splitlines()
    assert out[0] == "True"  # the native scan ran, not the Python pass compared with itself
    for raw, line in zip(texts, out[1:], strict=True):
        spans = ast.literal_eval(line)
        assert spans == _members_py(raw)
        whole = json.loads(raw)
        keys = [json.loads(f'"{k}"') for k, _, _ in spans]  # the keys as written, unescaped
        assert keys == list(whole)
        assert [json.loads(raw[a:b]) for _, a, b in spans] == list(whole.values())
