"""A raw-REPL client on pyserial: what `farside flash` speaks to a MicroPython board.

The protocol (MicroPython docs, "raw REPL" and "raw-paste mode"):
    Ctrl-C Ctrl-C     interrupt a running program (when kbd_intr is on)
    Ctrl-A            -> "raw REPL; CTRL-B to exit\\r\\n>"
    Ctrl-E 'A' Ctrl-A -> "R\\x01" + window u16 LE: raw-paste, flow-controlled by \\x01 per window
                         (or "R\\x00": not supported, plain raw REPL then)
    code Ctrl-D       -> "OK", stdout, \\x04, stderr, \\x04, ">"
    Ctrl-B            back to the friendly REPL; Ctrl-D there: soft reset

Every wait has a timeout; errors are RawReplError (a FarsideError) with the bytes seen.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

import serial

from hil.errors import FarsideError

RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
TM_ASM = bytes.fromhex("1ACFFC1D")
# Output that says a board did not come back at the raw prompt after a soft reboot: the
# friendly prompt, main.py's escape window (hil.flash.bootfiles), the rover's TM.
_NOT_RAW_MARKS = (b">>> ", b"escape window", TM_ASM)


class RawReplError(FarsideError):
    """The board did not answer the raw REPL as expected."""


class PortGoneError(RawReplError):
    """The serial port failed under us: the board reset and its USB re-enumerated, or it
    was unplugged. Find the board again (hil.flash.ports.refind) and open its new port."""


class BoardExecError(FarsideError):
    """Code sent to the board raised; `stderr` holds MicroPython's traceback."""

    def __init__(self, message: str, stderr: str) -> None:
        super().__init__(message)
        self.stderr = stderr


class PortBusyError(FarsideError):
    """Another program holds the serial port."""


def open_port(port: str, baudrate: int = 115200, timeout_s: float = 0.05) -> serial.Serial:
    """Open a serial port exclusively (so two tools never interleave on one board).

    A port another process has open is refused at once, naming that process, whether or not
    it took a lock (mpremote and pyserial's `exclusive=True` take one, a terminal may not)."""
    from hil.flash.ports import port_holders

    holders = port_holders(port)
    if holders:
        raise PortBusyError(
            f"port {port} is busy: {', '.join(map(str, holders))} has it open "
            "(close mpremote, a terminal or farside gs first)"
        )
    try:
        return serial.serial_for_url(port, baudrate=baudrate, timeout=timeout_s, exclusive=True)
    except serial.SerialException as exc:
        text = str(exc)
        if (
            "exclusively lock" in text
            or "Resource temporarily unavailable" in text
            or "busy" in text.lower()
        ):
            raise PortBusyError(
                f"port {port} is busy: another program holds it (close mpremote, a terminal or farside gs)"
            ) from exc
        if "No such file" in text or "could not open port" in text:
            raise FarsideError(
                f"expected a serial port at {port}, found none ({text.split(':', 1)[-1].strip()})"
            ) from exc
        raise FarsideError(f"could not open {port}: {text}") from exc


