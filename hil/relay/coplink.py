"""COP-1 over the relay, in process: the ground station's link and a reference rover receiver.

The ground's end is the ground station's own `hil.gs.link.GroundLink`, driven by the
loop's clock (`hil.mission.ground.LoopGround`): FOP-1 (protocols/cop1.py), SDLS security
and TC frames (EB90 on the stream) out; TM frames (ASM) in, their OCF's CLCW into FOP-1.
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

from hil.gs.link import DEV_KEYS, CommandTrack
from hil.gs.mission import Mission
from hil.mission.ground import LoopGround
from protocols.cop1 import CommandRecord, FopConfig
from protocols.errors import ProtocolError
from protocols.sdls import FrameAuthenticator, KeyStore
from protocols.stream import ASM, TcDeframer
from protocols.tc_frame import parse_tc_frame
from protocols.tm_frame import build_tm_frame, data_field_length

# firmware modules are imported by name: they are MicroPython code, outside mypy's files
F: Any = importlib.import_module("firmware_py.farm")

SCID = 171
TC_VCID = 1
TM_VCID = 0
IDLE_FHP = 0x7FE


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
def submit_payload(ground: LoopGround, index: int, payload: bytes) -> CommandRecord:
    """Queue an opaque payload (not a dictionary command) on the ground's COP-1 as Type-AD."""
    track: CommandTrack = ground.submit("PAYLOAD", {"index": index}, payload, (0, index))
    assert track.fop is not None
    return track.fop


async def run_commands(
    profile_name: str,
    payloads: list[bytes],
    seed: int = 0,
    config: FopConfig | None = None,
    tm_period_s: float = 1.0,
    timeout_s: float = 36_000.0,
    profile: object | None = None,
) -> tuple[LoopGround, ReferenceRover, float]:
    """Send `payloads` as AD commands ground -> relay -> reference rover; returns the two ends
    and the time (s) from the first submission until the last command was resolved.
    The ground is the ground station's link (SDLS with the development key of SPI 1)."""
    from hil.relay.channel import Relay
    from hil.relay.endpoints import MemoryEndpoint
    from hil.relay.profile import RelayProfile, load_profile
    from hil.relay.runner import RelayRunner
    from protocols.cop1 import size_for_link

    prof = profile if isinstance(profile, RelayProfile) else load_profile(profile_name)
    mission = Mission.load()
    mission.tm_frame_length = prof.tm_frame_length
    ground_ep, rover_ep = MemoryEndpoint("ground"), MemoryEndpoint("rover")
    runner = RelayRunner(Relay(prof, seed=seed), ground_ep, rover_ep)
    if config is None:
        overhead = 2 + 5 + 2 + 22  # EB90, header, FECF, SDLS header and MAC
        size = size_for_link(prof.uplink.delay_s, prof.downlink.delay_s, prof.uplink.rate_bps,
                             prof.downlink.rate_bps, overhead + max(map(len, payloads), default=0),
                             tm_frame_octets=4 + prof.tm_frame_length)
        config = FopConfig(vcid=mission.tc_vcid, k=size.k, t1_s=size.t1_s, transmission_limit=10)
    ground = LoopGround(mission, ground_ep.peer_write, loop=asyncio.get_running_loop(), fop=config)
    rover = ReferenceRover(rover_ep.peer_write, KeyStore.load(DEV_KEYS), tm_period_s=tm_period_s,
                           tm_frame_length=prof.tm_frame_length, scid=mission.scid)
    ground_ep.peer_on_data = ground.feed
    rover_ep.peer_on_data = rover.on_data
    await runner.start()
    ground.fop.initiate_ad(ground.now())
    rover.start()
    t0 = ground.now()
    recs = [submit_payload(ground, i, p) for i, p in enumerate(payloads)]
    ground.pump()
    while not all(r.done for r in recs) and ground.now() - t0 < timeout_s:
        await asyncio.sleep(1.0)
    elapsed = max((r.acknowledged_at or r.failed_at or t0) for r in recs) - t0 if recs else 0.0
    ground.close()
    await rover.stop()
    await runner.stop()
    ground.relay = runner.relay  # type: ignore[attr-defined]
    return ground, rover, elapsed
