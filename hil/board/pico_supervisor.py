"""The emulated Pico as a board on the PC: its USB CDC on a pty, like /dev/ttyACM0.

    user (mpremote, farside flash, gs)        supervisor (this module)           chip.mjs
    opens /dev/pts/N  <-- pty (USB CDC) -->  master  ==== pacing, power ====  rp2040js + plant
    opens /dev/pts/M  <-- pty (UART0)   -->  master      (a board whose link is on UART0)

The chip runs in lockstep with the host (hil.board.emulated.EmulatedPico). Paced (the
default), its clock never runs ahead of the wall clock: `time.sleep(1)` on the chip takes
a second, as on a Pico, and busy code that the emulator runs slower than real time just
lags. `--pace free` lets an idle chip run ahead (for tests that follow the chip's clock).

Control socket ops are those of the unix-port virtual board (hil.board.supervisor):
status, reset (the RUN pin: a power-on reset), power_off, power_on, power_cycle,
cut_after (power cut after N more octets from the user), stop; and inject (fault, wheel,
value: a plant fault at the pins, SIM_INJECT's codes, which a rover on rp2 refuses). A reset re-enumerates the
chip's USB; with `--reenumerate` the port path changes too, as a real Pico's does.

Run as `python -m hil.board.pico_supervisor --name NAME ...` (see hil.board.start_board).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import selectors
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from hil.board.emulated import EmulatedPico
from hil.board.runtime import (
    NAME_TAKEN_EXIT,
    BoardState,
    NameTakenError,
    claim_name,
    runtime_dir,
    serve_control,
    write_state,
)
from hil.board.supervisor import _set_nonblocking, _set_raw, drain

_OUT_BUFFER_MAX = 1 << 16
_CHIP_QUEUE_MAX = 4096  # octets waiting for the chip before the user's writes block
_MAX_BURST_S = 0.02  # wall time spent running the chip before serving the ptys again


class _Port:
    """One pty the user opens; the supervisor keeps the slave open so closes never EIO."""

    def __init__(self, sel: selectors.BaseSelector, tag: str) -> None:
        self.sel = sel
        self.tag = tag
        self.out = bytearray()
        self.reading = False
        self.master, self.slave = os.openpty()
        _set_raw(self.slave)
        _set_nonblocking(self.master)
        self.path = os.ttyname(self.slave)
        self.read(True)

    def read(self, on: bool) -> None:
        if on != self.reading:
            if on:
                self.sel.register(self.master, selectors.EVENT_READ, self.tag)
            else:
                self.sel.unregister(self.master)
            self.reading = on

    def write(self, data: bytes) -> None:
        self.out += data
        if len(self.out) > _OUT_BUFFER_MAX:
            del self.out[: len(self.out) - _OUT_BUFFER_MAX]  # nobody reads: drop the oldest
        self.flush()

    def flush(self) -> None:
        drain(self.master, self.out)

    def close(self) -> None:
        self.read(False)
        os.close(self.master)
        os.close(self.slave)


class PicoSupervisor:
    """One emulated Pico: the chip and its plant, its ptys, its control socket."""

    def __init__(
        self, name: str, board: str, folder: Path, firmware: str | None, serial_number: str,
        reenumerate: bool = False, pace: str = "realtime", seed: int = 1,
    ) -> None:
        import boards

        self.name = name
        self.board_name = board
        self.definition: dict[str, Any] = boards.load(board)
        self.folder = folder
        self.serial_number = serial_number
        self.reenumerate = reenumerate
        self.pace = pace
        self.sel = selectors.DefaultSelector()
        self.usb = _Port(self.sel, "usb")
        link = self.definition.get("link", {})
        self.uart = _Port(self.sel, "uart") if link.get("kind") == "uart" else None
        self.log = open(runtime_dir() / name / "chip.log", "ab")  # noqa: SIM115
        self.pico = EmulatedPico(folder, self.definition, firmware=firmware, seed=seed, log=self.log,
                                 unique_id=bytes.fromhex(serial_number))
        self.said = False  # the chip sent octets to a port in the current tick
        self.pico.on_usb = self._usb_out
        if self.uart is not None:
            self.pico.on_uart = self._uart_out
        self.pico.chip.on_reset = self._on_reset
        self.usb_up = False
        self.replugs = 0  # USB re-enumerations that gave a new port
        self.pico.chip.on_usb_connected = self._usb_connected
        self.power = "on"
        self.boots = 1
        self.bytes_in = 0
        self.bytes_out = 0
        self.cut_after: int | None = None
        self.cut_then = "off"
        self.running = True
        self.ctl_path = str(runtime_dir() / name / "ctl")
        with contextlib.suppress(OSError):
            os.unlink(self.ctl_path)
        self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ctl.bind(self.ctl_path)
        self.ctl.listen(8)
        self.sel.register(self.ctl, selectors.EVENT_READ, "ctl")
        self.wall0 = time.monotonic()
        self.chip0 = self.pico.now

    # ---- power and resets ----------------------------------------------------------------

    def _on_reset(self, cause: int) -> None:
        """The chip reset itself (watchdog, machine.reset()): USB re-enumerates."""
        if cause:
            self.boots += 1
            print(f"chip reset by its watchdog at t={self.pico.now:.3f} s", flush=True)
            if self.reenumerate:
                self._replug()

    def _usb_connected(self) -> None:
        self.usb_up = True

    def _replug(self) -> None:
        self.replugs += 1
        old = self.usb
        self.usb = _Port(self.sel, "usb")
        old.close()
        self.publish()

    def _power(self, op: str) -> None:
        if op in ("reset", "on") and self.reenumerate:
            self._replug()
        self.pico.power(op)
        self.power = "off" if op == "off" else "on"
        if op != "off":
            self.boots += 1
        if op == "off":
            self.cut_after = None
        self.publish()

    # ---- octets between the chip and the user ----------------------------------------

    def _usb_out(self, data: bytes) -> None:
        self.said = True
        self.usb.write(data)

    def _uart_out(self, data: bytes) -> None:
        self.said = True
        assert self.uart is not None
        self.uart.write(data)

    def _from_user(self, port: _Port, data: bytes) -> None:
        if self.power == "off":
            return  # into an unpowered board
        if self.cut_after is not None:
            if len(data) >= self.cut_after:
                first = data[: self.cut_after]
                self._to_chip(port, first)
                self.pico.run_until(self.pico.now + 0.05)  # let the board act on the first part
                print(f"power cut: {len(first)} of {len(data)} octets passed", flush=True)
                then = self.cut_then
                self._power("off")
                if then == "cycle":
                    self._power("on")
                return
            self.cut_after -= len(data)
        self._to_chip(port, data)

    def _to_chip(self, port: _Port, data: bytes) -> None:
        self.bytes_in += len(data)
        if port is self.uart:
            self.pico.uart_write(data)
        else:
            self.pico.usb_write(data)

    # ---- control socket --------------------------------------------------------------

    def _control(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "status":
            pass
        elif op == "reset":
            self._power("reset")
        elif op == "power_off":
            self._power("off")
        elif op == "power_on":
            if self.power == "off":
                self._power("on")
        elif op == "power_cycle":
            self._power("off")
            off_s = float(request.get("off_s", 0.0))
            self.pico.run_until(self.pico.now + off_s)
            self._power("on")
        elif op == "cut_after":
            self.cut_after = int(request["bytes"])
            self.cut_then = str(request.get("then", "off"))
        elif op == "inject":
            error = self._inject(request)
            if error:
                return {"ok": False, "error": error}
        elif op == "stop":
            self.running = False
        else:
            return {
                "ok": False,
                "error": "expected one of status, reset, power_off, power_on, power_cycle, cut_after, inject, stop; "
                         f"got {op!r}",
            }
        return {
            "ok": True,
            "power": self.power,
            "boots": self.boots,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "cut_armed": self.cut_after is not None,
            "port": self.usb.path,
            "link_port": self.uart.path if self.uart else None,
            "chip_time_s": round(self.pico.now, 6),
            "replugs": self.replugs,
            "resets": self.pico.resets,
        }

    def _inject(self, request: dict[str, Any]) -> str | None:
        """A plant fault at the pins (the dictionary's `sim_fault` enum, by code or name);
        None when taken, else why not, in one line."""
        from protocols.dictionary import load_dictionary

        faults: dict[int, str] = dict(load_dictionary().enums["sim_fault"])
        codes = {name: code for code, name in faults.items()}
        fault: Any = request.get("fault")
        if isinstance(fault, str) and fault.upper() in codes:
            fault = codes[fault.upper()]
        try:
            code, wheel, value = int(fault), int(request.get("wheel", 0)), float(request.get("value", 1.0))
        except (TypeError, ValueError):
            return f"inject: expected a fault (code or {'/'.join(codes)}), wheel and value; got {request!r}"
        if code not in faults:
            return f"inject: expected a sim_fault code {min(faults)}..{max(faults)}, got {code}"
        if faults[code] == "HANG_TASK":
            return "inject: HANG_TASK is a firmware fault, not the plant's: command it with SIM_INJECT"
        if self.power == "off":
            return "inject: the board is powered off"
        if not self.pico.pins.inject(code, wheel, value):
            return f"inject: the plant refused {faults[code]} wheel {wheel} value {value:g}"
        return None

    # ---- main loop -------------------------------------------------------------------

    def publish(self) -> None:
        write_state(
            BoardState(
                name=self.name,
                board=self.board_name,
                port=self.usb.path,
                serial_number=self.serial_number,
                pid=os.getpid(),
                flash_dir=str(self.folder),
                micropython=f"rp2 on an emulated RP2040 ({self.pico.firmware.name})",
                heapsize="264K RAM",
                control=self.ctl_path,
                power=self.power,
            )
        )

    def _run_chip(self) -> None:
        """Run the chip up to the wall clock (paced) or for one burst (free). Either ends
        early once the chip has said something or the user has: a raw-paste upload's every
        128-octet window is such a round trip, which then takes about a tick (a real Pico's
        takes about a USB frame) instead of a whole burst."""
        start = time.monotonic()
        while time.monotonic() - start < _MAX_BURST_S:
            self.said = False
            if self.pace == "realtime":
                due = self.chip0 + (time.monotonic() - self.wall0)
                if self.pico.now >= due:
                    return
                self.pico.tick(due - self.pico.now)
            else:
                self.pico.tick()
            if self.said or self.sel.select(0):
                break
        # the chip lags the wall: don't let the debt grow without bound
        if self.pace == "realtime":
            lag = self.chip0 + (time.monotonic() - self.wall0) - self.pico.now
            if lag > 1.0:
                self.wall0 += lag - 1.0

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "running", False))
        # the port appears once the chip's USB has enumerated, as /dev/ttyACM0 does
        deadline = self.pico.now + 10.0
        while not self.usb_up and self.pico.now < deadline:
            self.pico.tick()
        self.chip0 = self.pico.now
        self.wall0 = time.monotonic()
        self.publish()
        while self.running:
            for key, _ in self.sel.select(timeout=0.002):
                if key.data == "ctl":
                    serve_control(self.ctl, self._control)
                    continue
                port = self.usb if key.data == "usb" else self.uart
                if port is None:
                    continue
                try:
                    data = os.read(port.master, 4096)
                except OSError:
                    continue
                if data:
                    self._from_user(port, data)
            self._run_chip()
            status = self.pico.chip.status
            self.usb.read(status.usb_queued < _CHIP_QUEUE_MAX)  # USB flow control
            if self.uart is not None:
                self.uart.read(status.uart_queued < _CHIP_QUEUE_MAX)
            for p in (self.usb, self.uart):
                if p is not None:
                    p.flush()
        self.pico.close()
        self.log.close()
        with contextlib.suppress(OSError):
            os.unlink(self.ctl_path)
        with contextlib.suppress(OSError):
            (runtime_dir() / self.name / "state.json").unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.board.pico_supervisor")
    parser.add_argument("--name", required=True)
    parser.add_argument("--board", default="pico")
    parser.add_argument("--folder", required=True, help="the board's folder (flash.img lives here)")
    parser.add_argument("--firmware", default=None)
    parser.add_argument("--serial-number", default=None)
    parser.add_argument("--reenumerate", action="store_true")
    parser.add_argument("--pace", choices=("realtime", "free"), default="realtime")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        lock = claim_name(args.name)  # held until this process ends
    except NameTakenError as exc:
        print(exc, flush=True)
        return NAME_TAKEN_EXIT
    folder = Path(args.folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    sup = PicoSupervisor(
        name=args.name, board=args.board, folder=folder, firmware=args.firmware,
        serial_number=args.serial_number or secrets.token_hex(8).upper(),
        reenumerate=args.reenumerate, pace=args.pace, seed=args.seed,
    )
    sys.stdout.flush()
    sup.run()
    os.close(lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
