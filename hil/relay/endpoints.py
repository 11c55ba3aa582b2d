"""The relay's two ends: serial ports (pyserial URLs), ptys it creates, TCP, or memory.

Endpoint specs (`open_endpoint`):

    pty                      a new pseudo-terminal; its path is printed (connect a tool to it)
    tcp-listen:PORT          listen on 127.0.0.1:PORT, one client at a time
    tcp-listen:HOST:PORT     listen on HOST:PORT
    tcp:HOST:PORT            connect to HOST:PORT (pyserial socket://)
    udp:TM_PORT:TC_PORT      frames as datagrams, one frame each, as a frame-level ground
    udp:HOST:TM_PORT:TC_PORT   station (Yamcs's UdpTmFrameLink / UdpTcFrameLink) speaks them:
                             TM frames (ASM stripped) sent to HOST:TM_PORT (127.0.0.1 if no
                             HOST), TC frames received on HOST:TC_PORT (EB90 added)
    socket://, rfc2217://, loop://, spy://, ...   any pyserial URL
    /dev/ttyACM0, COM3       a serial port at 115200 baud; /dev/ttyUSB0@921600 sets the baud rate

Every endpoint calls `on_data(bytes)` on the event loop's thread, and `write()` never
blocks or loses data: while the far side is gone (port unplugged, TCP client away),
writes are held in `pending` and sent after it reconnects. The UDP endpoint is the
exception: like a radio it cannot know whether anyone listens, so a frame sent while the
ground station is down is lost (COP-1 retransmits what mattered).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import serial

from hil.errors import FarsideError

RECONNECT_S = 0.5


class Endpoint:
    """Base class: buffering writes while disconnected, a data callback, a name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.on_data: Callable[[bytes], None] = lambda data: None
        self.pending = bytearray()
        self.connected = False
        self.reconnects = 0

    async def open(self) -> None:
        """Open the endpoint; FarsideError if it is missing."""

    def write(self, data: bytes) -> None:
        self.pending += data
        self._flush()

    def _flush(self) -> None:
        """Send as much of `pending` as the transport takes now."""

    async def close(self) -> None:
        self.connected = False

    def describe(self) -> str:
        return self.name


# -------------------------------------------------------------------- memory
class MemoryEndpoint(Endpoint):
    """An in-process end, for the virtual-time loop: `peer_write()` feeds the relay,
    `peer_on_data` receives what the relay sends."""

    def __init__(self, name: str = "memory") -> None:
        super().__init__(name)
        self.peer_on_data: Callable[[bytes], None] = lambda data: None
        self.received = bytearray()

    async def open(self) -> None:
        self.connected = True

    def _flush(self) -> None:
        if self.connected and self.pending:
            data = bytes(self.pending)
            self.pending.clear()
            self.received += data
            self.peer_on_data(data)

    def peer_write(self, data: bytes) -> None:
        """The far side sends `data` into the relay."""
        self.on_data(bytes(data))

    def set_connected(self, up: bool) -> None:
        """Simulate the far side going away (writes are held) and coming back."""
        self.connected = up
        if up:
            self.reconnects += 1
            self._flush()


# -------------------------------------------------------------------- pyserial
class SerialEndpoint(Endpoint):
    """A pyserial port or URL, read by a thread; reopened when it drops."""

    def __init__(self, url: str, baudrate: int = 115200) -> None:
        super().__init__(url)
        self.url = url
        self.baudrate = baudrate
        self._port: serial.SerialBase | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _open_port(self) -> serial.SerialBase:
        return serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.05, write_timeout=0)

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            self._port = self._open_port()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise FarsideError(f"endpoint {self.url}: cannot open: {exc}") from None
        self.connected = True
        self._thread = threading.Thread(target=self._reader, name=f"relay:{self.url}", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        while not self._stop.is_set():
            port = self._port
            if port is None:
                if self._stop.wait(RECONNECT_S):
                    return
                try:
                    port = self._open_port()
                except (serial.SerialException, OSError, ValueError):
                    continue
                with self._lock:
                    self._port = port
                    self.connected = True
                    self.reconnects += 1
                self._call(self._flush)
                continue
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError, TypeError, AttributeError):
                self._drop(port)
                continue
            if data:
                self._call(self.on_data, bytes(data))

    def _call(self, fn: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)

    def _drop(self, port: serial.SerialBase) -> None:
        with self._lock:
            self.connected = False
            if self._port is port:
                self._port = None
        with contextlib.suppress(Exception):
            port.close()

    def _flush(self) -> None:
        with self._lock:
            port = self._port
        if port is None or not self.pending:
            return
        try:
            n = port.write(bytes(self.pending))
        except serial.SerialTimeoutException:
            n = 0
        except (serial.SerialException, OSError):
            self._drop(port)
            return
        del self.pending[: n or 0]
        if self.pending and self._loop is not None:
            self._loop.call_later(0.01, self._flush)

    async def close(self) -> None:
        self._stop.set()
        with self._lock:
            port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 1.0)
        self.connected = False


