"""COP-1 over the relay, in process: a ground sender and a reference rover receiver.

`GroundCop` is the ground's end of the link: FOP-1 (protocols/cop1.py), SDLS security and
TC frames (EB90 on the stream) out; TM frames (ASM) in, their OCF's CLCW into FOP-1.
`ReferenceRover` is a minimal rover link built from the firmware's FARM-1
(firmware_py/farm.py) and the ground's reference codec: deframe, authenticate (verify,
then commit only when FARM accepts), FARM-1, and a TM frame carrying the CLCW after every
TC frame and every `tm_period_s`. Both talk bytes through `hil.relay.endpoints`
endpoints, so they run through a `RelayRunner` on the real or the virtual clock.

This is what the COP-1 benchmark and the relay's end-to-end tests drive; the real rover
firmware (firmware_py/app.py) replaces `ReferenceRover` in the full-loop tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Callable
from typing import Any

from protocols.cop1 import CommandRecord, Fop1, FopConfig, FrameKind
from protocols.errors import ProtocolError
from protocols.sdls import FrameAuthenticator, KeyStore, SecuritySender
from protocols.stream import ASM, TC_START, TcDeframer, TmDeframer
from protocols.tc_frame import build_tc_frame, parse_tc_frame
from protocols.tm_frame import build_tm_frame, data_field_length, parse_tm_frame

# firmware modules are imported by name: they are MicroPython code, outside mypy's files
F: Any = importlib.import_module("firmware_py.farm")

SCID = 171
TC_VCID = 1
TM_VCID = 0
IDLE_FHP = 0x7FE


class GroundCop:
    """FOP-1 + security + framing on the ground side of a byte stream."""

    def __init__(
        self,
        write: Callable[[bytes], None],
        config: FopConfig,
        sender: SecuritySender | None = None,
        scid: int = SCID,
        tm_frame_length: int = 256,
    ) -> None:
        self._write = write
        self.sender = sender
        self.scid = scid
        self.fop = Fop1(config, frame_builder=self._build)
        self.tm = TmDeframer(tm_frame_length)
        self.tm_frames = 0
        self.tm_bad = 0
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _build(self, kind: FrameKind, ns: int, payload: bytes) -> bytes:
        bypass = kind != FrameKind.AD
        control = kind == FrameKind.BC
        return TC_START + build_tc_frame(self.scid, self.fop.config.vcid, ns, payload, bypass, control, self.sender)

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def submit(self, payload: bytes) -> CommandRecord:
        rec = self.fop.submit(payload, self.now())
        self._kick.set()
        return rec

    def submit_bd(self, payload: bytes) -> CommandRecord:
        rec = self.fop.submit_bd(payload, self.now())
        self._kick.set()
        return rec

    def on_data(self, data: bytes) -> None:
        """Octets from the link (TM stream)."""
        for frame in self.tm.feed(data):
            try:
                tm = parse_tm_frame(frame)
            except ProtocolError:
                self.tm_bad += 1
                continue
            self.tm_frames += 1
            if tm.ocf is not None:
                self.fop.on_clcw(tm.ocf, self.now())
                self._kick.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ground-cop")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            for tx in self.fop.poll(self.now()):
                self._write(tx.data)
            self._kick.clear()
            deadline = self.fop.next_deadline()
            if deadline is None:
                await self._kick.wait()
                continue
            handle = loop.call_at(max(deadline, loop.time()), self._kick.set)
            try:
                await self._kick.wait()
            finally:
                handle.cancel()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class ReferenceRover:
    """The rover's link layer, reduced to COP-1: deframe, authenticate, FARM-1, CLCW in TM."""

    def __init__(
        self,
        write: Callable[[bytes], None],
        keys: KeyStore | None = None,
        farm_window: int = 64,
        tm_period_s: float = 1.0,
        tm_frame_length: int = 256,
        scid: int = SCID,
    ) -> None:
        self._write = write
        self.farm = F.Farm(vcid=TC_VCID, window=farm_window)
        self.auth = FrameAuthenticator(keys) if keys is not None else None
        self.tc = TcDeframer()
        self.tm_period_s = tm_period_s
        self.tm_frame_length = tm_frame_length
        self.scid = scid
        self.delivered: list[bytes] = []
        self.bypass: list[bytes] = []
        self.rejected_auth = 0
        self.codes: dict[int, int] = {}
        self._mc = 0
        self._idle = bytes(data_field_length(tm_frame_length, True))
        self._task: asyncio.Task[None] | None = None

    def on_data(self, data: bytes) -> None:
        for raw in self.tc.feed(data):
            self._frame(raw)
            self.send_tm()

    def _frame(self, raw: bytes) -> None:
        try:
            if self.auth is not None:
                frame = parse_tc_frame(raw, security=self.auth)
            else:
                frame = parse_tc_frame(raw)
        except ProtocolError:
            self.rejected_auth += 1
            return
        if frame.scid != self.scid or frame.vcid != TC_VCID:
            return
        code = self.farm.on_frame(int(frame.bypass), int(frame.control), frame.frame_seq, memoryview(frame.data))
        self.codes[code] = self.codes.get(code, 0) + 1
        if F.accepted(code) and self.auth is not None:
            assert frame.spi is not None and frame.sec_seq is not None
            self.auth.commit(frame.spi, frame.sec_seq)
        if code == F.ACCEPT:
            self.delivered.append(frame.data)
        elif code == F.ACCEPT_BD:
            self.bypass.append(frame.data)

    def send_tm(self) -> None:
        frame = build_tm_frame(self.scid, TM_VCID, self._mc, self._mc, IDLE_FHP, self._idle,
                               ocf=self.farm.clcw(), frame_length=self.tm_frame_length)
        self._mc = (self._mc + 1) & 0xFF
        self._write(ASM + frame)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reference-rover")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tm_period_s)
            self.send_tm()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# ---------------------------------------------------------------------- a whole session
