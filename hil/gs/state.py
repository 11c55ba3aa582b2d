"""What the ground knows about the rover: fed TM frames and packets, no I/O.

`GroundState` is shared by the live session, replay, watch and procedures:
the latest housekeeping (raw and calibrated), an event history, verification
reports by request id, link counters (frames, CLCW, last contact), mode and pose.
Every virtual channel is demultiplexed: the live one and the packet store's (packets sent
again by TM_RETRIEVE). Each packet passes the gap tracker (`gaps`, hil.gs.gaps) first: a
duplicate is not decoded twice, and a retrieved packet fills its gap like a live one (an
older housekeeping report than the latest does not replace the latest values).
Waiters (`await_*`) block on its condition variable; every update notifies it.
"""

from __future__ import annotations

import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from hil.gs.gaps import GapTracker
from hil.gs.mission import Mission
from protocols.clcw import Clcw
from protocols.dictionary import VERIFICATION_FAILURES
from protocols.errors import AuthError, ProtocolError
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
class Alarm:
    """A raised ground alarm (e.g. TC_AUTH: the rover reports frames failing authentication)."""

    name: str
    message: str
    first_time: float
    last_time: float
    count: int = 1  # how many reports raised or renewed it
    rejected: int = 0  # rejections the rover reported (TC_AUTH)
    acknowledged: bool = False


AUTH_ALARM = "TC_AUTH"
AUTH_EVENTS = ("TC_AUTH_REJECTED", "TC_AUTH_SUMMARY")


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
    tm_auth_failed: int = 0  # TM frames whose SDLS MAC did not verify (tm_spi set)


