"""The rp2 HAL on the emulated Pico agrees with the plant at the pins.

The stock MicroPython firmware boots on the emulated RP2040 (hil.board.emulated); the
HAL's files and boards/pico.json go onto its littlefs through the raw REPL, and snippets
run there while the host keeps the plant in lockstep. What the chip drives (PWM duty,
direction and standby pins) is read from the pins on the host; what it reads (encoder
edges, MPU-6050 and INA219 registers) is compared with the plant's state at the ticks
during which the chip read it.

Tolerances, each from the quantisation between the plant and the HAL's integers:
- PWM duty: 1/1000 of full scale (the slice's TOP at 20 kHz is 6249: one step is 1/6250);
  frequency within 1 % of 20 kHz;
- encoders: the host hands the chip each tick's count to reach by the end of the next
  5 ms tick, so a count read while moving lies between the plant's counts from the tick
  before the snippet was sent to the tick its answer came in (give or take one count: the
  chip may stop a few us past a tick's end); at rest the counts are equal;
- IMU: pitch and roll within 0.5 deg of the slope (the IMU model adds +-0.2 deg of noise)
  and within 0.02 deg of what the plant put out (1/16384 g LSB, the HAL truncates to
  0.01 deg); yaw rate within one gyro LSB (1/131 deg/s = 133.2 urad/s); board temperature
  within 0.01 C and half a register LSB (1/340 C; the HAL truncates to 0.01 C);
- INA219: currents within 1 mA and half a register LSB (10 uV over 0.1 ohm = 0.1 mA; the
  HAL truncates to 1 mA); battery below the plant's by less than one bus LSB (4 mV).
"""

from __future__ import annotations

import ast
import json
import math
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import boards
from hil.board.emulated import EmulatedPico, find_node, find_rp2_firmware
from hil.errors import FarsideError
from tests.conftest import need

ROOT = Path(__file__).resolve().parents[2]
HAL_FILES = (
    "firmware_py/__init__.py",
    "firmware_py/compat.py",
    "firmware_py/hal/__init__.py",
    "firmware_py/hal/rp2.py",
    "firmware_py/hal/stdio.py",
)
CHUNK = 1024  # octets per file write through the raw REPL
WALL_LIMIT_S = 120.0  # wall-clock guard, should the chip's time stop advancing
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
Q15 = 32767
PWM_FREQ_HZ = 20000
PWM_BASE = 0x40050000  # RP2040 PWM: slice n at +0x14*n: CSR, DIV, CTR, CC, TOP
GYRO_LSB_URAD_S = 1e6 * math.pi / 180.0 / 131.0
# The chip stops a few us past a tick's end (it checks the time between bursts of
# instructions), so a tick's last edge may land just after the next one starts.
ENC_SLACK = 1
WHEEL_JAM = 1
WHEEL_OPEN = 2



class RemoteError(AssertionError):
    """A snippet raised on the chip; the message is its traceback."""


