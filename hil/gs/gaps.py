"""Gaps in the TM: what the ground missed, by each APID's packet sequence count, and the
TM_RETRIEVE requests that fill them from the rover's packet store (firmware_py.pktstore).

Every TM packet the ground decodes passes `note()` first:
- a packet already seen (the same octets: a link duplicate, or a retrieved copy of one
  that came through after all) is a duplicate, and not decoded again;
- a sequence count ahead of the next expected one opens a gap: the counts skipped are
  missing;
- a missing count that arrives (retrieved) fills its place;
- any other count behind the expected one that is not a duplicate means the rover restarted
  its count (a reboot of a rover whose store is RAM only): what was missing before is given up
  and the counts below the new one are missing. A rover with a filesystem carries its count and
  its reports and events over a reboot (firmware_py.pktjournal): no restart is seen,
  and what it missed before the reboot is asked for like any gap.

`due(now)` gives the next request: from the first missing count to the last one within
`max_count` of it, once `settle_s` passed since they went missing, one request at a time
(one command for several gaps: the uplink is the scarce direction; the copies of packets the
ground already has cost downlink octets only, and are dropped as duplicates). The rover answers
with the stored packets of the range on the store's virtual channel, then its retrieval report
(TM 15/10: apid, first, count, packets sent) and TM 1/7; `finished()` closes the request with
the report (TM 15/10 or 1/7), or without it (refused, or no answer).

No answer: the request or its answer was lost. A request that has had `answer_s` of a live link
since it was sent (or since its last packet arrived) without its report is taken as lost and
asked again; the time the link was silent (a relay outage: TM stops, and a relay that stores
and forwards delivers the request late) does not count, so an outage does not spend attempts.
`answer_s` is sized for the link (hil.gs.link: FOP-1's T1, itself the time a frame takes to be
acknowledged: uplink serialisation of the frames ahead, the round trip, a TM frame, a margin).

When every packet the rover sent arrived (counted by distinct sequence count: the link
duplicates frames), the counts still missing were not in the store (housekeeping is kept one in
`tm_store_hk_every`, or it was overwritten): given up. Otherwise each count gets `max_attempts`
requests.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

SEQ_MOD = 1 << 14
MAX_JUMP = 4096  # a count further ahead than this is a restart, not a gap
FIRST_LOOKBACK = 256  # the first count heard below this: the counts before it are missing


@dataclass
class Retrieval:
    """One TM_RETRIEVE in flight."""

    apid: int
    first: int
    count: int
    sent_at: float
    request_id: tuple[int, int] | None = None
    seqs: set[int] = field(default_factory=set)  # counts of the range that came on the store's channel
    rover_sent: int | None = None  # what the rover's retrieval report says it sent
    answered_at: float | None = None  # when its last packet of the range arrived

    @property
    def got(self) -> int:
        """Distinct packets of the range that arrived on the store's channel since it was sent."""
        return len(self.seqs)

    def covers(self, apid: int, seq: int) -> bool:
        return apid == self.apid and (seq - self.first) % SEQ_MOD < self.count


@dataclass
class _Apid:
    expected: int | None = None
    missing: dict[int, float] = field(default_factory=dict)  # seq -> when it went missing
    attempts: dict[int, int] = field(default_factory=dict)


@dataclass
class GapCounters:
    missing_seen: int = 0  # counts that went missing
    filled: int = 0  # missing counts that arrived later (retrieved)
    given_up: int = 0  # missing counts abandoned: the sum of the three below
    not_stored: int = 0  # the rover's store did not hold them (housekeeping decimated, overwritten)
    lost_on_restart: int = 0  # the rover restarted its count (its store is RAM)
    attempts_spent: int = 0  # max_attempts requests went unanswered or lost packets
    duplicates: int = 0
    restarts: int = 0
    requests: int = 0
    store_frames: int = 0
    last_filled_at: float | None = None


