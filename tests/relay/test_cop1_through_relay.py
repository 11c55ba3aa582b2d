"""COP-1 end to end through the relay model, in virtual time: FOP-1 with SDLS-secured TC
frames -> relay -> FARM-1 with authentication -> CLCW in TM frames -> relay -> FOP-1."""

from __future__ import annotations

import pytest

from hil import vclock
from hil.relay.coplink import run_commands
from protocols.cop1 import CommandState


def payloads(n: int) -> list[bytes]:
    return [b"command %03d " % i + bytes(8) for i in range(n)]


@pytest.mark.parametrize("seed", [1, 2])
def test_100_commands_under_harsh_arrive_complete_in_order_exactly_once(seed: int) -> None:
    cmds = payloads(100)
    ground, rover, elapsed = vclock.run(run_commands("harsh", cmds, seed=seed))
    relay = ground.relay  # type: ignore[attr-defined]
    up = relay.uplink.stats
    # the channel really was harsh
    assert up.frames_corrupted > 0 and up.frames_lost > 0 and up.frames_duplicated > 0
    assert ground.fop.stats.ad_retransmitted > 0
    # ... and yet
    assert rover.delivered == cmds
    assert all(r.state == CommandState.ACKNOWLEDGED for r in ground.fop.records)
    assert ground.fop.stats.alerts == 0
    assert elapsed > 100 * len(cmds[0]) * 8 / 125  # could not beat the bit rate
    assert elapsed > 300  # the run went through the relay outage at 240-300 s


def test_queqiao_clean_link_acknowledges_every_command_in_about_one_round_trip_each_window() -> None:
    cmds = payloads(10)
    ground, rover, elapsed = vclock.run(run_commands("queqiao", cmds, seed=0))
    assert rover.delivered == cmds
    assert ground.fop.stats.ad_retransmitted == 0
    frame_s = (2 + 5 + 6 + len(cmds[0]) + 16 + 2) * 8 / 125
    # serialisation-bound: K covers the round trip, so about one frame time per command
    assert elapsed == pytest.approx(10 * frame_s + 3.5, abs=2.5)


def test_replayed_or_forged_frames_are_never_accepted() -> None:
    # the relay duplicates frames in harsh: duplicates are FARM discards, never deliveries,
    # and corrupted frames never pass the FECF and MAC
    cmds = payloads(30)
    ground, rover, _ = vclock.run(run_commands("harsh", cmds, seed=7))
    assert rover.delivered == cmds
    assert len(rover.delivered) == len(set(rover.delivered))
