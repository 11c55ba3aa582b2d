"""A port that fails under the flash tool (a reset re-enumerated the board's USB): the
board is found again by serial number and the step runs on its new port, or the tool
stops with one line. Against ptys and the port list pyserial reports."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from hil.errors import FarsideError
from hil.flash import install
from hil.flash.install import Flasher, FlashOptions
from hil.flash.ports import BoardPort
from hil.flash.repl import PortGoneError, RawRepl

SERIAL = "E6614C311B7A2D2A"


@pytest.fixture
def ptys() -> Iterator[list[str]]:
    """Two serial devices: the board's port before and after it re-enumerates."""
    pairs = [os.openpty() for _ in range(2)]
    try:
        yield [os.ttyname(slave) for _, slave in pairs]
    finally:
        for master, slave in pairs:
            os.close(master)
            os.close(slave)


def _listed(device: str) -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number = 0x2E8A, 0x0005, SERIAL
    return info


def test_step_runs_again_on_the_port_the_board_comes_back_on(
    ptys: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(list_ports, "comports", lambda *a, **k: [_listed(ptys[1])])
    flasher = Flasher(FlashOptions(board="pico"))
    flasher.port = BoardPort(ptys[0], SERIAL)
    used: list[str] = []

    def step(repl: RawRepl) -> str:
        used.append(repl.ser.port)
        if len(used) == 1:
            raise PortGoneError(f"{ptys[0]}: the port went away while reading (EIO)")
        return "raw REPL"

    try:
        assert flasher._on_port(step) == "raw REPL"
    finally:
        flasher._close()
    assert used == ptys
    assert flasher.port.device == ptys[1] and flasher.port.serial_number == SERIAL


def test_board_that_does_not_come_back_is_one_line(
    ptys: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(list_ports, "comports", lambda *a, **k: [])
    monkeypatch.setattr(install, "REFIND_S", 0.3)
    flasher = Flasher(FlashOptions(board="pico"))
    flasher.port = BoardPort(ptys[0], SERIAL)

    def step(repl: RawRepl) -> None:
        raise PortGoneError(f"{ptys[0]}: the port went away while reading (EIO)")

    with pytest.raises(FarsideError) as exc:
        flasher._on_port(step)
    text = str(exc.value)
    assert not isinstance(exc.value, PortGoneError)
    assert "\n" not in text and "went away" in text and SERIAL in text
    assert flasher.ser is None  # the dead port was closed
