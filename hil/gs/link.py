"""The ground's end of the link, with no I/O and no clock of its own.

TM in: the octet stream is deframed (ASM), every good frame archived and fed to the
`GroundState` (decode, histories, verification reports), and each CLCW handed to FOP-1.
TC out: command packets encoded by the dictionary (TT_INSERT wrapping for `at`), queued
on FOP-1, framed with SDLS authentication (`_build_frame`), archived as sent.

SDLS: the key file comes from the one key setting (`hil.gs.keys.resolve_keys`); the ARSN
starts above everything any ground process reserved with that key (`hil.gs.arsn`) and is
raised, never lowered, to what the rover reports (SA_STATUS, HK `sa_arsn`) + 1. A BC Set V(R)
still waiting when the ARSN jumps (the rover rebooted and restored a higher mark) is rebuilt
with a fresh ARSN, so COP-1 resynchronises without an operator. From ARSN 2**32 - 2**16 the
link warns (rekey: `farside keys rotate`); the last `REKEY_RESERVE` ARSNs are kept for
KEY_OTAR and SA_REKEY.

Gaps: the state's gap tracker (hil.gs.gaps) finds the TM sequence counts the link lost;
after each received chunk the link asks the rover's packet store for the next missing range
(TM_RETRIEVE, one at a time, not listed among the operator's commands) and closes the
request when its TM 1/7 (or a failure, or the tracker's timeout) arrives. The request goes
Type-BD: it must not wait behind the operator's queue while the store overwrites what it
asks for, and asking twice is harmless (the copies are duplicates); the tracker repeats it.

Two drivers subclass it and differ only in what drives them: `hil.gs.session.Session`
(a link thread on the wall clock) and `hil.mission.ground.LoopGround` (an asyncio loop's
clock, virtual or real). They give `clock()` (COP-1 timers), `unix_now()` (archive
stamps) and move the octets.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import FarsideError
from hil.gs.archive import KIND_META, KIND_TC, KIND_TM, ArchiveWriter
from hil.gs.arsn import ArsnLedger
from hil.gs.keys import DEV_KEYS, KeySetting, load_store, resolve_keys
from hil.gs.mission import Mission, command_text
from hil.gs.state import GroundState, Verification
from protocols.cop1 import CommandRecord, Fop1, FopConfig, FopState, FrameKind
from protocols.errors import AuthError, ProtocolError
from protocols.pus import build_tc_packet
from protocols.sdls import (
    MAX_SEQ,
    REKEY_RESERVE,
    KeyStore,
    SaConfig,
    SecuritySender,
    open_tm,
    unwrap_key,
)
from protocols.stream import TmDeframer, frame_tc
from protocols.tc_frame import build_ad_frame, build_bc_frame, build_bd_frame

__all__ = ["DEV_KEYS", "CommandTrack", "GroundLink"]
REKEY_COMMANDS = ("KEY_OTAR", "SA_REKEY")

RequestId = tuple[int, int]  # (TC packet id, TC sequence control): what TM 1/x reports quote
STAGE_ORDER = {"accepted": 1, "started": 2, "completed": 3}  # TM 1/1, 1/3, 1/7
FAILURE_STAGES = ("rejected", "start_failed", "completion_failed")  # TM 1/2, 1/4, 1/8


@dataclass
class CommandTrack:
    """One command sent: its request id and what the rover said."""

    name: str
    args: dict[str, Any]
    request_id: RequestId
    packet: bytes
    sent_at: float
    fop: CommandRecord | None = None
    reports: list[Verification] = field(default_factory=list)
    label: str = ""  # the command as the operator reads it (command_text), when made with the dictionary

    def describe(self) -> str:
        return self.label or command_text(self.name, self.args)

    def failure(self) -> Verification | None:
        """The failure report among those received (TM 1/2, 1/4 or 1/8), if any."""
        return next((r for r in self.reports if r.stage in FAILURE_STAGES), None)

    def reached(self, until: str) -> bool:
        """Whether a report of stage `until` (accepted, started, completed) or later arrived."""
        return max((STAGE_ORDER.get(r.stage, 0) for r in self.reports), default=0) >= STAGE_ORDER[until]


class GroundLink:
    """Frame handling shared by the ground's drivers (see the module docstring)."""

    keep_frames = False  # remember the frame that carried each packet (frame_of_packet)
    retrieve_gaps = True  # ask the packet store for lost TM (TM_RETRIEVE)

    def __init__(
        self,
        mission: Mission,
        *,
        keys: Path | str | None = None,
        spi: int = 1,
        sdls_seq: int = 1,
        fop: FopConfig | None = None,
        t1_s: float = 10.0,
        tc_seq: int = 0,
    ) -> None:
        self.mission = mission
        self.state = GroundState(mission)
        self.spi = spi
        self.key_setting: KeySetting = resolve_keys(keys)
        self.keys: KeyStore = load_store(self.key_setting.path)
        sa = self.keys.sa(spi)
        if sa is None:
            raise FarsideError(f"key file {self.key_setting.path} has no SA for SPI {spi}")
        self.security = self._sender(sa, sdls_seq)
        self.old_keys: list[SaConfig] = []  # keys replaced by a rekey, kept for TM in flight
        self.loaded_keys: dict[int, bytes] = {}  # key_id -> key sent by KEY_OTAR (unwrapped here)
        self._rekeys: list[tuple[CommandTrack, int, int]] = []  # SA_REKEY sent: (track, spi, key_id)
        self._sa_reports_seen = 0
        self._hk_trusted = True  # HK sa_arsn speaks of our key (False just after a rekey)
        if self.keys.tm_spi:
            self.state.tm_security = self._open_tm
        self.archive: ArchiveWriter | None = None
        self.fop = Fop1(fop or FopConfig(vcid=mission.tc_vcid, k=4, t1_s=t1_s), self._build_frame)
        # a TM_RETRIEVE unanswered for FOP-1's T1 of a live link is asked again, as many times
        # as FOP-1 would transmit a frame (both sized for the link)
        self.state.gaps.answer_s = self.fop.config.t1_s
        self.state.gaps.max_attempts = max(4, self.fop.config.transmission_limit)
        self._deframer = TmDeframer(mission.tm_frame_length)
        self._tc_seq = tc_seq & 0x3FFF
        self._lock = threading.RLock()  # FOP-1 and the TC sequence count (link thread vs callers)
        self.tracks: list[CommandTrack] = []  # in the order sent
        self.frame_of_packet: dict[bytes, bytes] = {}  # TC packet -> the frame that carried it

    @staticmethod
    def _sender(sa: SaConfig, seq: int = 1) -> SecuritySender:
        ledger = ArsnLedger.for_sa(sa)
        return SecuritySender(sa, seq=max(seq, ledger.next_free()), reserve=ledger.reserve)

    # --- what a driver gives ---------------------------------------------------------
    def clock(self) -> float:
        """Seconds on the clock of COP-1's timers."""
        raise NotImplementedError

    def unix_now(self) -> float:
        """UNIX time for archive records."""
        raise NotImplementedError

    def _on_frame(self) -> None:
        """Called after each good TM frame was fed to the state."""

    def _on_packets(self, packets: list[bytes], t: float) -> None:
        """Called with the TM packets a good frame completed (already fed to the state)."""

    def start_archive(self, archive: ArchiveWriter | None, url: str) -> None:
        self.archive = archive
        if archive is not None:
            archive.append_json(
                KIND_META,
                {"event": "session_start", "url": url, "dict_hash": f"{self.mission.hash:08x}", "spi": self.spi},
                self.unix_now(),
            )

    def end_archive(self) -> None:
        if self.archive is not None:
            self.archive.append_json(KIND_META, {"event": "session_end"}, self.unix_now())
            self.archive.close()

    # --- downlink ------------------------------------------------------------------------
    def receive(self, octets: bytes, t: float) -> None:
        """TM stream octets (any chunking) received at UNIX time `t`."""
        st = self.state
        for frame in self._deframer.feed(octets):
            if self.archive is not None:
                self.archive.append(KIND_TM, frame, t)
            packets = st.on_frame(frame, t)
            if packets:
                self._on_packets(packets, t)
            if st.sa_reports != self._sa_reports_seen:
                self._sa_reports_seen = st.sa_reports
                self._resync_security()
            if self._rekeys:
                self._check_rekeys()
            self._on_frame()
            clcw = st.link.clcw
            if clcw is not None:
                with self._lock:
                    self.fop.on_clcw(clcw.to_int(), self.clock())
        with st.cond:
            st.link.frames_bad = self._deframer.counters.frames_bad
        if self.retrieve_gaps:
            self._retrieve()

    def _retrieve(self) -> None:
        """Close the pending TM_RETRIEVE when the rover answered (or it timed out); request the
        next missing range."""
        st, gaps = self.state, self.state.gaps
        now = self.unix_now()
        with st.cond:
            if st.link.last_contact is not None:
                gaps.heard(st.link.last_contact)
            r = gaps.pending
            if r is not None and r.request_id is not None:
                stages = {v.stage for v in st.verifications.get(r.request_id, [])}
                if "completed" in stages or r.rover_sent is not None:  # TM 1/7, or the 15/10 before it
                    gaps.finished(True)
                elif stages & set(FAILURE_STAGES) or gaps.expired(now):
                    gaps.finished(False)
                if gaps.pending is None:
                    st.verifications.pop(r.request_id, None)
            nxt = gaps.due(now)
        if nxt is None or "TM_RETRIEVE" not in self.mission.commands_by_name:
            return
        pkt, rid = self.build_command("TM_RETRIEVE", {"apid": nxt.apid, "first_seq": nxt.first, "count": nxt.count})
        with self._lock:
            with st.cond:
                st.verifications.pop(rid, None)
                gaps.sent(nxt, rid)
            self.fop.submit_bd(pkt, self.clock())

    def reset_deframer(self) -> None:
        """Forget a partial frame (the stream was interrupted)."""
        self._deframer = TmDeframer(self.mission.tm_frame_length)

    # --- SDLS ------------------------------------------------------------------------------
    def _resync_security(self) -> None:
        """Raise the next ARSN above what the rover reported (never lower it); rebuild a
        waiting Set V(R) whose ARSN the rover would now refuse."""
        st, sender = self.state, self.security
        with st.cond:
            status = st.sa_status.get(sender.spi)
            hk_arsn = st.hk_raw.get("sa_arsn")
        reported = []
        if status is not None:
            mark, key_id = status
            if key_id == sender.sa.key_id:
                reported.append(mark)
            else:
                self._adopt_key(key_id)
                return
        # HK does not name the key: after a rekey, an HK report made before the switch may
        # still arrive; sa_arsn is trusted again once a report is below our next ARSN
        if hk_arsn is not None:
            if not self._hk_trusted and int(hk_arsn) < sender.seq:
                self._hk_trusted = True
            if self._hk_trusted:
                reported.append(int(hk_arsn))
        if not reported:
            return
        with self._lock:
            before = sender.seq
            sender.advance_to(max(reported) + 1)
            if sender.seq != before and self.fop.state == FopState.INIT_BC:
                self.fop.initiate_ad_set_vr(self.fop.vs, self.clock())

    def _open_tm(self, header: bytes, field_octets: bytes) -> bytes:
        """A secured TM frame's plain data field (the TM SA's current key, then the keys a
        rekey replaced: frames in flight); AuthError if none verifies."""
        try:
            return open_tm(self.keys, header, field_octets)[1]
        except AuthError as first:
            for sa in reversed(self.old_keys):
                try:
                    return open_tm(KeyStore(sas={sa.spi: sa}), header, field_octets)[1]
                except AuthError:
                    continue
            raise first

    def _adopt_key(self, key_id: int) -> None:
        """The rover reports another key_id on our SPI (SA_STATUS after a rekey): switch if
        we know that key (loaded by our KEY_OTAR, or in the key file)."""
        key = self.loaded_keys.get(key_id)
        if key is None:
            sa = self.keys.sa(self.spi)
            key = sa.key if sa is not None and sa.key_id == key_id else None
        if key is not None and key_id != self.security.sa.key_id:
            self.rekey(SaConfig(self.spi, self.security.suite, key, key_id))

    def _note_key_command(self, label: str, args: dict[str, Any], track: CommandTrack) -> None:
        """KEY_OTAR: remember the key it carries (unwrapped with the master key); SA_REKEY on
        our SPI: switch once its completion report arrives."""
        if label == "KEY_OTAR" and self.keys.master is not None:
            from protocols.dictionary import fixed_bytes

            cmd = self.mission.command("KEY_OTAR")
            octets = {a.name: fixed_bytes("KEY_OTAR", a, args[a.name]) for a in cmd.args if a.type == "bytes"}
            key = unwrap_key(self.keys.master, int(args["key_id"]), octets["iv"], octets["wrapped"], octets["mac"])
            if key is not None:
                self.loaded_keys[int(args["key_id"])] = key
        elif label == "SA_REKEY" and int(args["spi"]) == self.spi:
            self._rekeys.append((track, int(args["spi"]), int(args["key_id"])))

    def _check_rekeys(self) -> None:
        for item in list(self._rekeys):
            track, _, key_id = item
            reports = self.verifications(track)
            if track.failure() is not None:
                self._rekeys.remove(item)
            elif any(r.stage == "completed" for r in reports):
                self._rekeys.remove(item)
                self._adopt_key(key_id)

    def rekey(self, sa: SaConfig) -> None:
        """Switch the SA to a new key (after SA_REKEY completed): ARSN from 1 (or above what
        was reserved with that key); the old key is kept for TM still in flight."""
        with self._lock:
            self.old_keys.append(self.security.sa)
            self.keys.sas[sa.spi] = sa
            self.security = self._sender(sa)
            self._hk_trusted = False
            if self.fop.state != FopState.INITIAL:
                # frames still queued were built with the old key: resynchronise FARM-1
                self.fop.initiate_ad_set_vr(self.fop.vs, self.clock())

    def check_arsn(self, label: str) -> None:
        """Refuse a command the ARSN cannot carry: past 2**32 - 1, or into the last
        REKEY_RESERVE numbers unless it is a rekey; warn near exhaustion."""
        seq = self.security.seq + self.fop.queued_count + self.fop.sent_count
        if label in REKEY_COMMANDS:
            if seq > MAX_SEQ:
                raise FarsideError(f"{label}: SPI {self.spi} has no sequence numbers left")
            return
        if seq > MAX_SEQ - REKEY_RESERVE:
            raise FarsideError(
                f"{label}: SPI {self.spi} sequence number {seq} is at the end of 2**32; "
                f"rekey first (farside keys rotate)"
            )
        if self.security.exhausting:
            with self.state.cond:
                self.state.link.note = (
                    f"SPI {self.spi} ARSN {self.security.seq}: fewer than 65536 left, rekey (farside keys rotate)"
                )

    # --- uplink ----------------------------------------------------------------------------
    def poll_fop(self, ad: bool = True) -> list[bytes]:
        """Start the AD service once a CLCW was seen (if `ad`); the TC octets FOP-1 has due."""
        with self._lock:
            now = self.clock()
            fop = self.fop
            if ad and fop.state == FopState.INITIAL and self.state.link.clcw is not None:
                fop.initiate_ad_unlock(now)
            txs = fop.poll(now)
            with self.state.cond:
                link = self.state.link
                link.cop_queued = fop.queued_count
                link.cop_sent = fop.sent_count
                link.cop_state = fop.state.value + (f" alert: {fop.alert.value}" if fop.alert else "")
        return [tx.data for tx in txs]

    def record_tc(self, data: bytes) -> None:
        """One TC frame put on the link (`data` with its EB90 start): archive and count it."""
        if self.archive is not None:
            self.archive.append(KIND_TC, data[2:], self.unix_now())
        with self.state.cond:
            self.state.link.tc_frames_sent += 1

    def _build_frame(self, kind: FrameKind, ns: int, payload: bytes) -> bytes:
        m = self.mission
        if kind == FrameKind.AD:
            frame = build_ad_frame(m.scid, m.tc_vcid, ns, payload, security=self.security)
        elif kind == FrameKind.BD:
            frame = build_bd_frame(m.scid, m.tc_vcid, payload, security=self.security)
        else:
            return frame_tc(build_bc_frame(m.scid, m.tc_vcid, payload, security=self.security))
        if self.keep_frames:
            self.frame_of_packet[bytes(payload)] = frame
        return frame_tc(frame)

    # --- commanding --------------------------------------------------------------------------
    def build_command(self, name: str, args: dict[str, Any], *, packet: bytes = b"") -> tuple[bytes, RequestId]:
        """The TC packet of a command (arguments typed; `packet` for a 'tc' argument), encoded by
        the dictionary, and its request id."""
        service, subservice, data = self.mission.encode_command(name, args, packet)
        with self._lock:
            seq = self._tc_seq
            self._tc_seq = (seq + 1) & 0x3FFF
        try:
            pkt = build_tc_packet(self.mission.tc_apid, seq, service, subservice, data)
        except ProtocolError as exc:
            raise FarsideError(f"{name}: {exc}") from None
        return pkt, (int.from_bytes(pkt[0:2], "big"), int.from_bytes(pkt[2:4], "big"))

    def command_packet(self, name: str, args: dict[str, Any], at: int | None = None) -> tuple[bytes, RequestId]:
        """A command's packet, wrapped in TT_INSERT when it is to be released at `at` (rover s)."""
        pkt, rid = self.build_command(name, args)
        if at is None:
            return pkt, rid
        return self.build_command("TT_INSERT", {"release_s": at}, packet=pkt)

    def submit(
        self, label: str, label_args: dict[str, Any], pkt: bytes, rid: RequestId, bypass: bool = False
    ) -> CommandTrack:
        """Queue a packet on COP-1 (Type-AD, or Type-BD with `bypass`) and track it as `label`;
        old reports of a reused request id are forgotten."""
        self.check_arsn(label)
        track = CommandTrack(label, label_args, rid, pkt, self.unix_now(), label=command_text(label, label_args, self.mission))
        with self.state.cond:
            self.state.verifications.pop(rid, None)
        with self._lock:
            now = self.clock()
            track.fop = self.fop.submit_bd(pkt, now) if bypass else self.fop.submit(pkt, now)
            self.tracks.append(track)
            if label in REKEY_COMMANDS:
                self._note_key_command(label, label_args, track)
        return track

    def failure_name(self, report: Verification) -> str:
        """The dictionary's name of a failure report's code."""
        return self.mission.failure_name(report.failure_code) if report.failure_code is not None else "?"

    def failure_text(self, track: CommandTrack, report: Verification) -> str:
        """One line: the command and how it failed (`DRIVE_DISTANCE ...: start failed (NOT_IN_MODE)`)."""
        return f"{track.describe()}: {report.stage.replace('_', ' ')} ({self.failure_name(report)})"

    def verifications(self, track: CommandTrack) -> list[Verification]:
        """The TM 1/x reports received for a command so far, in order (also kept in the track)."""
        with self.state.cond:
            track.reports = list(self.state.verifications.get(track.request_id, []))
            return track.reports