class ChipRepl:
    """The raw REPL of the emulated Pico's USB CDC, run in the chip's lockstep ticks.

    `history` holds the plant's state (`snap`) at the end of each tick from the one before
    a snippet was sent to the one its answer came in: everything the chip may have been
    catching up with (encoder edges trail by a tick) or read (registers) while it ran."""

    def __init__(self, pico: EmulatedPico) -> None:
        self.pico = pico
        self.buf = bytearray()
        self.history: list[dict[str, Any]] = []
        self.recent: deque[dict[str, Any]] = deque([self.snap()], maxlen=2)
        pico.on_usb = self.buf.extend

    def snap(self) -> dict[str, Any]:
        p = self.pico.plant
        return {
            "t": self.pico.now,
            "enc": list(p.enc_out),
            "pitch": p.pitch_out,
            "roll": p.roll_out,
            "gyro": p.gyro_out,
            "temp": p.temp_board,
            "current": list(p.current),
            "battery_v": p.battery_v(),
        }

    def read_until(self, ending: bytes, chip_s: float = 10.0) -> bytes:
        """Run the chip until `ending` has come out of its USB; return all up to it."""
        deadline = self.pico.now + chip_s
        wall = time.monotonic() + WALL_LIMIT_S
        while True:
            i = self.buf.find(ending)
            if i >= 0:
                out = bytes(self.buf[: i + len(ending)])
                del self.buf[: i + len(ending)]
                return out
            if self.pico.now >= deadline or time.monotonic() > wall:
                raise AssertionError(
                    f"no {ending!r} from the chip in {chip_s} s of its time; got {bytes(self.buf[-300:])!r}"
                )
            self.tick()

    def boot(self) -> str:
        """Wait for the REPL's banner (Enter after 1.5 s of chip time), then enter the raw REPL."""
        self.run(1.5)
        self.pico.usb_write(b"\r\n")
        banner = self.read_until(b">>> ", chip_s=20.0).decode(errors="replace")
        self.pico.usb_write(b"\r\x03\x03\x01")
        self.read_until(RAW_PROMPT)
        return banner

    def exec(self, code: str, chip_s: float = 10.0) -> str:
        """Run `code` on the chip; return its stdout. Raises RemoteError on its traceback."""
        self.buf.clear()
        self.history = list(self.recent)
        self.pico.usb_write(code.encode() + b"\x04")
        head = self.read_until(b"OK", chip_s)
        assert head.endswith(b"OK"), head
        out = self.read_until(b"\x04", chip_s)[:-1]
        err = self.read_until(b"\x04", chip_s)[:-1]
        self.read_until(b">", chip_s)
        if err:
            raise RemoteError(f"on the chip:\n{code}\n{err.decode(errors='replace')}")
        return out.decode(errors="replace")

    def eval(self, expr: str, chip_s: float = 10.0) -> Any:
        """Evaluate `expr` on the chip (after nothing else); its repr parsed on the host."""
        return ast.literal_eval(self.exec(f"print(repr({expr}))", chip_s).strip())

    def put(self, path: str, data: bytes) -> None:
        """Write a file on the chip's filesystem, in chunks."""
        self.exec(f"_f = open({path!r}, 'wb')")
        for off in range(0, len(data), CHUNK):
            self.exec(f"_f.write({data[off : off + CHUNK]!r})")
        self.exec("_f.close(); del _f")
        size = self.eval(f"__import__('os').stat({path!r})[6]")
        assert size == len(data), f"{path}: {size} octets on the chip, {len(data)} sent"

    def tick(self) -> None:
        """One tick of the chip and the plant."""
        self.pico.tick()
        self.recent.append(self.snap())
        self.history.append(self.recent[-1])

    def run(self, chip_s: float) -> None:
        """Let the chip (idle at the raw prompt) and the plant run for `chip_s`."""
        end = self.pico.now + chip_s
        while self.pico.now < end - 1e-9:
            self.tick()


@pytest.fixture(scope="module")
def chip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChipRepl]:
    try:
        find_node()
    except FarsideError as exc:
        need(False, str(exc))
    try:
        find_rp2_firmware()
    except FarsideError as exc:
        need(False, str(exc))
    board = boards.load("pico")
    pico = EmulatedPico(tmp_path_factory.mktemp("pico"), board, seed=7)
    try:
        repl = ChipRepl(pico)
        banner = repl.boot()
        assert "Raspberry Pi Pico with RP2040" in banner, banner
        repl.exec(
            "import os\nfor d in ('firmware_py', 'firmware_py/hal'):\n"
            "    try:\n        os.mkdir(d)\n    except OSError:\n        pass"
        )
        for name in HAL_FILES:
            repl.put(name, (ROOT / name).read_bytes())
        repl.put("board.json", json.dumps(board).encode())
        repl.exec(
            "import json, machine\nfrom machine import Pin\n"
            "from firmware_py.hal.rp2 import Rp2Hal\n"
            "board = json.load(open('board.json'))\nhal = Rp2Hal(board)"
        )
        yield repl
    finally:
        pico.close()


