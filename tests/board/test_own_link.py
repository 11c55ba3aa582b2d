"""A board whose rover link has its own interface (boards/sim_uart.json): the virtual
board gives the link a second pty, the REPL keeps the first, so mpremote, `farside flash`
and `farside gs` use one board at the same time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import serial

from hil.board import VirtualBoard, find_board, list_boards, start_board
from hil.errors import FarsideError
from hil.flash import FlashOptions, flash
from hil.flash.link import BootWatcher
from hil.flash.repl import RawRepl, open_port
from hil.gs.session import Session
from tests.board.fixtures import ROOT, read_for

MPREMOTE = str(Path(sys.executable).parent / "mpremote")
FARSIDE = [sys.executable, "-m", "hil.cli"]

# main.py for the tests that need no rover: echo the link, every octet inverted, from a
# thread (through the firmware's own device link class), so the REPL stays free.
ECHO_MAIN = f"""
import os, sys, _thread, time
sys.path.insert(0, {str(ROOT)!r})
from firmware_py.hal.stdio import device_link
print('main-ran', 'link' if os.getenv('FARSIDE_LINK_DEVICE') else 'no link')
_link = device_link(os.getenv('FARSIDE_LINK_DEVICE'))
def _echo():
    buf = bytearray(512)
    while True:
        n = _link.read_into(buf)
        if n:
            _link.write(bytes(b ^ 0xFF for b in buf[:n]))
        else:
            time.sleep_ms(2)
