"""Board definitions: the shipped boards are valid, and each kind of wiring mistake is caught."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import boards
from boards import BoardError, pwm_slice


@pytest.mark.parametrize("name", boards.NAMES)
def test_shipped_boards_are_valid(name: str) -> None:
    b = boards.load(name)
    assert b["name"] == name


def _pico() -> dict[str, Any]:
    return copy.deepcopy(boards.load("pico"))


def _err(b: dict[str, Any]) -> str:
    with pytest.raises(BoardError) as e:
        boards.validate(b)
    return str(e.value)


def test_pin_used_twice_is_named() -> None:
    b = _pico()
    b["motors"][0]["pwm"] = 11  # also encoder 1 A
    msg = _err(b)
    assert "GP11 used twice" in msg and "encoder 1" in msg and "motor 1 PWM" in msg


def test_pin_not_on_the_chip() -> None:
    b = _pico()
    b["i2c"]["sda"] = 30
    assert "I2C SDA on GP30: rp2040 has GPIO 0..29" in _err(b)


def test_pico_w_radio_pins_are_not_free() -> None:
    b = copy.deepcopy(boards.load("pico_w"))
    b["led_pin"] = 25
    assert "CYW43" in _err(b)


def test_two_motors_on_one_slice_with_different_frequencies() -> None:
    b = _pico()
    b["motors"][1]["freq_hz"] = 1000  # GP1 shares slice 0 with GP0 (motor 1)
    msg = _err(b)
    assert "share PWM slice 0" in msg and "20000 Hz and 1000 Hz" in msg


def test_same_frequency_on_a_shared_slice_is_fine() -> None:
    b = _pico()
    assert pwm_slice("rp2040", b["motors"][0]["pwm"]) == pwm_slice("rp2040", b["motors"][1]["pwm"])
    boards.validate(b)


def test_watchdog_beyond_the_chip_maximum() -> None:
    b = _pico()
    b["watchdog"]["timeout_ms"] = 8389
    assert "beyond the rp2040 maximum of 8388 ms" in _err(b)
    b2 = copy.deepcopy(boards.load("pico2"))
    b2["watchdog"]["timeout_ms"] = 16777
    boards.validate(b2)
    b2["watchdog"]["timeout_ms"] = 16778
    assert "16777" in _err(b2)


def test_mpy_arch_must_match_the_chip() -> None:
    b = _pico()
    b["mpy_arch"] = "armv7emsp"
    assert "expected 'armv6m'" in _err(b)


def test_slices_follow_the_rp2040_rule() -> None:
    assert [pwm_slice("rp2040", g) for g in (0, 1, 2, 15, 16, 17, 28, 29)] == [0, 0, 1, 7, 0, 0, 6, 6]
    assert pwm_slice("rp2350", 33) == 8


def test_bad_file_gives_one_clear_line(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text("{nope")
    with pytest.raises(BoardError, match="not valid JSON"):
        boards.load(str(p))
    with pytest.raises(BoardError, match="no such file"):
        boards.load("nonexistent_board")


def test_board_files_are_json_with_six_motors_and_encoders() -> None:
    for name in ("pico", "pico_w", "pico2"):
        b = json.loads((Path(boards.__file__).parent / f"{name}.json").read_text())
        assert len(b["motors"]) == 6 and len(b["encoders"]["pins"]) == 6


@pytest.mark.micropython
def test_loader_runs_on_micropython(run_mpy: Any) -> None:
    out = run_mpy("""
import boards
for n in boards.NAMES:
    print(n, boards.load(n)['chip'])
b = boards.load('pico')
b['motors'][1]['freq_hz'] = 1000
try:
    boards.validate(b)
except boards.BoardError as e:
    print('ERR', e)