def set_duties(chip: ChipRepl, duties: list[int], enable: bool = True) -> None:
    """All six wheels to these Q15 duties (zeros first, so each side takes the direction
    of its first non-zero wheel), standby released or not."""
    chip.exec(
        f"hal.motors_enable({enable})\nfor i in range(6):\n    hal.set_motor(i, 0)\n"
        f"for i, d in enumerate({duties!r}):\n    hal.set_motor(i, d)"
    )
    chip.tick()  # the levels the host sees are those at the end of a tick


# ---- PWM, direction and standby pins ----------------------------------------------------


@pytest.mark.parametrize("duty", [Q15, 16384, -12000, 3277, -Q15, 1])
def test_pwm_duty_and_direction_per_wheel(chip: ChipRepl, duty: int) -> None:
    """Each wheel alone at `duty`: the host sees |duty|/32767 on its PWM pin, the sign on
    its side's direction pins, the other wheels at 0, standby released."""
    pins = chip.pico.pins
    for wheel in range(6):
        duties = [0] * 6
        duties[wheel] = duty
        set_duties(chip, duties)
        levels = chip.pico.chip.status.levels
        enabled, seen = pins.duties(levels)
        assert enabled, "standby still asserted after motors_enable(True)"
        for i, value in enumerate(seen):
            want = duty / Q15 if i == wheel else 0.0
            assert abs(value - want) <= 1e-3, (
                f"wheel {i + 1}: {value:+.5f} at the pins, want {want:+.5f}"
            )
        side = 0 if wheel < 3 else 1
        in1, in2 = levels[6 + 2 * side : 8 + 2 * side]
        want_dir = (65535, 0) if duty > 0 else (0, 65535)
        assert (in1, in2) == want_dir, (
            f"wheel {wheel + 1} at {duty}: direction pins IN1={in1} IN2={in2}"
        )


def test_standby_and_shared_direction(chip: ChipRepl) -> None:
    """Standby follows motors_enable; a wheel asking against its side's direction coasts."""
    pins = chip.pico.pins
    set_duties(chip, [20000, -20000, 10000, -8000, -30000, 4000])
    enabled, seen = pins.duties(chip.pico.chip.status.levels)
    assert enabled
    want = [20000 / Q15, 0.0, 10000 / Q15, -8000 / Q15, -30000 / Q15, 0.0]
    assert all(abs(s - w) <= 1e-3 for s, w in zip(seen, want, strict=True)), (seen, want)
    set_duties(chip, [20000, 0, 0, 0, 0, 0], enable=False)
    enabled, _ = pins.duties(chip.pico.chip.status.levels)
    assert not enabled, "standby released after motors_enable(False)"
    set_duties(chip, [0] * 6)


def test_pwm_frequency(chip: ChipRepl) -> None:
    """Every motor's slice runs at 20 kHz: from the slice's registers (TOP, the integer
    and fractional divider, phase-correct) and the system clock, and from PWM.freq()."""
    motors = sorted(chip.pico.board["motors"], key=lambda m: m["wheel"])
    slices = [PWM_BASE + 0x14 * ((m["pwm"] >> 1) & 7) for m in motors]
    regs = chip.eval(
        f"[(machine.mem32[a], machine.mem32[a + 4], machine.mem32[a + 16]) for a in {slices}]"
    )
    sys_hz = chip.eval("machine.freq()")
    freqs = chip.eval("[p.freq() for p in hal.pwm]")
    assert sys_hz == 125_000_000
    for wheel, ((csr, div, top), f_api) in enumerate(zip(regs, freqs, strict=True), start=1):
        assert csr & 1, f"wheel {wheel}: its PWM slice is not enabled (CSR 0x{csr:x})"
        divider = (div >> 4) + (div & 0xF) / 16.0
        phase_correct = 2 if csr & 2 else 1
        f_regs = sys_hz / (divider * (top + 1) * phase_correct)
        assert abs(f_regs - PWM_FREQ_HZ) <= 0.01 * PWM_FREQ_HZ, (wheel, csr, div, top, f_regs)
        assert abs(f_api - PWM_FREQ_HZ) <= 0.01 * PWM_FREQ_HZ, (wheel, f_api)


