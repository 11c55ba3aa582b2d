"""The ground's side of the link's security, end to end with the rover: sequence-number
exhaustion, rekeying over the link, resynchronisation after a reboot, the TC_AUTH alarm."""

from __future__ import annotations

import secrets

import pytest

from hil.errors import FarsideError
from hil.gs.state import AUTH_ALARM
from protocols.sdls import MAX_SEQ, REKEY_RESERVE, SaConfig, SecuritySender, wrap_key
from protocols.tc_frame import build_ad_frame

pytestmark = [pytest.mark.hil, pytest.mark.farside_targets("virtual")]


def test_exhaustion_then_rekey_over_the_link_then_commanding_continues(rover) -> None:
    ground = rover.ground
    rover.send_and_assert_command("PING", timeout=60)
    old = ground.security.sa
    # the rover accepts any fresh ARSN: jump near the end of 2**32 (not recorded in the
    # session's ledger for the dev key, which later tests use)
    ground.security.reserve, ground.security.limit = None, MAX_SEQ
    ground.security.advance_to(MAX_SEQ - REKEY_RESERVE - 1)  # two frames, then only a rekey
    rover.send_and_assert_command("PING", timeout=60)
    assert ground.security.exhausting and "rekey" in ground.state.link.note
    rover.send_and_assert_command("PING", timeout=60)
    with pytest.raises(FarsideError, match="rekey first"):
        rover.send_command("PING")
    # OTAR: a new key under the master key, then the SA switches to it
    key_id, key, iv = old.key_id + 1, secrets.token_bytes(32), secrets.token_bytes(12)
    wrapped, mac = wrap_key(ground.keys.master, key_id, key, iv)
    rover.send_and_assert_command("KEY_OTAR", key_id=key_id, iv=iv, wrapped=wrapped, mac=mac, timeout=60)
    assert rover.assert_event("KEY_LOADED").args["key_id"] == key_id
    rover.send_and_assert_command("SA_REKEY", spi=old.spi, key_id=key_id, timeout=60)
    rover.wait(5)
    assert ground.security.sa == SaConfig(old.spi, old.suite, key, key_id)
    assert ground.security.seq < 1000 and old in ground.old_keys
    status = rover.await_event("SA_STATUS", timeout=60, since="test", predicate=lambda a: a["key_id"] == key_id)
    assert status.args["spi"] == old.spi
    rover.send_and_assert_command("PING", timeout=120)
    rover.send_and_assert_command("MODE_SET", mode="STANDBY", timeout=120)
    # the old key is dead on the rover: a frame under it is refused
    packet, _ = ground.build_command("PING", {})
    stale = SecuritySender(old, seq=MAX_SEQ)
    rover.send_raw_frame(build_ad_frame(rover.mission.scid, rover.mission.tc_vcid, ground.fop.vs, packet, security=stale))
    ev = rover.await_event("TC_AUTH_REJECTED", timeout=60)
    assert rover.mission.enum_label("auth_reason", ev.args["reason"]) == "BAD_MAC"


def test_a_bad_otar_mac_is_refused_and_the_key_stays(rover) -> None:
    ground = rover.ground
    iv = secrets.token_bytes(12)
    wrapped, mac = wrap_key(bytes(32), 9, secrets.token_bytes(32), iv)  # not the master key
    track = rover.send_command("KEY_OTAR", key_id=9, iv=iv, wrapped=wrapped, mac=mac)
    assert rover.await_failure(track, timeout=60)[1] == "OTAR_BAD_MAC"
    assert 9 not in ground.loaded_keys
    rover.send_and_assert_command("PING", timeout=60)


def test_after_a_commanded_reboot_the_grounds_arsns_are_above_the_rovers_mark(rover) -> None:
    ground = rover.ground
    rover.send_and_assert_command("PING", timeout=60)
    before = ground.security.seq
    rover.send_command("REBOOT")
    boot = rover.await_event("BOOT", timeout=120)
    status = rover.await_event("SA_STATUS", timeout=60, since=boot)
    mark = status.args["arsn_mark"]
    assert mark >= before - 1  # every ARSN the rover accepted is at or below its mark
    rover.send_and_assert_command("PING", timeout=300)  # no operator action: COP-1 resynchronised
    assert ground.security.seq > mark + 1


def test_rejections_raise_the_ground_alarm_and_commanding_still_works(rover) -> None:
    ground = rover.ground
    rover.assert_no_alarm()
    packet, _ = ground.build_command("PING", {})
    m = rover.mission
    forger = SecuritySender(SaConfig(1, ground.security.suite, bytes(32)), seq=ground.security.seq + 5)
    for _ in range(5):
        rover.send_raw_frame(build_ad_frame(m.scid, m.tc_vcid, ground.fop.vs, packet, security=forger))
    rover.await_event("TC_AUTH_REJECTED", timeout=60)
    alarms = ground.state.active_alarms()
    assert [a.name for a in alarms] == [AUTH_ALARM]
    assert rover.await_alarm(AUTH_ALARM, timeout=5).rejected >= 1  # the test API's view
    rover.send_and_assert_command("PING", timeout=120)
    # the HK counter rising renews it; the watch shows it
    rover.await_telemetry("tc_auth_rejected", lambda v: v >= 5, timeout=60)
    from hil.gs.watch import render_to_string

    assert "ALARM" in render_to_string(ground.state) and AUTH_ALARM in render_to_string(ground.state)
    rover.acknowledge_alarm()
    assert ground.state.active_alarms() == []
    rover.assert_no_alarm()
