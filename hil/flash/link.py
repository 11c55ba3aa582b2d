"""The two things the flash tool says and hears on the rover's link: the ENTER_REPL
command (to stop a running rover) and the BOOT event (to confirm the new firmware).

Both use protocols/: a PUS TC 200/10 in an authenticated Type-BD frame after 0xEB90;
TM frames after 0x1ACFFC1D, rebuilt into packets, events 5/x with BOOT = id 1:
version u32, boot_count u16, reset_cause u8, dict_hash u32.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import asdict, dataclass

import serial

from protocols.errors import ProtocolError

BOOT_EVENT_ID = 1
_BOOT_ARGS = struct.Struct(">HIHBI")
ENTER_REPL = (200, 10)
REBOOT = (200, 9)
RESET_CAUSES = {0: "POWER_ON", 1: "WATCHDOG", 2: "COMMANDED", 3: "SOFT", 4: "BROWN_OUT"}


def _mission() -> dict[str, int]:
    from hil.flash.image import ROOT

    d = json.loads((ROOT / "protocols" / "dictionary.json").read_text())
    m: dict[str, int] = d["mission"]
    return m


def command_bytes(keys_json: bytes, service: int, subservice: int, seq: int | None = None, above: int = 0) -> bytes:
    """A Type-BD TC frame (secured with SPI 1 of the key file) on the stream.

    The rover accepts a BD frame only with an ARSN above the highest it accepted and above
    the mark it persists across resets, so a recorded BD frame (ENTER_REPL included) is
    always a replay. The ARSN comes from the ground's persisted ledger for this key
    (`hil.gs.arsn`), which every ground process on the key shares: it starts above
    anything an earlier session sent, and above `above` (what the rover reported:
    `reported_arsn`)."""
    from hil.gs.arsn import ArsnLedger
    from protocols.pus import build_tc_packet
    from protocols.sdls import KeyStore, SecuritySender
    from protocols.stream import frame_tc
    from protocols.tc_frame import build_bd_frame

    m = _mission()
    keys = KeyStore.from_json(json.loads(keys_json))
    sa = keys.sa(1)
    if sa is None:
        raise ProtocolError("the key file has no SA for SPI 1")
    if seq is None:
        ledger = ArsnLedger.for_sa(sa)
        sender = SecuritySender(sa, seq=max(ledger.next_free(), above + 1), reserve=ledger.reserve)
    else:
        sender = SecuritySender(sa, seq=seq)
    packet = build_tc_packet(m["tc_apid"], 0, service, subservice)
    frame = build_bd_frame(m["scid"], m["tc_vcid"], packet, security=sender)
    return frame_tc(frame)


def reported_arsn(stream: bytes, spi: int = 1) -> int:
    """The highest sequence number the rover reported in these link octets (SA_STATUS's
    mark for `spi`, HK sa_arsn), 0 if none: the next BD frame must go above it."""
    from hil.gs.mission import Mission
    from hil.gs.state import GroundState
    from protocols.stream import TmDeframer

    m = _mission()
    state = GroundState(Mission.load())
    for frame in TmDeframer(m["tm_frame_length"]).feed(stream):
        state.on_frame(frame, 0.0)
    mark = state.sa_status.get(spi, (0, 0))[0]
    return max(mark, int(state.hk_raw.get("sa_arsn", 0)))


@dataclass
class BootEvent:
    """The rover's BOOT event as decoded from the link."""

    version: int
    boot_count: int
    reset_cause: int
    dict_hash: int

    @property
    def reset_cause_name(self) -> str:
        return RESET_CAUSES.get(self.reset_cause, str(self.reset_cause))

    def to_json(self) -> dict[str, object]:
        d: dict[str, object] = asdict(self)
        d["reset_cause_name"] = self.reset_cause_name
        return d


def console_text(data: bytes, limit: int = 800) -> str:
    """What a board printed, on one line: the text among the link's octets (binary TM frames
    left out), lines joined by " | ", the last `limit` characters. For errors that must show
    the whole console (a boot that ended at the REPL says why only in the lines before `>>>`)."""
    text = data.decode("ascii", errors="replace")
    lines = []
    for raw in text.replace("\r", "\n").split("\n"):
        line = "".join(c for c in raw if c.isprintable() and c != "\ufffd").strip()
        if line and sum(c.isalnum() or c in " >.:,()'_-/" for c in line) >= 0.8 * len(line):
            lines.append(line)
    joined = " | ".join(lines) or "nothing"
    return joined if len(joined) <= limit else "..." + joined[-limit:]


class BootWatcher:
    """Feeds raw link bytes through the TM deframer and demultiplexer; finds BOOT events."""

    def __init__(self) -> None:
        from protocols.stream import TmDeframer
        from protocols.tm_frame import TmDemultiplexer

        m = _mission()
        self.deframer = TmDeframer(m["tm_frame_length"])
        self.demux = TmDemultiplexer(m["tm_frame_length"])
        self.text = bytearray()

    def feed(self, data: bytes) -> BootEvent | None:
        from protocols.pus import parse_tm_packet

        self.text += data
        del self.text[:-4096]
        for frame in self.deframer.feed(data):
            for packet in self.demux.feed(frame):
                try:
                    tm = parse_tm_packet(packet)
                except ProtocolError:
                    continue
                if tm.service == 5 and len(tm.data) >= _BOOT_ARGS.size:
                    event_id, version, boot_count, cause, dict_hash = _BOOT_ARGS.unpack_from(
                        tm.data
                    )
                    if event_id == BOOT_EVENT_ID:
                        return BootEvent(version, boot_count, cause, dict_hash)
        return None


def wait_boot_event(ser: serial.Serial, timeout_s: float) -> tuple[BootEvent | None, bytes]:
    """Read the link until a BOOT event or the timeout; returns (event, the last bytes seen)."""
    watcher = BootWatcher()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            data = ser.read(ser.in_waiting or 1)
        except (serial.SerialException, OSError):
            return None, bytes(watcher.text)
        if data:
            event = watcher.feed(data)
            if event is not None:
                return event, bytes(watcher.text)
    return None, bytes(watcher.text)