# ---- encoders ---------------------------------------------------------------------------


def _count_with(chip: ChipRepl, handler: str) -> None:
    """Count the edges with `hal.encoders.<handler>` from now on: "handler" (the viper one the
    HAL installed on rp2) or "edge" (the bytecode one, for a port without a native emitter)."""
    chip.exec(f"for p in hal.encoders.pins: p.irq(hal.encoders.{handler}, p.IRQ_RISING | p.IRQ_FALLING, hard=True)")


@pytest.mark.parametrize("handler", ["handler", "edge"])
def test_encoders_follow_the_plant(chip: ChipRepl, handler: str) -> None:
    """Turn on the spot for 3 s: hal.enc read while moving lies between the plant's counts
    at the ticks around the read (the chip's edges trail the plant by one tick); stopped,
    hal.enc equals the plant's counts. Counted by the native (viper) handler the HAL
    installs, then by the bytecode one."""
    assert chip.eval("hal.encoders.native") is True
    _count_with(chip, handler)
    try:
        _follow_the_plant(chip)
    finally:
        _count_with(chip, "handler")


def _follow_the_plant(chip: ChipRepl) -> None:
    chip.pico.plant.slope_deg = 0.0
    start = list(chip.pico.plant.enc_out)
    set_duties(chip, [16384, 26000, 9000, -20000, -12000, -30000])
    chip.run(3.0)
    moving = chip.eval("hal.update(0) or hal.enc")
    window = chip.history
    for i in range(6):
        travelled = chip.pico.plant.enc_out[i] - start[i]
        assert abs(travelled) > 100, f"wheel {i + 1} hardly moved: {travelled} counts"
        assert (travelled > 0) == (i < 3), f"wheel {i + 1} turned the wrong way: {travelled}"
        lo = min(s["enc"][i] for s in window)
        hi = max(s["enc"][i] for s in window)
        slack = ENC_SLACK
        assert lo - slack <= moving[i] <= hi + slack, (
            f"wheel {i + 1}: chip {moving[i]}, plant {lo}..{hi} during the read"
        )
    set_duties(chip, [0] * 6)
    chip.run(1.0)
    stopped = chip.eval("hal.update(0) or hal.enc")
    assert stopped == list(chip.pico.plant.enc_out), (
        "stopped: the chip's counts differ from the plant's"
    )


# ---- I2C: MPU-6050 and INA219s ---------------------------------------------------------


def _closest(window: list[dict[str, Any]], value: float, plant_value: Any) -> float:
    """The smallest |value - plant_value(state)| over the states the chip may have read."""
    return min(abs(value - plant_value(s)) for s in window)