DEFAULT_KEY = bytes(range(32))


async def run_commands(
    profile_name: str,
    payloads: list[bytes],
    seed: int = 0,
    config: FopConfig | None = None,
    secure: bool = True,
    tm_period_s: float = 1.0,
    timeout_s: float = 36_000.0,
    profile: object | None = None,
) -> tuple[GroundCop, ReferenceRover, float]:
    """Send `payloads` as AD commands ground -> relay -> reference rover; returns the two ends
    and the time (s) from the first submission until the last command was resolved."""
    from hil.relay.channel import Relay
    from hil.relay.endpoints import MemoryEndpoint
    from hil.relay.profile import RelayProfile, load_profile
    from hil.relay.runner import RelayRunner
    from protocols.cop1 import size_for_link

    prof = profile if isinstance(profile, RelayProfile) else load_profile(profile_name)
    ground_ep, rover_ep = MemoryEndpoint("ground"), MemoryEndpoint("rover")
    runner = RelayRunner(Relay(prof, seed=seed), ground_ep, rover_ep)
    keys = KeyStore({1: DEFAULT_KEY}) if secure else None
    sender = SecuritySender(DEFAULT_KEY) if secure else None
    if config is None:
        overhead = 2 + 5 + 2 + (22 if secure else 0)
        size = size_for_link(prof.uplink.delay_s, prof.downlink.delay_s, prof.uplink.rate_bps,
                             prof.downlink.rate_bps, overhead + max(map(len, payloads), default=0),
                             tm_frame_octets=4 + prof.tm_frame_length)
        config = FopConfig(k=size.k, t1_s=size.t1_s, transmission_limit=10)
    ground = GroundCop(ground_ep.peer_write, config, sender, tm_frame_length=prof.tm_frame_length)
    rover = ReferenceRover(rover_ep.peer_write, keys, tm_period_s=tm_period_s, tm_frame_length=prof.tm_frame_length)
    ground_ep.peer_on_data = ground.on_data
    rover_ep.peer_on_data = rover.on_data
    await runner.start()
    ground.fop.initiate_ad(ground.now())
    ground.start()
    rover.start()
    t0 = ground.now()
    recs = [ground.submit(p) for p in payloads]
    while not all(r.done for r in recs) and ground.now() - t0 < timeout_s:
        await asyncio.sleep(1.0)
    elapsed = max((r.acknowledged_at or r.failed_at or t0) for r in recs) - t0 if recs else 0.0
    await ground.stop()
    await rover.stop()
    await runner.stop()
    ground.relay = runner.relay  # type: ignore[attr-defined]
    return ground, rover, elapsed
