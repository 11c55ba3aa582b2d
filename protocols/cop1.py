"""FOP-1: the ground's half of COP-1 (CCSDS 232.1-B-2, Frame Operation Procedure).

Sans-I/O: no sockets, no clock. The caller passes the time (seconds, any monotonic
origin) into every call and sends whatever :meth:`Fop1.poll` returns:

    fop = Fop1(FopConfig(vcid=1, k=3, t1_s=8.0), frame_builder=build)
    fop.initiate_ad(now)                 # or initiate_ad_unlock / initiate_ad_set_vr
    rec = fop.submit(packet, now)        # a Type-AD command, state QUEUED
    for tx in fop.poll(now):             # frames due now (new ones and retransmissions)
        link.write(tx.data)
    fop.on_clcw(clcw_word, now)          # from each TM frame's OCF
    deadline = fop.next_deadline()       # call poll() again no later than this

``frame_builder(kind, ns, payload) -> bytes`` turns a frame's payload into the bytes
on the wire (SDLS security + TC frame + framing). FOP calls it once per new frame and
keeps the result, so a retransmission resends identical bytes (same SDLS sequence
number and MAC: CONTRACT "Security"). Without a builder, ``data`` is the payload.

Each command has a state the ground shows: QUEUED (waiting for room in the window),
SENT (on the link, unacknowledged), ACKNOWLEDGED (FARM-1 reported N(R) past it),
VERIFIED (the rover's PUS service 1 said so: the ground calls :meth:`mark_verified`),
UNKNOWN, or FAILED with a reason.

Alerts (transmission limit, lockout, an N(R) outside the window, a failed initiation) and a
re-initiation purge the sent queue, as the standard says; but a frame that was transmitted may
have reached FARM-1 (its CLCW lost, or held by a relay outage), so its command becomes UNKNOWN,
not FAILED: only the rover's reports (or a late CLCW) say whether it ran. Commands never
transmitted stay on the wait queue and go out once the AD service runs again. Only the
operator's :meth:`terminate` fails them, as "never sent" (FAILED, `sent` false), clearly apart
from the transmitted ones (UNKNOWN).

The FOP-1 states of the standard map onto :class:`FopState`: ACTIVE covers S1-S3
(retransmission and Wait are flags here), INIT_CLCW is S4, INIT_BC is S5, INITIAL is S6.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from protocols.errors import ProtocolError


class FrameKind(enum.Enum):
    """Type-AD (sequence-controlled), Type-BD (bypass data) and Type-BC (control)."""

    AD = "AD"
    BD = "BD"
    BC = "BC"


class CommandState(enum.Enum):
    QUEUED = "QUEUED"
    SENT = "SENT"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    VERIFIED = "VERIFIED"
    UNKNOWN = "UNKNOWN"  # transmitted, never acknowledged: it may have reached the rover
    FAILED = "FAILED"


class FailReason(enum.Enum):
    TRANSMISSION_LIMIT = "transmission limit reached without acknowledgement"
    LOCKOUT = "FARM-1 entered Lockout"
    TERMINATED = "AD service terminated by the operator"
    INVALID_NR = "CLCW reported an N(R) outside the sent frames"
    INIT_FAILED = "AD initiation was not confirmed"
    VERIFICATION = "the rover reported a verification failure"


class FopState(enum.Enum):
    ACTIVE = "ACTIVE"  # S1..S3
    INIT_CLCW = "INIT_CLCW"  # S4: initialising, waiting for a matching CLCW
    INIT_BC = "INIT_BC"  # S5: initialising with a BC frame (Unlock / Set V(R))
    INITIAL = "INITIAL"  # S6: AD service not running


class FopError(ProtocolError):
    """A FOP-1 directive that is not valid in the current state."""


# BC control commands (232.0-B section 4.1.3.3)
BC_UNLOCK = b"\x00"


def bc_set_vr(vr: int) -> bytes:
    """The Set V(R) control command, `82 00 NN`."""
    return bytes((0x82, 0x00, vr & 0xFF))


@dataclass(frozen=True)
class Clcw:
    """The fields of a CLCW that COP-1 uses (CCSDS 232.0-B section 4.2)."""

    vcid: int
    lockout: bool
    wait: bool
    retransmit: bool
    farm_b: int
    nr: int
    no_rf: bool = False
    no_bit_lock: bool = False
    status: int = 0
    cop: int = 1

    @classmethod
    def from_word(cls, word: int) -> Clcw:
        if not 0 <= word <= 0xFFFFFFFF or word >> 31:
            raise ProtocolError(f"expected a CLCW (type bit 0, 32 bits), got 0x{word:x}")
        return cls(
            vcid=(word >> 18) & 0x3F,
            lockout=bool(word >> 13 & 1),
            wait=bool(word >> 12 & 1),
            retransmit=bool(word >> 11 & 1),
            farm_b=(word >> 9) & 3,
            nr=word & 0xFF,
            no_rf=bool(word >> 15 & 1),
            no_bit_lock=bool(word >> 14 & 1),
            status=(word >> 26) & 7,
            cop=(word >> 24) & 3,
        )

    def to_word(self) -> int:
        return (
            (self.status << 26)
            | (self.cop << 24)
            | (self.vcid << 18)
            | (int(self.no_rf) << 15)
            | (int(self.no_bit_lock) << 14)
            | (int(self.lockout) << 13)
            | (int(self.wait) << 12)
            | (int(self.retransmit) << 11)
            | (self.farm_b << 9)
            | self.nr
        )


@dataclass
class CommandRecord:
    """One command's life on the link, as the ground station shows it."""

    id: int
    kind: FrameKind
    payload: bytes
    state: CommandState = CommandState.QUEUED
    ns: int | None = None
    transmissions: int = 0
    reason: FailReason | None = None
    detail: str = ""
    queued_at: float = 0.0
    sent_at: float | None = None
    acknowledged_at: float | None = None
    verified_at: float | None = None
    failed_at: float | None = None

    @property
    def done(self) -> bool:
        return self.state in (
            CommandState.ACKNOWLEDGED, CommandState.VERIFIED, CommandState.FAILED, CommandState.UNKNOWN
        )

    @property
    def sent(self) -> bool:
        """Whether a frame of it was ever transmitted (so it may have reached the rover)."""
        return self.transmissions > 0