def test_i2c_sensors_match_the_plant(chip: ChipRepl) -> None:
    """On a 12 deg slope, turning on the spot, one wheel jammed and one open-circuit: the
    HAL's IMU, current and battery readings against the plant."""
    plant = chip.pico.plant
    plant.slope_deg = 12.0
    plant.set_wheel_fault(1, WHEEL_JAM)
    plant.set_wheel_fault(5, WHEEL_OPEN)
    try:
        set_duties(chip, [16384, 13107, 20000, -16384, -20000, -9830])
        chip.run(2.0)
        got = chip.eval(
            "hal.update(0) or (hal.pitch_cdeg, hal.roll_cdeg, hal.yaw_urad_s, hal.temp_board_cc, "
            "hal.current_ma, hal.battery_mv)"
        )
        window = chip.history
        true_pitch, true_roll = plant.pitch_deg, plant.roll_deg
    finally:
        set_duties(chip, [0] * 6)
        plant.clear_faults()
        plant.slope_deg = 0.0
    pitch_cdeg, roll_cdeg, yaw_urad_s, temp_cc, current_ma, battery_mv = got

    # the IMU: against the truth (the model's noise is sigma 0.1 deg; the slope is fixed to
    # the ground, so the turn has swung a little of it into roll), then against its output
    assert abs(true_pitch - 12.0) <= 1.0 and abs(true_roll) <= 3.0, (true_pitch, true_roll)
    assert abs(pitch_cdeg / 100 - true_pitch) <= 0.5, f"pitch {pitch_cdeg / 100} deg, truly {true_pitch:.2f}"
    assert abs(roll_cdeg / 100 - true_roll) <= 0.5, f"roll {roll_cdeg / 100} deg, truly {true_roll:.2f}"
    err = _closest(window, pitch_cdeg / 100, lambda s: s["pitch"])
    assert err <= 0.02, f"pitch {pitch_cdeg / 100} deg: {err:.4f} deg from the plant's output"
    err = _closest(window, roll_cdeg / 100, lambda s: s["roll"])
    assert err <= 0.02, f"roll {roll_cdeg / 100} deg: {err:.4f} deg from the plant's output"
    assert abs(window[-1]["gyro"]) * 1e6 > 20 * GYRO_LSB_URAD_S, "the rover is not turning"
    err = _closest(window, yaw_urad_s, lambda s: s["gyro"] * 1e6)
    assert err <= GYRO_LSB_URAD_S, f"yaw rate {yaw_urad_s} urad/s: {err:.1f} from the plant's"
    err = _closest(window, temp_cc / 100, lambda s: s["temp"])
    assert err <= 0.01 + 0.5 / 340, (
        f"board temperature {temp_cc / 100} C: {err:.4f} C from the plant's"
    )

    # the INA219s: per wheel (the jammed one draws most, the open one nothing), battery
    assert current_ma[5] == 0 and current_ma[1] > max(current_ma[i] for i in (0, 2, 3, 4)), (
        current_ma
    )
    for i, ma in enumerate(current_ma):
        err = _closest(window, ma, lambda s, i=i: s["current"][i] * 1000)
        assert err <= 1.05, f"wheel {i + 1}: {ma} mA, {err:.3f} mA from the plant's"
    low = min(s["battery_v"] * 1000 - battery_mv for s in window)
    assert 0 <= low < 4.0, f"battery {battery_mv} mV: {low:.2f} mV below the plant's"


def test_hal_update_allocates_nothing(chip: ChipRepl) -> None:
    """Rp2Hal.update, the sensors read in every control period (encoder counts, the IMU and
    six INA219s over I2C), allocates nothing on the chip while the wheels turn and the
    rover stands on a slope: no float (a heap object on the rp2 port) and no long int."""
    plant = chip.pico.plant
    plant.slope_deg = 9.0
    set_duties(chip, [16384, 13107, 20000, -16384, -20000, -9830])
    chip.run(0.5)
    try:
        out = chip.exec(
            "import gc\n"
            "def _alloc(f):\n"
            "    gc.collect()\n"
            "    gc.disable()\n"
            "    a = gc.mem_alloc()\n"
            "    for _ in range(50):\n"
            "        f(0)\n"
            "    b = gc.mem_alloc()\n"
            "    gc.enable()\n"
            "    return b - a\n"
            "print(_alloc(hal.update) - _alloc(lambda t: None), hal.pitch_cdeg, hal.current_ma)",
            chip_s=30,
        ).split(maxsplit=2)
    finally:
        set_duties(chip, [0] * 6)
        plant.slope_deg = 0.0
    assert int(out[0]) == 0, f"50 calls of hal.update allocated {out[0]} octets"
    assert abs(int(out[1]) / 100 - 9.0) < 2.0, f"pitch {out[1]} cdeg on a 9 deg slope"
    assert "0, 0, 0, 0, 0, 0" not in out[2], f"no current read: {out[2]}"


def test_i2c_missing_device_raises(chip: ChipRepl) -> None:
    """A read from an address with no device is an OSError on the chip; the IMU answers."""
    out = chip.exec(
        "i2c = machine.I2C(1, sda=Pin(26), scl=Pin(27))\n"
        "print(len(i2c.readfrom(0x68, 1)))\n"
        "try:\n    i2c.readfrom(0x50, 1)\n    print('answered')\n"
        "except OSError as e:\n    print('OSError', e.errno)"
    ).split()
    assert out[0] == "1", out
    assert out[1] == "OSError", f"a read from 0x50 (no device there) gave {out[1:]}"


