"""The packet store end to end in virtual time: through the `harsh` relay (lost, corrupted and
duplicated frames, a relay outage), every verification report and event the rover sent ends
on the ground, the lost ones retrieved from the rover's store (TM_RETRIEVE)."""

from __future__ import annotations

import struct
from collections import Counter
from typing import Any

import pytest

from hil.mission.api import RoverApi
from hil.mission.loop import LoopConfig, WholeLoop

STAGES = {1: "accepted", 2: "rejected", 3: "started", 4: "start_failed", 7: "completed", 8: "completion_failed"}


def _record(w: WholeLoop) -> list[tuple[int, int, int, bytes, float]]:
    """Every TM packet the running rover sends: (service, subservice, seq, data, loop s)."""
    sent: list[tuple[int, int, int, bytes, float]] = []
    store = w.rover.store
    put = store.put

    def spy(pkt: Any, service: int) -> None:
        b = bytes(pkt)
        sent.append((b[7], b[8], struct.unpack(">H", b[2:4])[0] & 0x3FFF, b[19:-2], w.now()))
        put(pkt, service)

    store.put = spy
    return sent


@pytest.mark.parametrize("seed", [2, 7])
def test_every_report_and_event_reaches_the_ground_through_the_harsh_relay(seed: int) -> None:
    w = WholeLoop(LoopConfig(seed=seed, relay="harsh", archive=False))
    try:
        rover = RoverApi(w)
        rover.await_mode("STANDBY", timeout=120)
        sent = _record(w)
        for i in range(12):
            rover.send_command("PING")
            rover.send_command("PARAM_GET", param_id=1 + i % 5)
        rover.send_command("DRIVE_DISTANCE", distance_m=1.0, speed_mph=200)
        rover.send_command("EVENT_DUMP")
        rover.wait(600.0)  # across the outage at 240-300 s
        t_end = w.now() - 150.0  # what was sent this long before the end must be on the ground
        g = w.ground
        st = g.state
        ops = {t.request_id for t in g.tracks}  # the operator's commands (not the ground's TM_RETRIEVE)
        want_v = {((int.from_bytes(d[0:2], "big"), int.from_bytes(d[2:4], "big")), STAGES[sub])
                  for svc, sub, _, d, t in sent if svc == 1 and t < t_end}
        want_v = {(rid, stage) for rid, stage in want_v if rid in ops}
        got_v = {(rid, v.stage) for rid, vs in st.verifications.items() for v in vs}
        assert len(want_v) > 60  # 26 commands, 3 reports each
        assert want_v <= got_v, sorted(want_v - got_v)
        names = {e.id: e.name for e in w.mission.pd.events.values()}
        want_e = Counter(names[int.from_bytes(d[0:2], "big")] for svc, _, _, d, t in sent if svc == 5 and t < t_end)
        got_e = Counter(e.name for e in g.history.events if e.ground_time - g.t0_unix >= 0)
        assert want_e and not want_e - got_e, want_e - got_e
        # the link did lose TM, and the store gave it back
        c = st.gaps.counters
        assert c.missing_seen > 10 and c.filled > 0 and c.requests > 0
        assert c.attempts_spent == 0 and c.lost_on_restart == 0
        # a retrieved housekeeping report never replaced the latest values
        assert st.hk_time is not None and w.now() + g.t0_unix - st.hk_time < 5.0
    finally:
        w.close()
