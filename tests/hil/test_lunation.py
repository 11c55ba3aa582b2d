"""A lunation: dusk, 14.77 days of hibernation, sunrise, a drive in the morning, the day.

Judged by the plant's truth (tests/hil/truth.py): the Sun's true elevation when the rover
goes to sleep and when it wakes, the battery's true charge all night, the brown-outs the
plant counted. The plant's figures (battery, array, heaters, radioisotope heat) and their
sources are in firmware_py/hal/plant.py; with its stated 240 Wh battery the night costs
a fraction of the charge. A battery a thirtieth that size runs empty before sunrise: the
board browns out, stays off, and boots (reset cause BROWN_OUT) once the array has
recharged it.

And virtual time sleeps when the rover sleeps: a hibernating rover's tasks wake at most
once a minute (the link task may keep its idle poll), so the loop jumps from one to the
next and the night costs seconds; so does the idle day, where the ground asks for HK once
per 10 minutes and the rover naps between reports (virtual time only: firmware_py.app). The
whole 29.53 days run in the suite; the wall time is tests/bench/bench_hil.py's figure.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.hil import sorties, truth

pytestmark = [pytest.mark.hil, pytest.mark.farside_targets("virtual"), pytest.mark.slow]

DAY_S = sorties.DAY_S


def test_lunation_hibernates_at_dusk_sleeps_the_night_drives_after_sunrise_and_lives_the_day(rover, plant):
    synodic = sorties._plant_module().SYNODIC_S
    r = sorties.lunation(rover, plant, before_dusk_h=8.0, drive_m=5.0, run_s=synodic)
    # dusk: the rover went to sleep by itself, for the night, with the Sun at the horizon
    assert r.hibernate_reason == "NIGHT"
    assert r.hibernated_s is not None and r.hibernated_s <= 8 * 3600 + DAY_S
    assert r.sun_at_hibernate_deg is not None and r.sun_at_hibernate_deg <= 2.0
    # the night: slept through on the stated budget, never browned out, never reset
    assert r.brownouts == 0, f"{r.brownouts} brown-outs with the stated battery"
    assert r.reset_cause is None, f"the rover reset during the night ({r.reset_cause})"
    assert r.woke_s is not None, "no HIBERNATE_WAKE at sunrise"
    assert 14.0 * DAY_S <= r.night_s <= 16.0 * DAY_S, f"night of {r.night_s / DAY_S:.2f} days"
    assert r.min_soc > 0.2, f"the battery truly fell to {r.min_soc:.1%}"
    # sunrise: awake with the Sun truly up, and not days later
    assert r.sun_at_wake_deg is not None and 0.0 < r.sun_at_wake_deg <= 10.0
    rover.assert_event("HIBERNATE_WAKE")
    # and the morning's drive truly covers its distance
    assert r.drive_after_m == pytest.approx(5.0, rel=0.01)
    # and the rest of the lunar day, awake and idle, to the next afternoon
    assert r.end_s >= synodic
    # awake all day (a day without a command: SAFE for the link's loss, as it should)
    assert rover.get_telemetry("mode") in ("STANDBY", "SAFE")
    assert getattr(rover.h, "boots", 1) == 1, "the rover rebooted during the lunation"


def test_battery_too_small_for_the_night_browns_out_and_boots_when_the_sun_returns(rover, plant):
    mod = sorties._plant_module()
    # 8 Wh: the night's draw (hibernation load and survival heaters) is about 17 Wh
    r = sorties.lunation(rover, plant, before_dusk_h=6.0, drive_m=2.0, battery_wh=mod.BATTERY_WH / 30.0)
    assert r.hibernate_reason == "NIGHT"
    assert r.brownouts >= 1, "the battery never truly emptied"
    assert r.min_soc == pytest.approx(0.0, abs=0.005)
    assert r.woke_s is None and r.brownout_boot_s is not None
    assert r.reset_cause == "BROWN_OUT"  # the first boot after dusk
    # off all night: it came back only after sunrise, with the array having recharged it
    assert r.night_s is not None and r.night_s >= 14.0 * DAY_S
    assert r.sun_at_boot_deg is not None and r.sun_at_boot_deg > 0.0
    assert r.soc_at_boot is not None and r.soc_at_boot >= mod.REPOWER_SOC - 0.005
    assert r.drive_after_m == pytest.approx(2.0, rel=0.01)


def test_a_hibernating_rover_lets_virtual_time_jump_all_night(rover, plant):
    # Looked at a week into the night: past half the period of the rover's 30-bit
    # millisecond ticks (6.2 days), where a "time since" that forgets the wrap turns negative.
    w = truth.need_world(plant)
    rover.await_mode("STANDBY", timeout=60)
    rover.send_and_assert_command("PING", timeout=120)  # the uplink was last heard here
    w.set_lunar_time(sorties._plant_module().SYNODIC_S / 4.0 + 3600.0)  # an hour after sunset
    rover.await_event("HIBERNATE_ENTER", timeout=DAY_S)
    rover.wait(7 * DAY_S)
    loop = rover.h.loop
    loop.wakers = Counter()
    hours = 6.0
    rover.wait(hours * 3600.0)
    wakers = dict(loop.wakers)
    loop.wakers = None
    assert rover.get_telemetry("mode") == "HIBERNATE"
    per_minute = hours * 60 * 1.1 + 2
    link_idle = hours * 3600 / 0.1 * 1.1  # the link task may keep its 100 ms idle poll
    busy = {
        name: n for name, n in wakers.items()
        if n > (link_idle if "_link_task" in name else per_minute)
    }
    assert not busy, f"woke the loop more often than a hibernating rover may, in {hours:g} h a week into the night: {busy}"
