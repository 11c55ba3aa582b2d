"""Run the rover (CPython firmware, sim HAL) on the master side of a pty.

    python -m tests.gs.rover_pty ROOT MASTER_FD [--dictionary PATH]

ROOT is the rover's flash folder (dictionary.json in canonical form, keys.json).
The test keeps the slave side's path and opens it with pyserial like a board's
serial port. `start_rover(tmp_path)` does all of it and returns (process, slave path).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class MasterStream:
    """The rover's byte stream: non-blocking reads and writes on the pty master."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)

    def read_into(self, buf: bytearray) -> int:
        try:
            data = os.read(self.fd, len(buf))
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:  # no slave open (EIO): nothing to read
            return 0
        buf[: len(data)] = data
        return len(data)

    def write(self, mv: memoryview | bytes) -> int:
        data = bytes(mv)
        sent = 0
        while sent < len(data):
            try:
                sent += os.write(self.fd, data[sent:])
            except BlockingIOError:
                return sent  # the ground is not reading: drop the rest, like a UART
            except OSError:
                return sent
        return sent


def prepare_root(root: Path, dictionary: Path | None = None, keys: Path | None = None) -> Path:
    """A rover flash folder with the canonical dictionary and the ground's dev keys."""
    root.mkdir(parents=True, exist_ok=True)
    d = json.loads((dictionary or ROOT / "protocols" / "dictionary.json").read_text())
    (root / "dictionary.json").write_bytes(json.dumps(d, sort_keys=True, separators=(",", ":")).encode())
    shutil.copy(keys or ROOT / "hil" / "gs" / "dev_keys.json", root / "keys.json")
    return root


def start_rover(root: Path, dictionary: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start the rover on a new pty; returns (process, slave path).

    Only the rover holds the master: when it dies the port vanishes, as a board's does.
    """
    prepare_root(root, dictionary)
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.gs.rover_pty", str(root), str(master)],
        cwd=ROOT, pass_fds=[master], stdout=subprocess.DEVNULL, stderr=open(root / "rover.log", "wb"),
    )
    os.close(slave)  # the ground opens it by path; the pty stays while the master is open
    os.close(master)
    return proc, path


def main() -> None:
    root, fd = sys.argv[1], int(sys.argv[2])
    sys.path.insert(0, str(ROOT))
    from firmware_py.app import run_forever
    from firmware_py.hal.sim import SimHal

    board = json.loads((ROOT / "boards" / "sim.json").read_text())
    stream = MasterStream(fd)
    hal = SimHal(board, stream, seed=1)
    asyncio.run(run_forever(board, hal, root.rstrip("/") + "/", stream))


if __name__ == "__main__":
    main()
