"""The service's command tracking (hil.gs.commandlog): on the virtual-time ground of the HIL harness
and `farside mission`, and across a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.gs.commandlog import CommandEntry, CommandLog
from hil.gs.link import CommandTrack
from hil.gs.mission import Mission
from hil.gs.state import Verification
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


class _Link:
    """Just what CommandLog reads of a ground link: reports by request id, a clock."""

    def __init__(self) -> None:
        import threading

        self.reports: dict[tuple[int, int], list[Verification]] = {}
        self._lock = threading.RLock()
        self.fop = None
        self.mission = Mission.load()

    def unix_now(self) -> float:
        return time.time()

    def clock(self) -> float:
        return time.monotonic()

    def verifications(self, track: CommandTrack) -> list[Verification]:
        track.reports = list(self.reports.get(track.request_id, []))
        return track.reports

    def failure_name(self, r: Verification) -> str:
        return "OUT_OF_RANGE"

    def failure_text(self, track: CommandTrack, r: Verification) -> str:
        return f"{track.describe()}: {r.stage} (OUT_OF_RANGE)"


def _persisted_log(link: _Link, path: Path) -> CommandLog:
    """A command log on `link` that appends each changed entry to `path`, as the service's does."""

    def persist(e: CommandEntry) -> None:
        with path.open("a") as f:
            f.write(json.dumps(e.json()) + "\n")

    return CommandLog(link, persist=persist)  # type: ignore[arg-type]


def test_a_restarted_log_marks_what_was_in_flight_unknown_until_a_report_resolves_it(tmp_path: Path) -> None:
    link = _Link()
    path = tmp_path / "commands.jsonl"
    before = _persisted_log(link, path)
    done = before.new("PING", {}, "a")
    before.attach(done, CommandTrack("PING", {}, (6145, 1), b"", done.t0))
    flying = before.new("DRIVE_DISTANCE", {"distance_m": 5.0, "speed_mph": 200.0}, "b")
    before.attach(flying, CommandTrack("DRIVE_DISTANCE", flying.args, (6145, 2), b"", flying.t0))
    link.reports[(6145, 1)] = [Verification(time.time(), s, None) for s in ("accepted", "started", "completed")]
    link.reports[(6145, 2)] = [Verification(time.time(), "accepted", None)]
    assert {e.id for e in before.update()} == {done.id, flying.id}
    with path.open("a") as f:
        f.write('{"id": 9, "name": "PI')  # the line a kill -9 tore
    # the service restarts: a new ground link, which has heard nothing yet
    link2 = _Link()
    after = CommandLog(link2)
    unresolved = after.restore(path)
    assert [e.id for e in unresolved] == [flying.id]
    e = after.get(flying.id)
    assert e is not None and e.state == "unknown" and e.stages[-1].stage == "UNKNOWN"
    assert after.get(done.id).outcome == "COMPLETED"  # type: ignore[union-attr]
    assert after.new("PING", {}, "c").id == flying.id + 1  # ids go on
    link2.reports[(6145, 2)] = [Verification(time.time(), "completed", None)]  # the rover's report
    assert [x.id for x in after.update()] == [flying.id]
    assert e.outcome == "COMPLETED" and e.state == "done"
    assert path.read_text().count("\n") == 2  # compacted: one line per command, the torn one gone


def test_a_command_reads_with_its_enum_arguments_by_name_before_and_after_a_restart(tmp_path: Path) -> None:
    """The typed arguments hold the number the packet carries (MODE_SET mode=2); what the
    operator reads (gs send, the shell, the console's list) names it, as they wrote it."""
    link = _Link()
    path = tmp_path / "commands.jsonl"
    log = _persisted_log(link, path)
    e = log.new("MODE_SET", {"mode": 2}, "a")
    log.attach(e, CommandTrack("MODE_SET", e.args, (6145, 3), b"", e.t0))
    assert e.describe() == "MODE_SET mode=STANDBY" and e.json()["label"] == "MODE_SET mode=STANDBY"
    link.reports[(6145, 3)] = [Verification(time.time(), "accepted", None)]
    log.update()
    link2 = _Link()
    after = CommandLog(link2)  # type: ignore[arg-type]
    assert [x.id for x in after.restore(path)] == [e.id]
    restored = after.get(e.id)
    assert restored is not None and restored.track is not None
    assert restored.describe() == restored.track.describe() == "MODE_SET mode=STANDBY"
    link2.reports[(6145, 3)] = [Verification(time.time(), s, None) for s in ("accepted", "started", "completed")]
    after.update()
    assert restored.text.startswith("MODE_SET mode=STANDBY: ") and restored.outcome == "COMPLETED", restored.text

    # a journal written before commands carried their label: named again from the dictionary
    older = tmp_path / "older.jsonl"
    older.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "label"}) + "\n"
                             for line in path.read_text().splitlines()))
    again = CommandLog(_Link())  # type: ignore[arg-type]
    again.restore(older)
    assert again.get(e.id).describe() == "MODE_SET mode=STANDBY"  # type: ignore[union-attr]
