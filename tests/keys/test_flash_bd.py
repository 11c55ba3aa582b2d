"""The flash tool's Type-BD frames (ENTER_REPL's path): a sequence number above what the
rover reports and what any ground session used; the same frame recorded and sent again is
a replay."""

from __future__ import annotations

import time
from pathlib import Path

import serial

from hil.flash.link import command_bytes, reported_arsn
from hil.gs.keys import DEV_KEYS
from hil.gs.mission import Mission
from hil.gs.session import Session
from hil.gs.state import GroundState
from protocols.stream import TmDeframer


def _listen(port: serial.Serial, seconds: float) -> bytes:
    data = bytearray()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        data += port.read(port.in_waiting or 1)
    return bytes(data)


def _state(stream: bytes) -> GroundState:
    m = Mission.load()
    state = GroundState(m)
    for frame in TmDeframer(m.tm_frame_length).feed(stream):
        state.on_frame(frame, 0.0)
    return state


def test_a_bd_frame_goes_above_the_rovers_report_and_its_replay_is_refused(rover_port: str, tmp_path: Path) -> None:
    with Session.open(rover_port, archive_root=tmp_path / "archive") as s:
        s.check_dictionary(30)
        for _ in range(3):
            s.wait_verification(s.send_command("PING"), 60)
        used = s.security.seq - 1
    with serial.serial_for_url(rover_port, baudrate=115200, timeout=0.05) as port:
        heard = _listen(port, 2.5)
        assert reported_arsn(heard) >= used - 1  # HK sa_arsn: the highest the rover accepted
        ping = command_bytes(DEV_KEYS.read_bytes(), 17, 1, above=reported_arsn(heard))
        port.write(ping)
        after = _state(_listen(port, 2.5))
        assert after.pings == 1 and not any(e.name.startswith("TC_AUTH") for e in after.events)
        port.write(ping)  # what an eavesdropper recorded, sent again
        again = _state(_listen(port, 2.5))
        assert again.pings == 0
        rejected = [e for e in again.events if e.name == "TC_AUTH_REJECTED"]
        assert rejected and again.mission.enum_label("auth_reason", rejected[0].args["reason"]) == "REPLAYED"
