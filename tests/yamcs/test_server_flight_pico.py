"""A mission flown from Yamcs with the rover on the emulated Pico: the rp2 firmware on an
emulated RP2040, flashed with fresh keys, `farside relay` in front of its USB CDC, Yamcs
commanding it under AES-256-GCM with the same key, yamcs-client as the operator. The jam
goes in at the pins (the rp2 rover refuses SIM_INJECT)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hil.gs.keys import new_store, write_key_file
from hil.yamcs.config import sdls_key_from_setting
from hil.yamcs.fly import Flight, Station, fly_mission
from tests.pico.conftest import need_emulator
from tests.yamcs.conftest import write_folder

pytestmark = [pytest.mark.slow, pytest.mark.yamcs]


def test_a_mission_flown_from_yamcs_on_the_emulated_pico(yamcs_tools: None, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    need_emulator()
    monkeypatch.setenv("FARSIDE_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.delenv("FARSIDE_KEYS", raising=False)  # fresh keys, made by the station
    other = tmp_path / "other-keys.json"
    write_key_file(other, new_store())
    key, _ = sdls_key_from_setting(other)
    write_folder(tmp_path / "yamcs", sdls_key=key, cop1_t1_s=3)  # a key the Pico was not flashed with
    t0 = time.monotonic()
    with Station(tmp_path / "yamcs", emulated=True, board="pico") as st:
        assert st.key_file is not None and (tmp_path / "yamcs" / "pico" / "keys.json").is_file()
        pico_key, _ = sdls_key_from_setting(st.key_file)
        assert pico_key is not None and pico_key != key
        assert (tmp_path / "yamcs" / "etc" / "sdls-key-1.bin").read_bytes() == pico_key
        flight = Flight(st.url, st.instance)
        try:
            steps = fly_mission(flight, distance_m=0.5, turn_deg=30.0, jam_wheel=3, timeout_s=180, board=st.vboard)
        finally:
            flight.close()
    took = time.monotonic() - t0
    failed = [(s.name, s.detail) for s in steps if not s.ok]
    assert not failed, failed
    names = [s.name for s in steps]
    for name in ("PING", "DRIVE_DISTANCE", "TURN", "pose after the drive", "heading after the turn", "wheel states",
                 "JAM at the pins", "WHEEL_FAULT event", "wheel states after the jam"):
        assert name in names
    assert "SIM_INJECT" not in names
    print(f"\n{len(steps)} steps in {took:.0f} s: " + "; ".join(f"{s.name}: {s.detail}" for s in steps))
