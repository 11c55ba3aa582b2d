"""Attacks on the CPython rover (sim HAL, virtual time) by someone who records and injects
frames on the link but holds no key: replays after a watchdog reset, a commanded reboot and
a power cut, AD and BD, injected at once after the boot and again after the ground has
resynchronised; a recorded ENTER_REPL; forged frames; a flood; and sequence-number
exhaustion answered by an over-the-air rekey. The rover is judged by the plant's truth
(hal.plant.travelled), not by its telemetry."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest

from firmware_py.sdls import (
    AUTH_BAD_MAC,
    AUTH_OUT_OF_WINDOW,
    AUTH_REPLAYED,
    AUTH_UNKNOWN_SPI,
    RESERVE,
)
from tests.rover.ground import DICT, EVENT_IDS, FAIL, run_vt
from tests.security.sdls_ground import (
    KEY,
    MASTER,
    MAX_ARSN,
    NEW_KEY,
    SecRig,
    key_file,
    make_sec_root,
    secure_tc,
    wrap_key,
)

HANG_TASK = 9
AUTH_IDS = (EVENT_IDS["TC_AUTH_REJECTED"], EVENT_IDS["TC_AUTH_SUMMARY"])
DRIVE = ("DRIVE_DISTANCE", 0.3, 200.0)  # 0.3 m at 200 m/h: 5.4 s


def rig_for(tmp_path: Path, suite: str = "aes-gcm", **kw: Any) -> SecRig:
    return SecRig(make_sec_root(tmp_path / "rover", key_file(suite, **kw)), suite=suite)


async def drive_and_wait(rig: SecRig, bypass: bool = False) -> tuple[int, int]:
    req = rig.send(*DRIVE, bypass=bypass)
    done = await rig.wait_for(lambda: any(s in (7, 8) for s, _ in rig.reports(req)), 30)
    assert done and (7, None) in rig.reports(req), rig.reports(req)
    return req


async def reset(rig: SecRig, how: str) -> None:
    boots = len(rig.rovers)
    if how == "watchdog":
        rig.send("SIM_INJECT", HANG_TASK, 1, 0.0)  # the control task hangs: the watchdog bites
    elif how == "reboot":
        rig.send("REBOOT")
    else:
        await rig.power_cut()
    await rig.until_boots(boots + 1)


@pytest.mark.parametrize("how", ["watchdog", "reboot", "power_cut"])
def test_recorded_ad_and_bd_frames_are_rejected_after_any_reset(tmp_path: Path, how: str) -> None:
    rig = rig_for(tmp_path)

    async def script(r: SecRig) -> None:
        await drive_and_wait(r)  # AD, N(S) = 0: what FARM takes first after a boot
        await drive_and_wait(r, bypass=True)  # BD: bypasses FARM
        recorded = list(r.sent_frames)
        moved = r.hal.plant.travelled
        assert moved > 0.5
        await reset(r, how)
        moved = r.hal.plant.travelled  # (the plant may settle a little while the rover resets)
        # injected at once, before the ground has done anything
        for f in recorded:
            r.inject(f)
        await r.wait_for(lambda: False, 8)
        assert r.hal.plant.travelled == pytest.approx(moved, abs=1e-3)
        assert r.hk()["tc_auth_rejected"] == 2
        reasons = [a[0] for _, a in r.auth_events() if _ == "TC_AUTH_REJECTED"]
        assert reasons and set(reasons) <= {AUTH_REPLAYED, AUTH_OUT_OF_WINDOW}
        # the ground resynchronises (ARSN from SA_STATUS, V(R) by a BC frame) and commands
        r.resync()
        assert r.next_arsn >= RESERVE  # above the mark the rover reported
        r.set_vr(0)
        ping = r.send("PING")
        assert await r.wait_for(lambda: (7, None) in r.reports(ping), 10)
        # the recorded frames again, now that the link is live: still nothing moves
        for f in recorded:
            r.inject(f)
        await r.wait_for(lambda: False, 8)
        assert r.hal.plant.travelled == pytest.approx(moved, abs=1e-3)
        assert r.hk()["tc_auth_rejected"] == 4
        # and the ground still drives the rover
        await drive_and_wait(r)
        assert r.hal.plant.travelled > moved + 0.2

    run_vt(rig, script)


def test_the_boot_reports_the_mark_and_hk_the_highest_number(tmp_path: Path) -> None:
    rig = rig_for(tmp_path)

    async def script(r: SecRig) -> None:
        await r.wait_for(lambda: len(r.events("SA_STATUS")) >= 2, 5)
        first = [a for _, a in r.events("SA_STATUS")]
        assert (1, 0, 1) in first and (7, 0, 7) in first
        for _ in range(3):
            req = r.send("PING")
        assert await r.wait_for(lambda: (7, None) in r.reports(req), 10)
        await r.wait_for(lambda: r.hk()["sa_arsn"] == 3, 5)
        assert r.hk()["sa_arsn"] == 3
        await reset(r, "reboot")
        after = [a for _, a in r.events("SA_STATUS")][len(first) :]
        assert (1, RESERVE, 1) in after  # ARSN 1 reserved 1..256 on flash; REBOOT (4) needed no write

    run_vt(rig, script)


def test_a_recorded_enter_repl_is_rejected(tmp_path: Path) -> None:
    """The flash tool sends ENTER_REPL as BD; replayed once the flight software runs again,
    it is a replay (BD needs an ARSN above the persisted mark), and the software keeps running."""
    from firmware_py.app import run_forever

    rig = rig_for(tmp_path)

    async def script(r: SecRig) -> None:
        r.send("ENTER_REPL", bypass=True)
        recorded = r.sent_frames[-1]
        assert await r.wait_for(lambda: r.task.done(), 10)  # back at the REPL
        # the board is started again (as after flashing): a new boot on the same flash
        import asyncio

        r.task = asyncio.create_task(run_forever(r.board, r.hal, r.root, None, r.rovers.append, 20))
        await r.until_boots(2)
        r.inject(recorded)
        await r.wait_for(lambda: False, 5)
        assert not r.task.done(), "the replayed ENTER_REPL stopped the flight software"
        assert r.hk()["tc_auth_rejected"] == 1
        assert [a[0] for _, a in r.events("TC_AUTH_REJECTED")] in ([AUTH_REPLAYED], [AUTH_OUT_OF_WINDOW])

    run_vt(rig, script)


@pytest.mark.parametrize("suite", ["aes-gcm", "gmac", "hmac-sha256"])
def test_forged_frames_are_rejected_and_nothing_moves(tmp_path: Path, suite: str) -> None:
    rig = rig_for(tmp_path, suite)
    pkt = rig.packet(*DRIVE)
    other = bytes(b ^ 0xA5 for b in KEY)
    good = secure_tc(suite, KEY, 1, 5, pkt)
    flipped = bytearray(good)
    flipped[25] ^= 0x01  # inside the data field
    from tests.security.sdls_ground import with_fecf

    forged = [
        secure_tc(suite, other, 1, 5, pkt),  # no key: a guess
        with_fecf(bytes(flipped[:-2])),  # altered, FECF made good again
        secure_tc(suite, KEY, 9, 5, pkt),  # an SPI the rover does not have
    ]
    want = [AUTH_BAD_MAC, AUTH_BAD_MAC, AUTH_UNKNOWN_SPI]
    if suite != "hmac-sha256":
        forged.append(secure_tc(suite, KEY, 1, 5, pkt, iv_high=b"\x00" * 7 + b"\x01"))  # IV above 2^32
        want.append(AUTH_OUT_OF_WINDOW)

    async def script(r: SecRig) -> None:
        for f in forged:
            r.inject(f)
            await r.wait_for(lambda: len(r.events("TC_AUTH_REJECTED")) + len(r.events("TC_AUTH_SUMMARY")) > 0, 2)
            await r.wait_for(lambda: False, 11)  # past the report period: each one reported alone
        assert [a[0] for _, a in r.events("TC_AUTH_REJECTED")] == want
        assert r.hal.plant.travelled == 0.0
        assert r.hk()["tc_auth_rejected"] == len(forged)

    run_vt(rig, script)


def test_a_flood_gives_rate_limited_events_and_commanding_works_after(tmp_path: Path) -> None:
    rig = rig_for(tmp_path)
    bad = [secure_tc("aes-gcm", bytes(32), 1, 100 + i, rig.packet("PING")) for i in range(300)]

    async def script(r: SecRig) -> None:
        for f in bad:  # 300 frames, one every 0.2 s
            r.inject(f)
            await r.wait_for(lambda: False, 0.15)
        await r.wait_for(lambda: False, 12)
        first = r.events("TC_AUTH_REJECTED")
        summaries = r.events("TC_AUTH_SUMMARY")
        assert len(first) == 1
        assert len(summaries) >= 3
        times = [t.time for t in r.tm if t.service == 5 and struct.unpack(">H", t.data[:2])[0] in AUTH_IDS]
        assert all(b - a >= 9.9 for a, b in zip(times, times[1:], strict=False))  # one per 10 s at most
        assert sum(a[0] for _, a in summaries) == len(bad) - 1
        assert all(a[1:] == (AUTH_BAD_MAC, 1) for _, a in summaries)
        assert r.hk()["tc_auth_rejected"] == len(bad)
        await drive_and_wait(r)
        assert r.hal.plant.travelled > 0.2

    run_vt(rig, script)


def test_the_report_period_is_the_parameter(tmp_path: Path) -> None:
    rig = rig_for(tmp_path)
    pid = next(p["id"] for p in DICT["parameters"] if p["name"] == "auth_event_period_s")

    async def script(r: SecRig) -> None:
        req = r.send("PARAM_SET", pid, 60.0)
        assert await r.wait_for(lambda: (7, None) in r.reports(req), 10)
        for i in range(100):  # 30 s of bad frames
            r.inject(secure_tc("aes-gcm", bytes(32), 1, 100 + i, b"x"))
            await r.wait_for(lambda: False, 0.3)
        await r.wait_for(lambda: False, 5)
        assert len(r.events("TC_AUTH_REJECTED")) == 1
        assert r.events("TC_AUTH_SUMMARY") == []  # the period (60 s) has not ended
        await r.wait_for(lambda: bool(r.events("TC_AUTH_SUMMARY")), 40)
        assert [a[0] for _, a in r.events("TC_AUTH_SUMMARY")] == [99]

    run_vt(rig, script)


def test_exhaustion_then_otar_and_rekey_and_commanding_continues(tmp_path: Path) -> None:
    rig = rig_for(tmp_path)
    iv = bytes(range(12))
    wrapped, mac = wrap_key(MASTER, 2, NEW_KEY, iv)

    async def script(r: SecRig) -> None:
        r.next_arsn = MAX_ARSN - 3  # the ground's numbers are nearly used up
        ping = r.send("PING")
        assert await r.wait_for(lambda: (7, None) in r.reports(ping), 10)
        bad = r.send("KEY_OTAR", 2, iv, bytes(32), mac)  # the wrapped key altered
        load = r.send("KEY_OTAR", 2, iv, wrapped, mac)
        rekey = r.send("SA_REKEY", 1, 2)  # ARSN 2^32 - 1: the last one
        assert r.next_arsn == MAX_ARSN + 1
        assert await r.wait_for(lambda: (7, None) in r.reports(rekey), 10)
        assert r.reports(bad) == [(2, FAIL["OTAR_BAD_MAC"])]
        assert (7, None) in r.reports(load)
        assert [a for _, a in r.events("KEY_LOADED")] == [(2,)]
        assert (1, 0, 2) in [a for _, a in r.events("SA_STATUS")]
        # the old key at its highest number is dead; the new key starts at 1
        old = secure_tc("aes-gcm", KEY, 1, MAX_ARSN, r.packet("PING"), ns=r.vs)
        r.inject(old)
        r.key, r.next_arsn = NEW_KEY, 1
        moved = r.hal.plant.travelled
        await drive_and_wait(r)
        assert r.hal.plant.travelled > moved + 0.2
        assert r.events("TC_AUTH_REJECTED")[-1][1][0] == AUTH_BAD_MAC
        # the new key survives a reset, and so does its mark
        await reset(r, "power_cut")
        st = [a for _, a in r.events("SA_STATUS") if a[0] == 1][-1]
        assert st[2] == 2 and st[1] >= 2
        r.resync()
        r.set_vr(0)
        ping = r.send("PING")
        assert await r.wait_for(lambda: (7, None) in r.reports(ping), 10)

    run_vt(rig, script)


def test_a_key_is_never_used_twice(tmp_path: Path) -> None:
    rig = rig_for(tmp_path)
    iv = bytes(12)

    async def script(r: SecRig) -> None:
        w, m = wrap_key(MASTER, 1, NEW_KEY, iv)
        again = r.send("KEY_OTAR", 1, iv, w, m)  # key id 1 is the SA's active key
        to_legacy = r.send("SA_REKEY", 1, 7)  # the key of another SA
        unknown = r.send("SA_REKEY", 1, 9)
        assert await r.wait_for(lambda: len(r.reports(unknown)) > 0, 10)
        code = FAIL["KEY_UNAVAILABLE"]
        assert r.reports(again) == [(2, code)]
        assert r.reports(to_legacy) == [(2, code)]
        assert r.reports(unknown) == [(2, code)]
        # load 3, switch to it, then back to 1 (retired) is refused
        w, m = wrap_key(MASTER, 3, NEW_KEY, iv)
        r.send("KEY_OTAR", 3, iv, w, m)
        rk = r.send("SA_REKEY", 1, 3)
        assert await r.wait_for(lambda: (7, None) in r.reports(rk), 10)
        r.key, r.next_arsn = NEW_KEY, 1
        back = r.send("SA_REKEY", 1, 1)
        assert await r.wait_for(lambda: len(r.reports(back)) > 0, 10)
        assert r.reports(back) == [(2, code)]

    run_vt(rig, script)


@pytest.mark.parametrize("suite", ["gmac", "aes-gcm"])
def test_tm_authentication_is_verified_by_an_independent_implementation(tmp_path: Path, suite: str) -> None:
    rig = SecRig(make_sec_root(tmp_path / "rover", key_file(suite, tm_spi=1)), suite=suite, tm_suite=suite)

    async def script(r: SecRig) -> None:
        req = r.send("PING")
        assert await r.wait_for(lambda: (7, None) in r.reports(req), 10)
        assert r.hk()["mode"] is not None
        seqs = r.tm_arsns
        assert seqs == list(range(1, len(seqs) + 1))  # every frame verified, numbers in order
        await reset(r, "power_cut")
        r.resync()
        r.set_vr(0)
        req = r.send("PING")
        assert await r.wait_for(lambda: (7, None) in r.reports(req), 10)
        # after the cut the TM numbers jump past the reserved block: never a repeated IV
        assert len(set(r.tm_arsns)) == len(r.tm_arsns)
        assert r.tm_arsns[-1] > RESERVE

    run_vt(rig, script)


def test_arsn_state_file_is_in_the_rover_root(tmp_path: Path) -> None:
    rig = rig_for(tmp_path)

    async def script(r: SecRig) -> None:
        req = r.send("PING")
        assert await r.wait_for(lambda: (7, None) in r.reports(req), 10)

    run_vt(rig, script)
    import json

    st = json.loads((Path(rig.root) / "sdls_state.json").read_text())
    assert st["sas"]["1"] == {"mark": RESERVE, "key_id": 1}
    assert not os.path.exists(Path(rig.root) / "sdls_state.json.new")


def test_a_time_tagged_rekey_takes_effect_when_it_runs(tmp_path: Path) -> None:
    rig = rig_for(tmp_path)
    iv = bytes(range(12))
    wrapped, mac = wrap_key(MASTER, 2, NEW_KEY, iv)

    async def script(r: SecRig) -> None:
        load = r.send("KEY_OTAR", 2, iv, wrapped, mac)
        assert await r.wait_for(lambda: (7, None) in r.reports(load), 10)
        at = r.hk()["rover_time_s"] + 20
        tt = r.send("TT_INSERT", at, tail=r.packet("SA_REKEY", 1, 2))
        assert await r.wait_for(lambda: (7, None) in r.reports(tt), 10)
        assert await r.wait_for(lambda: (1, 0, 2) in [a for _, a in r.events("SA_STATUS")], 40)
        r.key, r.next_arsn = NEW_KEY, 1  # the ground follows SA_STATUS
        ping = r.send("PING")
        assert await r.wait_for(lambda: (7, None) in r.reports(ping), 10)
        assert r.hk()["tc_auth_rejected"] == 0

    run_vt(rig, script)
