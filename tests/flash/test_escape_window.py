"""main.py's boot escape window shares the link: an operator's Ctrl-C stops the board at
the REPL, a ground frame that happens to carry 0x03 does not.

The window is the 200 ms after every boot (hil/flash/bootfiles.py). On a USB CDC board
the ground's frames arrive on the same stream as an operator's Ctrl-C, and a frame sent
then (a COP-1 retransmission after a power cut, above all) carries 0x03 wherever its
MAC or ciphertext happen to. Taken as Ctrl-C, it would leave the rover at the REPL after
a reboot, never to send BOOT."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hil.board import VirtualBoard
from hil.flash import FlashOptions, flash
from hil.flash.image import load_keys
from hil.flash.link import command_bytes, reported_arsn
from hil.flash.repl import TM_ASM, open_port

pytestmark = pytest.mark.micropython


def frame_with_ctrl_c(above: int) -> bytes:
    """ENTER_REPL as a BD frame whose octets after the first hold 0x03 (its ARSN, and so
    its MAC, chosen until one does)."""
    keys = load_keys(None)
    for seq in range(above + 1, above + 4096):
        frame = command_bytes(keys, 200, 10, seq=seq)
        if b"\x03" in frame[1:]:
            return frame
    raise AssertionError("no ARSN in 4096 gave a frame holding 0x03")


def listen_arsn(board: VirtualBoard, limit_s: float = 10.0) -> int:
    """The ARSN mark the running rover reports (HK), 0 if it reports none within `limit_s`."""
    heard = b""
    with open_port(board.port) as ser:
        end = time.monotonic() + limit_s
        while time.monotonic() < end and heard.count(TM_ASM) < 3:
            heard += ser.read(ser.in_waiting or 1)
    return reported_arsn(heard)


def reset_and_send(board: VirtualBoard, data: bytes, limit_s: float = 20.0) -> bytes:
    """Reset the board, write `data` as soon as main.py opens its window, and read the
    console until the REPL prompt (or `limit_s`)."""
    with open_port(board.port) as ser:
        ser.reset_input_buffer()
        board.reset()
        seen = b""
        sent = False
        end = time.monotonic() + limit_s
        while time.monotonic() < end and not seen.endswith(b">>> "):
            seen += ser.read(ser.in_waiting or 1)
            if not sent and b"escape window" in seen:
                ser.write(data)
                sent = True
    assert sent, seen[-300:]
    return seen


def test_a_frame_holding_ctrl_c_in_the_window_reaches_the_rover_whole(
    vboard: VirtualBoard, src: Path
) -> None:
    report = flash(FlashOptions(board="sim", port=vboard.port, source=src))
    assert report.boot is not None
    seen = reset_and_send(vboard, frame_with_ctrl_c(listen_arsn(vboard)))
    # Not taken for Ctrl-C: the rover started, took the frame whole (the octet the window
    # read first included) and ran it: ENTER_REPL, back at the REPL after its TM.
    assert b"stopped at the REPL" not in seen, seen[-300:]
    assert TM_ASM in seen, seen[-300:]
    assert seen.endswith(b">>> "), seen[-300:]


@pytest.mark.parametrize("keys", [b"\x03", b"\r\x03", b"\r\n\x03\x03\x03"], ids=repr)
def test_an_operators_ctrl_c_in_the_window_stops_at_the_repl(
    vboard: VirtualBoard, src: Path, keys: bytes
) -> None:
    flash(FlashOptions(board="sim", port=vboard.port, source=src))
    seen = reset_and_send(vboard, keys)
    assert b"farside: stopped at the REPL" in seen, seen[-300:]
    assert TM_ASM not in seen.split(b"escape window")[-1], seen[-300:]
