"""Gap retrieval against the MicroPython rover, in real time over a real pty: the firmware
flashed onto the unix-port virtual board, the relay model losing a fifth of the TM frames on
the way down, and the ground's gap tracker asking the rover's packet store (TM_RETRIEVE) for
what was lost, until every verification report is on the ground."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from hil.mission.api import RoverApi
from hil.mission.realtime import open_realtime_target

pytestmark = [pytest.mark.micropython, pytest.mark.slow]

LOSSY = {
    "name": "lossy-down",
    "description": "a bench link that loses one TM frame in five (and duplicates some)",
    "uplink": {"delay_s": 0.05},
    "downlink": {"delay_s": 0.05, "frame_loss": 0.2, "frame_duplication": 0.05},
    "tm_frame_length": 256,
}


def test_every_verification_report_reaches_the_ground_from_the_micropython_rovers_store(
    micropython: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FARSIDE_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("FARSIDE_MICROPYTHON", micropython)
    profile = tmp_path / "lossy.json"
    profile.write_text(json.dumps(LOSSY))
    target = open_realtime_target("mpy", None, "sim", str(profile), seed=5, folder=tmp_path / "run")
    try:
        rover = RoverApi(target)
        rover.await_mode("STANDBY", timeout=60)
        g, st = target.ground, target.ground.state
        # first contact, as an operator makes it: a PING until one is completed. The ground sees
        # a gap only after the first report it hears on the verification APID; a first frame
        # lost before it, when the rover's count is far along (carried on by the journal over
        # the flash's boots), is not a gap the ground can see
        for _ in range(10):
            first = rover.send_command("PING")
            end = time.monotonic() + 10
            while time.monotonic() < end and g.reports(first)[-1:] != ["completed"]:
                rover.wait(0.5)
            if g.reports(first)[-1:] == ["completed"]:
                break
        assert g.reports(first)[-1:] == ["completed"], "no PING completed in 10 tries"
        tracks = []
        for i in range(16):
            tracks.append(rover.send_command("PING"))
            tracks.append(rover.send_command("PARAM_GET", param_id=1 + i % 5))
            rover.wait(0.3)
        want = ["accepted", "started", "completed"]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not all(g.reports(t)[-1:] == ["completed"] for t in tracks):
            rover.wait(0.5)
        missing = {i: g.reports(t) for i, t in enumerate(tracks) if sorted(set(g.reports(t))) != sorted(want)}
        assert not missing, missing
        # the link did lose TM, and the MicroPython rover's store gave it back
        assert target.relay is not None and target.relay.downlink.stats.frames_lost > 3
        c = st.gaps.counters
        assert c.missing_seen > 0 and c.filled > 0 and c.requests > 0 and c.store_frames > 0
        assert c.lost_on_restart == 0 and c.attempts_spent == 0
    finally:
        target.close()
