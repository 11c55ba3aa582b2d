"""The emulated Pico as a HIL target: ground, relay and plant on the chip's clock.

    image = flashed_image(folder / "image", board="pico")     # once: stock UF2 + `farside flash`
    target = ChipTarget(image, "lab", seed=1, folder=Path("run"))
    api = RoverApi(target)                                   # the same F Prime style front door

The rover is the real firmware (`.mpy` files on littlefs, boards/pico.json, the rp2 HAL) on
an emulated RP2040 (hil.board.emulated). Its USB CDC carries the link: the chip's octets
go through the relay model to the ground, the ground's come back the same way.

The asyncio loop's clock *is* the chip's: `ChipLoop.time()` reads the chip's time, and
when the loop would sleep it runs the chip instead, tick by tick, up to the next timer
(or until the chip says something). So relay delays, COP-1 timers, the plant and every
`timeout=` in a test are chip seconds, and a test runs faster than real time whenever
the chip idles. The run is deterministic for a seed: nothing reads the wall clock.

Faults are injected at the pins (`hal.inject`, like the sim HAL's SIM_INJECT codes): jam,
open circuit, dead encoder, stuck IMU, slope, sun, battery, and brown-out (a power-on reset
of the chip). HANG_TASK is a firmware fault: it goes up as SIM_INJECT, which the rp2 HAL
takes for exactly that code.
"""

from __future__ import annotations

import asyncio
import selectors
import shutil
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from hil.board.emulated import EmulatedPico
from hil.errors import FarsideError
from hil.gs.archive import ArchiveWriter
from hil.gs.mission import Mission
from hil.mission.ground import LoopGround
from hil.mission.loop import RelayedTarget, close_loop, fop_config_for, load_board
from hil.relay.channel import Relay
from hil.relay.profile import load_profile

T = TypeVar("T")

FIRMWARE_FAULTS = ("HANG_TASK",)
_MIN_RUN_S = 1e-6
_NS = 1e-9  # the chip's clock counts nanoseconds: closer than that is "now"  # not at the pins: commanded with SIM_INJECT


class _ChipSelector(selectors.DefaultSelector):
    """Polls real fds without blocking; a wait runs the chip instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: ChipLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or (timeout is not None and timeout <= 0) or self.loop is None:
            return ready
        self.loop.run_chip(timeout)
        return ready


class ChipLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose clock is an emulated chip's, and whose waits run it."""

    def __init__(self, pico: EmulatedPico) -> None:
        selector = _ChipSelector()
        super().__init__(selector)
        selector.loop = self
        self.pico = pico
        self.said = False  # set by the chip's output callbacks: the loop has work again

    def time(self) -> float:
        return self.pico.now

    def run_chip(self, timeout: float | None) -> None:
        """Run the chip for `timeout` s (one tick when None), stopping early after any tick
        in which it sent something (the loop then has callbacks to run)."""
        # at least a microsecond: a timer due a hair from now (closer than the loop's clock
        # resolution) must still come due, or the loop would spin on a zero wait
        end = self.pico.now + max(self.pico.tick_s if timeout is None else timeout, _MIN_RUN_S)
        self.said = False
        while self.pico.now < end - _NS / 2 and not self.said:
            self.pico.tick(end - self.pico.now)


class _PinFaults:
    """What PlantControl reaches directly: the plant behind the pins and fault injection."""

    commanded_faults = FIRMWARE_FAULTS

    def __init__(self, pico: EmulatedPico) -> None:
        self.pico = pico

    @property
    def plant(self) -> Any:
        return self.pico.plant

    def inject(self, fault: int, wheel: int, value: float) -> bool:
        return self.pico.pins.inject(fault, wheel, value)


class ChipTarget(RelayedTarget):
    """Ground + relay model + the emulated Pico on the chip's clock."""

    target = "pico-emu"

    def __init__(
        self, image: Path, relay: str, seed: int, folder: Path, board: str = "pico",
        mission: Mission | None = None, firmware: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.mission = mission or Mission.load()
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        chip_dir = folder / "pico"
        chip_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, chip_dir / "flash.img")  # a flashed board, fresh for this run
        self.log = open(folder / "chip.log", "ab")  # noqa: SIM115
        self.usb_log = open(folder / "usb.bin", "ab", buffering=0)  # noqa: SIM115
        self.pico = EmulatedPico(chip_dir, load_board(board), firmware=firmware, seed=seed, log=self.log)
        self.hal = _PinFaults(self.pico)
        self.chip_loop = ChipLoop(self.pico)
        self.loop = self.chip_loop
        self.relay: Relay | None = Relay(load_profile(relay), seed=seed) if relay != "none" else None
        self.archive_path = folder / "archive"
        fop = fop_config_for(self.relay, self.mission) if self.relay else None
        keys = image.parent / "keys.json"  # the keys the image was flashed with (flashed_image)
        self.ground = LoopGround(
            self.mission, self._from_ground, loop=self.loop, archive=ArchiveWriter(self.archive_path),
            fop=fop, t0_unix=time.time() - self.pico.now, keys=keys if keys.is_file() else None,
        )
        self.pico.on_usb = self._chip_said
        self._closed = False
        asyncio.set_event_loop(self.loop)

    def _chip_said(self, data: bytes) -> None:
        self.usb_log.write(data)  # everything the chip sent, frames and text, for a post-mortem
        self.chip_loop.said = True
        self._from_rover(data)

    @property
    def boots(self) -> int:
        return len(self.pico.resets)

    def _to_rover(self, data: bytes) -> None:
        self.pico.usb_write(data)

    def _direct_up(self, data: bytes) -> None:
        self.loop.call_soon(self.pico.usb_write, data)

    def _direct_down(self, data: bytes) -> None:
        self.loop.call_soon(self.ground.feed, data)

    def now(self) -> float:
        return self.pico.now

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            raise FarsideError("the target is closed")
        return self.loop.run_until_complete(coro)

    def advance(self, seconds: float) -> None:
        self.run(asyncio.sleep(seconds))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close_loop(self.loop, self.ground)
        finally:
            self.pico.close()
            self.log.close()
            self.usb_log.close()


def flashed_image(folder: Path, board: str = "pico", firmware: str | Path | None = None,
                  keys: str | Path | None = None) -> Path:
    """A flash image of an emulated Pico that `farside flash` has put the rover on: the
    stock firmware booted, the firmware flashed over its USB CDC, the BOOT event seen.

    Keys: `keys`, else the key setting ($FARSIDE_KEYS, the board's own keys), else fresh
    keys made for this image alone, as `farside keys new` would (a Pico never takes the
    dev keys). The key file used is kept beside the image as `keys.json` (owner-only), for
    the ground that commands this image (`ChipTarget`)."""
    from hil.board import start_board
    from hil.flash import FlashOptions
    from hil.flash import flash as flash_board
    from hil.gs.keys import load_store, new_store, resolve_keys, write_key_file

    folder.mkdir(parents=True, exist_ok=True)
    image = folder / "flash.img"
    key_file = folder / "keys.json"
    try:
        source = resolve_keys(keys, board=board, allow_dev=board.startswith("sim")).path
        write_key_file(key_file, load_store(source))
    except FarsideError:
        if keys is not None:
            raise
        write_key_file(key_file, new_store())
    vb = start_board(board=board, flash_dir=folder, emulated=True, firmware=str(firmware) if firmware else None,
                     pace="free")
    try:
        flash_board(FlashOptions(board=board, port=vb.port, keys=key_file))
    finally:
        vb.stop()
    if not image.is_file():
        raise FarsideError(f"the emulated Pico left no flash image in {folder}")
    return image
