"""Drives the relay model (channel.Relay) with two endpoints on an asyncio loop.

The loop's clock is the relay's clock: on a normal loop that is real time; on the
virtual-time loop (hil/vclock.py) the same code runs as fast as the CPU allows.

    relay = Relay(load_profile("queqiao"), seed=1)
    runner = RelayRunner(relay, ground_endpoint, rover_endpoint)
    await runner.start()
    ...
    await runner.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from hil.relay.channel import Relay
from hil.relay.endpoints import Endpoint


class RelayRunner:
    """Moves octets: endpoint -> model when they arrive, model -> endpoint when due."""

    def __init__(self, relay: Relay, ground: Endpoint, rover: Endpoint, t0: float | None = None) -> None:
        self.relay = relay
        self.ground = ground
        self.rover = rover
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._t0 = t0
        self.on_tick: Callable[[float], None] | None = None

    def now(self) -> float:
        """Relay time: seconds since start()."""
        return asyncio.get_running_loop().time() - (self._t0 or 0.0)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._t0 is None:
            self._t0 = loop.time()
        self.ground.on_data = self._from_ground
        self.rover.on_data = self._from_rover
        await self.ground.open()
        try:
            await self.rover.open()
        except BaseException:
            await self.ground.close()
            raise
        self._task = asyncio.create_task(self._pump(), name="relay-pump")

    def _from_ground(self, data: bytes) -> None:
        self.relay.from_ground(self.now(), data)
        self._wake.set()

    def _from_rover(self, data: bytes) -> None:
        self.relay.from_rover(self.now(), data)
        self._wake.set()

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = self.now()
            for data in self.relay.to_rover(now):
                self.rover.write(data)
            for data in self.relay.to_ground(now):
                self.ground.write(data)
            nxt = self.relay.next_time()
            self._wake.clear()
            if nxt is None:
                await self._wake.wait()
                continue
            delay = nxt - self.now()
            if delay <= 0:
                await asyncio.sleep(0)
                continue
            # wake at the due time exactly (loop.call_at, not sleep(delay): no drift)
            handle = loop.call_at(nxt + (self._t0 or 0.0), self._wake.set)
            try:
                await self._wake.wait()
            finally:
                handle.cancel()

    def stats(self) -> dict[str, Any]:
        s = self.relay.stats(self.now())
        s["ground"] = {"endpoint": self.ground.describe(), "connected": self.ground.connected,
                       "reconnects": self.ground.reconnects, "pending_octets": len(self.ground.pending)}
        s["rover"] = {"endpoint": self.rover.describe(), "connected": self.rover.connected,
                      "reconnects": self.rover.reconnects, "pending_octets": len(self.rover.pending)}
        return s

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.ground.close()
        await self.rover.close()
        if self.relay.capture is not None:
            self.relay.capture.close()
