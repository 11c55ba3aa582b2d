# The link API on the process's (or the board's USB CDC) stdin/stdout, binary,
# or on a serial device of its own.
#
# Used by the unix port (the virtual board runs the firmware in a pty) and by a
# Pico on USB CDC. read_into() never blocks: it polls stdin and reads one octet
# at a time while more are ready (MicroPython's readinto blocks until the buffer
# is full). main.py turns Ctrl-C off (micropython.kbd_intr(-1)) so 0x03 octets in
# frames reach us.
#
#   open_link(board)   the link the board definition names, for the sim HAL: the
#                      console (kind usb_cdc / stdio), or for kind "uart" the serial
#                      device named by $FARSIDE_LINK_DEVICE (the virtual board's
#                      second pty; any tty or pty path on CPython). The REPL keeps
#                      the console.
#   device_link(path)  a StdioLink on a serial device opened read-write
import select
import sys

try:
    from os import read as _os_read  # CPython: read the fd itself, past Python's buffering
except ImportError:
    _os_read = None


def _raw(fd):
    # CPython on a pty: binary frames must not meet the line discipline (echo,
    # canonical mode, CR/LF mapping, ^C). The unix port has no termios: whoever
    # opens its pty sets the slave raw (as the virtual board does).
    try:
        import termios
        import tty

        if _isatty(fd):
            tty.setraw(fd, termios.TCSANOW)
    except (ImportError, OSError):
        pass


def _isatty(fd):
    import os

    return os.isatty(fd)


class StdioLink:
    # flush: False for a device opened unbuffered (MicroPython's FileIO.flush is
    # fsync, which a tty refuses with EINVAL).
    def __init__(self, stdin=None, stdout=None, flush=True):
        self.stdin = stdin or sys.stdin
        self.out = stdout or sys.stdout.buffer
        self._flush = getattr(self.out, "flush", None) if flush else None
        self.inb = self.stdin.buffer if hasattr(self.stdin, "buffer") else self.stdin
        self._poll = select.poll()
        self._poll.register(self.stdin, select.POLLIN)
        self._one = bytearray(1)
        self.eof = False
        # octets read before the link existed (main.py's escape window): they come first
        self.pending = b""
        self._fd = self.stdin.fileno() if _os_read is not None else -1
        if self._fd >= 0:
            _raw(self._fd)

    def read_into(self, buf):
        if self.pending:
            n = len(self.pending)
            buf[0:n] = self.pending
            self.pending = b""
            return n
        if self._fd >= 0:
            if not self._poll.poll(0):
                return 0
            data = _os_read(self._fd, len(buf))
            if not data:
                self.eof = True
            buf[0 : len(data)] = data
            return len(data)
        n = 0
        lim = len(buf)
        one = self._one
        while n < lim and self._poll.poll(0):
            if not self.inb.readinto(one):
                self.eof = True
                break
            buf[n] = one[0]
            n += 1
        return n

    def write(self, data):
        n = self.out.write(data)
        if self._flush is not None:
            self._flush()
        return n or 0


LINK_DEVICE_ENV = "FARSIDE_LINK_DEVICE"


def device_link(path):
    # Unbuffered on CPython (the fd is read past Python's buffering, written whole);
    # MicroPython's FileIO on the unix port polls and reads like stdin.
    f = open(path, "r+b", buffering=0)
    return StdioLink(f, f, False)


def open_link(board):
    lk = board.get("link") or {}
    if lk.get("kind") != "uart":
        return StdioLink()
    import os

    path = os.getenv(LINK_DEVICE_ENV)
    if not path:
        raise OSError(
            "board %s puts the link on its own serial line: expected its device in $%s, found none"
            % (board.get("name"), LINK_DEVICE_ENV)
        )
    return device_link(path)
