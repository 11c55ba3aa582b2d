"""A mission flown from Yamcs: the rover on the virtual board, `farside relay` in front of it
on a lab bench that duplicates frames both ways (then also loses TC frames), Yamcs with its own
COP-1 and the AES-256-GCM security association, yamcs-client as the operator.

Only the uplink loses frames: COP-1 guards TC frames, and nothing retransmits a lost TM frame,
so a verification report lost on the way down would leave a verifier pending.

Found here: Yamcs 5.12.8 applies SDLS again to a frame its COP-1 retransmits
(Cop1TcPacketHandler.getFrame encodes every frame it takes off its out queue, and a
retransmission queues the same frame again): the data field, already encrypted under the first
ARSN, is encrypted once more under a new one. The MAC is good, so the rover's FARM-1 accepts
the frame, but it opens to the first ciphertext and the command is lost. The secured link is
therefore farside's Cop1UdpTcFrameLink (hil.yamcs.extension), whose COP-1 retransmits a frame
as first secured; the loss test fails with Yamcs's own UdpTcFrameLink."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.gs.keys import DEV_KEYS
from hil.yamcs.config import sdls_key_from_setting
from hil.yamcs.fly import Flight, Station, fly_mission
from tests.conftest import need
from tests.yamcs.conftest import write_folder

pytestmark = [pytest.mark.slow, pytest.mark.yamcs]

LOSS = 0.5
DUPLICATION = 0.2
SEED = 7
LOSS_SEED = 2  # the relay's draws for this seed lose the second TC frame


# No added latency either way: a command's reports can then reach Yamcs before the command's own
# sequence count does, which farside's PUS-1 verifier handles (test_server_verifier makes that
# order certain; Yamcs's own verifier lets completion cancel the earlier stages).
LATENCY_S = 0.0


def lab_bench(folder: Path, loss: float) -> Path:
    """The lab bench with LATENCY_S each way, frames duplicated both ways and TC frames lost
    at `loss`."""
    from hil.relay.profile import builtin_profile_text

    profile = json.loads(builtin_profile_text("lab"))
    profile["name"] = f"lab-dup-loss{loss:g}"
    profile["uplink"].update(frame_loss=loss, frame_duplication=DUPLICATION, delay_s=LATENCY_S)
    profile["downlink"].update(frame_duplication=DUPLICATION, delay_s=LATENCY_S)
    path = folder / f"{profile['name']}.json"
    path.write_text(json.dumps(profile))
    return path


@pytest.fixture(scope="module")
def station(yamcs_tools: None, micropython: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    folder = tmp_path_factory.mktemp("yamcs-flight")
    runtime = tmp_path_factory.mktemp("rt")
    key, _ = sdls_key_from_setting(DEV_KEYS)
    need(key is not None, "the development keys have no AES-GCM SA")
    # T1 3 s; a transmission limit of 8, so half the TC frames lost leaves a frame unsent 1 time in 256
    write_folder(folder / "yamcs", sdls_key=key, cop1_t1_s=3, cop1_tx_limit=8)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FARSIDE_RUNTIME_DIR", str(runtime))
        mp.setenv("FARSIDE_KEYS", str(DEV_KEYS))
        # these tests are about the ground: a roomy heap (the board's own budget is the HIL suite's to prove)
        st = Station(folder / "yamcs", profile=str(lab_bench(folder, 0.0)), seed=SEED, heapsize="320K")
        st.start()
        try:
            yield st
        finally:
            st.stop()


@pytest.fixture(scope="module")
def flight(station: Station) -> Iterator[Flight]:
    f = Flight(station.url, station.instance)
    try:
        yield f
    finally:
        f.close()


def _counters(flight: Flight) -> dict[str, int]:
    flight.fresh_hk()
    return {k: int(flight.parameter(k)) for k in ("cmd_accepted", "cmd_completed", "cmd_rejected", "tc_frames_ok")}


def _relay_stats(station: Station, flight: Flight) -> dict[str, Any]:
    assert station.relay is not None
    for _ in range(10):
        stats = station.relay.stats()
        if stats:
            return stats
        flight.fresh_hk(1)
    return {}


def _pings_run_once(station: Station, flight: Flight, n: int, timeout_s: float) -> dict[str, Any]:
    """Send n PINGs through Yamcs; every one must pass its three verifiers, and the rover's
    own counters must show each accepted and completed once."""
    flight.wait_parameter("mode", lambda v: v is not None, 120)
    before = _counters(flight)
    outcomes = [flight.command("PING", timeout_s=timeout_s) for _ in range(n)]
    failed = [(o.stages, o.error) for o in outcomes if not (o.success and o.verifiers_ok())]
    assert not failed, failed
    after = _counters(flight)
    assert after["cmd_accepted"] - before["cmd_accepted"] == n
    assert after["cmd_completed"] - before["cmd_completed"] == n
    assert after["cmd_rejected"] == before["cmd_rejected"]
    assert after["tc_frames_ok"] - before["tc_frames_ok"] == n  # duplicates refused, each frame taken once
    return _relay_stats(station, flight)


def test_commands_through_yamcs_cop1_run_exactly_once_on_the_rover_despite_duplication(
        station: Station, flight: Flight) -> None:
    stats = _pings_run_once(station, flight, 8, 120)
    assert stats["uplink"]["frames_duplicated"] > 0 and stats["downlink"]["frames_duplicated"] > 0, stats


def test_a_mission_flown_from_yamcs_sees_verifiers_pose_wheels_and_the_wheel_fault(flight: Flight) -> None:
    # half a metre each drive (9 s at 200 m/h), as on the emulated Pico: the pose, the turn and
    # the jam read the same, in half the wall time
    steps = fly_mission(flight, distance_m=0.5, turn_deg=30.0, jam_wheel=3)
    failed = [(s.name, s.detail) for s in steps if not s.ok]
    assert not failed
    names = [s.name for s in steps]
    for command in ("PING", "DRIVE_DISTANCE", "TURN", "SIM_INJECT"):
        assert command in names
    assert "WHEEL_FAULT event" in names


def test_commands_through_yamcs_cop1_run_exactly_once_on_the_rover_despite_loss(
        station: Station, flight: Flight, tmp_path: Path) -> None:
    """The same under TC frame loss: the relay restarted on a bench that also loses TC frames."""
    from hil.yamcs.fly import RelayProcess

    assert station.relay is not None and station.server is not None
    station.relay.stop()
    s = station.server.summary
    station.relay = RelayProcess(f"udp:{s['tm_port']}:{s['tc_port']}", str(station.rover_port),
                                 str(lab_bench(tmp_path, LOSS)), LOSS_SEED, tmp_path / "relay.log")
    station.relay.start()
    stats = _pings_run_once(station, flight, 3, 40)  # a frame lost k times waits 3k s more
    assert stats["uplink"]["frames_lost"] > 0, {k: v for k, v in stats["uplink"].items() if "frames" in k}
    # each lost frame was retransmitted by COP-1 through farside's link, on its one COP-1 channel
    log = station.server.log_path.read_text(errors="replace")
    assert "1 COP-1 virtual channel(s) retransmit frames as first secured" in log