@dataclass
class GroundState:
    """The ground's picture of the rover, thread-safe through `cond`."""

    mission: Mission
    hk_raw: dict[str, int | float] = field(default_factory=dict)
    hk: dict[str, float | int | str] = field(default_factory=dict)  # engineering / enum labels
    hk_time: float | None = None
    hk_packet_at: dict[str, float] = field(default_factory=dict)  # when each HK packet's latest report came
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
    alarms: dict[str, Alarm] = field(default_factory=dict)
    sa_status: dict[int, tuple[int, int]] = field(default_factory=dict)  # SPI -> (ARSN mark, key_id)
    sa_reports: int = 0  # SA_STATUS events and HK sa_arsn values seen
    auth_rejected_seen: int = 0  # the last HK tc_auth_rejected
    hk_late: int = 0  # retrieved housekeeping reports (older than the latest)
    completed_reports: int = 0  # TM 1/7 received, each once, live or retrieved (a running total)

    def __post_init__(self) -> None:
        # TM SDLS (the key file's tm_spi): the frame's header and data field -> the plain data
        # field, raising AuthError; None = TM frames are not secured
        self.tm_security: Callable[[bytes, bytes], bytes] | None = None
        self.cond = threading.Condition(threading.RLock())
        store_vc = self.mission.raw["mission"].get("tm_store_vcid")
        self.store_vcid: int | None = store_vc
        self.demux = TmDemultiplexer(
            self.mission.tm_frame_length, vcid=self.mission.tm_vcid if store_vc is None else None
        )
        self.gaps = GapTracker()
        self._hk_late = False  # the packet being decoded is a retrieved one (older than the latest)

    # --- input ---------------------------------------------------------------
    def on_frame(self, frame: bytes, t: float | None = None) -> list[bytes]:
        """A good TM frame from the link or archive: CLCW, counters, packets."""
        t = time.time() if t is None else t
        try:
            tm: TmFrame = parse_tm_frame(frame, self.mission.tm_frame_length)
            if self.tm_security is not None:
                tm = replace(tm, data=self.tm_security(bytes(frame[:6]), tm.data))
        except AuthError:
            with self.cond:
                self.link.frames_bad += 1
                self.link.tm_auth_failed += 1
                self.cond.notify_all()
            return []
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
            retrieved = tm.vcid == self.store_vcid
            if retrieved:
                self.gaps.note_store_frame()
            packets = self.demux.feed_parsed(tm)
            self.link.frames_lost = self.demux.counters.frames_lost
            for p in packets:
                self.on_packet(p, t, retrieved)
            self.cond.notify_all()
        return packets

    def on_packet(self, packet: bytes, t: float | None = None, retrieved: bool = False) -> TmPacket | None:
        """One TM packet (`retrieved`: it came on the packet store's virtual channel)."""
        t = time.time() if t is None else t
        try:
            pkt = parse_tm_packet(packet)
        except ProtocolError:
            with self.cond:
                self.packets_bad += 1
            return None
        with self.cond:
            if pkt.apid == self.mission.tm_apid:
                filled = self.gaps.counters.filled
                if not self.gaps.note(pkt.apid, pkt.seq_count, packet, t, retrieved):
                    return pkt  # a duplicate: decoded once already
                self._hk_late = self.gaps.counters.filled != filled
                if (pkt.service, pkt.subservice) == (15, 10) and len(pkt.data) == 8:
                    self.gaps.report(*struct.unpack(">HHHH", pkt.data))
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
            if dec.kind == "hk" and self._hk_late:
                self.hk_late += 1  # retrieved: archived, not the latest values
            elif dec.kind == "hk":
                for v in dec.values:
                    self.hk_raw[v.name] = v.raw  # type: ignore[assignment]
                    self.hk[v.name] = v.value
                self.hk_packet_at[dec.name] = t
                self.hk_time = t
                self.hk_count += 1
                if "dict_hash" in self.hk_raw:
                    self.rover_dict_hash = int(self.hk_raw["dict_hash"])
                if "sa_arsn" in self.hk_raw:
                    self.sa_reports += 1
                rejected = self.hk_raw.get("tc_auth_rejected")
                if rejected is not None:
                    if int(rejected) > self.auth_rejected_seen:
                        self._auth_alarm(t, f"rover rejected {int(rejected)} TC frames (HK tc_auth_rejected)",
                                         int(rejected) - self.auth_rejected_seen)
                    self.auth_rejected_seen = int(rejected)
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
                    self.auth_rejected_seen = 0  # the rover's counters restart
                elif dec.name == "SA_STATUS":
                    spi = int(args.get("spi", 0))
                    self.sa_status[spi] = (int(args.get("arsn_mark", 0)), int(args.get("key_id", 0)))
                    self.sa_reports += 1
                elif dec.name in AUTH_EVENTS:
                    count = int(args.get("count", 1))
                    self._auth_alarm(t, dec.message or dec.name, count)
            elif dec.kind == "verification":
                # the request id as the TC carried it: packet id and sequence control, whole
                rid = (int.from_bytes(data[0:2], "big"), int.from_bytes(data[2:4], "big"))
                code = int(dec.value("failure").raw) if sub in VERIFICATION_FAILURES else None
                self.verifications.setdefault(rid, []).append(Verification(t, dec.name.lower(), code))
                if sub == 7:
                    self.completed_reports += 1
            elif dec.kind == "parameter" and dec.id is not None:
                self.param_reports[dec.id] = float(dec.values[0].raw)
            elif dec.kind == "ping":
                self.pings += 1
        except Exception as exc:  # a malformed packet must not stop the link thread
            self.packets_bad += 1
            self.link.note = f"undecodable TM {svc}/{sub}: {exc}"

    def _auth_alarm(self, t: float, message: str, rejected: int) -> None:
        a = self.alarms.get(AUTH_ALARM)
        if a is None or a.acknowledged:
            self.alarms[AUTH_ALARM] = Alarm(AUTH_ALARM, message, t, t, 1, rejected)
        else:
            a.message, a.last_time, a.count, a.rejected = message, t, a.count + 1, a.rejected + rejected

    def acknowledge(self, name: str = AUTH_ALARM) -> None:
        """The operator saw the alarm: it stays listed until a new report raises it again."""
        with self.cond:
            a = self.alarms.get(name)
            if a is not None:
                a.acknowledged = True

    def active_alarms(self) -> list[Alarm]:
        with self.cond:
            return [a for a in self.alarms.values() if not a.acknowledged]

    # --- queries -------------------------------------------------------------
    @property
    def mode(self) -> str | None:
        v = self.hk.get("mode")
        return None if v is None else str(v)

    def value(self, name: str) -> Any:
        return self.hk.get(name)

    def value_age(self, name: str, now: float | None = None) -> float | None:
        """Seconds since the latest report of `name` (its HK packet) came (None before any)."""
        at = self.hk_packet_at.get(self.mission.hk_packet_of.get(name, ""))
        return None if at is None else max(0.0, (time.time() if now is None else now) - at)

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
                "alarms": [Alarm(**vars(a)) for a in self.alarms.values()],
            }
