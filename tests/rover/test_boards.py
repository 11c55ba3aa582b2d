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
