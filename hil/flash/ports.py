"""Finding the board's serial port: by USB VID (auto), among virtual boards, or as given,
and finding it again by USB serial number after a reset re-enumerates it."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from serial.tools import list_ports

from hil.board.runtime import BoardState, find_board, list_boards
from hil.errors import FarsideError

RPI_VID = 0x2E8A


@dataclass
class BoardPort:
    """A resolved port: its device path, USB serial number (if known), and the virtual
    board behind it (None for hardware)."""

    device: str
    serial_number: str | None = None
    virtual: BoardState | None = None

    @property
    def label(self) -> str:
        if self.virtual is not None:
            return f"{self.device} (virtual board {self.virtual.name})"
        return self.device


def _describe(p: list_ports.ListPortInfo) -> str:
    vid = f"{p.vid:04X}:{p.pid:04X}" if p.vid is not None and p.pid is not None else "no USB id"
    return f"{p.device} [{vid}] {p.description or ''}".strip()


def resolve_port(port: str) -> BoardPort:
    """`auto` (one USB device with VID 0x2E8A), `virtual` (the one running virtual
    board), or a device path / virtual board name."""
    if port == "auto":
        seen = list(list_ports.comports())
        picos = [p for p in seen if p.vid == RPI_VID]
        if len(picos) == 1:
            return BoardPort(picos[0].device, picos[0].serial_number)
        listing = "; ".join(_describe(p) for p in seen) or "no serial ports at all"
        if not picos:
            raise FarsideError(
                f"--port auto: expected one USB serial device with VID 0x{RPI_VID:04X} (a Pico), saw none ({listing}); "
                "plug a board in, or give --port PATH or --port virtual"
            )
        raise FarsideError(
            f"--port auto: expected one Pico, saw {len(picos)}: "
            + "; ".join(f"{p.device} serial {p.serial_number}" for p in picos)
            + "; choose one with --port PATH"
        )
    if port == "virtual":
        boards = list_boards()
        if len(boards) == 1:
            return BoardPort(boards[0].port, boards[0].serial_number, boards[0])
        listing = ", ".join(f"{b.name} on {b.port}" for b in boards) or "none"
        raise FarsideError(
            f"--port virtual: expected one running virtual board (farside board start), saw {listing}"
            + ("; give --port PATH" if boards else "")
        )
    state = find_board(port)
    if state is not None:
        return BoardPort(state.port, state.serial_number, state)
    if not os.path.exists(port) and "://" not in port:
        raise FarsideError(f"expected a serial port at {port}, found none")
    serial_number = None
    real = os.path.realpath(port)
    for p in list_ports.comports():
        if os.path.realpath(p.device) == real:
            serial_number = p.serial_number
    return BoardPort(port, serial_number)


@dataclass(frozen=True)
class Holder:
    """A process that has a serial port open."""

    pid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})" if self.command else f"pid {self.pid}"


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rindex(b")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def port_holders(device: str) -> list[Holder]:
    """Other processes that have `device` open (from /proc/PID/fd: no lsof, no lock needed, so
    a terminal or a tool that takes no lock is seen too). Not this process, and not the virtual
    board's own supervisor (it keeps its port's slave open) or that supervisor's children.
    Empty where /proc is missing, for URLs, and for processes of other users (unreadable)."""
    if "://" in device or not os.path.isdir("/proc/self/fd"):
        return []
    try:
        target = os.stat(device)
    except OSError:
        return []
    own = {os.getpid()}
    state = find_board(device)
    if state is not None:
        own.add(state.pid)
    found: list[Holder] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in own:
            continue
        pid = int(entry)
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if st.st_rdev == target.st_rdev and st.st_ino == target.st_ino and st.st_dev == target.st_dev:
                if _parent(pid) in own - {os.getpid()}:
                    break  # the virtual board's own MicroPython or emulator
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        command = " ".join(f.read().replace(b"\0", b" ").decode(errors="replace").split())
                except OSError:
                    command = ""
                found.append(Holder(pid, command[:80]))
                break
    return found


def refind(port: BoardPort, timeout_s: float = 10.0) -> BoardPort:
    """The same board after a reset: by USB serial number (its device name may change),
    or by the virtual board's serial number."""
    deadline = time.monotonic() + timeout_s
    while True:
        if port.virtual is not None:
            state = find_board(port.virtual.serial_number)
            if state is not None and os.path.exists(state.port):
                return BoardPort(state.port, state.serial_number, state)
        elif port.serial_number:
            for p in list_ports.comports():
                if p.serial_number == port.serial_number:
                    return BoardPort(p.device, p.serial_number)
        elif os.path.exists(port.device):
            return port
        if time.monotonic() > deadline:
            raise FarsideError(
                f"expected the board (serial number {port.serial_number or 'unknown'}) back within {timeout_s} s "
                f"after the reset, it did not come back"
            )
        time.sleep(0.1)