@dataclass(frozen=True)
class Transmission:
    """A frame to put on the link now."""

    kind: FrameKind
    ns: int
    data: bytes
    retransmission: bool
    command: CommandRecord | None


@dataclass
class FopConfig:
    """FOP-1 managed parameters (232.1-B-2 section 5.1.8)."""

    vcid: int = 1
    k: int = 4  # FOP sliding window width: at most K unacknowledged AD frames
    t1_s: float = 10.0  # timer initial value
    transmission_limit: int = 5  # transmissions of a frame before the alert
    bc_limit: int = 5  # transmissions of a BC frame before the initiation fails

    def __post_init__(self) -> None:
        if not 1 <= self.k <= 255:
            raise ProtocolError(f"FOP window K must be 1..255, got {self.k}")
        if self.t1_s <= 0:
            raise ProtocolError(f"timer T1 must be > 0 s, got {self.t1_s}")
        if self.transmission_limit < 1 or self.bc_limit < 1:
            raise ProtocolError("transmission limits must be >= 1")


@dataclass
class _Sent:
    record: CommandRecord
    ns: int
    data: bytes
    to_retransmit: bool = False


@dataclass
class FopStats:
    ad_sent: int = 0
    ad_retransmitted: int = 0
    bd_sent: int = 0
    bc_sent: int = 0
    acknowledged: int = 0
    alerts: int = 0
    clcws: int = 0


FrameBuilder = Callable[[FrameKind, int, bytes], bytes]


