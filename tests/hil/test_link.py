"""The link: a relay outage with a stored sequence, an attacker on the uplink, a reset."""

from __future__ import annotations

import pytest

from hil.mission.api import equal_to, greater_than
from protocols.sdls import SecuritySender
from protocols.tc_frame import build_ad_frame
from tests.hil import truth

pytestmark = pytest.mark.hil


@pytest.mark.farside_targets("virtual")  # a 25-minute outage: virtual time only
def test_relay_outage_stored_time_tagged_sequence_runs_without_ground(rover, relay, plant):
    m = rover.mission
    start_pose = truth.mark(plant)
    t_rover = rover.await_telemetry("rover_time_s", None, timeout=30)
    start = int(t_rover) + 200
    rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=5.0, speed_mph=200, at=start)
    rover.send_and_assert_command("TURN", angle_deg=90.0, at=start + 150)
    rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=3.0, speed_mph=200, at=start + 400)
    rover.await_telemetry("tt_queue_depth", equal_to(3), timeout=30)
    # rover time <-> loop time, from the latest HK (its packet time is the rover clock)
    offset = rover.get_telemetry("rover_time_s") - rover.telemetry_history[-1].t
    out_start, out_end = relay.outage(1500)
    frames_before = rover.ground.state.link.frames_ok
    rover.wait(out_end - rover.now() - 5)
    # frames in flight at the start (one-way delay) are all the ground saw during the outage
    assert rover.ground.state.link.frames_ok - frames_before <= 3
    assert not rover.events or all(e.name != "TT_RELEASED" for e in rover.events)
    # after the outage the stored telemetry comes down: the sequence ran on the rover's clock
    released = []
    for _ in range(3):
        released.append(rover.await_event("TT_RELEASED", timeout=120, since=released[-1] if released else "test"))
    for ev, due in zip(released, (start, start + 150, start + 400), strict=True):
        assert ev.args["release_s"] == due
        assert out_start + offset - 5 < ev.rover_time_s < out_end + offset
    last = rover.await_event("DRIVE_COMPLETED", timeout=300, since=released[-1])
    assert last.rover_time_s < out_end + offset  # the whole sequence ran during the outage
    completed = [e for e in rover.events if e.name == "DRIVE_COMPLETED"]
    kinds = [m.enum_label("drive_kind", e.args["kind"]) for e in completed]
    assert kinds == ["DISTANCE", "TURN", "DISTANCE"]
    assert [round(e.args["travelled_mm"], -2) for e in completed] == [5000, 0, 3000]
    assert abs(completed[1].args["heading_cdeg"] - 9000) <= 200
    assert rover.await_telemetry("tt_queue_depth", equal_to(0), timeout=30) == 0
    assert relay.stats()["downlink"]["overflow_units"] == 0
    path = truth.since(plant, start_pose)
    if path is not None:  # measured: 7.998 m, ends at (5.012, 3.001) m, turned 89.72 deg
        # 5 m ahead, a quarter turn left, 3 m: each leg +-0.1 m, the turn +-2 deg (3 m x sin 2 deg ~ 0.1 m)
        assert path.travelled_m == pytest.approx(8.0, abs=0.2)
        assert path.turned_deg == pytest.approx(90.0, abs=2.0)
        assert path.along_m == pytest.approx(5.0, abs=0.2)
        assert path.across_m == pytest.approx(3.0, abs=0.2)


def _await_rejection(rover, since, timeout_s: float = 60.0):
    """The rover's next report of a rejected frame after `since`: TC_AUTH_REJECTED, or the
    rate-limited TC_AUTH_SUMMARY (its last_reason) while rejections keep coming."""
    deadline = rover.now() + timeout_s
    while True:
        new = [e for e in rover.events if e.name in ("TC_AUTH_REJECTED", "TC_AUTH_SUMMARY")
               and (since is None or e.seq > since.seq)]
        if new:
            return new[0]
        assert rover.now() < deadline, f"no TC_AUTH_REJECTED/SUMMARY within {timeout_s:g} s"
        rover.wait(1.0)


