"""The packet store across a reboot, end to end in virtual time: the rover reboots during a
relay outage whose TM the relay could not keep (its downlink buffer overflows), and once the
link is back the ground retrieves the reports and events from before the reboot out of the
rover's journal; the count continued, so the ground never saw a restart."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from hil.mission.api import RoverApi
from hil.mission.loop import LoopConfig, WholeLoop

pytestmark = [pytest.mark.hil, pytest.mark.farside_targets("virtual")]

OUTAGE = (200.0, 400.0)
PROFILE = {
    "name": "reboot-in-outage",
    "description": "a 200 s outage whose downlink TM the relay cannot store (a 600-octet buffer)",
    "uplink": {"delay_s": 1.75, "rate_bps": 2000},
    "downlink": {"delay_s": 1.75, "rate_bps": 285000, "buffer_octets": 600},
    "relay_passes": {"period_s": 100000, "outages": [list(OUTAGE)]},
    "tm_frame_length": 256,
}


def test_reports_from_before_a_reboot_in_an_outage_are_retrieved_after_it(tmp_path: Path, monkeypatch: Any) -> None:
    from firmware_py.pktstore import PktStore

    sent: list[tuple[int, int, int, float]] = []  # (boot, service, seq, loop s) of every packet sent
    put = PktStore.put
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(PROFILE))
    w = WholeLoop(LoopConfig(seed=3, relay=str(profile), archive=False))

    def spy(self: Any, pkt: Any, service: int) -> None:
        sent.append((w.boots, service, struct.unpack(">H", bytes(pkt[2:4]))[0] & 0x3FFF, w.now()))
        put(self, pkt, service)

    monkeypatch.setattr(PktStore, "put", spy)
    try:
        rover = RoverApi(w)
        rover.await_mode("STANDBY", timeout=120)
        g, st = w.ground, w.ground.state
        arrived: set[int] = set()  # sequence counts on the ground, live or retrieved
        retrieved: set[int] = set()
        note = st.gaps.note

        def seen(apid: int, seq: int, packet: bytes, t: float, from_store: bool = False) -> bool:
            new = note(apid, seq, packet, t, from_store)
            if new:
                arrived.add(seq)
                if from_store:
                    retrieved.add(seq)
            return new

        st.gaps.note = seen  # type: ignore[method-assign]
        # time-tagged: five PINGs in the outage, then a REBOOT in it (the rover's time = loop s)
        at = w.rover.time_s - w.now()
        for i in range(5):
            rover.send_command("PING", at=int(at + OUTAGE[0] + 20 + 10 * i))
        rover.send_command("REBOOT", at=int(at + OUTAGE[0] + 100))
        rover.wait(OUTAGE[1] + 150 - w.now())
        assert w.boots == 2
        before = [(svc, q, t) for boot, svc, q, t in sent if boot == 1 and svc in (1, 5)]
        in_outage = [q for svc, q, t in before if OUTAGE[0] <= t < OUTAGE[1]]
        # the PINGs ran in the outage: their reports (1/1, 1/3, 1/7, 17/2 aside) and TT_RELEASED
        assert len(in_outage) >= 5 * 3 + 5, in_outage
        assert w.relay_stats()["downlink"]["overflow_units"] > 0  # the relay dropped TM
        # every report and event of the first boot is on the ground, those the relay dropped in
        # the outage retrieved from the second boot's store (reloaded from the journal)
        assert not [q for _, q, _ in before if q not in arrived]
        assert len(set(in_outage) & retrieved) >= 5, "the outage's reports were not retrieved"
        assert st.pings == 5
        names = [e.name for e in g.history.events]
        assert names.count("TT_RELEASED") == 6 and names.count("BOOT") == 2
        # the count went on across the reboot: the ground saw no restart and gave nothing up to it
        first_of_boot2 = min(q for boot, _, q, _ in sent if boot == 2)
        last_of_boot1 = max(q for boot, _, q, _ in sent if boot == 1)
        assert last_of_boot1 < first_of_boot2 <= last_of_boot1 + 128
        c = st.gaps.counters
        assert c.restarts == 0 and c.lost_on_restart == 0 and c.filled >= len(set(in_outage) & retrieved)
        assert w.rover.store.journal.reloaded > 0 and w.rover.store.ram_note is None
    finally:
        w.close()