# -------------------------------------------------------------------- pty
class PtyEndpoint(Endpoint):
    """A pseudo-terminal the relay creates; tools open `path` as a serial port."""

    def __init__(self) -> None:
        super().__init__("pty")
        self.master = -1
        self._slave = -1
        self.path = ""

    async def open(self) -> None:
        import tty

        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.name = self.path
        self.connected = True
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:  # nobody has the other side open: we keep ours
                return
            raise
        if data:
            self.on_data(data)

    def _flush(self) -> None:
        while self.pending:
            try:
                n = os.write(self.master, self.pending[:4096])
            except BlockingIOError:
                asyncio.get_running_loop().call_later(0.01, self._flush)
                return
            del self.pending[:n]

    async def close(self) -> None:
        if self.master >= 0:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.master)
            for fd in (self.master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.master = self._slave = -1
        self.connected = False

    def describe(self) -> str:
        return f"pty {self.path}"


# -------------------------------------------------------------------- TCP listen
class TcpListenEndpoint(Endpoint):
    """A TCP server; the latest client is the far side. Data waits for a client."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"tcp-listen:{host}:{port}")
        self.host = host
        self.port = port
        self._server: asyncio.AbstractServer | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._clients = 0

    async def open(self) -> None:
        try:
            self._server = await asyncio.start_server(self._client, self.host, self.port)
        except OSError as exc:
            raise FarsideError(f"endpoint {self.name}: cannot listen: {exc.strerror}") from None
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        self.name = f"tcp-listen:{self.host}:{self.port}"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._clients:
            self.reconnects += 1
        self._clients += 1
        self._writer = writer
        self.connected = True
        self._flush()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                self.on_data(data)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass  # the client left, or the relay is closing
        finally:
            if self._writer is writer:
                self._writer = None
                self.connected = False
            writer.close()

    def _flush(self) -> None:
        if self._writer is not None and self.pending:
            self._writer.write(bytes(self.pending))
            self.pending.clear()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.connected = False


# -------------------------------------------------------------------- UDP frames
class UdpFrameEndpoint(Endpoint):
    """The ground side as datagrams, one transfer frame each (a frame-level ground station).

    Downlink: the relay's stream (ASM + fixed-length TM frame, and whatever octets came
    between frames) is cut at the ASM; each whole frame goes out, without its ASM, as one
    datagram to (host, tm_port); octets outside frames are counted in `dropped_octets`.
    Uplink: each datagram received on (host, tc_port) is one TC frame; it reaches the relay
    with the CLTU start sequence EB90 in front, as the rover's stream expects (a datagram
    that already starts with EB90 is passed as it is: a TC frame's first octet is below
    0x40, so the two cannot be confused).
    """

    def __init__(self, host: str, tm_port: int, tc_port: int, tm_frame_length: int) -> None:
        super().__init__(f"udp:{host}:{tm_port}:{tc_port}")
        from hil.relay.channel import ASM, FrameSplitter, fixed_length

        self.host = host
        self.tm_port = tm_port
        self.tc_port = tc_port
        self.tm_frame_length = tm_frame_length
        self._asm_len = len(ASM)
        self._splitter = FrameSplitter(ASM, fixed_length(tm_frame_length))
        self._tx: socket.socket | None = None
        self._rx: asyncio.DatagramTransport | None = None
        self.frames_out = 0
        self.frames_in = 0
        self.dropped_octets = 0

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        endpoint = self

        class _Rx(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
                endpoint._datagram(data)

        try:
            transport, _ = await loop.create_datagram_endpoint(_Rx, local_addr=(self.host, self.tc_port))
        except OSError as exc:
            raise FarsideError(f"endpoint {self.name}: cannot listen on UDP {self.host}:{self.tc_port}: "
                               f"{exc.strerror or exc}") from None
        self._rx = transport
        self.tc_port = transport.get_extra_info("sockname")[1]
        self.name = f"udp:{self.host}:{self.tm_port}:{self.tc_port}"
        self._tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._tx.setblocking(False)
        self.connected = True

    def _datagram(self, data: bytes) -> None:
        if not data:
            return
        self.frames_in += 1
        from hil.relay.channel import TC_START

        self.on_data(bytes(data) if data.startswith(TC_START) else TC_START + bytes(data))

    def _flush(self) -> None:
        if self._tx is None or not self.pending:
            return
        data = bytes(self.pending)
        self.pending.clear()
        for chunk, is_frame in self._splitter.feed(data):
            if not is_frame:
                self.dropped_octets += len(chunk)
                continue
            with contextlib.suppress(OSError):  # nobody listening, a full buffer: lost, as on air
                self._tx.sendto(chunk[self._asm_len :], (self.host, self.tm_port))
                self.frames_out += 1

    async def close(self) -> None:
        if self._rx is not None:
            self._rx.close()
            self._rx = None
        if self._tx is not None:
            self._tx.close()
            self._tx = None
        self.connected = False

    def describe(self) -> str:
        return f"udp frames: TM to {self.host}:{self.tm_port}, TC from {self.host}:{self.tc_port}"


def _udp_endpoint(spec: str, tm_frame_length: int) -> UdpFrameEndpoint:
    parts = spec[len("udp:") :].split(":")
    host = "127.0.0.1"
    if len(parts) == 3:
        host = parts.pop(0)
    if len(parts) != 2 or not host or not all(p.isdigit() and int(p) <= 65535 for p in parts):
        raise FarsideError(f"endpoint {spec!r}: expected udp:TM_PORT:TC_PORT or udp:HOST:TM_PORT:TC_PORT")
    return UdpFrameEndpoint(host, int(parts[0]), int(parts[1]), tm_frame_length)


# -------------------------------------------------------------------- specs
def open_endpoint(spec: str, tm_frame_length: int = 256) -> Endpoint:
    """An endpoint for a spec (see the module docstring); FarsideError when it is not one.
    `tm_frame_length` (the relay profile's) is what the UDP endpoint cuts TM frames at."""
    if spec == "pty":
        return PtyEndpoint()
    if spec.startswith("udp:"):
        return _udp_endpoint(spec, tm_frame_length)
    if spec.startswith("tcp-listen:"):
        rest = spec[len("tcp-listen:") :]
        host, _, port = rest.rpartition(":")
        if not port.isdigit() or int(port) > 65535:
            raise FarsideError(f"endpoint {spec!r}: expected tcp-listen:PORT or tcp-listen:HOST:PORT")
        return TcpListenEndpoint(host or "127.0.0.1", int(port))
    if spec.startswith("tcp:"):
        host, _, port = spec[4:].rpartition(":")
        if not host or not port.isdigit():
            raise FarsideError(f"endpoint {spec!r}: expected tcp:HOST:PORT")
        return SerialEndpoint(f"socket://{host}:{port}")
    if "://" in spec:
        return SerialEndpoint(spec)
    baud = 115200
    dev, at, rate = spec.rpartition("@")
    if at and rate.isdigit() and dev:
        spec, baud = dev, int(rate)
    if not spec or not Path(spec).exists():
        raise FarsideError(
            f"endpoint {spec!r}: no such port (expected pty, tcp-listen:PORT, tcp:HOST:PORT, a pyserial URL or a device)"
        )
    return SerialEndpoint(spec, baud)
