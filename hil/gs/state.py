"""What the ground knows about the rover: fed TM frames and packets, no I/O.

`GroundState` is shared by the live session, replay, watch and procedures:
the latest housekeeping (raw and calibrated), an event history, verification
reports by request id, link counters (frames, CLCW, last contact), mode and pose.
Waiters (`await_*`) block on its condition variable; every update notifies it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from hil.gs.mission import Mission
from protocols.clcw import Clcw
from protocols.dictionary import VERIFICATION_FAILURES
from protocols.errors import ProtocolError
from protocols.pus import TmPacket, parse_tm_packet
from protocols.tm_frame import TmDemultiplexer, TmFrame, parse_tm_frame


@dataclass
class EventRecord:
    """One decoded event as received."""

    ground_time: float
    rover_time_s: float
    name: str
    severity: str
    args: dict[str, int | float]
    message: str
    seq: int  # arrival number, for "since" searches


@dataclass
class Verification:
    """One TM 1/x report."""

    ground_time: float
    stage: str
    failure_code: int | None


@dataclass
class LinkState:
    frames_ok: int = 0
    frames_bad: int = 0
    frames_lost: int = 0
    tc_frames_sent: int = 0
    last_contact: float | None = None
    clcw: Clcw | None = None
    up: bool = False
    reconnects: int = 0
    url: str = ""
    note: str = ""
    cop_queued: int = 0
    cop_sent: int = 0
    cop_state: str = ""


@dataclass
class GroundState:
    """The ground's picture of the rover, thread-safe through `cond`."""

    mission: Mission
    hk_raw: dict[str, int | float] = field(default_factory=dict)
    hk: dict[str, float | int | str] = field(default_factory=dict)  # engineering / enum labels
    hk_time: float | None = None
    hk_count: int = 0
    events: deque[EventRecord] = field(default_factory=lambda: deque(maxlen=2000))
    event_seq: int = 0
    verifications: dict[tuple[int, int], list[Verification]] = field(default_factory=dict)
    param_reports: dict[int, float] = field(default_factory=dict)
    pings: int = 0
    packets_total: int = 0
    packets_bad: int = 0
    rover_dict_hash: int | None = None
    rover_version: int | None = None
    link: LinkState = field(default_factory=LinkState)
    track: list[tuple[float, float]] = field(default_factory=list)  # (x_m, y_m) per HK

    def __post_init__(self) -> None:
        self.cond = threading.Condition(threading.RLock())
        self.demux = TmDemultiplexer(self.mission.tm_frame_length, vcid=self.mission.tm_vcid)

    # --- input ---------------------------------------------------------------
    def on_frame(self, frame: bytes, t: float | None = None) -> list[bytes]:
        """A good TM frame from the link or archive: CLCW, counters, packets."""
        t = time.time() if t is None else t
        try:
            tm: TmFrame = parse_tm_frame(frame, self.mission.tm_frame_length)
        except ProtocolError:
            with self.cond:
                self.link.frames_bad += 1
                self.cond.notify_all()
            return []
        with self.cond:
            self.link.frames_ok += 1
            self.link.last_contact = t
            if tm.ocf is not None:
                self.link.clcw = Clcw.from_int(tm.ocf)
            packets = self.demux.feed_parsed(tm)
            self.link.frames_lost = self.demux.counters.frames_lost
            for p in packets:
                self.on_packet(p, t)
            self.cond.notify_all()
        return packets

    def on_packet(self, packet: bytes, t: float | None = None) -> TmPacket | None:
        t = time.time() if t is None else t
        try:
            pkt = parse_tm_packet(packet)
        except ProtocolError:
            with self.cond:
                self.packets_bad += 1
            return None
        with self.cond:
            self.packets_total += 1
            if pkt.apid == self.mission.tm_apid:
                self._dispatch(pkt, t)
            self.cond.notify_all()
        return pkt

    def _dispatch(self, pkt: TmPacket, t: float) -> None:
        svc, sub, data = pkt.service, pkt.subservice, pkt.data
        rover_t = int.from_bytes(pkt.time[:4], "big") + int.from_bytes(pkt.time[4:6], "big") / 65536
        try:
            dec = self.mission.pd.decode_tm(svc, sub, data)
            if dec.kind == "hk":
                for v in dec.values:
                    self.hk_raw[v.name] = v.raw  # type: ignore[assignment]
                    self.hk[v.name] = v.value
                self.hk_time = t
                self.hk_count += 1
                if "dict_hash" in self.hk_raw:
                    self.rover_dict_hash = int(self.hk_raw["dict_hash"])
                if "x_m" in self.hk and "y_m" in self.hk:
                    self.track.append((float(self.hk["x_m"]), float(self.hk["y_m"])))
            elif dec.kind == "event":
                args = {v.name: v.raw for v in dec.values}
                self.event_seq += 1
                self.events.append(
                    EventRecord(t, rover_t, dec.name, dec.severity, args, dec.message, self.event_seq)  # type: ignore[arg-type]
                )
                if dec.name == "BOOT":
                    self.rover_dict_hash = int(args.get("dict_hash", 0))  # type: ignore[arg-type]
                    self.rover_version = int(args.get("version", 0))  # type: ignore[arg-type]
            elif dec.kind == "verification":
                # the request id as the TC carried it: packet id and sequence control, whole
                rid = (int.from_bytes(data[0:2], "big"), int.from_bytes(data[2:4], "big"))
                code = int(dec.value("failure").raw) if sub in VERIFICATION_FAILURES else None
                self.verifications.setdefault(rid, []).append(Verification(t, dec.name.lower(), code))
            elif dec.kind == "parameter" and dec.id is not None:
                self.param_reports[dec.id] = float(dec.values[0].raw)
            elif dec.kind == "ping":
                self.pings += 1
        except Exception as exc:  # a malformed packet must not stop the link thread
            self.packets_bad += 1
            self.link.note = f"undecodable TM {svc}/{sub}: {exc}"

    # --- queries -------------------------------------------------------------
    @property
    def mode(self) -> str | None:
        v = self.hk.get("mode")
        return None if v is None else str(v)

    def value(self, name: str) -> Any:
        return self.hk.get(name)

    def snapshot(self) -> dict[str, Any]:
        with self.cond:
            return {
                "hk": dict(self.hk),
                "events": list(self.events)[-12:],
                "link": LinkState(**vars(self.link)),
                "hk_time": self.hk_time,
                "hk_count": self.hk_count,
                "packets": self.packets_total,
                "rover_dict_hash": self.rover_dict_hash,
            }
