"""`--port auto` and finding a board again after it re-enumerates, against the port
list pyserial reports (here a list of ListPortInfo built as Linux would show them)."""

from __future__ import annotations

import pytest
from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from hil.errors import FarsideError
from hil.flash.ports import BoardPort, refind, resolve_port


def _port(device: str, vid: int | None = None, serial_number: str | None = None) -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid = vid
    info.pid = 0x0005 if vid else None
    info.serial_number = serial_number
    info.description = "Board in FS mode" if vid else "ttyS0"
    return info


@pytest.fixture
def ports(monkeypatch: pytest.MonkeyPatch) -> list[ListPortInfo]:
    seen: list[ListPortInfo] = [_port("/dev/ttyS0")]
    monkeypatch.setattr(list_ports, "comports", lambda *a, **k: list(seen))
    return seen


def test_auto_picks_the_one_pico(ports: list[ListPortInfo]) -> None:
    ports.append(_port("/dev/ttyACM0", 0x2E8A, "E6614C311B7A2D2A"))
    found = resolve_port("auto")
    assert (found.device, found.serial_number, found.virtual) == (
        "/dev/ttyACM0",
        "E6614C311B7A2D2A",
        None,
    )


def test_auto_with_no_pico_lists_what_it_saw(ports: list[ListPortInfo]) -> None:
    ports.append(_port("/dev/ttyUSB0", 0x10C4, "0001"))
    with pytest.raises(FarsideError) as exc:
        resolve_port("auto")
    text = str(exc.value)
    assert "saw none" in text and "/dev/ttyUSB0 [10C4:0005]" in text and "/dev/ttyS0" in text
    assert "\n" not in text


def test_auto_with_two_picos_names_both(ports: list[ListPortInfo]) -> None:
    ports += [_port("/dev/ttyACM0", 0x2E8A, "AAAA"), _port("/dev/ttyACM1", 0x2E8A, "BBBB")]
    with pytest.raises(
        FarsideError, match="saw 2: /dev/ttyACM0 serial AAAA; /dev/ttyACM1 serial BBBB"
    ):
        resolve_port("auto")


def test_board_is_found_again_by_serial_number_under_a_new_name(ports: list[ListPortInfo]) -> None:
    before = BoardPort("/dev/ttyACM0", "E6614C311B7A2D2A")
    ports.append(_port("/dev/ttyACM3", 0x2E8A, "E6614C311B7A2D2A"))
    assert refind(before, timeout_s=0.5).device == "/dev/ttyACM3"
    ports.clear()
    with pytest.raises(FarsideError, match="E6614C311B7A2D2A"):
        refind(before, timeout_s=0.3)
