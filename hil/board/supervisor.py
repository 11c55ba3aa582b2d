"""The virtual Pico: the MicroPython unix port behind a pty, supervised like a board on USB.

    user (mpremote, farside flash, gs)          supervisor (this module)          micropython
    opens /dev/pts/N  <-- pty A -->  master A  ==== relay, Ctrl-C, power ====  master B <-- pty B --> stdin/stdout

The supervisor owns two pty pairs. Users open the slave of pty A (a stable path that
survives resets, as /dev/serial/by-id does for a real Pico). MicroPython runs on the
slave of pty B with its working directory set to the board's flash folder and its heap
limited with `-X heapsize=`. Both slaves are raw (8-bit clean, no ISIG, no \\r added),
so after boot the same line carries the rover's binary link.

What the supervisor adds to the unix port to make it behave like the rp2 port:
- boot.py then main.py run at power-on (a small bootstrap passed with `-i -c`), then the REPL;
- Ctrl-C: a 0x03 byte becomes SIGINT only while MicroPython has its KeyboardInterrupt
  handler installed (read from /proc/<pid>/status SigCgt), i.e. while code runs and
  `micropython.kbd_intr(-1)` was not called; otherwise the byte passes as data, exactly
  like the rp2 port where kbd_intr(-1) makes 0x03 plain data. Several 0x03 in one write
  make one SIGINT. The check and the signal race with the code ending (the unix port then
  dies of SIGINT at the REPL) or with a KeyboardInterrupt still pending (the unix port
  then exits with 1); a MicroPython that ends so, soon after a SIGINT, is restarted at the
  REPL it would have reached on rp2, without main.py and without a soft reboot message;
- soft reboot: when the unix port exits on Ctrl-D, it prints `MPY: soft reboot` and
  restarts MicroPython; from the raw REPL the new one comes back in the raw REPL
  without running main.py, as on a Pico;
- hard reset, power off/on/cycle (with `--reenumerate`, each gives a new port, as a
  Pico's USB re-enumerates; the serial number stays), and a power cut armed to fire after N more bytes from
  the user (the write in progress on the board is cut in half), through a control socket.

With `--own-link` (a board whose link has its own interface, boards/sim_uart.json) a
second pty pair carries the rover's link, as a Pico's UART0 through a debug probe: the
user's end is `link_port` (stable like `port`), MicroPython's end a new pty at each
power-on whose path the firmware finds in $FARSIDE_LINK_DEVICE (firmware_py.hal.stdio).
The REPL stays on the first pty. The link is 8-bit clean with no Ctrl-C handling; while
the power is off its bytes go nowhere; a re-enumerating board gives it a new path too;
like a UART it never blocks its user: octets the board does not read in time are dropped.

Run as `python -m hil.board.supervisor --name NAME ...` (see hil.board.start_board).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import os
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path
from typing import Any

from hil.board.runtime import (
    NAME_TAKEN_EXIT,
    BoardState,
    NameTakenError,
    claim_name,
    runtime_dir,
    serve_control,
    write_state,
)

LINK_DEVICE_ENV = "FARSIDE_LINK_DEVICE"  # firmware_py.hal.stdio.LINK_DEVICE_ENV

_CTRL_C = 0x03
_RAW_BANNER = b"raw REPL; CTRL-B to exit"
_FRIENDLY_PROMPT = b">>> "
_OUT_BUFFER_MAX = 1 << 16
_IN_QUEUE_MAX = 1 << 14
# How long after a SIGINT an exit of MicroPython counts as that Ctrl-C (not a crash).
_SIGINT_EXIT_S = 2.0


# rp2's littlefs gives os.ilistdir() entries of (name, type, inode, size); the unix port's
# VfsPosix gives (name, type, inode), so `mpremote fs ls` showed every file as 0 bytes. The
# root is remounted as a VfsPosix whose ilistdir adds the size (0 for a directory, as on
# littlefs), and the working directory (the board's flash folder) is kept. It is the first
# code MicroPython runs, when a flash tool's Ctrl-C burst arrives: with Ctrl-C on, one landing
# between umount and mount left a board with no filesystem at all (no boot.py, no main.py).
# So Ctrl-C is off for those few lines (a 0x03 then passes as data, as with kbd_intr(-1) on
# rp2), and a failed mount puts the plain root back.
FS_SHIM = (
    "import os, micropython\n"
    "class _FarsideVfs(os.VfsPosix):\n"
    "    def ilistdir(self, path):\n"
    "        base = (path or '.').rstrip('/') + '/'\n"
    "        for e in super().ilistdir(path or '.'):\n"
    "            yield (e[0], e[1], e[2], super().stat(base + e[0])[6] if e[1] == 0x8000 else 0)\n"
    "micropython.kbd_intr(-1)\n"
    "try:\n"
    "    _cwd = os.getcwd()\n"
    "    os.umount('/')\n"
    "    try:\n"
    "        os.mount(_FarsideVfs(), '/')\n"
    "    except OSError:\n"
    "        os.mount(os.VfsPosix(), '/')\n"
    "    os.chdir(_cwd)\n"
    "    del _cwd\n"
    "except (AttributeError, OSError):\n"
    "    pass\n"
    "micropython.kbd_intr(3)\n"
    "del _FarsideVfs, micropython\n"
)


def bootstrap_code(run_main: bool) -> str:
    """The code MicroPython runs at start: boot.py, then main.py (unless `run_main` is
    False, as after a soft reboot from the raw REPL), each like rp2's pyexec_file, which
    compiles from the file and keeps no copy of its text on the heap: the text is dropped
    before the code runs (main.py runs the rover, for as long as the board is on)."""
    files = "('boot.py', 'main.py')" if run_main else "('boot.py',)"
    return FS_SHIM + (
        "import sys\n"
        "def _farside_run(f):\n"
        "    try:\n"
        "        src = open(f).read()\n"
        "    except OSError:\n"
        "        return\n"
        "    try:\n"
        "        code = compile(src, f, 'exec')\n"
        "        src = None\n"
        "        exec(code, globals())\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    except BaseException as e:\n"
        "        sys.print_exception(e)\n"
        f"for _f in {files}:\n"
        "    _farside_run(_f)\n"
        "del _farside_run, _f\n"
    )


def _set_raw(fd: int) -> None:
    """cfmakeraw: 8-bit clean, no echo, no ISIG, no output processing."""
    tty.setraw(fd, termios.TCSANOW)
    attrs = termios.tcgetattr(fd)
    attrs[1] &= ~termios.OPOST
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _set_nonblocking(fd: int) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)


def drain(master: int, out: bytearray) -> None:
    """Write what a non-blocking pty master takes now from the front of `out`; a port
    nobody has open (EIO) or a full one keeps the rest for later."""
    while out:
        try:
            n = os.write(master, out)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EAGAIN):
                return
            raise
        del out[:n]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _sigint_caught(pid: int) -> bool:
    """True when the process has a SIGINT handler installed (MicroPython runs code
    with Ctrl-C enabled)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except OSError:
        pass
    return False


