"""hil.mission.report's rules: the one distance rule and survival judged by the plant's truth."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from hil.mission.ground import HkSample
from hil.mission.report import (
    DRIVE_TOLERANCE_M,
    StepDrive,
    TruthLog,
    fault_section,
    hk_distance,
    odometry_distance,
)
from hil.mission.scenarios import FaultRecord, MissionContext


def test_odometry_distance_sums_increases_within_each_boot() -> None:
    assert odometry_distance([], []) == 0.0
    assert odometry_distance([1], [5.0]) == 0.0
    assert odometry_distance([1, 1, 1], [0.0, 2.0, 5.5]) == pytest.approx(5.5)
    # a reboot restarts the odometer: the jump across it is no distance, the new run counts
    assert odometry_distance([1, 1, 2, 2], [0.0, 3.0, 0.0, 1.0]) == pytest.approx(4.0)
    # a step backwards within a boot is not distance driven
    assert odometry_distance([1, 1, 1], [2.0, 1.5, 2.5]) == pytest.approx(1.0)


def test_hk_distance_skips_samples_without_an_odometer() -> None:
    hk = [HkSample(0.0, {"boot_count": 1, "odometer_m": 1.0}), HkSample(1.0, {"boot_count": 1}),
          HkSample(2.0, {"boot_count": 1, "odometer_m": 3.0})]
    assert hk_distance(hk) == pytest.approx(2.0)


def test_a_step_drove_as_reported_within_the_tolerance() -> None:
    assert StepDrive(40.0, 40.0 - DRIVE_TOLERANCE_M + 0.01).as_reported()
    assert not StepDrive(40.0, 39.5).as_reported()
    assert StepDrive(40.0, 39.5).error_m == pytest.approx(0.5)


class _Plant:
    """A PlantControl stand-in whose truth the test moves."""

    def __init__(self) -> None:
        self.travelled = 0.0

    @property
    def true_pose(self) -> tuple[float, float, float]:
        return (self.travelled, 0.0, self.travelled)

    @property
    def true_heading_deg(self) -> float:
        return 0.0


def _rover(hk: list[HkSample]) -> Any:
    return SimpleNamespace(ground=SimpleNamespace(history=SimpleNamespace(hk=hk, events=[])), now=lambda: 0.0)


@pytest.mark.parametrize(("truly_m", "survived"), [(10.0, True), (9.85, True), (9.5, False)])
def test_a_fault_is_survived_when_the_rover_truly_drove_what_it_reported(truly_m: float, survived: bool) -> None:
    hk: list[HkSample] = [HkSample(0.0, {"boot_count": 1, "odometer_m": 0.0})]
    plant, rover = _Plant(), _rover(hk)
    truth = TruthLog(rover, plant)  # type: ignore[arg-type]
    ctx = MissionContext(rover, None, None, 1, on_step=truth.on_step(None))
    with ctx.step("drive 10 m; a wheel jams"):
        ctx.log.faults.append(FaultRecord("wheel jam", "wheel 3", 0.0, survived=True, how="completed"))
        hk.append(HkSample(1.0, {"boot_count": 1, "odometer_m": 10.0}))
        plant.travelled = truly_m
    out = fault_section(ctx, truth)
    f = out["faults"][0]
    assert f["survived_reported"] is True and f["survived"] is survived
    assert (f["reported_m"], f["true_m"]) == (10.0, truly_m)
    assert out["faults_survived"] == int(survived) and out["faults_survived_reported"] == 1
    assert ("truly" in f["how"]) is not survived


def test_without_a_plant_the_scenario_verdict_stands() -> None:
    rover = _rover([HkSample(0.0, {"boot_count": 1, "odometer_m": 0.0})])
    truth = TruthLog(rover, None)
    ctx = MissionContext(rover, None, None, 1, on_step=truth.on_step(None))
    with ctx.step("drive"):
        ctx.log.faults.append(FaultRecord("wheel jam", "wheel 3", 0.0, survived=True))
    f = fault_section(ctx, truth)["faults"][0]
    assert f["survived"] is True and "true_m" not in f
    assert not truth.available