class GapTracker:
    """See the module docstring."""

    def __init__(
        self,
        *,
        settle_s: float = 1.0,
        answer_s: float = 30.0,
        max_attempts: int = 4,
        max_count: int = 256,
        window: int = 16384,
        silence_s: float = 5.0,
        timeout_s: float = 900.0,
    ) -> None:
        self.settle_s = settle_s
        self.answer_s = answer_s
        self.silence_s = silence_s  # no TM frame this long: the link was down (an outage)
        self.timeout_s = timeout_s  # a request unanswered this long is lost, live link or not
        self.max_attempts = max_attempts
        self.max_count = max_count
        self.counters = GapCounters()
        self.pending: Retrieval | None = None
        self._apids: dict[int, _Apid] = {}
        self._seen: set[bytes] = set()
        self._order: deque[bytes] = deque()
        self._window = window
        self._heard: float | None = None  # the last TM packet's arrival
        self._resumed = -float("inf")  # when TM came back after a silence

    # --- input -----------------------------------------------------------------------
    def note(self, apid: int, seq: int, packet: bytes, t: float, retrieved: bool = False) -> bool:
        """Whether this packet is new (decode it) or a duplicate (drop it); `retrieved`: it came
        on the store's virtual channel."""
        c = self.counters
        key = bytes(packet)
        if retrieved and self.pending is not None and self.pending.covers(apid, seq):
            self.pending.seqs.add(seq)
            self.pending.answered_at = t
        if key in self._seen:
            c.duplicates += 1
            return False
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self._window:
            self._seen.discard(self._order.popleft())
        a = self._apids.setdefault(apid, _Apid())
        if a.expected is None:
            # the first packet heard: a rover that started its count lately may still hold
            # what came before it (a ground started after the rover, or the first frames lost)
            for s in range(seq if seq < FIRST_LOOKBACK else 0):
                a.missing[s] = t
                c.missing_seen += 1
            a.expected = (seq + 1) % SEQ_MOD
            return True
        ahead = (seq - a.expected) % SEQ_MOD
        if seq in a.missing:
            del a.missing[seq]
            a.attempts.pop(seq, None)
            c.filled += 1
            c.last_filled_at = t
        elif ahead < MAX_JUMP:
            for k in range(ahead):
                s = (a.expected + k) % SEQ_MOD
                if s not in a.missing:
                    a.missing[s] = t
                    c.missing_seen += 1
            a.expected = (seq + 1) % SEQ_MOD
        else:
            # behind and not missing: the rover restarted its count
            c.restarts += 1
            c.given_up += len(a.missing)
            c.lost_on_restart += len(a.missing)
            a.missing.clear()
            a.attempts.clear()
            if self.pending is not None and self.pending.apid == apid:
                self.pending = None
            for s in range(seq if seq < FIRST_LOOKBACK else 0):
                a.missing[s] = t
                c.missing_seen += 1
            a.expected = (seq + 1) % SEQ_MOD
        return True

    def heard(self, t: float) -> None:
        """A TM frame arrived at `t` (any channel, idle frames too): the link is up."""
        if self._heard is not None and t - self._heard >= self.silence_s:
            self._resumed = t
        if self._heard is None or t > self._heard:
            self._heard = t

    def note_store_frame(self) -> None:
        """A frame of the store's virtual channel arrived."""
        self.counters.store_frames += 1

    def report(self, apid: int, first: int, count: int, sent: int) -> None:
        """The rover's retrieval report (TM 15/10) for the range it sent again."""
        r = self.pending
        if r is not None and (r.apid, r.first, r.count) == (apid, first, count):
            r.rover_sent = sent

    # --- requests ------------------------------------------------------------------------
    def missing(self, apid: int | None = None) -> list[int]:
        """The sequence counts missing now (one APID, or all)."""
        return sorted(s for k, a in self._apids.items() if apid in (None, k) for s in a.missing)

    @property
    def complete(self) -> bool:
        return not any(a.missing for a in self._apids.values())

    def due(self, now: float) -> Retrieval | None:
        """The next retrieval to request now, if any (mark it sent with `sent()`)."""
        if self.pending is not None:
            return None
        for apid, a in self._apids.items():
            ready = sorted(s for s, t in a.missing.items() if now - t >= self.settle_s)
            if not ready:
                continue
            first = ready[0]
            n = 1 + max((s - first) % SEQ_MOD for s in ready if (s - first) % SEQ_MOD < self.max_count)
            return Retrieval(apid, first, n, now)
        return None

    def sent(self, r: Retrieval, request_id: tuple[int, int]) -> None:
        r.request_id = request_id
        self.pending = r
        self.counters.requests += 1

    def expired(self, now: float) -> bool:
        """The pending request is lost: `answer_s` of a live link (TM frames `heard`) passed
        since it was sent, since the link came back after a silence, or since its last packet
        arrived, and no report; or `timeout_s` passed whatever the link did."""
        r = self.pending
        if r is None:
            return False
        if now - r.sent_at >= self.timeout_s:
            return True
        since = max(r.sent_at, self._resumed, r.answered_at or r.sent_at)
        live = self._heard is None or now - self._heard < self.silence_s
        return live and now - since >= self.answer_s

    def finished(self, completed: bool) -> None:
        """Close the pending retrieval: `completed` (TM 1/7) or not (refused, or no answer)."""
        r = self.pending
        if r is None:
            return
        self.pending = None
        a = self._apids.get(r.apid)
        if a is None:
            return
        clean = completed and r.rover_sent is not None and r.got >= r.rover_sent
        for k in range(r.count):
            s = (r.first + k) % SEQ_MOD
            if s not in a.missing:
                continue
            n = a.attempts.get(s, 0) + 1
            if clean or n >= self.max_attempts:
                del a.missing[s]
                a.attempts.pop(s, None)
                self.counters.given_up += 1
                if clean:
                    self.counters.not_stored += 1
                else:
                    self.counters.attempts_spent += 1
            else:
                a.attempts[s] = n