class RawRepl:
    """One board's raw REPL over an open serial port. Counts the bytes it writes."""

    def __init__(self, ser: serial.Serial, label: str | None = None) -> None:
        self.ser = ser
        self.label = label or str(getattr(ser, "port", "board"))
        self.bytes_written = 0
        self.in_raw = False
        self.use_paste = True
        self.window = 0
        self.on_write: Callable[[int], None] | None = None
        self._pushback = bytearray()

    # ---- bytes -------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        try:
            self.ser.write(data)
        except (serial.SerialException, OSError) as exc:
            raise PortGoneError(f"{self.label}: the port went away while writing ({exc})") from exc
        self.bytes_written += len(data)
        if self.on_write is not None:
            self.on_write(len(data))

    def _read_some(self) -> bytes:
        """What is waiting (bytes pushed back first), or at most one byte after the port timeout."""
        if self._pushback:
            data = bytes(self._pushback)
            self._pushback.clear()
            return data
        try:
            return bytes(self.ser.read(self.ser.in_waiting or 1))
        except (serial.SerialException, OSError) as exc:
            raise PortGoneError(f"{self.label}: the port went away while reading ({exc})") from exc

    def _waiting(self) -> int:
        """Bytes waiting on the port; PortGoneError when the port failed."""
        try:
            return int(self.ser.in_waiting)
        except (serial.SerialException, OSError) as exc:
            raise PortGoneError(f"{self.label}: the port went away ({exc})") from exc

    def read_until(self, ending: bytes, timeout_s: float, abort: bytes | None = None) -> bytes:
        """Read until `ending` (returned data ends with it), `abort` (likewise), or the
        timeout (neither). Bytes after the ending stay for the next read."""
        data = bytearray()
        deadline = time.monotonic() + timeout_s
        while True:
            chunk = self._read_some()
            if chunk:
                start = max(0, len(data) - len(ending) + 1)
                data += chunk
                idx = data.find(ending, start)
                if idx >= 0:
                    end = idx + len(ending)
                    self._pushback[:0] = data[end:]
                    return bytes(data[:end])
                if abort is not None and data.endswith(abort):
                    return bytes(data)
            elif time.monotonic() > deadline:
                return bytes(data)

    def drain(self, quiet_s: float = 0.05, max_s: float = 1.0) -> bytes:
        """Read and discard until the line is quiet for `quiet_s`."""
        data = bytearray()
        end = time.monotonic() + max_s
        last = time.monotonic()
        while time.monotonic() < end:
            chunk = self._read_some()
            if chunk:
                data += chunk
                last = time.monotonic()
            elif time.monotonic() - last >= quiet_s:
                break
        return bytes(data)

    # ---- modes -------------------------------------------------------------------------

    def try_enter(self, timeout_s: float = 1.0) -> tuple[bool, bytes]:
        """One attempt: interrupt what runs, ask for the raw REPL. Returns (ok, bytes seen)."""
        self.write(b"\r\x03\x03")
        seen = self.drain(quiet_s=0.05, max_s=0.3)
        if TM_ASM in seen and b">>> " not in seen[seen.rfind(TM_ASM) :]:
            return False, seen  # the rover's link is running (Ctrl-C is data to it)
        self.write(b"\r\x01")
        data = self.read_until(RAW_PROMPT, timeout_s)
        seen += data
        if not data.endswith(RAW_PROMPT):
            return False, seen
        # A rover that just stopped may still have bytes in flight: let the line go quiet,
        # then prove the prompt is live with a round trip.
        seen += self.drain(quiet_s=0.05, max_s=1.0)
        self.in_raw = True
        try:
            out, err = self.exec_raw("print('fa' + 'ok')", timeout_s=timeout_s)
        except RawReplError as exc:
            self.in_raw = False
            return False, seen + str(exc).encode()
        if out.strip() != b"faok" or err:  # "\r\n" on a Pico, "\n" on the unix port
            self.in_raw = False
            return False, seen + out + err
        return True, seen

    def enter(self, attempts: int = 4, timeout_s: float = 1.0) -> None:
        """Enter the raw REPL, retrying with backoff; a RawReplError says what was seen."""
        seen = b""
        delay = 0.1
        for _ in range(attempts):
            ok, seen = self.try_enter(timeout_s)
            if ok:
                return
            time.sleep(delay)
            delay *= 2
        raise RawReplError(
            f"{self.label}: expected the raw REPL prompt {RAW_PROMPT[:24]!r} after Ctrl-C, Ctrl-A "
            f"({attempts} tries), saw {_tail(seen)}"
        )

    def soft_reset(self, timeout_s: float = 10.0) -> None:
        """Ctrl-D at the raw prompt: a fresh heap and boot.py (not main.py); back at the raw prompt."""
        if not self.in_raw:
            self.enter()
        self.write(b"\x04")
        data = self.read_until(b"soft reboot\r\n", timeout_s)
        if not data.endswith(b"soft reboot\r\n"):
            raise RawReplError(
                f"{self.label}: expected 'soft reboot' after Ctrl-D, saw {_tail(data)}"
            )
        data = self._read_prompt_after_reboot(timeout_s)
        if not data.endswith(RAW_PROMPT):
            self.in_raw = False
            raise RawReplError(
                f"{self.label}: expected the raw prompt after the soft reboot, saw {_tail(data)}"
            )

    def _read_prompt_after_reboot(self, timeout_s: float) -> bytes:
        """Read until the raw prompt; stop early when the board shows it went elsewhere
        (the friendly prompt, main.py's escape window, the rover's TM), so the caller can
        interrupt it again while Ctrl-C still works."""
        data = bytearray()
        deadline = time.monotonic() + timeout_s
        while True:
            data += self.read_until(RAW_PROMPT, 0.1)
            at = data.find(RAW_PROMPT)
            if at >= 0:
                end = at + len(RAW_PROMPT)
                self._pushback[:0] = data[end:]
                return bytes(data[:end])
            if any(mark in data for mark in _NOT_RAW_MARKS) or time.monotonic() > deadline:
                return bytes(data)

    def exit_raw(self) -> None:
        self.write(b"\r\x02")
        self.in_raw = False

    # ---- execution ---------------------------------------------------------------------

    def _send_paste(self, code: bytes, timeout_s: float = 5.0) -> bool:
        """Raw-paste the code. False when the board does not support raw-paste."""
        self.write(b"\x05A\x01")
        head = self.read_until(b"R", 1.0)[-1:] + self._read_exact(1, 1.0)
        if head == b"R\x00":
            return False
        if head != b"R\x01":
            raise RawReplError(
                f"{self.label}: expected raw-paste answer b'R\\x01', saw {_tail(head)}"
            )
        window = struct.unpack("<H", self._read_exact(2, 1.0))[0]
        remain = window
        i = 0
        while i < len(code):
            while remain == 0 or self._pushback or self._waiting():
                b = self._read_exact(1, timeout_s)
                if b == b"\x01":
                    remain += window
                elif b == b"\x04":
                    # The board stopped reading (a compile error): its error follows.
                    self.write(b"\x04")
                    return True
                else:
                    raise RawReplError(f"{self.label}: unexpected {b!r} during raw-paste")
            chunk = code[i : i + remain]
            self.write(chunk)
            remain -= len(chunk)
            i += len(chunk)
        self.write(b"\x04")
        ack = self.read_until(b"\x04", timeout_s)
        if not ack.endswith(b"\x04"):
            raise RawReplError(f"{self.label}: expected end-of-paste \\x04, saw {_tail(ack)}")
        return True

    def _read_exact(self, n: int, timeout_s: float) -> bytes:
        data = bytearray()
        deadline = time.monotonic() + timeout_s
        while len(data) < n:
            data += self._read_some()
            if len(data) < n and time.monotonic() > deadline:
                raise RawReplError(
                    f"{self.label}: expected {n} bytes from the board within {timeout_s} s, saw {_tail(bytes(data))}"
                )
        self._pushback[:0] = data[n:]
        return bytes(data[:n])

    def exec_raw(self, code: str | bytes, timeout_s: float = 10.0) -> tuple[bytes, bytes]:
        """Run code in the raw REPL; returns (stdout, stderr) as bytes."""
        if not self.in_raw:
            self.enter()
        data = code.encode() if isinstance(code, str) else code
        # Nothing arrives unasked at the raw prompt: whatever is here is stale.
        self._pushback.clear()
        if self._waiting():
            self._read_some()
        sent = False
        if self.use_paste:
            sent = self._send_paste(data, min(timeout_s, 5.0))
            if not sent:
                self.use_paste = False
        if not sent:
            for i in range(0, len(data), 256):
                self.write(data[i : i + 256])
                time.sleep(0.005)
            self.write(b"\x04")
            ok = self._read_exact(2, 2.0)
            if ok != b"OK":
                raise RawReplError(f"{self.label}: expected 'OK' after the code, saw {_tail(ok)}")
        out = self.read_until(b"\x04", timeout_s, abort=b">>> ")
        if out.endswith(b">>> "):
            self.in_raw = False
            raise RawReplError(
                f"{self.label}: the board reset while running code (saw {_tail(out)})"
            )
        if not out.endswith(b"\x04"):
            raise RawReplError(f"{self.label}: no answer within {timeout_s} s (saw {_tail(out)})")
        err = self.read_until(b"\x04", timeout_s)
        if not err.endswith(b"\x04"):
            raise RawReplError(f"{self.label}: no end of error output within {timeout_s} s")
        prompt = self._read_exact(1, timeout_s)
        if prompt != b">":
            raise RawReplError(f"{self.label}: expected the raw prompt '>', saw {prompt!r}")
        return out[:-1], err[:-1]

    def eval(self, code: str, timeout_s: float = 10.0) -> str:
        """Run code; raise BoardExecError with the board's last traceback line if it failed."""
        out, err = self.exec_raw(code, timeout_s)
        if err:
            text = err.decode(errors="replace").strip()
            last = text.splitlines()[-1] if text else "error"
            raise BoardExecError(f"{self.label}: the board raised {last}", text)
        return out.decode(errors="replace")


def _tail(data: bytes, n: int = 60) -> str:
    if not data:
        return "nothing"
    return repr(data[-n:])
