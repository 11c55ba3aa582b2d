"""The ground station on an asyncio loop: the gs pieces, driven by the loop's clock.

`hil.gs.session.Session` runs its link on a thread with the wall clock, which a
virtual-time loop cannot drive. `LoopGround` is the same `hil.gs.link.GroundLink` —
deframing, decoding into `GroundState`, FOP-1, SDLS, dictionary-encoded commands, the
session archive — but takes its octets from a callback and keeps every timer on the
running loop, so the same code runs in virtual time (hil/vclock.py) and in real time.
It adds the per-test histories and resynchronises COP-1 when the rover reboots; its
`commands` is the ground service's own command tracking (hil.gs.commandlog), so the
harness and `farside mission` see each command's stages as `gs send` and the console do.

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

from hil.gs.archive import ArchiveWriter
from hil.gs.commandlog import CommandLog
from hil.gs.link import CommandTrack, GroundLink
from hil.gs.mission import Mission
from hil.gs.state import EventRecord
from protocols.cop1 import FopConfig, FopState
from protocols.stream import frame_tc

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


class LoopGround(GroundLink):
    """Ground station on the running asyncio loop (see the module docstring)."""

    keep_frames = True  # tests replay and forge what an eavesdropper captured

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
        self.loop = loop
        self.t0_unix = t0_unix
        super().__init__(mission, keys=keys, spi=spi, sdls_seq=sdls_seq, fop=fop, t1_s=10.0)
        self.history = GroundHistory()
        self._write = write
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._changed: asyncio.Event | None = None
        self._seen_event_seq = 0
        self._seen_hk_count = 0
        self._last_boot: Any = None
        # the service's command tracking (QUEUED .. COMPLETED / FAILED / UNKNOWN), in virtual time
        self.commands = CommandLog(self)
        self.sent_frames: list[bytes] = []  # TC frames as sent (without the EB90 start)
        self.octets_in = 0
        self.octets_out = 0
        self.start_archive(archive, "farside-loop")

    # --- clock ------------------------------------------------------------------
    def now(self) -> float:
        return self.loop.time()

    clock = now

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
        self.receive(octets, self.unix_now())
        self.pump()
        self.changed.set()

    def _on_frame(self) -> None:
        st = self.state
        if self.commands.pending():
            self.commands.update()
        if st.hk_count != self._seen_hk_count:
            self._seen_hk_count = st.hk_count
            self.history.hk.append(HkSample(self.now(), dict(st.hk)))
        if self._last_boot is None and "boot_count" in st.hk_raw:
            # the boot the rover was in when we first heard it: its BOOT event, retrieved from
            # the packet store afterwards, is no reboot
            self._last_boot = st.hk_raw["boot_count"]
        if st.event_seq != self._seen_event_seq:
            new = [e for e in st.events if e.seq > self._seen_event_seq]
            self._seen_event_seq = st.event_seq
            self.history.events.extend(new)
            for e in new:
                if e.name == "BOOT" and e.args.get("boot_count") != self._last_boot:
                    self._last_boot = e.args.get("boot_count")  # (a duplicated frame repeats it)
                    self._rover_booted()

    def _rover_booted(self) -> None:
        # A rebooted rover's FARM starts at V(R) = 0: resynchronise it to our V(S)
        # (Set V(R)), so commanding resumes without an operator.
        self.history.boots += 1
        if self.fop.state != FopState.INITIAL:
            self.fop.initiate_ad_set_vr(self.fop.vs, self.now())

    # --- uplink ---------------------------------------------------------------------
    def pump(self) -> None:
        """Start the AD service once a CLCW was seen; send what FOP-1 has due; re-arm T1."""
        for data in self.poll_fop():
            self._send_octets(data)
        deadline = self.fop.next_deadline()
        if deadline is not None and deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self.loop.call_at(max(deadline, self.now()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self.pump()

    def _send_octets(self, data: bytes) -> None:
        self.record_tc(data)
        self.sent_frames.append(data[2:])
        self.octets_out += len(data)
        self._write(data)

    def send_raw(self, frame: bytes) -> None:
        """Put a TC frame (without EB90) on the uplink as is: for attacks and tests."""
        self._send_octets(frame_tc(frame))

    # --- commanding -------------------------------------------------------------------
    def send(self, name: str, args: dict[str, Any] | None = None, *, at: int | None = None, bypass: bool = False) -> CommandTrack:
        """Queue a command on COP-1 (Type-AD, or Type-BD with `bypass`); `at` = rover s (TT_INSERT)."""
        args = dict(args or {})
        pkt, rid = self.command_packet(name, args, at)
        label, label_args = name.upper(), args
        if at is not None:
            label, label_args = "TT_INSERT", {"release_s": at, "command": name.upper(), **args}
        entry = self.commands.new(label, label_args, "harness", at=at)
        track = self.submit(label, label_args, pkt, rid, bypass=bypass)
        self.commands.attach(entry, track)
        self.pump()
        self.commands.update()
        return track

    def reports(self, track: CommandTrack) -> list[str]:
        """The verification stages received for a command, in order."""
        return [r.stage for r in self.verifications(track)]

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.end_archive()
