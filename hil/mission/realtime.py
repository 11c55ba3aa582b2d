"""Real-time targets: a rover on a serial port (a Pico, or the MicroPython virtual board).

The same pieces as the virtual loop — `LoopGround`, the relay model, `RoverApi` — on an
ordinary asyncio loop whose clock is the wall clock. The rover is another process or a
board: its octets come from a pyserial port watched with `loop.add_reader`, and they go
through the relay model in this process before reaching the ground.

    target = open_realtime_target("mpy", None, "sim", "lab", seed=1, folder=Path("run"))
    api = RoverApi(target)

`mpy` starts a virtual board (hil.board: the MicroPython unix port in a pty with the
board's heap budget), flashes the firmware onto it (hil.flash) and talks to it through
its pty. `serial` opens PORT; `flash=True` flashes it first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import serial

from hil.errors import FarsideError
from hil.gs.archive import ArchiveWriter
from hil.gs.mission import Mission
from hil.mission.ground import LoopGround
from hil.mission.loop import RelayedTarget, fop_config_for
from hil.relay.channel import Relay
from hil.relay.profile import load_profile

T = TypeVar("T")


class PortTarget(RelayedTarget):
    """Ground + relay model on a real-time loop, the rover on a serial port."""

    hal = None  # no in-process plant: faults go up as SIM_INJECT commands

    def __init__(
        self, port: str, relay: str, seed: int, folder: Path, mission: Mission | None = None,
        board: Any = None, baudrate: int = 115200, target: str = "serial",
    ) -> None:
        super().__init__()
        self.mission = mission or Mission.load()
        self.board = board  # a hil.board.VirtualBoard we started (stopped on close)
        self.target = target
        self.loop = asyncio.new_event_loop()
        self.relay: Relay | None = Relay(load_profile(relay), seed=seed) if relay != "none" else None
        try:
            self.port = serial.serial_for_url(port, baudrate=baudrate, timeout=0, write_timeout=2.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise FarsideError(f"link {port}: cannot open ({exc})") from None
        folder.mkdir(parents=True, exist_ok=True)
        self.archive_path = folder / "archive"
        fop = fop_config_for(self.relay, self.mission) if self.relay else None
        # the board persists its anti-replay mark: the ground's ARSN ledger stays above it
        self.ground = LoopGround(
            self.mission, self._from_ground, loop=self.loop, archive=ArchiveWriter(self.archive_path),
            fop=fop, t0_unix=time.time() - self.loop.time(),
        )
        self._t0 = self.loop.time()
        self._closed = False
        self.loop.add_reader(self.port.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            data = self.port.read(self.port.in_waiting or 1)
        except (serial.SerialException, OSError):
            return
        if data:
            self._from_rover(data)

    def _to_rover(self, data: bytes) -> None:
        self.port.write(data)

    def _loop_time(self, t: float) -> float:
        return self._t0 + t

    def now(self) -> float:
        return self.loop.time() - self._t0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            raise FarsideError("the target is closed")
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.loop.remove_reader(self.port.fileno())
            self.port.close()
        except (serial.SerialException, OSError, ValueError):
            pass
        self.ground.close()
        self.loop.close()
        if self.board is not None:
            self.board.stop()


def start_flashed_board(board: str, folder: Path) -> Any:
    """A fresh MicroPython virtual board with the firmware flashed and booted (hil.board, hil.flash)."""
    from hil.board import start_board
    from hil.flash import FlashOptions
    from hil.flash import flash as flash_board

    vb = start_board(board=board, flash_dir=folder / "board-flash")
    try:
        flash_board(FlashOptions(board=board, port=vb.port))
    except BaseException:
        vb.stop()
        raise
    return vb


def reset_board(vb: Any, timeout_s: float = 30.0) -> None:
    """Reset a virtual board (the rover reboots with its flash kept)."""
    vb.reset()


def open_realtime_target(
    target: str, port: str | None, board: str, relay: str, seed: int, folder: Path, flash: bool = False,
    virtual_board: Any = None,
) -> PortTarget:
    """A real-time target: `mpy` (a virtual board: `virtual_board`, or a fresh one that is
    stopped with the target) or `serial` (PORT, flashed first with `flash`)."""
    from hil.flash import FlashOptions
    from hil.flash import flash as flash_board

    if target == "mpy":
        if virtual_board is not None:
            return PortTarget(virtual_board.port, relay, seed, folder, target="mpy")
        vb = start_flashed_board(board, folder)
        try:
            return PortTarget(vb.port, relay, seed, folder, board=vb, target="mpy")
        except BaseException:
            vb.stop()
            raise
    if target == "serial":
        if not port:
            raise FarsideError("expected serial:PORT, got no port")
        if flash:
            flash_board(FlashOptions(board=board, port=port))
        return PortTarget(port, relay, seed, folder)
    raise FarsideError(f"expected a real-time target mpy or serial:PORT, got {target!r}")
