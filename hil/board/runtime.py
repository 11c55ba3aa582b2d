"""Where running virtual boards live: one folder per board under the runtime dir.

Each board folder holds `state.json` (what `farside board list` shows), the
supervisor's control socket `ctl` and its log. The runtime dir is
`$FARSIDE_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/farside`, else `/tmp/farside-<uid>`.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hil.errors import FarsideError
from hil.locks import lock_held, try_lock


def runtime_dir() -> Path:
    """The folder holding one subfolder per running virtual board."""
    env = os.environ.get("FARSIDE_RUNTIME_DIR")
    if env:
        base = Path(env)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        base = Path(os.environ["XDG_RUNTIME_DIR"]) / "farside"
    else:
        base = Path(tempfile.gettempdir()) / f"farside-{os.getuid()}"
    path = base / "boards"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class BoardState:
    """What a running virtual board's supervisor publishes in its `state.json`."""

    name: str
    board: str
    port: str
    serial_number: str
    pid: int
    flash_dir: str
    micropython: str
    heapsize: str
    control: str
    power: str = "on"
    link_port: str = ""  # the rover's link on a pty of its own ("": it shares `port`)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def alive(self) -> bool:
        """The supervisor process exists and is not a zombie."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True


# A supervisor that finds its board name held by another exits with this code (start_board
# then picks another name when it chose the name itself).
NAME_TAKEN_EXIT = 75


class NameTakenError(FarsideError):
    """Another live supervisor holds this board name."""


def claim_name(name: str) -> int:
    """Hold board `name` for this process's lifetime: an exclusive lock on its folder's `lock`
    file, let go when the process ends however it ends. Two `farside board start` at once may
    choose the same free name; only one supervisor gets it, so two boards never share a control
    socket or a state.json. Returns the lock's fd (keep it open); NameTakenError if held."""
    folder = runtime_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 0.5  # name_held's probe holds it for a moment only
    while (fd := try_lock(folder / "lock")) is None:
        if time.monotonic() > deadline:
            raise NameTakenError(f"virtual board {name} is already running (its name is held)")
        time.sleep(0.01)
    return fd


def name_held(name: str) -> bool:
    """True when a live supervisor holds board `name` (claim_name)."""
    return lock_held(runtime_dir() / name / "lock")


def state_path(name: str) -> Path:
    return runtime_dir() / name / "state.json"


def write_state(state: BoardState) -> None:
    """Publish the state atomically (write then rename)."""
    path = state_path(state.name)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=1))
    os.replace(tmp, path)


def read_state(name: str) -> BoardState | None:
    try:
        data = json.loads(state_path(name).read_text())
    except (OSError, ValueError):
        return None
    try:
        return BoardState(**data)
    except TypeError:
        return None


def list_boards() -> list[BoardState]:
    """Every virtual board whose supervisor is alive (stale folders are removed)."""
    boards = []
    for folder in sorted(runtime_dir().iterdir()):
        state = read_state(folder.name)
        if state is None:
            continue
        if not state.alive:
            _remove_stale(folder)
            continue
        boards.append(state)
    return boards


def _remove_stale(folder: Path) -> None:
    for name in ("state.json", "ctl", "state.tmp"):
        try:
            (folder / name).unlink()
        except OSError:
            pass


def find_board(port_or_name: str) -> BoardState | None:
    """The running virtual board with this name, serial number or serial device path
    (its REPL port or its link port)."""
    real = os.path.realpath(port_or_name) if port_or_name.startswith("/") else None
    for state in list_boards():
        ports = {state.port, state.link_port} - {""}
        if port_or_name in (state.name, state.serial_number) or {port_or_name, real} & ports:
            return state
    return None


def serve_control(ctl: socket.socket, handle: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Answer one request on a supervisor's control socket: a JSON line in, `handle`'s
    answer (or a bad-request error) as a JSON line out."""
    conn, _ = ctl.accept()
    with conn:
        conn.settimeout(5)
        data = b""
        try:
            while not data.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            try:
                answer = handle(json.loads(data))
            except (ValueError, KeyError, TypeError) as exc:
                answer = {"ok": False, "error": f"bad request {data[:80]!r}: {exc}"}
            conn.sendall(json.dumps(answer).encode() + b"\n")
        except OSError:
            pass


def control(state: BoardState, op: str, timeout_s: float = 15.0, **args: Any) -> dict[str, Any]:
    """Send one request to a board's supervisor and return its answer."""
    request = dict(args, op=op)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(state.control)
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise FarsideError(
            f"virtual board {state.name}: expected an answer to {op!r} on its control socket, got {exc}"
        ) from exc
    try:
        answer: dict[str, Any] = json.loads(data)
    except ValueError as exc:
        raise FarsideError(
            f"virtual board {state.name}: expected a JSON answer to {op!r}, got {data[:60]!r}"
        ) from exc
    if not answer.get("ok"):
        raise FarsideError(f"virtual board {state.name}: {op} failed: {answer.get('error')}")
    return answer
