"""Operator habits: `gs watch` at 120x40 keeps its events pane and shows metres and degrees;
click's usage errors are one `farside: error:` line; enum arguments name their labels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hil.cli import main
from hil.gs.mission import Mission
from hil.gs.state import GroundState
from hil.gs.synth import frames_of
from hil.gs.watch import display_units, render_to_string
from tests.gs.test_export import TmPacketBuilder, _event, _hk_packet

ROOT = Path(__file__).resolve().parents[2]
M = Mission.load()


def _busy_state(n_events: int = 30) -> GroundState:
    state = GroundState(M)
    b = TmPacketBuilder(apid=M.tm_apid, clock=lambda: (100, 0))
    packets = [_hk_packet(b, mode=3, x_m=12.5, heading_deg=45, obstacle_mm=120, battery_pct=80, dict_hash=M.hash)]
    kinds: list[tuple[str, tuple[int, ...]]] = [
        ("DRIVE_COMPLETED", (1, 1002, 9001)),  # travelled_mm, heading_cdeg
        ("HAZARD_TILT", (2150, -1600)),  # pitch_cdeg, roll_cdeg
        ("HAZARD_OBSTACLE", (120, 450)),  # height_mm, distance_mm
        ("DRIVE_ABORTED", (2, 3456)),  # reason, travelled_mm
    ]
    for i in range(n_events):
        name, args = kinds[i % len(kinds)]
        packets.append(_event(b, name, *args))
    packets.append(_event(b, "MODE_CHANGE", 3, 2, 1))  # the latest
    for f in frames_of(M, packets, clcw=lambda: 0x01040205):
        state.on_frame(f, 1000.0)
    return state


def test_watch_fits_120_by_40_and_keeps_the_events_pane() -> None:
    screen = render_to_string(_busy_state(), width=120, now=1002.0, height=40)
    lines = screen.rstrip("\n").splitlines()
    assert len(lines) <= 40 and max(len(line) for line in lines) <= 120
    titles = [line.strip() for line in lines]
    assert "housekeeping" in titles and "events" in titles
    events_at = titles.index("events")
    shown = lines[events_at + 3:]  # title, header, rule, then one line per event
    assert len(shown) >= 6  # the pane keeps rows for events, newest first
    assert "MODE_CHANGE" in shown[0] and "mode DRIVE -> STANDBY (COMMAND)" in shown[0]
    # every housekeeping parameter is still on the screen
    for name in M.hk_parameters:
        assert name in screen, name
    # wider and taller terminals show more, narrower ones fewer column pairs
    tall = render_to_string(_busy_state(), width=160, now=1002.0, height=60)
    assert len(tall.splitlines()) > len(lines)


def test_watch_shows_metres_and_degrees_as_the_dictionary_calibrates() -> None:
    units = display_units(M)
    assert units["length"] == "m" and units["angle"] == "deg"  # from x_m, heading_deg's calibration
    screen = render_to_string(_busy_state(4), width=120, now=1002.0, height=40)
    assert "drive DISTANCE completed: 1.002 m, heading 90.01 deg" in screen
    assert "tilt hazard: pitch 21.5 deg roll -16 deg" in screen
    assert "obstacle 0.12 m high at 0.45 m" in screen
    assert "drive aborted (OBSTACLE) after 3.456 m" in screen
    assert "0.120 m" in screen  # HK obstacle_mm, raw mm
    assert " mm" not in screen and "cdeg" not in screen


@pytest.mark.parametrize("argv, expected", [
    (["mission", "--seed", "abc"],
     "farside: error: invalid value for '--seed': 'abc' is not a valid integer (see farside mission --help)"),
    (["gs", "send", "--bogus"],
     "farside: error: no such option '--bogus'; did you mean '--baud'? (see farside gs send --help)"),
    (["gs", "send"], "farside: error: missing argument 'COMMAND' (see farside gs send --help)"),
    (["nonsense"], "farside: error: no such command 'nonsense' (see farside --help)"),
    (["board", "start", "--pace", "slow"],
     "farside: error: invalid value for '--pace': 'slow' is not one of 'realtime', 'free' (see farside board start --help)"),
])
def test_usage_errors_are_one_house_style_line(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == expected + "\n"


def test_seed_abc_from_the_shell_is_one_line_exit_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "hil.cli", "mission", "--seed", "abc"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "farside: error: invalid value for '--seed': 'abc' is not a valid integer (see farside mission --help)"
    ]


def test_a_bare_group_still_shows_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gs"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Usage: farside gs") and "send" in err


@pytest.mark.parametrize("word", ["mode=BOOT", "mode=0", "mode=FLYING"])
def test_enum_argument_errors_name_the_allowed_labels(word: str, capsys: pytest.CaptureFixture[str]) -> None:
    # checked before any link is opened: no --link needed
    assert main(["gs", "send", "MODE_SET", word]) == 2
    err = capsys.readouterr().err
    value = word.split("=", 1)[1]
    assert err == f"farside: error: MODE_SET.mode: expected one of SAFE, STANDBY, DRIVE, HIBERNATE, got {value!r}\n"


def test_the_ground_holds_its_port_exclusively(rover: str, tmp_path: Path) -> None:
    from hil.errors import FarsideError
    from hil.flash.repl import PortBusyError, open_port
    from hil.gs.session import Session, open_link

    s = Session.open(rover, M, archive=tmp_path / "a")
    try:
        s.check_dictionary(15)
        with pytest.raises(FarsideError, match=f"^link {rover}: cannot open .*exclusively lock"):
            open_link(rover)
        with pytest.raises(PortBusyError, match=f"^port {rover} is busy"):
            open_port(rover)  # what `farside flash` and mpremote meet
    finally:
        s.close()
    open_link(rover).close()  # free again once the session has closed


def test_watch_loop_fits_each_screen_to_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    import hil.gs.watch as watch

    sizes: list[tuple[int, int | None]] = []
    real = watch.render

    def spy(snap, mission, now=None, width=140, height=None):  # type: ignore[no-untyped-def]
        sizes.append((width, height))
        return real(snap, mission, now, width, height)

    monkeypatch.setattr(watch, "render", spy)
    console = Console(file=io.StringIO(), width=120, height=40, force_terminal=True, color_system=None)
    ticks = iter(range(3))
    watch.watch_loop(_busy_state(), lambda: next(ticks, None) is None, refresh_hz=50, console=console)
    assert sizes and set(sizes) == {(120, 39)}  # one line left for Live's cursor
