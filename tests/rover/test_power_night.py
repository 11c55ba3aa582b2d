"""Power and thermal for the lunar night (firmware_py.power) and the rover's clocks: dusk
hibernates with the reason NIGHT, sunrise wakes it, the survival heaters follow their
thermostat, a hibernating rover's tasks wake at most once a minute, and time-tagged
commands leave the queue within one control period of their time."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from firmware_py import modes
from firmware_py.app import Rover
from tests.rover.ground import RoverRig, make_root, run_vt
from tests.rover.mpy_runner import Runner

F_SUN = 8
EV_MODE, EV_HIB_ENTER, EV_HIB_WAKE, EV_TT_RELEASED = 2, 12, 13, 18


def test_dusk_hibernates_for_the_night_and_sunrise_wakes(tmp_path: Path) -> None:
    r = Runner(make_root(tmp_path / "r"))
    r.run_s(5)
    r.send(250, 1, struct.pack(">BBf", F_SUN, 0, 0.0))  # sunset: the array gives nothing
    r.run_s(200)
    assert r.rover.modes.mode == modes.STANDBY  # night_confirm_s (300 s) not yet
    assert r.run_s(200, lambda: r.rover.modes.mode == modes.HIBERNATE)
    assert (EV_MODE, (modes.STANDBY, modes.HIBERNATE, modes.R_NIGHT)) in r.events
    assert EV_HIB_ENTER in r.event_ids()
    assert r.hal.plant.hibernating
    r.run_s(3600)
    assert r.rover.modes.mode == modes.HIBERNATE  # the night holds
    r.send(250, 1, struct.pack(">BBf", F_SUN, 0, 1.0))  # sunrise (noon's array)
    r.run_s(60)
    assert r.rover.modes.mode == modes.HIBERNATE  # wake_confirm_s (120 s) not yet
    assert r.run_s(200, lambda: r.rover.modes.mode == modes.SAFE)
    assert (EV_MODE, (modes.HIBERNATE, modes.SAFE, modes.R_WAKE)) in r.events
    assert not r.hal.plant.hibernating


def test_survival_heaters_follow_the_board_thermostat(tmp_path: Path) -> None:
    r = Runner(make_root(tmp_path / "r"))
    r.run_s(3)
    p = r.hal.plant
    assert not p.heater_armed and not r.rover.power.heater_on
    p.temp_board = -30.0  # colder than heater_on_c (-20 C)
    r.run_s(2)
    assert p.heater_armed and r.rover.power.heater_on
    p.temp_board = -15.0  # inside the band: no change
    r.run_s(2)
    assert p.heater_armed
    p.temp_board = 5.0  # warmer than heater_off_c (-10 C)
    r.run_s(2)
    assert not p.heater_armed and not r.rover.power.heater_on


def test_a_hibernating_rover_s_tasks_wake_at_most_once_a_minute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = {"control": 0, "link": 0}
    hib = {"on": False}
    orig_control = Rover.control

    def control(self: Any, now_ms: int) -> None:
        if hib["on"] and self.modes.mode == modes.HIBERNATE:
            counts["control"] += 1
        orig_control(self, now_ms)

    monkeypatch.setattr(Rover, "control", control)
    rig = RoverRig(make_root(tmp_path / "r"))

    async def script(rig: RoverRig) -> None:
        rig.send("SIM_INJECT", F_SUN, 0, 0.0)
        rig.send("HIBERNATE", 0)
        assert await rig.wait_for(lambda: rig.rover.modes.mode == modes.HIBERNATE, 30)
        await rig.wait_for(lambda: False, 120)  # let every task reach its long nap
        polls = rig.rover.link.poll
        n = [0]

        def poll(now_ms: int) -> Any:
            n[0] += 1
            return polls(now_ms)

        rig.rover.link.poll = poll
        hib["on"] = True
        await rig.wait_for(lambda: False, 3600)
        hib["on"] = False
        counts["link"] = n[0]

    run_vt(rig, script)
    # one an hour of each a minute (the housekeeping task runs a control period too)
    assert counts["control"] <= 2 * 61, counts
    assert counts["link"] <= 2 * 61, counts
    assert rig.rover.modes.mode == modes.HIBERNATE


def test_time_tagged_command_is_released_within_one_control_period(tmp_path: Path) -> None:
    r = Runner(make_root(tmp_path / "r"))
    r.run_s(2)
    r.send(9, 128, struct.pack(">I", 5000))  # TIME_SET
    r.run_s(1.3)  # mid-second: the release must not wait for a whole-second tick
    released: list[int] = []

    def on_event(eid: int, args: Any) -> None:
        if eid == EV_TT_RELEASED:
            rv = r.rover
            released.append(rv._t0_s * 1000 + rv.uptime_ms - rv._t0_up_ms)

    r.rover.events.listeners.append(on_event)
    ping = r.packet(17, 1)
    req = r.send(11, 4, struct.pack(">I", 5010) + ping)
    assert r.run_s(20, lambda: bool(released))
    assert r.reports(req)[-1] == (7, None)
    assert 5010 * 1000 <= released[0] <= 5010 * 1000 + 100  # one control period
