"""`farside gs` on the command line against the rover on a pty; and a port that vanishes."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from hil.cli import main
from hil.gs.archive import KIND_LINK, read_records
from hil.gs.export import decode_archive
from hil.gs.mission import Mission
from hil.gs.session import Session
from tests.gs.conftest import stop
from tests.gs.rover_pty import start_rover

M = Mission.load()


@pytest.fixture()
def fs(rover: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def run(*args: str) -> tuple[int, str, str]:
        rc = main(["gs", *args, "--link", rover, "--archive-root", str(tmp_path / "archive")]
                  if args[0] not in ("export", "plot", "replay") else ["gs", *args])
        out, err = capsys.readouterr()
        return rc, out, err

    return run


def test_send_prints_the_stages_and_exits_0(fs) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = fs("send", "PING", "--timeout", "10")
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[-1] == "PING: accepted, started, completed"
    stages = [ln.split()[0] for ln in lines[:-1]]
    assert stages == ["QUEUED", "SENT", "ACCEPTED", "STARTED", "COMPLETED"]
    elapsed = [float(ln.split()[1]) for ln in lines[:-1]]
    assert elapsed == sorted(elapsed) and elapsed[0] == 0.0
    rc, out, err = fs("send", "PING", "--timeout", "10", "--quiet")
    assert (rc, out, err) == (0, "PING: accepted, started, completed\n", "")


def test_send_rejected_exits_3_with_one_line(fs) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = fs("send", "PARAM_SET", "param_id=3", "value=45", "--timeout", "10")
    assert rc == 3
    assert err == "farside: error: PARAM_SET param_id=3 value=45: rejected (OUT_OF_RANGE)\n"


def test_dictionary_mismatch_refuses_to_command_unless_forced(fs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = json.loads(Path(M.path or "").read_text())
    d["commands"][0]["description"] = "a different dictionary"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(d))
    rc, out, err = fs("send", "PING", "--dictionary", str(other))
    assert rc == 2 and out == ""
    assert err.startswith(f"farside: error: dictionary mismatch: rover has {M.hash:08x}, ground has ")
    assert "use --force" in err and err.count("\n") == 1
    rc, out, err = fs("send", "PING", "--dictionary", str(other), "--force")
    assert rc == 0 and "completed" in out


def test_watch_once_shows_mode_housekeeping_and_link(fs) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = fs("watch", "--once", "--seconds", "1.5")
    assert rc == 0, err
    assert "MODE STANDBY" in out
    assert "battery_pct" in out and "UP /dev/pts/" in out
    assert "CLCW" in out and "V(R)" in out


def test_run_procedure_exit_codes(fs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ok = tmp_path / "ok.proc"
    ok.write_text("send PING\nawait mode == STANDBY timeout=5\n")
    rc, out, err = fs("run", str(ok))
    assert rc == 0, err
    assert "procedure ok.proc: all steps passed" in out
    bad = tmp_path / "bad.proc"
    bad.write_text("check mode == HIBERNATE\nsend PING\n")
    rc, out, err = fs("run", str(bad))
    assert rc == 1
    assert "FAIL bad.proc:1: check mode == HIBERNATE" in out
    assert err == "farside: error: bad.proc:1: `check mode == HIBERNATE` failed: telemetry mode: expected == HIBERNATE, latest is 'STANDBY'\n"


def test_traverse_from_a_live_archive_marks_the_wheel_fault(fs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert fs("send", "DRIVE_DISTANCE", "distance_m=0.05", "speed_mph=200", "--timeout", "20")[0] == 0
    assert fs("send", "SIM_INJECT", "fault=JAM", "wheel=2", "value=0")[0] == 0
    rc, out, err = fs("send", "DRIVE_DISTANCE", "distance_m=0.15", "speed_mph=200", "--timeout", "30")
    # five healthy wheels finish the drive; the jammed one is reported
    assert rc == 0, (out, err)
    assert out.endswith("accepted, started, completed\n"), out
    assert fs("send", "SIM_INJECT", "fault=CLEAR", "wheel=2", "value=0")[0] == 0
    sessions = sorted((tmp_path / "archive").iterdir())
    tables = decode_archive(M, sessions[-2])
    events = tables["events"].columns["event"].tolist()
    assert "WHEEL_FAULT" in events, events
    out_png = tmp_path / "t.png"
    rc, out, err = fs("plot", str(sessions[-2]), "--traverse", "--out", str(out_png))
    assert rc == 0, err
    assert out_png.read_bytes()[:4] == b"\x89PNG"
    rc, out, err = fs("export", str(sessions[-2]), "--format", "parquet", "--out", str(tmp_path / "pq"))
    assert rc == 0 and "hk_rover:" in out and "events:" in out


def test_session_survives_the_port_vanishing_and_coming_back(tmp_path: Path) -> None:
    link = tmp_path / "rover-link"  # like /dev/serial/by-id/...: a name that outlives the device
    proc, path = start_rover(tmp_path / "rover")
    os.symlink(path, link)
    s = Session.open(str(link), M, archive=tmp_path / "arch")
    try:
        s.check_dictionary(15)
        assert [r.stage for r in s.wait_verification(s.send_command("PING"), 10)][-1] == "completed"
        frames_before = s.state.link.frames_ok
        stop(proc)  # the board goes away (USB re-enumeration, power cycle)
        deadline = time.monotonic() + 10
        while s.state.link.up and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not s.state.link.up
        proc, path = start_rover(tmp_path / "rover")  # same flash: it boots again
        os.unlink(link)
        os.symlink(path, link)
        deadline = time.monotonic() + 15
        while s.state.link.reconnects < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s.state.link.reconnects >= 1 and s.state.link.up
        reps = s.wait_verification(s.send_command("PING"), 15)
        assert reps[-1].stage == "completed"
        assert s.state.link.frames_ok > frames_before
    finally:
        s.close()
        stop(proc)
    recs = list(read_records(tmp_path / "arch"))
    ups = [r.json()["up"] for r in recs if r.kind == KIND_LINK]
    assert ups[:3] == [True, False, True]
    hk = decode_archive(M, tmp_path / "arch")["hk_rover"]
    assert sorted(set(hk.columns["boot_count"].tolist())) == [1, 2]  # both boots archived


def test_plot_from_a_live_session_and_replay_into_a_procedure(rover: str, tmp_path: Path) -> None:
    rc = main(["gs", "plot", "-p", "battery_pct", "-p", "mode", "--seconds", "2.5", "--out", str(tmp_path / "live.png"),
               "--link", rover, "--archive-root", str(tmp_path / "archive")])
    assert rc == 0
    assert (tmp_path / "live.png").read_bytes()[:4] == b"\x89PNG"
    session = sorted((tmp_path / "archive").iterdir())[-1]
    proc = tmp_path / "replayed.proc"
    proc.write_text("await battery_pct > 0 timeout=10\ncheck mode == STANDBY\n")
    rc = main(["gs", "replay", str(session), "--speed", "4", "--procedure", str(proc)])
    assert rc == 0
    proc.write_text("await mode == HIBERNATE timeout=1\n")
    assert main(["gs", "replay", str(session), "--speed", "4", "--procedure", str(proc)]) == 6


def test_bypass_frames_and_a_time_tag_from_the_command_line(fs) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = fs("send", "PING", "--bd", "--quiet")
    assert (rc, out) == (0, "PING: accepted, started, completed\n"), err
    rc, out, err = fs("send", "HK_REPORT_NOW", "sid=1", "--at", "+2s", "--until", "accepted")
    assert rc == 0, err
    last = out.splitlines()[-1]
    assert last.startswith("TT_INSERT release_s=") and "command=HK_REPORT_NOW: accepted" in last
    rc, out, err = fs("send", "PING", "--at", "yesterday")
    assert rc == 2 and err.startswith("farside: error: --at: expected rover seconds")


def test_ground_api_connect_is_the_front_door_for_tests(rover: str, tmp_path: Path) -> None:
    from hil.gs.api import GroundApi, greater_than

    with GroundApi.connect(rover, archive=tmp_path / "a", default_timeout=10) as gs:
        assert [r.stage for r in gs.send_and_assert_command("PING")][-1] == "completed"
        assert gs.await_telemetry("battery_pct", greater_than(0)) > 0
        assert gs.session is not None and gs.session.state.rover_dict_hash == M.hash


def test_shell_sends_and_reports_errors_in_one_line(rover: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hil.gs.shell import GsShell

    s = Session.open(rover, M, archive=tmp_path / "a")
    try:
        s.check_dictionary(15)
        with s.state.cond:  # the hash may come from a BOOT event before any HK
            s.state.cond.wait_for(lambda: s.state.hk_count > 0, timeout=5)
        sh = GsShell(s, timeout=10)
        sh.onecmd("send PING")
        sh.onecmd("send DRIVE_DISTANCE distance_m=1 speed_mph=5deg")
        sh.onecmd("tm mode")
        out = capsys.readouterr().out.splitlines()
        assert out[0] == "PING: accepted, started, completed"
        assert out[1] == "error: unit mismatch: expected a speed (m/h), got deg (angle)"
        assert re.fullmatch(r"mode = STANDBY  \(\d+\.\d s ago\)", out[2]), out[2]
        assert "speed_mph=" in sh.complete_send("", "send DRIVE_DISTANCE distance_m=1 ", 33, 33)
    finally:
        s.close()
