"""The relay's link model, sans-I/O: bytes in with a time, bytes out when they are due.

Each direction cuts its input stream into units, a whole frame (marker + frame, found by
marker and length, never checked or dropped: the relay is a bent pipe) or a run of
octets between frames, and sends the units one by one:

    input -> store-and-forward buffer (bounded; overflow counted and captured)
          -> waits for visibility (relay and ground passes) and a free transmitter
          -> serialisation at rate_bps (a unit is sent only if it fits in the window)
          -> frame loss, bit errors (BER + Gilbert-Elliott bursts), duplication
          -> one-way delay -> output

Nothing here reads a clock: every call takes `now` (seconds), and `next_time()` says
when the next thing happens, so the same object runs on the real clock or on the
virtual-time loop (hil/vclock.py). Randomness comes from a seeded random.Random per
direction, so a run is reproducible for a seed.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from hil.relay.capture import CaptureWriter, Direction
from hil.relay.profile import DirectionConfig, GilbertElliott, RelayProfile, Visibility

ASM = bytes.fromhex("1ACFFC1D")
TC_START = bytes.fromhex("EB90")
TC_MAX = 1024
TC_MIN = 7

LengthOf = Callable[[bytearray, int], "int | None"]


def tc_length(buf: bytearray, start: int) -> int | None:
    """TC frame length from its header at `start` (None: need more octets, -1: not a frame)."""
    if start < len(buf) and buf[start] >> 6 != 0:
        return -1
    if start + 4 > len(buf):
        return None
    n = (((buf[start + 2] & 0x03) << 8) | buf[start + 3]) + 1
    return n if TC_MIN <= n <= TC_MAX else -1


def fixed_length(n: int) -> LengthOf:
    return lambda buf, start: n


@dataclass
class Unit:
    data: bytes
    is_frame: bool
    arrival: float


class FrameSplitter:
    """Cuts a byte stream into frames (marker + length) and the octet runs between them."""

    def __init__(self, marker: bytes, length_of: LengthOf) -> None:
        self.marker = marker
        self.length_of = length_of
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[bytes, bool]]:
        buf = self._buf
        buf += data
        marker, mlen = self.marker, len(self.marker)
        out: list[tuple[bytes, bool]] = []
        pos = 0
        while pos < len(buf):
            i = buf.find(marker, pos)
            if i < 0:
                # keep a tail that could be the start of a marker
                keep = len(buf)
                for k in range(min(mlen - 1, len(buf) - pos), 0, -1):
                    if buf.endswith(marker[:k]):
                        keep = len(buf) - k
                        break
                if keep > pos:
                    out.append((bytes(buf[pos:keep]), False))
                pos = keep
                break
            if i > pos:
                out.append((bytes(buf[pos:i]), False))
                pos = i
            n = self.length_of(buf, i + mlen)
            if n is None:
                break
            if n < 0:
                out.append((bytes(buf[i : i + 1]), False))
                pos = i + 1
                continue
            end = i + mlen + n
            if end > len(buf):
                break
            out.append((bytes(buf[i:end]), True))
            pos = end
        del buf[:pos]
        return out

    def flush(self) -> list[tuple[bytes, bool]]:
        """Give up waiting: whatever is held goes on as plain octets."""
        if not self._buf:
            return []
        out = [(bytes(self._buf), False)]
        self._buf.clear()
        return out


class BitErrors:
    """Bit errors at a BER, with optional Gilbert-Elliott bursts; state carries across units."""

    def __init__(self, ber: float, burst: GilbertElliott | None, rng: random.Random) -> None:
        self.ber = ber
        self.burst = burst
        self.rng = rng
        self.bad = False
        self._left = self._sojourn()

    def _geometric(self, p: float) -> float:
        """Failures before the first success with probability p per trial."""
        if p <= 0:
            return math.inf
        if p >= 1:
            return 0
        return math.floor(math.log(1.0 - self.rng.random()) / math.log1p(-p))

    def _sojourn(self) -> float:
        if self.burst is None:
            return math.inf
        p = self.burst.p_exit if self.bad else self.burst.p_enter
        return 1 + self._geometric(p)

    def apply(self, data: bytearray, start_bit: int = 0) -> int:
        """Flip bits of data[start_bit/8:] in place; returns how many."""
        nbits = len(data) * 8
        pos = start_bit
        flips = 0
        while pos < nbits:
            seg = min(self._left, nbits - pos)
            p = self.burst.ber if (self.bad and self.burst) else self.ber
            x = pos + self._geometric(p)
            end = pos + seg
            while x < end:
                xi = int(x)
                data[xi >> 3] ^= 0x80 >> (xi & 7)
                flips += 1
                x += 1 + self._geometric(p)
            pos = int(end)
            self._left -= seg
            if self._left <= 0:
                self.bad = not self.bad
                self._left = self._sojourn()
        return flips


@dataclass
class DirectionStats:
    octets_in: int = 0
    octets_out: int = 0
    frames_in: int = 0
    frames_out: int = 0
    raw_units_in: int = 0
    bits_flipped: int = 0
    frames_corrupted: int = 0
    frames_lost: int = 0
    frames_duplicated: int = 0
    overflow_units: int = 0
    overflow_octets: int = 0
    queue_units: int = 0
    queue_octets: int = 0
    max_queue_octets: int = 0
    in_flight: int = 0
    bits_sent: int = 0


class LinkDirection:
    """One direction of the relay (see the module docstring)."""

    def __init__(
        self,
        name: str,
        cfg: DirectionConfig,
        splitter: FrameSplitter,
        visibility: Visibility,
        rng: random.Random,
        capture: Callable[[Direction, float, bytes], None] | None = None,
        in_code: Direction = Direction.GROUND_IN,
        out_code: Direction = Direction.ROVER_OUT,
        overflow_code: Direction = Direction.UPLINK_OVERFLOW,
        flush_s: float = 0.05,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.splitter = splitter
        self.visibility = visibility
        self.rng = rng
        self.errors = BitErrors(cfg.ber, cfg.burst, random.Random(rng.getrandbits(64)))
        self._capture = capture
        self._codes = (in_code, out_code, overflow_code)
        self.flush_s = flush_s
        self.queue: deque[Unit] = deque()
        self.in_flight: deque[tuple[float, bytes, bool]] = deque()
        self.tx_free = -math.inf
        self._flush_at: float | None = None
        self.stats = DirectionStats()

    # ---------------------------------------------------------------- inputs
    def push(self, now: float, data: bytes | bytearray | memoryview) -> None:
        """Octets arrived from the source at time `now`."""
        if not data:
            return
        self.advance(now)
        self.stats.octets_in += len(data)
        if self._capture:
            self._capture(self._codes[0], now, bytes(data))
        for chunk, is_frame in self.splitter.feed(data):
            self._enqueue(Unit(chunk, is_frame, now))
        self._flush_at = now + self.flush_s if self.splitter.pending else None

    def _enqueue(self, unit: Unit) -> None:
        s = self.stats
        if unit.is_frame:
            s.frames_in += 1
        else:
            s.raw_units_in += 1
        if s.queue_octets + len(unit.data) > self.cfg.buffer_octets:
            s.overflow_units += 1
            s.overflow_octets += len(unit.data)
            if self._capture:
                self._capture(self._codes[2], unit.arrival, unit.data)
            return
        self.queue.append(unit)
        s.queue_units += 1
        s.queue_octets += len(unit.data)
        s.max_queue_octets = max(s.max_queue_octets, s.queue_octets)

    # ---------------------------------------------------------------- the model
    def _duration(self, n_octets: int) -> float:
        rate = self.cfg.rate_bps
        return n_octets * 8 / rate if rate else 0.0

    def _start_time(self, unit: Unit) -> float:
        """When `unit` would start transmitting (it has to fit in a visible window)."""
        t = max(self.tx_free, unit.arrival)
        dur = self._duration(len(unit.data))
        vis = self.visibility
        for _ in range(1000):
            t = vis.next_visible(t)
            if t == math.inf:
                return t
            end = vis.window_end(t)
            if end - t >= dur:
                return t
            # does not fit: try the next window, unless no window is ever long enough
            nxt = vis.next_visible(end)
            if nxt == math.inf or vis.window_end(nxt) - nxt < dur:
                return t
            t = nxt
        return t

    def _transmit(self, unit: Unit, t: float) -> None:
        s = self.stats
        dur = self._duration(len(unit.data))
        self.tx_free = t + dur
        s.bits_sent += len(unit.data) * 8
        at = t + dur + self.cfg.delay_s
        if unit.is_frame and self.cfg.frame_loss and self.rng.random() < self.cfg.frame_loss:
            s.frames_lost += 1
            return
        data = bytearray(unit.data)
        flips = self.errors.apply(data)
        if flips:
            s.bits_flipped += flips
            if unit.is_frame:
                s.frames_corrupted += 1
        out = bytes(data)
        self.in_flight.append((at, out, unit.is_frame))
        if unit.is_frame and self.cfg.frame_duplication and self.rng.random() < self.cfg.frame_duplication:
            s.frames_duplicated += 1
            self.in_flight.append((at, out, True))
        s.in_flight = len(self.in_flight)

    def advance(self, now: float) -> None:
        """Run the model up to `now`: flush a stale partial frame, start transmissions."""
        if self._flush_at is not None and self._flush_at <= now:
            at = self._flush_at
            self._flush_at = None
            for chunk, is_frame in self.splitter.flush():
                self._enqueue(Unit(chunk, is_frame, at))
        s = self.stats
        while self.queue:
            unit = self.queue[0]
            t = self._start_time(unit)
            if t > now:
                break
            self.queue.popleft()
            s.queue_units -= 1
            s.queue_octets -= len(unit.data)
            self._transmit(unit, t)

    # ---------------------------------------------------------------- outputs
    def pull(self, now: float) -> list[bytes]:
        """Units due for delivery at or before `now`, in order."""
        self.advance(now)
        out: list[bytes] = []
        s = self.stats
        while self.in_flight and self.in_flight[0][0] <= now:
            at, data, is_frame = self.in_flight.popleft()
            out.append(data)
            s.octets_out += len(data)
            s.frames_out += is_frame
            if self._capture:
                self._capture(self._codes[1], at, data)
        s.in_flight = len(self.in_flight)
        return out

    def next_time(self) -> float | None:
        """The next time something happens in this direction (None: nothing pending)."""
        times = []
        if self.in_flight:
            times.append(self.in_flight[0][0])
        if self.queue:
            times.append(self._start_time(self.queue[0]))
        if self._flush_at is not None:
            times.append(self._flush_at)
        t = min(times, default=math.inf)
        return None if t == math.inf else t


class Relay:
    """Both directions of the relay: uplink (ground -> rover, TC) and downlink (rover -> ground, TM)."""

    def __init__(
        self,
        profile: RelayProfile,
        seed: int = 0,
        capture: CaptureWriter | None = None,
        flush_s: float = 0.05,
    ) -> None:
        self.profile = profile
        self.seed = seed
        self.capture = capture
        cap = capture.write if capture else None
        root = random.Random(seed)
        self.uplink = LinkDirection(
            "uplink", profile.uplink, FrameSplitter(TC_START, tc_length), profile.visibility,
            random.Random(root.getrandbits(64)), cap,
            Direction.GROUND_IN, Direction.ROVER_OUT, Direction.UPLINK_OVERFLOW, flush_s,
        )
        self.downlink = LinkDirection(
            "downlink", profile.downlink, FrameSplitter(ASM, fixed_length(profile.tm_frame_length)),
            profile.visibility, random.Random(root.getrandbits(64)), cap,
            Direction.ROVER_IN, Direction.GROUND_OUT, Direction.DOWNLINK_OVERFLOW, flush_s,
        )

    def from_ground(self, now: float, data: bytes | bytearray | memoryview) -> None:
        self.uplink.push(now, data)

    def from_rover(self, now: float, data: bytes | bytearray | memoryview) -> None:
        self.downlink.push(now, data)

    def to_rover(self, now: float) -> list[bytes]:
        return self.uplink.pull(now)

    def to_ground(self, now: float) -> list[bytes]:
        return self.downlink.pull(now)

    def next_time(self) -> float | None:
        ts = [t for t in (self.uplink.next_time(), self.downlink.next_time()) if t is not None]
        return min(ts) if ts else None

    def outage(self, now: float) -> bool:
        return not self.profile.visibility.visible(now)

    def stats(self, now: float) -> dict[str, Any]:
        """A JSON-ready snapshot."""
        return {
            "time_s": now,
            "profile": self.profile.name,
            "seed": self.seed,
            "outage": self.outage(now),
            "uplink": asdict(self.uplink.stats),
            "downlink": asdict(self.downlink.stats),
        }