def test_replayed_and_forged_commands_are_rejected_while_real_ones_work(rover):
    plant = truth.observer(rover)  # the plant's truth where the target has it in process
    start = truth.mark(plant)
    drive = rover.send_command("DRIVE_DISTANCE", distance_m=0.5, speed_mph=200)
    rover.await_verification(drive, timeout=300)
    driven = truth.since(plant, start)
    after_drive = truth.mark(plant)
    recorded = rover.ground.frame_of_packet[drive.packet]  # what an eavesdropper captured
    odometer = rover.await_telemetry("odometer_m", None, timeout=30)
    accepted = rover.get_telemetry("cmd_accepted")
    reasons = {}
    # 1. replay the captured drive frame, byte for byte
    rover.send_raw_frame(recorded)
    reasons["replay"] = _await_rejection(rover, None)
    # 2. a forged drive command: right SPI, a fresh sequence number, the attacker's key
    m = rover.mission
    packet, _ = rover.ground.build_command("DRIVE_DISTANCE", {"distance_m": 50.0, "speed_mph": 200.0})
    forger = SecuritySender(bytes(32), spi=1, seq=rover.ground.security.seq + 10)
    rover.send_raw_frame(build_ad_frame(m.scid, m.tc_vcid, rover.ground.fop.vs, packet, security=forger))
    reasons["forged"] = _await_rejection(rover, reasons["replay"])
    # 3. a security association the rover does not have
    stranger = SecuritySender(bytes(range(32)), spi=9, seq=1)
    rover.send_raw_frame(build_ad_frame(m.scid, m.tc_vcid, rover.ground.fop.vs, packet, security=stranger))
    reasons["spi"] = _await_rejection(rover, reasons["forged"])
    labels = {k: m.enum_label("auth_reason", ev.args.get("reason", ev.args.get("last_reason"))) for k, ev in reasons.items()}
    assert labels == {"replay": "REPLAYED", "forged": "BAD_MAC", "spi": "UNKNOWN_SPI"}
    # the real ground still commands the rover
    rover.send_and_assert_command("PING", timeout=60)
    rover.await_telemetry("tc_auth_rejected", equal_to(3), timeout=30)
    assert rover.await_telemetry("cmd_accepted", None, timeout=30) == accepted + 1
    # a wheel may settle a few mm after the drive completes; the forged 50 m drive would be metres
    assert rover.get_telemetry("odometer_m") == pytest.approx(odometer, abs=0.005)
    assert sum(1 for e in rover.events if e.name == "DRIVE_STARTED") == 1
    still = truth.since(plant, after_drive)
    if driven is not None and still is not None:  # measured: 0.497 m virtual, 0.499 m on the chip, then not a hair
        assert driven.travelled_m == pytest.approx(0.5, abs=0.1)
        assert still.travelled_m < 0.005  # a wheel settles mm; the forged 50 m drive truly never moved the rover


def test_watchdog_reset_mid_drive_and_recovery(rover, plant):
    boots = rover.await_telemetry("boot_count", None, timeout=60)  # a board's flash keeps counting
    drive = rover.send_command("DRIVE_DISTANCE", distance_m=10.0, speed_mph=200)
    rover.await_telemetry("odometer_m", greater_than(0.5), timeout=300)
    plant.hang_task(1)  # the control task stops checking in: the watchdog must bite
    boot = rover.await_event("BOOT", timeout=60)
    assert rover.mission.enum_label("reset_cause", boot.args["reset_cause"]) == "WATCHDOG"
    assert boot.args["boot_count"] == boots + 1
    assert rover.await_telemetry("speed_mph", equal_to(0.0), timeout=30) == 0.0
    assert "completed" not in rover.ground.reports(drive)
    halted = truth.mark(plant)
    if halted is not None:  # the reset truly stopped the motors, not only the rover's estimate
        rover.wait(5.0)
        parked = truth.since(plant, halted)
        assert parked is not None and parked.travelled_m < 0.002
    # the ground resynchronises COP-1 with the rebooted rover; the operator drives on
    if rover.await_telemetry("mode", None, timeout=30) != "STANDBY":
        rover.send_and_assert_command("MODE_SET", mode="STANDBY", timeout=120)
    again = truth.mark(plant)
    rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=0.5, speed_mph=200, timeout=400)
    done = rover.assert_event("DRIVE_COMPLETED")
    assert abs(done.args["travelled_mm"] - 500) <= 50
    leg = truth.since(plant, again)
    if leg is not None:  # measured: 0.497 m virtual, 0.499 m on the chip
        assert leg.travelled_m == pytest.approx(0.5, abs=0.05)
    assert rover.get_telemetry("boot_count") == boots + 1


@pytest.mark.farside_targets("virtual")
def test_link_conditions_change_mid_test_and_cop1_delivers_through_them(rover, relay):
    rover.send_and_assert_command("PING", timeout=60)
    bad_before = rover.ground.state.link.frames_bad
    relay.set_ber(3e-4, "downlink")  # about one TM frame in two corrupted
    rover.wait(120)
    assert rover.ground.state.link.frames_bad - bad_before > 20
    assert relay.stats()["downlink"]["frames_corrupted"] > 20
    relay.set_ber(0.0)
    relay.set_delay(10.0, "uplink")  # a slow relay: COP-1 still delivers, just later
    t0 = rover.now()
    rover.send_and_assert_command("HK_SET_PERIOD", sid=1, period_s=2.0, timeout=300)
    assert rover.now() - t0 > 10.0
    assert rover.await_telemetry("mode", None, timeout=30) == "STANDBY"
    assert rover.ground.fop.stats.alerts == 0
