"""The plant's Sun, battery and thermal model (firmware_py.hal.plant): drain and charge,
brown-out when the battery is truly empty and power-up after the array has recharged it
(in the plant, the sim HAL and a whole rover), the 14-day night's energy budget, and long
steps that agree with many short ones."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from firmware_py.hal import RESET_BROWN_OUT, Reset
from firmware_py.hal import plant as P
from firmware_py.hal.plant import Plant
from firmware_py.hal.sim import SimHal
from tests.rover.ground import RoverRig, make_root, run_vt

NIGHT_S = P.SYNODIC_S / 2  # the Sun's declination taken as 0: night and day last the same
HOUR = 3600.0


def night_plant(soc: float = 1.0, temp_c: float = 0.0) -> Plant:
    """A plant at sunset, hibernating with armed heaters."""
    p = Plant(1)
    p.set_sun(0.0)
    p.soc = soc
    p.temp_board = temp_c
    p.hibernating = True
    p.heater(True)
    return p


def test_the_sun_rises_and_sets_once_a_synodic_day_and_the_array_follows() -> None:
    p = Plant(1)
    p.set_sun(0.0)
    up, elev_max, array_max = 0.0, -90.0, 0.0
    for _ in range(int(P.SYNODIC_S / 600)):
        p.step(600.0)
        if p.sun_elev_deg > 0:
            up += 600.0
            assert p.solar_w > 0
        else:
            assert p.solar_w == 0.0
        elev_max = max(elev_max, p.sun_elev_deg)
        array_max = max(array_max, p.solar_w)
    assert up == pytest.approx(NIGHT_S, rel=0.01)
    assert elev_max == pytest.approx(90.0 + P.SITE_LAT_DEG, abs=0.1)  # 44.56 deg at noon
    assert array_max == pytest.approx(P.SOLAR_PEAK_W, rel=0.001)


def test_the_battery_drains_under_load_at_night_and_recharges_in_the_sun() -> None:
    p = Plant(1)
    p.set_sun(0.0)
    p.step(60.0)
    p.soc = 0.5
    p.step(HOUR)  # awake, motors off: the avionics alone
    assert p.soc == pytest.approx(0.5 - P.AVIONICS_W / P.BATTERY_WH, rel=1e-3)
    p.enabled = True
    for i in range(6):
        p.duty[i] = 0.6
    before = p.soc
    p.step(60.0)  # driving draws more
    assert before - p.soc > 60 * P.AVIONICS_W / 3600 / P.BATTERY_WH * 1.2
    for i in range(6):
        p.duty[i] = 0.0
    p.set_sun(1.0)  # noon
    before = p.soc
    p.step(HOUR)
    gain = (P.SOLAR_PEAK_W - P.AVIONICS_W) * P.CHARGE_EFF / P.BATTERY_WH
    assert p.soc - before == pytest.approx(gain, rel=0.01)
    p.soc = 0.999
    p.step(HOUR)
    assert p.soc == 1.0


def test_an_empty_battery_browns_the_board_out_until_the_array_recharges_it() -> None:
    p = Plant(1)
    p.set_sun(0.0)
    p.step(60.0)
    p.soc = 0.002  # 0.48 Wh: 7.2 minutes at 4 W
    p.enabled = True
    t = 0.0
    while p.powered:
        p.step(1.0)
        t += 1.0
    assert t == pytest.approx(0.002 * P.BATTERY_WH / P.AVIONICS_W * 3600, abs=2.0)
    assert p.brownouts == 1 and p.soc == 0.0 and p.load_w == 0.0
    for i in range(6):
        p.duty[i] = 1.0
    p.step(HOUR)  # unpowered: motors dead, nothing drains, nothing charges at night
    assert p.v == 0.0 and p.soc == 0.0 and not p.powered
    p.set_sun(1.0)
    t = 0.0
    while not p.powered:
        p.step(10.0)
        t += 10.0
    expect = P.REPOWER_SOC * P.BATTERY_WH / (P.SOLAR_PEAK_W * P.CHARGE_EFF) * 3600
    assert t == pytest.approx(expect, abs=11.0)
    assert p.soc >= P.REPOWER_SOC and p.brownouts == 1


def test_the_sim_hal_resets_with_brown_out_and_holds_the_board_off_until_recharged() -> None:
    hal = SimHal({}, None, seed=1)
    p = hal.plant
    p.set_sun(0.0)
    hal.update(0)
    p.soc = 0.001
    now = 0
    with pytest.raises(Reset) as exc:
        for _ in range(10000):
            now += 1000
            hal.update(now)
    assert exc.value.cause == RESET_BROWN_OUT and hal.reset_cause() == RESET_BROWN_OUT
    hal.boot()
    with pytest.raises(Reset):  # still empty: held in reset
        hal.update(now + 60000)
    assert hal.resets == 1

    async def power_up() -> float:
        loop = asyncio.get_running_loop()
        hal._last_ms = int(loop.time() * 1000)
        p.set_sun(1.0)
        t0 = loop.time()
        await hal.power_good()
        return loop.time() - t0

    from hil import vclock

    waited = vclock.run(power_up())
    assert p.powered and p.soc >= P.REPOWER_SOC
    assert 0 < waited <= P.REPOWER_SOC * P.BATTERY_WH / (P.SOLAR_PEAK_W * 0.9) * 3600 + 60
    hal.boot()
    hal.update(int(waited * 1000) + 1000)  # boots and runs
    assert hal.battery_pct >= 5


def test_a_rover_browned_out_at_night_boots_again_after_sunrise(tmp_path: Path) -> None:
    rig = RoverRig(make_root(tmp_path / "rover"))
    p = rig.hal.plant

    async def wait(cond, timeout_s: float, poll_s: float = 10.0) -> bool:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while loop.time() < end and not cond():
            rig.pump()
            await asyncio.sleep(poll_s)
        rig.pump()
        return cond()

    async def script(rig: RoverRig) -> dict[str, float]:
        rig.send("SIM_INJECT", 8, 0, 0.0)  # sunset
        rig.send("SIM_INJECT", 5, 0, 0.02)  # 0.02 % left: 48 mWh
        assert await wait(lambda: p.brownouts == 1, 4 * HOUR)
        boots = len(rig.events("BOOT"))
        assert not await wait(lambda: len(rig.events("BOOT")) > boots, 2 * HOUR)  # stays off
        p.set_sun(1.0)
        t0 = asyncio.get_running_loop().time()
        assert await wait(lambda: len(rig.events("BOOT")) > boots, 2 * HOUR, 1.0)
        return {"off_after_sunrise_s": asyncio.get_running_loop().time() - t0}

    out = run_vt(rig, script)
    boot = rig.events("BOOT")[-1][1]
    assert boot[2] == RESET_BROWN_OUT
    assert out["off_after_sunrise_s"] > 0.8 * P.REPOWER_SOC * P.BATTERY_WH / P.SOLAR_PEAK_W * 3600
    assert p.soc >= P.REPOWER_SOC


def night_budget_wh(temp0_c: float) -> float:
    """The stated energy budget of a night (hibernation load, heaters holding T_SURVIVE_C
    once the box has cooled to it), computed from the figures alone."""
    tinf = P.T_NIGHT_C + (P.RHU_W + P.HIBERNATE_W) / P.G_NIGHT
    tau = P.C_BOARD / P.G_NIGHT
    t_cool = tau * math.log((temp0_c - tinf) / (P.T_SURVIVE_C - tinf))
    heater_w = P.G_NIGHT * (P.T_SURVIVE_C - tinf)
    return (P.HIBERNATE_W * NIGHT_S + heater_w * (NIGHT_S - t_cool)) / 3600


def test_a_lunar_night_in_hibernation_costs_what_the_energy_budget_says() -> None:
    p = night_plant(soc=1.0, temp_c=0.0)
    t = 0.0
    while p.sun_elev_deg <= 0.0 or t < HOUR:
        p.step(HOUR)
        t += HOUR
        assert p.powered
        assert p.temp_board >= P.T_SURVIVE_C - 1e-6
    used_wh = (1.0 - p.soc) * P.BATTERY_WH
    # the night ended within the last hour step, which the Sun then partly recharged
    budget = night_budget_wh(0.0)
    assert used_wh == pytest.approx(budget, rel=0.02), (used_wh, budget)
    assert budget < 0.4 * P.BATTERY_WH  # the night leaves well over half the battery
    assert t == pytest.approx(NIGHT_S, abs=HOUR)


def test_without_heaters_the_rhu_alone_holds_the_box_near_its_survival_limit() -> None:
    p = night_plant(temp_c=20.0)
    p.heater(False)
    p.step(10 * 86400.0)
    tinf = P.T_NIGHT_C + (P.RHU_W + P.HIBERNATE_W) / P.G_NIGHT
    assert p.temp_board == pytest.approx(tinf, abs=0.1)
    assert P.T_SURVIVE_C - 5 < tinf < P.T_SURVIVE_C


@pytest.mark.parametrize("case", ["night_heaters", "night_cooling", "day_awake"])
def test_one_long_step_gives_what_many_short_steps_give(case: str) -> None:
    def make() -> Plant:
        if case == "day_awake":
            p = Plant(1)
            p.set_lunar_time(-3 * 86400.0)  # morning
            p.soc = 0.3
            p.temp_board = -10.0
            return p
        return night_plant(soc=0.8, temp_c=20.0 if case == "night_cooling" else -35.0)

    long, short = make(), make()
    long.step(HOUR)
    for _ in range(3600):
        short.step(1.0)
    assert long.soc == pytest.approx(short.soc, abs=1e-5)
    assert long.temp_board == pytest.approx(short.temp_board, abs=0.01)
    assert long.temp_motor == pytest.approx(short.temp_motor, abs=0.01)
    assert long.lunar_s == pytest.approx(short.lunar_s, abs=1e-3)
    assert long.sun_elev_deg == pytest.approx(short.sun_elev_deg, abs=0.01)


def test_the_box_is_warm_by_day_and_cold_by_night() -> None:
    p = Plant(1)
    p.step(86400.0)  # noon, awake
    assert 30.0 < p.temp_board < 45.0
    p.set_sun(0.0)
    p.hibernating = True
    p.step(5 * 86400.0)
    assert p.temp_board < -30.0
    assert p.temp_motor < -150.0  # the wheels' motors have no RHU


def test_the_sim_watchdog_pauses_while_the_board_hibernates() -> None:
    hal = SimHal({}, None, seed=1)
    hal.update(0)
    hal.wdt_start(1000)
    hal.wdt_feed()
    hal.hibernate(True)
    hal.update(120_000)  # two minutes unfed, asleep: no bite
    hal.hibernate(False)  # awake: it counts afresh from the wake
    hal.update(120_500)
    with pytest.raises(Reset) as exc:
        hal.update(122_000)
    assert exc.value.cause == 1  # RESET_WATCHDOG
