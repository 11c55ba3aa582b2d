"""COP-1 end to end through the relay model, in virtual time: FOP-1 with SDLS-secured TC
frames -> relay -> FARM-1 with authentication -> CLCW in TM frames -> relay -> FOP-1."""

from __future__ import annotations

from typing import Any

import pytest

from hil import vclock
from hil.gs.link import DEV_KEYS
from hil.relay import coplink
from hil.relay.coplink import TC_VCID, run_commands
from protocols.cop1 import CommandState
from protocols.crc import crc16
from protocols.sdls import KeyStore, SecuritySender
from protocols.stream import TcDeframer, frame_tc
from protocols.tc_frame import build_ad_frame, build_bd_frame

F: Any = coplink.F  # the firmware's FARM-1 codes


def payloads(n: int) -> list[bytes]:
    return [b"command %03d " % i + bytes(8) for i in range(n)]


@pytest.mark.parametrize("seed", [1, 2])
def test_100_commands_under_harsh_arrive_complete_in_order_exactly_once(seed: int) -> None:
    cmds = payloads(100)
    ground, rover, elapsed = vclock.run(run_commands("harsh", cmds, seed=seed))
    relay = ground.relay  # type: ignore[attr-defined]
    up = relay.uplink.stats
    # the channel really was harsh
    assert up.frames_corrupted > 0 and up.frames_lost > 0 and up.frames_duplicated > 0
    assert ground.fop.stats.ad_retransmitted > 0
    # ... and yet
    assert rover.delivered == cmds
    assert all(r.state == CommandState.ACKNOWLEDGED for r in ground.fop.records)
    assert ground.fop.stats.alerts == 0
    assert elapsed > 100 * len(cmds[0]) * 8 / 125  # could not beat the bit rate
    assert elapsed > 300  # the run went through the relay outage at 240-300 s


def test_queqiao_clean_link_acknowledges_every_command_in_about_one_round_trip_each_window() -> None:
    cmds = payloads(10)
    ground, rover, elapsed = vclock.run(run_commands("queqiao", cmds, seed=0))
    assert rover.delivered == cmds
    assert ground.fop.stats.ad_retransmitted == 0
    frame_s = (2 + 5 + 14 + len(cmds[0]) + 16 + 2) * 8 / 125  # SPI + IV (aes-gcm SA), MAC
    # serialisation-bound: K covers the round trip, so about one frame time per command
    assert elapsed == pytest.approx(10 * frame_s + 3.5, abs=2.5)


class RecordingRover(coplink.ReferenceRover):
    """The reference rover, keeping every octet the relay handed it."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.heard = bytearray()

    def on_data(self, data: bytes) -> None:
        self.heard += data
        super().on_data(data)


def test_replayed_or_forged_frames_are_never_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    cmds = payloads(30)
    monkeypatch.setattr(coplink, "ReferenceRover", RecordingRover)
    ground, rover, _ = vclock.run(run_commands("harsh", cmds, seed=10))
    assert isinstance(rover, RecordingRover)
    up = ground.relay.uplink.stats  # type: ignore[attr-defined]
    # the seed really duplicated and corrupted uplink frames: duplicates failed the
    # anti-replay check, corrupted ones failed the FECF
    assert up.frames_duplicated > 0 and up.frames_corrupted > 0
    assert rover.rejected_auth > 0 and rover.tc.counters.bad_crc_frames > 0
    assert rover.delivered == cmds
    accepted = {code: n for code, n in rover.codes.items() if code in (F.ACCEPT, F.ACCEPT_BD)}

    # the relay has stopped: what the rover answers from now on goes nowhere
    rover._write = lambda data: None

    # replay: every TC frame the rover heard, again, in order and reversed
    heard = list(TcDeframer().feed(bytes(rover.heard)))
    assert len(heard) >= len(cmds)
    for raw in heard + heard[::-1]:
        rover.on_data(frame_tc(raw))

    # forgeries with the next expected N(S) and a security sequence number far ahead, so
    # only the MAC can stop them: a wrong key, no security at all, a bypass frame, and a
    # heard frame with its data changed and its FECF made good again
    far = SecuritySender(bytes(32), spi=1, seq=0x7FFF0000)
    tampered = bytearray(heard[-1][:-2])
    tampered[-17] ^= 0x01  # the last data octet, just before the 16-octet MAC
    forged = [
        build_ad_frame(rover.scid, TC_VCID, rover.farm.vr, b"forged command", far),
        build_ad_frame(rover.scid, TC_VCID, rover.farm.vr, b"forged command"),
        build_bd_frame(rover.scid, TC_VCID, b"forged bypass", security=far),
        bytes(tampered) + crc16(bytes(tampered)).to_bytes(2, "big"),
    ]
    rejected = rover.rejected_auth
    for raw in forged:
        rover.on_data(frame_tc(raw))
    assert rover.rejected_auth == rejected + len(forged)
    assert rover.delivered == cmds and rover.bypass == []
    assert {code: n for code, n in rover.codes.items() if code in (F.ACCEPT, F.ACCEPT_BD)} == accepted

    # control: the same frame with the development key is accepted, so what stopped the
    # forgeries was their authentication
    real = SecuritySender.from_keystore(KeyStore.load(DEV_KEYS), spi=1, seq=0x7FFF0000)
    rover.on_data(frame_tc(build_ad_frame(rover.scid, TC_VCID, rover.farm.vr, b"real command", real)))
    assert rover.delivered == [*cmds, b"real command"]
