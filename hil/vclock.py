"""A virtual-time asyncio event loop: when nothing is ready, time jumps to the next timer.

    from hil import vclock
    vclock.run(main())            # like asyncio.run, but an hour of sleeps takes no time

`loop.time()` starts at `start` (default 0.0) and only advances when the loop would
otherwise sleep: it then jumps exactly to the earliest scheduled callback. Runs are
deterministic (no wall clock anywhere), so a seeded simulation replays bit for bit.

Real file descriptors still work (the selector is polled without blocking); if the loop
has no timers at all it blocks on them for real, which is the only way it can wait on
the outside world. Use it for in-process simulations: code running in other processes
does not follow the virtual clock.

Why our own: `looptime` patches a running loop for pytest and `aiotools.VirtualClock`
patches `loop.time` in a context manager; both work, but a 60-line loop subclass has no
dependency, no monkeypatching and the same behaviour under pytest and the CLI.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    """Polls real fds without blocking; an idle wait advances the loop's virtual time."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout is None or timeout <= 0 or self.loop is None:
            if not ready and timeout is None:
                return super().select(None)
            return ready
        self.loop._advance(timeout)
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer whenever it would sleep."""

    def __init__(self, start: float = 0.0) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        self._vtime = float(start)
        self.jumps = 0

    def time(self) -> float:
        return self._vtime

    def _advance(self, dt: float) -> None:
        # jump exactly onto the earliest timer (the base loop computed dt from it)
        scheduled = getattr(self, "_scheduled", None)
        if scheduled:
            self._vtime = max(self._vtime, scheduled[0].when())
        else:
            self._vtime += dt
        self.jumps += 1


def new_event_loop(start: float = 0.0) -> VirtualTimeLoop:
    return VirtualTimeLoop(start)


def run(main: Coroutine[Any, Any, T], start: float = 0.0) -> T:
    """Run a coroutine to completion on a fresh virtual-time loop (like asyncio.run)."""
    loop = VirtualTimeLoop(start)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
