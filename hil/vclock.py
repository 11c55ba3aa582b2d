"""A virtual-time asyncio event loop: when nothing is ready, time jumps to the next timer.

    from hil import vclock
    vclock.run(main())            # like asyncio.run, but an hour of sleeps takes no time

`loop.time()` starts at `start` (default 0.0) and only advances when the loop would
otherwise sleep: it then jumps exactly to the earliest scheduled callback. Runs are
deterministic (no wall clock anywhere), so a seeded simulation replays bit for bit.

Real file descriptors still work (the selector is polled without blocking: at every idle
wait, and every `BUSY_POLL_EVERY` iterations while callbacks keep the loop busy; when only
the loop's own wake-up socket is registered, every `BUSY_POLL_EVERY` idle waits); if the
loop has no timers at all it blocks on them for real, which is the only way it can wait
on the outside world. Use it for in-process simulations: code running in other processes
does not follow the virtual clock.

Long runs (a lunar night is 1.2 million seconds) cost what wakes the loop, not the time
that passes: a jump over a day costs the same as a jump over a millisecond. To see what
wakes it, trace: `loop.wakers` (a Counter, with `trace=True`) counts the jumps by what
each one woke: for a task's sleep or timeout the last two coroutines of its await chain
("Rover._guard > Rover._link_task"), else the callback's name.

A loop that keeps running callbacks without ever letting the clock move (a task that polls
with `sleep(0)`, or a timeout shorter than the loop's clock resolution retried forever) would
spin at one instant for ever; after `STALL_PASSES` such passes at one virtual time the loop
raises `VirtualTimeStall`, naming the time, the next timer and what kept it busy.

Why our own: `looptime` patches a running loop for pytest and `aiotools.VirtualClock`
patches `loop.time` in a context manager; both work, but a 60-line loop subclass has no
dependency, no monkeypatching and the same behaviour under pytest and the CLI.
"""

from __future__ import annotations

import asyncio
import heapq
import selectors
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

from hil.errors import FarsideError

T = TypeVar("T")

BUSY_POLL_EVERY = 16  # while callbacks are ready, poll the real fds once per this many iterations
STALL_PASSES = 500_000  # busy loop passes at one virtual time before the loop calls it a stall
# asyncio's own limits (base_events): a heap this large with this fraction cancelled is rebuilt;
# the longest select timeout
_MIN_SCHEDULED = 100
_MIN_CANCELLED_FRACTION = 0.5
_MAX_SELECT_TIMEOUT = 24 * 3600


_BASE_RUN_ONCE = asyncio.SelectorEventLoop._run_once  # type: ignore[attr-defined]
_Handle = asyncio.Handle
# what asyncio.sleep's timer calls (its own future done with its result): such timers are
# made _Wakes (None if this Python has no such function: then every timer is a TimerHandle)
_SET_RESULT: Any = getattr(asyncio.futures, "_set_result_unless_cancelled", None)
_TimerHandle = asyncio.TimerHandle
_Future = asyncio.Future


class _Wake:
    """The timer of an asyncio.sleep: the part of a TimerHandle the loop and asyncio.sleep
    use, without a Handle's context copy and callback call (a task's every sleep makes one).
    It orders in the heap exactly as TimerHandles do (by time alone), among them."""

    __slots__ = ("_when", "_fut", "_result", "_loop", "_cancelled", "_scheduled")

    def __init__(self, loop: Any, when: float, fut: asyncio.Future[Any], result: Any) -> None:
        self._loop = loop
        self._when = when
        self._fut = fut
        self._result = result
        self._cancelled = False
        self._scheduled = True

    def __lt__(self, other: Any) -> bool:
        return bool(self._when < other._when)

    def __gt__(self, other: Any) -> bool:
        return bool(self._when > other._when)

    def when(self) -> float:
        return self._when

    def cancel(self) -> None:
        # as TimerHandle.cancel: a cancelled timer still in the heap is counted
        if not self._cancelled:
            if self._scheduled:
                self._loop._timer_cancelled_count += 1
            self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled

    def _run(self) -> None:
        _SET_RESULT(self._fut, self._result)

    @property
    def _args(self) -> tuple[Any, ...]:  # for waker() and the stall report
        return (self._fut, self._result)

    @property
    def _callback(self) -> Any:
        return _SET_RESULT


class VirtualTimeStall(FarsideError):
    """The virtual clock stopped moving: callbacks kept the loop busy at one instant."""


