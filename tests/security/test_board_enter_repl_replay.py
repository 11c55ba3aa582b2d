"""A recorded ENTER_REPL replayed on a real board: the MicroPython virtual board, flashed
by `farside flash`, its rover's state on the board's flash folder. The eavesdropper records
the ENTER_REPL frame an operator sends (Type-BD, as the flash tool sends it), the board
resets (the RUN pin) or loses power, and the recording is sent again once the rover runs:
it is refused as a replay, and the flight software keeps running."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from hil.board import VirtualBoard, start_board
from hil.flash import FlashOptions, flash
from hil.flash.link import command_bytes, console_text, reported_arsn
from hil.gs.keys import DEV_KEYS
from hil.gs.mission import Mission
from hil.gs.state import GroundState
from protocols.stream import TmDeframer

pytestmark = pytest.mark.micropython


@pytest.fixture
def board(micropython: str, tmp_path: Path) -> Iterator[VirtualBoard]:
    vb = start_board(board="sim", flash_dir=tmp_path / "flash", micropython=micropython)
    try:
        flash(FlashOptions(board="sim", port=vb.port))
        yield vb
    finally:
        vb.stop()


def _listen(port: serial.Serial, seconds: float, until: bytes | None = None) -> bytes:
    data = bytearray()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        data += port.read(port.in_waiting or 1)
        if until is not None and until in data:
            break
    return bytes(data)


def _state(stream: bytes) -> GroundState:
    state = GroundState(Mission.load())
    for frame in TmDeframer(state.mission.tm_frame_length).feed(stream):
        state.on_frame(frame, 0.0)
    return state


def _reporting(port: serial.Serial, board: VirtualBoard, boot: bool, seconds: float = 30.0) -> bytes:
    """The link octets until the rover's HK (and with `boot`, its BOOT event) came down."""
    data = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        data += _listen(port, 1.0)
        state = _state(data)
        if "sa_arsn" in state.hk_raw and (not boot or any(e.name == "BOOT" for e in state.events)):
            return data
    raise AssertionError(
        f"the rover did not {'boot and ' if boot else ''}report within {seconds:.0f} s; "
        f"console: {console_text(data, limit=2000)}; board log: {board.log_tail()}"
    )


@pytest.mark.parametrize("how", ["reset", "power_cycle"])
def test_a_recorded_enter_repl_is_refused_after_a_reset_and_the_rover_runs_on(board: VirtualBoard, how: str) -> None:
    keys = DEV_KEYS.read_bytes()
    with serial.serial_for_url(board.port, baudrate=115200, timeout=0.05) as port:
        heard = _reporting(port, board, boot=False)
        recorded = command_bytes(keys, 200, 10, above=reported_arsn(heard))  # ENTER_REPL, Type-BD
        port.write(recorded)
        seen = _listen(port, 15, b">>> ")
        assert seen.endswith(b">>> ")  # the real command took the board to its REPL
    if how == "reset":
        board.reset()
    else:
        board.power_cycle(off_s=0.5)
    with serial.serial_for_url(board.port, baudrate=115200, timeout=0.05) as port:
        _reporting(port, board, boot=True)
        port.write(recorded)  # the recording, sent again at once after the boot
        after = _listen(port, 6)
    state = _state(after)
    rejected = [e for e in state.events if e.name in ("TC_AUTH_REJECTED", "TC_AUTH_SUMMARY")]
    assert rejected, "the replayed frame was not refused"
    reason = int(rejected[0].args.get("reason", rejected[0].args.get("last_reason")) or 0)
    # at or below the mark restored at boot: too old for the window, or marked seen in it
    assert state.mission.enum_label("auth_reason", reason) in ("REPLAYED", "OUT_OF_WINDOW")
    assert b"farside: rover stopped" not in after and b">>> " not in after  # still flying, not at the REPL
    assert state.hk_raw, "no housekeeping after the replay: the flight software stopped"
