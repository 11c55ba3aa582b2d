"""Yamcs decodes an hour of farside HK: a `farside mission` archive's TM frames replayed into
Yamcs's frame link (one datagram each, as the relay's UDP ground endpoint sends them), and every
HK parameter Yamcs archived equals what `farside gs export` decodes from the same archive."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def replayed(yamcs_server: Any, hour_archive: Path) -> dict[str, Any]:
    """The archive's frames sent to Yamcs's TM frame link; Yamcs's link counters after."""
    from yamcs.client import YamcsClient

    frames = archive_tm_frames(hour_archive)
    tm_port = int(yamcs_server.summary["tm_port"])
    client = YamcsClient(f"localhost:{yamcs_server.http_port}")
    tm_link = client.get_link(yamcs_server.instance, "tm-frames")
    before = tm_link.get_info().in_count
    took = send_frames(frames, tm_port, received=lambda: tm_link.get_info().in_count - before)
    link, seen, still = None, -1, 0
    while still < 4:  # until the count has not moved for 2 s
        link = client.get_link(yamcs_server.instance, "tm-frames").get_info()
        still = still + 1 if link.in_count == seen else 0
        seen = link.in_count
        if seen >= len(frames):
            break
        time.sleep(0.5)
    return {"client": client, "frames": len(frames), "in_count": link.in_count if link else 0,
            "extra": link.extra if link else {}, "send_s": took}


def _yamcs_hk(client: Any, instance: str, names: list[str], n_rows: int, epoch: datetime) -> Iterator[Any]:
    """HK rows from Yamcs's archive, by generation time; waits until all `n_rows` are there."""
    archive = client.get_archive(instance)
    qualified = [f"/farside/{n}" for n in names]
    deadline = time.monotonic() + 90
    rows: list[Any] = []
    while time.monotonic() < deadline:
        rows = [pd for pd in archive.stream_parameter_values(qualified, start=epoch - timedelta(days=1))
                if pd.get_value(qualified[0]) is not None]
        if len(rows) >= n_rows:
            break
        time.sleep(1.0)
    return iter(rows)


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, (float, np.floating)) and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)
    return bool(a == b)


def test_the_archive_holds_an_hour_of_hk(exported: Table) -> None:
    t = exported.columns["packet_time_s"]
    assert t[-1] - t[0] >= HOUR_S and len(t) >= HOUR_S


def test_yamcs_took_every_frame_of_the_replay_as_a_valid_frame(replayed: dict[str, Any]) -> None:
    assert replayed["in_count"] == replayed["frames"]
    assert int(replayed["extra"].get("Invalid frames", 0)) == 0
    assert int(replayed["extra"].get("Valid frames", 0)) == replayed["frames"]


def test_every_hk_parameter_yamcs_decoded_equals_the_export(yamcs_server: Any, replayed: dict[str, Any],
                                                              exported: Table) -> None:
    names = [c for c in exported.columns if c not in ("packet_time_s", "ground_time")]
    n = len(exported.columns["packet_time_s"])
    epoch = MISSION_EPOCH
    rows = list(_yamcs_hk(replayed["client"], yamcs_server.instance, names, n, epoch))
    assert len(rows) == n
    labels = {c: exported.labels(c) for c in names}
    mismatches = []
    for i, pd in enumerate(rows):
        t_s = (pd.parameters[0].generation_time - epoch).total_seconds()
        assert abs(t_s - exported.columns["packet_time_s"][i]) < 0.002, f"row {i}: time {t_s}"
        for name in names:
            pv = pd.get_value(f"/farside/{name}")
            want = labels[name][i]
            if pv is None or not _same(pv.eng_value, want):
                mismatches.append((i, name, None if pv is None else pv.eng_value, want))
    assert not mismatches, f"{len(mismatches)} values differ, first: {mismatches[:5]}"