class _JumpingSelector(selectors.DefaultSelector):
    """Polls real fds without blocking; an idle wait advances the loop's virtual time."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None
        self._busy = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:
            # callbacks are ready: they run now whatever the fds say, so a real poll on
            # every iteration would only cost a system call; look now and then
            loop = self.loop
            if loop is not None:
                if loop._vtime != loop._stall_t:
                    loop._stall_t = loop._vtime
                    loop._stall_n = 0
                loop._stall_n += 1
                if loop._stall_n >= loop.stall_passes:
                    loop._stalled()
            self._busy += 1
            if self._busy < BUSY_POLL_EVERY:
                return []
        self._busy = 0
        ready = super().select(0)
        if ready or timeout is None or timeout <= 0 or self.loop is None:
            if not ready and timeout is None:
                return super().select(None)
            return ready
        self.loop._advance(timeout)
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer whenever it would sleep."""

    def __init__(self, start: float = 0.0, trace: bool = False) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        self._vtime = float(start)
        self.jumps = 0
        self.wakers: Counter[str] | None = Counter() if trace else None
        self.stall_passes = STALL_PASSES
        self._stall_t = self._vtime
        self._stall_n = 0
        self._quiet_jumps = BUSY_POLL_EVERY  # idle jumps since the last poll (the first one polls)

    def _stalled(self) -> None:
        # called from the selector with callbacks ready: say what kept the loop busy
        self._stall_n = 0
        ready: Counter[str] = Counter(_handle_name(h) for h in list(getattr(self, "_ready", ()))[:50])
        busy = ", ".join(f"{name} x{n}" for name, n in ready.most_common(3)) or "nothing"
        scheduled = getattr(self, "_scheduled", None)
        nxt = f"; next timer at {scheduled[0].when():.6f} s ({waker(scheduled[0])})" if scheduled else ""
        raise VirtualTimeStall(
            f"virtual time stalled at t = {self._vtime:.6f} s: {self.stall_passes} loop passes "
            f"without the clock moving{nxt}; busy with {busy}"
        )

    def time(self) -> float:
        return self._vtime

    # asyncio's call_soon, call_later and call_at without the debug loop's checks (the debug
    # loop keeps asyncio's own): a task's every wake and sleep goes through them
    def call_soon(self, callback: Any, *args: Any, context: Any = None) -> asyncio.Handle:  # type: ignore[override]
        lp: Any = self
        if lp._debug:
            return super().call_soon(callback, *args, context=context)
        if lp._closed:
            raise RuntimeError("Event loop is closed")
        handle = _Handle(callback, args, self, context)
        lp._ready.append(handle)
        return handle

    def call_later(  # type: ignore[override]
        self, delay: float, callback: Any, *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        lp: Any = self
        if lp._debug or delay is None:
            return super().call_later(delay, callback, *args, context=context)
        if callback is _SET_RESULT and context is None and len(args) == 2:
            # asyncio.sleep's timer
            if lp._closed:
                raise RuntimeError("Event loop is closed")
            wake: Any = _Wake(self, self._vtime + delay, args[0], args[1])
            heapq.heappush(lp._scheduled, wake)
            return wake  # type: ignore[no-any-return]
        return self._timer(self._vtime + delay, callback, args, context)

    def sleep_future(self, delay: float) -> asyncio.Future[None]:
        """asyncio.sleep(delay)'s future and timer without its coroutine (delay > 0): the
        future to await, done at the same virtual time and in the same order as the sleep's.
        A task cancelled while awaiting it cancels the future; the timer then finds it
        cancelled and does nothing (as asyncio.wait_for's own timers)."""
        lp: Any = self
        if lp._debug or lp._closed or _SET_RESULT is None:
            return asyncio.ensure_future(asyncio.sleep(delay), loop=self)
        fut: asyncio.Future[None] = _Future(loop=self)
        heapq.heappush(lp._scheduled, _Wake(self, self._vtime + delay, fut, None))
        return fut

    def call_at(  # type: ignore[override]
        self, when: float, callback: Any, *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        lp: Any = self
        if lp._debug or when is None:
            return super().call_at(when, callback, *args, context=context)
        return self._timer(when, callback, args, context)

    def _timer(self, when: float, callback: Any, args: tuple[Any, ...], context: Any) -> asyncio.TimerHandle:
        lp: Any = self
        if lp._closed:
            raise RuntimeError("Event loop is closed")
        timer: Any = _TimerHandle(when, callback, args, self, context)
        heapq.heappush(lp._scheduled, timer)
        timer._scheduled = True
        return timer  # type: ignore[no-any-return]

    def _run_once(self) -> None:
        # asyncio's iteration, the same steps in the same order (cancelled timers dropped,
        # a poll, due timers made ready, the ready callbacks run once each), with less
        # bookkeeping: a busy pass (callbacks ready) counts towards a stall and polls the
        # real fds only every BUSY_POLL_EVERY passes, without a call into the selector;
        # the debug loop keeps asyncio's own (its slow-callback warnings)
        lp: Any = self  # asyncio's private loop state (not in its type stubs)
        if lp._debug:
            _BASE_RUN_ONCE(self)
            return
        sched = lp._scheduled
        if lp._timer_cancelled_count:
            n = len(sched)
            if n > _MIN_SCHEDULED and lp._timer_cancelled_count / n > _MIN_CANCELLED_FRACTION:
                keep = []
                for h in sched:
                    if h._cancelled:
                        h._scheduled = False
                    else:
                        keep.append(h)
                heapq.heapify(keep)
                lp._scheduled = sched = keep
                lp._timer_cancelled_count = 0
            else:
                while sched and sched[0]._cancelled:
                    lp._timer_cancelled_count -= 1
                    h = heapq.heappop(sched)
                    h._scheduled = False
        ready = lp._ready
        selector: Any = lp._selector
        if ready or lp._stopping:
            if self._vtime != self._stall_t:
                self._stall_t = self._vtime
                self._stall_n = 0
            self._stall_n += 1
            if self._stall_n >= self.stall_passes:
                self._stalled()
            selector._busy += 1
            if selector._busy >= BUSY_POLL_EVERY:
                selector._busy = 0
                events = selectors.DefaultSelector.select(selector, 0)
                if events:
                    lp._process_events(events)
        else:
            timeout = None
            if sched:
                timeout = min(max(0.0, sched[0]._when - self._vtime), _MAX_SELECT_TIMEOUT)
            if timeout and self._quiet_jumps < BUSY_POLL_EVERY and len(selector._fd_to_key) <= 1:
                # only the loop's own wake-up socket is registered (a thread's
                # call_soon_threadsafe reaches the ready queue without it): jump without a
                # poll, and poll now and then to drain it
                self._quiet_jumps += 1
                self._advance(timeout)
            else:
                self._quiet_jumps = 0
                events = selector.select(timeout)
                if events:
                    lp._process_events(events)
        end_time = self._vtime + lp._clock_resolution
        while sched and sched[0]._when < end_time:
            h = heapq.heappop(sched)
            h._scheduled = False
            ready.append(h)
        popleft = ready.popleft
        for _ in range(len(ready)):
            h = popleft()
            if not h._cancelled:
                h._run()

    def _advance(self, dt: float) -> None:
        # jump exactly onto the earliest timer (the base loop computed dt from it)
        scheduled = getattr(self, "_scheduled", None)
        if scheduled:
            self._vtime = max(self._vtime, scheduled[0].when())
            if self.wakers is not None:
                self.wakers[waker(scheduled[0])] += 1
        else:
            self._vtime += dt
        self.jumps += 1


def waker(handle: asyncio.TimerHandle) -> str:
    """What a timer wakes: the sleeping coroutine (innermost outside asyncio) for a task's
    sleep or timeout, else the callback's qualified name."""
    args = getattr(handle, "_args", None) or ()
    if args and isinstance(args[0], asyncio.Future):
        for cb, _ctx in getattr(args[0], "_callbacks", None) or ():
            task = getattr(cb, "__self__", None)
            if isinstance(task, asyncio.Task):
                return _coro_name(task.get_coro())
    cb = getattr(handle, "_callback", None)
    return str(getattr(cb, "__qualname__", None) or repr(cb))


def _handle_name(handle: asyncio.Handle) -> str:
    # a ready callback: the task it steps (its coroutine), else the callback's name
    cb = getattr(handle, "_callback", None)
    task = getattr(cb, "__self__", None)
    if isinstance(task, asyncio.Task):
        return _coro_name(task.get_coro())
    return str(getattr(cb, "__qualname__", None) or repr(cb))


def _coro_name(coro: Any) -> str:
    # the last two coroutines of the await chain outside asyncio: "task > helper it sleeps in"
    names = [str(getattr(coro, "__qualname__", "?"))]
    c = coro
    for _ in range(32):
        c = getattr(c, "cr_await", None) or getattr(c, "gi_yieldfrom", None)
        code = getattr(c, "cr_code", None) or getattr(c, "gi_code", None)
        if c is None or code is None:
            break
        if "asyncio" not in code.co_filename:
            names.append(str(getattr(c, "__qualname__", "?")))
    return " > ".join(names[-2:])


def new_event_loop(start: float = 0.0, trace: bool = False) -> VirtualTimeLoop:
    return VirtualTimeLoop(start, trace)


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
