"""Attacks through the whole loop (the project's ground, the relay, the rover), by someone
who records the uplink and injects frames but holds no key: every frame the ground sent,
AD and BD, replayed after a watchdog reset, a commanded reboot and a power cut, at once after
the boot and again once the ground has resynchronised; forged frames in a flood. Judged by
the plant's truth (the distance the wheels truly covered), not by the rover's telemetry."""

from __future__ import annotations

from binascii import crc_hqx
from typing import Any

import pytest

from hil.gs.state import AUTH_ALARM

pytestmark = [pytest.mark.hil, pytest.mark.farside_targets("virtual")]

DRIVE = {"distance_m": 0.3, "speed_mph": 200}  # 5.4 s of driving


def travelled(plant: Any) -> float:
    pose = plant.true_pose
    assert pose is not None, "the truth needs an in-process plant"
    return float(pose[2])


def rejected(rover: Any) -> int:
    return int(rover.await_telemetry("tc_auth_rejected", timeout=30))


@pytest.mark.parametrize("how", ["watchdog", "reboot", "power_cut"])
def test_every_recorded_frame_is_rejected_after_a_reset(rover: Any, plant: Any, how: str) -> None:
    ground = rover.ground
    first = len(ground.sent_frames)
    rover.send_and_assert_command("DRIVE_DISTANCE", timeout=600, **DRIVE)
    rover.send_and_assert_command("DRIVE_DISTANCE", timeout=600, bypass=True, **DRIVE)
    recorded = list(ground.sent_frames[first:])  # AD, BD, and whatever COP-1 added
    assert travelled(plant) > 0.5
    if how == "watchdog":
        plant.hang_task(1)  # the control task stops checking in: the watchdog bites
    elif how == "reboot":
        rover.send_command("REBOOT")
    else:
        plant.inject("BROWN_OUT", 0, 0.0)  # the supply browns out: the board loses power
    rover.await_event("BOOT", timeout=300)
    before = travelled(plant)
    base = rejected(rover)
    for f in recorded:  # at once, before the ground has commanded anything
        rover.send_raw_frame(f)
    # (the uplink runs at 125 bit/s: a few seconds per frame)
    rover.await_telemetry("tc_auth_rejected", lambda v: v >= base + len(recorded), timeout=300)
    rover.wait(10)
    assert travelled(plant) == pytest.approx(before, abs=1e-3)
    assert rejected(rover) - base == len(recorded)
    rover.await_alarm(AUTH_ALARM, timeout=30)
    # the ground resynchronises by itself (ARSN above the reported mark, COP-1 Set V(R))
    rover.send_and_assert_command("PING", timeout=300)
    for f in recorded:
        rover.send_raw_frame(f)
    rover.await_telemetry("tc_auth_rejected", lambda v: v >= base + 2 * len(recorded), timeout=300)
    rover.wait(10)
    assert travelled(plant) == pytest.approx(before, abs=1e-3)
    assert rejected(rover) - base == 2 * len(recorded)
    # and the ground still drives the rover
    rover.send_and_assert_command("DRIVE_DISTANCE", timeout=600, **DRIVE)
    assert travelled(plant) > before + 0.2


def test_a_flood_of_forgeries_is_reported_at_a_bounded_rate_and_commanding_goes_on(rover: Any, plant: Any) -> None:
    ground = rover.ground
    first = len(ground.sent_frames)
    rover.send_and_assert_command("PING", timeout=300)
    good = ground.sent_frames[first]
    period = 10.0  # auth_event_period_s, the dictionary's default
    n = 0
    t0 = rover.now()
    while rover.now() - t0 < 60:  # a frame every 3 s (what 125 bit/s carries), each altered
        f = bytearray(good)
        f[20 + n % 10] ^= 0x5A
        c = crc_hqx(bytes(f[:-2]), 0xFFFF)
        f[-2:] = bytes([c >> 8, c & 0xFF])
        rover.send_raw_frame(bytes(f))
        n += 1
        rover.wait(3.0)
    rover.await_telemetry("tc_auth_rejected", lambda v: v >= n, timeout=600)
    rover.wait(2 * period)
    firsts = [e for e in rover.events if e.name == "TC_AUTH_REJECTED"]
    summaries = [e for e in rover.events if e.name == "TC_AUTH_SUMMARY"]
    assert len(firsts) == 1 and firsts[0].args["reason"] == 2  # BAD_MAC
    assert 4 <= len(summaries) <= 8  # about one per period while it lasts
    assert sum(int(e.args["count"]) for e in summaries) == n - 1
    times = [e.rover_time_s for e in firsts + summaries]
    assert all(b - a >= period - 1 for a, b in zip(times, times[1:], strict=False))
    assert rejected(rover) >= n
    rover.await_alarm(AUTH_ALARM, timeout=30)
    assert travelled(plant) == pytest.approx(0.0, abs=1e-3)
    rover.send_and_assert_command("DRIVE_DISTANCE", timeout=600, **DRIVE)
    assert travelled(plant) > 0.2
