"""The ground station on an asyncio loop: the gs pieces, driven by the loop's clock.

`hil.gs.session.Session` runs its link on a thread with the wall clock, which a
virtual-time loop cannot drive. `LoopGround` composes the same ground pieces —
`GroundState` (decode, histories, verification reports), FOP-1, SDLS sender, the
TC frame builders, the TM deframer and the session archive — but takes its octets
from a callback and keeps every timer on the running loop, so the same code runs
in virtual time (hil/vclock.py) and in real time.

    ground = LoopGround(mission, write=relay_input, archive=ArchiveWriter(folder))
    ground.feed(octets)            # TM stream octets from the link
    track = ground.send("PING")    # COP-1 Type-AD, verified by TM 1/x
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import FarsideError
from hil.gs.archive import KIND_META, KIND_TC, KIND_TM, ArchiveWriter
from hil.gs.mission import Mission
from hil.gs.session import DEV_KEYS, CommandTrack
from hil.gs.state import EventRecord, GroundState
from protocols.cop1 import Fop1, FopConfig, FopState, FrameKind
from protocols.errors import ProtocolError
from protocols.pus import build_tc_packet
from protocols.sdls import KeyStore, SecuritySender
from protocols.stream import TmDeframer, frame_tc
from protocols.tc_frame import build_ad_frame, build_bc_frame, build_bd_frame

# archive timestamps of a virtual run: a fixed UNIX origin keeps archives reproducible
VIRTUAL_T0_UNIX = 1767225600.0  # 2026-01-01T00:00:00Z


@dataclass
class HkSample:
    """One housekeeping report as received: ground time (loop s) and engineering values."""

    t: float
    values: dict[str, Any]


@dataclass
class GroundHistory:
    """Everything received, in order, with marks for per-test sub-histories."""

    events: list[EventRecord] = field(default_factory=list)
    hk: list[HkSample] = field(default_factory=list)
    boots: int = 0


class LoopGround:
    """Ground station on the running asyncio loop (see the module docstring)."""

    def __init__(
        self,
        mission: Mission,
        write: Callable[[bytes], None],
        *,
        loop: asyncio.AbstractEventLoop,
        archive: ArchiveWriter | None = None,
        keys: Path | str | None = None,
        spi: int = 1,
        fop: FopConfig | None = None,
        t0_unix: float = VIRTUAL_T0_UNIX,
        sdls_seq: int = 1,
    ) -> None:
        self.mission = mission
        self.loop = loop
        self.state = GroundState(mission)
        self.history = GroundHistory()
        self._write = write
        self.archive = archive
        self.t0_unix = t0_unix
        try:
            self.security = SecuritySender.from_keystore(KeyStore.load(Path(keys or DEV_KEYS)), spi, seq=sdls_seq)
        except ProtocolError as exc:
            raise FarsideError(str(exc)) from None
        self.fop = Fop1(fop or FopConfig(vcid=mission.tc_vcid, k=4, t1_s=10.0), self._build_frame)
        self._deframer = TmDeframer(mission.tm_frame_length)
        self._tc_seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._changed: asyncio.Event | None = None
        self._seen_event_seq = 0
        self._last_boot: Any = None
        self.tracks: list[CommandTrack] = []
        self.sent_frames: list[bytes] = []  # TC frames as sent (without the EB90 start)
        self.frame_of_packet: dict[bytes, bytes] = {}  # TC packet -> the frame that carried it
        self.octets_in = 0
        self.octets_out = 0
        if archive is not None:
            archive.append_json(
                KIND_META,
                {"event": "session_start", "url": "farside-loop", "dict_hash": f"{mission.hash:08x}", "spi": spi},
                self.unix_now(),
            )

    # --- clock ------------------------------------------------------------------
    def now(self) -> float:
        return self.loop.time()

    def unix_now(self) -> float:
        return self.t0_unix + self.loop.time()

    @property
    def changed(self) -> asyncio.Event:
        """Set whenever a TM frame arrived (waiters clear it and wait again)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    # --- downlink -----------------------------------------------------------------
    def feed(self, octets: bytes) -> None:
        """TM stream octets from the link (any chunking)."""
        self.octets_in += len(octets)
        t = self.unix_now()
        st = self.state
        for frame in self._deframer.feed(octets):
            if self.archive is not None:
                self.archive.append(KIND_TM, frame, t)
            hk_before = st.hk_count
            st.on_frame(frame, t)
            if st.hk_count != hk_before:
                self.history.hk.append(HkSample(self.now(), dict(st.hk)))
            if st.event_seq != self._seen_event_seq:
                new = [e for e in st.events if e.seq > self._seen_event_seq]
                self._seen_event_seq = st.event_seq
                self.history.events.extend(new)
                for e in new:
                    if e.name == "BOOT" and e.args.get("boot_count") != self._last_boot:
                        self._last_boot = e.args.get("boot_count")  # (a duplicated frame repeats it)
                        self._rover_booted()
            clcw = st.link.clcw
            if clcw is not None:
                self.fop.on_clcw(clcw.to_int(), self.now())
        st.link.frames_bad = self._deframer.counters.frames_bad
        self.pump()
        self.changed.set()

    def _rover_booted(self) -> None:
        # A rebooted rover's FARM starts at V(R) = 0: resynchronise it to our V(S)
        # (Set V(R)), so commanding resumes without an operator.
        self.history.boots += 1
        if self.fop.state != FopState.INITIAL:
            self.fop.initiate_ad_set_vr(self.fop.vs, self.now())

    # --- uplink ---------------------------------------------------------------------
    def pump(self) -> None:
        """Start the AD service once a CLCW was seen; send what FOP-1 has due; re-arm T1."""
        now = self.now()
        fop = self.fop
        if fop.state == FopState.INITIAL and self.state.link.clcw is not None:
            fop.initiate_ad_unlock(now)
        for tx in fop.poll(now):
            self._send_octets(tx.data)
        st = self.state.link
        st.cop_queued = fop.queued_count
        st.cop_sent = fop.sent_count
        st.cop_state = fop.state.value + (f" alert: {fop.alert.value}" if fop.alert else "")
        deadline = fop.next_deadline()
        if deadline is not None and deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self.loop.call_at(max(deadline, now), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self.pump()

    def _send_octets(self, data: bytes) -> None:
        if self.archive is not None:
            self.archive.append(KIND_TC, data[2:], self.unix_now())
        self.sent_frames.append(data[2:])
        self.state.link.tc_frames_sent += 1
        self.octets_out += len(data)
        self._write(data)

    def send_raw(self, frame: bytes) -> None:
        """Put a TC frame (without EB90) on the uplink as is: for attacks and tests."""
        self._send_octets(frame_tc(frame))

    def _build_frame(self, kind: FrameKind, ns: int, payload: bytes) -> bytes:
        m = self.mission
        if kind == FrameKind.AD:
            frame = build_ad_frame(m.scid, m.tc_vcid, ns, payload, security=self.security)
        elif kind == FrameKind.BD:
            frame = build_bd_frame(m.scid, m.tc_vcid, payload, security=self.security)
        else:
            frame = build_bc_frame(m.scid, m.tc_vcid, payload, security=self.security)
            return frame_tc(frame)
        self.frame_of_packet[bytes(payload)] = frame
        return frame_tc(frame)

    # --- commanding -------------------------------------------------------------------
    def build_command(self, name: str, args: dict[str, Any], *, packet: bytes = b"") -> tuple[bytes, tuple[int, int]]:
        """The TC packet of a command (arguments typed) and its request id."""
        cmd = self.mission.command(name)
        data = self.mission.encode_args(cmd["name"], args, packet)
        seq = self._tc_seq
        self._tc_seq = (seq + 1) & 0x3FFF
        try:
            pkt = build_tc_packet(self.mission.tc_apid, seq, cmd["service"], cmd["subservice"], data)
        except ProtocolError as exc:
            raise FarsideError(f"{name}: {exc}") from None
        return pkt, (int.from_bytes(pkt[0:2], "big"), int.from_bytes(pkt[2:4], "big"))

    def send(self, name: str, args: dict[str, Any] | None = None, *, at: int | None = None, bypass: bool = False) -> CommandTrack:
        """Queue a command on COP-1 (Type-AD, or Type-BD with `bypass`); `at` = rover s (TT_INSERT)."""
        args = dict(args or {})
        pkt, rid = self.build_command(name, args)
        label, label_args = name.upper(), args
        if at is not None:
            pkt, rid = self.build_command("TT_INSERT", {"release_s": at}, packet=pkt)
            label, label_args = "TT_INSERT", {"release_s": at, "command": name.upper(), **args}
        now = self.now()
        track = CommandTrack(label, label_args, rid, pkt, self.unix_now())
        self.state.verifications.pop(rid, None)
        track.fop = self.fop.submit_bd(pkt, now) if bypass else self.fop.submit(pkt, now)
        self.tracks.append(track)
        self.pump()
        return track

    def reports(self, track: CommandTrack) -> list[str]:
        """The verification stages received for a command, in order."""
        track.reports = list(self.state.verifications.get(track.request_id, []))
        return [r.stage for r in track.reports]

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.archive is not None:
            self.archive.append_json(KIND_META, {"event": "session_end"}, self.unix_now())
            self.archive.close()
