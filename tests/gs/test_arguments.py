"""Typed, unit-aware command arguments, and one-line errors for bad input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.cli import main
from hil.errors import FarsideError
from hil.gs.commanding import release_time
from hil.gs.mission import Mission
from hil.gs.shell import complete_words
from hil.gs.units import convert, parse_quantity

M = Mission.load()


def test_speeds_convert_to_the_dictionarys_metres_per_hour() -> None:
    v = M.parse_args("DRIVE_DISTANCE", ["distance_m=150cm", "speed_mph=0.05m/s"])
    assert v["distance_m"] == pytest.approx(1.5)
    assert v["speed_mph"] == pytest.approx(180.0)
    assert M.parse_args("DRIVE_DISTANCE", ["distance_m=1", "speed_mph=0.1km/h"])["speed_mph"] == pytest.approx(100.0)
    assert M.parse_args("TURN", ["angle_deg=0.5rad"])["angle_deg"] == pytest.approx(28.6478897)
    assert M.parse_args("HIBERNATE", ["wake_after_s=2h"])["wake_after_s"] == 7200


def test_arguments_encode_big_endian_in_dictionary_order() -> None:
    v = M.parse_args("DRIVE_DISTANCE", ["speed_mph=100", "distance_m=-2.5"])
    assert M.encode_args("DRIVE_DISTANCE", v) == struct.pack(">ff", -2.5, 100.0)
    assert M.encode_args("MODE_SET", M.parse_args("MODE_SET", ["mode=standby"])) == bytes([2])


@given(x=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_unit_conversion_round_trips(x: float) -> None:
    assert convert(convert(x, "km/h", "m/h"), "m/h", "km/h") == pytest.approx(x, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["DRIVE_DISTANCE", "distance_m=1", "speed_mph=5kg"], "unknown unit 'kg'"),
        (["DRIVE_DISTANCE", "distance_m=1", "speed_mph=5deg"], "unit mismatch: expected a speed (m/h), got deg"),
        (["DRIVE_DISTANCE", "distance_m=1", "speed_mph=5mph"], "ambiguous"),
        (["DRIVE_DISTANCE", "distance_m=1", "speed_mph=5km/h"], "expected 1..200 m/h, got 5000"),
        (["DRIVE_DISTANCE", "distance_m=1", "speed_mph=300"], "expected 1..200 m/h, got 300"),
        (["DRIVE_DISTANCE", "distance_m=1"], "missing argument(s) speed_mph"),
        (["DRIVE_DISTANCE", "distance_m=1", "speed_mph=5", "heading=3"], "unknown argument 'heading'"),
        (["DRIVE_DISTANCE", "distance_m=one", "speed_mph=5"], "DRIVE_DISTANCE.distance_m: expected a number"),
        (["DRIVE_DISTANCE", "distance_m=1", "distance_m=2", "speed_mph=5"], "given twice"),
        (["WHEEL_DISABLE", "wheel=1.5"], "expected an integer (u8)"),
        (["WHEEL_DISABLE", "wheel=7"], "expected 1..6, got 7"),
        (["WHEEL_DISABLE", "7"], "expected ARG=VALUE"),
        (["MODE_SET", "mode=FLYING"], "MODE_SET.mode: expected one of SAFE, STANDBY, DRIVE, HIBERNATE, got 'FLYING'"),
        (["PING", "x=1"], "unknown argument 'x' (takes no arguments)"),
        (["WARP_DRIVE"], "unknown command 'WARP_DRIVE'"),
    ],
)
def test_bad_input_is_one_line_exit_2_before_the_link_is_touched(
    words: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # the link does not exist: argument errors must come first
    rc = main(["gs", "send", *words, "--link", "/dev/no-such-port"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("farside: error: ") and err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err


def test_link_down_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gs", "send", "PING", "--link", "/dev/no-such-port"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("farside: error: link /dev/no-such-port: cannot open") and err.count("\n") == 1
    assert main(["gs", "send", "PING", "--link", "socket://127.0.0.1:9"]) == 2
    assert "cannot open" in capsys.readouterr().err


def test_no_link_given_is_an_error(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FARSIDE_LINK", raising=False)
    assert main(["gs", "send", "PING"]) == 2
    assert "no link: give --link" in capsys.readouterr().err


def test_release_times() -> None:
    assert release_time("12345", None) == 12345
    assert release_time("2019-01-03T03:26:00Z", None) == 3600
    with pytest.raises(FarsideError, match="needs the rover's clock"):
        release_time("+30s", None)
    with pytest.raises(FarsideError, match="outside the rover's clock range"):
        release_time("2010-01-01T00:00:00Z", None)
    assert parse_quantity("0x10") == (16, None)


def test_tab_completion_of_commands_arguments_enums_and_units() -> None:
    assert complete_words(M, [], "DRI") == ["DRIVE_DISTANCE", "DRIVE_ARC"]
    assert complete_words(M, ["DRIVE_DISTANCE"], "") == ["distance_m=", "speed_mph="]
    assert complete_words(M, ["DRIVE_DISTANCE", "distance_m=1"], "") == ["speed_mph="]
    assert complete_words(M, ["MODE_SET"], "mode=ST") == ["mode=STANDBY"]
    assert "speed_mph=5km/h" in complete_words(M, ["DRIVE_DISTANCE"], "speed_mph=5")


def test_dict_browser_shows_units_ranges_and_limits(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # the browser fits the terminal: a wide one shows every column whole
    assert main(["gs", "dict", "show", "DRIVE_DISTANCE"]) == 0
    out = capsys.readouterr().out
    assert "speed_mph" in out and "m/h" in out and "1 .. 200" in out
    assert main(["gs", "dict", "telemetry"]) == 0
    out = capsys.readouterr().out
    assert "pitch_deg" in out and "yellow -15..15" in out
    assert main(["gs", "dict", "commands"]) == 0
    assert "TT_INSERT" in capsys.readouterr().out
    assert main(["gs", "dict", "events"]) == 0
    assert "HAZARD_TILT" in capsys.readouterr().out
    assert main(["gs", "dict", "show", "NOPE"]) == 2
    assert capsys.readouterr().err.startswith("farside: error: dict show: nothing named")


def _numeric_args(name: str) -> dict[str, int | float]:
    """Each argument of a command at the low end of its range (else its enum's first value;
    a 'bytes' argument as hex)."""
    pd = M.pd
    out: dict[str, int | float] = {}
    for a in pd.command(name).args:
        if a.type == "bytes":
            out[a.name] = "ab" * (a.length or 0)  # type: ignore[assignment]  # hex on the CLI
        elif a.range is not None:
            out[a.name] = a.range[0]
        elif a.enum is not None:
            out[a.name] = min(pd.enums[a.enum])
        else:
            out[a.name] = 0
    return out


@pytest.mark.parametrize("name", [c.name for c in M.commands_by_name.values() if all(a.type != "tc" for a in c.args)])
def test_ground_commands_are_encoded_by_the_protocols_dictionary(name: str) -> None:
    from protocols.dictionary import load_dictionary

    values = _numeric_args(name)
    typed = M.parse_args(name, [f"{k}={v}" for k, v in values.items()])
    assert M.encode_command(name, typed) == load_dictionary().encode_command(name, values)


def test_enum_argument_by_name_or_number_is_range_checked_by_the_dictionary() -> None:
    # BOOT is a mode the rover enters by itself: MODE_SET's range (1..4) leaves it out, and the
    # message names the modes it allows rather than their numbers
    for word in ("mode=BOOT", "mode=0"):
        with pytest.raises(FarsideError, match=r"^MODE_SET\.mode: expected one of SAFE, STANDBY, DRIVE, HIBERNATE, got '(BOOT|0)'$"):
            M.parse_args("MODE_SET", [word])
    assert M.parse_args("MODE_SET", ["mode=2"]) == M.parse_args("MODE_SET", ["mode=standby"]) == {"mode": 2}
