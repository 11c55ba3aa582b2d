"""`farside mission`: the default mission runs, and its report agrees with its own archive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil.cli import main
from hil.mission.report import check_against_archive

# `farside mission` picks its own target (--target); these runs are the virtual default
pytestmark = [pytest.mark.hil, pytest.mark.farside_targets("virtual")]


def test_default_mission_report_matches_its_telemetry_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["mission", "--out", str(out), "--seed", "1"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["ok"] and s["scenario"] == "sortie" and s["relay"] == "queqiao"
    # the show: ramp, a wheel fault survived, a hazard, a relay outage with stored commands
    assert {f["kind"] for f in s["faults"]} == {"wheel jam", "obstacle", "relay outage"}
    assert s["faults_met"] == s["faults_survived_reported"] == 3
    # judged by the plant's truth: every fault survived (the wheel jam too: the test below)
    survived = {f["kind"]: f["survived"] for f in s["faults"]}
    assert survived["obstacle"] and survived["relay outage"]
    truth = s["truth"]
    assert truth["distance_m"] > 60
    # measured: +0.081 m over 67.6 m, the pose 0.058 m from the rover's estimate (it was +0.503 m
    # before the rover's estimate saw the slip of five wheels)
    assert abs(truth["distance_error_m"]) <= 0.2
    assert s["events"]["WHEEL_FAULT"] == 1 and s["events"]["HAZARD_OBSTACLE"] == 1
    assert s["events"]["TT_RELEASED"] == 3
    assert s["distance_m"] > 60
    assert s["rover_time_s"] > 1800
    for name in ("telemetry.png", "traverse.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every number the report states, re-derived from the archive alone
    a = check_against_archive(s)
    assert a["distance_m"] == pytest.approx(s["distance_m"], abs=0.002)
    assert a["hk_reports"] == s["hk_reports"]
    assert a["completed_reports"] == s["commands"]["completed_reports"]
    assert {tuple(r) for r in s["commands"]["verified_request_ids"]} <= a["completed_request_ids"]
    assert len(s["commands"]["verified_request_ids"]) == s["commands"]["verified"]
    assert a["events"] == s["events"]
    assert a["tc_frames_sent"] == s["link"]["tc_frames_sent"]
    assert "distance driven" in capsys.readouterr().err


def test_default_mission_survives_every_fault_by_the_plant_truth(tmp_path: Path) -> None:
    from hil.mission.report import MissionSpec, run_mission

    s = run_mission(MissionSpec("sortie", 1, tmp_path / "report", plots=False)).summary
    assert s["truth"] is not None
    assert s["faults_met"] == s["faults_survived"] == 3


def test_mission_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    from hil.mission.report import MissionSpec, run_mission

    runs = [run_mission(MissionSpec("egress", 7, tmp_path / f"r{i}", plots=False)).summary for i in range(2)]
    keys = ("distance_m", "hk_reports", "events", "final_pose", "rover_time_s", "truth", "faults")
    assert [{k: r[k] for k in keys} for r in runs][0] == {k: runs[1][k] for k in keys}
    assert runs[0]["ok"]


def test_mission_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mission", "moonwalk", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected a scenario" in err[0] and "moonwalk" in err[0]
    assert main(["mission", "--target", "usb", "--out", str(tmp_path)]) == 2
