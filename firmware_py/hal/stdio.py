# The link API on the process's (or the board's USB CDC) stdin/stdout, binary.
#
# Used by the unix port (the virtual board runs the firmware in a pty) and by a
# Pico on USB CDC. read_into() never blocks: it polls stdin and reads one octet
# at a time while more are ready (MicroPython's readinto blocks until the buffer
# is full). main.py turns Ctrl-C off (micropython.kbd_intr(-1)) so 0x03 octets in
# frames reach us.
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
    def __init__(self, stdin=None, stdout=None):
        self.stdin = stdin or sys.stdin
        self.out = stdout or sys.stdout.buffer
        self.inb = self.stdin.buffer if hasattr(self.stdin, "buffer") else self.stdin
        self._poll = select.poll()
        self._poll.register(self.stdin, select.POLLIN)
        self._one = bytearray(1)
        self.eof = False
        self._fd = self.stdin.fileno() if _os_read is not None else -1
        if self._fd >= 0:
            _raw(self._fd)

    def read_into(self, buf):
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
        if hasattr(self.out, "flush"):
            self.out.flush()
        return n or 0