_thread.stack_size(32768)
_thread.start_new_thread(_echo, ())
"""


def _start(micropython: str, flash_dir: Path, **kw: Any) -> VirtualBoard:
    return start_board(board="sim_uart", flash_dir=flash_dir, micropython=micropython, **kw)


@pytest.fixture
def uart_board(micropython: str, tmp_path: Path) -> Iterator[VirtualBoard]:
    """A running sim_uart virtual board whose main.py echoes its link."""
    (tmp_path / "flash").mkdir()
    (tmp_path / "flash" / "main.py").write_text(ECHO_MAIN)
    board = _start(micropython, tmp_path / "flash")
    try:
        yield board
    finally:
        board.stop()


def _link(board: VirtualBoard) -> serial.Serial:
    ser = serial.Serial(board.link_port, 115200, timeout=0.05)
    ser.reset_input_buffer()
    return ser


def _inverted(data: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in data)


def _echo(ser: serial.Serial, payload: bytes, seconds: float = 10.0) -> bytes:
    """Write `payload` on the link; what comes back within `seconds` (the board inverts it)."""
    ser.write(payload)
    got = b""
    end = time.monotonic() + seconds
    while len(got) < len(payload) and time.monotonic() < end:
        got += ser.read(ser.in_waiting or 1)
    return got


def _wait_main(board: VirtualBoard) -> None:
    with open_port(board.port) as ser:
        ser.reset_input_buffer()
        board.reset()
        assert b"main-ran link" in read_for(ser, 15, b">>> ")


@pytest.mark.micropython
def test_link_port_is_a_second_pty_that_the_cli_shows(micropython: str, tmp_path: Path) -> None:
    start = subprocess.run(
        [*FARSIDE, "board", "start", "--board", "sim_uart", "--micropython", micropython,
         "--flash-dir", str(tmp_path / "f")],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
    )
    assert start.returncode == 0, start.stderr
    port, link_port = start.stdout.split()
    try:
        assert link_port != port and os.path.exists(port) and os.path.exists(link_port)
        listed = json.loads(subprocess.run(
            [*FARSIDE, "board", "list", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=30
        ).stdout)
        assert [(b["port"], b["link_port"]) for b in listed] == [(port, link_port)]
        table = subprocess.run([*FARSIDE, "board", "list"], capture_output=True, text=True, cwd=ROOT)
        assert "link port" in table.stdout and link_port in table.stdout
        state = find_board(link_port)  # the link port names its board too
        assert state is not None and state.port == port
    finally:
        subprocess.run([*FARSIDE, "board", "stop", "--all"], cwd=ROOT, capture_output=True)
    # A board whose link shares the REPL has no link port, and says nothing more.
    plain = subprocess.run(
        [*FARSIDE, "board", "start", "--micropython", micropython, "--flash-dir", str(tmp_path / "g")],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
    )
    try:
        assert plain.returncode == 0 and len(plain.stdout.split()) == 1
        assert [b.link_port for b in list_boards()] == [""]
    finally:
        subprocess.run([*FARSIDE, "board", "stop", "--all"], cwd=ROOT, capture_output=True)


@pytest.mark.micropython
def test_link_is_8bit_clean_while_the_repl_runs_code(uart_board: VirtualBoard) -> None:
    _wait_main(uart_board)
    payload = bytes(range(256)) * 4  # 0x03 and \r\n are data here: no Ctrl-C on the link
    with _link(uart_board) as link, open_port(uart_board.port) as ser:
        repl = RawRepl(ser)
        repl.enter()
        got = _echo(link, payload)
        out, err = repl.exec_raw("print('repl', 6*7)")
        assert (out, err) == (b"repl 42\n", b"")
        assert got == _inverted(payload)
    status = uart_board.status()
    assert status["link_bytes_in"] == len(payload) and status["link_bytes_out"] == len(payload)


@pytest.mark.micropython
def test_power_off_drops_link_bytes_and_reset_keeps_both_paths(uart_board: VirtualBoard) -> None:
    _wait_main(uart_board)
    port, link_port = uart_board.port, uart_board.link_port
    uart_board.power_off()
    with _link(uart_board) as link:
        before = uart_board.status()["link_bytes_in"]
        link.write(b"lost" * 100)
        time.sleep(0.3)
        assert uart_board.status()["link_bytes_in"] == before  # into an unpowered board
        with open_port(uart_board.port) as ser:
            uart_board.power_on()
            assert b"main-ran link" in read_for(ser, 15, b">>> ")
        assert read_for(link, 0.5) == b""  # the echo never gets it after power-on either
        assert _echo(link, b"on") == _inverted(b"on")
    _wait_main(uart_board)
    assert (uart_board.port, uart_board.link_port) == (port, link_port)
    with _link(uart_board) as link:
        assert _echo(link, b"abc") == _inverted(b"abc")


@pytest.mark.micropython
def test_power_cut_counts_link_bytes_when_armed_on_the_link(uart_board: VirtualBoard) -> None:
    _wait_main(uart_board)
    with _link(uart_board) as link:
        before = uart_board.status()["link_bytes_in"]
        uart_board.cut_power_after(100, on="link")
        link.write(b"x" * 300)
        deadline = time.monotonic() + 5
        while uart_board.status()["power"] != "off" and time.monotonic() < deadline:
            time.sleep(0.05)
    status = uart_board.status()
    assert status["power"] == "off" and status["link_bytes_in"] == before + 100
    with pytest.raises(FarsideError, match="on=link"):
        VirtualBoard(uart_board.state).control("cut_after", bytes=1, on="usb")


@pytest.mark.micropython
def test_reenumerating_board_moves_its_link_port_too(micropython: str, tmp_path: Path) -> None:
    (tmp_path / "flash").mkdir()
    (tmp_path / "flash" / "main.py").write_text(ECHO_MAIN)
    board = _start(micropython, tmp_path / "flash", reenumerate=True)
    try:
        port, link_port = board.port, board.link_port
        board.reset()
        assert board.port != port and board.link_port != link_port
        assert not os.path.exists(link_port) or find_board(link_port) is None
        state = find_board(board.serial_number)
        assert state is not None and state.link_port == board.link_port
        time.sleep(1.0)  # main.py starts its echo
        with _link(board) as link:
            assert _echo(link, b"xyz") == _inverted(b"xyz")
    finally:
        board.stop()


# ---- the rover flashed onto the board ---------------------------------------------------


def _ping(session: Session, timeout: float = 20.0) -> list[str]:
    track = session.send_command("PING")
    return [r.stage for r in session.wait_verification(track, timeout=timeout)]


def _mpremote(port: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MPREMOTE, "connect", port, *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.micropython
def test_flashed_rover_answers_ping_on_its_link_while_mpremote_uses_the_repl(
    micropython: str, tmp_path: Path, src: Path
) -> None:
    board = _start(micropython, tmp_path / "flash")
    try:
        report = flash(FlashOptions(board="sim_uart", port=board.port, source=src))
        assert report.boot is not None and report.boot.version == report.version
        assert report.boot.dict_hash == report.dict_hash

        # After a reset: the banner on the REPL, which is free (a prompt); the link
        # carries frames only.
        with open_port(board.port) as ser, _link(board) as link:
            ser.reset_input_buffer()
            board.reset()
            console = read_for(ser, 15, b">>> ")
            watcher = BootWatcher()
            end = time.monotonic() + 15
            event = None
            while event is None and time.monotonic() < end:
                event = watcher.feed(link.read(link.in_waiting or 1))
        assert b"farside rover" in console and console.endswith(b">>> ")
        assert event is not None and event.version == report.version
        assert b"farside" not in bytes(watcher.text) and b">>>" not in bytes(watcher.text)

        with Session.open(board.link_port) as session:
            session.check_dictionary(timeout=20)
            assert _ping(session)[-1] == "completed"

            # mpremote on the REPL port (resume: no soft reset, which would stop the
            # rover as it stops core 1 on a Pico) while PINGs go on on the link.
            stages: list[list[str]] = []
            errors: list[BaseException] = []

            def pinger() -> None:
                try:
                    for _ in range(3):
                        stages.append(_ping(session))
                except BaseException as exc:  # noqa: BLE001 - reported by the assert below
                    errors.append(exc)

            thread = threading.Thread(target=pinger)
            thread.start()
            ran = _mpremote(
                board.port, "resume", "exec", "import os; print('ls', sorted(os.listdir()))",
                "+", "resume", "fs", "ls", ":farside",
            )
            thread.join(timeout=90)
            assert ran.returncode == 0, ran.stderr
            assert "ls [" in ran.stdout and "'farside'" in ran.stdout and "active" in ran.stdout
            assert not errors and [s[-1] for s in stages] == ["completed"] * 3
            assert _ping(session)[-1] == "completed"  # and after mpremote left

            # A plain mpremote soft-resets: the rover stops, as on a Pico; the REPL
            # answers; a hard reset brings the rover back on the same link port.
            plain = _mpremote(board.port, "exec", "print('plain', 1+1)")
            assert plain.returncode == 0 and "plain 2" in plain.stdout, plain.stderr
            board.reset()
            deadline = time.monotonic() + 30
            while True:
                try:
                    assert _ping(session, timeout=5)[-1] == "completed"
                    break
                except FarsideError:
                    if time.monotonic() > deadline:
                        raise
    finally:
        board.stop()


def test_flash_refuses_a_link_port_the_virtual_board_lacks(vboard: VirtualBoard, src: Path) -> None:
    with pytest.raises(FarsideError, match="has none: start it with farside board start --board sim_uart"):
        flash(FlashOptions(board="sim_uart", port=vboard.port, source=src))


# ---- the firmware's link classes, without a board ---------------------------------------


def test_open_link_needs_the_device_for_a_uart_link(monkeypatch: pytest.MonkeyPatch) -> None:
    from firmware_py.hal.stdio import open_link

    monkeypatch.delenv("FARSIDE_LINK_DEVICE", raising=False)
    with pytest.raises(OSError, match=r"board sim_uart puts the link on its own serial line: .*FARSIDE_LINK_DEVICE"):
        open_link(json.loads((ROOT / "boards" / "sim_uart.json").read_text()))


def test_device_link_reads_without_blocking_and_writes_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    from firmware_py.hal.stdio import open_link

    master, slave = os.openpty()
    try:
        monkeypatch.setenv("FARSIDE_LINK_DEVICE", os.ttyname(slave))
        link = open_link({"name": "x", "link": {"kind": "uart", "uart": 0, "baud": 115200}})
        buf = bytearray(64)
        t0 = time.monotonic()
        assert link.read_into(buf) == 0 and time.monotonic() - t0 < 0.5  # idle: at once
        os.write(master, b"\x03\x1a\r\n")  # raw: no ^C, no CR/LF mapping
        time.sleep(0.05)
        assert link.read_into(buf) == 4 and bytes(buf[:4]) == b"\x03\x1a\r\n"
        frame = bytes(range(256)) * 4
        assert link.write(frame) == len(frame)
        got = b""
        while len(got) < len(frame):
            got += os.read(master, 4096)
        assert got == frame
    finally:
        os.close(master)
        os.close(slave)


def test_cpython_rover_talks_on_its_link_device_and_leaves_the_console_quiet(tmp_path: Path) -> None:
    from tests.rover.ground import make_root
    from tests.rover.test_entry import _packets, _ping_frame, _read_until

    root = make_root(tmp_path / "r")
    master, slave = os.openpty()  # the slave stays open here: no EIO before the rover opens it
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware_py.main", "--board", "sim_uart", "--root", root],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
        env=dict(os.environ, FARSIDE_LINK_DEVICE=os.ttyname(slave)),
    )
    try:
        assert (5, 1) in _packets(_read_until(master, (5, 1), 20))  # BOOT, on the link
        os.write(master, _ping_frame())
        got = _packets(_read_until(master, (17, 2), 10))
        assert (17, 2) in got and (1, 7) in got
    finally:
        proc.kill()
        out, err = proc.communicate()
        os.close(master)
        os.close(slave)
    assert out == b""  # not a frame on the console
    assert err.startswith(b"farside rover ") and b"on sim_uart" in err


class _FakeUart:
    """A machine.UART whose write takes at most `room` octets per call."""

    def __init__(self, rx: bytes = b"", room: int = 100) -> None:
        self.rx = bytearray(rx)
        self.tx = bytearray()
        self.room = room

    def any(self) -> int:
        return len(self.rx)

    def readinto(self, buf: bytearray, n: int) -> int:
        assert n <= len(self.rx), "read more than any() said: would wait"
        buf[:n] = self.rx[:n]
        del self.rx[:n]
        return n

    def write(self, data: bytes) -> int | None:
        part = bytes(data[: self.room])
        self.tx += part
        return len(part) or None


def test_rp2_uart_link_never_waits_and_writes_whole_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    machine = types.ModuleType("machine")
    machine.UART = machine.PWM = machine.WDT = machine.I2C = machine.Pin = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "machine", machine)
    monkeypatch.delitem(sys.modules, "firmware_py.hal.rp2", raising=False)
    from firmware_py.hal.rp2 import UartLink

    uart = _FakeUart(rx=b"\xeb\x90abc")
    link = UartLink(uart)
    buf = bytearray(3)
    assert link.read_into(buf) == 3 and bytes(buf) == b"\xeb\x90a"
    assert link.read_into(buf) == 2 and link.read_into(buf) == 0
    frame = bytes(range(256)) + b"\x1a\xcf\xfc\x1d"
    assert link.write(memoryview(frame)) == len(frame) and bytes(uart.tx) == frame
