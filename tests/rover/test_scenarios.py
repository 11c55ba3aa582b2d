"""Issue 3 scenarios: a CPython rover (sim HAL) commanded through the real ground codec.

Each test runs the firmware, the plant and a ground on one virtual-time asyncio loop, so a
three-minute drive takes a fraction of a second.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tests.rover.ground import FAIL, RoverRig, make_root, run_vt

TOL_M = 0.2
TOL_DEG = 2.0


@pytest.fixture
def rig(tmp_path: Path) -> RoverRig:
    return RoverRig(make_root(tmp_path / "rover"))


def _completed(rig: RoverRig, req: Any) -> bool:
    return any(s in (7, 8) for s, _ in rig.reports(req))


def test_drive_10m_straight_stops_within_tolerance(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        req = rig.send("DRIVE_DISTANCE", 10.0, 200.0)
        assert await rig.wait_for(lambda: _completed(rig, req), 400)
        assert [s for s, _ in rig.reports(req)] == [1, 3, 7]
        await rig.wait_for(lambda: rig.hk()["mode"] == 2, 5)

    run_vt(rig, script)
    p = rig.hal.plant
    assert abs(math.hypot(p.x, p.y) - 10.0) < TOL_M
    assert abs(math.degrees(p.heading)) < TOL_DEG
    names = [n for n, _ in rig.events()]
    assert "DRIVE_STARTED" in names and "DRIVE_COMPLETED" in names
    hk = rig.hk()
    assert abs(hk["x_m"] - 10000) < 200 and hk["mode"] == 2  # STANDBY again


def test_jammed_wheel_drive_completes_on_five_wheels(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        req = rig.send("DRIVE_DISTANCE", 10.0, 200.0)
        await rig.wait_for(lambda: rig.hal.plant.x > 4.0, 200)
        rig.send("SIM_INJECT", 1, 2, 0.0)  # JAM wheel 2 (left middle)
        assert await rig.wait_for(lambda: _completed(rig, req), 400)
        assert rig.reports(req)[-1] == (7, None)

    run_vt(rig, script)
    faults = rig.events("WHEEL_FAULT")
    assert faults and faults[0][1][0] == 2 and faults[0][1][1] in (2, 3)  # STALL or OVERCURRENT
    assert ("WHEEL_ISOLATED", (2,)) in rig.events()
    p = rig.hal.plant
    assert abs(p.x - 10.0) < TOL_M
    assert abs(p.y) < TOL_M and abs(math.degrees(p.heading)) < TOL_DEG
    assert rig.hk()["wheel2_state"] in (2, 3)


def test_second_wheel_on_same_side_stops_and_goes_safe(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        req = rig.send("DRIVE_DISTANCE", 10.0, 200.0)
        await rig.wait_for(lambda: rig.hal.plant.x > 3.0, 200)
        rig.send("SIM_INJECT", 1, 4, 0.0)
        await rig.wait_for(lambda: len(rig.events("WHEEL_FAULT")) == 1, 30)
        rig.send("SIM_INJECT", 2, 5, 0.0)  # OPEN_CIRCUIT on the same (right) side
        assert await rig.wait_for(lambda: _completed(rig, req), 60)
        assert rig.reports(req)[-1] == (8, FAIL["WHEEL_UNAVAILABLE"])
        await rig.wait_for(lambda: rig.hk()["mode"] == 1, 5)

    run_vt(rig, script)
    assert ("DRIVE_ABORTED", (3, rig.events("DRIVE_ABORTED")[0][1][1])) in rig.events()
    assert ("MODE_CHANGE", (3, 1, 6)) in rig.events()  # DRIVE -> SAFE (WHEEL_FAULT)
    assert rig.events("WHEEL_FAULT")[1][1] == (5, 4)  # OPEN_CIRCUIT
    assert rig.hk()["mode"] == 1
    assert abs(rig.hal.plant.v) < 0.01


def test_tilt_25_degrees_goes_safe(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        req = rig.send("DRIVE_DISTANCE", 5.0, 200.0)
        await rig.wait_for(lambda: rig.hal.plant.x > 1.0, 100)
        rig.send("SIM_INJECT", 6, 0, 25.0)
        assert await rig.wait_for(lambda: _completed(rig, req), 10)
        assert rig.reports(req)[-1] == (8, FAIL["HAZARD"])
        # a new drive is refused while tilted (SAFE)
        req2 = rig.send("DRIVE_DISTANCE", 1.0, 100.0)
        await rig.wait_for(lambda: rig.reports(req2), 5)
        assert rig.reports(req2) == [(2, FAIL["WRONG_MODE"])]
        await rig.wait_for(lambda: rig.hk()["mode"] == 1, 5)

    run_vt(rig, script)
    tilt = rig.events("HAZARD_TILT")
    assert tilt and tilt[0][1][0] > 2000
    assert ("MODE_CHANGE", (3, 1, 2)) in rig.events()  # DRIVE -> SAFE (TILT)
    assert rig.hk()["mode"] == 1


def test_obstacle_stops_the_drive(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        req = rig.send("DRIVE_DISTANCE", 10.0, 200.0)
        await rig.wait_for(lambda: rig.hal.plant.x > 2.0, 100)
        rig.send("SIM_INJECT", 7, 0, 2.5)  # a 0.3 m rock 2.5 m ahead
        assert await rig.wait_for(lambda: _completed(rig, req), 200)
        assert rig.reports(req)[-1] == (8, FAIL["HAZARD"])
        await rig.wait_for(lambda: rig.hk()["mode"] == 2, 5)

    run_vt(rig, script)
    obs = rig.events("HAZARD_OBSTACLE")
    assert obs and obs[0][1][0] == 300 and obs[0][1][1] <= 1000
    aborted = rig.events("DRIVE_ABORTED")
    assert aborted and aborted[0][1][0] == 2  # OBSTACLE
    p = rig.hal.plant
    assert 2.0 < p.x < 4.5  # stopped short of the rock
    assert rig.hk()["mode"] == 2  # an obstacle stops, it does not go SAFE


def test_time_tagged_command_runs_at_its_time(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> float:
        rig.send("TIME_SET", 1000)
        await rig.wait_for(lambda: bool(rig.events("TIME_CHANGED")), 5)
        inner = rig.packet("PING")
        req = rig.send("TT_INSERT", 1030, tail=inner)
        await rig.wait_for(lambda: bool(rig.reports(req)), 5)
        assert rig.reports(req)[-1] == (7, None)
        # the next housekeeping shows it queued, before its release time
        assert await rig.wait_for(lambda: rig.hk()["tt_queue_depth"] == 1, 5)
        assert not rig.events("TT_RELEASED")
        await rig.wait_for(lambda: bool(rig.events("TT_RELEASED")), 60)
        return rig.rover.time_s

    t = run_vt(rig, script)
    rel = rig.events("TT_RELEASED")
    assert rel == [("TT_RELEASED", (17, 1, 1030))]
    assert 1030 <= t <= 1032
    pings = [x for x in rig.tm if x.service == 17 and x.subservice == 2]
    assert len(pings) == 1


def test_time_tagged_queue_survives_a_reset(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        rig.send("TIME_SET", 5000)
        req = rig.send("TT_INSERT", 5100, tail=rig.packet("PING"))
        await rig.wait_for(lambda: bool(rig.reports(req)), 5)
        rig.send("REBOOT")
        await rig.wait_for(lambda: len(rig.events("BOOT")) == 2, 20)
        await rig.wait_for(lambda: bool(rig.events("TT_RELEASED")), 200)

    run_vt(rig, script)
    boots = rig.events("BOOT")
    assert boots[1][1][1] == 2 and boots[1][1][2] == 2  # boot 2, COMMANDED
    assert rig.events("TT_RELEASED") == [("TT_RELEASED", (17, 1, 5100))]


def test_hung_task_watchdog_reset_reports_boot_count_and_cause(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        rig.send("SIM_INJECT", 9, 3, 0.0)  # hang the telemetry task
        assert await rig.wait_for(lambda: len(rig.events("BOOT")) >= 2, 30)
        await rig.wait_for(lambda: rig.hk()["boot_count"] == 2, 5)

    run_vt(rig, script)
    boot = rig.events("BOOT")[1][1]
    assert boot[1] == 2 and boot[2] == 1  # boot 2, reset cause WATCHDOG
    hk = rig.hk()
    assert hk["boot_count"] == 2 and hk["reset_cause"] == 1
    assert rig.hal.resets == 1


def test_repeated_unexpected_resets_go_safe(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        for n in range(3):
            rig.send("SIM_INJECT", 9, 2, 0.0)  # hang the link task
            await rig.wait_for(lambda n=n: len(rig.events("BOOT")) >= n + 2, 30)
            rig.vs = 0  # FARM restarts at V(R) 0 after a reset
            await rig.wait_for(lambda: False, 1)

    run_vt(rig, script)
    assert rig.events("MODE_CHANGE")[-1] == ("MODE_CHANGE", (0, 1, 5))  # BOOT -> SAFE (RESETS)


def test_low_battery_goes_safe_then_hibernates_and_wakes(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        rig.send("SIM_INJECT", 8, 0, 0.0)  # night: no sun
        rig.send("SIM_INJECT", 5, 0, 15.0)  # battery down to 15 %
        assert await rig.wait_for(lambda: bool(rig.events("BATTERY_LOW")), 10)
        await rig.wait_for(lambda: rig.hk()["mode"] == 1, 5)
        rig.send("SIM_INJECT", 5, 0, 9.0)
        assert await rig.wait_for(lambda: bool(rig.events("HIBERNATE_ENTER")), 10)
        await rig.wait_for(lambda: rig.hk()["mode"] == 4, 5)
        rig.send("SIM_INJECT", 8, 0, 1.0)  # sunrise: charges back above the wake level
        assert await rig.wait_for(lambda: bool(rig.events("HIBERNATE_WAKE")), 6 * 3600)

    run_vt(rig, script)
    modes = [a for n, a in rig.events("MODE_CHANGE")]
    assert (2, 1, 3) in modes  # STANDBY -> SAFE (LOW_BATTERY)
    assert (1, 4, 3) in modes  # SAFE -> HIBERNATE (LOW_BATTERY)
    assert (4, 1, 7) in modes  # HIBERNATE -> SAFE (WAKE)
    assert rig.events("HIBERNATE_WAKE")[0][1][0] >= 40


def test_bad_commands_are_rejected_and_change_nothing(rig: RoverRig) -> None:
    from protocols.pus import build_tc_packet

    async def script(rig: RoverRig) -> list[Any]:
        await rig.wait_for(lambda: False, 2)
        before = rig.hk()
        out = []
        # unknown command
        out.append((rig.send_packet(build_tc_packet(1, 900, 200, 99, b"")), FAIL["UNKNOWN_COMMAND"]))
        # wrong length
        out.append((rig.send_packet(build_tc_packet(1, 901, 200, 2, b"\0\0\0")), FAIL["BAD_LENGTH"]))
        # out of range: 500 m
        out.append((rig.send("DRIVE_DISTANCE", 500.0, 100.0), FAIL["OUT_OF_RANGE"]))
        # parameter out of its own range, unknown parameter
        out.append((rig.send("PARAM_SET", 1, 999.0), FAIL["OUT_OF_RANGE"]))
        out.append((rig.send("PARAM_SET", 77, 1.0), FAIL["UNKNOWN_PARAMETER"]))
        # a mode transition that is not allowed (STANDBY -> HIBERNATE is; -> BOOT is not in range)
        out.append((rig.send("MODE_SET", 0), FAIL["OUT_OF_RANGE"]))
        # wrong mode: go SAFE, then drive
        rig.send("MODE_SET", 1)
        await rig.wait_for(lambda: rig.hk()["mode"] == 1, 5)
        out.append((rig.send("DRIVE_DISTANCE", 1.0, 100.0), FAIL["WRONG_MODE"]))
        await rig.wait_for(lambda: all(rig.reports(r) for r, _ in out), 10)
        await rig.wait_for(lambda: False, 2)
        after = rig.hk()
        return [before, after, out]

    before, after, out = run_vt(rig, script)
    for req, code in out:
        assert rig.reports(req) == [(2, code)], (req, code, rig.reports(req))
    assert after["cmd_rejected"] - before["cmd_rejected"] == len(out)
    for k in ("x_m", "y_m", "odometer_m", "tt_queue_depth", "boot_count", "cmd_failed"):
        assert after[k] == before[k], k
    assert rig.rover.params.v[1] == 200.0
    assert not rig.hal.plant.enabled


def test_param_set_and_get_round_trip_and_persist(rig: RoverRig) -> None:
    import struct

    async def script(rig: RoverRig) -> None:
        req = rig.send("PARAM_SET", 1, 150.0)
        await rig.wait_for(lambda: bool(rig.reports(req)), 5)
        rig.send("REBOOT")
        await rig.wait_for(lambda: len(rig.events("BOOT")) == 2, 20)
        rig.vs = 0
        req = rig.send("PARAM_GET", 1)
        await rig.wait_for(lambda: any(t.service == 20 for t in rig.tm), 5)

    run_vt(rig, script)
    rep = [t for t in rig.tm if t.service == 20 and t.subservice == 2]
    assert struct.unpack(">Hf", rep[0].data) == (1, 150.0)
    assert ("PARAM_CHANGED", (1, 150.0)) in rig.events()


def test_turn_and_arc_follow_the_commanded_path(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        req = rig.send("TURN", 90.0)
        assert await rig.wait_for(lambda: _completed(rig, req), 200)
        req = rig.send("DRIVE_ARC", 5.0, 5.0, 200.0)
        assert await rig.wait_for(lambda: _completed(rig, req), 400)

    run_vt(rig, script)
    p = rig.hal.plant
    # after 90 deg left, an arc of radius 5 m for 5 m turns a further 1 rad
    assert abs(math.degrees(p.heading) - (90 + math.degrees(1.0))) < 3.0
    exp_x = -5.0 * (1 - math.cos(1.0))
    exp_y = 5.0 * math.sin(1.0)
    assert math.hypot(p.x - exp_x, p.y - exp_y) < 0.3


def test_wheel_disable_and_enable_by_ground(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        rig.send("WHEEL_DISABLE", 1)
        rig.send("WHEEL_DISABLE", 2)
        req = rig.send("DRIVE_DISTANCE", 1.0, 100.0)
        await rig.wait_for(lambda: len(rig.reports(req)) >= 2, 5)
        # accepted, then it cannot start: 1/4, never 1/3 then 1/8
        assert rig.reports(req) == [(1, None), (4, FAIL["WHEEL_UNAVAILABLE"])]
        rig.send("WHEEL_ENABLE", 2)
        req = rig.send("DRIVE_DISTANCE", 1.0, 100.0)
        assert await rig.wait_for(lambda: _completed(rig, req), 100)
        assert rig.reports(req)[-1] == (7, None)

    run_vt(rig, script)
    assert ("WHEEL_ENABLED", (2,)) in rig.events()
    assert abs(rig.hal.plant.x - 1.0) < 0.1


def test_event_dump_resends_the_ring(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        await rig.wait_for(lambda: False, 2)
        n = len(rig.events())
        rig.send("EVENT_DUMP")
        await rig.wait_for(lambda: len(rig.events()) >= 2 * n, 5)

    run_vt(rig, script)
    ev = rig.events()
    assert ev[0][0] == "BOOT" and ev.count(ev[0]) == 2


def test_link_loss_goes_safe_and_contact_is_restored(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        rig.send("PARAM_SET", 5, 10.0)  # link timeout 10 s
        assert await rig.wait_for(lambda: bool(rig.events("LINK_LOST")), 30)
        await rig.wait_for(lambda: rig.hk()["mode"] == 1, 5)
        rig.send("PING")
        assert await rig.wait_for(lambda: bool(rig.events("LINK_RESTORED")), 5)

    run_vt(rig, script)
    assert rig.events("LINK_LOST")[0][1][0] >= 10
    assert ("MODE_CHANGE", (2, 1, 4)) in rig.events()  # STANDBY -> SAFE (LINK_LOSS)


def test_enter_repl_completes_then_stops_the_flight_software(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> bool:
        req = rig.send("ENTER_REPL")
        await rig.wait_for(lambda: rig.task.done(), 5)
        rig.pump()
        assert rig.reports(req) == [(1, None), (3, None), (7, None)]
        return bool(rig.task.done())

    assert run_vt(rig, script) is True
    assert not rig.hal.plant.enabled


def test_time_adjust_moves_the_rover_clock(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> tuple[int, int]:
        rig.send("TIME_SET", 100000)
        await rig.wait_for(lambda: bool(rig.events("TIME_CHANGED")), 5)
        t0 = rig.rover.time_s
        rig.send("TIME_ADJUST", -30500)
        await rig.wait_for(lambda: len(rig.events("TIME_CHANGED")) == 2, 5)
        return t0, rig.rover.time_s

    t0, t1 = run_vt(rig, script)
    assert t0 >= 100000 and -32 <= t1 - t0 <= -29


def test_hk_period_is_commandable(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> tuple[int, int]:
        req = rig.send("HK_SET_PERIOD", 1, 5.0)
        await rig.wait_for(lambda: bool(rig.reports(req)), 5)
        await rig.wait_for(lambda: False, 1)
        n0 = sum(1 for t in rig.tm if t.service == 3)
        await rig.wait_for(lambda: False, 30)
        n1 = sum(1 for t in rig.tm if t.service == 3)
        rig.send("HK_REPORT_NOW", 1)
        await rig.wait_for(lambda: False, 0.5)
        return n1 - n0, sum(1 for t in rig.tm if t.service == 3) - n1

    every_5s, now = run_vt(rig, script)
    assert 5 <= every_5s <= 7
    assert now == 1


def test_brown_out_resets_with_its_cause(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        rig.send("SIM_INJECT", 5, 0, 0.0)
        await rig.wait_for(lambda: len(rig.events("BOOT")) == 2, 10)

    run_vt(rig, script)
    assert rig.events("BOOT")[1][1][2] == 4  # reset cause BROWN_OUT


def test_drive_into_a_rock_right_ahead_fails_to_start_with_hazard(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        rig.send("SIM_INJECT", 7, 0, 0.6)  # a 0.3 m rock 0.6 m ahead: inside the stop distance
        await rig.wait_for(lambda: rig.hk()["obstacle_mm"] == 300, 5)
        req = rig.send("DRIVE_DISTANCE", 5.0, 200.0)
        await rig.wait_for(lambda: len(rig.reports(req)) >= 2, 5)
        await rig.wait_for(lambda: False, 2)
        assert rig.reports(req) == [(1, None), (4, FAIL["HAZARD"])]
        # a turn on the spot does not drive into it: it starts and completes
        req = rig.send("TURN", 90.0)
        assert await rig.wait_for(lambda: _completed(rig, req), 200)
        assert [s for s, _ in rig.reports(req)] == [1, 3, 7]

    run_vt(rig, script)
    assert abs(rig.hal.plant.x) < 0.05  # the failed drive never moved the rover
    assert "DRIVE_ABORTED" not in [n for n, _ in rig.events()]
    assert rig.hk()["cmd_failed"] == 1


def test_drive_while_tilted_fails_to_start_with_hazard(rig: RoverRig) -> None:
    async def script(rig: RoverRig) -> None:
        rig.send("SIM_INJECT", 6, 0, 25.0)  # tilt: SAFE, hazard latched
        await rig.wait_for(lambda: rig.hk()["mode"] == 1, 5)
        rig.send("MODE_SET", 2)  # the ground takes the rover back to STANDBY, still tilted
        await rig.wait_for(lambda: rig.hk()["mode"] == 2, 5)
        req = rig.send("DRIVE_DISTANCE", 1.0, 100.0)
        await rig.wait_for(lambda: len(rig.reports(req)) >= 2, 5)
        await rig.wait_for(lambda: False, 2)
        assert rig.reports(req) == [(1, None), (4, FAIL["HAZARD"])]

    run_vt(rig, script)
    assert rig.rover.safety.tilt_latched
    assert abs(rig.hal.plant.x) < 0.05


def test_hung_control_loop_is_bitten_by_the_sim_watchdog_within_its_timeout(rig: RoverRig) -> None:
    # the control loop is what calls hal.update(): with it hung only the sim HAL's own
    # watchdog task can bite, and it must do so once the watchdog went unfed for its timeout
    times: dict[str, float] = {}

    async def script(rig: RoverRig) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        rig.send("SIM_INJECT", 9, 1, 0.0)  # hang the control task
        assert await rig.wait_for(lambda: rig.hal.hang_task == 1, 5)
        times["hung"] = loop.time()
        assert await rig.wait_for(lambda: rig.hal.resets == 1, 30)
        times["reset"] = loop.time()
        await rig.wait_for(lambda: len(rig.events("BOOT")) >= 2, 10)

    run_vt(rig, script)
    timeout_s = rig.board["watchdog"]["timeout_ms"] / 1000
    # fed at most a watchdog period (timeout/4) before the hang; bites at the timeout
    assert timeout_s * 0.75 - 0.2 <= times["reset"] - times["hung"] <= timeout_s + 0.3
    assert rig.events("BOOT")[1][1][2] == 1  # reset cause WATCHDOG