""").stdout
    assert "pico rp2040" in out and "pico2 rp2350" in out and "sim sim" in out
    assert "ERR board pico: motors 1 and 2 share PWM slice 0" in out


def _uart_link(tx: int = 0, rx: int = 1, uart: int = 0) -> dict[str, Any]:
    return {"kind": "uart", "uart": uart, "baud": 115200, "tx": tx, "rx": rx}


def test_link_kinds_and_which_boards_keep_the_repl_free() -> None:
    assert [n for n in boards.NAMES if boards.own_link(boards.load(n))] == ["pico_uart", "sim_uart"]
    b = _pico()
    b["link"] = {"kind": "usb_cdc2"}
    assert "link.kind 'usb_cdc2' is not one of usb_cdc, stdio, uart" in _err(b)
    del b["link"]
    boards.validate(b)  # no link named: the REPL's USB CDC
    assert not boards.own_link(b)


def test_pico_uart_puts_uart0_on_gp0_gp1_and_moves_the_motors_off_them() -> None:
    b = boards.load("pico_uart")
    link = b["link"]
    assert (link["kind"], link["uart"], link["tx"], link["rx"]) == ("uart", 0, 0, 1)
    assert boards.uart_of(0) == (0, "tx") and boards.uart_of(1) == (0, "rx")
    pwm = sorted(m["pwm"] for m in b["motors"])
    assert pwm == [2, 3, 4, 5, 6, 7] and not {0, 1} & set(pwm)
    # one driver per PWM slice, all at one frequency
    assert sorted({pwm_slice("rp2040", g) for g in pwm}) == [1, 2, 3]
    pico = boards.load("pico")
    for key in ("encoders", "i2c", "led_pin", "watchdog", "heap_budget_kb", "boot_timeout_s", "reserved_pins"):
        assert b[key] == pico[key], key
    assert b["motor_driver"]["standby_pin"] == pico["motor_driver"]["standby_pin"]


def test_link_uart_pin_must_be_that_uarts_tx_or_rx() -> None:
    b = _pico()
    b["link"] = _uart_link(tx=4, rx=5)  # UART1's pins, asked of UART0
    assert "link UART TX on GP4: not a UART0 TX pin on rp2040 (UART0 TX: GP0, GP12, GP16, GP28)" in _err(b)
    b["link"] = _uart_link(tx=1, rx=0)  # swapped
    assert "not a UART0 TX pin" in _err(b)
    b["link"] = _uart_link(uart=2)
    assert "link.uart 2: rp2040 has UART0 and UART1" in _err(b)
    b["link"] = {"kind": "uart", "uart": 0, "baud": 115200, "tx": 0}
    assert "link.rx: a UART link needs its RX pin" in _err(b)
    b["link"] = dict(_uart_link(), baud=0)
    assert "link.baud must be a positive integer" in _err(b)


def test_link_uart_pins_clash_with_motors_and_reserved_pins() -> None:
    b = _pico()
    b["link"] = _uart_link(0, 1)  # pico.json's motors 1 and 2 are on GP0/GP1
    assert "GP0 used twice: motor 1 PWM and link UART TX" in _err(b)
    b = copy.deepcopy(boards.load("pico_uart"))
    b["link"] = _uart_link(28, 29)  # valid UART0 pins, but GP29 is the Pico's VSYS/3 ADC
    assert "link UART RX on GP29: the pin is used by the board (VSYS/3 ADC" in _err(b)
    b = copy.deepcopy(boards.load("pico_uart"))
    b["link"] = _uart_link(12, 13)
    assert "GP12 used twice: encoder 1 and link UART TX" in _err(b)


def test_direction_is_one_or_two_pins_per_side() -> None:
    b = copy.deepcopy(boards.load("pico_uart"))
    b["direction_pins"]["left"] = []
    assert "direction_pins.left: one pin (IN2 through an inverter) or two, got 0" in _err(b)


def test_sim_uart_names_no_pins() -> None:
    b = boards.load("sim_uart")
    assert boards.own_link(b) and "tx" not in b["link"]
    b["link"]["baud"] = -1
    assert "link.baud must be a positive integer" in _err(b)
