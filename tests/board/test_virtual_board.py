"""The virtual Pico behaves like a Pico on USB: REPL, raw REPL, raw-paste, boot.py and
main.py at power-on, Ctrl-C, an 8-bit clean line, soft reboot, resets and power cuts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import serial

from hil.board import VirtualBoard, list_boards
from hil.flash.repl import RAW_PROMPT, RawRepl, RawReplError, open_port
from tests.board.fixtures import ROOT, read_for

pytestmark = pytest.mark.micropython


def _reset_and_open(board: VirtualBoard) -> serial.Serial:
    ser = open_port(board.port)
    ser.reset_input_buffer()
    board.reset()
    return ser


def test_friendly_repl_answers_like_a_pico(vboard: VirtualBoard) -> None:
    with _reset_and_open(vboard) as ser:
        assert read_for(ser, 15, b">>> ").endswith(b">>> ")
        ser.write(b"print(6*7)\r")
        assert b"42" in read_for(ser, 15, b"42")


def test_raw_repl_and_raw_paste_run_code(vboard: VirtualBoard) -> None:
    with open_port(vboard.port) as ser:
        repl = RawRepl(ser)
        repl.enter()
        out, err = repl.exec_raw("import sys\nprint(sys.implementation.name, 1+1)")
        assert (out, err) == (b"micropython 2\n", b"")
        assert repl.use_paste, "raw-paste mode was refused"
        out, err = repl.exec_raw("1/0")
        assert out == b"" and b"ZeroDivisionError" in err


def test_boot_py_then_main_py_run_at_power_on_then_the_repl(vboard: VirtualBoard) -> None:
    (vboard.flash_dir / "boot.py").write_text("print('boot-ran')\n")
    (vboard.flash_dir / "main.py").write_text("print('main-ran')\n")
    with _reset_and_open(vboard) as ser:
        text = read_for(ser, 15, b">>> ")
    assert text.index(b"boot-ran") < text.index(b"main-ran") < text.index(b">>> ")


def test_ctrl_c_interrupts_a_busy_main_py(vboard: VirtualBoard) -> None:
    (vboard.flash_dir / "main.py").write_text(
        "import time\nprint('busy')\nwhile True:\n    time.sleep_ms(10)\n"
    )
    with _reset_and_open(vboard) as ser:
        boot = read_for(ser, 15, b"busy")
        assert b"busy" in boot, f"{boot!r}; board log: {vboard.log_tail()}"
        ser.write(b"\x03")
        text = read_for(ser, 15, b">>> ")
    assert b"KeyboardInterrupt" in text and text.endswith(b">>> "), f"{text!r}; board log: {vboard.log_tail()}"


def test_ctrl_c_racing_the_end_of_code_lands_at_the_repl_not_in_main_py(
    vboard: VirtualBoard,
) -> None:
    # Ctrl-C bursts while main.py ends and the REPL starts: on a Pico the code stops at
    # the REPL whatever the timing; the virtual board must never reboot into main.py.
    (vboard.flash_dir / "main.py").write_text(
        "import time\nprint('main-ran')\nwhile True:\n    time.sleep_ms(1)\n"
    )
    with _reset_and_open(vboard) as ser:
        assert b"main-ran" in read_for(ser, 15, b"main-ran")
        boots = vboard.status()["boots"]
        ser.write(b"\x03")
        text = read_for(ser, 15, b">>> ")
        for i in range(150):
            ser.write(b"import time; time.sleep_ms(%d)\r" % (i % 4))
            text += read_for(ser, 0.001 * (i % 5))
            ser.write(b"\x03\x03")
        ser.write(b"\rprint('alive', 6*7)\r")
        text += read_for(ser, 15, b"alive 42")
    assert b"main-ran" not in text and b"soft reboot" not in text
    assert b"alive 42" in text
    assert vboard.status()["boots"] == boots


def test_ctrl_c_bursts_from_the_reset_on_never_leave_the_board_without_its_files(
    vboard: VirtualBoard,
) -> None:
    # A flash tool resets and sends Ctrl-C every few ms: the first code MicroPython runs is
    # the remount of its root (sizes for `mpremote fs ls`), and a Ctrl-C between its umount
    # and mount left a board with no filesystem (no main.py, no files for the flash tool).
    import time

    (vboard.flash_dir / "main.py").write_text("print('main-ran')\n")
    for i in range(8):
        with _reset_and_open(vboard) as ser:
            time.sleep(0.01 * i)
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                ser.write(b"\x03")
                time.sleep(0.002)
            repl = RawRepl(ser)
            repl.enter()
            out, err = repl.exec_raw("import os\nprint(sorted(os.listdir()), os.getcwd())")
        assert b"'main.py'" in out and str(vboard.flash_dir).encode() in out, (i, out, err)


def test_line_is_8bit_clean_when_kbd_intr_is_off(vboard: VirtualBoard) -> None:
    # The rover's link after boot: every byte value both ways, 0x03 and \n untouched.
    (vboard.flash_dir / "main.py").write_text(
        "import micropython, sys\n"
        "micropython.kbd_intr(-1)\n"
        "sys.stdout.buffer.write(b'READY')\n"
        "data = sys.stdin.buffer.read(256)\n"
        "sys.stdout.buffer.write(bytes(reversed(data)))\n"
    )
    with _reset_and_open(vboard) as ser:
        assert b"READY" in read_for(ser, 15, b"READY")
        payload = bytes(range(256))
        ser.write(payload)
        echo = read_for(ser, 15, payload[::-1])
    assert payload[::-1] in echo


def test_soft_reboot_from_raw_repl_returns_to_raw_repl_without_main(vboard: VirtualBoard) -> None:
    (vboard.flash_dir / "boot.py").write_text("print('boot-ran')\n")
    (vboard.flash_dir / "main.py").write_text("print('main-ran')\n")
    with open_port(vboard.port) as ser:
        repl = RawRepl(ser)
        repl.enter()
        ser.write(b"\x04")
        text = read_for(ser, 15, RAW_PROMPT)
    assert b"soft reboot\r\n" in text and text.endswith(RAW_PROMPT)
    assert b"boot-ran" in text and b"main-ran" not in text


def test_real_mpremote_lists_and_reads_files(vboard: VirtualBoard) -> None:
    (vboard.flash_dir / "hello.txt").write_text("from the far side\n")
    mpremote = str(Path(sys.executable).parent / "mpremote")
    proc = subprocess.run(
        [mpremote, "connect", vboard.port, "fs", "ls", "+", "fs", "cat", ":hello.txt"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "hello.txt" in proc.stdout and "from the far side" in proc.stdout


def test_power_cut_mid_write_leaves_half_a_file(vboard: VirtualBoard) -> None:
    with open_port(vboard.port) as ser:
        repl = RawRepl(ser)
        repl.enter()
        repl.use_paste = False  # plain raw REPL: the code runs only after Ctrl-D
        repl.exec_raw("f = open('cut.bin', 'wb')")
        code = b"f.write(b'" + b"x" * 2000 + b"'); f.close()"
        vboard.cut_power_after(len(code) // 2)
        with pytest.raises(RawReplError, match="nothing|no answer"):
            repl.exec_raw(code, timeout_s=1.0)
    assert vboard.status()["power"] == "off"
    assert (vboard.flash_dir / "cut.bin").read_bytes() == b""  # the write never completed
    vboard.power_on()
    assert vboard.status()["power"] == "on"


def test_cli_starts_lists_and_stops_a_board(tmp_path: Path, micropython: str) -> None:
    farside = [sys.executable, "-m", "hil.cli"]
    start = subprocess.run(
        farside
        + [
            "board",
            "start",
            "--board",
            "sim",
            "--micropython",
            micropython,
            "--flash-dir",
            str(tmp_path / "f"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert start.returncode == 0, start.stderr
    port = start.stdout.strip()
    assert port.startswith("/dev/")
    listed = subprocess.run(
        farside + ["board", "list", "--json"], capture_output=True, text=True, cwd=ROOT
    )
    boards = json.loads(listed.stdout)
    assert [b["port"] for b in boards] == [port]
    assert [b.port for b in list_boards()] == [port]
    stop = subprocess.run(
        farside + ["board", "stop", boards[0]["name"]], capture_output=True, text=True, cwd=ROOT
    )
    assert stop.returncode == 0
    assert list_boards() == []
    twice = [
        farside
        + ["board", "start", "--micropython", micropython, "--flash-dir", str(tmp_path / "g")]
    ] * 2
    assert subprocess.run(twice[0], capture_output=True, text=True, cwd=ROOT).returncode == 0
    clash = subprocess.run(twice[1], capture_output=True, text=True, cwd=ROOT)
    assert clash.returncode == 2 and "already the flash of virtual board" in clash.stderr
    assert subprocess.run(farside + ["board", "stop", "--all"], cwd=ROOT).returncode == 0
    again = subprocess.run(
        farside + ["board", "stop", "nope"], capture_output=True, text=True, cwd=ROOT
    )
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "nope" in again.stderr


def test_heap_is_limited_to_the_board_budget(vboard: VirtualBoard) -> None:
    assert vboard.state.heapsize == "320K"  # boards/sim.json heap_budget_kb
    with open_port(vboard.port) as ser:
        repl = RawRepl(ser)
        repl.enter()
        out, err = repl.exec_raw("b = bytearray(100 * 1024)\nprint(len(b))")
        assert out == b"102400\n"
        out, err = repl.exec_raw("del b\nb = bytearray(320 * 1024)")
        assert b"MemoryError" in err


def test_nothing_is_lost_when_the_board_reads_slowly(vboard: VirtualBoard) -> None:
    # Like USB CDC: the host's writes wait while the board does not read; no byte is dropped.
    (vboard.flash_dir / "main.py").write_text(
        "import micropython, sys, time, hashlib, binascii\n"
        "micropython.kbd_intr(-1)\n"
        "sys.stdout.buffer.write(b'READY')\n"
        "time.sleep_ms(700)\n"
        "h = hashlib.sha256()\n"
        "n = 0\n"
        "while n < 100000:\n"
        "    b = sys.stdin.buffer.read(min(4096, 100000 - n))\n"
        "    h.update(b)\n"
        "    n += len(b)\n"
        "sys.stdout.buffer.write(b'GOT ' + binascii.hexlify(h.digest()) + b'\\n')\n"
    )
    import hashlib
    import random

    payload = random.Random(7).randbytes(100000)
    with _reset_and_open(vboard) as ser:
        assert b"READY" in read_for(ser, 15, b"READY")
        ser.write(payload)
        text = read_for(ser, 30, b"\n")
    assert b"GOT " + hashlib.sha256(payload).hexdigest().encode() in text