# ---- terrain at the pins ---------------------------------------------------------------

_F_SLOPE = 6
_F_ROCK_HEIGHT = 10
_F_ROCK_LATERAL = 11
_F_ROLL = 12
_F_ROCK_DIST = 13


def test_slope_and_roll_injected_at_the_pins_reach_the_hal(chip: ChipRepl) -> None:
    """SIM_INJECT's SLOPE_DEG and ROLL_DEG on the pin-level plant: the rp2 HAL's IMU reads
    them from the MPU-6050's registers (roll + left side up)."""
    pins = chip.pico.pins
    assert pins.inject(_F_SLOPE, 0, 8.0) and pins.inject(_F_ROLL, 0, -6.0)
    try:
        chip.run(0.5)
        pitch_cdeg, roll_cdeg = chip.eval("hal.update(0) or (hal.pitch_cdeg, hal.roll_cdeg)")
        truth = (chip.pico.plant.pitch_deg, chip.pico.plant.roll_deg)
    finally:
        pins.inject(_F_SLOPE, 0, 0.0)
        pins.inject(_F_ROLL, 0, 0.0)
    assert truth == (pytest.approx(8.0, abs=0.2), pytest.approx(-6.0, abs=0.2))  # it may still coast
    assert abs(pitch_cdeg / 100 - 8.0) <= 0.5, f"pitch {pitch_cdeg / 100} deg on an 8 deg slope"
    assert abs(roll_cdeg / 100 + 6.0) <= 0.5, f"roll {roll_cdeg / 100} deg at -6 deg"


def test_a_rock_under_a_wheel_at_the_pins_tilts_the_imu(chip: ChipRepl) -> None:
    """A 15 cm rock placed by SIM_INJECT under the front left wheel (ROCK_DIST_M 0.5 m ahead of
    the rover's centre: the front axle; ROCK_LATERAL_M 0.5 m left): the rover stands on it,
    nose and left side up."""
    pins = chip.pico.pins
    plant = chip.pico.plant
    assert pins.inject(_F_ROCK_DIST, 0, 0.5) and pins.inject(_F_ROCK_LATERAL, 0, 0.5)
    assert pins.inject(_F_ROCK_HEIGHT, 0, 0.15)
    try:
        chip.run(0.5)
        pitch_cdeg, roll_cdeg = chip.eval("hal.update(0) or (hal.pitch_cdeg, hal.roll_cdeg)")
        truth = (plant.pitch_deg, plant.roll_deg)
    finally:
        pins.inject(_F_ROCK_HEIGHT, 0, 0.0)  # removes placed rocks
        pins.inject(0, 0, 0.0)  # CLEAR: rock distance and offset back to their defaults
    assert truth[0] > 3.0 and truth[1] > 2.0, truth
    assert abs(pitch_cdeg / 100 - truth[0]) <= 0.5 and abs(roll_cdeg / 100 - truth[1]) <= 0.5


def test_an_empty_battery_powers_the_chip_off_until_the_array_recharges_it() -> None:
    """The pin-level plant's power supply (no chip needed): a brown-out asks the host to cut
    the chip's power, and the array's recharge to the restart level to power it on again."""
    from hil.board.emulated import PinPlant

    pins = PinPlant(boards.load("pico"), seed=3)
    p = pins.plant
    p.set_sun(0.0)
    p.soc = 0.0005
    idle = (0,) * len(pins.watch)
    ops = []
    for _ in range(3600):
        pins.step(idle, 1.0)
        ops.append(pins.power_change())
    assert [op for op in ops if op] == ["off"] and pins.off and not p.powered
    p.set_sun(1.0)
    for _ in range(3600):
        pins.step(idle, 1.0)
        ops.append(pins.power_change())
    assert [op for op in ops if op] == ["off", "on"] and not pins.off and p.powered
