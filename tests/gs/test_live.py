"""The ground station against the rover (CPython firmware, sim HAL) through a pty.

Tests run in file order on one session: each command outcome, time tags,
procedures, and last the archive of everything, exported and replayed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.errors import FarsideError
from hil.gs.api import CheckFailed, GroundApi, equal_to, greater_than
from hil.gs.archive import KIND_TC, KIND_TM, read_records
from hil.gs.commanding import rover_now
from hil.gs.export import decode_archive
from hil.gs.mission import Mission
from hil.gs.procedure import StepResult, run_procedure
from hil.gs.replay import Replay
from hil.gs.session import (
    EXIT_COMPLETION_FAILED,
    EXIT_REJECTED,
    EXIT_START_FAILED,
    EXIT_TIMEOUT,
    Session,
    VerificationFailed,
)

M = Mission.load()


@pytest.fixture(scope="module")
def session(rover: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    s = Session.open(rover, M, archive=tmp_path_factory.mktemp("arch") / "session")
    try:
        s.check_dictionary(timeout=15)
        yield s
    finally:
        s.close()


@pytest.fixture()
def gs(session: Session) -> GroundApi:
    api = GroundApi(session.state, session, default_timeout=20)
    api.clear_histories()
    return api


def test_ping_is_accepted_started_and_completed_over_cop1(gs: GroundApi, session: Session) -> None:
    pings = session.state.pings
    reps = gs.send_and_assert_command("PING")
    assert [r.stage for r in reps] == ["accepted", "started", "completed"]
    assert session.state.pings == pings + 1
    assert session.tracks[-1].fop is not None and session.tracks[-1].fop.kind.value == "AD"
    assert session.state.link.clcw is not None and session.state.link.clcw.lockout is False


def test_parameter_outside_its_range_is_rejected_with_exit_3(gs: GroundApi) -> None:
    with pytest.raises(VerificationFailed, match=r"rejected \(OUT_OF_RANGE\)") as exc:
        gs.send_and_assert_command("PARAM_SET", {"param_id": 1, "value": 500})
    assert exc.value.exit_code == EXIT_REJECTED


def test_a_drive_outlasting_the_timeout_exits_6_then_stop(gs: GroundApi, session: Session) -> None:
    track = gs.send_command("DRIVE_DISTANCE", ["distance_m=0.5", "speed_mph=200"])
    with pytest.raises(VerificationFailed, match="timed out after 0.5 s waiting for 'completed'") as exc:
        session.wait_verification(track, 0.5)
    assert exc.value.exit_code == EXIT_TIMEOUT
    assert [r.stage for r in session.reports(track)] == ["accepted", "started"]
    gs.send_and_assert_command("STOP")
    with pytest.raises(VerificationFailed) as exc2:
        session.wait_verification(track, 10)
    assert exc2.value.exit_code == EXIT_COMPLETION_FAILED
    gs.await_mode("STANDBY", timeout=10)


def test_time_tagged_command_is_released_by_the_rover(gs: GroundApi, session: Session) -> None:
    gs.await_telemetry("rover_time_s", timeout=5)
    at = int(rover_now(session.state)) + 2
    reps = session.wait_verification(gs.send_command("PING", at=at), 10)
    assert [r.stage for r in reps] == ["accepted", "started", "completed"]
    ev = gs.await_event("TT_RELEASED", timeout=10)
    assert ev.args["service"] == 17 and ev.args["release_s"] == at


def test_plain_procedure_runs_and_stops_at_the_first_failed_check(gs: GroundApi, session: Session, tmp_path: Path) -> None:
    ok = tmp_path / "ok.proc"
    ok.write_text("# a check-out\nsend PING\nawait battery_pct > 0 timeout=5\ncheck mode == STANDBY\nwait 0.1\n")
    seen: list[StepResult] = []
    run_procedure(ok, gs, seen.append)
    assert [r.ok for r in seen] == [True, True, True, True]
    bad = tmp_path / "bad.proc"
    bad.write_text("send PING\ncheck battery_pct > 1000\nsend MODE_SET mode=SAFE\n")
    seen.clear()
    with pytest.raises(CheckFailed, match=r"bad.proc:2: `check battery_pct > 1000` failed: telemetry battery_pct: expected > 1000, latest is") as exc:
        run_procedure(bad, gs, seen.append)
    assert exc.value.exit_code == 1
    assert [r.ok for r in seen] == [True, False]
    assert session.state.mode == "STANDBY"  # the step after the failure never ran
    typo = tmp_path / "typo.proc"
    typo.write_text("send PING\nsend DRIVE_DISTANCE distance_m=1 speed_mph=9000\n")
    with pytest.raises(FarsideError, match="typo.proc:2"):
        run_procedure(typo, gs, seen.append)  # checked before anything is sent


def test_python_procedure_uses_the_fprime_style_api(gs: GroundApi, tmp_path: Path) -> None:
    proc = tmp_path / "checkout.py"
    proc.write_text(
        "def run(gs):\n"
        "    gs.send_and_assert_command('PING', timeout=10)\n"
        "    gs.await_telemetry('battery_pct', greater_than(0), timeout=5)\n"
        "    ev = gs.send_and_await_event('WHEEL_DISABLE', {'wheel': 3}, 'WHEEL_ISOLATED', timeout=10)\n"
        "    assert ev.args['wheel'] == 3, ev\n"
        "    gs.send_and_assert_command('WHEEL_ENABLE', ['wheel=3'])\n"
        "    gs.assert_event('WHEEL_ENABLED')\n"
    )
    run_procedure(proc, gs, lambda r: None)
    assert gs.await_telemetry("wheel3_state", equal_to("OK"), 5) == "OK"
    assert gs.await_telemetry("battery_pct", greater_than(0), 5) > 0


def test_a_hazard_fails_the_drive_at_completion_with_exit_5(gs: GroundApi) -> None:
    # a rock 0.5 m ahead of the front axle: inside the hazard camera's 0.3-3.0 m field
    gs.send_and_assert_command("SIM_INJECT", ["fault=ROCK_AHEAD_M", "wheel=0", "value=0.5"])
    with pytest.raises(VerificationFailed, match=r"completion failed \(HAZARD\)") as exc:
        gs.send_and_assert_command("DRIVE_DISTANCE", {"distance_m": "1m", "speed_mph": "0.05m/s"})
    assert exc.value.exit_code == EXIT_COMPLETION_FAILED
    assert gs.assert_event("HAZARD_OBSTACLE").args["height_mm"] > 0
    assert gs.assert_event("DRIVE_ABORTED").message.startswith("drive aborted (OBSTACLE)")


def test_a_drive_that_cannot_start_exits_4(gs: GroundApi, session: Session) -> None:
    # two of the left side's three wheels off: the rover accepts a drive but cannot start it
    for wheel in (1, 2):
        gs.send_and_assert_command("WHEEL_DISABLE", {"wheel": wheel})
    try:
        with pytest.raises(VerificationFailed, match=r"TURN .*start failed \(WHEEL_UNAVAILABLE\)") as exc:
            gs.send_and_assert_command("TURN", {"angle_deg": 10})
        assert exc.value.exit_code == EXIT_START_FAILED
        assert [r.stage for r in session.reports(session.tracks[-1])] == ["accepted", "start_failed"]
    finally:
        for wheel in (1, 2):
            gs.send_and_assert_command("WHEEL_ENABLE", {"wheel": wheel})
    gs.send_and_assert_command("TURN", {"angle_deg": 1})  # the wheels back: it starts and completes


def test_archive_export_and_replay_reproduce_what_was_received(session: Session) -> None:
    time.sleep(1.2)  # one more HK
    session.close()
    state = session.state
    assert session.archive is not None
    folder = session.archive.folder
    recs = list(read_records(folder))
    assert sum(r.kind == KIND_TM for r in recs) == state.link.frames_ok
    assert sum(r.kind == KIND_TC for r in recs) == state.link.tc_frames_sent
    tables = decode_archive(M, folder)
    hk = tables["hk_rover"]
    assert len(hk) == state.hk_count
    tc = tables["tc_sent"]
    assert len(tc) == state.link.tc_frames_sent
    commands = tc.columns["command"].tolist()
    assert {"PING", "PARAM_SET", "DRIVE_DISTANCE", "STOP", "TT_INSERT"} <= set(commands)
    assert set(tc.columns["frame_type"].tolist()) >= {"AD", "BC"}
    seqs = tc.columns["sdls_seq"].tolist()
    assert all(b >= a for a, b in zip(seqs, seqs[1:], strict=False))  # new frames count up; retransmissions repeat
    assert "value=500.0" in tc.columns["args"][commands.index("PARAM_SET")]
    for name, value in state.hk.items():
        got = hk.labels(name)[-1]
        assert got == pytest.approx(value) if isinstance(value, float) else got == value, name
    replay = Replay(folder, M, speed=0)
    replay.run()
    assert replay.error is None
    assert replay.state.hk_count == state.hk_count
    assert replay.state.hk == state.hk
    assert [e.message for e in replay.state.events] == [e.message for e in state.events]
    assert replay.state.link.tc_frames_sent == state.link.tc_frames_sent
