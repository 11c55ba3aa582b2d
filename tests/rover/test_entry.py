"""The board entry (firmware_py.main) in real time: CPython on a pty, the unix port on pipes."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protocols.pus import build_tc_packet, parse_tm_packet
from protocols.sdls import SecuritySender
from protocols.stream import TmDeframer, frame_tc
from protocols.tc_frame import build_ad_frame
from protocols.tm_frame import TmDemultiplexer
from tests.rover.ground import KEY, ROOT, SCID, TC_VCID, make_root


def _ping_frame() -> bytes:
    return frame_tc(build_ad_frame(SCID, TC_VCID, 0, build_tc_packet(1, 7, 17, 1, b""), SecuritySender(KEY)))


def _packets(data: bytes) -> list[tuple[int, int]]:
    d = TmDeframer()
    m = TmDemultiplexer()
    out = []
    for f in d.feed(data):
        for p in m.feed(f):
            t = parse_tm_packet(p)
            out.append((t.service, t.subservice))
    return out


def _read_until(fd: int, want: tuple[int, int], timeout_s: float) -> bytes:
    buf = b""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            buf += chunk
            if want in _packets(buf):
                break
    return buf


def test_cpython_rover_answers_a_ping_over_a_pty(tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware_py.main", "--root", root],
        stdin=slave, stdout=slave, stderr=subprocess.DEVNULL, cwd=ROOT,
    )
    os.close(slave)
    try:
        first = _read_until(master, (5, 1), 10)  # the BOOT event, once the tty is raw
        assert (5, 1) in _packets(first)
        os.write(master, _ping_frame())
        got = _packets(_read_until(master, (17, 2), 10))
        assert (17, 2) in got and (1, 7) in got
    finally:
        proc.kill()
        proc.wait()
        os.close(master)


@pytest.mark.micropython
def test_unix_port_rover_answers_a_ping_on_stdio(micropython: str, tmp_path: Path) -> None:
    root = make_root(tmp_path / "r")
    # From source, so MicroPython compiles every module on its own heap first (a flashed
    # board runs mpy-cross output and fits the board's 320 KB): 384 KB leaves room for that.
    proc = subprocess.Popen(
        [micropython, "-X", "heapsize=384K", "-m", "firmware_py.main", "--root", root],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        fd = proc.stdout.fileno()
        assert (5, 1) in _packets(_read_until(fd, (5, 1), 20))
        proc.stdin.write(_ping_frame())
        proc.stdin.flush()
        got = _packets(_read_until(fd, (17, 2), 10))
        assert (17, 2) in got and (1, 7) in got
    finally:
        proc.kill()
        proc.wait()


def test_enter_repl_flag_keeps_the_next_boot_at_the_repl(tmp_path: Path) -> None:
    """On rp2 ENTER_REPL resets (the WDT cannot be stopped) and leaves this flag."""
    from firmware_py.main import main

    root = make_root(tmp_path / "r")
    (Path(root) / "enter_repl").write_text("1")
    assert main(root=root) is None
    assert not (Path(root) / "enter_repl").exists()