class Fop1:
    """FOP-1 for one TC virtual channel. See the module docstring for the call pattern."""

    def __init__(
        self,
        config: FopConfig | None = None,
        frame_builder: FrameBuilder | None = None,
        on_change: Callable[[CommandRecord], None] | None = None,
    ) -> None:
        self.config = config or FopConfig()
        self._build: FrameBuilder = frame_builder or (lambda kind, ns, payload: bytes(payload))
        self._on_change = on_change
        self.state = FopState.INITIAL
        self.vs = 0  # V(S): N(S) of the next new AD frame
        self.nnr = 0  # NN(R): the last N(R) acknowledged
        self.records: list[CommandRecord] = []
        self.stats = FopStats()
        self.last_clcw: Clcw | None = None
        self.alert: FailReason | None = None
        self._wait_queue: deque[CommandRecord] = deque()
        self._bd_queue: deque[CommandRecord] = deque()
        self._sent: deque[_Sent] = deque()
        self._tx_count = 0  # transmissions of the oldest frame in the sent queue
        self._t1_deadline: float | None = None
        self._retransmitting = False  # S2: a go-back-N pass is underway
        self._wait = False  # S3: FARM reported Wait
        self._bc: _Sent | None = None  # the BC frame of an initiation
        self._bc_pending = False
        self._bc_farm_b: int | None = None
        self._init_vs: int | None = None
        self._after_unlock_set_vr = False
        # commands failed by an alert that FARM may still have accepted: a later CLCW
        # (before the next initiation) can still acknowledge them
        self._limbo: list[_Sent] = []
        self._next_id = 1

    # ------------------------------------------------------------------ directives
    def submit(self, payload: bytes, now: float) -> CommandRecord:
        """Queue a Type-AD command (sent when the AD service is running and K allows)."""
        rec = self._new_record(FrameKind.AD, payload, now)
        self._wait_queue.append(rec)
        return rec

    def submit_bd(self, payload: bytes, now: float) -> CommandRecord:
        """Queue a Type-BD (bypass) command: sent on the next poll, once, in any state."""
        rec = self._new_record(FrameKind.BD, payload, now)
        self._bd_queue.append(rec)
        return rec

    def initiate_ad(self, now: float, check_clcw: bool = False) -> None:
        """Start the AD service. Without a CLCW check FOP assumes FARM's V(R) == V(S)."""
        self._initialise(now)
        self._limbo.clear()
        if check_clcw:
            self.state = FopState.INIT_CLCW
            self._tx_count = 1
            self._t1_deadline = now + self.config.t1_s
        else:
            self.state = FopState.ACTIVE

    def initiate_ad_unlock(self, now: float) -> None:
        """Start the AD service by sending BC Unlock (the recovery from Lockout).

        Once FARM reports no Lockout, FOP adopts FARM's V(R) unless frames may still
        be in flight, in which case it also sends Set V(R) = V(S) so that none of those
        stale frames can be accepted.
        """
        self._initialise(now)
        self._start_bc(BC_UNLOCK, now)
        self._after_unlock_set_vr = True

    def initiate_ad_set_vr(self, vr: int, now: float) -> None:
        """Start the AD service by sending BC Set V(R) = `vr`; V(S) becomes `vr`."""
        self._initialise(now)
        self.vs = vr & 0xFF
        self.nnr = self.vs
        self._start_bc(bc_set_vr(self.vs), now)
        self._after_unlock_set_vr = False

    def terminate(self, now: float) -> None:
        """Stop the AD service (the operator's directive): unacknowledged AD commands become
        UNKNOWN (they may have reached the rover), queued ones FAIL as never sent."""
        self._fail_all(FailReason.TERMINATED, now, purge_queue=True)
        self.state = FopState.INITIAL

    def mark_verified(self, record: CommandRecord, now: float, ok: bool = True) -> None:
        """The rover's verification reports (PUS service 1) for `record` arrived."""
        if ok:
            record.state = CommandState.VERIFIED
            record.verified_at = now
        else:
            record.state = CommandState.FAILED
            record.reason = FailReason.VERIFICATION
            record.failed_at = now
        self._changed(record)

    # ------------------------------------------------------------------ inputs
    def on_clcw(self, clcw: int | Clcw, now: float) -> None:
        """Process a CLCW from a TM frame's OCF."""
        c = Clcw.from_word(clcw) if isinstance(clcw, int) else clcw
        if c.vcid != self.config.vcid or c.cop != 1:
            return
        self.stats.clcws += 1
        self.last_clcw = c
        if self.state == FopState.INITIAL:
            self._late_ack(c.nr, now)
            return
        if self.state == FopState.INIT_CLCW:
            if not c.lockout and not c.wait and not c.retransmit and c.nr == self.vs:
                self._go_active()
            return
        if self.state == FopState.INIT_BC:
            self._init_bc_clcw(c, now)
            return
        # ACTIVE
        # acknowledge first (so what FARM took before locking out is reported exactly),
        # then Lockout, then an N(R) outside the sent frames (e.g. the rover rebooted)
        acked = self._acknowledge(c.nr, now)
        if c.lockout:
            self._raise_alert(FailReason.LOCKOUT, now, f"FARM V(R)={c.nr}")
            return
        if acked < 0:
            self._raise_alert(FailReason.INVALID_NR, now, f"N(R)={c.nr} V(S)={self.vs} NN(R)={self.nnr}")
            return
        self._wait = c.wait
        if acked:
            self._tx_count = 1 if self._sent else 0
            self._retransmitting = False
            self._t1_deadline = now + self.config.t1_s if self._sent else None
        if c.retransmit and self._sent and not c.wait:
            if acked or not self._retransmitting:
                self._start_retransmission(now)

    # ------------------------------------------------------------------ outputs
    def poll(self, now: float) -> list[Transmission]:
        """Run timers and return the frames to send now, in order."""
        self._check_timer(now)
        out: list[Transmission] = []
        while self._bd_queue:
            rec = self._bd_queue.popleft()
            data = self._build(FrameKind.BD, 0, rec.payload)
            rec.state = CommandState.SENT
            rec.transmissions = 1
            rec.sent_at = now
            self.stats.bd_sent += 1
            self._changed(rec)
            out.append(Transmission(FrameKind.BD, 0, data, False, rec))
        if self._bc_pending and self._bc is not None:
            self._bc_pending = False
            self.stats.bc_sent += 1
            out.append(Transmission(FrameKind.BC, 0, self._bc.data, self._tx_count > 1, None))
        if self.state != FopState.ACTIVE or self._wait:
            return out
        for s in self._sent:
            if s.to_retransmit:
                s.to_retransmit = False
                s.record.transmissions += 1
                self.stats.ad_retransmitted += 1
                out.append(Transmission(FrameKind.AD, s.ns, s.data, True, s.record))
        while self._wait_queue and len(self._sent) < self.config.k:
            rec = self._wait_queue.popleft()
            ns = self.vs
            self.vs = (self.vs + 1) & 0xFF
            data = self._build(FrameKind.AD, ns, rec.payload)
            s = _Sent(rec, ns, data)
            self._sent.append(s)
            rec.ns = ns
            rec.state = CommandState.SENT
            rec.transmissions = 1
            rec.sent_at = now
            self.stats.ad_sent += 1
            self._changed(rec)
            if self._t1_deadline is None:
                self._t1_deadline = now + self.config.t1_s
                self._tx_count = 1
            out.append(Transmission(FrameKind.AD, ns, data, False, rec))
        return out

    def next_deadline(self) -> float | None:
        """When poll() must next be called for a timer (None: only on new input)."""
        if self._bd_queue or self._bc_pending:
            return -math.inf
        return self._t1_deadline

    @property
    def sent_count(self) -> int:
        return len(self._sent)

    @property
    def queued_count(self) -> int:
        return len(self._wait_queue)

    @property
    def idle(self) -> bool:
        """Nothing queued, nothing awaiting acknowledgement, no initiation underway."""
        return (
            not self._sent
            and not self._wait_queue
            and not self._bd_queue
            and self.state in (FopState.ACTIVE, FopState.INITIAL)
        )

    # ------------------------------------------------------------------ internals
    def _new_record(self, kind: FrameKind, payload: bytes, now: float) -> CommandRecord:
        rec = CommandRecord(self._next_id, kind, bytes(payload), queued_at=now)
        self._next_id += 1
        self.records.append(rec)
        return rec

    def _changed(self, rec: CommandRecord) -> None:
        if self._on_change is not None:
            self._on_change(rec)

    def _initialise(self, now: float) -> None:
        # initiating AD purges the sent queue (the standard's "Initialize" action)
        for s in self._sent:
            self._unknown(s.record, FailReason.TERMINATED, now, "AD service re-initiated")
        self._sent.clear()
        self._retransmitting = False
        self._wait = False
        self._t1_deadline = None
        self._tx_count = 0
        self._bc = None
        self._bc_pending = False
        self.alert = None
        self.nnr = self.vs

    def _start_bc(self, command: bytes, now: float) -> None:
        if command != BC_UNLOCK:
            # after Set V(R) the CLCW's N(R) no longer speaks of the old frames
            self._limbo.clear()
        self.state = FopState.INIT_BC
        self._bc = _Sent(CommandRecord(0, FrameKind.BC, command), 0, self._build(FrameKind.BC, 0, command))
        self._bc_pending = True
        self._bc_farm_b = self.last_clcw.farm_b if self.last_clcw else None
        self._tx_count = 1
        self._t1_deadline = now + self.config.t1_s

    def _init_bc_clcw(self, c: Clcw, now: float) -> None:
        assert self._bc is not None
        command = self._bc.record.payload
        if command == BC_UNLOCK:
            self._late_ack(c.nr, now)
            if c.lockout or c.wait:
                return
            if self._after_unlock_set_vr and c.nr != self.vs:
                # frames sent before the lockout may still be on their way: move FARM
                # past them rather than adopt its V(R)
                self._start_bc(bc_set_vr(self.vs), now)
                self._after_unlock_set_vr = False
                return
            self.vs = c.nr
            self.nnr = c.nr
            self._go_active()
            return
        # Set V(R): confirmed when FARM reports the new V(R), unlocked and no flags
        if not c.lockout and not c.wait and not c.retransmit and c.nr == self.vs:
            self._go_active()

    def _go_active(self) -> None:
        self.state = FopState.ACTIVE
        self._bc = None
        self._bc_pending = False
        self.nnr = self.vs
        self._t1_deadline = None
        self._tx_count = 0

    def _acknowledge(self, nr: int, now: float) -> int:
        """Release frames up to N(R); returns how many, or -1 if N(R) is not plausible."""
        outstanding = (self.vs - self.nnr) & 0xFF
        n = (nr - self.nnr) & 0xFF
        if n > outstanding:
            return -1
        for _ in range(n):
            s = self._sent.popleft()
            s.record.state = CommandState.ACKNOWLEDGED
            s.record.acknowledged_at = now
            self.stats.acknowledged += 1
            self._changed(s.record)
        self.nnr = nr
        return n

    def _late_ack(self, nr: int, now: float) -> None:
        # after an alert: FARM may have accepted frames whose CLCW we never saw
        while self._limbo and 1 <= ((nr - self._limbo[0].ns) & 0xFF) <= len(self._limbo):
            s = self._limbo.pop(0)
            s.record.state = CommandState.ACKNOWLEDGED
            s.record.acknowledged_at = now
            s.record.reason = None
            s.record.detail = "acknowledged after the alert"
            self.stats.acknowledged += 1
            self.nnr = (s.ns + 1) & 0xFF
            self._changed(s.record)

    def _start_retransmission(self, now: float) -> None:
        if self._tx_count >= self.config.transmission_limit:
            self._raise_alert(FailReason.TRANSMISSION_LIMIT, now, f"after {self._tx_count} transmissions")
            return
        self._tx_count += 1
        self._retransmitting = True
        for s in self._sent:
            s.to_retransmit = True
        self._t1_deadline = now + self.config.t1_s

    def _check_timer(self, now: float) -> None:
        if self._t1_deadline is None or now < self._t1_deadline:
            return
        if self.state == FopState.ACTIVE:
            if not self._sent:
                self._t1_deadline = None
                return
            if self._wait:
                # FARM has no buffer: count the wait against the limit, send nothing
                if self._tx_count >= self.config.transmission_limit:
                    self._raise_alert(FailReason.TRANSMISSION_LIMIT, now, "FARM stayed in Wait")
                    return
                self._tx_count += 1
                self._t1_deadline = now + self.config.t1_s
                return
            self._start_retransmission(now)
        elif self.state == FopState.INIT_BC:
            if self._tx_count >= self.config.bc_limit:
                self._initiation_failed(now)
                return
            self._tx_count += 1
            self._bc_pending = True
            self._t1_deadline = now + self.config.t1_s
        elif self.state == FopState.INIT_CLCW:
            if self._tx_count >= self.config.transmission_limit:
                self._initiation_failed(now)
                return
            self._tx_count += 1
            self._t1_deadline = now + self.config.t1_s

    def _initiation_failed(self, now: float) -> None:
        self.state = FopState.INITIAL
        self._bc = None
        self._bc_pending = False
        self._t1_deadline = None
        self.stats.alerts += 1
        self.alert = FailReason.INIT_FAILED
        # the wait queue stays: its commands were never sent, they go once AD runs again

    def _raise_alert(self, reason: FailReason, now: float, detail: str) -> None:
        self.stats.alerts += 1
        self.alert = reason
        self._limbo = list(self._sent)
        self._fail_all(reason, now, detail)
        self.state = FopState.INITIAL

    def _fail_all(self, reason: FailReason, now: float, detail: str = "", purge_queue: bool = False) -> None:
        for s in self._sent:
            self._unknown(s.record, reason, now, detail)
        self._sent.clear()
        if purge_queue:
            for rec in self._wait_queue:
                self._fail(rec, reason, now, "never sent: " + detail if detail else "never sent")
            self._wait_queue.clear()
        self._retransmitting = False
        self._wait = False
        self._t1_deadline = None
        self._tx_count = 0

    def _unknown(self, rec: CommandRecord, reason: FailReason, now: float, detail: str) -> None:
        # transmitted and never acknowledged: FARM-1 may have accepted it
        if not rec.sent:
            self._fail(rec, reason, now, "never sent: " + detail if detail else "never sent")
            return
        rec.state = CommandState.UNKNOWN
        rec.reason = reason
        rec.detail = detail
        rec.failed_at = now
        self._changed(rec)

    def _fail(self, rec: CommandRecord, reason: FailReason, now: float, detail: str) -> None:
        rec.state = CommandState.FAILED
        rec.reason = reason
        rec.detail = detail
        rec.failed_at = now
        self._changed(rec)


