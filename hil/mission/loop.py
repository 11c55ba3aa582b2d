"""The whole loop in virtual time: ground station, Queqiao relay and rover on one event loop.

    ground (LoopGround) --TC octets--> relay (hil.relay.Relay) --> rover link (CPython firmware,
    ground  <--TM octets--  relay  <--  rover link                  sim HAL and plant)

Everything runs on one `hil.vclock.VirtualTimeLoop`: the rover's tasks, the relay's
deliveries (timers at `Relay.next_time()`) and COP-1's timer T1. When nothing is ready
the clock jumps to the next timer, so an hour's traverse through `queqiao` takes seconds.
The octets move through in-memory pipes, with no polling of their own. The rover is
restarted after each reset with its flash folder and hardware kept (firmware_py.app's
`run_forever`), as the sim board's power supply would. A run is deterministic for a seed.

The sim board is marked `virtual`: a hibernating rover's tasks wake once a minute, and an
idle awake one (HK at most once a minute, nothing to do) naps until its next report
(firmware_py.app), so the clock jumps through a lunar night and an idle day alike; octets
for the rover and changes to the plant (`rouse()`) wake it at once.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import hil
from hil import vclock
from hil.errors import FarsideError
from hil.gs.archive import ArchiveWriter
from hil.gs.keys import resolve_keys
from hil.gs.mission import Mission
from hil.mission.ground import LoopGround
from hil.relay.channel import Relay
from hil.relay.profile import Visibility, load_profile
from protocols.cop1 import FopConfig, size_for_link

T = TypeVar("T")

BOARDS = Path(hil.__file__).resolve().parent.parent / "boards"


class RoverStream:
    """The rover's end of the link (firmware_py.hal link API) as two in-memory buffers.

    read_into(buf) -> n takes what the relay delivered; write(buf) hands the octets to
    `on_tx` at once (the relay then times them), so nothing polls the pipe.
    """

    def __init__(self, on_tx: Callable[[bytes], None]) -> None:
        self._rx = bytearray()
        self._on_tx = on_tx
        self.octets_in = 0
        self.octets_out = 0

    def deliver(self, data: bytes) -> None:
        self._rx += data
        self.octets_in += len(data)

    def read_into(self, buf: Any) -> int:
        n = min(len(buf), len(self._rx))
        if n:
            buf[:n] = self._rx[:n]
            del self._rx[:n]
        return n

    def write(self, data: Any) -> int:
        b = bytes(data)
        self.octets_out += len(b)
        self._on_tx(b)
        return len(b)


def load_board(name: str) -> dict[str, Any]:
    path = BOARDS / f"{name}.json"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in BOARDS.glob("*.json")))
        raise FarsideError(f"expected a board definition ({known}), got {name!r}")
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def make_rover_root(folder: Path, mission: Mission, keys: Path | str | None = None) -> Path:
    """A sim board's flash: canonical dictionary bytes and the key file (the key setting:
    `keys`, else $FARSIDE_KEYS, else the dev keys), the same file the ground then uses."""
    keys = resolve_keys(keys).path
    folder.mkdir(parents=True, exist_ok=True)
    canon = json.dumps(mission.raw, sort_keys=True, separators=(",", ":")).encode()
    (folder / "dictionary.json").write_bytes(canon)
    (folder / "keys.json").write_text(Path(keys).read_text())
    return folder


def fop_config_for(relay: Relay, mission: Mission) -> FopConfig:
    """FOP-1 window and T1 sized from the relay profile (round trip plus serialisation)."""
    p = relay.profile
    tc_octets = 2 + 5 + 14 + 40 + 16 + 2
    # a transmission fails when the TC frame or the CLCW after it is lost (the CLCW rides on
    # every TM frame: a second one is due within tm_interval_s, so count one TM frame)
    up, down = p.uplink, p.downlink
    ok_up = (1 - up.frame_loss) * (1 - up.mean_ber()) ** (8 * tc_octets)
    ok_down = (1 - down.frame_loss) * (1 - down.mean_ber()) ** (8 * (4 + mission.tm_frame_length))
    sizing = size_for_link(
        p.uplink.delay_s, p.downlink.delay_s, p.uplink.rate_bps, p.downlink.rate_bps,
        tc_frame_octets=tc_octets, tm_frame_octets=4 + mission.tm_frame_length,
        tm_interval_s=1.0, frame_loss=1 - ok_up * ok_down, outage_s=longest_outage_s(p.visibility),
    )
    return FopConfig(
        vcid=mission.tc_vcid, k=min(sizing.k, 8), t1_s=max(sizing.t1_s, 2.0),
        transmission_limit=sizing.transmission_limit,
    )


def longest_outage_s(vis: Visibility) -> float:
    """The longest stretch without a visible window in any one schedule (0 for none)."""
    worst = 0.0
    for s in vis.schedules:
        w = s.windows
        if not w:
            return math.inf
        gaps = [b0 - a1 for (_, a1), (b0, _) in zip(w, w[1:], strict=False)]
        if s.period_s is not None:
            gaps.append(s.period_s - w[-1][1] + w[0][0])
        worst = max([worst, *gaps])
    return worst


class RelayedTarget:
    """Ground and rover joined through the relay model (or directly, with no relay) on one
    asyncio loop: the plumbing shared by the virtual-time loop and the real-time targets.

    A subclass gives `now()` (relay time: s since the target started), `_loop_time(t)` (the
    loop's time for relay time `t`) and how octets reach the rover (`_to_rover`); with no
    relay, `_direct_up` / `_direct_down` move the octets.
    """

    loop: asyncio.AbstractEventLoop
    relay: Relay | None
    ground: LoopGround

    def __init__(self) -> None:
        self._handle: asyncio.TimerHandle | None = None
        self._handle_at = math.inf

    def now(self) -> float:
        raise NotImplementedError

    def _loop_time(self, t: float) -> float:
        return t

    def _to_rover(self, data: bytes) -> None:
        raise NotImplementedError

    def _direct_up(self, data: bytes) -> None:
        self._to_rover(data)

    def _direct_down(self, data: bytes) -> None:
        self.ground.feed(data)

    def _from_ground(self, data: bytes) -> None:
        if self.relay is None:
            self._direct_up(data)
            return
        self.relay.from_ground(self.now(), data)
        self._schedule()

    def _from_rover(self, data: bytes) -> None:
        if self.relay is None:
            self._direct_down(data)
            return
        self.relay.from_rover(self.now(), data)
        self._schedule()

    def _schedule(self) -> None:
        assert self.relay is not None
        t = self.relay.next_time()
        if t is None or t >= self._handle_at:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle_at = t
        self._handle = self.loop.call_at(self._loop_time(max(t, self.now())), self._deliver)

    def _deliver(self) -> None:
        assert self.relay is not None
        self._handle = None
        self._handle_at = math.inf
        now = self.now()
        for data in self.relay.to_rover(now):
            self._to_rover(data)
        down = self.relay.to_ground(now)
        if down:
            self.ground.feed(b"".join(down))
        self._schedule()

    def relay_changed(self) -> None:
        """Call after changing the relay's conditions: re-times the next delivery."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._handle_at = math.inf
        if self.relay is not None:
            self._schedule()

    def relay_stats(self) -> dict[str, Any]:
        return {"profile": "none"} if self.relay is None else self.relay.stats(self.now())


def close_loop(loop: asyncio.AbstractEventLoop, ground: LoopGround) -> None:
    """End a target's run: cancel its tasks (the rover's among them), close the ground
    (its archive), then the loop."""
    try:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        ground.close()
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@dataclass
class LoopConfig:
    seed: int = 1
    relay: str = "queqiao"  # profile name or file; "none" connects ground and rover directly
    board: str = "sim"
    folder: Path | None = None  # the archive (and the rover's flash with ram_flash off) lives here
    archive: bool = True
    # the sim board's flash in a RAM-backed temporary folder where the host has one: the rover
    # saves its clock (fsync'd) once a minute, a few ms each on a disk, minutes over a lunar night
    ram_flash: bool = True


def ram_folder() -> str | None:
    """Where the host keeps RAM-backed temporary files (Linux's shared-memory mount), or None."""
    import os

    d = Path("/dev/shm")
    return str(d) if d.is_dir() and os.access(d, os.W_OK | os.X_OK) else None


class WholeLoop(RelayedTarget):
    """Ground + relay + CPython rover on one virtual-time loop. Drive it with `run()`."""

    target = "virtual"

    def __init__(self, config: LoopConfig, mission: Mission | None = None) -> None:
        import tempfile

        super().__init__()
        self.config = config
        self.mission = mission or Mission.load()
        self._tmp: tempfile.TemporaryDirectory[str] | None
        if config.folder is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="farside-")
            folder = Path(self._tmp.name)
        else:
            self._tmp = None
            folder = config.folder
        self.folder = folder
        self.loop = vclock.new_event_loop()
        self.board = load_board(config.board)
        self._flash_tmp: tempfile.TemporaryDirectory[str] | None = None
        ram = ram_folder() if config.ram_flash else None
        if ram is not None:
            self._flash_tmp = tempfile.TemporaryDirectory(prefix="farside-flash-", dir=ram)
        flash = Path(self._flash_tmp.name) if self._flash_tmp is not None else folder
        self.rover_root = make_rover_root(flash / "rover", self.mission)
        self.relay: Relay | None = None
        if config.relay != "none":
            self.relay = Relay(load_profile(config.relay), seed=config.seed)
        self.archive_path = folder / "archive"
        archive = ArchiveWriter(self.archive_path, fsync_interval_s=None) if config.archive else None
        fop = fop_config_for(self.relay, self.mission) if self.relay else None
        self.ground = LoopGround(self.mission, self._from_ground, loop=self.loop, archive=archive, fop=fop)
        self.stream = RoverStream(self._from_rover)
        # firmware modules are imported by name: they are MicroPython code, outside mypy's files
        sim = importlib.import_module("firmware_py.hal.sim")
        self.hal = sim.SimHal(self.board, self.stream, config.seed)
        self.hal.virtual = True  # an idle rover may nap: this loop jumps over its naps
        self.rover: Any = None  # the running firmware_py.app.Rover (changes at each boot)
        self.boots = 0
        self._rover_task: asyncio.Task[Any] | None = None
        self._closed = False
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())

    # --- plumbing ---------------------------------------------------------------------
    async def _start(self) -> None:
        run_forever = importlib.import_module("firmware_py.app").run_forever
        self._rover_task = asyncio.get_running_loop().create_task(
            run_forever(self.board, self.hal, str(self.rover_root), self.stream, on_boot=self._on_boot),
            name="rover",
        )

    def _on_boot(self, rover: Any) -> None:
        self.rover = rover
        self.boots += 1

    def _to_rover(self, data: bytes) -> None:
        self.stream.deliver(data)
        self.rouse()

    def _direct_up(self, data: bytes) -> None:
        self.loop.call_soon(self._to_rover, data)

    def rouse(self) -> None:
        """Wake a napping idle rover: octets arrived, or the plant was changed from outside."""
        if self.rover is not None:
            self.rover.rouse()

    def _direct_down(self, data: bytes) -> None:
        self.loop.call_soon(self.ground.feed, data)

    # --- driving the loop ------------------------------------------------------------
    def now(self) -> float:
        """Loop time = rover uptime clock (s since the loop started)."""
        return self.loop.time()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run the loop until `coro` finishes; a crashed rover fails the run with its error."""
        if self._closed:
            raise FarsideError("the whole loop is closed")
        task = self.loop.create_task(coro)
        assert self._rover_task is not None
        rover_task = self._rover_task

        def stop_on_crash(_: asyncio.Task[Any]) -> None:
            if not task.done():
                task.cancel()

        rover_task.add_done_callback(stop_on_crash)
        try:
            return self.loop.run_until_complete(task)
        except asyncio.CancelledError:
            if rover_task.done():
                exc = rover_task.exception() if not rover_task.cancelled() else None
                raise FarsideError(f"the rover firmware stopped: {exc!r}") from exc
            raise
        finally:
            rover_task.remove_done_callback(stop_on_crash)

    def advance(self, seconds: float) -> None:
        """Let `seconds` of rover time pass."""
        self.run(asyncio.sleep(seconds))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close_loop(self.loop, self.ground)
        finally:
            for tmp in (self._tmp, self._flash_tmp):
                if tmp is not None:
                    tmp.cleanup()