class LinkPty:
    """The rover's link on a pty pair of its own: the user's end (a stable path, like the
    REPL's) and MicroPython's end (a new pty per power-on, `attach` to `detach`)."""

    def __init__(self, sel: selectors.BaseSelector) -> None:
        self.sel = sel
        self.user_master = self.user_slave = -1
        self.port = ""
        self.mpy_master = self.mpy_slave = -1
        self.to_user = bytearray()
        self.to_mpy = bytearray()
        self.bytes_in = 0  # octets that reached MicroPython's end
        self.bytes_out = 0  # octets MicroPython wrote
        self.dropped = 0  # octets from the user that the board did not take in time
        self.plug()

    def plug(self) -> None:
        """Create the user's end (kept open here, as for the REPL's pty)."""
        self.user_master, self.user_slave = os.openpty()
        _set_raw(self.user_slave)
        _set_nonblocking(self.user_master)
        self.port = os.ttyname(self.user_slave)
        self.sel.register(self.user_master, selectors.EVENT_READ, "link_user")

    def replug(self) -> None:
        """A new user's end (re-enumeration): users of the old one see a hang-up."""
        old_master, old_slave = self.user_master, self.user_slave
        self.sel.unregister(old_master)
        self.plug()
        os.close(old_master)
        os.close(old_slave)
        self.to_user.clear()

    def attach(self) -> str:
        """Power on: MicroPython's end; returns the path the firmware opens."""
        self.mpy_master, self.mpy_slave = os.openpty()
        _set_raw(self.mpy_slave)  # kept open here until detach: raw whoever opens it
        _set_nonblocking(self.mpy_master)
        self.sel.register(self.mpy_master, selectors.EVENT_READ, "link_mpy")
        return os.ttyname(self.mpy_slave)

    def detach(self) -> None:
        """Power off: pass on what MicroPython wrote, close its end, drop what it did not read."""
        if self.mpy_master < 0:
            return
        with contextlib.suppress(OSError):
            while data := os.read(self.mpy_master, 65536):
                self.from_mpy(data)
        self.sel.unregister(self.mpy_master)
        os.close(self.mpy_master)
        os.close(self.mpy_slave)
        self.mpy_master = self.mpy_slave = -1
        self.to_mpy.clear()

    def read_user(self) -> bytes:
        try:
            return os.read(self.user_master, 65536)
        except OSError:
            return b""

    def read_mpy(self) -> bytes:
        if self.mpy_master < 0:
            return b""
        try:
            return os.read(self.mpy_master, 65536)
        except OSError:
            return b""

    def from_user(self, data: bytes) -> None:
        """Octets for the board; beyond the queue's room they are lost, as in a UART FIFO."""
        if self.mpy_master < 0:
            return
        room = _IN_QUEUE_MAX - len(self.to_mpy)
        if len(data) > room:
            self.dropped += len(data) - room
            data = data[:room]
        self.to_mpy += data
        self.flush()

    def from_mpy(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self.to_user += data
        if len(self.to_user) > _OUT_BUFFER_MAX:
            del self.to_user[: len(self.to_user) - _OUT_BUFFER_MAX]  # nobody reads
        self.flush()

    def flush(self) -> None:
        for fd, queue, inward in (
            (self.mpy_master, self.to_mpy, True),
            (self.user_master, self.to_user, False),
        ):
            while queue and fd >= 0:
                try:
                    n = os.write(fd, queue)
                except OSError:
                    break  # full (EAGAIN) or nobody there (EIO): later
                if inward:
                    self.bytes_in += n
                del queue[:n]

    @property
    def busy(self) -> bool:
        return bool(self.to_user or self.to_mpy)

    def close(self) -> None:
        self.detach()
        self.sel.unregister(self.user_master)
        os.close(self.user_master)
        os.close(self.user_slave)


class Supervisor:
    """One virtual board: the pty pairs, the MicroPython process, the control socket."""

    def __init__(
        self,
        name: str,
        board: str,
        micropython: str,
        flash_dir: Path,
        heapsize: str,
        serial_number: str,
        reenumerate: bool = False,
        own_link: bool = False,
    ) -> None:
        self.reenumerate = reenumerate
        self.name = name
        self.board = board
        self.micropython = micropython
        self.flash_dir = flash_dir
        self.heapsize = heapsize
        self.serial_number = serial_number
        self.folder = runtime_dir() / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sel = selectors.DefaultSelector()
        self.user_master = self.user_slave = -1
        self.port = ""
        self._plug()
        self.link = LinkPty(self.sel) if own_link else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.mpy_master = -1
        self.power = "off"
        self.raw_mode = False
        self.tail = b""
        self.to_user = bytearray()
        self.to_mpy = bytearray()
        self.reading_user = True
        self.strip_banner = False
        self.banner_buf = b""
        self.cut_after: int | None = None
        self.sigint_at: float | None = None  # when this MicroPython last got a SIGINT
        self.cut_then = "off"
        self.cut_on = "repl"  # the port whose bytes the armed power cut counts
        self.bytes_in = 0
        self.bytes_out = 0
        self.boots = 0
        self.running = True
        self.started_at = 0.0
        self.ctl_path = str(self.folder / "ctl")
        with contextlib.suppress(OSError):
            os.unlink(self.ctl_path)
        self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ctl.bind(self.ctl_path)
        self.ctl.listen(8)
        self.sel.register(self.ctl, selectors.EVENT_READ, "ctl")

    def _plug(self) -> None:
        """Create the user's pty (as USB enumeration creates /dev/ttyACMn). The supervisor
        keeps the slave open so the master never sees EIO when a user closes the port."""
        self.user_master, self.user_slave = os.openpty()
        _set_raw(self.user_slave)
        _set_nonblocking(self.user_master)
        self.port = os.ttyname(self.user_slave)
        self.sel.register(self.user_master, selectors.EVENT_READ, "user")

    def _replug(self) -> None:
        """A board that re-enumerates on reset: its port vanishes and a new one appears
        (users holding the old one see a hang-up), the serial number stays."""
        old_master, old_slave = self.user_master, self.user_slave
        if self.reading_user:
            self.sel.unregister(old_master)
        self.reading_user = True
        self._plug()  # before closing the old one, so the new port has a new name
        os.close(old_master)
        os.close(old_slave)
        self.to_user.clear()
        if self.link is not None:
            self.link.replug()

    # ---- the MicroPython process -------------------------------------------------------

    def power_on(self, run_main: bool = True, raw: bool = True, boot: bool = True) -> None:
        """Start MicroPython in the flash folder: boot.py, main.py (if run_main), then the
        REPL (without main.py: the raw REPL if `raw`, else the friendly one). `boot` False:
        a restart the user cannot see on rp2 (not counted in `boots`)."""
        if self.proc is not None:
            return
        master, slave = os.openpty()
        _set_raw(slave)
        _set_nonblocking(master)
        # FARSIDE_BOARD_CONTROL: the firmware may reset its board here (firmware_py.main).
        env = dict(os.environ, MICROPYPATH=".frozen:", FARSIDE_BOARD_CONTROL=self.ctl_path)
        env.pop(LINK_DEVICE_ENV, None)
        if self.link is not None:
            env[LINK_DEVICE_ENV] = self.link.attach()
        self.proc = subprocess.Popen(
            [
                self.micropython,
                "-X",
                f"heapsize={self.heapsize}",
                "-i",
                "-c",
                bootstrap_code(run_main),
            ],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=self.flash_dir,
            env=env,
            start_new_session=True,
            # A pip-installed unix port starts inside CPython, whose own SIGINT handler
            # would catch a Ctrl-C sent before MicroPython runs any code and raise it only
            # when MicroPython returns (a traceback on a soft reboot). Ignored until
            # MicroPython installs its handler, SIGINT shows as caught only while code runs.
            preexec_fn=_ignore_sigint,
        )
        os.close(slave)
        self.started_at = time.monotonic()
        self.mpy_master = master
        self.sel.register(master, selectors.EVENT_READ, "mpy")
        self.power = "on"
        self.boots += int(boot)
        self.raw_mode = False
        self.tail = b""
        self.sigint_at = None
        if not run_main and raw:
            # Come back in the raw REPL, as rp2 does after a soft reboot from it: ask for it
            # with Ctrl-A (queued until the REPL reads) and hide the friendly banner.
            os.write(master, b"\x01")
            self.strip_banner = True
            self.banner_buf = b""
        self.publish()

    def power_off(self) -> None:
        """Cut the power: kill MicroPython at once (a write in progress stays half done)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()
        self.proc = None
        self._close_mpy()
        self.to_mpy.clear()
        self._flush_mpy()
        self.power = "off"
        self.cut_after = None
        self.publish()

    def _close_mpy(self) -> None:
        if self.mpy_master >= 0:
            # Drain what MicroPython wrote before it stopped, then close.
            with contextlib.suppress(OSError):
                while True:
                    data = os.read(self.mpy_master, 4096)
                    if not data:
                        break
                    self._from_mpy(data)
            self.sel.unregister(self.mpy_master)
            os.close(self.mpy_master)
            self.mpy_master = -1
        if self.link is not None:
            self.link.detach()

    def _check_exit(self) -> None:
        """A MicroPython that exited by itself did a soft reboot (Ctrl-D) or crashed."""
        if self.proc is None or self.proc.poll() is None:
            return
        code = self.proc.returncode
        self.proc = None
        self._close_mpy()
        interrupted = (
            code in (1, -signal.SIGINT)
            and self.sigint_at is not None
            and time.monotonic() - self.sigint_at < _SIGINT_EXIT_S
        )
        if interrupted:
            # Our Ctrl-C killed it (see the module docstring): on rp2 the code would have
            # stopped with a KeyboardInterrupt at the REPL. Come back there, without main.py.
            print(f"micropython exited with {code} on a Ctrl-C: back at the REPL", flush=True)
            raw = self.raw_mode
            self._to_user(b"KeyboardInterrupt: \r\n" if not raw else b"")
            self.power_on(run_main=False, raw=raw, boot=False)
            return
        if code != 0 and time.monotonic() - self.started_at < 1.0:
            # Crashing at start (a broken interpreter?): do not spin, restart at 2 Hz.
            print(f"micropython exited with {code} within 1 s of starting", flush=True)
            time.sleep(0.5)
        back_to_raw = self.raw_mode and code == 0
        self._to_user(b"MPY: soft reboot\r\n")
        self.power_on(run_main=not back_to_raw)

    # ---- the byte relay --------------------------------------------------------------

    def _from_user(self, data: bytes, on: str = "repl") -> None:
        if self.proc is None:
            return  # powered off: bytes go nowhere, as into an unpowered board
        to_mpy = self.link.from_user if on == "link" and self.link else self._to_mpy
        if self.cut_after is not None and on == self.cut_on:
            if len(data) >= self.cut_after:
                to_mpy(data[: self.cut_after])
                self._flush_mpy()
                time.sleep(0.05)  # let the board act on the first half
                then = self.cut_then
                print(f"power cut: {self.cut_after} of {len(data)} bytes passed", flush=True)
                self.power_off()
                if then == "cycle":
                    self.power_on()
                return
            self.cut_after -= len(data)
        to_mpy(data)

    def _to_mpy(self, data: bytes) -> None:
        if self.proc is None or not data:
            return
        if _CTRL_C in data and _sigint_caught(self.proc.pid):
            # Ctrl-C while code runs with kbd_intr enabled: a KeyboardInterrupt. Bytes
            # before it go first; one SIGINT for the whole write (a second one while the
            # first is pending would make the unix port exit, where rp2 raises once).
            cut = data.index(_CTRL_C)
            if cut:
                self._write_mpy(data[:cut])
            self.sigint_at = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGINT)
            rest = data[cut + 1 :].replace(bytes([_CTRL_C]), b"")
            self._write_mpy(rest)
            return
        self._write_mpy(data)

    def _write_mpy(self, data: bytes) -> None:
        self.to_mpy += data
        self._flush_mpy()

    def _flush_mpy(self) -> None:
        """Write what MicroPython will take now. When it does not read, the queue grows
        and the supervisor stops reading the user (whose writes then block: USB flow control)."""
        while self.to_mpy and self.mpy_master >= 0:
            try:
                n = os.write(self.mpy_master, self.to_mpy)
            except BlockingIOError:
                break
            except OSError:
                self.to_mpy.clear()
                break
            self.bytes_in += n
            del self.to_mpy[:n]
        want = len(self.to_mpy) < _IN_QUEUE_MAX
        if want != self.reading_user:
            if want:
                self.sel.register(self.user_master, selectors.EVENT_READ, "user")
            else:
                self.sel.unregister(self.user_master)
            self.reading_user = want

    def _from_mpy(self, data: bytes) -> None:
        if not data:
            return
        if self.strip_banner:
            self.banner_buf += data
            end = self.banner_buf.find(_FRIENDLY_PROMPT)
            if end < 0:
                return
            start = self.banner_buf.rfind(b"MicroPython ", 0, end)
            keep = self.banner_buf[:start] if start >= 0 else b""
            data = keep + self.banner_buf[end + len(_FRIENDLY_PROMPT) :]
            self.strip_banner = False
            self.banner_buf = b""
        self.tail = (self.tail + data)[-64:]
        raw_at = self.tail.rfind(_RAW_BANNER)
        friendly_at = self.tail.rfind(_FRIENDLY_PROMPT)
        if raw_at >= 0 or friendly_at >= 0:
            self.raw_mode = raw_at > friendly_at
        self._to_user(data)

    def _to_user(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self.to_user += data
        if len(self.to_user) > _OUT_BUFFER_MAX:
            # Nobody reads: drop the oldest, like a USB CDC endpoint with no host.
            del self.to_user[: len(self.to_user) - _OUT_BUFFER_MAX]
        self._flush_user()

    def _flush_user(self) -> None:
        drain(self.user_master, self.to_user)

    # ---- control socket --------------------------------------------------------------

    def _control(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "status":
            pass
        elif op == "reset":
            self.power_off()
            if self.reenumerate:
                self._replug()
            self.power_on()
        elif op == "power_off":
            self.power_off()
        elif op == "power_on":
            if self.reenumerate and self.proc is None:
                self._replug()
            self.power_on()
        elif op == "power_cycle":
            self.power_off()
            time.sleep(float(request.get("off_s", 0.0)))
            if self.reenumerate:
                self._replug()
            self.power_on()
        elif op == "cut_after":
            on = str(request.get("on", "repl"))
            if on not in ("repl", "link") or (on == "link" and self.link is None):
                return {"ok": False, "error": f"expected on=repl or on=link (with a link port), got {on!r}"}
            self.cut_after = int(request["bytes"])
            self.cut_then = str(request.get("then", "off"))
            self.cut_on = on
        elif op == "stop":
            self.running = False
        else:
            return {
                "ok": False,
                "error": f"expected one of status, reset, power_off, power_on, power_cycle, cut_after, stop; got {op!r}",
            }
        return {
            "ok": True,
            "power": self.power,
            "raw_repl": self.raw_mode,
            "boots": self.boots,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "cut_armed": self.cut_after is not None,
            "pid": self.proc.pid if self.proc else None,
            "port": self.port,
            "link_port": self.link.port if self.link else "",
            "link_bytes_in": self.link.bytes_in if self.link else 0,
            "link_bytes_out": self.link.bytes_out if self.link else 0,
            "link_dropped": self.link.dropped if self.link else 0,
        }

    # ---- main loop -------------------------------------------------------------------

    def publish(self) -> None:
        write_state(
            BoardState(
                name=self.name,
                board=self.board,
                port=self.port,
                serial_number=self.serial_number,
                pid=os.getpid(),
                flash_dir=str(self.flash_dir),
                micropython=self.micropython,
                heapsize=self.heapsize,
                control=self.ctl_path,
                power=self.power,
                link_port=self.link.port if self.link else "",
            )
        )

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "running", False))
        self.power_on()
        while self.running:
            busy = self.to_user or self.to_mpy or (self.link is not None and self.link.busy)
            events = self.sel.select(timeout=0.005 if busy else 0.05)
            for key, _ in events:
                if key.data == "ctl":
                    serve_control(self.ctl, self._control)
                elif key.data == "user":
                    try:
                        data = os.read(self.user_master, 65536)
                    except OSError:
                        continue
                    self._from_user(data)
                elif key.data == "mpy" and self.mpy_master >= 0:
                    try:
                        data = os.read(self.mpy_master, 65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    self._from_mpy(data)
                elif key.data == "link_user" and self.link is not None:
                    self._from_user(self.link.read_user(), on="link")
                elif key.data == "link_mpy" and self.link is not None:
                    self.link.from_mpy(self.link.read_mpy())
            self._check_exit()
            self._flush_user()
            self._flush_mpy()
            if self.link is not None:
                self.link.flush()
        self.power_off()
        if self.link is not None:
            self.link.close()
        with contextlib.suppress(OSError):
            os.unlink(self.ctl_path)
        with contextlib.suppress(OSError):
            (self.folder / "state.json").unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.board.supervisor")
    parser.add_argument("--name", required=True)
    parser.add_argument("--board", default="sim")
    parser.add_argument("--micropython", required=True)
    parser.add_argument("--flash-dir", required=True)
    parser.add_argument("--heapsize", default="192K")
    parser.add_argument("--serial-number", default=None)
    parser.add_argument(
        "--reenumerate", action="store_true", help="a new port at every reset, like USB"
    )
    parser.add_argument(
        "--own-link",
        action="store_true",
        help="the rover's link on a second pty (link_port), the REPL alone on the first",
    )
    args = parser.parse_args(argv)
    try:
        lock = claim_name(args.name)  # held until this process ends
    except NameTakenError as exc:
        print(exc, flush=True)
        return NAME_TAKEN_EXIT
    flash_dir = Path(args.flash_dir).resolve()
    flash_dir.mkdir(parents=True, exist_ok=True)
    sup = Supervisor(
        name=args.name,
        board=args.board,
        micropython=args.micropython,
        flash_dir=flash_dir,
        heapsize=args.heapsize,
        serial_number=args.serial_number or secrets.token_hex(8).upper(),
        reenumerate=args.reenumerate,
        own_link=args.own_link,
    )
    sys.stdout.flush()
    sup.run()
    os.close(lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
