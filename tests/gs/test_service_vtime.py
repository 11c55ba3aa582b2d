"""The service's command tracking on the virtual-time ground of the HIL harness and `farside mission`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hil.gs.commandlog import CommandLog
from hil.mission.loop import LoopConfig, WholeLoop


@pytest.fixture()
def whole() -> Iterator[WholeLoop]:
    w = WholeLoop(LoopConfig(seed=1, relay="queqiao", archive=False))
    try:
        yield w
    finally:
        w.close()


def test_command_stages_in_virtual_time_through_the_relay(whole: WholeLoop) -> None:
    w = whole
    w.advance(10)  # boot, first HK and CLCW: FOP-1 starts its AD service
    log = CommandLog(w.ground)
    drive = log.new("DRIVE_DISTANCE", {"distance_m": 0.5, "speed_mph": 200.0}, "hil")
    log.attach(drive, w.ground.send("DRIVE_DISTANCE", {"distance_m": 0.5, "speed_mph": 200.0}))
    bad = log.new("PARAM_SET", {"param_id": 3, "value": 45}, "hil")
    log.attach(bad, w.ground.send("PARAM_SET", {"param_id": 3, "value": 45}))
    changed = set()
    for _ in range(60):
        w.advance(1)
        changed |= {e.id for e in log.update()}
        if drive.outcome and bad.outcome:
            break
    assert changed == {drive.id, bad.id}
    assert [s.stage for s in drive.stages] == ["QUEUED", "SENT", "ACCEPTED", "STARTED", "COMPLETED"]
    assert drive.text == "DRIVE_DISTANCE distance_m=0.5 speed_mph=200: accepted, started, completed"
    el = {s.stage: s.elapsed_s for s in drive.stages}
    # virtual seconds: the relay's round trip (Earth-Moon L2, a few s) before ACCEPTED, then the
    # 0.5 m drive at 200 m/h (9 s) before COMPLETED
    assert 2.0 < el["ACCEPTED"] < 10.0
    assert 8.0 < el["COMPLETED"] - el["STARTED"] < 15.0
    assert [s.stage for s in bad.stages][-1] == "REJECTED" and bad.stages[-1].detail == "OUT_OF_RANGE"
    assert bad.outcome == "REJECTED" and bad.text == "PARAM_SET param_id=3 value=45: rejected (OUT_OF_RANGE)"