@dataclass(frozen=True)
class LinkSizing:
    """FOP-1 parameters sized for a link (see :func:`size_for_link`)."""

    k: int
    t1_s: float
    round_trip_s: float
    tc_frame_s: float
    tm_frame_s: float
    transmission_limit: int = 5


def size_for_link(
    uplink_delay_s: float,
    downlink_delay_s: float,
    uplink_bps: float | None,
    downlink_bps: float | None,
    tc_frame_octets: int,
    tm_frame_octets: int = 260,
    farm_window: int = 64,
    margin: float = 1.5,
    extra_s: float = 0.5,
    tm_interval_s: float = 0.0,
    frame_loss: float = 0.0,
    outage_s: float = 0.0,
    give_up: float = 1e-6,
) -> LinkSizing:
    """Size FOP-1's window K and timer T1 from the link.

    K fills the bandwidth-delay product: enough frames to keep the uplink busy for one
    round trip (at least 1, below FARM's positive window W/2). T1 covers the time to
    serialise K frames, the round trip, one TM frame carrying the CLCW (plus how often
    TM frames go out, `tm_interval_s`), times `margin`, plus `extra_s`.
    Octet counts include stream framing (EB90 for TC, the ASM for TM).

    The transmission limit makes an alert rare on the link: enough transmissions that a
    frame lost with probability `frame_loss` each time (a TC frame lost or corrupted, or
    every CLCW after it) reaches the limit with probability below `give_up`, at least 5,
    plus as many T1 periods as the longest outage lasts (`outage_s`: a relay that stores and
    forwards delivers the frame late, and retransmissions meanwhile are no evidence).
    """
    up = math.inf if not uplink_bps else uplink_bps
    down = math.inf if not downlink_bps else downlink_bps
    tc_s = tc_frame_octets * 8 / up
    tm_s = tm_frame_octets * 8 / down
    rtt = uplink_delay_s + downlink_delay_s
    pw = farm_window // 2
    if tc_s == 0:
        k = pw - 1
    else:
        k = int(math.ceil((rtt + tm_s + tm_interval_s) / tc_s)) + 1
    k = max(1, min(k, pw - 1, 255))
    t1 = (k * tc_s + rtt + tm_s + tm_interval_s) * margin + extra_s
    limit = 5
    if 0 < frame_loss < 1:
        limit = max(limit, math.ceil(math.log(give_up) / math.log(frame_loss)))
    elif frame_loss >= 1:
        limit = 255
    limit = min(255, limit + math.ceil(outage_s / t1))
    return LinkSizing(k=k, t1_s=t1, round_trip_s=rtt, tc_frame_s=tc_s, tm_frame_s=tm_s, transmission_limit=limit)
