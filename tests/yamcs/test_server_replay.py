"""Yamcs decodes an hour of farside HK: a `farside mission` archive's TM frames replayed into
Yamcs's frame link (one datagram each, as the relay's UDP ground endpoint sends them), and every
HK parameter Yamcs decodes from the packets it archived equals what `farside gs export` decodes
from the same archive, packet by packet."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hil.gs.export import Table, decode_archive
from hil.gs.mission import Mission
from hil.yamcs.fly import archive_tm_frames, send_frames
from protocols.cuc import MISSION_EPOCH

pytestmark = [pytest.mark.slow, pytest.mark.yamcs]

HOUR_S = 3600.0


@pytest.fixture(scope="module")
def hour_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mission archive holding an hour of HK: the sortie (virtual time, lab relay), then
    the rover left standing until an hour has passed."""
    from hil.mission import scenarios
    from hil.mission.report import MissionSpec, run_mission

    def sortie_then_stand(ctx: scenarios.MissionContext) -> None:
        scenarios.sortie(ctx)
        ctx.rover.wait(max(0.0, HOUR_S + 5.0 - ctx.rover.now()))

    out = tmp_path_factory.mktemp("mission")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(scenarios.SCENARIOS, "hour", sortie_then_stand)
        result = run_mission(MissionSpec("hour", seed=3, out=out, relay="lab", plots=False))
    assert result.ok, result.error
    return out / "archive"


@pytest.fixture(scope="module")
def exported(hour_archive: Path) -> Table:
    return decode_archive(Mission.load(), hour_archive)["hk_rover"]


def _names(exported: Table) -> list[str]:
    return [c for c in exported.columns if c not in ("packet_time_s", "ground_time")]


@pytest.fixture(scope="module")
def replayed(yamcs_server: Any, hour_archive: Path, exported: Table) -> dict[str, Any]:
    """The archive's frames sent to Yamcs's TM frame link; Yamcs's link counters after, and
    every HK parameter as Yamcs decodes the packets it archived (its CSV export, by replay)."""
    import csv

    from yamcs.client import YamcsClient

    frames = archive_tm_frames(hour_archive)
    tm_port = int(yamcs_server.summary["tm_port"])
    client = YamcsClient(f"localhost:{yamcs_server.http_port}")
    tm_link = client.get_link(yamcs_server.instance, "tm-frames")
    before = tm_link.get_info().in_count
    took = send_frames(frames, tm_port, received=lambda: tm_link.get_info().in_count - before)
    n = len(exported.columns["packet_time_s"])
    names = [f"/farside/{c}" for c in _names(exported)]
    archive = client.get_archive(yamcs_server.instance)
    deadline = time.monotonic() + 60
    rows: list[list[str]] = []
    while time.monotonic() < deadline:
        text = b"".join(archive.export_parameter_values(names, start=MISSION_EPOCH - timedelta(days=1),
                                                         source="replay")).decode()
        rows = list(csv.reader(text.splitlines(), delimiter="\t"))
        if len(rows) - 1 >= n:
            break
        time.sleep(1.0)
    link = tm_link.get_info()
    return {"frames": len(frames), "in_count": link.in_count - before, "extra": link.extra, "send_s": took,
            "header": rows[0] if rows else [], "rows": rows[1:]}


def _names(exported: Table) -> list[str]:
    return [c for c in exported.columns if c not in ("packet_time_s", "ground_time")]


def _same(cell: str, want: Any) -> bool:
    """A Yamcs CSV cell (engineering value: a label, an integer, a double) against the export's."""
    if isinstance(want, (float, np.floating)):
        return math.isclose(float(cell), float(want), rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(want, (int, np.integer)):
        return cell.lstrip("-").isdigit() and int(cell) == int(want)
    return cell == str(want)


def test_the_archive_holds_an_hour_of_hk(exported: Table) -> None:
    t = exported.columns["packet_time_s"]
    assert t[-1] - t[0] >= HOUR_S and len(t) >= HOUR_S


def test_yamcs_took_every_frame_of_the_replay_as_a_valid_frame(replayed: dict[str, Any]) -> None:
    assert replayed["in_count"] == replayed["frames"]
    assert int(replayed["extra"].get("Invalid frames", 0)) == 0
    assert int(replayed["extra"].get("Valid frames", 0)) == replayed["frames"]


def test_every_hk_parameter_yamcs_decoded_equals_the_export(replayed: dict[str, Any], exported: Table) -> None:
    names = _names(exported)
    n = len(exported.columns["packet_time_s"])
    assert replayed["header"] == ["Time", *names]
    rows = replayed["rows"]
    assert len(rows) == n
    labels = {c: exported.labels(c) for c in names}
    mismatches = []
    for i, row in enumerate(rows):
        t = datetime.fromisoformat(row[0].replace("Z", "+00:00"))
        t_s = (t - MISSION_EPOCH).total_seconds()
        assert abs(t_s - exported.columns["packet_time_s"][i]) < 0.002, f"row {i}: time {row[0]}"
        for name, cell in zip(names, row[1:], strict=True):
            if not _same(cell, labels[name][i]):
                mismatches.append((i, name, cell, labels[name][i]))
    assert not mismatches, f"{len(mismatches)} values differ, first: {mismatches[:5]}"
